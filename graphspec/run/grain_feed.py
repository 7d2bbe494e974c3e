"""Feeding streamed splits (:class:`graphspec.run.sources.Stream`) to Keras through Grain on JAX and PyTorch.

The pipeline is Grain's own (`grain.MapDataset` -> `.map` -> `.to_iter_dataset(grain.ReadOptions(...))`),
which `model.fit` takes as it is: no TensorFlow, no loader of ours. Each element of the map dataset is one
batch of this process: its rows (the sample order of :func:`graphspec.run.streams.epoch_order`, cut by
:func:`graphspec.run.sources.listing.local_order`), decoded with the reader's NumPy `load`, stacked, through
the spec's `data.transforms`. Grain decodes `data.workers` batches at once in threads and keeps
`data.prefetch` batches ready ahead of the model.

Training is one stream of every epoch from `first_epoch` on (fit reads it with `steps_per_epoch`): element
i is step i % steps of epoch first_epoch + i // steps, so a partial last batch never straddles two epochs
and a resumed run, which starts its stream at its first epoch, reads the same batches. Augmentation
(`data.augment`) is a map over the same elements by index (:func:`augmented`), in Grain's threads too.
"""

from __future__ import annotations

import os
import threading
import weakref
from collections.abc import Callable, Sequence
from typing import Any


# The map dataset, read options and `data.workers` of every pipeline made here, so that augmentation joins it
# before the threads.
_MADE: weakref.WeakKeyDictionary[Any, tuple[Any, Any, int | None]] = weakref.WeakKeyDictionary()
Rows = Any  # row numbers: an int64 NumPy array (a slice of one is a batch)


def is_grain(ds: Any) -> bool:
    """Whether `ds` is a Grain dataset made here (what :func:`augmented` takes)."""
    try:
        return ds in _MADE
    except TypeError:  # not hashable: not one of ours
        return False


def steps(ds: Any) -> int | None:
    """The number of batches of a finite pipeline made here, else None. Keras's Grain adapter knows no length:
    given none, `evaluate`, `predict` and a validation pass read until the iterator is exhausted, and Keras
    then warns that the input "ran out of data; interrupting training" (at the end of every such pass)."""
    made = _MADE.get(ds) if is_grain(ds) else None
    return len(made[0]) if made is not None else None


def threads(workers: int | None) -> int:
    """Grain's decoding threads: `data.workers`, else one per CPU but one (at least 1, at most 8). The one left is
    the training step's: on 2 cores, one thread fed specs/resnet.yaml's augmented images at 2,932 images/s, two
    at 1,596 (their Python and JAX dispatch contend), and an epoch of training took the same with either."""
    return int(workers) if workers else max(1, min(8, (os.cpu_count() or 1) - 1))


def _read_options(workers: int | None, prefetch: bool | int) -> Any:
    import grain

    n = threads(workers)
    buffer = max(2 * n, 4) if prefetch is True else int(prefetch)
    return grain.ReadOptions(num_threads=n if buffer else 0, prefetch_buffer_size=buffer)


class TrainRows(Sequence[Rows]):
    """The rows of every training batch of epochs first_epoch..epochs-1 (this process's part of each), each epoch's
    order drawn when first asked for (Grain's threads ask concurrently: one lock, the last two epochs kept)."""

    def __init__(self, order: Callable[[int], Rows], *, first_epoch: int, epochs: int, steps: int,
                 local_batch: int) -> None:
        self.order, self.first_epoch, self.steps, self.local_batch = order, first_epoch, steps, local_batch
        self.n = max(0, epochs - first_epoch) * steps
        self._lock = threading.Lock()
        self._epochs: dict[int, Rows] = {}

    def __len__(self) -> int:
        return self.n

    def epoch_rows(self, epoch: int) -> Rows:
        with self._lock:
            rows = self._epochs.get(epoch)
            if rows is None:
                rows = self._epochs[epoch] = self.order(epoch)
                for old in [e for e in self._epochs if e < epoch - 1 or e > epoch + 1]:
                    del self._epochs[old]
            return rows

    def __getitem__(self, i: Any) -> Any:
        if isinstance(i, slice):
            return [self[j] for j in range(*i.indices(self.n))]
        if not 0 <= i < self.n:
            raise IndexError(i)
        epoch, step = self.first_epoch + i // self.steps, i % self.steps
        return self.epoch_rows(epoch)[step * self.local_batch:(step + 1) * self.local_batch]


class EvalRows(Sequence[Rows]):
    """Fixed rows (listing order) in batches of `local_batch`."""

    def __init__(self, rows: Rows, local_batch: int) -> None:
        self.rows, self.local_batch = rows, local_batch

    def __len__(self) -> int:
        return -(-len(self.rows) // self.local_batch) if len(self.rows) else 0

    def __getitem__(self, i: Any) -> Any:
        if isinstance(i, slice):
            return [self[j] for j in range(*i.indices(len(self)))]
        if not 0 <= i < len(self):
            raise IndexError(i)
        return self.rows[i * self.local_batch:(i + 1) * self.local_batch]


def _pipeline(batches: Sequence[Rows], load: Callable[[Rows], Any], workers: int | None,
              prefetch: bool | int) -> Any:
    import grain

    base = grain.MapDataset.source(batches).map(load)
    options = _read_options(workers, prefetch)
    ds = base.to_iter_dataset(options)
    _MADE[ds] = (base, options, workers)
    return ds


def train_dataset(order: Callable[[int], tuple[Rows, int]], load: Callable[[Rows], Any], *, steps: int,
                  first_epoch: int, epochs: int, workers: int | None, prefetch: bool | int = True) -> Any:
    """Training batches for epochs first_epoch..epochs-1 as a `grain.IterDataset`: `order(epoch)` gives this
    process's rows of an epoch and its batch size, `load(rows)` one batch as the model takes it."""
    rows = TrainRows(lambda epoch: order(epoch)[0], first_epoch=first_epoch, epochs=epochs, steps=steps,
                     local_batch=order(first_epoch)[1])
    return _pipeline(rows, load, workers, prefetch)


def eval_dataset(rows: Rows, local_batch: int, load: Callable[[Rows], Any], *, workers: int | None,
                 prefetch: bool | int = True) -> Any:
    """The rows `rows` in order, in batches of `local_batch`, as a `grain.IterDataset`."""
    return _pipeline(EvalRows(rows, local_batch), load, workers, prefetch)


def augmented(ds: Any, fn: Callable[[int, Any], Any], *, prefetch: bool | int | None = None) -> Any:
    """A pipeline made here with each batch through `fn(index, batch)` (index: its position in the stream), in the
    same decoding threads: `ds`'s own, or, given `prefetch`, `data.workers` threads and that prefetch (a training
    stream is made without either, so that its threads run the augmentation too)."""
    base, options, workers = _MADE[ds]
    if prefetch is not None:
        options = _read_options(workers, prefetch)
    out_base = base.map_with_index(fn)
    out = out_base.to_iter_dataset(options)
    _MADE[out] = (out_base, options, workers)
    return out
