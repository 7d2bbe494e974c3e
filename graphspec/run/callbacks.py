"""Callbacks of a training run: the per-epoch bookkeeping callback, progress display, TensorBoard,
stopping on SIGINT/SIGTERM, the non-finite loss guard and the learning-rate schedule.

The bookkeeping callback (:class:`RunCallback`) calls back into the training session
(:class:`graphspec.run.trainer.Trainer`, seen here through the :class:`Session` protocol) to save
each completed epoch.
"""

from __future__ import annotations

import contextlib
import math
import signal
import threading
import time
from collections.abc import Iterator
from typing import Any, Protocol

import numpy as np

from graphspec.spec import schema_run
from graphspec.build.backend import keras


def _finite(logs: dict[str, Any]) -> bool:
    for key, value in logs.items():
        if key.endswith("loss"):
            try:
                if not math.isfinite(float(value)):
                    return False
            except (TypeError, ValueError):
                return False
    return True


class Stop:
    """Why training should stop early: a signal, set from the signal handler."""

    def __init__(self) -> None:
        self.signum: int | None = None
        self.event = threading.Event()

    def request(self, signum: int) -> None:
        self.signum = signum
        self.event.set()

    @property
    def requested(self) -> bool:
        return self.event.is_set()


@contextlib.contextmanager
def stop_on_signals(stop: Stop, say: Any) -> Iterator[None]:
    """SIGINT/SIGTERM: the first one asks training to stop after a consistent checkpoint; a second
    SIGINT interrupts at once (files stay consistent: every write is atomic)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum: int, frame: Any) -> None:
        if stop.requested and signum == signal.SIGINT:
            raise KeyboardInterrupt
        stop.request(signum)
        say(f"{signal.Signals(signum).name}: stopping; the last completed epoch is kept "
            "(press Ctrl-C again to quit at once)")

    old = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}
    for s in old:
        signal.signal(s, handler)
    try:
        yield
    finally:
        for s, h in old.items():
            signal.signal(s, h)


class EpochProgress(keras.callbacks.Callback):
    """A rich progress bar per epoch on a terminal; one line per epoch elsewhere."""

    async_safe = True
    inline_batch_hooks = True  # a flag and a clock per batch; the loss read every 0.15 s (see StepCallbacks)

    def __init__(self, console: Any, epochs: int, steps: int, live: bool) -> None:
        super().__init__()
        self.console = console
        self.epochs = epochs
        self.steps = steps
        self.live = live
        self.progress: Any = None
        self.task: Any = None
        self.last = 0.0
        self.done = 0
        self.in_eval = False

    def on_train_begin(self, logs: Any = None) -> None:
        if self.live:
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

            self.progress = Progress(
                TextColumn("epoch {task.fields[epoch]}"), BarColumn(bar_width=24), MofNCompleteColumn(),
                TimeElapsedColumn(), TextColumn("{task.fields[metrics]}"),
                console=self.console, refresh_per_second=8,
            )
            self.progress.start()

    def on_epoch_begin(self, epoch: int, logs: Any = None) -> None:
        self.epoch_started = time.monotonic()
        self.done = 0
        if self.progress is not None:
            self.task = self.progress.add_task("", total=self.steps, epoch=f"{epoch + 1}/{self.epochs}",
                                               metrics="")

    def on_train_batch_end(self, batch: int, logs: Any = None) -> None:
        if self.progress is None:
            return
        now = time.monotonic()
        if now - self.last < 0.15 and batch + 1 < self.steps:
            return
        self.last = now
        self.done = max(self.done, batch + 1)  # batch callbacks may finish out of order
        text = ""
        if logs and "loss" in logs:
            try:
                text = f"loss {float(logs['loss']):.4f}"
            except (TypeError, ValueError):
                pass
        self.progress.update(self.task, completed=self.done, metrics=text)

    def epoch_done(self, epoch: int, logs: dict[str, Any], note: str = "") -> None:
        text = _metrics_text(logs) + note
        seconds = time.monotonic() - getattr(self, "epoch_started", time.monotonic())
        if self.progress is not None and self.task is not None:
            self.progress.update(self.task, completed=self.steps, metrics=text)
        else:
            self.console.print(f"epoch {epoch + 1}/{self.epochs}: {text} ({seconds:.1f} s)", highlight=False,
                               markup=False, soft_wrap=True)

    def on_train_end(self, logs: Any = None) -> None:
        if self.progress is not None:
            self.progress.stop()
            self.progress = None


def _metrics_text(logs: dict[str, Any]) -> str:
    parts = []
    for k, v in logs.items():
        if k in {"epoch", "time", "learning_rate"}:
            continue
        try:
            parts.append(f"{k} {float(v):.4f}")
        except (TypeError, ValueError):
            continue
    return " - ".join(parts)


class EpochTensorBoard(keras.callbacks.TensorBoard):
    """TensorBoard with per-epoch summaries only: nothing runs per batch, so batches stay asynchronous.

    On JAX and PyTorch it writes through graphspec.run.tb_events (TensorBoard's protos and record writer) instead
    of `tensorflow.summary`: the same events, without importing TensorFlow."""

    async_safe = True
    inline_batch_hooks = True  # they do nothing

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        if keras.backend.backend() != "tensorflow":
            from graphspec.run.tb_events import Summary

            self._summary_module = Summary()

    def _write_keras_model_summary(self) -> None:
        from graphspec.run.tb_events import Summary

        if not isinstance(self._summary_module, Summary):
            super()._write_keras_model_summary()
        elif type(self.model).__name__ in ("Functional", "Sequential"):  # as Keras writes it
            with self._train_writer.as_default():
                self._summary_module.keras_model("keras", self.model, step=0)

    def on_train_batch_begin(self, batch: int, logs: Any = None) -> None:
        pass

    def on_train_batch_end(self, batch: int, logs: Any = None) -> None:
        pass


class _StepTracking:
    """Keras's attribute tracking, turned off in this thread while `fit`, `evaluate` or `predict` steps.

    Keras's JAX loop stores the training state on the model after every step (``self._jax_state = {...}``), and
    `Layer.__setattr__` wraps that dict and each of its lists in tracking containers and looks at every array in
    them: about 20 calls per step that track nothing (JAX arrays are not variables, layers or metrics), 4 % of a
    small model's epoch. Keras's own ``DotNotTrackScope`` turns tracking off for the thread.

    It is off only between the loops' start and end, after Keras has built the model, its optimizer and metrics
    (which need it), and back on for the work at the end of each epoch (checkpoints, early stopping, a sweep's
    report), which runs as in a plain `fit`. The flag is Keras's per thread: callbacks Keras runs in its
    threads see it on. :func:`untracked_steps` restores it however `fit` ends.
    """

    def __init__(self, flag: Any, enabled: Any) -> None:
        self.flag, self.enabled = flag, enabled  # Keras's setter of per-thread globals, its tracking query
        self.outer = True
        self.depth = 0

    def begin(self, steps_next: bool = True) -> None:  # fit, evaluate or predict starts (nested: fit's validation)
        if self.depth == 0:
            self.outer = self.enabled()
        self.depth += 1
        if steps_next:
            self.off()

    def end(self) -> None:
        self.depth = max(0, self.depth - 1)
        if self.depth == 0:
            self.restore()

    def off(self) -> None:
        self.flag("tracking_on", False)

    def restore(self) -> None:
        self.flag("tracking_on", self.outer)


class _TrackingOn(keras.callbacks.Callback):
    """First of the callbacks: tracking back on before the others' end-of-epoch work."""

    async_safe = True

    def __init__(self, state: _StepTracking) -> None:
        super().__init__()
        self.state = state

    def on_epoch_end(self, epoch: int, logs: Any = None) -> None:
        self.state.restore()

    def on_train_end(self, logs: Any = None) -> None:
        self.state.restore()


class _TrackingOff(keras.callbacks.Callback):
    """Last of the callbacks: tracking off once the others have begun (the steps follow)."""

    async_safe = True

    def __init__(self, state: _StepTracking) -> None:
        super().__init__()
        self.state = state

    def on_train_begin(self, logs: Any = None) -> None:
        self.state.begin(steps_next=False)  # the first epoch's start comes first

    def on_epoch_begin(self, epoch: int, logs: Any = None) -> None:
        self.state.off()

    def on_train_end(self, logs: Any = None) -> None:
        self.state.end()

    def on_test_begin(self, logs: Any = None) -> None:
        self.state.begin()

    def on_test_end(self, logs: Any = None) -> None:
        self.state.end()

    def on_predict_begin(self, logs: Any = None) -> None:
        self.state.begin()

    def on_predict_end(self, logs: Any = None) -> None:
        self.state.end()


@contextlib.contextmanager
def untracked_steps(callbacks: list[Any] | None = None) -> Iterator[list[Any]]:
    """`callbacks` with the pair that turns Keras's attribute tracking off while the steps run (see
    :class:`_StepTracking`), for ``model.fit/evaluate/predict(..., callbacks=...)``; the thread's tracking is
    as it was when the block ends, however it ends. On JAX only (the other backends' loops store nothing per
    step), and only where Keras has the scope it uses itself."""
    callbacks = list(callbacks or [])
    try:
        from keras.src.backend.common import global_state
        from keras.src.utils import tracking
    except ImportError:  # another Keras: nothing to turn off
        yield callbacks
        return
    enabled = getattr(tracking, "is_tracking_enabled", None)
    flag = getattr(global_state, "set_global_attribute", None)
    if keras.backend.backend() != "jax" or enabled is None or flag is None:
        yield callbacks
        return
    state = _StepTracking(flag, enabled)
    before = enabled()
    try:
        yield [_TrackingOn(state), *callbacks, _TrackingOff(state)]
    finally:
        flag("tracking_on", before)


# The batch hooks of each of `fit`'s, `evaluate`'s and `predict`'s loops, with the legacy names Keras's
# `on_train_batch_*` defaults call.
_BATCH_HOOKS = {"train": (("on_train_batch_begin", "on_batch_begin"), ("on_train_batch_end", "on_batch_end")),
                "test": (("on_test_batch_begin",), ("on_test_batch_end",)),
                "predict": (("on_predict_batch_begin",), ("on_predict_batch_end",))}


def _overrides(callback: Any, names: tuple[str, ...]) -> bool:
    return any(getattr(type(callback), n, None) is not getattr(keras.callbacks.Callback, n) for n in names)


class StepCallbacks(keras.callbacks.CallbackList):
    """Keras's `CallbackList`, with the batch hooks of graphspec's own callbacks called in line.

    Once every callback is async-safe (JAX, PyTorch), Keras hands each batch's end to a thread pool, which converts
    the step's logs to Python numbers before it calls the callbacks: a future, a thread switch and a wait for the
    step, per batch, whether or not any callback has a batch hook (16 % of a small MLP's `fit` on JAX with 2 CPU
    cores; on TensorFlow the conversion waits for each step in the loop itself). graphspec's callbacks
    (``inline_batch_hooks = True``) look at flags per batch and read a loss at most a few times a second, from the
    logs as the step returned them: a loop whose batch hooks are all theirs calls just those, in the loop's thread.
    Any other callback with a batch hook (a user's, Keras's progress bar) gets Keras's own dispatch for that loop.
    """

    def __init__(self, callbacks: list[Any], **kwargs: Any) -> None:
        super().__init__(callbacks, **kwargs)
        self._inline: dict[str, list[Any]] = {}
        for loop, (begin, end) in _BATCH_HOOKS.items():
            hooked = [cb for cb in self.callbacks if _overrides(cb, begin + end)]
            if not all(getattr(cb, "inline_batch_hooks", False) for cb in hooked):
                continue  # Keras's dispatch
            self._inline[begin[0]] = [cb for cb in hooked if _overrides(cb, begin)]
            self._inline[end[0]] = [cb for cb in hooked if _overrides(cb, end)]
            if hasattr(self, f"_async_{loop}"):
                setattr(self, f"_async_{loop}", False)  # no thread pool for a loop that dispatches nothing to it

    def _call(self, hook: str, batch: int, logs: Any) -> None:
        callbacks = self._inline.get(hook)
        if callbacks is None:
            getattr(super(), hook)(batch, logs)  # Keras's dispatch
            return
        for cb in callbacks:
            getattr(cb, hook)(batch, logs)

    def on_train_batch_begin(self, batch: int, logs: Any = None) -> None:
        self._call("on_train_batch_begin", batch, logs)

    def on_train_batch_end(self, batch: int, logs: Any = None) -> None:
        self._call("on_train_batch_end", batch, logs)

    def on_test_batch_begin(self, batch: int, logs: Any = None) -> None:
        self._call("on_test_batch_begin", batch, logs)

    def on_test_batch_end(self, batch: int, logs: Any = None) -> None:
        self._call("on_test_batch_end", batch, logs)

    def on_predict_batch_begin(self, batch: int, logs: Any = None) -> None:
        self._call("on_predict_batch_begin", batch, logs)

    def on_predict_batch_end(self, batch: int, logs: Any = None) -> None:
        self._call("on_predict_batch_end", batch, logs)


@contextlib.contextmanager
def step_callbacks(model: Any, callbacks: list[Any] | None = None, *, history: bool = False,
                   **params: Any) -> Iterator[StepCallbacks]:
    """The callbacks for ``model.fit/evaluate/predict(..., callbacks=..., verbose=0)``, as Keras would list them
    (`history` for `fit`; `params` as Keras gives its callbacks: epochs, steps), with :func:`untracked_steps`'
    pair and graphspec's batch hooks called in line (:class:`StepCallbacks`)."""
    with untracked_steps(callbacks) as every:
        yield StepCallbacks(every, add_history=history, add_progbar=False, model=model, verbose=0, **params)


def close_tensorboard(callbacks: list[Any]) -> None:
    """Close the TensorBoard callback's event files. Keras closes them in `on_train_end`, which a failed `fit`
    (a full disk, a stop) never reaches: their files would stay open in this process (an in-process run, a
    sweep's trials), and a file system they are on could not be unmounted. A write error on this last flush
    is the failure already being reported."""
    for cb in callbacks:
        for writer in list(getattr(cb, "_writers", {}).values()) if isinstance(cb, EpochTensorBoard) else []:
            with contextlib.suppress(Exception):  # noqa: BLE001 - see the docstring
                writer.close()


class Session(Protocol):
    """What :class:`RunCallback` needs of the training session (:class:`graphspec.run.trainer.Trainer`)."""

    train_spec: schema_run.TrainSpec
    epochs: int
    steps: int
    initial_lr: float
    stop: Stop
    fitting: bool
    history: list[dict[str, Any]]
    failed_epoch: int | None
    failed_logs: dict[str, Any]
    progress: EpochProgress
    multi_process: bool  # several processes stop together, at an epoch's end, never inside one

    def agree_stop(self) -> bool:
        """Whether any process was asked to stop (several processes: a collective, once per epoch)."""
        ...

    def restore_callback_state(self) -> None: ...

    def save_epoch(self, epochs_done: int, row: dict[str, Any], stopping: bool = False) -> bool: ...


class RunCallback(keras.callbacks.Callback):
    """Checkpoints, metrics files, the best model, resume state, NaN guard, signal stop, LR schedule."""

    async_safe = True
    inline_batch_hooks = True  # flags per batch; the loss read every 0.25 s (see StepCallbacks)

    def __init__(self, trainer: Session) -> None:
        super().__init__()
        self.t = trainer
        self.last_step = -1
        self.step_lock = threading.Lock()
        self.last_check = 0.0
        self.epoch_lr: float | None = None
        self.epoch_started = 0.0

    # -- state of Keras's own callbacks, for resume
    def on_train_begin(self, logs: Any = None) -> None:
        self.t.restore_callback_state()

    def on_epoch_begin(self, epoch: int, logs: Any = None) -> None:
        self.last_step = -1
        self.epoch_started = time.monotonic()
        sched = self.t.train_spec.lr_schedule
        if sched is not None:
            self.model.optimizer.learning_rate = _scheduled_lr(sched, self.t.initial_lr, epoch, self.t.epochs)
        self.epoch_lr = current_lr(self.model)

    # The batch hooks set Keras's flags on `self._model`: on JAX, `self.model` first copies the training state
    # into the model's variables (`jax_state_sync`). Called in line (StepCallbacks) that copy would run every
    # batch; under Keras's dispatch (beside a user's batch hook) it runs in Keras's thread pool, beside the next
    # step, which has been given (donated) the very buffers the copy assigns: the epoch's metrics then read freed
    # buffers, and `fit` raised "Buffer has been deleted or donated" on a Ctrl-C or a NaN inside an epoch.
    def on_train_batch_end(self, batch: int, logs: Any = None) -> None:
        # Under Keras's dispatch (JAX, PyTorch) batch callbacks run in a thread pool and can finish out of order.
        with self.step_lock:
            self.last_step = max(self.last_step, batch)
        if self.t.multi_process:
            return  # all stop together at the epoch's end; the epoch's logs (loss included) are the same in all
        if self.t.stop.requested:
            self._model.stop_training = True
            return
        now = time.monotonic()
        if logs and now - self.last_check > 0.25:
            self.last_check = now
            if not _finite({"loss": logs.get("loss", 0.0)}):
                self.t.failed_epoch = len(self.t.history)
                self._model.stop_training = True

    def on_test_begin(self, logs: Any = None) -> None:
        self.validation_cut = False

    def on_test_batch_end(self, batch: int, logs: Any = None) -> None:
        if self.t.multi_process:
            return
        if self.t.stop.requested and self.t.fitting:
            self.validation_cut = True
            self._model.stop_evaluating = True

    def on_epoch_end(self, epoch: int, logs: Any = None) -> None:
        agreed = self.t.agree_stop()
        if agreed and not self.t.stop.requested:
            self.t.stop.request(signal.SIGTERM)  # another process was stopped: stop here too, at the same epoch
        # Several processes act on what they agreed, never on their own flag: a signal that lands after the
        # agreement would stop this process alone (the others would wait for it in the next epoch's
        # collectives); it is agreed on at the next epoch's end.
        stop = agreed if self.t.multi_process else None
        logs = dict(logs or {})
        if not _finite(logs) or self.t.failed_epoch is not None:
            self.t.failed_epoch = epoch
            self.t.failed_logs = logs
            self.model.stop_training = True
            self.t.progress.epoch_done(epoch, logs, "  [non-finite loss: stopped]")
            return
        complete = self.last_step + 1 >= self.t.steps and not getattr(self, "validation_cut", False)
        if not complete:
            # Interrupted inside the epoch (training or validation): it is discarded, and
            # --resume runs it again from the last checkpoint.
            self.model.stop_training = True
            self.t.progress.epoch_done(epoch, logs, "  [interrupted: epoch discarded]")
            return
        row: dict[str, Any] = {"epoch": epoch + 1, **{k: float(v) for k, v in logs.items() if _is_number(v)}}
        row["learning_rate"] = self.epoch_lr if self.epoch_lr is not None else current_lr(self.model)
        row["time"] = round(time.monotonic() - self.epoch_started, 3)
        stopping = stop if stop is not None else self.t.stop.requested
        improved = self.t.save_epoch(epoch + 1, row, stopping=stopping or bool(self.model.stop_training))
        self.t.progress.epoch_done(epoch, logs, "  *" if improved else "")
        if stopping:
            self.model.stop_training = True


def _is_number(v: Any) -> bool:
    try:
        float(v)
        return True
    except (TypeError, ValueError):
        return False


def current_lr(model: Any) -> float | None:
    """The optimizer's current learning rate (None if it has no constant one)."""
    try:
        return float(np.asarray(model.optimizer.learning_rate))
    except Exception:
        return None


def _scheduled_lr(sched: Any, initial: float, epoch: int, epochs: int) -> float:
    if isinstance(sched, schema_run.StepDecay):
        return initial * sched.factor ** (epoch // sched.every)
    if isinstance(sched, schema_run.ExponentialDecay):
        return initial * sched.rate ** epoch
    assert isinstance(sched, schema_run.CosineDecay)
    if epoch < sched.warmup_epochs:
        return initial * (epoch + 1) / (sched.warmup_epochs + 1)
    span = max(1, epochs - 1 - sched.warmup_epochs)
    progress = min(1.0, (epoch - sched.warmup_epochs) / span)
    return sched.min_lr + 0.5 * (initial - sched.min_lr) * (1 + math.cos(math.pi * progress))
