"""Augmentation as data (`data.augment`): Keras preprocessing layers applied to the training batches.

The layers are Keras's own (RandomFlip, RandomCrop, ...), made from the spec like nodes
(:func:`graphspec.build.emit.layer_kwargs`), and run in the input pipeline, never in the model:
inside the `tf.data` map on TensorFlow; elsewhere on each batch of the Grain pipeline (streamed
sources, :mod:`graphspec.run.grain_feed`) or of the `keras.utils.PyDataset` (in-memory arrays).

Reproducible: every random draw of batch `step` of epoch `epoch` comes from a seed made of
(`train.seed`, epoch) and the step alone, never from a generator's running state, so a resumed run
(which starts its stream at its first epoch) sees the same batches as one that never stopped.

Shard-equal: in a data-parallel run each process holds its part of every global batch
(:class:`graphspec.run.distribute.Shard`). It augments that part placed in a batch of the global
batch's size (zeros elsewhere), with the global batch's seeds, and keeps its part: the random values a
layer draws for a sample are those of its place in the global batch, so the augmented samples of N
processes are those of one process (a layer that mixes samples across the batch, such as MixUp,
would see the zeros; Keras's per-image layers do not). The cost: N times the augmentation work in
each process, none of the decoding. Keras layers draw their seeds through `_get_seed_generator`; here each layer's is
a :class:`_BatchSeeds`, which hands out seeds derived from the batch's (thread-local: PyDataset
workers are threads).

Validation, test and predict batches are not augmented: they go through the layers in inference mode,
which leaves them as they are, except that a RandomCrop is a CenterCrop there, so that they fit the
model.
"""

from __future__ import annotations

import os
import threading
from typing import Any

import numpy as np

from graphspec.build.backend import keras
from graphspec.run.data import ModelIO
from graphspec.run.distribute import Shard

_M = 2**31 - 1
_STRIDE = 2**20  # seeds of one batch: (a, step + k * _STRIDE) for its k-th draw


def _mix(seed: int, epoch: Any, shard: int) -> Any:
    """The first half of a batch seed: (seed, epoch, shard) mixed into [0, 2**31 - 1)."""
    return ((seed % _M) * 1_000_003 + epoch * 7919 + shard * 104_729 + 1) % _M


class _BatchSeeds(keras.random.SeedGenerator):
    """Seeds for one batch at a time: what `draw_seed` takes, without a state variable.

    `SeedGenerator.__init__` is not called on purpose: it would make a stateful variable, which is what
    this replaces.
    """

    def __init__(self) -> None:  # noqa: D107
        self._local = threading.local()

    def begin(self, first: Any, step: Any, make: Any) -> None:
        self._local.first, self._local.step, self._local.make, self._local.count = first, step, make, 0

    def next(self, ordered: bool = True) -> Any:
        k = self._local.count
        self._local.count += 1
        return self._local.make(self._local.first, self._local.step + k * _STRIDE)


def _tf_seed(first: Any, second: Any) -> Any:
    import tensorflow as tf

    return tf.cast(tf.stack([first, second]), tf.int64)


def _backend_seed(first: Any, second: Any) -> Any:
    from keras.src.backend import random_seed_dtype  # not exported: the dtype Keras's own seeds have

    return keras.ops.convert_to_tensor(np.array([int(first), int(second)]), dtype=random_seed_dtype())


class Augment:
    """The `data.augment` layers of a model's inputs, and where they run."""

    def __init__(self, spec: dict[str, list[Any]], io: ModelIO, *, seed: int, shard: Shard | None = None,
                 samples: int | None = None, batch_size: int | None = None) -> None:
        from graphspec.build.emit import layer_kwargs

        # `samples` and `batch_size` (the global batch) place a shard's part in its global batch.
        self.seed, self.io = seed, io
        self.shard = shard if shard is not None and not shard.trivial and samples and batch_size else None
        self.samples, self.global_batch = samples or 0, batch_size or 0
        self.seeds = _BatchSeeds()
        self.chains: dict[str, list[Any]] = {}
        self.eval_chains: dict[str, list[Any]] = {}
        for port in io.inputs:
            chain = spec.get(port.name, spec.get(port.keras_name))
            if not chain:
                continue
            made = []
            for item in chain:
                layer = getattr(keras.layers, item.type)(**layer_kwargs(item.args, _no_nested))
                for sub in layer._flatten_layers(include_self=True, recursive=True):
                    sub._get_seed_generator = self._seed_generator
                made.append(layer)
            self.chains[port.keras_name] = made
            # Keras's RandomCrop passes images through uncropped in inference mode: the centre fits the model.
            self.eval_chains[port.keras_name] = [
                keras.layers.CenterCrop(layer.height, layer.width, data_format=layer.data_format)
                if isinstance(layer, keras.layers.RandomCrop) else layer for layer in made]
        self.single = len(io.inputs) == 1

    def _seed_generator(self, backend: Any = None) -> _BatchSeeds:
        return self.seeds

    def __bool__(self) -> bool:
        return bool(self.chains)

    # -- one batch
    def _apply(self, x: Any, training: bool) -> Any:
        if self.single:
            name = self.io.inputs[0].keras_name
            return self._chain(name, x, training) if name in self.chains else x
        return {k: self._chain(k, v, training) if k in self.chains else v for k, v in x.items()}

    def _chain(self, name: str, x: Any, training: bool) -> Any:
        for layer in (self.chains if training else self.eval_chains)[name]:
            x = layer(x, training=training)
        return x

    def batch(self, x: Any, epoch: int, step: int) -> Any:
        """A training batch (NumPy in, NumPy out: this process's part of global batch `step` of `epoch`),
        augmented with the seeds of (epoch, step) as in its place in the global batch.

        The backend-neutral entry point: what a Python pipeline (PyDataset, Grain) calls per batch."""
        self.seeds.begin(_mix(self.seed, epoch, 0), step, _backend_seed)
        if self.shard is None:
            return _numpy(self._apply(x, True))
        local = len(next(iter(x.values())) if isinstance(x, dict) else x)
        offset, total = self._place(step, local)
        placed = _map(x, lambda a: np.concatenate([np.zeros((offset, *a.shape[1:]), a.dtype), a,
                                                   np.zeros((total - offset - local, *a.shape[1:]), a.dtype)]))
        return _map(_numpy(self._apply(placed, True)), lambda a: a[offset:offset + local])

    def fed(self, x: Any, y: Any, epoch: int, step: int) -> tuple[Any, Any]:
        """Training batch (x, y) of a Python pipeline (PyDataset, Grain) as the model is fed it: x augmented
        (:meth:`batch`), and recorded when `GRAPHSPEC_DEBUG_AUGMENT` is set."""
        x = self.batch(x, epoch, step)
        if os.environ.get(RECORD):
            _record(os.environ[RECORD], self, epoch, step, x, y)
        return x, y

    def _place(self, step: int, local: int) -> tuple[int, int]:
        """(offset, size) of this process's `local` samples in global batch `step`."""
        assert self.shard is not None
        return self.shard.index * local, min(self.global_batch, self.samples - step * self.global_batch)

    def inference(self, x: Any) -> Any:
        """An evaluation batch through the layers in inference mode (NumPy in and out): the random ones
        leave it as it is, a crop takes its centre."""
        return _numpy(self._apply(x, False))

    # -- whole streams
    def train(self, ds: Any, *, first_epoch: int, steps: int, prefetch: bool | int = True) -> Any:
        """The training batches (a tf.data dataset, a Grain pipeline or a PyDataset of (x, y) from `first_epoch`
        on), augmented, and prefetched as `data.prefetch` says (`ds` is made without its prefetch, so that the
        augmentation runs before it, in the pipeline's threads)."""
        from graphspec.run import grain_feed

        if grain_feed.is_grain(ds):  # Grain (JAX, PyTorch): a map by batch index, in its decoding threads
            return grain_feed.augmented(ds, lambda i, b: self.fed(b[0], b[1], first_epoch + i // steps, i % steps),
                                        prefetch=prefetch)
        if not hasattr(ds, "element_spec"):
            return _Augmented(ds, self, first_epoch=first_epoch, steps=steps)
        import tensorflow as tf

        folder = os.environ.get(RECORD)

        def one(i: Any, batch: Any) -> Any:
            x, y = batch
            epoch, step = first_epoch + i // steps, i % steps
            out = augmented(x, epoch, step)
            return (out if not folder else _tf_record(folder, self, epoch, step, out, y)), y

        def augmented(x: Any, epoch: Any, step: Any) -> Any:
            self.seeds.begin(_mix(self.seed, epoch, 0), step, _tf_seed)
            if self.shard is None:
                return self._apply(x, True)
            local = tf.shape(next(iter(x.values())) if isinstance(x, dict) else x)[0]
            offset = tf.cast(self.shard.index, tf.int32) * local
            total = tf.cast(tf.minimum(tf.cast(self.global_batch, tf.int64),
                                       self.samples - step * self.global_batch), tf.int32)

            def pad(a: Any) -> Any:
                return tf.pad(a, [[offset, total - offset - local]] + [[0, 0]] * (len(a.shape) - 1))

            return _map(self._apply(_map(x, pad), True), lambda a: a[offset:offset + local])

        from graphspec.run import streams

        inside = streams.joined(ds, one)  # a streamed split: in the stream's own batch map
        if inside is not None:
            return streams.prefetched(inside, prefetch)
        options = tf.data.Options()
        options.experimental_optimization.map_fusion = True  # the pipeline's last map and this one: one map
        ds = ds.enumerate().map(one, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
        return streams.prefetched(ds, prefetch).with_options(options)

    def evaluation(self, ds: Any, *, targets: bool = True) -> Any:
        """Validation, test or predict batches through the layers in inference mode."""
        if ds is None:
            return ds
        from graphspec.run import grain_feed

        if grain_feed.is_grain(ds):
            return grain_feed.augmented(ds, lambda i, b: (self.inference(b[0]), *b[1:]) if targets or isinstance(
                b, tuple) else self.inference(b))
        if not hasattr(ds, "element_spec"):
            return _Augmented(ds, self, targets=targets)
        if targets:
            return ds.map(lambda x, y: (self._apply(x, False), y))
        return ds.map(lambda x: self._apply(x, False))


def _no_nested(type_name: str, args: dict[str, Any], name: str | None) -> Any:
    raise ValueError(f"`data.augment` layers take no nested layer ({type_name})")


def _map(x: Any, f: Any) -> Any:
    return {k: f(v) for k, v in x.items()} if isinstance(x, dict) else f(x)


def _numpy(x: Any) -> Any:
    if isinstance(x, dict):
        return {k: _numpy(v) for k, v in x.items()}
    return keras.ops.convert_to_numpy(x)


class _Augmented(keras.utils.PyDataset):
    """A PyDataset's batches through :class:`Augment`: training batch i is step i % steps of epoch
    first_epoch + i // steps (the order of :class:`graphspec.run.pipeline.TrainBatches`); without
    `steps`, evaluation batches in inference mode."""

    def __init__(self, inner: Any, augment: Augment, *, first_epoch: int = 0, steps: int | None = None,
                 targets: bool = True) -> None:
        super().__init__(workers=getattr(inner, "workers", 1) or 1, use_multiprocessing=False)
        self.inner, self.augment, self.first_epoch, self.steps, self.targets = inner, augment, first_epoch, steps, \
            targets

    @property
    def num_batches(self) -> int | None:
        return self.inner.num_batches  # type: ignore[no-any-return]

    def __len__(self) -> int:
        return len(self.inner)

    def __getitem__(self, i: int) -> Any:
        item = self.inner[i]
        if self.steps is None:
            if self.targets or isinstance(item, tuple):
                return (self.augment.inference(item[0]), *item[1:])
            return self.augment.inference(item)
        x, y = item
        return self.augment.fed(x, y, self.first_epoch + i // self.steps, i % self.steps)


RECORD = "GRAPHSPEC_DEBUG_AUGMENT"


def _record(folder: str, augment: Augment, epoch: int, step: int, x: Any, y: Any) -> None:
    """(Debugging, `GRAPHSPEC_DEBUG_AUGMENT=FOLDER`) write the augmented training batch this process fed as
    FOLDER/p{process}-e{epoch}-s{step}.npz (x, y: the first input and output): on the PyDataset and Grain
    paths (:meth:`Augment.fed`) and on TensorFlow's (:meth:`Augment.train`, through `tf.numpy_function`)."""
    first = next(iter(x.values())) if isinstance(x, dict) else x
    target = y[0] if isinstance(y, tuple) else y
    index = augment.shard.index if augment.shard is not None else 0
    np.savez(os.path.join(folder, f"p{index}-e{epoch}-s{step}.npz"), x=np.asarray(first), y=np.asarray(target))


def _tf_record(folder: str, augment: Augment, epoch: Any, step: Any, x: Any, y: Any) -> Any:
    """:func:`_record` inside a `tf.data` map: x, once the batch is written."""
    import tensorflow as tf

    def write(e: Any, s: Any, first: Any, target: Any) -> Any:
        _record(folder, augment, int(e), int(s), first, target)
        return np.int64(0)

    first = next(iter(x.values())) if isinstance(x, dict) else x
    done = tf.numpy_function(write, [epoch, step, first, y[0] if isinstance(y, tuple) else y], tf.int64)
    with tf.control_dependencies([done]):
        return _map(x, tf.identity)


def for_inference(data: Any, io: ModelIO) -> Augment | None:
    """The `data.augment` layers of a spec's data section for evaluate and predict (inference mode), if any."""
    if data is None or not data.augment:
        return None
    return Augment(data.augment, io, seed=0)
