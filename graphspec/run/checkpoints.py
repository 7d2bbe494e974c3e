"""A training run's checkpoint: when it is written, and what.

Every completed epoch goes into the metrics files at once (:meth:`graphspec.run.trainer.Trainer.save_epoch`).
The checkpoint is the model with its optimizer state (`checkpoints/epoch-NNNN.keras`, `last.keras`), the best
model (`best.keras`) and the `state.json` that names them, which `--resume` reads. It is written at most every
`train.checkpoint.every` seconds (0: after every epoch): one `.keras` write is 10 to 20 ms for a small model
(Keras's serializer and h5py), 6 % of a 0.3-s epoch, and seconds for a large one. It is always written for
epoch 0, the last epoch and an epoch after which the run stops (early stopping, a signal, a multi-process stop
agreed on), and, when `fit` returns, for the last completed epoch (a sweep's pruner, an epoch interrupted and
discarded, a non-finite loss). Only a process killed outright (kill -9, a crash, a second Ctrl-C) loses the
epochs since the last checkpoint; `--resume` trains them again, with the same data order and RNG state.

An epoch that is not written at its end is kept in memory (:class:`Epoch`): a host copy of the model's and the
optimizer's variables, and the state fields of that moment (callbacks, seed generators, learning rate). It is
written from that copy when the model in memory has moved on: into an epoch that is then discarded, or to
EarlyStopping's best weights. The best epoch, while `best.keras` is not it yet, is kept the same way and
written as `best.keras` with the next checkpoint. At most two such copies exist at once (the last epoch and an
older best one); a model whose variables, with the optimizer's, take more than :data:`COPY_LIMIT` bytes is not
copied: its checkpoint is written after every epoch (for such a model the `.keras` write is a small part of an
epoch, and two copies would be a lot of memory).
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
import time
from pathlib import Path
from typing import Any, Protocol

from graphspec.run import artifacts, folder_guard
from graphspec.run.folders import BEST, CHECKPOINTS, HISTORY, LAST, METRICS

COPY_LIMIT = 256 * 2**20  # bytes of variables above which every epoch is written rather than copied


@dataclasses.dataclass
class Epoch:
    """A completed epoch: its number, its variables (host copies; None while the model in memory is it) and
    the `state.json` fields of its end."""

    done: int
    values: list[Any] | None
    fields: dict[str, Any]


class Owner(Protocol):
    """What :class:`Checkpoints` needs of the training session (:class:`graphspec.run.trainer.Trainer`)."""

    model: Any
    run_dir: Path
    epochs: int
    monitor: str
    mode: str
    in_memory_epoch: int | None

    def epoch_fields(self) -> dict[str, Any]:
        """The state fields of this moment, for the epoch just completed."""
        ...

    def write_state(self, **changes: Any) -> None: ...


def variables(model: Any) -> list[Any]:
    """The variables a `.keras` file holds: the model's and its optimizer's, each once."""
    optimizer = getattr(model, "optimizer", None)
    found: dict[int, Any] = {}
    for v in [*model.variables, *(optimizer.variables if optimizer is not None else [])]:
        found.setdefault(id(v), v)
    return list(found.values())


def snapshot(model: Any) -> list[Any]:
    """Host copies of :func:`variables` (copies: JAX's training step donates the buffers it is given)."""
    import numpy as np

    return [np.array(v.numpy(), copy=True) for v in variables(model)]  # (`numpy()`: also a TF mirrored variable)


def size(model: Any) -> int:
    """Bytes of :func:`variables` (an item's from its dtype's name: `bfloat16` is no NumPy dtype)."""
    total = 0
    for v in variables(model):
        bits = "".join(c for c in str(v.dtype) if c.isdigit())
        count = 1
        for d in v.shape:
            count *= int(d)
        total += count * (int(bits) // 8 if bits else 1)
    return total


def restore(model: Any, values: list[Any]) -> None:
    for v, value in zip(variables(model), values, strict=True):
        v.assign(value)


class Checkpoints:
    """When to write the run's checkpoint, and the epochs kept until then (see the module's docstring)."""

    def __init__(self, owner: Owner, every: float, best: dict[str, Any] | None) -> None:
        self.t = owner
        self.every = every
        self.copyable: bool | None = None  # whether the model is small enough to copy (known at the first copy)
        self.best = best  # the best epoch so far: {monitor, mode, value, epoch}; `best.keras` once written
        self.written_at = time.monotonic()
        self.pending: Epoch | None = None  # the last completed epoch, when it is not written yet
        self.best_pending: Epoch | None = None  # the best epoch, when `best.keras` is not it yet

    def epoch_end(self, done: int, value: float | None, *, stopping: bool) -> bool:
        """Epoch `done` is complete and the model in memory is it: write the checkpoint, or keep the epoch.
        `value` is the monitored metric's; `stopping`: the run stops after this epoch. True if the best
        improved."""
        improved = done > 0 and value is not None and math.isfinite(value) and self._better(value)
        if improved:
            self.best = {"monitor": self.t.monitor, "mode": self.t.mode, "value": value, "epoch": done}
        due = (done == 0 or done >= self.t.epochs or stopping or self.every <= 0
               or time.monotonic() - self.written_at >= self.every)
        if not due and self.copyable is None:  # (the optimizer is built by now)
            self.copyable = size(self.t.model) <= COPY_LIMIT
        due = due or not self.copyable
        epoch = Epoch(done, None if due else snapshot(self.t.model), self.t.epoch_fields())
        if improved:
            self.best_pending = epoch
        if due:
            self._write(epoch)
        else:
            self.pending = epoch
            self.t.in_memory_epoch = None  # the model is no checkpoint's yet
        return improved

    def flush(self) -> None:
        """`fit` returned: write the last completed epoch if it is not written (the model in memory may be
        past it, or EarlyStopping's best)."""
        if self.pending is None:
            return
        assert self.pending.values is not None
        restore(self.t.model, self.pending.values)
        self._write(self.pending)

    def _better(self, value: float) -> bool:
        old = (self.best or {}).get("value")
        return old is None or (value < old if self.t.mode == "min" else value > old)

    def _write(self, epoch: Epoch) -> None:
        """The model in memory is `epoch`: its checkpoint and `last.keras`, `best.keras` if the best epoch is not
        on disk yet, the metrics files made durable, then the state naming them; older checkpoints are removed."""
        run_dir, model = self.t.run_dir, self.t.model
        folder_guard.check_run_folder(run_dir)  # again: nothing written or deleted through a link
        ckpt = run_dir / CHECKPOINTS / f"epoch-{epoch.done:04d}.keras"
        artifacts.save_model(model, ckpt)
        best = self.best_pending
        if best is epoch:
            artifacts.link_into_place(ckpt, run_dir / BEST)
        elif best is not None:  # an earlier epoch, kept in memory: written from its copy
            assert best.values is not None
            current = epoch.values if epoch.values is not None else snapshot(model)
            restore(model, best.values)
            artifacts.save_model(model, run_dir / BEST)
            restore(model, current)
        artifacts.link_into_place(ckpt, run_dir / LAST)
        artifacts.sync(run_dir / HISTORY, run_dir / METRICS)  # written without fsync since the last checkpoint
        self.t.in_memory_epoch = epoch.done  # the model in memory is this checkpoint (until a callback changes it)
        self.t.write_state(epochs_completed=epoch.done, checkpoint=f"{CHECKPOINTS}/{ckpt.name}", best=self.best,
                           **epoch.fields)
        self.pending = self.best_pending = None
        self.written_at = time.monotonic()
        for old in ckpt.parent.glob("epoch-*.keras"):
            if old != ckpt:
                with contextlib.suppress(OSError):
                    old.unlink()
