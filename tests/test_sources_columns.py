"""Column sources (`parquet`, Arrow / Feather, `tfrecord`, `huggingface`): schema at lint, block-wise reading,
training on TensorFlow, and (but for tfrecord) on JAX and PyTorch."""

from __future__ import annotations

import importlib.util
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from graphspec.cli.app import app
from graphspec.cli.lint import lint_file
from graphspec.run.sources import columns

from .conftest import Started, started_early
from .test_backends import _pythonpath, graphspec, needs_jax

pa = pytest.importorskip("pyarrow")
pq = pytest.importorskip("pyarrow.parquet")
runner = CliRunner()

SPEC = """\
graphspec: 1
name: cols
inputs:
  x: {{shape: [4]}}
nodes:
  out: {{type: Dense, units: 2, activation: softmax}}
models:
  m: {{outputs: out}}
compile: {{optimizer: adam, loss: sparse_categorical_crossentropy, metrics: [accuracy]}}
data:
  source: {source}
  inputs: {{x: feat}}
  outputs: {{out: {label}}}
  batch_size: 8
  validation_split: 0.2
train: {{epochs: 1, tensorboard: false, seed: 2}}
"""


def arrays(n: int = 40) -> tuple[np.ndarray, np.ndarray]:
    x = np.random.default_rng(0).normal(size=(n, 4)).astype("float32")
    return x, (x.sum(axis=1) > 0).astype("int64")


def write_parquet(folder: Path) -> None:
    x, y = arrays()
    table = pa.table({"feat": pa.FixedSizeListArray.from_arrays(pa.array(x.reshape(-1)), 4), "y": y,
                      "tags": pa.array([{"a": 1}] * len(y))})
    pq.write_table(table, folder / "d.parquet", row_group_size=16)
    import pyarrow.feather as feather

    feather.write_feather(table.drop(["tags"]), folder / "d.feather", chunksize=16)


def write_spec(folder: Path, source: str, label: str = "y") -> Path:
    spec = folder / "spec.yaml"
    spec.write_text(SPEC.format(source=source, label=label), encoding="utf-8")
    return spec


def test_block_order_visits_each_block_once_and_every_row() -> None:
    rows = np.arange(50)[::-1][5:]  # a split's rows: any subset, in any order
    order = columns.block_order(rows, [0, 16, 32, 48], seed=3, epoch=1)
    assert sorted(order.tolist()) == sorted(rows.tolist()) and order.dtype == np.int64
    blocks = [r // 16 for r in order.tolist()]
    assert blocks == sorted(blocks, key=lambda b: blocks.index(b))  # each block's rows are contiguous
    assert order.tolist() == columns.block_order(rows, [0, 16, 32, 48], seed=3, epoch=1).tolist()
    assert order.tolist() != columns.block_order(rows, [0, 16, 32, 48], seed=3, epoch=2).tolist()
    assert columns.block_order(np.arange(0), [0], seed=3, epoch=1).size == 0


def test_lint_reads_the_parquet_schema_and_names_a_missing_column(tmp_path: Path) -> None:
    write_parquet(tmp_path)
    assert lint_file(str(write_spec(tmp_path, "{kind: parquet, train: d.parquet}"))).diagnostics == []
    [d] = lint_file(str(write_spec(tmp_path, "{kind: parquet, train: d.parquet}", label="z"))).diagnostics
    assert d.code == "GS411" and "`z`" in d.message and "`feat`" in d.message
    [d] = lint_file(str(write_spec(tmp_path, "{kind: parquet, train: d.parquet}", label="tags"))).diagnostics
    assert d.code == "GS411" and "not one a model input takes" in d.message


def test_the_reader_holds_at_most_two_blocks(tmp_path: Path) -> None:
    from graphspec.run.sources import parquet
    from graphspec.spec.schema_run import ParquetSource

    write_parquet(tmp_path)
    src = ParquetSource(kind="parquet", train="d.parquet")
    reader = parquet.open_split(src, "train", tmp_path, [tmp_path], None)
    x, y = arrays()
    for i in (0, 17, 39, 3):
        sample = reader.load(i)
        np.testing.assert_allclose(sample["feat"], x[i])
        assert sample["y"] == y[i]
        assert len(reader._cache) <= columns.CACHED_BLOCKS
    assert reader.starts == [0, 16, 32]


def test_list_columns_as_pandas_writes_them_and_nulls_or_uneven_rows_named(tmp_path: Path) -> None:
    """A vector column as pandas and pyarrow write one (`list<double>`, not a fixed-size list): its length is
    read from the first row, and every row must hold as many values, and no null. Before, the column was left
    out (its one-input model was fed `y` instead), a null became NaN or an arbitrary integer, and uneven rows
    were cut into samples at the wrong places."""
    from graphspec.run.sources import parquet
    from graphspec.run.sources.arrays import Problem
    from graphspec.spec.schema_run import ParquetSource

    x, y = arrays()
    rows: list[object] = [list(map(float, r)) for r in x]
    labels: list[object] = [int(v) for v in y]

    def reader(name: str) -> object:
        pq.write_table(pa.table({"feat": rows, "y": pa.array(labels, pa.int64())}), tmp_path / name,
                       row_group_size=16)
        assert pq.read_schema(tmp_path / name).field("feat").type == pa.list_(pa.float64())
        return parquet.open_split(ParquetSource(kind="parquet", train=name), "train", tmp_path, [tmp_path], None)

    r = reader("ok.parquet")
    assert r.fields["feat"] == ((4,), "float32")  # type: ignore[attr-defined]
    for i in (0, 21, 39):
        np.testing.assert_allclose(r.load(i)["feat"], x[i], rtol=1e-6)  # type: ignore[attr-defined]
    assert lint_file(str(write_spec(tmp_path, "{kind: parquet, train: ok.parquet}"))).diagnostics == []

    def problem(name: str, i: int) -> Problem:
        with pytest.raises(Problem) as exc:
            reader(name).load(i)  # type: ignore[attr-defined]
        return exc.value

    labels[20] = None
    p = problem("null.parquet", 17)  # row 21 is in the block of rows 17..32
    assert (p.code, p.message) == ("GS417", f"{tmp_path / 'null.parquet'}, row 21: column `y` holds a null")
    labels[20] = 0
    rows[35] = rows[35][:3]  # type: ignore[index]
    p = problem("short.parquet", 33)
    assert p.code == "GS411" and "row 36: column `feat` holds a list of 3 values where its rows hold 4" in p.message
    rows[35] = [1.0, None, 2.0, 3.0]
    p = problem("inside.parquet", 33)
    assert p.code == "GS417" and "row 36: column `feat` holds a null inside a list" in p.message
    rows[0] = None
    with pytest.raises(Problem, match="row 1: column `feat` holds a null"):
        reader("first.parquet")


def test_nan_in_a_column_the_model_reads_is_named_and_an_empty_table_is_an_empty_training_set(
        tmp_path: Path) -> None:
    """In-memory sources refuse NaN and infinity (GS417); a table did not: a NaN target became the class id
    -9223372036854775808, which only Keras reported, inside `fit`. A column the model does not read may hold any."""
    from graphspec.run import data as data_mod
    from graphspec.run.sources.columns import ColumnReader, RowNames, Table

    from .test_data import io, spec_data

    x, y = arrays()
    target = y.astype("float64")
    target[25] = np.nan
    pq.write_table(pa.table({"x": list(map(list, x)), "y": target, "note": [np.inf] * len(y)}), tmp_path / "t.parquet",
                   row_group_size=16)
    d = spec_data(source={"kind": "parquet", "train": "t.parquet"}, inputs={"x": "x"}, outputs={"y": "y"})
    ready = data_mod.prepare(d, io({"x": (4,)}, {"y": (1,)}), base_dir=tmp_path, seed=0)
    reader = ready.train.reader  # type: ignore[union-attr]
    assert reader.fed == {"x", "y"}
    np.testing.assert_allclose(reader.load(3)["x"], x[3], rtol=1e-6)  # rows 1..16: no NaN; `note` is not read
    with pytest.raises(data_mod.sources.Problem) as exc:
        reader.load(20)
    assert (exc.value.code, exc.value.message) == (
        "GS417", f"{tmp_path / 't.parquet'}, row 26: column `y` holds nan (1 non-finite values in rows 17 to 32)")
    pq.write_table(pa.table({"x": pa.array([], pa.list_(pa.float32())), "y": pa.array([], pa.int64())}),
                   tmp_path / "empty.parquet")
    d = spec_data(source={"kind": "parquet", "train": "empty.parquet"})
    with pytest.raises(data_mod.DataError, match="the training set is empty"):  # was a shape (1,) mismatch
        data_mod.prepare(d, io({"x": (4,)}, {"y": (1,)}), base_dir=tmp_path, seed=0)
    # a name per row, made when asked for (a list of them was 420 MB for 5 million rows)
    names = ColumnReader(Table({}, 5_000_000, "big.parquet", ("data",)), [0], lambda b: {}).files
    assert isinstance(names, RowNames) and len(names) == 5_000_000
    assert (names[0], names[-1], names[2:4]) == ("big.parquet, row 1", "big.parquet, row 5000000",
                                                 ["big.parquet, row 3", "big.parquet, row 4"])


def test_a_category_column_as_pandas_writes_it_reads_as_its_values(tmp_path: Path) -> None:
    """pandas writes a `category` column as a dictionary-encoded one; it was left out as a type no input takes."""
    from graphspec.run.sources import parquet
    from graphspec.spec.schema_run import ParquetSource

    x, y = arrays()
    feat = pa.FixedSizeListArray.from_arrays(pa.array(x.reshape(-1)), 4)
    words = [("neg", "pos")[v] for v in y]
    pq.write_table(pa.table({"feat": feat, "y": pa.array(y).dictionary_encode(),
                             "word": pa.array(words).dictionary_encode()}), tmp_path / "d.parquet", row_group_size=16)
    assert pa.types.is_dictionary(pq.read_schema(tmp_path / "d.parquet").field("word").type)
    reader = parquet.open_split(ParquetSource(kind="parquet", train="d.parquet"), "train", tmp_path, [tmp_path],
                                None)
    assert reader.fields == {"feat": ((4,), "float32"), "y": ((), "int64"), "word": ((), "string")}
    for i in (0, 20, 39):
        sample = reader.load(i)
        assert (sample["y"], sample["word"]) == (y[i], words[i])
    assert lint_file(str(write_spec(tmp_path, "{kind: parquet, train: d.parquet}"))).diagnostics == []


def test_a_huggingface_sequence_without_a_length_is_read_at_its_first_rows_length(tmp_path: Path) -> None:
    datasets = pytest.importorskip("datasets")
    from graphspec.run.sources import huggingface
    from graphspec.run.sources.arrays import Problem
    from graphspec.spec.schema_run import HuggingFaceSource

    x, y = arrays()
    features = datasets.Features({"feat": datasets.Sequence(datasets.Value("float32")), "y": datasets.Value("int64")})
    feats: list[object] = x.tolist()

    def reader(name: str) -> object:
        datasets.Dataset.from_dict({"feat": feats, "y": y.tolist()}, features=features).save_to_disk(
            str(tmp_path / name))
        return huggingface.open_split(HuggingFaceSource(kind="huggingface", path=name), "train", tmp_path,
                                      [tmp_path], None)

    r = reader("ok")
    assert r.fields["feat"] == ((4,), "float32")  # type: ignore[attr-defined]
    np.testing.assert_allclose(r.load(39)["feat"], x[39])  # type: ignore[attr-defined]
    feats[5] = feats[5][:2]  # type: ignore[index]
    with pytest.raises(Problem, match=r"row 6: column `feat` holds a list of 2 values where its rows hold 4"):
        reader("short").load(0)  # type: ignore[attr-defined]
    feats[5], feats[7] = x[5].tolist(), [1.0, None, 2.0, 3.0]
    with pytest.raises(Problem, match=r"row 8: column `feat` holds a null inside a list") as caught:
        reader("null").load(0)  # type: ignore[attr-defined]
    assert caught.value.code == "GS417"


def test_a_huggingface_array2d_column_is_read_as_its_shape(tmp_path: Path) -> None:
    """`datasets`' fixed-shape arrays are an Arrow extension type: read through its nested lists."""
    datasets = pytest.importorskip("datasets")
    from graphspec.run.sources import huggingface
    from graphspec.spec.schema_run import HuggingFaceSource

    m = np.arange(50 * 6, dtype="float32").reshape(50, 2, 3)
    features = datasets.Features({"m": datasets.Array2D(shape=(2, 3), dtype="float32"),
                                  "label": datasets.ClassLabel(names=["a", "b"])})
    datasets.Dataset.from_dict({"m": m.tolist(), "label": [i % 2 for i in range(50)]}, features=features
                               ).save_to_disk(str(tmp_path / "hf"))
    r = huggingface.open_split(HuggingFaceSource(kind="huggingface", path="hf"), "train", tmp_path, [tmp_path], None)
    assert r.fields["m"] == ((2, 3), "float32") and r.fields["label"] == ((), "int64")  # type: ignore[attr-defined]
    for i in (0, 31, 49):
        row = r.load(i)  # type: ignore[attr-defined]
        np.testing.assert_array_equal(row["m"], m[i])
        assert row["m"].dtype == np.float32 and int(row["label"]) == i % 2


def test_a_huggingface_load_is_offline_even_when_datasets_was_imported_online(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    datasets = pytest.importorskip("datasets")
    from graphspec.run.sources import huggingface
    from graphspec.spec.schema_run import HuggingFaceSource

    x, y = arrays()
    datasets.Dataset.from_dict({"feat": x.tolist(), "y": y.tolist()}).save_to_disk(str(tmp_path / "hf"))
    monkeypatch.setattr(datasets.config, "HF_HUB_OFFLINE", False)  # imported before HF_DATASETS_OFFLINE was set
    seen: list[bool] = []
    real = datasets.load_from_disk

    def load_from_disk(*args: object, **kwargs: object) -> object:
        seen.append(datasets.config.HF_HUB_OFFLINE)
        return real(*args, **kwargs)

    monkeypatch.setattr(datasets, "load_from_disk", load_from_disk)
    reader = huggingface.open_split(HuggingFaceSource(kind="huggingface", path="hf"), "train", tmp_path,
                                    [tmp_path], None)
    assert seen == [True] and datasets.config.HF_HUB_OFFLINE is False  # offline for the load, then as it was
    np.testing.assert_allclose(reader.load(3)["feat"], x[3])


@pytest.mark.keras
def test_a_null_found_while_training_on_tensorflow_is_named(tmp_path: Path) -> None:
    """On TensorFlow a column source's rows are read in `tf.numpy_function`, which passes on a Python
    exception as `UnknownError: <stack traces unavailable>`: the reader keeps its problem for the report."""
    from .conftest import graphspec_cli

    x, y = arrays()
    feat = pa.FixedSizeListArray.from_arrays(pa.array(x.reshape(-1)), 4)
    labels: list[object] = [int(v) for v in y]
    labels[30] = None
    pq.write_table(pa.table({"feat": feat, "y": pa.array(labels, pa.int64())}), tmp_path / "d.parquet",
                   row_group_size=16)
    result = graphspec_cli("train", write_spec(tmp_path, "{kind: parquet, train: d.parquet}"), "--run-dir",
                           tmp_path / "run", cwd=tmp_path)
    assert result.returncode == 1, result.stdout + result.stderr
    assert "error[GS417]: " in result.stderr and "row 31: column `y` holds a null" in result.stderr
    assert "UnknownError" not in result.stderr


@pytest.mark.keras
def test_trains_on_parquet_feather_and_tfrecord(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:

    monkeypatch.chdir(tmp_path)
    write_parquet(tmp_path)
    x, y = arrays()
    write_records(tmp_path / "d.tfrecord", x, y)
    for source in ("{kind: parquet, train: d.parquet}", "{kind: parquet, train: d.feather}",
                   "{kind: tfrecord, train: d.tfrecord, features: {feat: {dtype: float32, shape: [4]}, "
                   "y: {dtype: int64}}}"):
        result = runner.invoke(app, ["train", str(write_spec(tmp_path, source))])
        assert result.exit_code == 0, (source, result.output)
        assert "completed: 1/1 epochs" in result.output
    # a record that does not fit `features` is named (TensorFlow's own message names none)
    write_records(tmp_path / "d.tfrecord", x, y, short=6)
    result = runner.invoke(app, ["train", str(tmp_path / "spec.yaml")])
    assert result.exit_code == 1, result.output
    assert (f"error[GS441]: record 7 of {tmp_path / 'd.tfrecord'} does not fit `features`: feature `feat` has 3 "
            "values, and shape [4] needs 4") in result.output
    # a Parquet file whose footer reads but whose data does not (corrupt pages): the rows are named
    data = (tmp_path / "d.parquet").read_bytes()
    footer = int.from_bytes(data[-8:-4], "little")  # PAR1 ... <footer> <footer length> PAR1
    (tmp_path / "d.parquet").write_bytes(data[:4] + bytes(len(data) - 12 - footer) + data[-8 - footer:])
    result = runner.invoke(app, ["train", str(write_spec(tmp_path, "{kind: parquet, train: d.parquet}"))])
    assert result.exit_code == 1, result.output
    assert re.search(r"error\[GS441\]: cannot read rows \d+ to \d+ of \S*d\.parquet: ", result.output), result.output
    assert "UnknownError" not in result.output


def write_records(path: Path, x: np.ndarray, y: np.ndarray, *, short: int = -1, missing: int = -1,
                  ints: int = -1, junk: int = -1) -> None:
    """tf.train.Example records of (feat, y); record `short` has 3 values of feat, `missing` no y, `ints` feat as
    integers, `junk` is not an Example."""
    import tensorflow as tf

    with tf.io.TFRecordWriter(str(path)) as w:
        for i, (xi, yi) in enumerate(zip(x, y)):
            feat = (tf.train.Feature(int64_list=tf.train.Int64List(value=[1, 2, 3, 4])) if i == ints else
                    tf.train.Feature(float_list=tf.train.FloatList(value=xi[:3] if i == short else xi)))
            feature = {"feat": feat} if i == missing else \
                {"feat": feat, "y": tf.train.Feature(int64_list=tf.train.Int64List(value=[yi]))}
            w.write(b"\xff\xff not a protocol buffer" if i == junk else
                    tf.train.Example(features=tf.train.Features(feature=feature)).SerializeToString())


@pytest.mark.keras
def test_the_first_record_that_does_not_fit_is_found(tmp_path: Path) -> None:
    from graphspec.run.sources.tfrecord import _first_misfit

    x, y = arrays(6)
    fields = {"feat": ((4,), "float32"), "y": ((), "int64")}
    for defect, expected in [({"missing": 2}, (3, "it has no feature `y`")),
                             ({"ints": 4}, (5, "feature `feat` is `int64_list`, and float32 is read from `float_list`")),
                             ({"junk": 0}, (1, "not a tf.train.Example")),
                             ({}, (0, ""))]:
        write_records(tmp_path / "r.tfrecord", x, y, **defect)
        record, why = _first_misfit(str(tmp_path / "r.tfrecord"), "", 6, fields)
        assert (record, why[:len(expected[1])]) == expected, defect


@needs_jax
@pytest.mark.keras
def test_huggingface_on_disk_trains_on_jax_and_tfrecord_is_refused_there(tmp_path: Path) -> None:
    pytest.importorskip("datasets")
    write_hf(tmp_path)
    spec = write_spec(tmp_path, "{kind: huggingface, path: hf}", label="label")
    assert lint_file(str(spec)).diagnostics == []
    [d] = lint_file(str(write_spec(tmp_path, "{kind: huggingface, path: hf, splits: {train: nope}}",
                                   label="label"))).diagnostics
    assert d.code == "GS440" and "'nope'" in d.message
    from concurrent.futures import ThreadPoolExecutor

    spec = write_spec(tmp_path, "{kind: huggingface, path: hf}", label="label")
    refused = tmp_path / "refused"  # the two processes side by side: each its own folder and spec
    (refused / "records").mkdir(parents=True)
    (refused / "records" / "x.tfrecord").write_bytes(b"")
    tfrecord = write_spec(refused, "{kind: tfrecord, train: records, features: {feat: {dtype: float32, shape: [4]}, "
                          "y: {dtype: int64}}}")  # the columns fit (else the pre-flight's GS411 comes first)
    with ThreadPoolExecutor(max_workers=1) as pool:
        refusal = pool.submit(graphspec, "train", str(tfrecord), "--backend", "jax", blocked="tensorflow,tensorboard",
                              cwd=refused)
        # (not with TensorFlow blocked: `datasets` probes for it with find_spec, which the test's blocker makes raise)
        result = graphspec("train", str(spec), "--backend", "jax", cwd=tmp_path)
        assert result.returncode == 0, result.stderr[-3000:]
        result = refusal.result()
    assert result.returncode != 0 and "GS410" in result.stderr and "TensorFlow" in result.stderr


HAS_DATASETS = importlib.util.find_spec("datasets") is not None

# In a process on JAX or PyTorch: train on Parquet, Feather and a saved Hugging Face dataset, one epoch each.
COLUMNS_SCRIPT = """\
import json, os, sys
from pathlib import Path
from rich.console import Console
from graphspec.run import trainer

root, out = Path(sys.argv[1]), {}
console = Console(file=open(os.devnull, "w"))
for name in sorted(p.name for p in root.iterdir() if (p / "spec.yaml").exists()):
    result = trainer.train(root / name / "spec.yaml", console=console, live=False, data_roots=[root / name],
                           run_dir=root / name / "run")
    state = json.loads((root / name / "run" / "state.json").read_text())
    out[name] = [result.exit_code, state["status"], state["backend"], state["epochs_completed"]]
print("RESULT" + json.dumps(out))
"""


def write_hf(folder: Path) -> None:
    """A saved Hugging Face dataset of (feat, label) in `folder`/hf: train (30 rows) and test (10)."""
    import datasets

    x, y = arrays()
    features = datasets.Features({"feat": datasets.Sequence(datasets.Value("float32"), length=4),
                                  "label": datasets.ClassLabel(names=["neg", "pos"])})
    datasets.DatasetDict({
        "train": datasets.Dataset.from_dict({"feat": x[:30].tolist(), "label": y[:30].tolist()}, features=features),
        "test": datasets.Dataset.from_dict({"feat": x[30:].tolist(), "label": y[30:].tolist()}, features=features),
    }).save_to_disk(str(folder / "hf"))


def start_columns(folder: Path, name: str = "jax") -> subprocess.Popen[str] | None:
    """COLUMNS_SCRIPT on backend `name` over files made in `folder` (stdout, stderr: files there); started with the
    session (tests.conftest.EARLY). None when the backend is not installed."""
    from graphspec.build import backend

    if not backend.is_installed(name):
        return None
    for kind, source, label in (("parquet", "{kind: parquet, train: d.parquet}", "y"),
                                ("feather", "{kind: parquet, train: d.feather}", "y"),
                                ("hf", "{kind: huggingface, path: hf}", "label")):
        if kind == "hf" and not HAS_DATASETS:
            continue
        (folder / kind).mkdir()
        if kind == "hf":
            write_hf(folder / kind)
        else:
            write_parquet(folder / kind)
        write_spec(folder / kind, source, label=label)
    env = {**os.environ, "KERAS_BACKEND": name, "PYTHONPATH": _pythonpath()}
    with open(folder / "stdout", "w") as out, open(folder / "stderr", "w") as err:
        return subprocess.Popen([sys.executable, "-c", COLUMNS_SCRIPT, str(folder)], stdout=out, stderr=err,
                                text=True, env=env, cwd=folder)


def start_torch_columns(folder: Path) -> subprocess.Popen[str] | None:
    return start_columns(folder, "torch")


@pytest.mark.keras
@pytest.mark.parametrize("name", ["jax", "torch"])
def test_parquet_feather_and_huggingface_train_on_jax_and_pytorch(
        early_processes: dict[str, Started], tmp_path: Path, name: str) -> None:
    from graphspec.build import backend

    if not backend.is_installed(name):
        pytest.skip(f"{name} is not installed")
    key = f"test_sources_columns.py::test_parquet_feather_and_huggingface_train_on_jax_and_pytorch[{name}]"
    done = started_early(early_processes, key, tmp_path, lambda folder: start_columns(folder, name)).result(300)
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(done.stdout.split("RESULT", 1)[1])
    kinds = ["feather", "hf", "parquet"] if HAS_DATASETS else ["feather", "parquet"]
    assert result == {kind: [0, "completed", name, 1] for kind in kinds}, done.stderr[-3000:]


@pytest.mark.keras
def test_an_unreadable_huggingface_dataset_is_named_not_a_crash(tmp_path: Path,
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    datasets = pytest.importorskip("datasets")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(datasets.config, "HF_DATASETS_CACHE", tmp_path / "hf-cache")  # not the user's cache
    write_hf(tmp_path)
    arrow = next((tmp_path / "hf" / "train").glob("*.arrow"))
    data = arrow.read_bytes()
    arrow.write_bytes(data[:300] + bytes(len(data) - 500) + data[-200:])  # a corrupt Arrow file (was GS900)
    (tmp_path / "bad.jsonl").write_text('{"feat": [1, 2, 3, 4], "label": 0}\n{"feat": [1, 2, 3, 4], "label": \n')
    for source, expected in (("{kind: huggingface, path: hf}", f"cannot read the dataset {tmp_path / 'hf'}: "),
                             ("{kind: huggingface, path: bad.jsonl, format: json}",
                              f"cannot read the dataset {tmp_path / 'bad.jsonl'}: JSON parse error")):
        result = runner.invoke(app, ["train", str(write_spec(tmp_path, source, label="label"))])
        assert result.exit_code == 1, result.output
        assert f"error[GS441]: {expected}" in result.output, result.output
        assert "GS900" not in result.output and not (tmp_path / "runs").exists()
