"""Mistakes that need no backend are reported before one is imported (issue 25, item 2): data files and their
names, shapes and dtypes (from the .npz headers and CSV header lines), streamed sources, `predict --input`,
export dependencies, weights files and run-folder state; and an in-memory source's values (GS417: a class id out
of range, NaN; a CSV field over 128 KiB), read before the backend once, the data the built model then takes.

In-process (`CliRunner`), with the backends blocked: `keras`, `tensorflow`, `jax` and `torch` cannot be
imported, and the places that build or train a model (`compiler.build`, `Trainer`, `backend.load`) raise
`BackendReached`. Each row of the table is a command and the error it must give, located, with its code; the
control rows are right and reach the backend. One test runs the table's commands in a fresh interpreter whose
import system refuses the backends, and checks that none was imported.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from typer.testing import CliRunner

HEAVY = ("keras", "tensorflow", "jax", "torch")

SPEC = """graphspec: 1
name: tiny
inputs:
  x: [4]
nodes:
  h: {type: Dense, units: 3, activation: relu}
  y: {type: Dense, units: 2}
models:
  m: {inputs: x, outputs: y}
compile:
  optimizer: adam
  loss: {type: SparseCategoricalCrossentropy, from_logits: true}
  metrics: [accuracy]
data:
  source: {kind: npz, train: train.npz, test: test.npz}
  inputs: {x: x}
  outputs: {y: y}
  batch_size: 8
train:
  epochs: 1
  seed: 0
"""


SWEEP = """sweep:
  objective: {metric: loss, mode: min}
  sampler: random
  trials: 2
  params:
    nodes.h.units: {choice: [2, 3]}
"""


class BackendReached(Exception):
    """A blocked place was reached: the pre-flight let the command through to the backend."""


def _keras_archive(path: Path) -> None:
    """A .keras archive as far as the zip checks go (its members are never read here)."""
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("config.json", "{}")
        zf.writestr("metadata.json", "{}")
        zf.writestr("model.weights.h5", b"")


def _run(folder: Path, spec: str, *, weights: bool = True, host: str | None = None) -> Path:
    folder.mkdir()
    (folder / "spec.yaml").write_text(spec)
    (folder / "state.json").write_text(json.dumps({
        "status": "completed", "model": "m", "plugins": [], "epochs": 1, "epochs_completed": 1, "seed": 0,
        "backend": "tensorflow", "checkpoint": "checkpoints/epoch-0001.keras"}))
    if weights:
        _keras_archive(folder / "best.keras")
    if host is not None:
        (folder / ".claim").write_text(json.dumps({"pid": 12345, "host": host, "since": "2026-01-01T00:00:00",
                                                    "command": "train"}))
    return folder


@pytest.fixture
def work(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A spec, its data, a few wrong files and run folders, in the current folder."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "spec.yaml").write_text(SPEC)
    np.savez(tmp_path / "train.npz", x=np.zeros((16, 4), "float32"), y=np.zeros(16, "int64"))
    np.savez(tmp_path / "test.npz", x=np.zeros((8, 4), "float32"), y=np.zeros(8, "int64"))
    np.savez(tmp_path / "wrongkey.npz", z=np.zeros((8, 4), "float32"), y=np.zeros(8, "int64"))
    np.savez(tmp_path / "wrongshape.npz", x=np.zeros((8, 5), "float32"), y=np.zeros(8, "int64"))
    np.savez(tmp_path / "ints.npz", x=np.zeros((8, 4), "int32"), y=np.zeros(8, "int64"))
    np.savez(tmp_path / "in_names.npz", q=np.zeros((3, 4), "float32"), r=np.zeros((3, 4), "float32"))
    np.savez(tmp_path / "in_shape.npz", x=np.zeros((3, 7), "float32"))
    np.savez(tmp_path / "in.npz", x=np.zeros((3, 4), "float32"))
    (tmp_path / "t.csv").write_text("a,b,c,label\n1,2,3,0\n4,5,6,1\n")
    (tmp_path / "notes.npz").write_text("not an archive\n")
    (tmp_path / "photo.png").write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(40))
    (tmp_path / "bad.keras").write_text("not a zip")
    run_spec = SPEC.replace("train.npz", str(tmp_path / "train.npz")).replace("test.npz", str(tmp_path / "test.npz"))
    _run(tmp_path / "run", run_spec)
    _run(tmp_path / "noweights", run_spec, weights=False)
    _run(tmp_path / "claimed", run_spec, host="another-host.example")
    _run(tmp_path / "badstate", run_spec)
    (tmp_path / "badstate" / "state.json").write_text("{\"status\": ")
    _run(tmp_path / "badweights", run_spec, weights=False)
    (tmp_path / "badweights" / "best.keras").write_text("not a zip")
    (tmp_path / "images" / "train" / "cats").mkdir(parents=True)
    (tmp_path / "sweep.yaml").write_text(SPEC + SWEEP)
    return tmp_path


@pytest.fixture
def blocked(monkeypatch: pytest.MonkeyPatch) -> None:
    """The backends cannot be imported (but count as installed), and building or training raises."""
    from graphspec import compiler
    from graphspec.build import backend
    from graphspec.run import trainer

    def reached(*_args: Any, **_kwargs: Any) -> Any:
        raise BackendReached("the backend was reached")

    for name in HEAVY:
        monkeypatch.setitem(sys.modules, name, None)
    monkeypatch.setattr(backend, "_present", lambda module: True)
    monkeypatch.setattr(backend, "load", reached)
    monkeypatch.setattr(compiler, "build", reached)
    monkeypatch.setattr(trainer, "Trainer", reached)
    monkeypatch.setattr(backend, "_selected", None)
    # select() sets KERAS_BACKEND itself: set here, it is restored (or removed) after the test
    monkeypatch.setenv("KERAS_BACKEND", os.environ.get("KERAS_BACKEND", "tensorflow"))


# (args, exit code, what the output must hold: the code and where)
CASES: list[tuple[list[str], int, list[str]]] = [
    (["train", "spec.yaml", "-s", "data.source.train=wrongkey.npz"], 1,
     ["spec.yaml:16:12: error[GS411]: `data.inputs.x` names `x`, but the train source provides `z` (8, 4), `y` (8,)"]),
    (["train", "spec.yaml", "-s", "data.source.train=wrongshape.npz"], 1,
     ["error[GS411]: training data for input `x` has samples of shape (5,), but the model's input `x` takes (4,)"]),
    (["train", "spec.yaml", "-s", "data.source.test=nothere.npz"], 1,
     ["error[GS411]: cannot read the test data", "nothere.npz: no such file"]),
    (["train", "spec.yaml", "-s", "data.source.train=notes.npz"], 1,
     ["--set #1: error[GS416]: the data", "notes.npz: not a zip archive"]),
    (["train", "spec.yaml", "-s", "data.source={kind: csv, train: t.csv}", "-s", "data.inputs.x=[a, b, c, d]",
      "-s", "data.outputs.y=label"], 1,
     ["error[GS411]: `data.inputs.x` names `d`, but the train source provides `a` (2,), `b` (2,), `c` (2,)"]),
    (["train", "spec.yaml", "-s", "data.source={kind: csv, train: t.csv}", "-s", "data.inputs.x=[a, b, c]",
      "-s", "data.outputs.y=label"], 1,
     ["error[GS411]: training data for input `x` has samples of shape (3,), but the model's input `x` takes (4,)"]),
    (["train", "spec.yaml", "-s", "data.source={kind: images, train: images/train}"], 1,
     ["error[GS440]", "cats"]),
    (["train", "spec.yaml", "--resume", "--run-dir", "claimed"], 1,
     ["claimed is claimed by pid 12345 on host another-host.example"]),
    (["train", "spec.yaml", "--resume", "--run-dir", "badstate"], 1, ["badstate/state.json", "error[GS420]"]),
    (["evaluate", "noweights"], 2, ["noweights has no weights (last.keras is missing)"]),
    (["evaluate", "badweights"], 1, ["badweights/best.keras: error[GS416]: cannot load weights: not a zip"]),
    (["evaluate", "spec.yaml", "--weights", "run/best.keras", "-s", "data.source.test=wrongshape.npz"], 1,
     ["error[GS411]: test data for input `x` has samples of shape (5,)"]),
    (["evaluate", "spec.yaml", "--weights", "nothere.keras"], 2, ["nothere.keras: no such weights file"]),
    (["predict", "run", "-i", "photo.png", "-o", "out.csv"], 1,
     ["photo.png: error[GS411]: --input is one of images, but model `m` is fed arrays",
      "hint: save the inputs with numpy.savez(FILE, x=...)"]),
    (["predict", "run", "-i", "in_names.npz", "-o", "out.npz"], 1,
     ["in_names.npz: error[GS411]: no array for model input `x`: the file has `q` (3, 4), `r` (3, 4)"]),
    (["predict", "run", "-i", "in_shape.npz", "-o", "out.npz"], 1,
     ["error[GS411]: input data for input `x` has samples of shape (7,), but the model's input `x` takes (4,)"]),
    (["predict", "run", "-i", "notes.npz", "-o", "out.npz"], 1, ["notes.npz: error[GS416]"]),
    (["predict", "run", "-i", "in.npz"], 2, ["written to an .npz file: name it with -o"]),
    (["predict", "run", "-i", "photo.png"], 2, ["photo.png: predictions for arrays are written to an .npz file"]),
    (["save", "spec.yaml", "-o", "m.keras", "--weights", "bad.keras"], 1,
     ["bad.keras: error[GS416]: cannot load weights"]),
    (["sweep", "sweep.yaml", "-s", "data.source.train=notes.npz", "--dir", "sw"], 1,
     ["--set #1: error[GS416]: the data", "notes.npz: not a zip archive"]),
    (["sweep", "sweep.yaml", "-s", "data.source.train=wrongkey.npz", "--dir", "sw"], 1,
     ["sweep.yaml:16:12: error[GS411]: `data.inputs.x` names `x`, but the train source provides `z` (8, 4)"]),
    (["import", "nothere.keras"], 2, ["nothere.keras: no such file"]),
    (["import", "keras.applications.ResNet51"], 2, ["unknown application 'ResNet51' (did you mean `ResNet50`?)"]),
    (["train", "spec.yaml", "-s", "data.source={kind: synthetic, samples: 2147483647}"], 1,
     ["error[GS502]: model `m` would need about", "synthetic data", "refused before allocating it"]),
]

# Right as far as the pre-flight can tell: these reach the backend.
CONTROLS: list[list[str]] = [
    ["train", "spec.yaml"],
    ["train", "spec.yaml", "-s", "data.source.train=ints.npz"],  # int data for a float input: Keras casts
    ["evaluate", "run"],
    ["predict", "run", "-i", "in.npz", "-o", "out.npz"],
    ["save", "run", "-o", "m.keras"],
]


@pytest.mark.parametrize(("args", "code", "expected"), CASES, ids=[" ".join(c[0][:3]) for c in CASES])
def test_reported_before_the_backend(work: Path, blocked: None, args: list[str], code: int,
                                     expected: list[str]) -> None:
    from graphspec.cli.app import app

    result = CliRunner().invoke(app, args)
    assert "the backend was reached" not in result.output and "GS900" not in result.output, result.output
    assert result.exit_code == code, result.output
    for text in expected:
        assert text in result.output, result.output
    assert not (work / "runs").exists() and not (work / "sw").exists()  # nothing written: no run or sweep folder


@pytest.mark.parametrize("args", CONTROLS, ids=[" ".join(c[:3]) for c in CONTROLS])
def test_right_input_reaches_the_backend(work: Path, blocked: None, args: list[str]) -> None:
    from graphspec.cli.app import app

    result = CliRunner().invoke(app, args)
    assert "the backend was reached" in result.output, result.output


def test_missing_export_package_is_said_before_the_backend(work: Path, blocked: None,
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    from graphspec.cli.app import app

    for name in ("onnx", "tf2onnx", "jax2onnx"):
        monkeypatch.setitem(sys.modules, name, None)
    result = CliRunner().invoke(app, ["save", "run", "-o", "m.onnx", "--backend", "tensorflow"])
    assert result.exit_code == 2, result.output
    assert "ONNX export on the tensorflow backend needs" in result.output and "not installed" in result.output


BLOCKER = """
import importlib.abc, importlib.machinery, sys
HEAVY = {heavy!r}

class Refuse(importlib.abc.Loader):
    def create_module(self, spec):
        return None
    def exec_module(self, module):
        raise ImportError("blocked: " + module.__name__)

class Block(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in HEAVY:
            return importlib.machinery.ModuleSpec(name, Refuse())
        return None

sys.meta_path.insert(0, Block())
from typer.testing import CliRunner
from graphspec.cli.app import app
for args in {cases!r}:
    result = CliRunner().invoke(app, args)
    print(result.exit_code, result.output.replace("\\n", " | "))
print("IMPORTED", sorted(m for m in sys.modules if m.split(".")[0] in HEAVY))
"""


def test_no_backend_module_is_imported(work: Path) -> None:
    """In a fresh interpreter that cannot import a backend, the errors come out and no backend module is loaded."""
    _value_mistakes(work)
    table = [CASES[0], CASES[4], CASES[13], CASES[14], CASES[9]] + [(args, 1, texts) for args, texts in VALUE_CASES]
    script = textwrap.dedent(BLOCKER).format(heavy=set(HEAVY), cases=[args for args, _, _ in table])
    done = subprocess.run([sys.executable, "-c", script], cwd=work, capture_output=True, text=True, timeout=120,
                          env={"PATH": "/usr/bin:/bin", "HOME": str(work), "KERAS_BACKEND": "tensorflow"})
    lines = done.stdout.splitlines()
    assert lines[-1] == "IMPORTED []" and len(lines) == len(table) + 1, done.stdout + done.stderr
    for line, (_args, code, expected) in zip(lines, table):
        assert line.startswith(f"{code} "), line
        assert all(text in line for text in expected), line


def test_missing_source_package_and_empty_data_are_said_before_the_backend(work: Path, blocked: None,
                                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    from graphspec.cli.app import app

    (work / "d.parquet").write_bytes(b"PAR1")
    monkeypatch.setitem(sys.modules, "pyarrow", None)
    result = CliRunner().invoke(app, ["train", "spec.yaml", "-s", "data.source={kind: parquet, train: d.parquet}"])
    assert result.exit_code == 1 and "error[GS443]" in result.output and "needs pyarrow" in result.output, \
        result.output
    np.savez(work / "none.npz", x=np.zeros((0, 4), "float32"), y=np.zeros(0, "int64"))
    result = CliRunner().invoke(app, ["train", "spec.yaml", "-s", "data.source.train=none.npz"])
    assert result.exit_code == 1 and "error[GS411]: the training set is empty" in result.output, result.output


# -- the data's values (GS417) and what only reading a file shows: read before the backend, once ----------------
def _counted(calls: list[str], what: str, fn: Any) -> Any:
    """`fn`, noting `what` in `calls` on each call."""
    def call(*args: Any, **kwargs: Any) -> Any:
        calls.append(what)
        return fn(*args, **kwargs)

    return call


def _value_mistakes(work: Path) -> None:
    x = np.arange(64, dtype="float32").reshape(16, 4)
    y = np.zeros(16, "int64")
    y[5] = 99
    np.savez(work / "labels.npz", x=x, y=y)
    x_nan = x.copy()
    x_nan[3, 1] = np.nan
    np.savez(work / "nan.npz", x=x_nan, y=np.zeros(16, "int64"))
    np.savez(work / "nan_in.npz", x=x_nan[:4])
    field = "1" * (200 << 10)
    (work / "big.csv").write_text(f"a,b,c,d,label\n1,2,3,4,0\n{field},2,3,4,1\n5,6,7,8,1\n")


CSV = ["-s", "data.source={kind: csv, train: big.csv}", "-s", "data.inputs.x=[a, b, c, d]", "-s", "data.outputs.y=label"]
VALUE_CASES: list[tuple[list[str], list[str]]] = [
    (["train", "spec.yaml", "-s", "data.source.train=labels.npz"],
     ["--set #1: error[GS417]: training targets for output `y`", "labels.npz, array `y`): class id 99 at sample 5 "
      "of the file, but the model's output has 2 classes"]),
    (["train", "spec.yaml", "-s", "data.source.train=nan.npz"],
     ["error[GS417]: training data for input `x`", "nan.npz, array `x`): nan at sample 3 of the file, position (1,)"]),
    (["train", "spec.yaml", *CSV],
     ["--set #1: error[GS411]: cannot read the train data", "big.csv: row 3: a field is over 128 KiB"]),
    (["evaluate", "spec.yaml", "--weights", "run/best.keras", "-s", "data.source.test=nan.npz"],
     ["error[GS417]: test data for input `x`", "nan at sample 3 of the file, position (1,)"]),
    (["predict", "run", "-i", "nan_in.npz", "-o", "out.npz"],
     ["nan_in.npz: error[GS417]: input data for input `x`: nan at sample 3, position (1,)"]),
]


@pytest.mark.parametrize(("args", "expected"), VALUE_CASES, ids=["label", "nan", "csv-field", "evaluate", "predict"])
def test_wrong_values_are_said_before_the_backend(work: Path, blocked: None, args: list[str],
                                                  expected: list[str]) -> None:
    """With the backends blocked from import: no start-up is paid (about 0.02 s each here; the time is not asserted,
    speed is measured in bench/, never in a test)."""
    from graphspec.cli.app import app

    _value_mistakes(work)
    result = CliRunner().invoke(app, args)
    assert "the backend was reached" not in result.output and "GS900" not in result.output, result.output
    assert result.exit_code == 1, result.output
    for text in expected:
        assert text in result.output, result.output
    assert not (work / "runs").exists() and not (work / "out.npz").exists()


def test_the_data_read_before_the_backend_is_what_trains(work: Path, blocked: None,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    """The trainer is handed the data the pre-flight read and checked: the files are read once."""
    from graphspec.cli.app import app
    from graphspec.run import data as data_mod
    from graphspec.run import trainer

    x = np.arange(64, dtype="float32").reshape(16, 4)
    np.savez(work / "train.npz", x=x, y=np.arange(16, dtype="int64") % 2)
    reads: list[str] = []
    monkeypatch.setattr(data_mod, "load_source", _counted(reads, "read", data_mod.load_source))
    handed: dict[str, Any] = {}

    def made(*_args: Any, **kwargs: Any) -> Any:
        handed.update(kwargs)
        raise BackendReached("the backend was reached")

    monkeypatch.setattr(trainer, "Trainer", made)
    result = CliRunner().invoke(app, ["train", "spec.yaml"])
    assert "the backend was reached" in result.output, result.output
    prepared = handed["prepared"]
    assert isinstance(prepared, data_mod.Data) and reads == ["read"]
    assert isinstance(prepared.train, data_mod.Split) and isinstance(prepared.test, data_mod.Split)
    np.testing.assert_array_equal(prepared.train.inputs["x"], x)
    np.testing.assert_array_equal(prepared.train.outputs["y"], np.arange(16) % 2)
    assert len(prepared.test) == 8


def test_the_built_model_adopts_the_data_or_checks_it_again(work: Path, blocked: None) -> None:
    """Keras's view of the ports equal to the static one: the very data; a shape it sees otherwise: checked again
    (no file read); a port it names otherwise where that name could pick other arrays or transforms: None (the
    caller reads the data anew, as it did before)."""
    import dataclasses

    from graphspec.compiler import check
    from graphspec.run import data as data_mod
    from graphspec.run import preflight, sources

    checked = check(work / "spec.yaml")
    prepared = preflight.prepare(checked, "m", work, [work.resolve()], seed=0)
    assert prepared is not None and prepared.io.inputs[0].shape == (4,)
    spec_data = checked.spec.data  # type: ignore[union-attr]
    same = data_mod.ModelIO([dataclasses.replace(p) for p in prepared.io.inputs],
                            [dataclasses.replace(p) for p in prepared.io.outputs])
    assert preflight.adopt(prepared, same, spec_data, None) is prepared and prepared.io is same
    renamed = data_mod.ModelIO(same.inputs, [dataclasses.replace(same.outputs[0], keras_name="dense_1")])
    assert preflight.adopt(prepared, renamed, spec_data, None) is prepared  # `y` mapped by the spec's name
    spec_data.transforms["dense_1"] = []  # type: ignore[union-attr]
    assert preflight.adopt(prepared, renamed, spec_data, None) is None  # Keras's name could pick other transforms
    wider = data_mod.ModelIO([dataclasses.replace(same.inputs[0], shape=(5,))], same.outputs)
    with pytest.raises(sources.DataError, match="training data for input `x` has samples of shape \\(4,\\), but the "
                       "model's input `x` takes \\(5,\\)"):
        preflight.adopt(prepared, wider, spec_data, None)


def test_a_port_the_static_analysis_does_not_know_leaves_the_data_to_the_build(work: Path, blocked: None) -> None:
    from graphspec.compiler import check
    from graphspec.run import preflight

    checked = check(work / "spec.yaml", sets=["models.m.outputs=y.*"])
    assert preflight.prepare(checked, "m", work, [work.resolve()], seed=0) is None


@pytest.mark.keras
def test_train_and_evaluate_read_the_data_once(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """With Keras: the data is read before the model is built, once, and the built model trains on it."""
    from graphspec import compiler
    from graphspec.cli.app import app
    from graphspec.run import data as data_mod

    monkeypatch.chdir(tmp_path)
    (tmp_path / "spec.yaml").write_text(SPEC)
    rng = np.random.default_rng(0)
    np.savez(tmp_path / "train.npz", x=rng.standard_normal((16, 4)).astype("float32"), y=np.arange(16) % 2)
    np.savez(tmp_path / "test.npz", x=rng.standard_normal((8, 4)).astype("float32"), y=np.arange(8) % 2)
    reads: list[str] = []
    monkeypatch.setattr(data_mod, "load_source", _counted(reads, "read", data_mod.load_source))
    monkeypatch.setattr(data_mod, "prepare", _counted(reads, "prepared", data_mod.prepare))
    monkeypatch.setattr(compiler, "build", _counted(reads, "built", compiler.build))
    result = CliRunner().invoke(app, ["train", "spec.yaml", "--run-dir", "run"])
    assert result.exit_code == 0 and "finished after 1 epoch" in result.output, result.output
    assert reads == ["prepared", "read", "built"]
    reads.clear()
    result = CliRunner().invoke(app, ["evaluate", "run"])
    assert result.exit_code == 0 and "accuracy" in result.output, result.output
    assert reads == ["prepared", "read", "built"]
