"""Feeding streamed splits (:class:`graphspec.run.sources.Stream`) to Keras: `tf.data` on TensorFlow, Grain
on JAX and PyTorch (:mod:`graphspec.run.grain_feed`: no TensorFlow needed there).

The sample order is :func:`graphspec.run.pipeline.epoch_order`'s, as for arrays, so a resumed run
reads the same batches; each process decodes only its own part of every global batch
(:func:`graphspec.run.sources.listing.local_order`). Files are decoded in the pipeline, a few
batches ahead of the model (`data.workers`, `data.prefetch`), never all at once.
"""

from __future__ import annotations

import weakref
from collections.abc import Callable
from typing import Any

import numpy as np

from graphspec.build import backend
from graphspec.run.distribute import Shard
from graphspec.run.sources.columns import block_order
from graphspec.run.sources.listing import local_order
from graphspec.run.sources.stream import Stream


def epoch_order(n: int, seed: int, epoch: int, shuffle: bool = True) -> np.ndarray:
    """The sample order of epoch `epoch`: a permutation drawn from (seed, epoch) alone, the same everywhere."""
    if not shuffle:
        return np.arange(n, dtype=np.int64)
    return np.random.default_rng([int(seed), int(epoch)]).permutation(n).astype(np.int64)


def _order(stream: Stream, seed: int, epoch: int, shuffle: bool, batch_size: int, shard: Shard) -> tuple[Any, int]:
    """This process's rows of epoch `epoch` (an int64 array) and its batch size."""
    if shuffle and hasattr(stream.reader, "starts"):  # a column source (its blocks' first rows): block by block
        rows = block_order(stream.rows, stream.reader.starts, seed, epoch)
    else:
        rows = stream.rows[epoch_order(len(stream), seed, epoch, shuffle)]
    local, batch = local_order(rows, batch_size, shard.index, shard.count, shard.replicas)
    return np.asarray(local, dtype=np.int64), batch


def _expand(port: Any, stream: Stream, batch: Any) -> Any:
    """A string field of one value per sample, for an input of shape (1,): given its axis."""
    field = stream.ports.get(port.name)
    if tuple(port.shape) == (1,) and field is not None and stream.reader.fields.get(field, ((), ""))[0] == ():
        return batch[:, None]
    return batch


def _structure(stream: Stream, io: Any, sample: dict[str, Any], targets: bool = True) -> Any:
    xs = [_expand(p, stream, sample[p.name]) for p in io.inputs]
    x: Any = xs[0] if len(xs) == 1 else {p.keras_name: a for p, a in zip(io.inputs, xs)}
    if not targets:
        return x
    ys = [sample[p.name] for p in io.outputs]
    return x, (ys[0] if len(ys) == 1 else tuple(ys))


def _numpy_transforms(stream: Stream, batch: dict[str, Any]) -> dict[str, Any]:
    from graphspec.run.data import apply_transforms

    out: dict[str, Any] = {}
    for port, field in stream.ports.items():
        if stream.transforms.get(port):
            out[port] = apply_transforms(batch[field], stream.transforms[port], ("data", "transforms", port))
        else:
            out[port] = batch[field]
    return out


def _loader(stream: Stream, io: Any, targets: bool) -> Any:
    """One batch of rows decoded with the reader's NumPy `load`, stacked, transformed, as the model takes it."""
    def load(rows: list[int]) -> Any:
        samples = [stream.reader.load(int(r)) for r in rows]
        batch = {k: np.stack([s[k] for s in samples]) for k in samples[0]}
        return _structure(stream, io, _numpy_transforms(stream, batch), targets)

    return load


def _tf_transforms(stream: Stream, batch: dict[str, Any]) -> dict[str, Any]:
    import tensorflow as tf

    from graphspec.spec.schema_run import Add, Cast, Divide, OneHot, Reshape, Scale

    out: dict[str, Any] = {}
    for port, field in stream.ports.items():
        t = batch[field]
        for step in stream.transforms.get(port, []):
            if isinstance(step, Reshape):
                t = tf.reshape(t, [-1, *step.reshape])
            elif isinstance(step, Cast):
                t = tf.cast(t, step.cast)
            elif isinstance(step, (Scale, Divide, Add)):
                t = t if t.dtype.is_floating else tf.cast(t, tf.float32)
                value = step.scale if isinstance(step, Scale) else 1.0 / step.divide if isinstance(step, Divide) \
                    else step.add
                t = t + tf.cast(value, t.dtype) if isinstance(step, Add) else t * tf.cast(value, t.dtype)
            elif isinstance(step, OneHot):
                t = tf.one_hot(tf.cast(t, tf.int32), step.one_hot, dtype=tf.float32)
        out[port] = t
    return out


def prefetched(ds: Any, prefetch: bool | int) -> Any:
    import tensorflow as tf

    if prefetch is True:
        return ds.prefetch(tf.data.AUTOTUNE)
    return ds.prefetch(int(prefetch)) if prefetch else ds


def _tf_batches(stream: Stream, io: Any, rows: Any, batch_size: int, targets: bool) -> Any:
    """Rows (a vector of reader rows) decoded in parallel, batched, transformed: Keras's own directory-loader
    shape (one parallel decode map, then batch), with the transforms as a parallel batch map."""
    import tensorflow as tf

    calls = stream.workers or tf.data.AUTOTUNE
    ds = tf.data.Dataset.from_tensor_slices(rows).map(stream.reader.tf_load, num_parallel_calls=calls,
                                                      deterministic=True)
    return ds.batch(batch_size).map(lambda b: _structure(stream, io, _tf_transforms(stream, b), targets),
                                    num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)


def _slots(rows: Any, slots: int) -> np.ndarray:
    """An epoch's rows padded to `slots` (steps x local batch) with its first row: a real file of the split,
    decoded like the others and cut off its batch after (:func:`_tf_train`)."""
    rows = np.asarray(rows, dtype=np.int64)
    return np.concatenate([rows, np.full(slots - len(rows), rows[0] if len(rows) else 0, dtype=np.int64)])


def _tf_train(stream: Stream, io: Any, epoch_rows: Any, *, first_epoch: int, epochs: int, slots: int,
              local_batch: int, real: int, steps: int, extra: Any = None) -> Any:
    """The training batches of epochs first_epoch..epochs-1 as one flat pipeline.

    Each epoch's order is one tensor (a NumPy call per epoch, not per sample); the rows of all epochs
    flow through one parallel decode map (the reader's `tf_load` itself: nothing added per sample) and
    one batch, so decoding never waits at an epoch's end. Every epoch fills `slots` = steps x local batch
    rows, so no batch straddles two epochs: the last batch of an epoch is padded, and cut to the epoch's
    `real` rows after decoding, by its index (a slice of the first axis: no copy). `extra(index, (x, y))`,
    if given (:func:`joined`: augmentation), runs in the same batch map.
    """
    import tensorflow as tf

    def rows(epoch: Any) -> Any:
        idx = tf.numpy_function(epoch_rows, [epoch], tf.int64, stateful=False)
        idx.set_shape([slots])
        return idx

    def finish(k: Any, batch: Any) -> Any:
        n = tf.clip_by_value(real - (k % steps) * local_batch, 0, local_batch)
        out = _structure(stream, io, _tf_transforms(stream, {name: v[:n] for name, v in batch.items()}), True)
        return out if extra is None else extra(k, out)

    calls = stream.workers or tf.data.AUTOTUNE
    ds = tf.data.Dataset.range(first_epoch, max(epochs, first_epoch)).map(rows).unbatch()
    ds = ds.map(stream.reader.tf_load, num_parallel_calls=calls, deterministic=True).batch(local_batch)
    return ds.enumerate().map(finish, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)


# How each TensorFlow training pipeline made here is made, so that augmentation joins its batch map.
_MADE: weakref.WeakKeyDictionary[Any, Callable[[Any], Any]] = weakref.WeakKeyDictionary()


def joined(ds: Any, extra: Any) -> Any:
    """A training dataset of :func:`train_dataset` on TensorFlow remade with each batch through
    `extra(index, (x, y))` (index: its position in the stream) inside its batch map, not prefetched; None for
    any other dataset."""
    try:
        make = _MADE.get(ds)
    except TypeError:  # not hashable: not one of ours
        return None
    return None if make is None else make(extra)


def train_dataset(stream: Stream, io: Any, *, batch_size: int, seed: int, first_epoch: int, epochs: int,
                  shuffle: bool = True, prefetch: bool | int = True, shard: Shard | None = None) -> tuple[Any, int]:
    """Batches for epochs first_epoch..epochs-1 (this process's part of each); (dataset, steps per epoch)."""
    shard = shard or Shard()
    per_epoch = shard.steps(len(stream), batch_size)
    if backend.active() != "tensorflow":
        from graphspec.run import grain_feed

        return grain_feed.train_dataset(lambda e: _order(stream, seed, e, shuffle, batch_size, shard),
                                        _loader(stream, io, True), steps=per_epoch, first_epoch=first_epoch,
                                        epochs=epochs, workers=stream.workers, prefetch=prefetch), per_epoch
    first, local_batch = _order(stream, seed, first_epoch, shuffle, batch_size, shard)
    slots, real = per_epoch * local_batch, len(first)

    def epoch_rows(epoch: Any) -> Any:
        rows = _order(stream, seed, int(epoch), shuffle, batch_size, shard)[0]
        if len(rows) != real:  # every epoch has as many rows: the batch map cuts the last batch by count
            raise RuntimeError(f"epoch {int(epoch)} has {len(rows)} rows, the first {real}")
        return _slots(rows, slots)

    def make(extra: Any = None) -> Any:
        return _tf_train(stream, io, epoch_rows, first_epoch=first_epoch, epochs=epochs, slots=slots,
                         local_batch=local_batch, real=real, steps=per_epoch, extra=extra)

    ds = prefetched(make(), prefetch)
    _MADE[ds] = make
    return ds, per_epoch


def eval_dataset(stream: Stream, io: Any, *, batch_size: int, prefetch: bool | int = True, targets: bool = True,
                 shard: Shard | None = None) -> Any:
    """The split in listing order, in batches (this process's part of each)."""
    shard = shard or Shard()
    local, local_batch = local_order(stream.rows, batch_size, shard.index, shard.count, shard.replicas)
    rows = np.asarray(local, dtype=np.int64)
    if backend.active() != "tensorflow":
        from graphspec.run import grain_feed

        return grain_feed.eval_dataset(rows, local_batch, _loader(stream, io, targets), workers=stream.workers,
                                       prefetch=prefetch)
    ds = _tf_batches(stream, io, np.asarray(rows, dtype=np.int64), local_batch, targets)
    return prefetched(ds, prefetch)

