"""Feeding prepared data to Keras: the `tf.data` pipelines for training and evaluation.

The training order of epoch *e* depends only on (seed, e), so a resumed run sees the
same batches as an uninterrupted one. TensorFlow is imported inside the functions.
"""

from __future__ import annotations

from typing import Any

from graphspec.run.data import ModelIO, Split


def model_arrays(split: Split, io: ModelIO) -> tuple[Any, Any]:
    """(x, y) in the structure Keras expects: one array, or a dict by Keras input name / a tuple."""
    xs = [split.inputs[p.name] for p in io.inputs]
    ys = [split.outputs[p.name] for p in io.outputs]
    x: Any = xs[0] if len(xs) == 1 else {p.keras_name: a for p, a in zip(io.inputs, xs)}
    y: Any = ys[0] if len(ys) == 1 else tuple(ys)
    return x, y


def steps(n: int, batch_size: int) -> int:
    return max(1, -(-n // batch_size))


def train_dataset(split: Split, io: ModelIO, *, batch_size: int, seed: int, first_epoch: int, epochs: int,
                  shuffle: bool = True, prefetch: bool = True) -> tuple[Any, int]:
    """Batches for epochs first_epoch..epochs-1, in one dataset; returns (dataset, steps per epoch).

    Epoch e's order is a permutation drawn from (seed, e) alone, so a resumed run sees the same
    batches as an uninterrupted one; partial batches never straddle two epochs.
    """
    import tensorflow as tf

    x, y = model_arrays(split, io)
    n = len(split)
    per_epoch = steps(n, batch_size)
    data = tf.data.Dataset.from_tensors((x, y)).repeat()
    seed_t = tf.constant(seed, tf.int64)

    def epoch_indices(epoch: Any) -> Any:
        idx = tf.range(n, dtype=tf.int64)
        if shuffle:
            idx = tf.random.experimental.stateless_shuffle(idx, seed=tf.stack([seed_t, epoch]))
        return tf.data.Dataset.from_tensor_slices(idx).batch(batch_size)

    indices = tf.data.Dataset.range(first_epoch, max(epochs, first_epoch)).flat_map(epoch_indices)

    def gather(i: Any, d: Any) -> Any:
        return tf.nest.map_structure(lambda a: tf.gather(a, i, axis=0), d)

    ds = tf.data.Dataset.zip((indices, data)).map(gather, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
    if prefetch:
        ds = ds.prefetch(tf.data.AUTOTUNE)
    return ds, per_epoch


def eval_dataset(split: Split, io: ModelIO, *, batch_size: int, cache: bool = False, prefetch: bool = True,
                 targets: bool = True) -> Any:
    import tensorflow as tf

    x, y = model_arrays(split, io)
    ds = tf.data.Dataset.from_tensor_slices((x, y) if targets else x).batch(batch_size)
    if cache:
        ds = ds.cache()
    if prefetch:
        ds = ds.prefetch(tf.data.AUTOTUNE)
    return ds
