"""Running on JAX: training without TensorFlow, determinism, predictions of a TensorFlow run, resuming on
the run's own backend, and exports from a JAX process.

The JAX side runs in subprocesses (`graphspec ... --backend jax`, see tests/test_backends.py);
this process runs Keras on TensorFlow.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from typer.testing import CliRunner

from graphspec.build import backend
from graphspec.cli.app import app

from .conftest import SPECS, Started, graphspec_cli, started_early
from .test_backends import NO_TF, graphspec, graphspec_started

pytestmark = [pytest.mark.keras, pytest.mark.skipif(not backend.is_installed("jax"), reason="JAX is not installed")]

SMALL = """\
graphspec: 1
name: small
inputs:
  x: {shape: [6]}
nodes:
  hidden: {type: Dense, units: 16, activation: relu}
  dropout: {type: Dropout, rate: 0.3}
  out: {type: Dense, units: 3}
compile:
  optimizer: {type: Adam, learning_rate: 0.01}
  loss: {type: SparseCategoricalCrossentropy, from_logits: true}
  metrics: [accuracy]
data:
  source: {kind: synthetic, samples: 160, test_samples: 32}
  validation_split: 0.25
  batch_size: 16
train:
  epochs: 2
  seed: 5
  tensorboard: false
"""


def _started(*args: str, **kwargs: Any) -> Future[Any]:
    """`graphspec(*args, **kwargs)` started in a thread of its own: a process that does not depend on what this
    one does next runs beside it (a test waits less on 2 cores; each process still starts alone and cold)."""
    pool = ThreadPoolExecutor(max_workers=1)
    future = pool.submit(graphspec, *args, **kwargs)
    pool.shutdown(wait=False)
    return future


def _history(run: Path) -> list[dict[str, Any]]:
    rows = json.loads((run / "history.json").read_text())
    return [{k: v for k, v in r.items() if k != "time"} for r in rows]


def start_digits(folder: Path) -> subprocess.Popen[str] | None:
    """digits.yaml trained on JAX without TensorFlow, into folder/run (tests.conftest.EARLY starts it with the
    session); None without JAX (the test skips)."""
    if not backend.is_installed("jax"):
        return None
    return graphspec_started(folder, "train", str(SPECS / "digits.yaml"), "--backend", "jax", "--run-dir",
                             str(folder / "run"), "--epochs", "15", blocked=NO_TF)


@pytest.mark.slow
def test_digits_trains_on_jax_without_tensorflow(early_processes: dict[str, Started], tmp_path: Path) -> None:
    """`graphspec train specs/digits.yaml --backend jax` where TensorFlow cannot be imported: >= 97% test accuracy.

    Half of the spec's 30 epochs: the bar is reached by then (0.983 after 12 epochs), so the test asks more of
    JAX's training than the README does, for half the time (TensorFlow runs all 30: test_train_cli.py)."""
    started = started_early(early_processes, "test_backends_run.py::test_digits_trains_on_jax_without_tensorflow",
                            tmp_path, start_digits)
    proc, run = started.result(), started.folder / "run"
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "Traceback" not in proc.stderr
    assert "no TensorBoard logs" in proc.stderr  # a note, not a crash
    results = json.loads((run / "results.json").read_text())
    assert results["test"]["accuracy"] >= 0.97, results
    env = json.loads((run / "environment.json").read_text())
    assert env["backend"] == "jax" and env["devices"]
    assert json.loads((run / "state.json").read_text())["backend"] == "jax"


def test_predict_of_a_tensorflow_run_is_the_same_on_jax(tmp_path: Path) -> None:
    run = tmp_path / "run"
    result = CliRunner().invoke(app, ["train", str(SPECS / "digits.yaml"), "--epochs", "2", "--run-dir", str(run),
                                      "--backend", "tensorflow", "--set", "train.tensorboard=false"])
    assert result.exit_code == 0, result.output
    assert json.loads((run / "environment.json").read_text())["backend"] == "tensorflow"
    from sklearn.datasets import load_digits

    np.savez(tmp_path / "in.npz", x=load_digits().data[:200])
    tf_out, jax_out = tmp_path / "tf.npz", tmp_path / "jax.npz"
    on_jax = _started("predict", str(run), "-i", str(tmp_path / "in.npz"), "-o", str(jax_out), "--backend", "jax",
                      blocked=NO_TF)
    result = CliRunner().invoke(app, ["predict", str(run), "-i", str(tmp_path / "in.npz"), "-o", str(tf_out),
                                      "--backend", "tensorflow"])
    assert result.exit_code == 0, result.output
    proc = on_jax.result()
    assert proc.returncode == 0, proc.stderr[-3000:]
    with np.load(tf_out) as a, np.load(jax_out) as b:
        assert a.files == b.files == ["logits"]
        assert a["logits"].shape == (200, 10)
        np.testing.assert_allclose(b["logits"], a["logits"], atol=1e-5, rtol=1e-5)
        assert (a["logits"].argmax(1) == b["logits"].argmax(1)).all()


@pytest.mark.slow
def test_a_run_resumes_and_evaluates_on_the_backend_it_trained_on(tmp_path: Path) -> None:
    """A JAX run of 1 epoch, resumed to 2 where KERAS_BACKEND says tensorflow, continues on JAX and equals a run
    of the same seed trained straight through: the same seed trains the same model twice on JAX, and a resume
    continues it exactly (one comparison, one JAX training fewer). Then evaluate, and a resume told otherwise."""
    spec = tmp_path / "small.yaml"
    spec.write_text(SMALL)
    straight, run = tmp_path / "straight", tmp_path / "run"
    first = _started("train", str(spec), "--backend", "jax", "--run-dir", str(straight), blocked=NO_TF)
    modules = tmp_path / "modules.txt"
    proc = graphspec("train", str(spec), "--backend", "jax", "--epochs", "1", "--run-dir", str(run),
                     "--set", "train.tensorboard=true", env={"GRAPHSPEC_TEST_MODULES": str(modules)})
    assert proc.returncode == 0, proc.stderr[-3000:]
    # TensorFlow is installed, but a JAX run never imports it: not to seed (Keras's set_random_seed would), not to
    # save a checkpoint (Keras's serializer would), not for TensorBoard logs (Keras's callback writes them with
    # tf.summary; graphspec.run.tb_events with TensorBoard's protos): 2.5 s of CPU a process.
    assert "jax" in modules.read_text().split() and "tensorflow" not in modules.read_text().split()
    proc = first.result()
    assert proc.returncode == 0, proc.stderr[-3000:]
    # No --backend: the default would be tensorflow (installed first, and KERAS_BACKEND says so).
    proc = graphspec("train", str(spec), "--resume", "--run-dir", str(run), "--epochs", "2",
                     env={"KERAS_BACKEND": "tensorflow"})
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "using jax, the backend the run was trained on (KERAS_BACKEND=tensorflow is not used" in proc.stderr
    state = json.loads((run / "state.json").read_text())
    assert state["backend"] == "jax" and state["epochs_completed"] == 2
    assert _history(run) == _history(straight)
    assert len(_history(straight)) == 2
    a, b = (json.loads((r / "results.json").read_text())["test"] for r in (straight, run))
    assert a == b
    told = tmp_path / "told"  # the same run, resumed otherwise below while `run` is evaluated beside it
    shutil.copytree(run, told)
    evaluated = _started("evaluate", str(run), "--format", "json")
    # Told otherwise: it continues on TensorFlow (this process's backend), and says so in the state.
    proc = graphspec_cli("train", spec, "--resume", "--run-dir", told, "--epochs", "3", "--backend", "tensorflow")
    assert proc.returncode == 0, proc.stderr[-3000:]
    state = json.loads((told / "state.json").read_text())
    assert state["backend"] == "tensorflow" and state["epochs_completed"] == 3
    # Its TensorBoard logs: epochs 1 and 2 written on JAX without TensorFlow, epoch 3 by Keras's tf.summary, one
    # series per tag, as the readers see them: the same tags, plugins and values as the history.
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    from tensorboard.util import tensor_util

    history = json.loads((told / "history.json").read_text())
    for folder, prefix in (("train", ""), ("validation", "val_")):
        files = sorted((told / "tensorboard" / folder).glob("events.out.tfevents.*"))
        assert len(files) == 3, files  # JAX's first run and resume, TensorFlow's resume
        events = EventAccumulator(str(told / "tensorboard" / folder), size_guidance={"tensors": 0},
                                  purge_orphaned_data=False)
        events.Reload()
        for name in ("loss", "accuracy") + (("learning_rate",) if folder == "train" else ()):
            # in step order: the files are read by name, whose timestamps are whole seconds
            series = sorted(events.Tensors(f"epoch_{name}"), key=lambda e: e.step)
            assert [e.step for e in series] == [0, 1, 2]
            got = [float(tensor_util.make_ndarray(e.tensor_proto)) for e in series]
            assert got == pytest.approx([row[prefix + name] for row in history], rel=1e-6)
            assert events.SummaryMetadata(f"epoch_{name}").plugin_data.plugin_name == "scalars"
        if folder == "train":  # the model for TensorBoard's graph plugin, once per training
            assert [e.step for e in events.Tensors("keras")] == [0, 0, 0]
            assert events.SummaryMetadata("keras").plugin_data.plugin_name == "graph_keras_model"
    assert json.loads((told / "environment.json").read_text())["backend"] == "jax"  # where it started
    proc = evaluated.result()
    assert proc.returncode == 0, proc.stderr[-3000:]
    expected = json.loads((run / "results.json").read_text())["test"]
    got = json.loads(proc.stdout)
    assert got.keys() == expected.keys()
    for k in got:
        assert got[k] == pytest.approx(expected[k], abs=1e-6)


@pytest.mark.slow
def test_savedmodel_export_from_jax_and_tensorflow_only_formats(tmp_path: Path) -> None:
    spec = str(SPECS / "mnist_mlp.yaml")
    saved = _started("save", spec, "-o", str(tmp_path / "sm"), "--format", "savedmodel", "--backend", "jax")
    proc = graphspec("save", spec, "-o", str(tmp_path / "m.tflite"), "--backend", "jax", blocked=NO_TF)
    sm = saved.result()
    assert sm.returncode == 0, sm.stderr[-3000:]
    assert (tmp_path / "sm" / "saved_model.pb").is_file()
    assert proc.returncode == 2
    lines = [line for line in proc.stderr.strip().splitlines() if not line.startswith("graphspec: importing plugins")]
    assert lines == ["error: TFLite export needs TensorFlow, which is not installed: pip install "
                     "'keras-graphspec[tensorflow]' (the model's weights may come from any backend)"]


def test_onnx_export_names_what_it_needs_or_writes_the_file(tmp_path: Path) -> None:
    import importlib.util

    from graphspec.run.artifacts import ONNX_NEEDS

    target = tmp_path / "m.onnx"
    result = CliRunner().invoke(app, ["save", str(SPECS / "mnist_mlp.yaml"), "-o", str(target)])
    missing = [m for m in ONNX_NEEDS[backend.active() or "tensorflow"] if importlib.util.find_spec(m) is None]
    if missing:
        assert result.exit_code == 2
        assert "ONNX export on the tensorflow backend needs" in result.output and missing[0] in result.output
        assert not target.exists()
    else:
        assert result.exit_code == 0, result.output
        assert target.stat().st_size > 0


@pytest.mark.skipif(not backend.is_installed("torch"), reason="PyTorch is not installed (CI leaves it out: a large wheel)")
def test_a_torch_run_trains_and_predicts_the_same_on_tensorflow(tmp_path: Path) -> None:
    run = tmp_path / "run"
    proc = graphspec("train", str(SPECS / "digits.yaml"), "--backend", "torch", "--epochs", "2", "--run-dir",
                     str(run), "--set", "train.tensorboard=false")
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert json.loads((run / "environment.json").read_text())["backend"] == "torch"
    assert json.loads((run / "results.json").read_text())["test"]["accuracy"] > 0.9
    from sklearn.datasets import load_digits

    np.savez(tmp_path / "in.npz", x=load_digits().data[:200])
    outs = {b: tmp_path / f"{b}.npz" for b in ("torch", "tensorflow")}
    on_torch = _started("predict", str(run), "-i", str(tmp_path / "in.npz"), "-o", str(outs["torch"]),
                        "--backend", "torch")  # beside the TensorFlow prediction in this process
    result = graphspec_cli("predict", run, "-i", tmp_path / "in.npz", "-o", outs["tensorflow"], "--backend", "tensorflow")
    assert result.returncode == 0, result.stderr[-3000:]
    proc = on_torch.result()
    assert proc.returncode == 0, proc.stderr[-3000:]
    with np.load(outs["torch"]) as a, np.load(outs["tensorflow"]) as b:
        np.testing.assert_allclose(b["logits"], a["logits"], atol=1e-4, rtol=1e-4)
