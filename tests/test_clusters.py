"""Jobs started by a cluster scheduler (issue 24): Slurm and Open MPI detected from their environment, and
one seed for every process of a job whatever started it (launch, explicit flags, a detected cluster).

The process tests run two real processes on 127.0.0.1 with the variables `srun` / `mpirun` would set for
a 2-task step on one node (the ones JAX's ``jax/_src/clusters/slurm_cluster.py`` and ``ompi_cluster.py``
read); ``JAX_COORDINATOR_PORT`` (JAX's own override) points the coordinator at a free port. The spec has
no `train.seed`: the processes must agree on one or JAX refuses their different initial weights.
"""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from graphspec.run import distribute, launch

ROOT = Path(__file__).resolve().parents[1]

SEEDLESS = """\
graphspec: 1
name: tiny
inputs:
  x: {shape: [4]}
nodes:
  h: {type: Dense, units: 8, activation: relu}
  y: {type: Dense, units: 1}
models:
  tiny: {outputs: y}
compile:
  optimizer: {type: Adam, learning_rate: 0.01}
  loss: mse
data:
  source: {kind: synthetic, samples: 64}
  batch_size: 16
train:
  epochs: 1
  tensorboard: false
"""


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("KERAS_DISTRIBUTION", "SLURM_", "OMPI_", "JAX_COORDINATOR"))}
    env.update(PYTHONPATH=str(ROOT), CUDA_VISIBLE_DEVICES="", TF_CPP_MIN_LOG_LEVEL="3", **extra)
    env.pop("KERAS_BACKEND", None)
    env.pop("XLA_FLAGS", None)
    return env


def _spec(tmp: Path) -> Path:
    path = tmp / "tiny.yaml"
    path.write_text(SEEDLESS, encoding="utf-8")
    return path


def _runs(cwd: Path) -> list[Path]:
    return sorted(p for p in (cwd / "runs" / "tiny").glob("*") if p.is_dir())


def _fingerprints(outputs: list[str]) -> set[str]:
    return {line.split()[-1] for text in outputs for line in text.splitlines() if ": weights " in line}


# -- detection and precedence (no backend) ------------------------------------------------------------------
SLURM = {"SLURM_JOB_ID": "4242", "SLURM_STEP_NODELIST": "node[001-002]", "SLURM_NTASKS": "4", "SLURM_PROCID": "3",
         "SLURM_LOCALID": "1", "SLURM_STEP_NUM_NODES": "2"}
OMPI = {"OMPI_MCA_orte_hnp_uri": "1531576320.0;tcp://10.0.0.1:34911", "OMPI_COMM_WORLD_SIZE": "2",
        "OMPI_COMM_WORLD_RANK": "0", "OMPI_COMM_WORLD_LOCAL_RANK": "0"}


def test_slurm_and_open_mpi_jobs_are_detected_and_flags_win() -> None:
    p = distribute.plan(None, environ=SLURM)
    assert p.cluster is not None and (p.cluster.kind, p.cluster.job_id, p.cluster.local_id) == ("slurm", "4242", 1)
    assert (p.strategy, p.num_processes, p.process_id, p.coordinator, p.chief) == ("data-parallel", 4, 3, None, False)
    assert "detected a Slurm job (4242): 4 processes, this is process 3" in (distribute.detected_line(p) or "")
    q = distribute.plan(None, environ=OMPI)
    assert q.cluster is not None and (q.cluster.kind, q.num_processes, q.chief) == ("ompi", 2, True)
    # One task (sbatch without srun, `srun -n 1`) is no distributed job.
    assert distribute.plan(None, environ={**SLURM, "SLURM_NTASKS": "1"}) == distribute.Plan()
    # Explicit flags and Keras's variables win over the scheduler's environment.
    flags = distribute.plan(None, coordinator="h:9", num_processes=2, process_id=1, environ=SLURM)
    assert (flags.cluster, flags.coordinator, flags.num_processes, flags.process_id) == (None, "h:9", 2, 1)
    keras_env = {**SLURM, distribute.ENV_ADDRESSES: "h:9", distribute.ENV_PROCESSES: "2",
                 distribute.ENV_PROCESS_ID: "0"}
    assert distribute.plan(None, environ=keras_env).cluster is None


def test_devices_per_process_follow_the_node_index_or_cuda_visible_devices() -> None:
    p = distribute.plan(None, environ=SLURM)
    assert distribute.local_device_ids(p, {}) is None  # JAX's default: the GPU numbered like SLURM_LOCALID
    two = distribute.plan(None, devices=2, environ=SLURM)
    assert distribute.local_device_ids(two, {}) == [2, 3]  # node index 1, 2 devices each
    assert distribute.local_device_ids(two, {"CUDA_VISIBLE_DEVICES": "5,6,7"}) == [0, 1]
    assert distribute.local_device_ids(p, {"CUDA_VISIBLE_DEVICES": "5"}) == [0]
    assert distribute.local_device_ids(distribute.Plan(), {}) is None


# -- two processes, one seed, every way a job starts -------------------------------------------------------
def _slurm_env(i: int, port: int) -> dict[str, str]:
    return _env(SLURM_JOB_ID="777", SLURM_STEP_NODELIST="127.0.0.1", SLURM_NTASKS="2", SLURM_PROCID=str(i),
                SLURM_LOCALID=str(i), SLURM_STEP_NUM_NODES="1", SLURM_NODEID="0", JAX_COORDINATOR_PORT=str(port))


def _ompi_env(i: int, port: int) -> dict[str, str]:
    return _env(OMPI_MCA_orte_hnp_uri="3187671040.0;tcp://127.0.0.1:45000", OMPI_COMM_WORLD_SIZE="2",
                OMPI_COMM_WORLD_RANK=str(i), OMPI_COMM_WORLD_LOCAL_RANK=str(i), JAX_COORDINATOR_PORT=str(port))


def _flags_env(i: int, port: int) -> dict[str, str]:
    return _env()


@pytest.mark.keras
@pytest.mark.slow
@pytest.mark.parametrize("how", ["flags", "slurm", "ompi"])
def test_two_processes_of_a_job_agree_on_the_seed(tmp_path: Path, how: str) -> None:
    spec = _spec(tmp_path)
    port = launch.free_port()
    make_env = {"flags": _flags_env, "slurm": _slurm_env, "ompi": _ompi_env}[how]
    procs = []
    for i in range(2):
        cmd = [sys.executable, "-m", "graphspec", "train", str(spec), "--backend", "jax"]
        if how == "flags":
            cmd += ["--coordinator", f"127.0.0.1:{port}", "--num-processes", "2", "--process-id", str(i)]
        procs.append(subprocess.Popen(cmd, cwd=tmp_path, env=make_env(i, port), stdout=subprocess.PIPE,
                                      stderr=subprocess.STDOUT, text=True))
    outputs = [p.communicate(timeout=240)[0] for p in procs]
    assert [p.returncode for p in procs] == [0, 0], outputs[0][-3000:] + outputs[1][-3000:]
    (run,) = _runs(tmp_path)  # one run folder, written by process 0
    assert len(_fingerprints(outputs)) == 1, outputs  # the same weights in both
    env = json.loads((run / "environment.json").read_text())["distribution"]
    assert env["processes"] == 2 and env["strategy"] == "data-parallel"
    if how == "flags":
        assert "cluster" not in env and "detected" not in outputs[0]
    else:
        assert env["cluster"]["kind"] == how and env["cluster"]["processes"] == 2
        title = {"slurm": "Slurm", "ompi": "Open MPI"}[how]
        assert f"detected a {title} job" in outputs[0] and "detected" not in outputs[1]
    seed = int(str(json.loads((run / "state.json").read_text())["seed"]))
    assert f"seed: {seed}" in (run / "spec.yaml").read_text()  # recorded once, in process 0's run folder


@pytest.mark.keras
@pytest.mark.slow
def test_launch_with_a_seedless_spec(tmp_path: Path) -> None:
    spec = _spec(tmp_path)
    out = io.StringIO()
    old = Path.cwd()
    os.chdir(tmp_path)
    try:
        code = launch.launch(["train", str(spec), "--backend", "jax"], workers=2, out=out, env=_env())
    finally:
        os.chdir(old)
    assert code == 0, out.getvalue()[-3000:]
    assert len(_runs(tmp_path)) == 1 and len(_fingerprints([out.getvalue()])) == 1, out.getvalue()
