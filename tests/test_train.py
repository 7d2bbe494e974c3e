"""graphspec.run.trainer and graphspec.run.inference through their library API: run folders, resume, NaN,
callbacks, evaluate, predict, export, and the atomic artifact helpers."""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from graphspec.run import artifacts

from .conftest import SPECS

pytestmark = pytest.mark.keras

TINY = """\
graphspec: 1
name: tiny
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
  source: {kind: synthetic, samples: 96, test_samples: 24}
  validation_split: 0.25
  batch_size: 16
train:
  epochs: 3
  seed: 7
"""


def tiny(tmp_path: Path, extra: str = "", name: str = "tiny.yaml") -> Path:
    path = tmp_path / name
    path.write_text(TINY + extra)
    return path


def run(spec: Path, **kwargs: Any) -> Any:
    from rich.console import Console

    from graphspec.run import trainer as train

    console = Console(file=open("/dev/null", "w"), width=120)  # noqa: SIM115
    return train.train(spec, console=console, live=False, **kwargs)


def test_run_folder_holds_every_artifact(tmp_path: Path) -> None:
    from graphspec.build.backend import keras

    result = run(tiny(tmp_path), runs_root=tmp_path / "runs", sets=["data.cache=true"])
    assert result.exit_code == 0 and result.status == "completed" and result.epochs_done == 3
    folder = result.run_dir
    assert folder.parent == tmp_path / "runs" / "tiny"
    for name in ("spec.yaml", "environment.json", "metrics.csv", "history.json", "best.keras", "last.keras",
                 "state.json", "results.json"):
        assert (folder / name).is_file(), name
    assert list((folder / "tensorboard" / "train").glob("events.out.tfevents.*"))
    assert list((folder / "tensorboard" / "validation").glob("events.out.tfevents.*"))
    rows = list(csv.DictReader((folder / "metrics.csv").open()))
    assert [r["epoch"] for r in rows] == ["1", "2", "3"]
    assert set(rows[0]) >= {"loss", "accuracy", "val_loss", "val_accuracy", "learning_rate", "time"}
    history = json.loads((folder / "history.json").read_text())
    assert [h["epoch"] for h in history] == [1, 2, 3] and history == result.history
    env = json.loads((folder / "environment.json").read_text())
    assert {"tensorflow", "keras", "numpy", "python", "graphspec"} <= set(env["versions"])
    state = json.loads((folder / "state.json").read_text())
    assert state["status"] == "completed" and state["epochs_completed"] == 3
    assert state["best"]["monitor"] == "val_loss" and (folder / state["checkpoint"]).is_file()
    assert json.loads((folder / "results.json").read_text())["test"] == result.test_metrics
    assert set(result.test_metrics) == {"loss", "accuracy"}
    # The resolved spec validates on its own and reproduces the run's settings.
    from graphspec import compiler

    again = compiler.check(folder / "spec.yaml")
    assert again.ok and again.spec.train.seed == 7 and again.spec.data.cache is True  # type: ignore[union-attr]
    for name in ("best.keras", "last.keras"):
        model = keras.saving.load_model(folder / name)
        assert model.count_params() == 6 * 16 + 16 + 16 * 3 + 3
    assert not list(folder.rglob(".*tmp*")), "temporary files left behind"


def test_resume_continues_exactly(tmp_path: Path) -> None:
    """Two epochs, then --resume to five: the same metrics as five epochs straight (dropout included)."""
    spec = tiny(tmp_path)
    straight = run(spec, epochs=5, run_dir=tmp_path / "straight")
    first = run(spec, epochs=2, run_dir=tmp_path / "split")
    assert first.epochs_done == 2
    resumed = run(spec, epochs=5, run_dir=tmp_path / "split", resume=True)
    assert resumed.status == "completed" and resumed.epochs_done == 5
    assert [h["epoch"] for h in resumed.history] == [1, 2, 3, 4, 5]
    for a, b in zip(straight.history, resumed.history):
        for key in ("loss", "accuracy", "val_loss", "val_accuracy"):
            assert a[key] == pytest.approx(b[key], rel=1e-6, abs=1e-7), (a["epoch"], key)
    assert straight.test_metrics == pytest.approx(resumed.test_metrics, rel=1e-6)
    rows = list(csv.DictReader((tmp_path / "split" / "metrics.csv").open()))
    assert [r["epoch"] for r in rows] == ["1", "2", "3", "4", "5"]
    # A finished run resumed again has nothing left to do.
    again = run(spec, run_dir=tmp_path / "split", resume=True, epochs=5)
    assert again.status == "completed" and again.history == resumed.history


def test_resume_truncates_metrics_written_after_the_checkpoint(tmp_path: Path) -> None:
    """A kill between the metrics files and state.json: resume trusts state.json."""
    folder = tmp_path / "r"
    run(tiny(tmp_path), epochs=2, run_dir=folder)
    state = json.loads((folder / "state.json").read_text())
    history = json.loads((folder / "history.json").read_text())
    history.append(dict(history[-1], epoch=3))
    artifacts.atomic_write_json(folder / "history.json", history)
    state["epochs_completed"] = 1  # as if epoch 2's state had not been written
    artifacts.atomic_write_json(folder / "state.json", state)
    (folder / ".last.keras.abc.tmp.keras").write_text("junk from a killed save")
    resumed = run(tiny(tmp_path), epochs=2, run_dir=folder, resume=True)
    assert [h["epoch"] for h in resumed.history] == [1, 2]
    assert not (folder / ".last.keras.abc.tmp.keras").exists()


def test_non_finite_loss_fails_and_keeps_the_last_good_model(tmp_path: Path) -> None:
    from graphspec.build.backend import keras

    folder = tmp_path / "nan"
    result = run(tiny(tmp_path), run_dir=folder, epochs=3,
                 sets=["compile.optimizer={type: SGD, learning_rate: 1.0e+12}"])
    assert result.exit_code == 1 and result.status == "failed"
    assert "non-finite" in result.message and "smaller learning rate" in result.message
    state = json.loads((folder / "state.json").read_text())
    assert state["status"] == "failed" and state["epochs_completed"] == result.epochs_done
    model = keras.saving.load_model(folder / "last.keras")
    assert all(np.isfinite(w).all() for w in model.get_weights())
    assert not (folder / "results.json").exists()


def test_callbacks_from_the_spec(tmp_path: Path) -> None:
    spec = tiny(tmp_path, name="cb.yaml")
    result = run(spec, run_dir=tmp_path / "cb", epochs=6, sets=[
        "train.lr_schedule={type: step, factor: 0.5, every: 2}",
        "train.early_stopping={monitor: loss, patience: 0, min_delta: 10.0}",
    ])
    # min_delta 10: no epoch after the first counts as an improvement; patience 0 stops after the second.
    assert result.status == "early_stopped" and result.epochs_done == 2
    result = run(spec, run_dir=tmp_path / "lr", epochs=5,
                 sets=["train.lr_schedule={type: step, factor: 0.5, every: 2}"])
    assert [h["learning_rate"] for h in result.history] == pytest.approx([0.01, 0.01, 0.005, 0.005, 0.0025])
    result = run(spec, run_dir=tmp_path / "plateau", epochs=3, sets=[
        "train.reduce_lr_on_plateau={monitor: val_loss, patience: 0, min_delta: 10.0, factor: 0.5}",
        "train.checkpoint={monitor: val_accuracy}"])
    assert [h["learning_rate"] for h in result.history] == pytest.approx([0.01, 0.01, 0.005])
    assert result.best["monitor"] == "val_accuracy" and result.best["mode"] == "max"


def test_evaluate_predict_export(tmp_path: Path) -> None:
    from graphspec.run import inference
    from graphspec.build.backend import keras

    spec = tiny(tmp_path)
    result = run(spec, run_dir=tmp_path / "r", epochs=2)
    metrics = inference.evaluate(tmp_path / "r")
    assert metrics == pytest.approx(result.test_metrics)
    weights = inference.evaluate(spec, weights=tmp_path / "r" / "best.keras")
    assert weights == pytest.approx(metrics)
    np.savez(tmp_path / "in.npz", x=np.ones((5, 6), np.float32))
    shapes = inference.predict(tmp_path / "r", tmp_path / "in.npz", tmp_path / "out.npz")
    assert shapes == {"out": (5, 3)}
    with np.load(tmp_path / "out.npz") as out:
        model = keras.saving.load_model(tmp_path / "r" / "best.keras")
        assert np.allclose(out["out"], model.predict(np.ones((5, 6), np.float32), verbose=0), atol=1e-5)
    assert inference.export(tmp_path / "r", tmp_path / "m.tflite") == "tflite"
    assert (tmp_path / "m.tflite").stat().st_size > 1000
    assert inference.export(tmp_path / "r", tmp_path / "served") == "savedmodel"
    assert (tmp_path / "served" / "saved_model.pb").is_file()


def test_monitored_names_match_what_keras_logs(tmp_path: Path) -> None:
    """The static metric names (GS412) are the keys Keras logs, for single and multi-output models."""
    from graphspec import compiler
    from graphspec.analysis import graph, run_checks

    for spec, model in ((SPECS / "ticket_router.yaml", "ticket_router"), (SPECS / "resnet.yaml", "toy_resnet")):
        r = run(spec, run_dir=tmp_path / model, epochs=1, sets=[
            "data.source={kind: synthetic, samples: 8, test_samples: 4}", "data.batch_size=4",
            "data.validation_split=0.5"])
        checked = compiler.check(spec)
        settings, _ = graph.effective_compile(checked.graph, checked.graph.models[model])  # type: ignore[union-attr]
        names = run_checks.metric_names(settings, graph.output_names(checked.graph.models[model]))  # type: ignore[union-attr]
        logged = {k for k in r.history[0] if k not in {"epoch", "time", "learning_rate"}}
        assert logged == names | {f"val_{n}" for n in names}, model


# -- artifacts -------------------------------------------------------------------------------------
def test_atomic_helpers(tmp_path: Path) -> None:
    artifacts.save_npz(tmp_path / "a.npz", {"x": np.arange(3)})
    with np.load(tmp_path / "a.npz") as f:
        assert f["x"].tolist() == [0, 1, 2]
    (tmp_path / "src").write_text("one")
    artifacts.link_into_place(tmp_path / "src", tmp_path / "dst")
    artifacts.link_into_place(tmp_path / "src", tmp_path / "dst")
    assert (tmp_path / "dst").read_text() == "one"
    with artifacts.atomic_dir(tmp_path / "folder") as tmp:
        (tmp / "f").write_text("1")
    with pytest.raises(RuntimeError):
        with artifacts.atomic_dir(tmp_path / "folder") as tmp:
            (tmp / "f").write_text("2")
            raise RuntimeError
    assert (tmp_path / "folder" / "f").read_text() == "1"
    with artifacts.atomic_dir(tmp_path / "folder") as tmp:
        (tmp / "g").write_text("3")
    assert sorted(p.name for p in (tmp_path / "folder").iterdir()) == ["g"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.npz", "dst", "folder", "src"]
    assert artifacts.export_format("m.keras") == "keras" and artifacts.export_format("m.tflite") == "tflite"
    assert artifacts.export_format("served") == "savedmodel"
    assert artifacts.export_format("x", "SavedModel") == "savedmodel"


def test_a_finished_training_leaves_its_graphs_to_the_garbage_collector(tmp_path: Path) -> None:
    """TensorFlow's gradient registry keeps every traced train step (tensorflow/tensorflow#97697): a process that
    trains again and again, a sweep worker, grew by each model. graphspec drops what its training added."""
    import gc

    from graphspec.build import backend

    spec = tiny(tmp_path)
    assert run(spec, run_dir=tmp_path / "first").exit_code == 0
    assert backend.active() == "tensorflow"  # the suite's in-process backend; the registry is TensorFlow's
    from tensorflow.python.framework import ops
    from tensorflow.python.framework.func_graph import FuncGraph

    def graphs() -> int:
        gc.collect()
        return sum(isinstance(o, FuncGraph) for o in gc.get_objects())

    def custom_gradients() -> set[str]:
        return {k for k in ops.gradient_registry._registry if str(k).startswith("CustomGradient-")}

    after_one, registered = graphs(), custom_gradients()
    result = run(spec, run_dir=tmp_path / "second")
    assert result.exit_code == 0 and result.epochs_done == 3
    assert graphs() <= after_one
    assert custom_gradients() == registered
