"""Streamed sources on JAX and PyTorch go through Grain (:mod:`graphspec.run.grain_feed`): the Grain dataset is what
reaches `model.fit`, in the order of `epoch_order` (resumed or not), and a lean JAX install with TensorFlow blocked
trains on an image folder and predicts on files."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from graphspec.build import backend
from graphspec.run.streams import epoch_order

from .conftest import Started, started_early
from .test_backends import _pythonpath, graphspec

PIL = pytest.importorskip("PIL.Image")
pytest.importorskip("grain")

CLASSES, PER_CLASS, SEED, BATCH = ("a", "b", "c"), 5, 7, 4
N = len(CLASSES) * PER_CLASS

SPEC = f"""\
graphspec: 1
name: tiny
inputs:
  img: {{shape: [4, 4, 1]}}
nodes:
  f: {{type: Flatten}}
  out: {{type: Dense, units: 3, activation: softmax}}
models:
  m: {{outputs: out}}
compile: {{optimizer: adam, loss: sparse_categorical_crossentropy}}
data:
  source: {{kind: images, train: data, test: data, image_size: [4, 4], color_mode: grayscale}}
  augment: {{img: [{{type: RandomFlip, mode: horizontal_and_vertical}}]}}
  batch_size: {BATCH}
  workers: 2
train: {{epochs: 2, tensorboard: false, seed: {SEED}}}
"""

# In a process on the backend: train 2 epochs, then resume to 3; record what fit gets and the batches it reads.
SCRIPT = """\
import itertools, json, sys
from pathlib import Path
import keras
from rich.console import Console
from graphspec.run import trainer

root, seen = Path(sys.argv[1]), []
fit = keras.Model.fit

def recording_fit(self, x, **kw):
    steps, epochs, first = kw["steps_per_epoch"], kw["epochs"], kw["initial_epoch"]
    batches = itertools.islice(iter(x), steps * (epochs - first))  # a fresh iterator: the same stream
    ids = [[int(v) for v in (b[0][:, 0, 0, 0] * 1).round()] for b in batches]
    options = x._read_options  # Grain's threads and prefetch, augmentation included
    seen.append({"type": type(x).__module__ + "." + type(x).__name__, "first": first, "steps": steps, "ids": ids,
                 "read": [options.num_threads, options.prefetch_buffer_size]})
    return fit(self, x, **kw)

keras.Model.fit = recording_fit
console = Console(file=open("/dev/null", "w"))
trainer.train(root / "spec.yaml", console=console, live=False, data_roots=[root], run_dir=root / "run", epochs=2)
trainer.train(root / "spec.yaml", console=console, live=False, data_roots=[root], run_dir=root / "run", epochs=3,
              resume=True)
print("SEEN" + json.dumps(seen))
"""


def make_folder(root: Path) -> None:
    """Constant grayscale PNGs: sample k of the listing (classes, then files, in order) has every pixel = k."""
    k = 0
    for c in CLASSES:
        (root / "data" / c).mkdir(parents=True)
        for i in range(PER_CLASS):
            PIL.fromarray(np.full((6, 6), k, dtype="uint8"), mode="L").save(root / "data" / c / f"{i}.png")
            k += 1
    (root / "spec.yaml").write_text(SPEC, encoding="utf-8")


def expected(epoch: int) -> list[list[int]]:
    order = [int(i) for i in epoch_order(N, SEED, epoch)]
    return [order[s:s + BATCH] for s in range(0, N, BATCH)]


def start_script(folder: Path, name: str = "jax") -> subprocess.Popen[str] | None:
    """SCRIPT on backend `name` over an image folder made in `folder` (stdout and stderr: files there); the JAX
    one is started with the session (tests.conftest.EARLY). None when the backend is not installed."""
    if not backend.is_installed(name):
        return None
    make_folder(folder)
    env = {**os.environ, "KERAS_BACKEND": name, "PYTHONPATH": _pythonpath()}
    with open(folder / "stdout", "w") as out, open(folder / "stderr", "w") as err:
        return subprocess.Popen([sys.executable, "-c", SCRIPT, str(folder)], stdout=out, stderr=err, text=True,
                                env=env, cwd=folder)


def start_torch_script(folder: Path) -> subprocess.Popen[str] | None:
    """SCRIPT on PyTorch, started with the session too (tests.conftest.EARLY)."""
    return start_script(folder, "torch")


@pytest.mark.keras
@pytest.mark.parametrize("name", ["jax", "torch"])
def test_fit_gets_a_grain_dataset_in_epoch_order_and_a_resume_reads_the_same_stream(
        early_processes: dict[str, Started], tmp_path: Path, name: str) -> None:
    if not backend.is_installed(name):
        pytest.skip(f"{name} is not installed")
    key = f"test_grain_feed.py::test_fit_gets_a_grain_dataset_in_epoch_order_and_a_resume_reads_the_same_stream[{name}]"
    done = started_early(early_processes, key, tmp_path, lambda folder: start_script(folder, name)).result(300)
    assert done.returncode == 0, done.stderr[-3000:]
    seen = json.loads(done.stdout.split("SEEN", 1)[1])
    assert [s["type"] for s in seen] == ["grain._src.python.dataset.transformations.prefetch.PrefetchIterDataset"] * 2
    steps = -(-N // BATCH)
    assert [(s["first"], s["steps"]) for s in seen] == [(0, steps), (2, steps)]
    # augmented batches are decoded and augmented in `data.workers` threads, prefetched (they once ran in fit's)
    assert [s["read"] for s in seen] == [[2, 4], [2, 4]]
    # epochs 0 and 1, then the resumed run's epoch 2: each in its own seeded order, partial batch last
    assert seen[0]["ids"] == expected(0) + expected(1)
    assert seen[1]["ids"] == expected(2)
    assert expected(0) != expected(1)  # the order does change by epoch


@pytest.mark.keras
def test_a_lean_jax_install_trains_on_an_image_folder_and_predicts_on_files_through_grain(tmp_path: Path) -> None:
    if not backend.is_installed("jax"):
        pytest.skip("JAX is not installed")
    make_folder(tmp_path)
    blocked = "tensorflow,tensorboard"
    result = graphspec("train", "spec.yaml", "--backend", "jax", "--run-dir", "run", blocked=blocked, cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "completed: 2/2 epochs" in result.stdout
    # Keras is told each finite pass's length (its Grain adapter knows none): no "ran out of data" warning
    assert "ran out of data" not in result.stderr, result.stderr[-3000:]
    result = graphspec("predict", "run", "--input", "data/b", "-o", "p.csv", blocked=blocked, cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "ran out of data" not in result.stderr, result.stderr[-3000:]
    rows = (tmp_path / "p.csv").read_text().splitlines()
    assert rows[0].startswith("file,class,probability") and len(rows) == 1 + PER_CLASS
    assert [r.split(",")[0].rsplit("/", 1)[-1] for r in rows[1:]] == [f"{i}.png" for i in range(PER_CLASS)]
    assert all(r.split(",")[1] in CLASSES for r in rows[1:])


@pytest.mark.keras
def test_augmented_batches_are_the_same_in_any_number_of_threads() -> None:
    """Grain decodes and augments batches in `data.workers` threads at once: each batch's random draws come from
    its own (seed, epoch, step), never from which thread ran it or when, so 4 threads give what none gives."""
    from graphspec.run import grain_feed
    from graphspec.run.augment import Augment
    from graphspec.run.data import ModelIO, Port
    from graphspec.spec.schema_run import AugmentLayer

    images = np.random.default_rng(0).random((24, 8, 8, 3)).astype("float32")
    io = ModelIO([Port("img", "img", (8, 8, 3), "float32")], [Port("out", "out", (3,), "float32")])
    chain = [AugmentLayer(type="RandomFlip", mode="horizontal_and_vertical"),
             AugmentLayer(type="RandomTranslation", height_factor=0.3, width_factor=0.3)]

    def batches(workers: int, prefetch: bool) -> list[np.ndarray]:
        ds = grain_feed.train_dataset(lambda e: (list(epoch_order(24, 5, e)), 4), lambda rows: (images[rows], rows),
                                      steps=6, first_epoch=0, epochs=3, workers=workers, prefetch=False)
        ds = Augment({"img": chain}, io, seed=5).train(ds, first_epoch=0, steps=6, prefetch=prefetch)
        return [np.asarray(x) for x, _ in ds]

    alone = batches(1, False)  # no thread: each batch in turn, in this one
    assert len(alone) == 18
    for _ in range(2):
        np.testing.assert_array_equal(np.stack(batches(4, True)), np.stack(alone))
    order = epoch_order(24, 5, 0)
    assert not np.array_equal(alone[0], images[order[:4]])  # and they are augmented
