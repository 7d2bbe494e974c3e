"""Training on many devices and many processes, on Keras's own distribution engines.

A run option, never part of the spec: `graphspec train SPEC --distribute data-parallel|mirrored`.

- ``data-parallel``: :class:`keras.distribution.DataParallel` over every device the processes see
  (JAX). Several processes (hosts) join with `--coordinator HOST:PORT --num-processes N
  --process-id I`, or Keras's own ``KERAS_DISTRIBUTION_JOB_ADDRESSES`` /
  ``KERAS_DISTRIBUTION_NUM_PROCESSES`` / ``KERAS_DISTRIBUTION_PROCESS_ID``, through
  :func:`keras.distribution.initialize` (``jax.distributed``; on CPU with gloo collectives).
- ``mirrored``: ``tf.distribute.MirroredStrategy`` over the local devices (TensorFlow, one process).

`--devices N` on a CPU splits the host into N logical devices (JAX:
``--xla_force_host_platform_device_count``, set before JAX starts; TensorFlow: logical device
configurations), so every path runs without accelerators; with accelerators it takes the first N.

The order matters and is kept by the CLI: :func:`plan` (options and environment, no backend),
:func:`check_backend`, :func:`prepare` (environment variables, before Keras is imported), then
:func:`start` (after Keras is imported: joins the processes, sets the distribution). Combinations
that cannot work are usage errors before anything starts: ``mirrored`` needs TensorFlow;
``data-parallel`` needs JAX (Keras's TensorFlow distribution is a prototype, and
``MultiWorkerMirroredStrategy`` fails with Keras 3 ``fit``: keras-team/keras#20585).

Under a cluster scheduler the processes join with no flags: `srun graphspec train ...` (Slurm with more
than one task) or `mpirun -n N graphspec train ...` (Open MPI) is detected from the scheduler's
environment (:func:`detect_cluster`, the same variables JAX's own cluster classes read) and joined by
:func:`keras.distribution.initialize` with no arguments, which leaves the coordinator, the process count
and index to ``jax.distributed``'s detection. Explicit flags and ``KERAS_DISTRIBUTION_*`` win over it.

Every process of a job trains from one seed: a spec without ``train.seed`` gets process 0's
(:meth:`Runtime.agree`, an all-gather after the processes joined).

The spec's ``data.batch_size`` is the global batch; it must split evenly over the replicas
(:func:`check_batch`). Each process feeds its slice of every global batch (:class:`Shard`).
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import re
from collections.abc import Iterator, Mapping
from typing import Any

from graphspec.errors import UsageError

STRATEGIES = ("data-parallel", "mirrored")
ENV_ADDRESSES = "KERAS_DISTRIBUTION_JOB_ADDRESSES"
ENV_PROCESSES = "KERAS_DISTRIBUTION_NUM_PROCESSES"
ENV_PROCESS_ID = "KERAS_DISTRIBUTION_PROCESS_ID"
# Where a process other than 0 keeps its scratch run folder: `launch` sets it to a folder of its own, which it
# removes when its workers are gone (a worker killed with SIGKILL cannot remove its own).
ENV_SCRATCH = "GRAPHSPEC_SCRATCH"
KERAS_ISSUE = "https://github.com/keras-team/keras/issues/20585"
_ADDRESS = re.compile(r"^\[?[A-Za-z0-9_.:-]+\]?:\d{1,5}$")


def scratch_root() -> str | None:
    """The folder `launch` keeps for its workers' scratch run folders (None: the system's temporary folder)."""
    root = os.environ.get(ENV_SCRATCH)
    return root if root and os.path.isdir(root) else None


@dataclasses.dataclass(frozen=True)
class Plan:
    """How a training process is distributed (nothing imported, nothing started)."""

    strategy: str | None = None  # None: one device, as before
    devices: int | None = None  # logical devices per process (CPU), or the first N accelerators
    coordinator: str | None = None
    num_processes: int = 1
    process_id: int = 0
    cluster: Cluster | None = None  # a scheduler's job detected from its environment (no coordinator given)

    @property
    def chief(self) -> bool:
        """Process 0: the one that claims and writes the run folder."""
        return self.process_id == 0

    @property
    def multi_process(self) -> bool:
        return self.num_processes > 1


@dataclasses.dataclass(frozen=True)
class Cluster:
    """A job of a cluster scheduler, read from the environment it gives each process (what JAX's
    ``jax._src.clusters`` classes read; ``jax.distributed`` detects the same when it joins)."""

    kind: str  # slurm | ompi (JAX's cluster names)
    job_id: str
    num_processes: int
    process_id: int
    local_id: int  # this process's index on its node (SLURM_LOCALID, OMPI_COMM_WORLD_LOCAL_RANK)

    @property
    def title(self) -> str:
        return {"slurm": "Slurm", "ompi": "Open MPI"}.get(self.kind, self.kind)

    def record(self) -> dict[str, Any]:
        """What environment.json records of the job."""
        return {"kind": self.kind, "job_id": self.job_id, "processes": self.num_processes,
                "local_id": self.local_id}


_SLURM = ("SLURM_JOB_ID", "SLURM_STEP_NODELIST", "SLURM_NTASKS", "SLURM_PROCID", "SLURM_LOCALID")
_OMPI_URI = "OMPI_MCA_orte_hnp_uri"


def detect_cluster(environ: Mapping[str, str] | None = None) -> Cluster | None:
    """The Slurm step (`srun`, more than one task) or Open MPI job (`mpirun`, more than one rank) this process
    is part of, else None. One task or rank is no distributed job: the run trains alone, as before."""
    env = os.environ if environ is None else environ
    if all(k in env for k in _SLURM):
        n = _env_int(env, "SLURM_NTASKS") or 1
        if n > 1:
            return Cluster("slurm", env["SLURM_JOB_ID"], n, _env_int(env, "SLURM_PROCID") or 0,
                           _env_int(env, "SLURM_LOCALID") or 0)
    if _OMPI_URI in env:
        n = _env_int(env, "OMPI_COMM_WORLD_SIZE") or 1
        if n > 1:
            return Cluster("ompi", env[_OMPI_URI].split(";", 1)[0], n, _env_int(env, "OMPI_COMM_WORLD_RANK") or 0,
                           _env_int(env, "OMPI_COMM_WORLD_LOCAL_RANK") or 0)
    return None


def local_device_ids(p: Plan, environ: Mapping[str, str] | None = None) -> list[int] | None:
    """The accelerators a process of a detected job uses (``jax.distributed.initialize(local_device_ids=)``),
    or None for JAX's default (one device per process: the one numbered like the process on its node).

    With ``CUDA_VISIBLE_DEVICES`` set (Slurm's ``--gpus-per-task``), a process uses what it sees (the first
    `--devices` of them); without it, `--devices N` gives the process with node index L devices
    L*N .. L*N+N-1 of its node."""
    env = os.environ if environ is None else environ
    if p.cluster is None:
        return None
    visible = [v for v in env.get("CUDA_VISIBLE_DEVICES", "").split(",") if v.strip()]
    if visible:
        return list(range(len(visible) if p.devices is None else min(p.devices, len(visible))))
    if p.devices is not None:
        return list(range(p.cluster.local_id * p.devices, (p.cluster.local_id + 1) * p.devices))
    return None


def _env_int(environ: Mapping[str, str], name: str) -> int | None:
    text = environ.get(name, "").strip()
    if not text:
        return None
    try:
        return int(text)
    except ValueError:
        raise UsageError(f"{name}={text!r} is not a whole number") from None


def plan(strategy: str | None = None, *, devices: int | None = None, coordinator: str | None = None,
         num_processes: int | None = None, process_id: int | None = None,
         environ: Mapping[str, str] | None = None) -> Plan:
    """The distribution a `train` command asked for: its options, else Keras's environment variables."""
    env = os.environ if environ is None else environ
    if strategy is not None:
        strategy = strategy.strip().lower()
        if strategy in {"none", "off", ""}:
            strategy = None
        elif strategy not in STRATEGIES:
            raise UsageError(f"--distribute {strategy!r}: choose one of {', '.join(STRATEGIES)}")
    cluster = None
    explicit = coordinator is not None or num_processes is not None or process_id is not None or any(
        env.get(k, "").strip() for k in (ENV_ADDRESSES, ENV_PROCESSES, ENV_PROCESS_ID))
    if not explicit:
        cluster = detect_cluster(env)
        if cluster is not None:
            num_processes, process_id = cluster.num_processes, cluster.process_id
    if coordinator is None and env.get(ENV_ADDRESSES, "").strip():
        coordinator = env[ENV_ADDRESSES].strip().split(",")[0]
    if num_processes is None:
        num_processes = _env_int(env, ENV_PROCESSES)
    if process_id is None:
        process_id = _env_int(env, ENV_PROCESS_ID)
    n = 1 if num_processes is None else num_processes
    pid = 0 if process_id is None else process_id
    if n < 1:
        raise UsageError(f"--num-processes must be at least 1, got {n}")
    if not 0 <= pid < n:
        raise UsageError(f"--process-id {pid} is not one of the {n} processes (0..{n - 1})")
    if devices is not None and devices < 1:
        raise UsageError(f"--devices must be at least 1, got {devices}")
    if n > 1:
        if coordinator is None and cluster is None:
            raise UsageError(f"{n} processes need the address of process 0: --coordinator HOST:PORT "
                             f"(or {ENV_ADDRESSES})")
        if strategy is None:
            strategy = "data-parallel"
    if coordinator is not None and not _ADDRESS.match(coordinator):
        raise UsageError(f"--coordinator {coordinator!r} is not HOST:PORT")
    if strategy is None and devices is not None and devices > 1:
        raise UsageError(f"--devices {devices} without --distribute: say how to use them "
                         "(--distribute data-parallel on JAX, --distribute mirrored on TensorFlow)")
    return Plan(strategy, devices, coordinator if n > 1 else None, n, pid, cluster)


def check_backend(p: Plan, backend_name: str) -> None:
    """A usage error for a combination that cannot work, before anything starts."""
    if p.strategy == "mirrored" and backend_name != "tensorflow":
        raise UsageError(f"--distribute mirrored is TensorFlow's MirroredStrategy; this run is on {backend_name}: "
                         "use --backend tensorflow, or --distribute data-parallel on JAX")
    if p.strategy == "mirrored" and p.multi_process:
        raise UsageError("--distribute mirrored runs in one process (all local devices); several processes on "
                         "TensorFlow need MultiWorkerMirroredStrategy, which fails with Keras 3 fit "
                         f"({KERAS_ISSUE}); use --backend jax --distribute data-parallel")
    if p.strategy == "data-parallel" and backend_name != "jax":
        several = " with several processes" if p.multi_process else ""
        raise UsageError(
            f"--distribute data-parallel{several} runs on JAX (keras.distribution); on {backend_name} it is not "
            "supported: Keras's TensorFlow distribution is a prototype and MultiWorkerMirroredStrategy fails with "
            f"Keras 3 fit ({KERAS_ISSUE}). Use --backend jax, or --distribute mirrored for one TensorFlow process")


def prepare(p: Plan, backend_name: str) -> None:
    """Environment variables the backend reads when it starts: call before Keras (and JAX) is imported."""
    if p.strategy is None or backend_name != "jax" or p.devices is None:
        return
    flags = re.sub(r"--xla_force_host_platform_device_count=\S+", "", os.environ.get("XLA_FLAGS", "")).strip()
    os.environ["XLA_FLAGS"] = f"{flags} --xla_force_host_platform_device_count={p.devices}".strip()


@dataclasses.dataclass
class Runtime:
    """A started distribution: what the trainer needs to know and do."""

    plan: Plan
    replicas: int = 1  # devices the global batch is split over
    local_devices: list[str] = dataclasses.field(default_factory=list)
    strategy_object: Any = None  # tf.distribute.MirroredStrategy

    @property
    def chief(self) -> bool:
        return self.plan.chief

    def shard(self) -> Shard:
        """This process's part of each batch (data-parallel; MirroredStrategy splits tf.data batches itself)."""
        if self.plan.strategy != "data-parallel":
            return Shard()
        return Shard(self.plan.process_id, self.plan.num_processes, self.replicas)

    @contextlib.contextmanager
    def scope(self) -> Iterator[None]:
        """The scope that models, optimizers and fit live in (MirroredStrategy's; nothing otherwise)."""
        if self.strategy_object is None:
            yield
            return
        with self.strategy_object.scope():
            yield

    def record(self, batch_size: int) -> dict[str, Any]:
        """What environment.json records."""
        out = {"strategy": self.plan.strategy or "none", "processes": self.plan.num_processes,
               "process_id": self.plan.process_id, "replicas": self.replicas, "devices": self.local_devices,
               "coordinator": self.plan.coordinator, "global_batch": batch_size,
               "per_replica_batch": batch_size // max(1, self.replicas)}
        if self.plan.cluster is not None:
            out["cluster"] = self.plan.cluster.record()
        return out

    def agree(self, value: int) -> int:
        """Process 0's `value` in every process (a collective: every process must call it, in step)."""
        if not self.plan.multi_process:
            return value
        import numpy as np
        from jax.experimental import multihost_utils

        every = np.asarray(multihost_utils.process_allgather(np.array([value], dtype=np.int64))).ravel()
        return int(every[0])

    def any_process(self, flag: bool) -> bool:
        """Whether `flag` is true in any process (a collective: every process must call it, in step)."""
        if not self.plan.multi_process:
            return flag
        import numpy as np
        from jax.experimental import multihost_utils

        return bool(np.asarray(multihost_utils.process_allgather(np.array([int(flag)], dtype=np.int32))).any())

    def same_weights(self, weights: list[Any]) -> tuple[str, bool]:
        """A fingerprint of `weights` (SHA-256 of their bytes, 12 hex digits) and whether every process has
        the same (a collective with several processes)."""
        import hashlib

        import numpy as np

        digest = hashlib.sha256()
        for w in weights:
            digest.update(np.ascontiguousarray(np.asarray(w)).tobytes())
        text = digest.hexdigest()[:12]
        if not self.plan.multi_process:
            return text, True
        from jax.experimental import multihost_utils

        mine = np.array([int(text[:7], 16)], dtype=np.int32)
        every = np.asarray(multihost_utils.process_allgather(mine)).ravel()
        return text, bool((every == every[0]).all())

    def barrier(self, name: str) -> None:
        """Wait for every process (no-op in one process)."""
        if self.plan.multi_process:
            from jax.experimental import multihost_utils

            multihost_utils.sync_global_devices(name)


@dataclasses.dataclass(frozen=True)
class Shard:
    """This process's part of every global batch: samples [index*k, (index+1)*k) of the batch trimmed to
    a multiple of `replicas`, k = trimmed // count."""

    index: int = 0
    count: int = 1
    replicas: int = 1

    def part(self, batch: Any) -> Any:
        """Slice an index array (one global batch) to this process's samples."""
        if self.trivial:
            return batch
        k = (len(batch) - len(batch) % self.replicas) // self.count
        return batch[self.index * k:(self.index + 1) * k]

    def steps(self, n: int, batch_size: int) -> int:
        """Batches per epoch: a last partial batch is trimmed to a multiple of the replicas (at most
        replicas - 1 samples are left out), and left out when smaller than that."""
        full, rest = divmod(n, batch_size)
        if self.trivial:
            return max(1, full + (1 if rest else 0))
        return max(1, full + (1 if rest >= self.replicas else 0))

    def left_out(self, n: int, batch_size: int) -> int:
        """Samples of `n` an epoch does not use (see :meth:`steps`)."""
        return 0 if self.trivial else (n % batch_size) % self.replicas

    @property
    def trivial(self) -> bool:
        return self.count == 1 and self.replicas == 1


LOOPBACK = frozenset({"127.0.0.1", "localhost", "::1"})


def join_arguments(p: Plan) -> dict[str, Any]:
    """The arguments of ``jax.distributed.initialize`` for a multi-process plan.

    JAX's coordinator (process 0) listens on every interface unless told otherwise: an unauthenticated gRPC
    service. A coordinator on a loopback address (``launch --local``) is bound to that address only; a
    multi-host run keeps JAX's default, since the other hosts must reach it (docs/distributed.md)."""
    assert p.coordinator is not None
    host, _, port = p.coordinator.rpartition(":")
    args: dict[str, Any] = {"coordinator_address": p.coordinator, "num_processes": p.num_processes,
                            "process_id": p.process_id}
    if host.strip("[]") in LOOPBACK:
        args["coordinator_bind_address"] = f"{host}:{port}"
    return args


def _join_at_coordinator(p: Plan) -> None:
    """What ``keras.distribution.initialize`` does, with the coordinator's bind address chosen here."""
    import jax

    jax.distributed.initialize(**join_arguments(p))
    _initialize_rng()


def _initialize_rng() -> None:
    try:  # Keras's own step after joining: the same random seed in every process
        from keras.src.backend.jax.distribution_lib import initialize_rng
    except ImportError:
        return
    initialize_rng()


def start(p: Plan) -> Runtime:
    """Join the processes and set Keras's distribution (after Keras is imported; before any model exists)."""
    if p.strategy is None:
        return Runtime(p)
    from graphspec.build import backend

    keras = backend.load()
    if p.strategy == "mirrored":
        return _start_mirrored(p)
    if p.multi_process:
        import jax

        jax.config.update("jax_cpu_collectives_implementation", "gloo")  # type: ignore[no-untyped-call]
        try:
            _join(p, keras)
        except Exception as exc:  # an unreachable coordinator, a port in use
            where = p.coordinator or (f"the {p.cluster.title} job's coordinator" if p.cluster else "?")
            raise UsageError(f"could not join the {p.num_processes} processes at {where}: {exc}") from None
        local_device_names()
    import jax

    local = jax.local_devices()
    if p.devices is not None and len(local) < p.devices:
        raise UsageError(f"--devices {p.devices}: this process sees {len(local)} device(s) "
                         f"({', '.join(str(d) for d in local)})")
    if p.devices is not None and len(local) > p.devices:
        raise UsageError(f"--devices {p.devices}: this process sees {len(local)} devices; limit them with "
                         "CUDA_VISIBLE_DEVICES (JAX cannot leave local accelerators out of a distributed run)")
    all_devices = keras.distribution.list_devices()
    dist = keras.distribution.DataParallel(devices=all_devices)
    if p.multi_process:
        dist.auto_shard_dataset = False  # graphspec feeds each process its own shard
    keras.distribution.set_distribution(dist)
    return Runtime(p, replicas=len(all_devices), local_devices=[str(d) for d in local])


def local_device_names() -> None:
    """Make Keras's device names without an index ("cpu", "gpu") name this process's first device of that
    kind, as they do in one process. Call after the processes joined (JAX only; idempotent).

    Keras runs its input-pipeline work under ``backend.device_scope("cpu")``: the Grain image loader
    (``image_dataset_utils._load_image_grain``), the preprocessing layers of ``data.augment`` inside a Grain
    pipeline (``DataLayer.__call__``), ``grain_utils.make_batch``. On JAX that name is resolved by
    ``distribution_lib._to_backend_device`` among ``jax.devices("cpu")``, which in a multi-process job
    lists every process's devices: "cpu" is device 0, process 0's, and in any other process each decoded
    image lands on a device it cannot address ("Fetching value for `jax.Array` that spans non-addressable
    devices" when the batch is read back). JAX's own advice is ``jax.local_devices`` for such uses
    (huggingface/transformers#27593); Keras 3.15 has no option for it. Names with an index ("cpu:3", what
    ``keras.distribution.list_devices`` gives and device meshes are made of) keep their global meaning."""
    from keras.src.backend.jax import distribution_lib as lib

    original = lib._to_backend_device
    if getattr(original, "graphspec_local_names", False):
        return
    import jax

    def to_backend_device(device_name: Any) -> Any:
        if isinstance(device_name, str) and ":" not in device_name:
            local = jax.local_devices(backend=device_name.lower())
            if local:
                return local[0]
        return original(device_name)

    to_backend_device.graphspec_local_names = True  # type: ignore[attr-defined]
    lib._to_backend_device = to_backend_device


def _join(p: Plan, keras: Any) -> None:
    """Join the job: at the coordinator given, else where the cluster's environment says (JAX detects it)."""
    if p.cluster is None:
        _join_at_coordinator(p)
        return
    ids = local_device_ids(p)
    if ids is None:
        keras.distribution.initialize()  # jax.distributed's cluster detection: coordinator, count, index
    else:  # keras's initialize takes no device ids: the same call with them
        import jax

        jax.distributed.initialize(local_device_ids=ids)
        _initialize_rng()
    import jax

    if (jax.process_count(), jax.process_index()) != (p.num_processes, p.process_id):
        raise RuntimeError(f"JAX joined as process {jax.process_index()} of {jax.process_count()}; the "
                           f"{p.cluster.title} environment says {p.process_id} of {p.num_processes}")


def detected_line(p: Plan) -> str | None:
    """The line a process of a detected job prints (None when nothing was detected)."""
    c = p.cluster
    if c is None:
        return None
    return (f"detected a {c.title} job ({c.job_id}): {c.num_processes} processes, this is process {c.process_id}; "
            f"training --distribute {p.strategy} (explicit --coordinator/--num-processes/--process-id win)")


def _start_mirrored(p: Plan) -> Runtime:
    import tensorflow as tf

    gpus = tf.config.list_physical_devices("GPU")
    if not gpus and p.devices is not None:
        cpu = tf.config.list_physical_devices("CPU")[0]
        try:
            tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * p.devices)
        except RuntimeError:  # TensorFlow started already (another run in this process)
            pass
    kind = "GPU" if gpus else "CPU"
    names = [d.name for d in tf.config.list_logical_devices(kind)]
    if p.devices is not None:
        if len(names) < p.devices:
            raise UsageError(f"--devices {p.devices}: TensorFlow sees {len(names)} {kind} device(s) in this process")
        names = names[:p.devices]
    strategy = tf.distribute.MirroredStrategy(devices=names)
    return Runtime(p, replicas=int(strategy.num_replicas_in_sync), local_devices=names, strategy_object=strategy)


def check_batch(runtime: Runtime, batch_size: int) -> str | None:
    """None if the global batch splits evenly over the replicas, else what is wrong (for a GS414 diagnostic)."""
    if runtime.replicas <= 1 or batch_size % runtime.replicas == 0:
        return None
    return (f"data.batch_size {batch_size} (the global batch) does not split evenly over {runtime.replicas} "
            f"replicas ({runtime.plan.num_processes} process(es))")


def batch_hint(batch_size: int, replicas: int) -> str:
    lower = batch_size - batch_size % replicas
    upper = lower + replicas
    choices = [str(v) for v in (lower, upper) if v > 0]
    return f"use a multiple of {replicas}: {' or '.join(choices)} (--set data.batch_size=...)"
