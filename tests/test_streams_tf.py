"""The streamed training input on TensorFlow (graphspec.run.streams): one flat tf.data pipeline whose
batches are, epoch by epoch, those of `epoch_order` (a padded, trimmed last batch included), and each
process's part of them under a shard."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from .test_augment import make_shapes

SPEC = """\
graphspec: 1
name: s
inputs:
  img: {shape: [8, 8, 3]}
nodes:
  flat: {type: Flatten}
  out: {type: Dense, units: 3}
models:
  m: {outputs: out}
compile:
  optimizer: {type: Adam, learning_rate: 0.01}
  loss: {type: SparseCategoricalCrossentropy, from_logits: true}
data:
  source: {kind: images, train: shapes/train, image_size: [8, 8]}
  transforms: {img: [{divide: 255}]}
  batch_size: 8
train: {epochs: 3, seed: 4, tensorboard: false}
"""


@pytest.mark.keras
@pytest.mark.parametrize(("index", "count"), [(0, 1), (0, 2), (1, 2)])
def test_streamed_batches_follow_epoch_order_across_epochs(tmp_path: Path, index: int, count: int) -> None:
    from graphspec.build import backend
    from graphspec.build.backend import keras  # noqa: F401  (loads the backend)
    from graphspec.run import data as data_mod
    from graphspec.run import models, pipeline, streams
    from graphspec.run.distribute import Shard

    if backend.active() != "tensorflow":
        pytest.skip("the tf.data stream")

    make_shapes().generate(tmp_path / "shapes", train=7, test=1, size=8, classes=("circle", "square", "star"))
    spec = tmp_path / "s.yaml"
    spec.write_text(SPEC)
    checked = models.check(spec)
    assert checked.spec is not None and checked.spec.data is not None
    from graphspec import compiler

    model = compiler.build(checked, models=["m"], training=True)["m"]
    io = models.model_io(checked, "m", model)
    stream: Any = data_mod.prepare(checked.spec.data, io, base_dir=tmp_path, seed=4, roots=[tmp_path]).train
    shard = Shard(index=index, count=count, replicas=count)
    ds, steps = pipeline.train_dataset(stream, io, batch_size=8, seed=4, first_epoch=1, epochs=3, shard=shard)
    got = list(ds.take(2 * steps))
    assert steps == 3 and len(got) == 6
    for e in (1, 2):
        rows, local = streams._order(stream, 4, e, True, 8, shard)
        for s in range(steps):
            x, y = got[(e - 1) * steps + s]
            want = rows[s * local:(s + 1) * local]
            rest = len(stream) - 16  # the partial last global batch, split between the processes
            assert 0 < rest < 8 and len(want) == (local if s < steps - 1 else (rest - rest % count) // count)
            np.testing.assert_array_equal(y.numpy(), [stream.reader.labels[r] for r in want])
            images = np.stack([stream.reader.load(r)["image"] for r in want]) / 255
            np.testing.assert_allclose(x.numpy(), images, atol=1e-5)


@pytest.mark.keras
def test_augmentation_in_the_stream_batch_map_gives_the_batches_of_a_map_after_it(tmp_path: Path) -> None:
    from graphspec.build import backend
    from graphspec.build.backend import keras  # noqa: F401  (loads the backend)
    from graphspec.run import data as data_mod
    from graphspec.run import models, pipeline, streams
    from graphspec.run.augment import Augment

    if backend.active() != "tensorflow":
        pytest.skip("the tf.data stream")

    make_shapes().generate(tmp_path / "shapes", train=7, test=1, size=8, classes=("circle", "square", "star"))
    spec = tmp_path / "s.yaml"
    spec.write_text(SPEC.replace("  batch_size: 8\n", "  batch_size: 8\n  augment: {img: [{type: RandomFlip}]}\n"))
    checked = models.check(spec)
    assert checked.spec is not None and checked.spec.data is not None
    from graphspec import compiler

    model = compiler.build(checked, models=["m"], training=True)["m"]
    io = models.model_io(checked, "m", model)
    stream: Any = data_mod.prepare(checked.spec.data, io, base_dir=tmp_path, seed=4, roots=[tmp_path]).train
    ds, steps = pipeline.train_dataset(stream, io, batch_size=8, seed=4, first_epoch=1, epochs=3, prefetch=False)
    augment = Augment(checked.spec.data.augment, io, seed=4)
    assert streams.joined(ds, lambda i, b: b) is not None and streams.joined(ds.take(1), lambda i, b: b) is None
    inside = list(augment.train(ds, first_epoch=1, steps=steps))
    after = list(augment.train(ds.map(lambda x, y: (x, y)), first_epoch=1, steps=steps))  # not the stream itself
    plain = list(ds)
    assert len(inside) == len(after) == len(plain) == 2 * steps
    for (x1, y1), (x2, y2) in zip(inside, after):
        np.testing.assert_array_equal(x1.numpy(), x2.numpy())
        np.testing.assert_array_equal(y1.numpy(), y2.numpy())
    rest = len(stream) - 16
    assert 0 < rest < 8 and [len(y) for _, y in inside] == [8, 8, rest] * 2  # each epoch's padded last batch cut
    assert any(not np.array_equal(a.numpy(), p.numpy()) for (a, _), (p, _) in zip(inside, plain))  # flipped
