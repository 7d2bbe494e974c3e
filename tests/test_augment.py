"""`data.augment`: Keras preprocessing layers on the training batches, checked by lint like nodes, and seeded
from (seed, epoch, step) so that the batches of epoch k are the same whether or not the run was resumed."""

from __future__ import annotations

import importlib.util
import textwrap
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from graphspec import compiler

from .conftest import ROOT

SPEC = """\
graphspec: 1
name: aug
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
      - {type: RandomFlip, mode: horizontal}
      - {type: RandomCrop, height: 6, width: 6}
      - {type: RandomContrast, factor: 0.3}
  batch_size: 8
train: {epochs: 2, seed: 5, tensorboard: false}
"""


def make_shapes() -> Any:
    spec = importlib.util.spec_from_file_location("make_shapes", ROOT / "tools" / "make_shapes.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def codes(text: str) -> list[tuple[str, int]]:
    checked = compiler.check(text=textwrap.dedent(text))
    return [(d.code, d.location.line) for d in checked.diagnostics.sorted() if d.is_error]


AUGMENT = """  augment:
    img:
      - {type: RandomFlip, mode: horizontal}
      - {type: RandomCrop, height: 6, width: 6}
      - {type: RandomContrast, factor: 0.3}
"""


@pytest.mark.parametrize("augment, expected", [
    ("[{type: RandomFlip, mode: horizontal}, {type: RandomCrop, height: 6, width: 6}]", []),
    ("[{type: RandomFlp}]", [("GS110", 17)]),
    ("[{type: RandomCrop, height: 6, widht: 6}]", [("GS111", 17)]),
    ("[{type: RandomCrop, height: six, width: 6}]", [("GS300", 17)]),  # as on a node: the shape rule refuses it
    ("[{type: RandomCrop, height: 6}]", [("GS113", 17)]),
    ("[{type: Lambda}]", [("GS115", 17)]),
    ("[{type: Dense, units: 3}]", [("GS451", 17)]),
    ("[{type: RandomCrop, height: 5, width: 6}]", [("GS451", 17)]),  # (8, 8, 3) -> (5, 6, 3), not (6, 6, 3)
    ("[{type: RandomFlip}]", [("GS451", 17)]),  # the 8x8 images reach the 6x6 input uncropped
])
def test_lint_checks_augment_layers_like_nodes(augment: str, expected: list[tuple[str, int]]) -> None:
    assert codes(SPEC.replace(AUGMENT, f"  augment:\n    img: {augment}\n")) == expected


def test_lint_checks_augment_names_an_input_and_images() -> None:
    text = SPEC.replace(AUGMENT, AUGMENT + "    imgs: [{type: RandomFlip}]\n")
    assert codes(text) == [("GS451", 21)]
    flat = SPEC.replace("img: {shape: [6, 6, 3]}", "img: {shape: [108]}").replace(
        "source: {kind: images, train: shapes/train, test: shapes/test, image_size: [8, 8]}", "source: synthetic")
    assert codes(flat) == [("GS451", 18)]  # RandomFlip on vectors


def _batches(ds: Any, count: int, skip: int = 0) -> list[np.ndarray]:
    if hasattr(ds, "as_numpy_iterator"):
        out = [x for x, _ in ds.take(skip + count).as_numpy_iterator()]
    else:
        out = [np.asarray(ds[i][0]) for i in range(skip + count)]
    return out[skip:]


@pytest.mark.keras
@pytest.mark.parametrize("path", ["tf.data", "PyDataset"])
def test_epoch_k_batches_do_not_depend_on_where_the_stream_started(tmp_path: Path, path: str) -> None:
    from graphspec.run import pipeline
    from graphspec.run.augment import Augment
    from graphspec.run.data import ModelIO, Port, Split
    from graphspec.spec.schema_run import AugmentLayer

    x = np.random.default_rng(0).random((20, 8, 8, 3)).astype("float32")
    split = Split({"img": x}, {"out": np.zeros(20, dtype="int32")})
    io = ModelIO([Port("img", "img", (8, 8, 3), "float32")], [Port("out", "out", (3,), "float32")])
    chain = [AugmentLayer(type="RandomFlip", mode="horizontal_and_vertical"),
             AugmentLayer(type="RandomTranslation", height_factor=0.3, width_factor=0.3)]

    def stream(first_epoch: int) -> Any:
        if path == "PyDataset":
            ds = pipeline.TrainBatches(pipeline.model_arrays(split, io), 20, batch_size=8, seed=3,
                                       first_epoch=first_epoch, shuffle=True)
        else:
            ds, _ = pipeline.train_dataset(split, io, batch_size=8, seed=3, first_epoch=first_epoch, epochs=3)
        return Augment({"img": chain}, io, seed=3).train(ds, first_epoch=first_epoch, steps=3)

    straight = _batches(stream(0), 3, skip=3)  # epoch 1 of a run from epoch 0
    resumed = _batches(stream(1), 3)  # epoch 1 of a run resumed there
    for a, b in zip(straight, resumed):
        np.testing.assert_array_equal(a, b)
    first = _batches(stream(0), 3)
    assert not all(np.array_equal(a, b) for a, b in zip(first, straight))  # epochs differ
    order = pipeline.epoch_order(20, 3, 1)
    plain = [x[order[i * 8:(i + 1) * 8]] for i in range(3)]
    assert not any(np.array_equal(a, b) for a, b in zip(plain, straight))  # and they are augmented


@pytest.mark.keras
def test_resumed_run_trains_on_the_same_augmented_images(tmp_path: Path) -> None:
    from rich.console import Console

    from graphspec.run import trainer

    make_shapes().generate(tmp_path / "shapes", train=6, test=2, size=8, classes=("circle", "square", "star"))
    spec = tmp_path / "aug.yaml"
    # per pixel: adapted on what the model sees in inference, the centre 6x6 of the 8x8 images
    spec.write_text(SPEC.replace("  flat:", "  norm: {type: Normalization, axis: [1, 2, 3]}\n  flat:"))

    def run(**kwargs: Any) -> Any:
        console = Console(file=open("/dev/null", "w"), width=120)  # noqa: SIM115
        return trainer.train(spec, console=console, live=False, data_roots=[tmp_path], **kwargs)

    straight = run(run_dir=tmp_path / "straight")
    run(run_dir=tmp_path / "split", epochs=1)
    resumed = run(run_dir=tmp_path / "split", resume=True, epochs=2)
    assert [h["loss"] for h in straight.history] == [h["loss"] for h in resumed.history]
    assert straight.test_metrics == resumed.test_metrics  # test images centre-cropped to 6x6
    from graphspec.run import inference

    assert inference.evaluate(tmp_path / "split", data_roots=[tmp_path]) == pytest.approx(resumed.test_metrics)
    inference.predict(tmp_path / "split", tmp_path / "shapes" / "test", tmp_path / "preds.csv")  # cropped too
    assert len((tmp_path / "preds.csv").read_text().splitlines()) == 1 + 6


@pytest.mark.keras
def test_the_missions_spec_trains_on_a_generated_shapes_folder(tmp_path: Path) -> None:
    """`graphspec train specs/resnet.yaml` (the mission's command), one epoch on a tiny generated folder."""
    from typer.testing import CliRunner

    from graphspec.cli.app import app

    shapes = make_shapes()
    shapes.generate(tmp_path / "shapes", train=2, test=1, size=8)
    result = CliRunner().invoke(app, [
        "train", str(ROOT / "specs" / "resnet.yaml"), "--epochs", "1", "--run-dir", str(tmp_path / "run"),
        "--set", f"data.source.train={tmp_path / 'shapes' / 'train'}",
        "--set", f"data.source.test={tmp_path / 'shapes' / 'test'}", "--set", "train.tensorboard=false"])
    assert result.exit_code == 0, result.output
    results = (tmp_path / "run" / "results.json").read_text()
    assert '"test"' in results and '"acc"' in results
    state = (tmp_path / "run" / "state.json").read_text()
    assert all(name in state for name in shapes.CLASSES)  # the class names the run records


@pytest.mark.keras
@pytest.mark.parametrize("path", ["tf.data", "PyDataset"])
def test_two_shards_augment_their_parts_as_one_process_does(path: str) -> None:
    """Each process's part of a global batch is augmented as in one process's batch: the same random
    values per sample (the last, partial batch too), so 2 processes train on the samples of 1."""
    import tensorflow as tf

    from graphspec.run import pipeline
    from graphspec.run.augment import Augment
    from graphspec.run.data import ModelIO, Port, Split
    from graphspec.run.distribute import Shard
    from graphspec.spec.schema_run import AugmentLayer

    n, batch, epochs = 21, 8, 2
    x = np.random.default_rng(1).random((n, 8, 8, 3)).astype("float32")
    split = Split({"img": x}, {"out": np.arange(n, dtype="int32")})
    io = ModelIO([Port("img", "img", (8, 8, 3), "float32")], [Port("out", "out", (3,), "float32")])
    chain = [AugmentLayer(type="RandomFlip", mode="horizontal_and_vertical"),
             AugmentLayer(type="RandomTranslation", height_factor=0.3, width_factor=0.3),
             AugmentLayer(type="RandomContrast", factor=0.5)]
    steps = Shard().steps(n, batch)

    def batches(shard: Shard) -> list[tuple[np.ndarray, np.ndarray]]:
        ds = pipeline.TrainBatches(pipeline.model_arrays(split, io), n, batch_size=batch, seed=3, first_epoch=0,
                                   shuffle=True, shard=shard)
        augment = Augment({"img": chain}, io, seed=3, shard=shard, samples=n, batch_size=batch)
        if path == "PyDataset":
            out = augment.train(ds, first_epoch=0, steps=steps)
            return [(np.asarray(out[i][0]), np.asarray(out[i][1])) for i in range(steps * epochs)]
        gen = tf.data.Dataset.from_generator(
            lambda: (ds[i] for i in range(steps * epochs)),
            output_signature=(tf.TensorSpec((None, 8, 8, 3), tf.float32), tf.TensorSpec((None,), tf.int32)))
        return [(a.numpy(), b.numpy()) for a, b in augment.train(gen, first_epoch=0, steps=steps)]

    one = batches(Shard())
    parts = [batches(Shard(index=i, count=2, replicas=2)) for i in range(2)]
    for (x1, y1), (x0, y0), (xb, yb) in zip(one, *parts):
        k = len(y0)
        np.testing.assert_array_equal(np.concatenate([y0, yb]), y1[:2 * k])  # the same samples
        np.testing.assert_allclose(np.concatenate([x0, xb]), x1[:2 * k], rtol=1e-6, atol=1e-6)  # augmented alike
    assert len(one[steps - 1][1]) == 5 and len(parts[0][steps - 1][1]) == 2  # a partial last batch, trimmed
    assert not np.allclose(one[0][0], x[np.asarray(one[0][1])])  # augmented at all
