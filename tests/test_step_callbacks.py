"""graphspec's batch hooks called in line (graphspec.run.callbacks.StepCallbacks): in the loop's own thread, with the
logs as the step returned them, the same training as a plain `fit`; a callback that is not graphspec's keeps Keras's
own dispatch (Python numbers in its logs), and graphspec's still see every batch beside it."""

from __future__ import annotations

import threading
from typing import Any

import numpy as np
import pytest

pytestmark = pytest.mark.keras

STEPS, EPOCHS = 6, 2  # 96 samples, batch 16


def _data() -> tuple[np.ndarray, ...]:
    rng = np.random.RandomState(0)
    return (rng.rand(96, 5).astype("float32"), rng.rand(96, 1).astype("float32"),
            rng.rand(32, 5).astype("float32"), rng.rand(32, 1).astype("float32"))


def _model(keras: Any) -> Any:
    from graphspec.build import backend

    backend.set_random_seed(0)
    m = keras.Sequential([keras.Input((5,)), keras.layers.Dense(8, activation="relu"), keras.layers.Dense(1)])
    m.compile("adam", "mse", metrics=["mae"])
    return m


def _watch_class(keras: Any, inline: bool) -> Any:
    class Watch(keras.callbacks.Callback):
        async_safe = True  # Keras would run its batch hooks in its thread pool on JAX and PyTorch
        inline_batch_hooks = inline

        def __init__(self) -> None:
            super().__init__()
            self.calls: dict[str, list[tuple[int, str, bool]]] = {}

        def note(self, hook: str, batch: int, logs: Any) -> None:
            python = bool(logs) and all(isinstance(v, (float, int)) for v in logs.values())
            self.calls.setdefault(hook, []).append((batch, threading.current_thread().name, python))

        def on_train_batch_begin(self, batch: int, logs: Any = None) -> None:
            self.note("train_begin", batch, logs)

        def on_train_batch_end(self, batch: int, logs: Any = None) -> None:
            self.note("train_end", batch, logs)

        def on_test_batch_end(self, batch: int, logs: Any = None) -> None:
            self.note("test_end", batch, logs)

        def on_predict_batch_end(self, batch: int, logs: Any = None) -> None:
            self.note("predict_end", batch, logs)

    return Watch


def _run(keras: Any, callbacks: list[Any], lined: bool) -> tuple[Any, dict[str, Any], dict[str, float], Any]:
    from graphspec.run.callbacks import step_callbacks

    x, y, xv, yv = _data()
    m = _model(keras)
    if not lined:
        h = m.fit(x, y, batch_size=16, epochs=EPOCHS, validation_data=(xv, yv), verbose=0, callbacks=callbacks,
                  shuffle=False)
        return m, h.history, m.evaluate(xv, yv, batch_size=16, verbose=0, return_dict=True), \
            m.predict(xv, batch_size=16, verbose=0)
    with step_callbacks(m, callbacks, history=True, epochs=EPOCHS, steps=STEPS) as cbs:
        h = m.fit(x, y, batch_size=16, epochs=EPOCHS, validation_data=(xv, yv), verbose=0, callbacks=cbs,
                  shuffle=False)
    with step_callbacks(m, callbacks, epochs=1) as cbs:
        ev = m.evaluate(xv, yv, batch_size=16, verbose=0, return_dict=True, callbacks=cbs)
    with step_callbacks(m, callbacks, epochs=1) as cbs:
        pred = m.predict(xv, batch_size=16, verbose=0, callbacks=cbs)
    return m, h.history, ev, pred


def test_graphspec_batch_hooks_run_in_line_and_train_the_same(keras_clean: Any) -> None:
    keras = keras_clean
    watch = _watch_class(keras, inline=True)()
    plain = _run(keras, [], lined=False)
    keras.backend.clear_session(free_memory=False)
    lined = _run(keras, [watch], lined=True)
    # the same training, evaluation and predictions as a plain fit
    assert all(np.array_equal(a, b) for a, b in zip(plain[0].get_weights(), lined[0].get_weights()))
    assert plain[1] == lined[1] and plain[2] == lined[2]
    assert np.array_equal(plain[3], lined[3])
    # every batch, in order, in the loop's thread, with the step's own logs (not converted to Python numbers)
    loop = threading.current_thread().name
    assert [b for b, _, _ in watch.calls["train_begin"]] == list(range(STEPS)) * EPOCHS
    assert [b for b, _, _ in watch.calls["train_end"]] == list(range(STEPS)) * EPOCHS
    assert {t for calls in watch.calls.values() for _, t, _ in calls} == {loop}
    assert not any(p for _, _, p in watch.calls["train_end"])
    assert len(watch.calls["test_end"]) == 2 * EPOCHS + 2 and len(watch.calls["predict_end"]) == 2
    # a float of the raw logs is the step's loss, as the graphspec hooks read it (NaN guard, progress)
    assert np.isfinite(lined[1]["loss"]).all()


def test_other_callbacks_keep_keras_dispatch(keras_clean: Any) -> None:
    from graphspec.run.callbacks import StepCallbacks

    keras = keras_clean
    ours, theirs = _watch_class(keras, inline=True)(), _watch_class(keras, inline=False)()
    lined = _run(keras, [ours, theirs], lined=True)
    assert np.isfinite(lined[1]["loss"]).all()
    for watch in (ours, theirs):  # both see every batch of every loop
        assert [b for b, _, _ in watch.calls["train_end"]] == list(range(STEPS)) * EPOCHS
        assert len(watch.calls["test_end"]) == 2 * EPOCHS + 2 and len(watch.calls["predict_end"]) == 2
    # Keras's dispatch: Python numbers in the logs (and on JAX and PyTorch, its thread pool)
    assert all(p for _, _, p in theirs.calls["train_end"]) and all(p for _, _, p in ours.calls["train_end"])
    # only the loops that have a hook that is not graphspec's are Keras's: a callback with no batch hook, none
    plain = keras.callbacks.Callback()
    cbs = StepCallbacks([ours, plain, keras.callbacks.EarlyStopping()], model=_model(keras))
    assert cbs._inline["on_train_batch_end"] == [ours] and cbs._inline["on_test_batch_end"] == [ours]
    mixed = StepCallbacks([ours, keras.callbacks.TerminateOnNaN()], model=_model(keras))
    assert "on_train_batch_end" not in mixed._inline and mixed._inline["on_test_batch_end"] == [ours]
