"""Distributed training (issue 10): the plan and its errors, batch shards, the launcher, and training on
2 logical CPU devices (mirrored on TensorFlow, data-parallel on JAX) and on 2 processes on loopback.

Everything runs on the CPU and on 127.0.0.1. Training runs in subprocesses: a process fixes its
Keras backend, its JAX device count and its TensorFlow logical devices when they start.
"""

from __future__ import annotations

import io
import json
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from graphspec.errors import UsageError
from graphspec.run import distribute, launch

from .conftest import JAX_CACHE

ROOT = Path(__file__).resolve().parents[1]
# Loss curves of 2 processes x 1 device vs 1 process x 1 device, same seed and global batch: the same
# arithmetic up to the order of a float32 sum (the gradient all-reduce).
LOSS_RTOL = 1e-4

TINY = """\
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
  source: {kind: synthetic, samples: 256}
  batch_size: BATCH
train:
  epochs: EPOCHS
  seed: 1
  tensorboard: false
"""


def _spec(tmp: Path, *, batch: int = 32, epochs: int = 3) -> Path:
    path = tmp / "tiny.yaml"
    path.write_text(TINY.replace("BATCH", str(batch)).replace("EPOCHS", str(epochs)), encoding="utf-8")
    return path


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("KERAS_DISTRIBUTION")}
    env.update(JAX_CACHE, PYTHONPATH=str(ROOT), CUDA_VISIBLE_DEVICES="", TF_CPP_MIN_LOG_LEVEL="3")
    env.pop("KERAS_BACKEND", None)
    env.pop("XLA_FLAGS", None)
    return env


def _graphspec(*args: str, cwd: Path, timeout: int = 300) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "graphspec", *args], capture_output=True, text=True, cwd=cwd,
                          env=_env(), timeout=timeout)


def _beside(*args: str, cwd: Path, **env: str) -> subprocess.Popen[str]:
    """`graphspec ARGS` started now, to run beside what the test does next: a one-process reference run that
    depends on nothing the launch does (a test waits less on 2 cores; every process still starts cold)."""
    return subprocess.Popen([sys.executable, "-m", "graphspec", *args], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, cwd=cwd, env={**_env(), **env})


def _finished(proc: subprocess.Popen[str], timeout: int = 300) -> None:
    _out, err = proc.communicate(timeout=timeout)
    assert proc.returncode == 0, err[-3000:]


def _runs(cwd: Path) -> list[Path]:
    return sorted(p for p in (cwd / "runs" / "tiny").glob("*") if p.is_dir())


def _losses(run: Path) -> list[float]:
    return [row["loss"] for row in json.loads((run / "history.json").read_text())]


# -- the plan: options, environment, impossible combinations (no backend) ---------------------------------
def test_the_plan_reads_keras_distribution_variables() -> None:
    env = {distribute.ENV_ADDRESSES: "10.0.0.1:1234,10.0.0.2:1234", distribute.ENV_PROCESSES: "2",
           distribute.ENV_PROCESS_ID: "1"}
    p = distribute.plan(None, environ=env)
    assert (p.strategy, p.coordinator, p.num_processes, p.process_id, p.chief) == (
        "data-parallel", "10.0.0.1:1234", 2, 1, False)
    q = distribute.plan("data-parallel", coordinator="h:9", num_processes=4, process_id=0, environ=env)
    assert (q.coordinator, q.num_processes, q.process_id, q.chief) == ("h:9", 4, 0, True)
    assert distribute.plan(None, environ={}) == distribute.Plan()


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"strategy": "model-parallel"}, "choose one of data-parallel, mirrored"),
    ({"num_processes": 2, "process_id": 0}, "--coordinator HOST:PORT"),
    ({"num_processes": 2, "process_id": 2, "coordinator": "h:1"}, "not one of the 2 processes"),
    ({"coordinator": "no port", "num_processes": 2}, "is not HOST:PORT"),
    ({"devices": 2}, "without --distribute"),
])
def test_plan_errors_are_usage_errors(kwargs: dict[str, Any], message: str) -> None:
    strategy = kwargs.pop("strategy", None)
    with pytest.raises(UsageError, match=message):
        distribute.plan(strategy, environ={}, **kwargs)


@pytest.mark.parametrize(("strategy", "processes", "backend", "message"), [
    ("mirrored", 1, "jax", "use --backend tensorflow"),
    ("mirrored", 2, "tensorflow", "keras-team/keras/issues/20585"),
    ("data-parallel", 2, "tensorflow", "several processes .*keras-team/keras/issues/20585"),
    ("data-parallel", 1, "torch", "runs on JAX"),
])
def test_impossible_combinations_fail_before_anything_starts(strategy: str, processes: int, backend: str,
                                                             message: str) -> None:
    p = distribute.Plan(strategy, None, "h:1" if processes > 1 else None, processes, 0)
    with pytest.raises(UsageError, match=message):
        distribute.check_backend(p, backend)


def test_each_process_reads_its_slice_of_every_global_batch() -> None:
    batch = np.arange(10)
    parts = [distribute.Shard(i, 2, 4).part(batch) for i in range(2)]
    assert [p.tolist() for p in parts] == [[0, 1, 2, 3], [4, 5, 6, 7]]  # trimmed to 8, a multiple of 4
    assert distribute.Shard(0, 1, 2).part(np.arange(5)).tolist() == [0, 1, 2, 3]
    assert distribute.Shard().part(batch) is batch
    # 100 samples in global batches of 32 over 4 replicas: 3 full batches, then 4 of the last 4 kept
    assert distribute.Shard(0, 2, 4).steps(100, 32) == 4 and distribute.Shard(0, 2, 4).left_out(100, 32) == 0
    # 99: the last 3 samples are fewer than the replicas: left out
    assert distribute.Shard(0, 2, 4).steps(99, 32) == 3 and distribute.Shard(0, 2, 4).left_out(99, 32) == 3


def test_prepare_sets_the_jax_device_count_before_jax_starts(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XLA_FLAGS", "--xla_force_host_platform_device_count=8 --other")
    distribute.prepare(distribute.Plan("data-parallel", 2), "jax")
    assert os.environ["XLA_FLAGS"].split() == ["--other", "--xla_force_host_platform_device_count=2"]


def test_the_worker_command_adds_the_strategy_and_devices() -> None:
    cmd = launch.worker_command(["train", "s.yaml", "--backend", "jax"], 2, python="py")
    assert cmd == ["py", "-m", "graphspec", "train", "s.yaml", "--backend", "jax", "--distribute", "data-parallel",
                   "--devices", "2"]


def test_launch_refuses_an_uneven_global_batch_before_any_worker_starts(tmp_path: Path) -> None:
    spec = _spec(tmp_path, batch=33)
    proc = _graphspec("launch", "--local", "2", "--", "train", str(spec), "--backend", "jax", cwd=tmp_path, timeout=60)
    assert proc.returncode == 1, proc.stderr
    assert f"{spec}:15:3: error[GS414]" in proc.stderr and "use a multiple of 2: 32 or 34" in proc.stderr
    assert "[0]" not in proc.stdout and not (tmp_path / "runs").exists()


def test_launch_runs_train_only(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="runs `train`"):
        launch.preflight(["evaluate", "x"], 2, None)
    with pytest.raises(UsageError, match="sets --process-id"):
        launch.preflight(["train", str(_spec(tmp_path)), "--process-id", "1"], 2, None)


# -- training on 2 logical devices, one process ------------------------------------------------------------
@pytest.fixture(scope="module")
def logical_runs(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
                 ) -> Iterator[dict[str, tuple[Path, subprocess.Popen[str]]]]:
    """The selected cases of test_two_logical_devices_in_one_process, started together here (each a process
    of its own in a folder of its own, depending on nothing else): this process only waits for them, so on 2
    cores they run side by side instead of one after the other. Case id -> (its folder, its process)."""
    started: dict[str, tuple[Path, subprocess.Popen[str]]] = {}
    for item in request.session.items:
        if getattr(item, "function", None) is test_two_logical_devices_in_one_process:
            strategy, backend = item.callspec.params["strategy"], item.callspec.params["backend"]
            folder = tmp_path_factory.mktemp(f"logical-{backend}")
            started[item.callspec.id] = (folder, _beside(
                "train", str(_spec(folder)), "--backend", backend, "--distribute", strategy, "--devices", "2",
                cwd=folder))
    yield started
    for _, proc in started.values():  # a test that did not wait for its process (it failed, the run stopped)
        if proc.poll() is None:
            proc.kill()
            proc.communicate()


@pytest.mark.keras
@pytest.mark.slow
@pytest.mark.parametrize(("strategy", "backend"), [("mirrored", "tensorflow"), ("data-parallel", "jax")])
def test_two_logical_devices_in_one_process(logical_runs: dict[str, tuple[Path, subprocess.Popen[str]]],
                                            request: pytest.FixtureRequest, strategy: str, backend: str) -> None:
    folder, started = logical_runs[request.node.callspec.id]
    _out, err = started.communicate(timeout=300)
    assert started.returncode == 0, err[-3000:]
    assert "global batch 32, 16 per replica" in err
    (run,) = _runs(folder)
    dist = json.loads((run / "environment.json").read_text())["distribution"]
    assert dist["strategy"] == strategy and dist["replicas"] == 2 and len(dist["devices"]) == 2
    assert (dist["global_batch"], dist["per_replica_batch"], dist["processes"]) == (32, 16, 1)
    assert json.loads((run / "state.json").read_text())["status"] == "completed"
    assert len(_losses(run)) == 3 and all(np.isfinite(_losses(run)))


# -- 2 processes on loopback (JAX) -------------------------------------------------------------------------
def _launch(args: list[str], cwd: Path, on_start: Any = None) -> tuple[int, str]:
    out = io.StringIO()
    old = Path.cwd()
    os.chdir(cwd)
    try:
        code = launch.launch(args, workers=2, out=out, env=_env(), on_start=on_start)
    finally:
        os.chdir(old)
    return code, out.getvalue()


@pytest.mark.keras
@pytest.mark.slow
def test_two_processes_train_like_one(tmp_path: Path) -> None:
    spec = _spec(tmp_path)
    single = tmp_path / "single"
    single.mkdir()
    alone_proc = _beside("train", str(spec), "--backend", "jax", cwd=single)
    code, out = _launch(["train", str(spec), "--backend", "jax"], tmp_path)
    assert code == 0, out[-3000:]
    (run,) = _runs(tmp_path)  # only process 0 made a run folder
    fingerprints = {line.split()[0]: line.split()[-1] for line in out.splitlines() if ": weights " in line}
    assert set(fingerprints) == {"[0]", "[1]"} and len(set(fingerprints.values())) == 1, out
    assert "[1] process 1: completed after 3 epochs" in out and "[1] epoch" not in out
    dist = json.loads((run / "environment.json").read_text())["distribution"]
    assert (dist["processes"], dist["replicas"], dist["per_replica_batch"]) == (2, 2, 16)
    # The same global batch and seed in one process, on one device: the same loss curve.
    _finished(alone_proc)
    (alone,) = _runs(single)
    np.testing.assert_allclose(_losses(run), _losses(alone), rtol=LOSS_RTOL)


def _signal_worker_1_after_two_epochs(tmp_path: Path, signum: int, join_s: float
                                      ) -> tuple[Path, list[subprocess.Popen[str]], dict[str, Any]]:
    """`launch --local 2` a 400-epoch run, send `signum` to worker 1 once 2 epochs are trained (in history.json:
    the checkpoint is written once a minute, and at a stop), wait for the end."""
    spec = _spec(tmp_path, epochs=400)
    procs: list[subprocess.Popen[str]] = []
    result: dict[str, Any] = {}

    def run() -> None:
        result["code"], result["out"] = _launch(["train", str(spec), "--backend", "jax"], tmp_path,
                                                on_start=procs.extend)

    thread = threading.Thread(target=run)
    thread.start()
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline:
        histories = list((tmp_path / "runs" / "tiny").glob("*/history.json"))
        if histories and len(json.loads(histories[0].read_text() or "[]")) >= 2:
            break
        time.sleep(0.2)
    else:
        pytest.fail("no epoch completed")
    os.kill(procs[1].pid, signum)
    thread.join(timeout=join_s)
    assert not thread.is_alive()
    return spec, procs, result


@pytest.mark.keras
@pytest.mark.slow
def test_killing_one_worker_stops_the_other_and_the_run_resumes(tmp_path: Path,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    temp = tmp_path / "tmp"  # the launch's own temporary folder (its workers' scratch run folders) goes here
    temp.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(temp))
    monkeypatch.setenv("TMPDIR", str(temp))  # and the workers'
    spec, procs, result = _signal_worker_1_after_two_epochs(tmp_path, signal.SIGKILL, 120)
    assert result["code"] == 128 + signal.SIGKILL, result["out"][-3000:]
    assert all(p.returncode is not None and p.returncode != 0 for p in procs)
    # worker 1 could not remove its scratch run folder: the launch did (a folder Keras was saving into when
    # process 0 was stopped may stay: not graphspec's)
    assert not list(temp.rglob("graphspec-*"))
    (run,) = _runs(tmp_path)
    done = json.loads((run / "state.json").read_text())["epochs_completed"]
    assert 0 <= done < 400  # the last checkpoint: up to a minute old (a kill writes nothing); the rest is trained again
    code, out = _launch(["train", str(spec), "--backend", "jax", "--resume", "--run-dir", str(run),
                         "--epochs", str(done + 2)], tmp_path)
    assert code == 0, out[-3000:]
    assert f"resuming {run} at epoch {done + 1}/{done + 2}" in out
    state = json.loads((run / "state.json").read_text())
    assert (state["status"], state["epochs_completed"]) == ("completed", done + 2)
    assert [row["epoch"] for row in json.loads((run / "history.json").read_text())] == list(range(1, done + 3))
    assert _runs(tmp_path) == [run]


@pytest.mark.keras
@pytest.mark.slow
def test_sigterm_to_one_worker_stops_both_at_the_same_epoch(tmp_path: Path) -> None:
    # A scheduler preempting one host signals that host's process only: the processes agree at the end of
    # the epoch (an all-gather of the stop flag) and stop together, with a consistent run folder. Within 60 s:
    # well inside the launcher's grace period, so the stop is agreed, not timed out.
    _, procs, result = _signal_worker_1_after_two_epochs(tmp_path, signal.SIGTERM, 60)
    assert result["code"] == 143, result["out"][-3000:]
    assert [p.returncode for p in procs] == [143, 143], result["out"][-3000:]
    (run,) = _runs(tmp_path)
    state = json.loads((run / "state.json").read_text())
    assert state["status"] == "interrupted" and 2 <= state["epochs_completed"] < 400
    assert len(json.loads((run / "history.json").read_text())) == state["epochs_completed"]
    fingerprints = {line.split()[0]: line.split()[-1] for line in result["out"].splitlines() if ": weights " in line}
    assert set(fingerprints) == {"[0]", "[1]"} and len(set(fingerprints.values())) == 1, result["out"][-3000:]


IMAGES = """\
graphspec: 1
name: tiny
inputs:
  img: {shape: [6, 6, 3]}
nodes:
  flat: {type: Flatten}
  out: {type: Dense, units: 3}
models:
  m: {outputs: out}
compile:
  optimizer: {type: Adam, learning_rate: 0.01}
  loss: {type: SparseCategoricalCrossentropy, from_logits: true}
data:
  source: {kind: images, train: shapes/train, test: shapes/test, image_size: [8, 8]}
  transforms: {img: [{divide: 255}]}
  augment:
    img:
      - {type: RandomFlip, mode: horizontal_and_vertical}
      - {type: RandomCrop, height: 6, width: 6}
      - {type: RandomContrast, factor: 0.5}
  batch_size: 8
train: {epochs: 2, seed: 5, tensorboard: false}
"""


@pytest.mark.keras
@pytest.mark.slow
def test_two_processes_feed_exactly_the_augmented_batches_of_one(tmp_path: Path) -> None:
    """A real `launch --local 2` on an image folder with `data.augment`: each process records the batches
    it fed (GRAPHSPEC_DEBUG_AUGMENT); their parts of every step, together, are one process's batch."""
    from tests.test_augment import make_shapes

    make_shapes().generate(tmp_path / "shapes", train=7, test=1, size=8, classes=("circle", "square", "star"))
    spec = tmp_path / "tiny.yaml"
    spec.write_text(IMAGES, encoding="utf-8")  # 21 images: steps of 8, 8 and 5 (4 in 2 processes)
    two, one, single = tmp_path / "fed2", tmp_path / "fed1", tmp_path / "single"
    for folder in (two, one, single):
        folder.mkdir()
    alone = _beside("train", str(spec), "--backend", "jax", "--data-root", str(tmp_path), cwd=single,
                    GRAPHSPEC_DEBUG_AUGMENT=str(one))
    os.environ["GRAPHSPEC_DEBUG_AUGMENT"] = str(two)  # _env() copies it into the workers' environment
    try:
        code, out = _launch(["train", str(spec), "--backend", "jax"], tmp_path)
        assert code == 0, out[-3000:]
    finally:
        os.environ.pop("GRAPHSPEC_DEBUG_AUGMENT", None)
    _finished(alone)
    steps = [f"e{e}-s{s}" for e in range(2) for s in range(3)]
    assert sorted(p.name for p in one.iterdir()) == sorted(f"p0-{k}.npz" for k in steps)
    assert sorted(p.name for p in two.iterdir()) == sorted(f"p{i}-{k}.npz" for i in (0, 1) for k in steps)
    for k in steps:
        alone, parts = np.load(one / f"p0-{k}.npz"), [np.load(two / f"p{i}-{k}.npz") for i in (0, 1)]
        n = 2 * len(parts[0]["y"])
        assert n == (4 if k.endswith("s2") else 8)
        np.testing.assert_array_equal(np.concatenate([p["y"] for p in parts]), alone["y"][:n])
        np.testing.assert_allclose(np.concatenate([p["x"] for p in parts]), alone["x"][:n], rtol=1e-6, atol=1e-6)


@pytest.mark.keras
@pytest.mark.slow
def test_a_process_that_fails_alone_ends_the_launch_in_seconds(tmp_path: Path) -> None:
    """Process 1 meets a corrupt image (its header and end intact: only decoding finds it) while process 0
    waits for it in the step's collective: process 1 names the file and leaves at once (no wait at JAX's
    shutdown barrier, 5 minutes), process 0 reports the lost peer and marks the run failed."""
    from tests.test_augment import make_shapes

    make_shapes().generate(tmp_path / "shapes", train=7, test=1, size=8, classes=("circle", "square", "star"))
    bad = tmp_path / "shapes" / "train" / "circle" / "0002.png"  # seed 5: process 1's, in step 2 of epoch 1
    data = bytearray(bad.read_bytes())
    start = data.index(b"IDAT") + 8
    data[start:start + 12] = bytes(b ^ 0xFF for b in data[start:start + 12])
    bad.write_bytes(bytes(data))
    spec = tmp_path / "tiny.yaml"
    plain = IMAGES.split("  augment:")[0].replace("image_size: [8, 8]", "image_size: [6, 6]")  # no crop
    spec.write_text(plain + "  batch_size: 8\ntrain: {epochs: 50, seed: 5, tensorboard: false}\n", encoding="utf-8")
    started = time.monotonic()
    code, out = _launch(["train", str(spec), "--backend", "jax"], tmp_path)
    elapsed = time.monotonic() - started
    assert code == 1, out[-3000:]
    assert elapsed < 120, f"{elapsed:.0f} s: {out[-3000:]}"
    assert f"[1] {spec}:13:1: error[GS441]: cannot decode the image {bad}" in out, out[-3000:]
    assert "[0] " in out and "error[GS432]: another process of this training stopped" in out, out[-3000:]
    (run,) = _runs(tmp_path)
    state = json.loads((run / "state.json").read_text())
    assert state["status"] == "failed" and "another process of this training stopped" in state["message"]
