"""The `data`/`train` sections and graphspec.run.data: schema, cross-field checks, loaders, transforms,
splits, data-vs-model errors, tf.data pipelines, the keras.datasets loaders (offline)."""

from __future__ import annotations

import pickle
import tarfile
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from graphspec import compiler
from graphspec.run import data as data_mod
from graphspec.run import pipeline
from graphspec.spec import schema_run
from graphspec.spec.schema_run import DataSpec

from .conftest import SPECS

MLP = """\
graphspec: 1
name: tiny
inputs:
  img: {shape: [784]}
nodes:
  hidden: {type: Dense, units: 8, activation: relu}
  predictions: {type: Dense, units: 10}
compile:
  optimizer: adam
  loss: {type: SparseCategoricalCrossentropy, from_logits: true}
  metrics: [accuracy]
"""


def checked(extra: str) -> compiler.Checked:
    return compiler.check(text=MLP + extra)


def codes(result: compiler.Checked) -> list[str]:
    return [d.code for d in result.diagnostics.sorted()]


def io(inputs: dict[str, tuple[Any, ...]], outputs: dict[str, tuple[Any, ...]], *, loss: Any = None,
       dtypes: dict[str, str] | None = None) -> data_mod.ModelIO:
    dtypes = dtypes or {}
    return data_mod.ModelIO(
        [data_mod.Port(n, n, s, dtypes.get(n, "float32")) for n, s in inputs.items()],
        [data_mod.Port(n, n, s, "float32", loss) for n, s in outputs.items()],
    )


def spec_data(**kwargs: Any) -> DataSpec:
    return DataSpec.model_validate(kwargs)


# -- schema ------------------------------------------------------------------------------------------
def test_sections_validate_and_shorthands_expand() -> None:
    r = checked("data: {source: keras:mnist, transforms: {img: [{reshape: [784]}, {cast: float32}, "
                "{divide: 255}]}, validation_split: 0.2}\ntrain: {epochs: 3, checkpoint: {monitor: val_accuracy}}\n")
    assert r.ok, [str(d) for d in r.diagnostics]
    assert r.spec is not None and r.spec.data is not None and r.spec.train is not None
    assert isinstance(r.spec.data.source, schema_run.KerasSource) and r.spec.data.source.name == "mnist"
    assert [type(t).__name__ for t in r.spec.data.transforms["img"]] == ["Reshape", "Cast", "Divide"]
    assert r.spec.train.epochs == 3
    r = checked("data: {source: synthetic}\n")
    assert r.ok and isinstance(r.spec.data.source, schema_run.SyntheticSource)  # type: ignore[union-attr]


def test_every_field_has_a_description() -> None:
    for model in (DataSpec, schema_run.TrainSpec, schema_run.KerasSource, schema_run.SklearnSource,
                  schema_run.NpzSource, schema_run.CsvSource, schema_run.SyntheticSource, schema_run.CheckpointSpec,
                  schema_run.EarlyStoppingSpec, schema_run.ReduceLROnPlateauSpec, schema_run.StepDecay,
                  schema_run.Reshape, schema_run.OneHot):
        assert model.model_config.get("extra") == "forbid" and model.model_config.get("strict") is True
        for name, field in model.model_fields.items():
            assert field.description, f"{model.__name__}.{name}"


@pytest.mark.parametrize("extra, code, line", [
    ("data: {source: {kind: kerass, name: mnist}}", "GS102", 12),
    ("data: {source: mnist}", "GS102", 12),
    ("data: {source: synthetic, batchsize: 3}", "GS101", 12),
    ("data: {source: synthetic, transforms: {img: [{reshap: [784]}]}}", "GS102", 12),
    ("data: {source: synthetic, transforms: {img: [{cast: float33}]}}", "GS103", 12),
    ("data: {source: synthetic, validation_split: 1.5}", "GS103", 12),
    ("data: {source: synthetic}\ntrain: {epochs: 0}", "GS103", 13),
    ("data: {source: synthetic}\ntrain: {lr_schedule: {type: linear}}", "GS102", 13),
])
def test_schema_errors_are_located(extra: str, code: str, line: int) -> None:
    r = checked(extra + "\n")
    assert not r.ok
    first = r.diagnostics.sorted()[0]
    assert first.code == code, [str(d) for d in r.diagnostics]
    assert first.location.line == line


def test_shorthand_error_suggests_the_loader() -> None:
    r = checked("data: {source: mnist}\n")
    assert "keras:mnist" in r.diagnostics.sorted()[0].message


def test_unknown_dataset_has_did_you_mean() -> None:
    r = checked("data: {source: {kind: keras, name: mnst}}\n")
    (d,) = r.diagnostics.errors
    assert d.code == "GS413" and d.hint == "did you mean `mnist`?" and d.location.line == 12
    r = checked("data: {source: sklearn:digts}\n")
    assert codes(r) == ["GS413"] and "digits" in (r.diagnostics.errors[0].hint or "")


def test_data_names_are_checked_against_the_model() -> None:
    r = checked("data: {source: synthetic, inputs: {image: x}, outputs: {predictions: y}}\n")
    (d,) = r.diagnostics.errors
    assert d.code == "GS411" and "`image`" in d.message and "img" in d.message and d.hint == "did you mean `img`?"
    r = checked("data: {source: synthetic, transforms: {imgg: [{cast: float32}]}}\n")
    assert codes(r) == ["GS411"]


def test_monitored_metrics_must_exist() -> None:
    r = checked("data: {source: synthetic, validation_split: 0.1}\ntrain: {checkpoint: {monitor: val_acc}}\n")
    (d,) = r.diagnostics.errors
    assert d.code == "GS412" and d.hint == "did you mean `val_accuracy`?"
    r = checked("data: {source: synthetic}\ntrain: {early_stopping: {monitor: val_loss}}\n")
    (d,) = r.diagnostics.errors
    assert d.code == "GS412" and "validation" in d.message
    r = checked("data: {source: synthetic, validation_split: 0.1}\n"
                "train: {reduce_lr_on_plateau: {monitor: val_accuracy}, early_stopping: {monitor: loss}}\n")
    assert r.ok


def test_a_model_without_loss_cannot_train() -> None:
    text = MLP.replace("  loss: {type: SparseCategoricalCrossentropy, from_logits: true}\n", "")
    r = compiler.check(text=text + "data: {source: synthetic}\n")
    assert codes(r) == ["GS410"] and "no loss" in r.diagnostics.errors[0].message


def test_every_example_spec_passes_the_checks() -> None:
    for path in sorted(SPECS.glob("*.yaml")):
        r = compiler.check(path, plugins=[str(SPECS / "plugins" / "custom_dense.py")])
        assert not [d for d in r.diagnostics.errors if d.code.startswith("GS41")], path


# -- transforms ------------------------------------------------------------------------------------------
def test_transforms() -> None:
    d = spec_data(source="synthetic", transforms={
        "x": [{"reshape": [-1]}, {"cast": "float32"}, {"divide": 255}],
        "s": [{"scale": 2.0}, {"add": -1.0}],
        "y": [{"one_hot": 3}],
    })
    x = np.arange(2 * 2 * 2, dtype=np.uint8).reshape(2, 2, 2) * 30
    out = data_mod.apply_transforms(x, d.transforms["x"], ("data",))
    assert out.shape == (2, 4) and out.dtype == np.float32 and np.isclose(out.max(), 210 / 255)
    s = data_mod.apply_transforms(np.array([0, 1]), d.transforms["s"], ("data",))
    assert s.tolist() == [-1.0, 1.0]
    y = data_mod.apply_transforms(np.array([[2], [0]], dtype=np.uint8), d.transforms["y"], ("data",))
    assert y.tolist() == [[0, 0, 1], [1, 0, 0]]
    with pytest.raises(data_mod._Problem, match="class ids range over 0..5"):
        data_mod.apply_transforms(np.array([5, 0]), d.transforms["y"], ("data",))


# -- files, splits and mismatches --------------------------------------------------------------------------
def test_npz_mapping_splits_and_max_samples(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    np.savez(tmp_path / "train.npz", images=rng.integers(0, 255, (50, 4, 4)).astype(np.uint8),
             labels=rng.integers(0, 3, 50))
    np.savez(tmp_path / "test.npz", images=np.zeros((10, 4, 4), np.uint8), labels=np.zeros(10, np.int64))
    d = spec_data(source={"kind": "npz", "train": "train.npz", "test": "test.npz"},
                  inputs={"img": "images"}, outputs={"out": "labels"},
                  transforms={"img": [{"reshape": [16]}, {"divide": 255}], "out": [{"one_hot": 3}]},
                  validation_split=0.2, test_split=0.5)
    m = io({"img": (16,)}, {"out": (3,)}, loss="categorical_crossentropy")
    ready = data_mod.prepare(d, m, base_dir=tmp_path, seed=1)
    assert len(ready.train) == 40 and ready.validation is not None and len(ready.validation) == 10
    assert ready.test is not None and len(ready.test) == 10  # the file's, not a split
    assert ready.train.inputs["img"].shape == (40, 16) and ready.train.outputs["out"].shape == (40, 3)
    again = data_mod.prepare(d, m, base_dir=tmp_path, seed=1)
    assert np.array_equal(again.validation.inputs["img"], ready.validation.inputs["img"])  # type: ignore[union-attr]
    small = data_mod.prepare(d.model_copy(update={"max_samples": 5}), m, base_dir=tmp_path, seed=1)
    assert len(small.train) == 5 and len(small.test) == 5  # type: ignore[arg-type]


def test_csv_columns(tmp_path: Path) -> None:
    (tmp_path / "t.csv").write_text("a,b,c,label\n1,2,3.5,0\n4,5,6,1\n7,8,9,1\n0,0,0,0\n1,1,1,1\n")
    d = spec_data(source={"kind": "csv", "train": "t.csv"}, inputs={"x": ["a", "b", "c"]},
                  outputs={"y": "label"}, test_split=0.2)
    ready = data_mod.prepare(d, io({"x": (3,)}, {"y": (1,)}, loss="binary_crossentropy"), base_dir=tmp_path,
                             seed=0)
    assert ready.train.inputs["x"].shape == (4, 3) and ready.train.inputs["x"].dtype == np.float32
    assert ready.train.outputs["y"].dtype == np.int64 and len(ready.test) == 1  # type: ignore[arg-type]
    (tmp_path / "bad.csv").write_text("a,label\n1,0\nx,1\n")
    d = spec_data(source={"kind": "csv", "train": "bad.csv"})
    with pytest.raises(data_mod.DataError, match="column 'a', row 3: not a number"):
        data_mod.prepare(d, io({"x": (1,)}, {"y": (1,)}), base_dir=tmp_path, seed=0)
    # a spreadsheet's "CSV UTF-8" (a byte-order mark first) reads as the same columns; Latin-1 is named as such
    (tmp_path / "bom.csv").write_bytes((tmp_path / "t.csv").read_bytes().decode().encode("utf-8-sig"))
    d = spec_data(source={"kind": "csv", "train": "bom.csv"}, inputs={"x": ["a", "b", "c"]}, outputs={"y": "label"})
    bom = data_mod.prepare(d, io({"x": (3,)}, {"y": (1,)}, loss="binary_crossentropy"), base_dir=tmp_path, seed=0)
    assert bom.train.inputs["x"].shape[1:] == (3,)  # column `a` found (it was `\ufeffa`)
    (tmp_path / "latin.csv").write_bytes(b"a,label\n1,0\n2,1\n3,0 caf\xe9\n")
    d = spec_data(source={"kind": "csv", "train": "latin.csv"})
    with pytest.raises(data_mod.DataError, match="latin.csv: it is not UTF-8 text: byte 0xe9 on line 4"):
        data_mod.prepare(d, io({"x": (1,)}, {"y": (1,)}), base_dir=tmp_path, seed=0)


def test_mismatches_name_both_sides(tmp_path: Path) -> None:
    np.savez(tmp_path / "d.npz", x=np.zeros((8, 28, 28), np.uint8), y=np.zeros(8, np.int64),
             ids=np.zeros((8, 5), np.float32))
    src = {"kind": "npz", "train": "d.npz"}
    sparse = "sparse_categorical_crossentropy"
    with pytest.raises(data_mod.DataError) as e:
        data_mod.prepare(spec_data(source=src), io({"img": (784,)}, {"out": (10,)}, loss=sparse),
                         base_dir=tmp_path, seed=0)
    (d,) = e.value.diagnostics
    assert d.code == "GS411" and "(28, 28)" in d.message and "(784,)" in d.message
    assert d.hint == "add `{reshape: [784]}` to `data.transforms.img`"
    with pytest.raises(data_mod.DataError, match="model input `tokens` has no data: .*`x` .*`y` .*`ids`"):
        data_mod.prepare(spec_data(source=src), io({"tokens": (5,), "img": (28, 28)}, {"out": (10,)}, loss=sparse),
                         base_dir=tmp_path, seed=0)
    with pytest.raises(data_mod.DataError, match="`data.inputs.tokens` names `idss`") as e:
        data_mod.prepare(spec_data(source=src, inputs={"tokens": "idss"}), io({"tokens": (5,)}, {"out": (10,)}),
                         base_dir=tmp_path, seed=0)
    assert e.value.diagnostics[0].hint == "did you mean `ids`?"
    with pytest.raises(data_mod.DataError, match="is float32, but the model's input `tokens` takes int32"):
        data_mod.prepare(spec_data(source=src, inputs={"tokens": "ids"}),
                         io({"tokens": (5,)}, {"out": (10,)}, loss=sparse, dtypes={"tokens": "int32"}),
                         base_dir=tmp_path, seed=0)
    with pytest.raises(data_mod.DataError, match="targets for output `out` have samples of shape \\(\\)") as e:
        data_mod.prepare(spec_data(source=src, transforms={"img": [{"reshape": [784]}]}),
                         io({"img": (784,)}, {"out": (10,)}, loss="categorical_crossentropy"),
                         base_dir=tmp_path, seed=0)
    assert e.value.diagnostics[0].hint == "add `{one_hot: 10}` to `data.transforms.out`"
    with pytest.raises(data_mod.DataError, match="cannot read the train data"):
        data_mod.prepare(spec_data(source={"kind": "npz", "train": "missing.npz"}), io({"x": (1,)}, {"y": (1,)}),
                         base_dir=tmp_path, seed=0)


def test_errors_are_located_in_the_spec(tmp_path: Path) -> None:
    np.savez(tmp_path / "d.npz", x=np.zeros((8, 3), np.float32), y=np.zeros(8, np.int64))
    text = MLP + f"data:\n  source: {{kind: npz, train: {tmp_path / 'd.npz'}}}\n  transforms:\n    img: [{{cast: float32}}]\n"
    r = checked(text[len(MLP):])
    assert r.ok and r.source is not None
    with pytest.raises(data_mod.DataError) as e:
        data_mod.prepare(r.spec.data, io({"img": (784,)}, {"predictions": (10,)}),  # type: ignore[union-attr]
                         base_dir=tmp_path, seed=0, locate=lambda p: r.source.location(p, key=True))  # type: ignore[union-attr]
    assert e.value.diagnostics[0].location.line == 15  # data.transforms.img


def test_sklearn_digits_offline() -> None:
    d = spec_data(source="sklearn:digits", transforms={"x": [{"divide": 16}]}, test_split=0.2, validation_split=0.1)
    ready = data_mod.prepare(d, io({"x": (64,)}, {"y": (10,)}, loss="sparse_categorical_crossentropy"),
                             base_dir=Path("."), seed=0)
    assert len(ready.train) + len(ready.validation) + len(ready.test) == 1797  # type: ignore[arg-type]
    assert len(ready.test) == 359 and ready.train.inputs["x"].max() <= 1.0  # type: ignore[arg-type]


def test_synthetic_follows_the_model() -> None:
    m = io({"ids": (None,), "f": (4,)}, {"cls": (3,), "bin": (1,), "reg": (2, 2)},
           dtypes={"ids": "int32"})
    m.outputs[0].loss = "sparse_categorical_crossentropy"
    m.outputs[1].loss = {"type": "BinaryCrossentropy"}
    src = schema_run.SyntheticSource(kind="synthetic", samples=20, test_samples=5, sequence_length=7)
    train, val, test = data_mod.synthetic(src, m, 0, {"ids": 50}, validation_split=0.25)
    assert train.inputs["ids"].shape == (15, 7) and train.inputs["ids"].max() < 50
    assert train.outputs["cls"].shape == (15,) and train.outputs["cls"].max() < 3
    assert set(np.unique(train.outputs["bin"])) <= {0.0, 1.0} and train.outputs["reg"].shape == (15, 2, 2)
    assert val is not None and len(val) == 5 and len(test) == 5


# -- with TensorFlow ----------------------------------------------------------------------------------------
@pytest.mark.keras
def test_epoch_order_depends_only_on_seed_and_epoch() -> None:
    split = data_mod.Split({"x": np.arange(10, dtype=np.float32)[:, None]}, {"y": np.arange(10)})
    m = io({"x": (1,)}, {"y": (1,)})

    def batches(first: int, epochs: int) -> list[list[int]]:
        ds, steps = pipeline.train_dataset(split, m, batch_size=4, seed=3, first_epoch=first, epochs=epochs)
        assert steps == 3
        return [y.numpy().tolist() for _, y in ds]

    full = batches(0, 3)
    assert len(full) == 9 and [len(b) for b in full[:3]] == [4, 4, 2]
    assert sorted(sum(full[:3], [])) == list(range(10)) and full[:3] != full[3:6]
    assert batches(1, 3) == full[3:]
    unshuffled, _ = pipeline.train_dataset(split, m, batch_size=5, seed=3, first_epoch=0, epochs=1, shuffle=False)
    assert [y.numpy().tolist() for _, y in unshuffled] == [[0, 1, 2, 3, 4], [5, 6, 7, 8, 9]]


def write_keras_datasets(home: Path, n: int = 40) -> None:
    """Small files in the keras.datasets loaders' own formats, where get_file looks for them."""
    rng = np.random.default_rng(0)
    d = home / "datasets"
    d.mkdir(parents=True, exist_ok=True)
    np.savez(d / "mnist.npz", x_train=rng.integers(0, 255, (n, 28, 28)).astype(np.uint8),
             y_train=rng.integers(0, 10, n).astype(np.uint8),
             x_test=rng.integers(0, 255, (n // 2, 28, 28)).astype(np.uint8),
             y_test=rng.integers(0, 10, n // 2).astype(np.uint8))
    folder = home / "cifar-10-batches-py"
    folder.mkdir(exist_ok=True)
    # The loader assigns each training batch into 10,000 rows: a one-row batch broadcasts.
    for i in range(1, 6):
        batch = {b"data": rng.integers(0, 255, (1, 3072)).astype(np.uint8), b"labels": [i]}
        with open(folder / f"data_batch_{i}", "wb") as fh:
            pickle.dump(batch, fh)
    test = {b"data": rng.integers(0, 255, (n // 2, 3072)).astype(np.uint8),
            b"labels": [int(k % 10) for k in range(n // 2)]}
    with open(folder / "test_batch", "wb") as fh:
        pickle.dump(test, fh)
    with tarfile.open(d / "cifar-10-batches-py-target_archive", "w:gz") as tar:
        tar.add(folder, arcname="cifar-10-batches-py")


@pytest.fixture
def offline_keras_datasets(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """keras.datasets reads tmp_path/datasets; the files' hashes are accepted; any download fails."""
    from graphspec.build.backend import keras  # noqa: F401  (imports Keras)
    import keras.src.backend.config as config
    import keras.src.utils.file_utils as file_utils

    home = tmp_path / "keras_home"
    monkeypatch.setenv("KERAS_HOME", str(home))
    monkeypatch.setattr(config, "_KERAS_DIR", str(home))
    monkeypatch.setattr(file_utils, "validate_file", lambda *a, **k: True)

    def no_network(*args: Any, **kwargs: Any) -> None:
        raise AssertionError(f"a test tried to download {args[:1]}")

    monkeypatch.setattr(file_utils, "urlretrieve", no_network)
    write_keras_datasets(home)
    return home


@pytest.mark.keras
def test_keras_dataset_loaders_read_their_cache(offline_keras_datasets: Path) -> None:
    raw = {split: arrays for split, (arrays, _) in data_mod.load_source(spec_data(source="keras:mnist"),
                                                                       Path(".")).items()}
    assert raw["train"]["x"].shape == (40, 28, 28) and raw["test"]["y"].shape == (20,)
    raw = {split: arrays for split, (arrays, _) in data_mod.load_source(spec_data(source="keras:cifar10"),
                                                                       Path(".")).items()}
    assert raw["train"]["x"].shape == (50000, 32, 32, 3) and raw["train"]["y"].shape == (50000, 1)
