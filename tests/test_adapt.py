"""`adapt()` before a fresh run's first epoch: a Normalization on data far from 0 now converges, its state
is saved with the model and not recomputed on --resume, and `train.adapt: false` is a lint warning."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from graphspec import compiler

SPEC = """\
graphspec: 1
name: norm
inputs:
  x: {shape: [4]}
nodes:
  norm: {type: Normalization}
  y: {type: Dense, units: 1}
models:
  m: {outputs: y}
compile:
  optimizer: {type: Adam, learning_rate: 0.1}
  loss: mse
data:
  source: {kind: npz, train: data.npz, test: test.npz}
  batch_size: 32
train:
  epochs: 3
  seed: 1
  tensorboard: false
"""
WEIGHTS = np.array([1.0, -2.0, 0.5, 1.0])


def write_data(folder: Path, mean: float = 100.0, n: int = 512) -> None:
    """Features ~ mean ± 20; the target is linear in the standardized features (variance 6.25)."""
    rng = np.random.default_rng(0)
    for name, rows in (("data.npz", n), ("test.npz", 128)):
        x = (mean + 20 * rng.standard_normal((rows, 4))).astype("float32")
        np.savez(folder / name, x=x, y=((x - 100) / 20 @ WEIGHTS).astype("float32")[:, None])


def run(spec: Path, **kwargs: Any) -> Any:
    from rich.console import Console

    from graphspec.run import trainer

    console = Console(file=open("/dev/null", "w"), width=120)  # noqa: SIM115
    return trainer.train(spec, console=console, live=False, **kwargs)


def norm_state(path: Path) -> tuple[np.ndarray, np.ndarray]:
    from graphspec.build.backend import keras

    layer = keras.saving.load_model(path).get_layer("norm")
    return np.asarray(layer.adapt_mean), np.asarray(layer.adapt_variance)


@pytest.mark.keras
def test_normalization_is_adapted_and_converges(tmp_path: Path) -> None:
    write_data(tmp_path)
    spec = tmp_path / "norm.yaml"
    spec.write_text(SPEC)
    adapted = run(spec, run_dir=tmp_path / "adapted")
    plain = run(spec, run_dir=tmp_path / "plain", sets=["train.adapt=false"])
    mean, variance = norm_state(tmp_path / "adapted" / "last.keras")
    assert np.allclose(mean, 100, atol=3) and np.allclose(np.sqrt(variance), 20, atol=2)
    assert adapted.history[-1]["loss"] < 0.5  # from a variance of 6.25
    assert plain.history[-1]["loss"] > 10 * adapted.history[-1]["loss"]  # unadapted: far from it


@pytest.mark.keras
def test_adapt_samples_caps_and_resume_keeps_the_state(tmp_path: Path) -> None:
    write_data(tmp_path)
    spec = tmp_path / "norm.yaml"
    spec.write_text(SPEC.replace("  batch_size: 32", "  batch_size: 32\n  adapt_samples: 40"))
    first = run(spec, run_dir=tmp_path / "run", epochs=1)
    assert first.epochs_done == 1
    before = norm_state(tmp_path / "run" / "last.keras")
    x = np.load(tmp_path / "data.npz")["x"]
    assert np.allclose(before[0], x[:40].mean(axis=0), rtol=1e-4)  # the first 40 training samples
    write_data(tmp_path, mean=500.0)  # were it adapted again on resume, the mean would move to ~500
    resumed = run(spec, run_dir=tmp_path / "run", resume=True, epochs=2, data_roots=[tmp_path])
    assert resumed.epochs_done == 2
    after = norm_state(tmp_path / "run" / "last.keras")
    assert np.array_equal(before[0], after[0]) and np.array_equal(before[1], after[1])


@pytest.mark.keras
def test_adapted_vocabulary_is_kept_for_resume_and_predict(tmp_path: Path) -> None:
    """A lookup's vocabulary is not in the weights: the run keeps it in adapted.json and sets it again."""
    from graphspec.run import inference

    ids = np.random.default_rng(1).choice([3, 17, 42, 99], size=(200, 1)).astype("int64")
    for name in ("data.npz", "test.npz"):
        np.savez(tmp_path / name, x=ids, y=(ids[:, 0] == 42).astype("float32")[:, None])
    spec = tmp_path / "lookup.yaml"
    spec.write_text(SPEC.replace("x: {shape: [4]}", "x: {shape: [1], dtype: int64}")
                    .replace("norm: {type: Normalization}", "norm: {type: IntegerLookup, max_tokens: 6, pad_to_max_tokens: true, output_mode: one_hot}"))
    run(spec, run_dir=tmp_path / "run", epochs=1)
    saved = json.loads((tmp_path / "run" / "adapted.json").read_text())
    assert saved["norm"]["type"] == "IntegerLookup" and sorted(saved["norm"]["vocabulary"]) == [3, 17, 42, 99]
    np.savez(tmp_path / "in.npz", x=np.array([[42], [3]], dtype="int64"))
    loaded = inference.load_for_inference(tmp_path / "run")
    layer = loaded.model.get_layer("norm")
    assert sorted(int(v) for v in layer.get_vocabulary()[1:]) == [3, 17, 42, 99]


def test_unadapted_node_is_a_lint_warning() -> None:
    text = SPEC.replace("  tensorboard: false", "  tensorboard: false\n  adapt: false")
    checked = compiler.check(text=text)
    found = [d for d in checked.diagnostics.sorted() if d.code == "GS450"]
    assert len(found) == 1 and found[0].severity.value == "warning" and found[0].location.line == 6
    fixed = text.replace("norm: {type: Normalization}", "norm: {type: Normalization, mean: 100, variance: 400}")
    assert not [d for d in compiler.check(text=fixed).diagnostics.sorted() if d.code == "GS450"]
    assert not [d for d in compiler.check(text=SPEC).diagnostics.sorted() if d.code == "GS450"]
