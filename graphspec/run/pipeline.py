"""Feeding prepared data to Keras: `tf.data` on TensorFlow, a `keras.utils.PyDataset` on JAX and PyTorch.

Both paths draw the same batches: the training order of epoch *e* is the NumPy permutation
:func:`epoch_order` draws from (seed, e) alone, so a run shuffles identically on every backend,
and a resumed run sees the same batches as an uninterrupted one. On TensorFlow the batches are
gathered and prefetched by `tf.data`; elsewhere (TensorFlow need not be installed) a PyDataset
gathers them from the NumPy arrays.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from graphspec.build import backend
from graphspec.build.backend import keras
from graphspec.run import streams
from graphspec.run.data import ModelIO, Split
from graphspec.run.distribute import Shard
from graphspec.run.sources import Stream
from graphspec.run.streams import epoch_order

__all__ = ["epoch_order"]


def model_arrays(split: Split, io: ModelIO) -> tuple[Any, Any]:
    """(x, y) in the structure Keras expects: one array, or a dict by Keras input name / a tuple."""
    xs = [split.inputs[p.name] for p in io.inputs]
    ys = [split.outputs[p.name] for p in io.outputs]
    x: Any = xs[0] if len(xs) == 1 else {p.keras_name: a for p, a in zip(io.inputs, xs)}
    y: Any = ys[0] if len(ys) == 1 else tuple(ys)
    return x, y


def steps(n: int, batch_size: int) -> int:
    return max(1, -(-n // batch_size))


def _gather(structure: Any, index: Any) -> Any:
    """The samples `index` of every array in a nest of tuples and dicts."""
    if isinstance(structure, dict):
        return {k: _gather(v, index) for k, v in structure.items()}
    if isinstance(structure, tuple):
        return tuple(_gather(v, index) for v in structure)
    return structure[index]


def _on_tensorflow() -> bool:
    return backend.active() == "tensorflow"


def train_dataset(split: Split | Stream, io: ModelIO, *, batch_size: int, seed: int, first_epoch: int, epochs: int,
                  shuffle: bool = True, prefetch: bool | int = True, shard: Shard | None = None) -> tuple[Any, int]:
    """Batches for epochs first_epoch..epochs-1, in one dataset; returns (dataset, steps per epoch).

    Fit it with `steps_per_epoch` = the steps returned: partial batches never straddle two epochs.
    With a `shard` (data-parallel), `batch_size` is the global batch and the dataset yields this
    process's slice of each (:class:`graphspec.run.distribute.Shard`).
    """
    if isinstance(split, Stream):
        return streams.train_dataset(split, io, batch_size=batch_size, seed=seed, first_epoch=first_epoch,
                                     epochs=epochs, shuffle=shuffle, prefetch=prefetch, shard=shard)
    x, y = model_arrays(split, io)
    n = len(split)
    shard = shard or Shard()
    per_epoch = shard.steps(n, batch_size)
    if not _on_tensorflow() or not shard.trivial:
        return TrainBatches((x, y), n, batch_size=batch_size, seed=seed, first_epoch=first_epoch,
                            shuffle=shuffle, shard=shard), per_epoch
    import tensorflow as tf

    data = tf.data.Dataset.from_tensors((x, y)).repeat()

    def order(epoch: Any) -> Any:
        return epoch_order(n, seed, int(epoch), shuffle)

    def epoch_indices(epoch: Any) -> Any:
        idx = tf.numpy_function(order, [epoch], tf.int64, stateful=False)
        idx.set_shape([n])
        return tf.data.Dataset.from_tensor_slices(idx).batch(batch_size)

    indices = tf.data.Dataset.range(first_epoch, max(epochs, first_epoch)).flat_map(epoch_indices)

    def gather(i: Any, d: Any) -> Any:
        return tf.nest.map_structure(lambda a: tf.gather(a, i, axis=0), d)

    ds = tf.data.Dataset.zip((indices, data)).map(gather, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
    return streams.prefetched(ds, prefetch), per_epoch


def known_batches(ds: Any) -> int | None:
    """The batches of an evaluation dataset, where Keras cannot tell them itself (a Grain pipeline), else None:
    `evaluate(ds, steps=known_batches(ds))`, `fit(..., validation_steps=known_batches(val))`."""
    from graphspec.run import grain_feed

    return grain_feed.steps(ds)


def eval_dataset(split: Split | Stream, io: ModelIO, *, batch_size: int, cache: bool = False,
                 prefetch: bool | int = True, targets: bool = True, shard: Shard | None = None) -> Any:
    """The split in order, in batches (with targets unless told otherwise); with a `shard`, this
    process's slice of each global batch."""
    if isinstance(split, Stream):
        return streams.eval_dataset(split, io, batch_size=batch_size, prefetch=prefetch, targets=targets,
                                    shard=shard)
    x, y = model_arrays(split, io)
    shard = shard or Shard()
    if not _on_tensorflow() or not shard.trivial:
        return EvalBatches((x, y) if targets else (x,), len(split), batch_size=batch_size, shard=shard)
    import tensorflow as tf

    ds = tf.data.Dataset.from_tensor_slices((x, y) if targets else x).batch(batch_size)
    if cache:
        ds = ds.cache()
    return streams.prefetched(ds, prefetch)


class TrainBatches(keras.utils.PyDataset):
    """Training batches of every epoch from `first_epoch` on, as one endless sequence.

    Batch i is batch i % steps of epoch first_epoch + i // steps, in :func:`epoch_order`; Keras
    reads it with `steps_per_epoch` = steps, like the `tf.data` dataset.
    """

    def __init__(self, data: tuple[Any, Any], n: int, *, batch_size: int, seed: int, first_epoch: int,
                 shuffle: bool, shard: Shard | None = None) -> None:
        super().__init__()
        self.data, self.n, self.batch_size = data, n, batch_size
        self.seed, self.first_epoch, self.shuffle = seed, first_epoch, shuffle
        self.shard = shard or Shard()
        self.steps = self.shard.steps(n, batch_size)
        self._order: tuple[int, np.ndarray] | None = None

    @property
    def num_batches(self) -> int | None:
        return None  # endless: the epochs are counted by steps_per_epoch

    def order(self, epoch: int) -> np.ndarray:
        if self._order is None or self._order[0] != epoch:
            self._order = (epoch, epoch_order(self.n, self.seed, epoch, self.shuffle))
        return self._order[1]

    def __getitem__(self, i: int) -> Any:
        epoch, step = self.first_epoch + i // self.steps, i % self.steps
        if not self.shuffle:  # the samples in order: slices (views), as Keras's own array adapter cuts them
            return _gather(self.data, _run(self.shard.part(np.arange(step * self.batch_size,
                                                                     min(self.n, (step + 1) * self.batch_size)))))
        index = self.order(epoch)[step * self.batch_size:(step + 1) * self.batch_size]
        return _gather(self.data, self.shard.part(index))


class EvalBatches(keras.utils.PyDataset):
    """The samples in order, `batch_size` at a time (validation, test, predict)."""

    def __init__(self, data: tuple[Any, ...], n: int, *, batch_size: int, shard: Shard | None = None) -> None:
        super().__init__()
        self.data, self.n, self.batch_size = data, n, batch_size
        self.shard = shard or Shard()

    def __len__(self) -> int:
        return self.shard.steps(self.n, self.batch_size) if self.n >= self.shard.replicas else 0

    def __getitem__(self, i: int) -> Any:
        index = np.arange(i * self.batch_size, min(self.n, (i + 1) * self.batch_size))
        return _gather(self.data, _run(self.shard.part(index)))


def _run(index: np.ndarray) -> slice | np.ndarray:
    """Ascending sample indices (a part of `np.arange`) as a slice where they are consecutive: the batch is cut
    from each array as a view, as Keras's own array adapter cuts it, not gathered into a copy that the backend
    then copies again onto its device."""
    if len(index) and int(index[-1]) - int(index[0]) + 1 == len(index):
        return slice(int(index[0]), int(index[-1]) + 1)
    return index
