"""Keras's attribute tracking is off while JAX steps run (graphspec.run.callbacks.untracked_steps): the same weights,
metrics and predictions as a plain `fit`, tracking on for end-of-epoch work, and back on however `fit` ends."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from graphspec.build import backend

from .conftest import Started, started_early
from .test_backends import _pythonpath

KEY = "test_step_tracking.py::test_jax_steps_run_untracked_and_train_the_same"

# On JAX: the same model trained, evaluated and predicted with and without the untracked steps.
SCRIPT = """\
import json
import keras
import numpy as np
from keras.src.utils import tracking
from graphspec.run.callbacks import untracked_steps

rng = np.random.RandomState(0)
x, y = rng.rand(96, 5).astype("float32"), rng.rand(96, 1).astype("float32")
xv, yv = rng.rand(32, 5).astype("float32"), rng.rand(32, 1).astype("float32")


def model():
    keras.utils.set_random_seed(0)
    m = keras.Sequential([keras.Input((5,)), keras.layers.Dense(8, activation="relu"), keras.layers.Dropout(0.2),
                          keras.layers.Dense(1)])
    m.compile("adam", "mse", metrics=["mae"])
    return m


class Watch(keras.callbacks.Callback):  # not async-safe: Keras runs its batch hooks in fit's thread
    def __init__(self):
        super().__init__()
        self.seen = {"train_batch": set(), "state": set(), "test_batch": set(), "epoch_begin": set(),
                     "epoch_end": set(), "predict_batch": set()}

    def note(self, key, value):
        self.seen[key].add(value)

    def on_train_batch_end(self, batch, logs=None):
        self.note("train_batch", tracking.is_tracking_enabled())
        self.note("state", type(self.model._jax_state).__name__)

    def on_test_batch_end(self, batch, logs=None):
        self.note("test_batch", tracking.is_tracking_enabled())

    def on_predict_batch_end(self, batch, logs=None):
        self.note("predict_batch", tracking.is_tracking_enabled())

    def on_epoch_begin(self, epoch, logs=None):
        self.note("epoch_begin", tracking.is_tracking_enabled())

    def on_epoch_end(self, epoch, logs=None):
        self.note("epoch_end", tracking.is_tracking_enabled())


class Fail(keras.callbacks.Callback):
    def on_train_batch_end(self, batch, logs=None):
        if batch == 2:
            raise RuntimeError("stop here")


def run(untracked):
    m, watch = model(), Watch()
    if untracked:
        with untracked_steps([watch]) as cbs:
            h = m.fit(x, y, batch_size=16, epochs=3, validation_data=(xv, yv), verbose=0, callbacks=cbs)
        with untracked_steps([watch]) as cbs:
            ev = m.evaluate(xv, yv, batch_size=16, verbose=0, return_dict=True, callbacks=cbs)
        with untracked_steps([watch]) as cbs:
            pred = m.predict(xv, batch_size=16, verbose=0, callbacks=cbs)
    else:
        h = m.fit(x, y, batch_size=16, epochs=3, validation_data=(xv, yv), verbose=0, callbacks=[watch])
        ev = m.evaluate(xv, yv, batch_size=16, verbose=0, return_dict=True)
        pred = m.predict(xv, batch_size=16, verbose=0)
    return m, h.history, ev, pred, {k: sorted(v, key=str) for k, v in watch.seen.items()}


plain, untracked = run(False), run(True)
after = tracking.is_tracking_enabled()
try:
    with untracked_steps([Fail()]) as cbs:
        model().fit(x, y, batch_size=16, epochs=1, verbose=0, callbacks=cbs)
except RuntimeError as exc:
    failed = str(exc)
print("RESULT" + json.dumps({
    "weights_equal": all(np.array_equal(a, b) for a, b in zip(plain[0].get_weights(), untracked[0].get_weights())),
    "optimizer_equal": all(np.array_equal(np.asarray(a), np.asarray(b))
                           for a, b in zip(plain[0].optimizer.variables, untracked[0].optimizer.variables)),
    "history_equal": plain[1] == untracked[1], "evaluate_equal": plain[2] == untracked[2],
    "predict_equal": bool(np.array_equal(plain[3], untracked[3])),
    "plain_seen": plain[4], "untracked_seen": untracked[4],
    "after": after, "failed": failed, "after_failure": tracking.is_tracking_enabled(),
}))
"""


def start_script(folder: Path) -> subprocess.Popen[str] | None:
    """SCRIPT on JAX (stdout and stderr: files in `folder`), started with the session (tests.conftest.EARLY)."""
    if not backend.is_installed("jax"):
        return None
    env = {**os.environ, "KERAS_BACKEND": "jax", "PYTHONPATH": _pythonpath()}
    with open(folder / "stdout", "w") as out, open(folder / "stderr", "w") as err:
        return subprocess.Popen([sys.executable, "-c", SCRIPT], stdout=out, stderr=err, text=True, env=env,
                                cwd=folder)


@pytest.mark.keras
def test_jax_steps_run_untracked_and_train_the_same(early_processes: dict[str, Started], tmp_path: Path) -> None:
    if not backend.is_installed("jax"):
        pytest.skip("jax is not installed")
    done = started_early(early_processes, KEY, tmp_path, start_script).result(300)
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(done.stdout.split("RESULT", 1)[1])
    # the same training, bit for bit: weights, optimizer state, every epoch's logs, evaluation, predictions
    assert result["weights_equal"] and result["optimizer_equal"]
    assert result["history_equal"] and result["evaluate_equal"] and result["predict_equal"]
    # a plain fit tracks throughout, and Keras stores a tracked dict after every step
    assert result["plain_seen"]["train_batch"] == [True] and result["plain_seen"]["state"] == ["TrackedDict"]
    # untracked: off in the steps (training, validation, evaluate, predict), a plain dict stored; on for the
    # callbacks' work at the start and end of each epoch
    seen = result["untracked_seen"]
    assert seen["train_batch"] == [False] and seen["state"] == ["dict"]
    assert seen["test_batch"] == [False] and seen["predict_batch"] == [False]
    assert seen["epoch_begin"] == [True] and seen["epoch_end"] == [True]
    # and on again after the block, also when fit fails inside a step
    assert result["after"] is True
    assert result["failed"] == "stop here" and result["after_failure"] is True


@pytest.mark.keras
def test_other_backends_get_the_callbacks_unchanged() -> None:
    """On TensorFlow (this process) nothing is stored per step: the callbacks are given back as they are."""
    from graphspec.build.backend import keras
    from graphspec.run.callbacks import untracked_steps

    if keras.backend.backend() == "jax":
        pytest.skip("this process runs JAX")
    mine = keras.callbacks.Callback()
    with untracked_steps([mine]) as callbacks:
        assert callbacks == [mine]
    with untracked_steps() as callbacks:
        assert callbacks == []
