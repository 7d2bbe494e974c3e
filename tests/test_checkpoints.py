"""When a run writes its checkpoint (`train.checkpoint.every`), and that an epoch written later, from its copy in
memory, is the epoch written at once: the same weights, optimizer state, best model and state."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from graphspec.build import backend

from .conftest import JAX_CACHE, ROOT, Started, started_early
from .test_backends import _pythonpath
from .test_train import run, tiny

pytestmark = pytest.mark.keras

NEVER = "train.checkpoint.every=1.0e+9"  # only the first and last epochs, a stop, and the end of fit
ALWAYS = "train.checkpoint.every=0"


def _watch(folder: Path, seen: list[tuple[int, int]]) -> Any:
    """A callback after the run's own: at each epoch's end, (rows in history.json, epochs in state.json)."""
    from graphspec.build.backend import keras

    class Watch(keras.callbacks.Callback):
        def on_epoch_end(self, epoch: int, logs: Any = None) -> None:
            history = json.loads((folder / "history.json").read_text())
            state = json.loads((folder / "state.json").read_text())
            seen.append((len(history), state["epochs_completed"]))

    return Watch()


def _stop_after(epochs: int) -> Any:
    """A callback after the run's own that ends `fit` after `epochs` epochs (as a sweep's pruner does)."""
    from graphspec.build.backend import keras

    class Stop(keras.callbacks.Callback):
        def on_epoch_end(self, epoch: int, logs: Any = None) -> None:
            if epoch + 1 == epochs:
                self.model.stop_training = True

    return Stop()


def _signal_in(epoch_index: int) -> Any:
    """A callback that sends this process SIGINT during epoch `epoch_index` (0-based), as Ctrl-C would."""
    from graphspec.build.backend import keras

    class Interrupt(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch: int, logs: Any = None) -> None:
            self.epoch = epoch

        def on_train_batch_begin(self, batch: int, logs: Any = None) -> None:
            if self.epoch == epoch_index and batch == 1:
                os.kill(os.getpid(), signal.SIGINT)

    return Interrupt()


def _weights(path: Path) -> list[Any]:
    from graphspec.build.backend import keras

    model = keras.saving.load_model(path)  # (a seed generator's state is not in the file: state.json has it)
    return [np.asarray(v) for v in [*model.variables, *model.optimizer.variables] if "seed_generator" not in v.path]


def _same_files(a: Path, b: Path) -> None:
    for name in ("last.keras", "best.keras"):
        for x, y in zip(_weights(a / name), _weights(b / name), strict=True):
            np.testing.assert_allclose(x, y, rtol=1e-6, atol=1e-7, err_msg=name)
    sa, sb = (json.loads((f / "state.json").read_text()) for f in (a, b))
    for key in ("epochs_completed", "best", "seed_states", "callbacks", "learning_rate", "checkpoint"):
        assert sa.get(key) == sb.get(key), key


@pytest.mark.parametrize(("every", "seconds"), [("0", 0.0), ("90", 90.0), ("2.5", 2.5), ("90s", 90.0), ("5m", 300.0),
                                              ("5 min", 300.0), ("1h", 3600.0), (".inf", float("inf"))])
def test_every_takes_seconds_or_a_duration(tmp_path: Path, every: str, seconds: float) -> None:
    from graphspec import compiler

    checked = compiler.check(tiny(tmp_path), sets=[f"train.checkpoint.every={every}"])
    assert checked.ok and checked.spec.train.checkpoint.every == seconds  # type: ignore[union-attr]


@pytest.mark.parametrize(("every", "code", "message"), [
    ("1x", "GS102", "'1x' is not a duration: write a number of seconds or e.g. `90s`, `5m`, `1h`"),
    ("-1", "GS103", "input should be greater than or equal to 0; got -1"),
])
def test_a_wrong_every_is_located(tmp_path: Path, every: str, code: str, message: str) -> None:
    entry = "  checkpoint: {every: " + every + "}"
    spec = tiny(tmp_path, entry + "\n")
    line = spec.read_text().splitlines().index(entry) + 1
    from graphspec import compiler

    checked = compiler.check(spec)
    (diagnostic,) = [d for d in checked.diagnostics.sorted() if d.is_error]
    assert (diagnostic.code, diagnostic.message, str(diagnostic.location)) == (code, message, f"{spec}:{line}:23")


def test_the_checkpoint_is_written_every_so_often_and_the_metrics_every_epoch(tmp_path: Path) -> None:
    spec = tiny(tmp_path)
    for every, expected in ((ALWAYS, [(1, 1), (2, 2), (3, 3), (4, 4)]), (NEVER, [(1, 0), (2, 0), (3, 0), (4, 4)])):
        folder = tmp_path / every[-1]
        seen: list[tuple[int, int]] = []
        result = run(spec, epochs=4, run_dir=folder, sets=[every], callbacks=[_watch(folder, seen)])
        assert result.status == "completed" and seen == expected, every
        assert [p.name for p in (folder / "checkpoints").iterdir()] == ["epoch-0004.keras"]
    _same_files(tmp_path / "0", tmp_path / "9")


def test_a_model_too_large_to_copy_is_written_every_epoch(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from graphspec.run import checkpoints

    monkeypatch.setattr(checkpoints, "COPY_LIMIT", 0)
    seen: list[tuple[int, int]] = []
    result = run(tiny(tmp_path), epochs=3, run_dir=tmp_path / "r", sets=[NEVER], callbacks=[_watch(tmp_path / "r", seen)])
    assert result.status == "completed" and seen == [(1, 1), (2, 2), (3, 3)]


def test_the_size_of_what_a_checkpoint_holds() -> None:
    from graphspec.build.backend import keras
    from graphspec.run.checkpoints import size

    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3)])
    model.compile(keras.optimizers.Adam(), "mse")
    model.optimizer.build(model.trainable_variables)
    # 15 weights, Adam's two moments of each (float32), its iteration count (int64) and learning rate (float32)
    assert size(model) == 15 * 4 * 3 + 8 + 4


def test_a_stop_between_checkpoints_writes_the_last_epoch(tmp_path: Path) -> None:
    """A callback that ends fit after the run's own (a sweep's pruner): the epoch is written when fit returns."""
    spec = tiny(tmp_path)
    for every in (ALWAYS, NEVER):
        result = run(spec, epochs=5, run_dir=tmp_path / every[-1], sets=[every], callbacks=[_stop_after(3)])
        assert result.status == "early_stopped" and result.epochs_done == 3
    _same_files(tmp_path / "0", tmp_path / "9")


def test_an_earlier_best_epoch_is_written_from_its_copy(tmp_path: Path) -> None:
    """`best.keras` is epoch 1's (the highest loss, with mode max) while the checkpoint is epoch 4's."""
    spec = tiny(tmp_path)
    sets = ["train.checkpoint={monitor: val_loss, mode: max}"]
    for every in (ALWAYS, NEVER):
        result = run(spec, epochs=4, run_dir=tmp_path / every[-1], sets=[*sets, every])
        assert result.status == "completed" and result.best["epoch"] == 1, result.best
    _same_files(tmp_path / "0", tmp_path / "9")
    state = json.loads((tmp_path / "9" / "state.json").read_text())
    assert state["checkpoint"] == "checkpoints/epoch-0004.keras" and state["best"]["epoch"] == 1


def test_an_interrupted_epoch_is_discarded_and_the_one_before_it_written(tmp_path: Path) -> None:
    """Ctrl-C in epoch 3: epoch 2 is written from its copy (the model in memory is inside epoch 3), and the
    resumed run ends as a run that was never stopped."""
    spec = tiny(tmp_path)
    straight = run(spec, epochs=4, run_dir=tmp_path / "straight")
    for every in (ALWAYS, NEVER):
        folder = tmp_path / every[-1]
        stopped = run(spec, epochs=4, run_dir=folder, sets=[every], callbacks=[_signal_in(2)])
        assert stopped.status == "interrupted" and stopped.epochs_done == 2 and stopped.exit_code == 130
    _same_files(tmp_path / "0", tmp_path / "9")
    resumed = run(spec, epochs=4, run_dir=tmp_path / "9", resume=True)
    assert resumed.status == "completed" and [h["epoch"] for h in resumed.history] == [1, 2, 3, 4]
    for a, b in zip(straight.history, resumed.history, strict=True):
        for key in ("loss", "accuracy", "val_loss", "val_accuracy"):
            assert a[key] == pytest.approx(b[key], rel=1e-6, abs=1e-7), (a["epoch"], key)


# On JAX, whose training step donates the buffers of the variables it is given: the interrupted run of the test
# above, written from the copy taken at epoch 2's end, then resumed (the same metrics as a run never stopped: the
# copy was epoch 2's; the files themselves are compared on TensorFlow above); and a loss that becomes NaN inside
# an epoch.
# (Both stop `fit` from a batch hook, which Keras runs in a thread on JAX: they raised "Buffer has been deleted or
# donated" before the hooks stopped touching `Callback.model`, see graphspec.run.callbacks.RunCallback.)
JAX_KEY = "test_checkpoints.py::test_on_jax_an_epoch_written_later_is_the_epoch"
SCRIPT = """\
import sys
from pathlib import Path
from tests.test_checkpoints import NEVER, _signal_in
from tests.test_train import run, tiny

work = Path(sys.argv[1])
spec = tiny(work)
stopped = run(spec, epochs=4, run_dir=work / "9", sets=[NEVER], callbacks=[_signal_in(2)])
assert (stopped.status, stopped.epochs_done) == ("interrupted", 2), (stopped.status, stopped.epochs_done)
straight = run(spec, epochs=4, run_dir=work / "straight", sets=[NEVER])
resumed = run(spec, epochs=4, run_dir=work / "9", resume=True)
assert straight.history == [{**r, "time": a["time"]} for r, a in zip(resumed.history, straight.history)]
diverged = run(spec, epochs=3, run_dir=work / "nan", sets=["compile.optimizer={type: SGD, learning_rate: 1.0e+12}"])
assert (diverged.status, diverged.exit_code) == ("failed", 1) and "non-finite" in diverged.message, diverged.message
print("RESULT same")
"""


def start_jax(folder: Path) -> subprocess.Popen[str] | None:
    """SCRIPT on JAX (stdout and stderr: files in `folder`), started with the session (tests.conftest.EARLY)."""
    if not backend.is_installed("jax"):
        return None
    env = {**os.environ, **JAX_CACHE, "KERAS_BACKEND": "jax", "PYTHONPATH": _pythonpath()}  # (one compile of each)
    (folder / "work").mkdir()
    with open(folder / "stdout", "w") as out, open(folder / "stderr", "w") as err:
        return subprocess.Popen([sys.executable, "-c", SCRIPT, str(folder / "work")], stdout=out, stderr=err,
                                text=True, env=env, cwd=ROOT)


def test_on_jax_an_epoch_written_later_is_the_epoch(early_processes: dict[str, Started], tmp_path: Path) -> None:
    if not backend.is_installed("jax"):
        pytest.skip("jax is not installed")
    done = started_early(early_processes, JAX_KEY, tmp_path, start_jax).result(300)
    assert done.returncode == 0 and "RESULT same" in done.stdout, done.stderr[-3000:]
