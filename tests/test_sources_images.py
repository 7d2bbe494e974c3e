"""The `images` source: listing (lint, no decoding), header checks, stratified splits, shards, training on
TensorFlow and on JAX with TensorFlow blocked."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from graphspec.cli.app import app
from graphspec.cli.lint import lint_file
from graphspec.run.sources import imagefiles, listing

from graphspec.build import backend

from .conftest import Started, started_early
from .test_backends import graphspec, graphspec_started, needs_jax

PIL = pytest.importorskip("PIL.Image")
runner = CliRunner()

SPEC = """\
graphspec: 1
name: tiny
inputs:
  img: {{shape: [8, 8, 3]}}
nodes:
  f: {{type: Flatten}}
  out: {{type: Dense, units: {units}, activation: softmax}}
models:
  m: {{outputs: out}}
compile: {{optimizer: adam, loss: sparse_categorical_crossentropy, metrics: [accuracy]}}
data:
  source: {{kind: images, train: data{extra}}}
  transforms: {{img: [{{divide: 255}}]}}
  batch_size: 4
  validation_split: 0.25
train: {{epochs: 1, tensorboard: false, seed: 3}}
"""


def make_images(root: Path, classes: tuple[str, ...] = ("cat", "dog", "eel"), per_class: int = 4,
                size: tuple[int, int] = (10, 12)) -> None:
    rng = np.random.default_rng(0)
    fmts = [".png", ".jpg", ".bmp", ".gif"]
    for c in classes:
        (root / c).mkdir(parents=True, exist_ok=True)
        for i in range(per_class):
            pixels = (rng.random((*size, 3)) * 255).astype("uint8")
            PIL.fromarray(pixels).save(root / c / f"{i}{fmts[i % len(fmts)]}")


def write_spec(folder: Path, units: int = 3, extra: str = "") -> Path:
    spec = folder / "spec.yaml"
    spec.write_text(SPEC.format(units=units, extra=extra), encoding="utf-8")
    return spec


def codes(spec: Path) -> list[tuple[str, int, str]]:
    return [(d.code, d.location.line, d.message) for d in lint_file(str(spec)).diagnostics]


# -- files and headers ------------------------------------------------------------------------------------
def test_probe_reads_every_format_and_refuses_truncated_empty_and_oversized(tmp_path: Path) -> None:
    make_images(tmp_path / "d", classes=("a",), per_class=4)
    for f in sorted((tmp_path / "d" / "a").iterdir()):
        fmt, w, h = imagefiles.probe(str(f), 10**6)
        assert (w, h) == (12, 10), f
        data = f.read_bytes()
        cut = tmp_path / f"cut{f.suffix}"
        cut.write_bytes(data[: len(data) // 2])
        with pytest.raises(imagefiles.BadImage, match="truncated"):
            imagefiles.probe(str(cut), 10**6)
        with pytest.raises(imagefiles.TooLarge, match="pixels"):
            imagefiles.probe(str(f), 100)
    (tmp_path / "empty.png").write_bytes(b"")
    with pytest.raises(imagefiles.BadImage, match="empty"):
        imagefiles.probe(str(tmp_path / "empty.png"), 10**6)
    (tmp_path / "text.png").write_bytes(b"hello, not an image")
    with pytest.raises(imagefiles.BadImage, match="not a PNG"):
        imagefiles.probe(str(tmp_path / "text.png"), 10**6)


@pytest.mark.keras
@pytest.mark.parametrize("color_mode", ["grayscale", "rgb"])
def test_a_16_bit_grayscale_png_reads_as_tensorflow_reads_it(tmp_path: Path, color_mode: str) -> None:
    """Keras's Pillow loader (JAX, PyTorch) took such a file as 0..65535 (one channel) or clipped it to 255
    (three); `image_dataset_from_directory` on TensorFlow keeps each pixel's high byte."""
    from graphspec.run.sources.images import CHANNELS, ImageReader, check_files
    from graphspec.spec.schema_run import ImagesSource

    pixels = (np.random.default_rng(1).random((9, 11)) * 65535).astype("uint16")
    PIL.fromarray(pixels).save(tmp_path / "g16.png")
    make_images(tmp_path, classes=("c",), per_class=1, size=(9, 11))  # an 8-bit PNG beside it
    files = [str(tmp_path / "g16.png"), str(tmp_path / "c" / "0.png")]
    assert [imagefiles.inspect(f, 10**6)[3] for f in files] == [True, False]
    good, skipped, gray16 = check_files(files, ImagesSource(kind="images", train="."), ("data",))
    assert (good, skipped, gray16) == ([0, 1], [], frozenset({0}))
    reader = ImageReader(files, [0, 0], (), (9, 11), color_mode, "bilinear", False, gray16)
    for i in range(2):
        pillow, tf = reader.load(i)["image"], np.asarray(reader.tf_load(i)["image"])
        assert pillow.shape == tf.shape == (9, 11, CHANNELS[color_mode])
        # An 8-bit colour file made grayscale: Pillow's and TensorFlow's luma round apart by one level at most.
        np.testing.assert_allclose(pillow, tf, rtol=0, atol=0 if i == 0 or color_mode == "rgb" else 1)
    np.testing.assert_array_equal(reader.load(0)["image"][..., 0], pixels >> 8)


def test_split_by_file_is_seeded_stratified_and_disjoint() -> None:
    labels = [0] * 10 + [1] * 20 + [2] * 5
    kept, held = (a.tolist() for a in listing.split_by_file(labels, 0.2, seed=7))
    assert sorted(kept + held) == list(range(35)) and not set(kept) & set(held)
    assert [sum(labels[i] == c for i in held) for c in range(3)] == [2, 4, 1]
    assert held == [0, 6, 11, 12, 14, 19, 32]  # the split every version has drawn: runs resume on the same files
    assert [a.tolist() for a in listing.split_by_file(labels, 0.2, seed=7)] == [kept, held]
    assert [a.tolist() for a in listing.split_by_file(labels, 0.2, seed=8)] != [kept, held]


@pytest.mark.parametrize(("n", "batch", "replicas"), [(37, 8, 2), (40, 8, 2), (9, 4, 4), (5, 4, 2)])
def test_two_processes_together_read_exactly_the_batches_of_one(n: int, batch: int, replicas: int) -> None:
    order = list(np.random.default_rng(1).permutation(n))
    one, one_batch = listing.local_order(order, batch, 0, 1, replicas)
    parts = [listing.local_order(order, batch, i, 2, replicas) for i in range(2)]
    local = parts[0][1]
    assert local == batch // 2 and one_batch == batch
    # batch j of process 0, then of process 1 = batch j of the one process (trimmed to the replicas)
    joined: list[int] = []
    for j in range(-(-len(parts[0][0]) // local)):
        for rows, _ in parts:
            joined.extend(rows[j * local:(j + 1) * local])
    assert joined == one
    assert not set(parts[0][0]) & set(parts[1][0])


# -- lint --------------------------------------------------------------------------------------------------
def test_lint_lists_the_folder_and_checks_classes_shape_and_layout(tmp_path: Path) -> None:
    make_images(tmp_path / "data")
    assert codes(write_spec(tmp_path)) == []
    [(code, line, message)] = codes(write_spec(tmp_path, units=10))
    assert (code, line) == ("GS411", 12) and "3 classes" in message and "10 units" in message
    [(code, _, message)] = codes(write_spec(tmp_path, extra=", image_size: [8, 9], color_mode: grayscale"))
    assert code == "GS411" and "[8, 9, 1]" in message
    (tmp_path / "data" / "empty").mkdir()
    [(code, _, message)] = codes(write_spec(tmp_path))
    assert code == "GS440" and "'empty'" in message
    [(code, _, message)] = codes(write_spec(tmp_path, extra=", classes: [cat, dog, fox]"))
    assert code == "GS440" and "'fox'" in message
    (tmp_path / "data" / "empty").rmdir()
    spec = write_spec(tmp_path)  # a setting a streamed source does not honour is said, not silently ignored
    spec.write_text(spec.read_text().replace("  batch_size: 4", "  batch_size: 4\n  cache: true"))
    [(code, line, message)] = codes(spec)
    assert (code, line) == ("GS442", spec.read_text().splitlines().index("  cache: true") + 1)
    assert "`cache: true` has no effect with `kind: images`" in message


def test_lint_refuses_folders_and_links_outside_the_data_roots(tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    make_images(outside, classes=("a",), per_class=1)
    project = tmp_path / "project"
    make_images(project / "data")
    spec = write_spec(project)
    os.symlink(outside / "a" / "0.png", project / "data" / "cat" / "link.png")
    [(code, _, message)] = codes(spec)
    assert code == "GS415" and "link.png" in message
    (project / "data" / "cat" / "link.png").unlink()
    spec.write_text(spec.read_text().replace("train: data", f"train: {outside}"))
    assert [c for c, _, _ in codes(spec)] == ["GS415"]


def test_lint_takes_an_input_written_as_a_bare_shape(tmp_path: Path) -> None:
    make_images(tmp_path / "data")
    spec = write_spec(tmp_path)
    spec.write_text(spec.read_text().replace("img: {shape: [8, 8, 3]}", "img: [8, 8, 3]"))
    assert codes(spec) == []  # was GS900: the images check read `.shape` of the list
    spec.write_text(spec.read_text().replace("train: data", "train: data, color_mode: grayscale"))
    [(code, _, message)] = codes(spec)
    assert code == "GS411" and "takes [8, 8, 3]" in message


def test_manifests_list_their_files_and_name_the_row_of_each_mistake(tmp_path: Path) -> None:
    """A CSV or Parquet manifest of path,label rows (paths relative to it), instead of class folders."""
    from graphspec.run.sources.arrays import Problem
    from graphspec.spec.schema_run import ImagesSource

    make_images(tmp_path / "data", classes=("cat", "dog"), per_class=2)
    rows = [(f"data/{c}/{f.name}", c) for c in ("dog", "cat") for f in sorted((tmp_path / "data" / c).iterdir())]

    def listed(rows: list[tuple[object, object]], name: str = "m.csv") -> listing.Listing:
        if name.endswith(".csv"):
            (tmp_path / name).write_text("path,label\n" + "".join(f"{p},{c}\n" for p, c in rows), encoding="utf-8")
        else:
            pa = pytest.importorskip("pyarrow")
            import pyarrow.parquet as pq

            pq.write_table(pa.table({"path": [p for p, _ in rows], "label": [c for _, c in rows]}), tmp_path / name)
        return listing.describe(ImagesSource(kind="images", train=name), "train", tmp_path, [tmp_path], None,
                                imagefiles.SUFFIXES)

    found = listed(rows)  # type: ignore[arg-type]
    assert found.classes == ("cat", "dog") and found.labels == (1, 1, 0, 0)
    assert [Path(f).relative_to(tmp_path).as_posix() for f in found.files] == [p for p, _ in rows]
    assert listed(rows, "m.parquet").labels == found.labels  # type: ignore[arg-type]

    def problem(rows: list[tuple[object, object]], name: str = "m.csv") -> str:
        with pytest.raises(Problem) as exc:
            listed(rows, name)
        return f"{exc.value.code} {exc.value.message}"

    assert problem([*rows, ("data/cat/gone.png", "cat")]).endswith("row 6: 'data/cat/gone.png' does not exist")
    # an empty label made a class named '' (a null in Parquet, one named 'None')
    assert problem([*rows, ("data/cat/0.png", "")]) == f"GS440 the manifest {tmp_path / 'm.csv'}, row 6: no label"
    assert problem([*rows, ("data/cat/0.png", None)], "m.parquet").endswith("row 5: no label")  # no header row
    outside = tmp_path.parent / f"out{os.getpid()}.png"  # beside the test folder: outside its roots
    outside.write_bytes((tmp_path / "data" / "cat" / "0.png").read_bytes())
    try:
        assert problem([*rows, (str(outside), "cat")]) == \
            f"GS415 '{outside.name}' in {tmp_path / 'm.csv'} lies outside the data roots"
        os.symlink(outside, tmp_path / "data" / "cat" / "link.png")
        assert problem([*rows, ("data/cat/link.png", "cat")]).endswith("'link.png' in "
                                                                       f"{tmp_path / 'm.csv'} links outside the data roots")
    finally:
        outside.unlink()

    def read_as(name: str, data: bytes) -> listing.Listing:
        (tmp_path / name).write_bytes(data)
        return listing.describe(ImagesSource(kind="images", train=name), "train", tmp_path, [tmp_path], None,
                                imagefiles.SUFFIXES)

    # a spreadsheet's "CSV UTF-8" starts with a byte-order mark: not part of the first column's name
    text = "path,label\n" + "".join(f"{p},{c}\n" for p, c in rows)
    assert read_as("bom.csv", text.encode("utf-8-sig")).labels == found.labels
    for name, data, message in (
            ("latin.csv", text.replace(",dog", ",d\xe9g").encode("latin-1"),
             "GS441 the manifest {} is not UTF-8 text: byte 0xe9 on line 2"),
            ("cut.parquet", (tmp_path / "m.parquet").read_bytes()[:-30], "GS441 cannot read the manifest {}: "),
            ("other.parquet", None, "GS440 the manifest {} has no column 'path' (it has 'file', 'label')")):
        if data is None:
            import pyarrow as pa
            import pyarrow.parquet as pq

            pq.write_table(pa.table({"file": ["data/cat/0.png"], "label": ["cat"]}), tmp_path / name)
            data = (tmp_path / name).read_bytes()
        with pytest.raises(Problem) as exc:
            read_as(name, data)
        assert f"{exc.value.code} {exc.value.message}".startswith(message.format(tmp_path / name)), exc.value.message


def test_lint_does_not_decode_images(tmp_path: Path) -> None:
    make_images(tmp_path / "data")
    (tmp_path / "data" / "cat" / "0.png").write_bytes(b"corrupt, but lint only lists files")
    assert codes(write_spec(tmp_path)) == []


# -- training ----------------------------------------------------------------------------------------------
@pytest.mark.keras
def test_trains_on_an_image_folder_and_stops_on_a_corrupt_file_unless_skipped(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    make_images(tmp_path / "data")
    spec = write_spec(tmp_path)
    result = runner.invoke(app, ["train", str(spec)])
    assert result.exit_code == 0, result.output
    run = next((tmp_path / "runs" / "tiny").iterdir())
    state = json.loads((run / "state.json").read_text())
    assert state["classes"] == ["cat", "dog", "eel"]
    result = runner.invoke(app, ["predict", str(run), "--input", str(tmp_path / "data" / "dog"), "-o", "p.csv"])
    assert result.exit_code == 0, result.output
    rows = (tmp_path / "p.csv").read_text().splitlines()
    assert rows[0] == "file,class,probability,out_0,out_1,out_2" and len(rows) == 5
    for row in rows[1:]:
        file, name, prob, *raw = row.split(",")
        assert file.endswith((".png", ".jpg", ".bmp", ".gif")) and name in state["classes"]
        assert float(prob) == pytest.approx(max(float(r) for r in raw), abs=1e-5)
        assert name == state["classes"][[float(r) for r in raw].index(max(float(r) for r in raw))]
    result = runner.invoke(app, ["predict", str(run), "--input", str(tmp_path / "data" / "dog")])  # no -o
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines() == rows  # the same CSV, on standard output alone
    # file names from elsewhere: bytes that are not UTF-8, a formula; shown escaped, the rest of the row as ever
    odd = tmp_path / "odd"
    odd.mkdir()
    image = (tmp_path / "data" / "dog" / "0.png").read_bytes()
    (odd / os.fsdecode(b"\xffname.png")).write_bytes(image)
    (odd / "=1+1.png").write_bytes(image)
    monkeypatch.chdir(odd)
    result = runner.invoke(app, ["predict", str(run), "--input", "."])
    assert result.exit_code == 0, result.output
    listed = {row.split(",")[0] for row in result.stdout.splitlines()[1:]}
    assert listed == {"\\xffname.png", "'=1+1.png"}, listed
    monkeypatch.chdir(tmp_path)
    result = runner.invoke(app, ["predict", str(run), "--input", str(tmp_path / "data" / "dog" / "1.jpg"),
                                 "-o", "p.npz"])
    assert result.exit_code == 0, result.output
    assert np.load(tmp_path / "p.npz")["out"].shape == (1, 3)
    bad = tmp_path / "data" / "dog" / "1.jpg"
    bad.write_bytes(bad.read_bytes()[:40])
    result = runner.invoke(app, ["train", str(spec)])
    assert result.exit_code != 0 and "GS441" in result.output and "1.jpg" in result.output
    result = runner.invoke(app, ["train", str(write_spec(tmp_path, extra=", on_error: skip"))])
    assert result.exit_code == 0, result.output
    run = max((tmp_path / "runs" / "tiny").iterdir())
    skipped = json.loads((run / "data-skipped.json").read_text())
    assert skipped["count"] == 1 and skipped["files"][0]["file"].endswith("1.jpg")


def start_lean_jax(folder: Path) -> subprocess.Popen[str] | None:
    """Training on an image folder made in `folder`, on JAX with TensorFlow blocked (tests.conftest.EARLY starts
    it with the session); None without JAX (the test skips)."""
    if not backend.is_installed("jax"):
        return None
    make_images(folder / "data")
    spec = write_spec(folder)
    return graphspec_started(folder, "train", str(spec), "--backend", "jax", "--set", "data.workers=2", "--set",
                             "data.prefetch=2", blocked="tensorflow,tensorboard", cwd=folder)


@needs_jax
@pytest.mark.keras
def test_a_lean_jax_install_trains_on_an_image_folder_without_tensorflow(early_processes: dict[str, Started],
                                                                         tmp_path: Path) -> None:
    key = "test_sources_images.py::test_a_lean_jax_install_trains_on_an_image_folder_without_tensorflow"
    result = started_early(early_processes, key, tmp_path, start_lean_jax).result()
    assert result.returncode == 0, result.stderr[-3000:]
    assert "completed: 1/1 epochs" in result.stdout


def test_sources_import_and_lint_without_numpy_or_a_backend(tmp_path: Path) -> None:
    """A data source never imports NumPy or a backend at module level: lint describes it on the lean install."""
    make_images(tmp_path / "data")
    spec = write_spec(tmp_path, units=10)
    blocked = "numpy,keras,tensorflow,jax,torch,PIL"
    result = graphspec("lint", str(spec), blocked=blocked, cwd=tmp_path, timeout=120)
    assert result.returncode == 1 and "GS411" in result.stdout + result.stderr, result.stderr[-2000:]
    modules = ["graphspec.run.sources." + m for m in ("arrays", "listing", "images", "imagefiles", "text",
                                                       "parquet", "tfrecord", "huggingface", "columns", "lint",
                                                       "ports", "stream", "extras")]
    import subprocess
    import sys

    code = ("import sys\nclass B:\n    def find_spec(self, n, p=None, t=None):\n"
            f"        if n.split('.')[0] in {blocked.split(',')!r}: raise ImportError(n)\n"
            f"sys.meta_path.insert(0, B())\nfor m in {modules!r}: __import__(m)\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
