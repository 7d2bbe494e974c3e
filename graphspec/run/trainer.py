"""Runs: train a spec's model into a run folder, resume it, evaluate it, predict with it.

A run folder (default `runs/<spec name>/<timestamp>/`) holds:

* `spec.yaml` - the spec as trained: the bases it `extends` merged, `--set` overrides applied, seed
  and epochs filled in, file paths made absolute;
* `environment.json` - versions of Python, TensorFlow, Keras, ..., the command line, the devices;
* `metrics.csv`, `history.json` - one row per completed epoch;
* `tensorboard/` - TensorBoard logs;
* `last.keras` - the model after the last completed epoch (epoch 0: the initial weights), with its
  optimizer state; `best.keras` - the best epoch by the checkpoint's monitored metric;
* `checkpoints/epoch-NNNN.keras` - the checkpoint `state.json` points to (same file as `last.keras`);
* `state.json` - epochs completed, status, the best value so far, callback and RNG state: what
  `--resume` continues from;
* `results.json` - test-set metrics, once the run has finished.

Every file is written to a temporary file in the same folder and renamed into place
(:mod:`graphspec.run.artifacts`); the checkpoint is written before the state that names it, so a
process killed at any moment leaves a run that loads and resumes.
"""

from __future__ import annotations

import copy
import contextlib
import dataclasses
import datetime as dt
import json
import math
import os
import platform
import secrets
import signal
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from graphspec import compiler
from graphspec.run import artifacts
from graphspec.analysis import checks
from graphspec.run import data as data_mod
from graphspec.spec import extends
from graphspec.spec import plugins as plugins_mod
from graphspec.spec import schema_run
from graphspec.spec import source as source_mod
from graphspec.build.backend import keras
from graphspec.diagnostics import Diagnostic, Location, Severity
from graphspec.errors import GraphSpecError, SpecError, UsageError

STATE = "state.json"
SPEC = "spec.yaml"
HISTORY = "history.json"
METRICS = "metrics.csv"
ENVIRONMENT = "environment.json"
RESULTS = "results.json"
BEST = "best.keras"
LAST = "last.keras"
CHECKPOINTS = "checkpoints"
TENSORBOARD = "tensorboard"

EXIT_OK, EXIT_FAILED = 0, 1
EXIT_SIGNAL: dict[int, int] = {signal.SIGINT: 130, signal.SIGTERM: 143}


class RunFailed(GraphSpecError):
    """Training stopped on a non-finite loss (exit code 1)."""


@dataclasses.dataclass
class RunResult:
    run_dir: Path
    status: str  # completed | early_stopped | interrupted | failed
    epochs_done: int
    epochs: int
    history: list[dict[str, Any]]
    test_metrics: dict[str, float] | None
    message: str
    exit_code: int
    fit_seconds: float = 0.0
    train_samples: int = 0
    best: dict[str, Any] | None = None


# -- locating specs and runs -----------------------------------------------------------------------------
def is_run_dir(path: str | Path) -> bool:
    p = Path(path)
    return p.is_dir() and (p / SPEC).is_file() and (p / STATE).is_file()


def spec_name(spec: str | Path) -> str:
    """The `name:` of a spec file (cheaply, without validating it)."""
    try:
        src = extends.load(str(spec))  # a variant may take its name from its base
    except source_mod.SourceError as exc:
        raise SpecError([exc.diagnostic]) from None
    name = src.data.get("name") if isinstance(src.data, dict) else None
    if not isinstance(name, str):
        raise UsageError(f"{spec}: the spec has no `name`")
    return name


def latest_run(runs_root: str | Path, name: str) -> Path | None:
    folder = Path(runs_root) / name
    if not folder.is_dir():
        return None
    runs = sorted(p for p in folder.iterdir() if is_run_dir(p))
    return runs[-1] if runs else None


def read_state(run_dir: Path) -> dict[str, Any]:
    try:
        value = json.loads((run_dir / STATE).read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise UsageError(f"{run_dir}: not a readable run folder ({exc})") from None
    if not isinstance(value, dict):
        raise UsageError(f"{run_dir}: {STATE} is not a run state")
    return value


def resume_target(spec: str | Path, run_dir: str | Path | None, runs_root: str | Path = "runs") -> Path:
    """The run folder `--resume` continues: --run-dir, SPEC itself if it is a run, else the latest run."""
    if run_dir is not None:
        folder = Path(run_dir)
    elif is_run_dir(spec):
        folder = Path(spec)
    else:
        found = latest_run(runs_root, spec_name(spec))
        if found is None:
            raise UsageError(f"--resume: no run of {spec} under {Path(runs_root) / spec_name(spec)}; "
                             "start one without --resume, or name it with --run-dir")
        folder = found
    if not is_run_dir(folder):
        raise UsageError(f"--resume: {folder} is not a run folder (no {SPEC} and {STATE})")
    return folder


# -- the spec as trained ---------------------------------------------------------------------------------
def _pick_model(checked: compiler.Checked, requested: str | None) -> str:
    """--model, else `train.model`, else the spec's only public model."""
    assert checked.graph is not None and checked.spec is not None
    train = checked.spec.train
    return checked.graph.pick_model(requested, "train", train.model if train is not None else None)


def _spec_error(code: str, message: str, checked: compiler.Checked, path: tuple[Any, ...],
                hint: str | None = None) -> SpecError:
    loc = checked.source.location(path, key=True) if checked.source is not None else Location(checked.file)
    return SpecError([Diagnostic(code, Severity.ERROR, message, loc, hint)])


def check(spec: str | Path, *, sets: list[str] | None = None, plugins: list[str] | None = None) -> compiler.Checked:
    """The pure stages plus the data/train checks; raises SpecError on errors."""
    checked = compiler.check(spec, plugins=plugins_mod.all_plugins(plugins), sets=sets)
    checked.raise_for_errors()
    return checked


def resolved_spec_text(spec_file: str | Path, sets: list[str], extra: dict[str, Any]) -> str:
    """The spec's data with `--set` applied and `extra` (dotted path -> value) filled in, as YAML."""
    import yaml

    from graphspec.spec import overrides

    src = extends.load(str(spec_file))  # bases merged: the run keeps the whole spec, without `extends`
    if sets:
        src = overrides.apply(src, sets)
    value = copy.deepcopy(src.data)
    for dotted, v in extra.items():
        cur = value
        parts = dotted.split(".")
        for part in parts[:-1]:
            if not isinstance(cur.get(part), dict):
                cur[part] = {}
            cur = cur[part]
        cur[parts[-1]] = v
    source = value.get("data", {}).get("source") if isinstance(value.get("data"), dict) else None
    if isinstance(source, dict) and source.get("kind") in {"npz", "csv"}:
        base = Path(spec_file).resolve().parent
        for split in data_mod.SPLITS:
            if isinstance(source.get(split), str) and not Path(source[split]).is_absolute():
                source[split] = str(base / source[split])
    header = (f"# The spec as trained by graphspec: {Path(spec_file)}"
              + (" with " + " ".join(f"--set {s}" for s in sets) if sets else "") + "\n")
    body: str = yaml.safe_dump(value, sort_keys=False, allow_unicode=True, width=120)  # no stream: a str
    return header + body


def environment(argv: list[str] | None = None) -> dict[str, Any]:
    import importlib.metadata as md

    from graphspec import __version__

    versions = {"graphspec": __version__, "python": platform.python_version()}
    for dist in ("tensorflow", "keras", "numpy", "scikit-learn", "pydantic", "rich", "typer", "h5py"):
        try:
            versions[dist] = md.version(dist)
        except md.PackageNotFoundError:
            pass
    import tensorflow as tf

    return {
        "versions": versions,
        "platform": platform.platform(),
        "machine": platform.machine(),
        "cpu_count": os.cpu_count(),
        "devices": [d.name for d in tf.config.list_logical_devices()],
        "argv": list(sys.argv if argv is None else argv),
        "cwd": os.getcwd(),
        "started": _now(),
    }


def _now() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="seconds")


# -- building a model for a spec or a run -----------------------------------------------------------------
@dataclasses.dataclass
class Loaded:
    checked: compiler.Checked
    model_name: str
    model: Any
    io: data_mod.ModelIO
    run_dir: Path | None
    weights: Path | None


def _compile_settings(checked: compiler.Checked, name: str) -> Any:
    assert checked.graph is not None
    settings, _ = checks.effective_compile(checked.graph, checked.graph.models[name])
    return settings


def _io(checked: compiler.Checked, name: str, model: Any) -> data_mod.ModelIO:
    assert checked.graph is not None
    settings = _compile_settings(checked, name)
    outs = checks.output_names(checked.graph.models[name]) or list(model.output_names)
    losses = data_mod.losses_by_output(settings.loss if settings is not None else None, outs)
    return data_mod.model_io(model, checked.graph, name, losses)


def load_weights(model: Any, path: Path, *, with_optimizer: bool) -> None:
    import warnings

    if not path.exists():
        raise UsageError(f"{path}: no such weights file")
    if with_optimizer and model.optimizer is not None:
        model.optimizer.build(model.trainable_variables)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*Skipping variable loading for optimizer.*")
        try:
            model.load_weights(str(path))
        except Exception as exc:
            raise UsageError(f"{path}: cannot load weights into model `{model.name}`: {exc}") from None


def load_for_inference(spec_or_run: str | Path, *, weights: str | Path | None = None, sets: list[str] | None = None,
                       plugins: list[str] | None = None, model: str | None = None,
                       runs_root: str | Path = "runs", check_fn: Any = None,
                       note: Any = None) -> Loaded:
    """A spec's (or a run's) model with trained weights: --weights, else the run's best, else its last."""
    run_dir: Path | None = None
    state: dict[str, Any] = {}
    if is_run_dir(spec_or_run):
        run_dir = Path(spec_or_run)
        state = read_state(run_dir)
        spec_file = run_dir / SPEC
        plugins = list(plugins or []) + [p for p in state.get("plugins", []) if p not in (plugins or [])]
        model = model or state.get("model")
    else:
        spec_file = Path(spec_or_run)
        if weights is None:
            run_dir = latest_run(runs_root, spec_name(spec_file))
            if run_dir is None:
                raise UsageError(f"no trained weights for {spec_file}: pass --weights PATH or a run folder "
                                 f"(no run under {Path(runs_root) / spec_name(spec_file)})")
            if note:
                note(f"using the latest run, {run_dir}")
    checked = (check_fn or check)(spec_file, sets=sets, plugins=plugins)
    name = _pick_model(checked, model)
    built = compiler.build(checked, models=[name])[name]
    if weights is not None:
        path = Path(weights)
    else:
        assert run_dir is not None
        path = run_dir / BEST if (run_dir / BEST).exists() else run_dir / LAST
    load_weights(built, path, with_optimizer=False)
    return Loaded(checked, name, built, _io(checked, name, built), run_dir, path)


# -- callbacks ----------------------------------------------------------------------------------------------
def _auto_mode(monitor: str, mode: str) -> str:
    if mode != "auto":
        return mode
    m = monitor.lower()
    return "max" if any(k in m for k in ("acc", "auc", "precision", "recall", "f1", "fbeta", "iou")) else "min"


def _finite(logs: dict[str, Any]) -> bool:
    for key, value in logs.items():
        if key.endswith("loss"):
            try:
                if not math.isfinite(float(value)):
                    return False
            except (TypeError, ValueError):
                return False
    return True


class _Stop:
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
def _signals(stop: _Stop, say: Any) -> Iterator[None]:
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


class _Progress(keras.callbacks.Callback):
    """A rich progress bar per epoch on a terminal; one line per epoch elsewhere."""

    async_safe = True

    def __init__(self, console: Any, epochs: int, steps: int, live: bool) -> None:
        super().__init__()
        self.console = console
        self.epochs = epochs
        self.steps = steps
        self.live = live
        self.progress: Any = None
        self.task: Any = None
        self.last = 0.0
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
        text = ""
        if logs and "loss" in logs:
            try:
                text = f"loss {float(logs['loss']):.4f}"
            except (TypeError, ValueError):
                pass
        self.progress.update(self.task, completed=batch + 1, metrics=text)

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


class _EpochTensorBoard(keras.callbacks.TensorBoard):
    """TensorBoard with per-epoch summaries only: nothing runs per batch, so batches stay asynchronous."""

    async_safe = True

    def on_train_batch_begin(self, batch: int, logs: Any = None) -> None:
        pass

    def on_train_batch_end(self, batch: int, logs: Any = None) -> None:
        pass


class _Run(keras.callbacks.Callback):
    """Checkpoints, metrics files, the best model, resume state, NaN guard, signal stop, LR schedule."""

    async_safe = True

    def __init__(self, trainer: Trainer) -> None:
        super().__init__()
        self.t = trainer
        self.last_step = -1
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
        self.epoch_lr = _lr(self.model)

    def on_train_batch_end(self, batch: int, logs: Any = None) -> None:
        self.last_step = batch
        if self.t.stop.requested:
            self.model.stop_training = True
            return
        now = time.monotonic()
        if logs and now - self.last_check > 0.25:
            self.last_check = now
            if not _finite({"loss": logs.get("loss", 0.0)}):
                self.t.failed_epoch = len(self.t.history)
                self.model.stop_training = True

    def on_test_begin(self, logs: Any = None) -> None:
        self.validation_cut = False

    def on_test_batch_end(self, batch: int, logs: Any = None) -> None:
        if self.t.stop.requested and self.t.fitting:
            self.validation_cut = True
            self.model.stop_evaluating = True

    def on_epoch_end(self, epoch: int, logs: Any = None) -> None:
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
        row["learning_rate"] = self.epoch_lr if self.epoch_lr is not None else _lr(self.model)
        row["time"] = round(time.monotonic() - self.epoch_started, 3)
        improved = self.t.save_epoch(epoch + 1, row)
        self.t.progress.epoch_done(epoch, logs, "  *" if improved else "")
        if self.t.stop.requested:
            self.model.stop_training = True


def _is_number(v: Any) -> bool:
    try:
        float(v)
        return True
    except (TypeError, ValueError):
        return False


def _lr(model: Any) -> float | None:
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


# -- the trainer ------------------------------------------------------------------------------------------
class Trainer:
    """One training session of a run folder (fresh or resumed)."""

    def __init__(self, checked: compiler.Checked, model_name: str, run_dir: Path, *, resume: bool,
                 console: Any, live: bool | None, plugins: list[str], base_dir: Path) -> None:
        assert checked.spec is not None and checked.graph is not None
        self.checked = checked
        self.spec = checked.spec
        self.model_name = model_name
        self.run_dir = run_dir
        self.resume = resume
        self.console = console
        self.live = live
        self.plugins = plugins
        self.base_dir = base_dir
        if self.spec.data is None:
            raise _spec_error("GS410", "the spec has no `data` section: `graphspec train` needs one", checked, (),
                              "add one (see docs/training.md), or smoke-test with `--set data.source=synthetic`")
        self.data_spec = self.spec.data
        self.train_spec = self.spec.train or schema_run.TrainSpec()
        self.settings = _compile_settings(checked, model_name)
        if self.settings is None:
            raise _spec_error("GS410", f"model `{model_name}` has no compile settings (optimizer, loss) to "
                              "train with", checked, ("compile",), "add a `compile:` section")
        if self.settings.loss is None:
            raise _spec_error("GS410", f"model `{model_name}` has no loss to train with", checked, ("compile",),
                              "add `loss:` to the compile settings")
        self.epochs = self.train_spec.epochs
        assert self.train_spec.seed is not None, "the seed is filled in before training"
        self.seed = self.train_spec.seed
        self.stop = _Stop()
        self.failed_epoch: int | None = None
        self.failed_logs: dict[str, Any] = {}
        self.fitting = False
        self.state: dict[str, Any] = {}
        self.history: list[dict[str, Any]] = []
        self.has_validation = False
        self.steps = 1
        self.initial_lr = 0.0
        self.callbacks_by_name: dict[str, Any] = {}
        monitor = self.train_spec.checkpoint.monitor or schema_run.default_monitor(self.data_spec)
        self.monitor = monitor
        self.mode = _auto_mode(monitor, self.train_spec.checkpoint.mode)

    # -- helpers
    def say(self, text: str) -> None:
        self.console.print(text, markup=False, highlight=False, soft_wrap=True)

    def locate(self, path: tuple[Any, ...]) -> Location:
        assert self.checked.source is not None
        return self.checked.source.location(path, key=True)

    # -- set-up
    def build(self) -> None:
        if self.train_spec.deterministic:
            import tensorflow as tf

            tf.config.experimental.enable_op_determinism()
        keras.utils.set_random_seed(self.seed)
        self.model = compiler.build(self.checked, models=[self.model_name])[self.model_name]
        if self.train_spec.lr_schedule is not None and not isinstance(
                self.model.optimizer._learning_rate, keras.Variable):
            raise _spec_error("GS410", "`train.lr_schedule` needs a constant learning rate, but "
                              "`compile.optimizer.learning_rate` is a schedule", self.checked,
                              ("train", "lr_schedule"), "use one of them")
        self.model.optimizer.build(self.model.trainable_variables)
        self.io = _io(self.checked, self.model_name, self.model)
        self.data = data_mod.prepare(self.data_spec, self.io, base_dir=self.base_dir, seed=self.seed,
                                     graph=self.checked.graph, locate=self.locate)
        self.has_validation = self.data.validation is not None
        if self.monitor.startswith("val_") and not self.has_validation:
            self.monitor = self.monitor[4:]
        self.steps = data_mod.steps(len(self.data.train), self.data_spec.batch_size)
        self.initial_lr = _lr(self.model) or 0.0

    def seed_variables(self) -> list[Any]:
        return [v for v in self.model.variables if "seed_generator_state" in v.path]

    # -- files
    def write_history(self) -> None:
        import csv
        import io

        artifacts.atomic_write_json(self.run_dir / HISTORY, self.history)
        keys: list[str] = ["epoch"]
        for row in self.history:
            for k in row:
                if k not in keys and k not in {"learning_rate", "time"}:
                    keys.append(k)
        train_keys = [k for k in keys[1:] if not k.startswith("val_")]
        val_keys = [k for k in keys[1:] if k.startswith("val_")]
        header = ["epoch", *train_keys, *val_keys, "learning_rate", "time"]
        buf = io.StringIO()
        writer = csv.DictWriter(buf, fieldnames=header, extrasaction="ignore", lineterminator="\n")
        writer.writeheader()
        for row in self.history:
            writer.writerow({k: (repr(v) if isinstance(v, float) else v) for k, v in row.items()})
        artifacts.atomic_write_text(self.run_dir / METRICS, buf.getvalue())

    def write_state(self, **changes: Any) -> None:
        self.state.update(changes)
        self.state["updated"] = _now()
        artifacts.atomic_write_json(self.run_dir / STATE, self.state)

    def callback_state(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        es = self.callbacks_by_name.get("early_stopping")
        if es is not None:
            out["early_stopping"] = {"wait": int(es.wait), "best": _jsonable(es.best),
                                     "best_epoch": int(getattr(es, "best_epoch", 0)),
                                     "stopped_epoch": int(es.stopped_epoch)}
        rl = self.callbacks_by_name.get("reduce_lr_on_plateau")
        if rl is not None:
            out["reduce_lr_on_plateau"] = {"wait": int(rl.wait), "best": _jsonable(rl.best),
                                           "cooldown_counter": int(rl.cooldown_counter)}
        return out

    def restore_callback_state(self) -> None:
        saved = self.state.get("callbacks", {}) if self.resume else {}
        es = self.callbacks_by_name.get("early_stopping")
        if es is not None and "early_stopping" in saved:
            s = saved["early_stopping"]
            es.wait, es.best, es.stopped_epoch = s["wait"], _unjson(s["best"]), s["stopped_epoch"]
            if hasattr(es, "best_epoch"):
                es.best_epoch = s.get("best_epoch", 0)
            if es.restore_best_weights and self.es_best_weights is not None:
                es.best_weights = self.es_best_weights
        rl = self.callbacks_by_name.get("reduce_lr_on_plateau")
        if rl is not None and "reduce_lr_on_plateau" in saved:
            s = saved["reduce_lr_on_plateau"]
            rl.wait, rl.best, rl.cooldown_counter = s["wait"], _unjson(s["best"]), s["cooldown_counter"]

    def save_epoch(self, epochs_done: int, row: dict[str, Any]) -> bool:
        """Checkpoint, metrics, best/last models, then the state naming them. True if the best improved."""
        ckpt_dir = self.run_dir / CHECKPOINTS
        ckpt = ckpt_dir / f"epoch-{epochs_done:04d}.keras"
        artifacts.save_model(self.model, ckpt)
        if epochs_done > 0:
            self.history = self.history[: epochs_done - 1] + [row]
            self.write_history()
        improved = False
        best = self.state.get("best") or {}
        value = row.get(self.monitor)
        if epochs_done > 0 and value is not None and math.isfinite(value):
            old = best.get("value")
            improved = old is None or (value < old if self.mode == "min" else value > old)
            if improved:
                artifacts.link_into_place(ckpt, self.run_dir / BEST)
                best = {"monitor": self.monitor, "mode": self.mode, "value": value, "epoch": epochs_done}
        artifacts.link_into_place(ckpt, self.run_dir / LAST)
        self.write_state(
            epochs_completed=epochs_done,
            checkpoint=f"{CHECKPOINTS}/{ckpt.name}",
            best=best or None,
            callbacks=self.callback_state(),
            seed_states=[np.asarray(v).tolist() for v in self.seed_variables()],
            learning_rate=_lr(self.model),
            initial_learning_rate=self.initial_lr,
        )
        for old_ckpt in ckpt_dir.glob("epoch-*.keras"):
            if old_ckpt != ckpt:
                with contextlib.suppress(OSError):
                    old_ckpt.unlink()
        return improved

    def clean_temporaries(self) -> None:
        for folder in (self.run_dir, self.run_dir / CHECKPOINTS):
            if folder.is_dir():
                for p in folder.glob(".*.tmp*"):
                    with contextlib.suppress(OSError):
                        if p.is_dir():
                            import shutil

                            shutil.rmtree(p)
                        else:
                            p.unlink()

    # -- fresh or resumed
    def start(self) -> int:
        """Set up the run folder; the first epoch to train."""
        self.es_best_weights = None
        self.previous_status: str | None = None
        if not self.resume:
            self.state = {
                "status": "running", "model": self.model_name, "plugins": self.plugins,
                "epochs": self.epochs, "epochs_completed": 0, "seed": self.seed, "started": _now(),
                "monitor": self.monitor, "mode": self.mode, "base_dir": str(self.base_dir),
            }
            self.history = []
            artifacts.atomic_write_json(self.run_dir / HISTORY, [])
            artifacts.atomic_write_text(self.run_dir / METRICS, "epoch\n")
            self.save_epoch(0, {})
            return 0
        self.clean_temporaries()
        self.state = read_state(self.run_dir)
        done = int(self.state.get("epochs_completed", 0))
        ckpt = self.run_dir / str(self.state.get("checkpoint", LAST))
        try:
            hist = json.loads((self.run_dir / HISTORY).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            hist = []
        self.history = [r for r in hist if isinstance(r, dict)][:done]
        self.write_history()
        es = self.train_spec.early_stopping
        if es is not None and es.restore_best_weights and (self.run_dir / BEST).exists():
            load_weights(self.model, self.run_dir / BEST, with_optimizer=True)
            self.es_best_weights = self.model.get_weights()
        load_weights(self.model, ckpt, with_optimizer=True)
        for var, value in zip(self.seed_variables(), self.state.get("seed_states", [])):
            var.assign(np.asarray(value, dtype=var.dtype))
        self.initial_lr = float(self.state.get("initial_learning_rate", self.initial_lr))
        self.previous_status = self.state.get("status")
        self.state.update(status="running", epochs=self.epochs, resumed=_now())
        self.state.pop("message", None)
        self.write_state()
        return done

    def make_callbacks(self, progress: _Progress) -> list[Any]:
        cbs: list[Any] = []
        ts = self.train_spec
        if ts.early_stopping is not None:
            e = ts.early_stopping
            es = keras.callbacks.EarlyStopping(
                monitor=self._monitor(e.monitor), patience=e.patience, min_delta=e.min_delta, mode=e.mode,
                start_from_epoch=e.start_from_epoch, restore_best_weights=e.restore_best_weights, verbose=0)
            cbs.append(es)
            self.callbacks_by_name["early_stopping"] = es
        if ts.reduce_lr_on_plateau is not None:
            r = ts.reduce_lr_on_plateau
            rl = keras.callbacks.ReduceLROnPlateau(
                monitor=self._monitor(r.monitor), factor=r.factor, patience=r.patience, min_delta=r.min_delta,
                cooldown=r.cooldown, min_lr=r.min_lr, mode=r.mode, verbose=0)
            cbs.append(rl)
            self.callbacks_by_name["reduce_lr_on_plateau"] = rl
        # Ours after those (their epoch-end state is saved with the checkpoint), then the display.
        cbs.append(_Run(self))
        if ts.tensorboard:
            cbs.append(_EpochTensorBoard(log_dir=str(self.run_dir / TENSORBOARD), write_graph=False,
                                         profile_batch=0, update_freq="epoch"))
        cbs.append(progress)
        return cbs

    def _monitor(self, monitor: str | None) -> str:
        m = monitor or self.monitor
        return m[4:] if m.startswith("val_") and not self.has_validation else m

    def fit(self, first_epoch: int) -> float:
        ds, _ = data_mod.train_dataset(
            self.data.train, self.io, batch_size=self.data_spec.batch_size, seed=self.seed,
            first_epoch=first_epoch, epochs=self.epochs, shuffle=self.data_spec.shuffle,
            prefetch=self.data_spec.prefetch)
        val = None
        if self.data.validation is not None:
            val = data_mod.eval_dataset(self.data.validation, self.io, batch_size=self.data_spec.batch_size,
                                        cache=self.data_spec.cache, prefetch=self.data_spec.prefetch)
        live = self.live if self.live is not None else bool(getattr(self.console, "is_terminal", False))
        self.progress = _Progress(self.console, self.epochs, self.steps, live)
        callbacks = self.make_callbacks(self.progress)
        started = time.perf_counter()
        self.fitting = True
        try:
            with _signals(self.stop, self.say):
                self.model.fit(ds, epochs=self.epochs, initial_epoch=first_epoch, steps_per_epoch=self.steps,
                               validation_data=val, callbacks=callbacks, verbose=0, shuffle=False)
        finally:
            self.fitting = False
            self.progress.on_train_end()
        return time.perf_counter() - started

    def evaluate_test(self) -> dict[str, float] | None:
        if self.data.test is None:
            return None
        weights = self.run_dir / BEST if (self.run_dir / BEST).exists() else self.run_dir / LAST
        load_weights(self.model, weights, with_optimizer=True)
        ds = data_mod.eval_dataset(self.data.test, self.io, batch_size=self.data_spec.batch_size,
                                   cache=False, prefetch=self.data_spec.prefetch)
        result = self.model.evaluate(ds, verbose=0, return_dict=True)
        return {k: float(v) for k, v in result.items()}


def _jsonable(value: Any) -> Any:
    f = float(value)
    return f if math.isfinite(f) else str(f)


def _unjson(value: Any) -> float:
    return float(value)


# -- the public entry points -----------------------------------------------------------------------------------
def train(
    spec: str | Path,
    *,
    sets: list[str] | None = None,
    epochs: int | None = None,
    run_dir: str | Path | None = None,
    resume: bool = False,
    seed: int | None = None,
    model: str | None = None,
    plugins: list[str] | None = None,
    runs_root: str | Path = "runs",
    console: Any = None,
    live: bool | None = None,
    check_fn: Any = None,
) -> RunResult:
    """Train SPEC's model into a run folder (or resume one). Raises SpecError/UsageError for spec, data or
    usage problems; a non-finite loss or a signal is reported in the result (exit_code 1 / 130 / 143)."""
    from rich.console import Console

    console = console or Console(file=sys.stderr)
    plugins = [str(Path(p).resolve()) if p.endswith(".py") and Path(p).is_file() else p
               for p in plugins_mod.all_plugins(plugins)]
    folder: Path
    if resume:
        folder = resume_target(spec, run_dir, runs_root)
        spec_file = folder / SPEC
        state = read_state(folder)
        model = model or state.get("model")
        plugins = plugins + [p for p in state.get("plugins", []) if p not in plugins]
        base_dir = Path(state.get("base_dir", folder))
    else:
        spec_file = Path(spec)
        base_dir = spec_file.resolve().parent
    all_sets = list(sets or [])
    if epochs is not None:
        all_sets.append(f"train.epochs={int(epochs)}")
    if seed is not None:
        all_sets.append(f"train.seed={int(seed)}")
    checked = (check_fn or check)(spec_file, sets=all_sets, plugins=plugins)
    assert checked.spec is not None
    if checked.spec.data is None:
        raise _spec_error("GS410", "the spec has no `data` section: `graphspec train` needs one", checked, (),
                          "add one (see docs/training.md), or smoke-test with `--set data.source=synthetic`")
    name = _pick_model(checked, model)
    fill: dict[str, Any] = {}
    if checked.spec.train is None or checked.spec.train.seed is None:
        fill["train.seed"] = secrets.randbelow(2**31 - 1)
        if checked.spec.train is None:
            checked.spec.train = schema_run.TrainSpec(seed=fill["train.seed"])
        else:
            checked.spec.train.seed = fill["train.seed"]
    if not resume:
        if run_dir is not None:
            folder = Path(run_dir)
            if is_run_dir(folder):
                raise UsageError(f"{folder} already holds a run: continue it with --resume, or choose another "
                                 "--run-dir")
        else:
            stamp = dt.datetime.now().strftime("%Y%m%d-%H%M%S")
            folder = Path(runs_root) / checked.spec.name / stamp
            n = 1
            while folder.exists():
                n += 1
                folder = Path(runs_root) / checked.spec.name / f"{stamp}-{n}"
    trainer = Trainer(checked, name, folder, resume=resume, console=console, live=live, plugins=plugins,
                      base_dir=base_dir)
    trainer.build()  # model and data: every spec or data problem is raised before the folder is written
    folder.mkdir(parents=True, exist_ok=True)
    if not resume or all_sets or fill:
        artifacts.atomic_write_text(folder / SPEC, resolved_spec_text(spec_file, all_sets, fill))
    if not resume:
        artifacts.atomic_write_json(folder / ENVIRONMENT, environment())
    first = trainer.start()
    if resume:
        trainer.say(f"resuming {folder} at epoch {first + 1}/{trainer.epochs}")
    else:
        trainer.say(f"training `{name}` of {spec_file} -> {folder}")
    fit_seconds = 0.0
    if first < trainer.epochs and trainer.previous_status != "early_stopped":
        fit_seconds = trainer.fit(first)
    done = int(trainer.state.get("epochs_completed", 0))
    best = trainer.state.get("best")
    if trainer.failed_epoch is not None:
        bad = {k: v for k, v in trainer.failed_logs.items() if k.endswith("loss")}
        message = (f"training stopped: the loss became non-finite in epoch {trainer.failed_epoch + 1} "
                   f"({', '.join(f'{k}={v}' for k, v in bad.items()) or 'loss=nan'}); the model after epoch "
                   f"{done} is kept in {folder / LAST}. Try a smaller learning rate.")
        trainer.write_state(status="failed", message=message)
        return RunResult(folder, "failed", done, trainer.epochs, trainer.history, None, message, EXIT_FAILED,
                         fit_seconds, len(trainer.data.train), best)
    if trainer.stop.requested and done < trainer.epochs:
        signum = trainer.stop.signum or signal.SIGINT
        message = (f"interrupted by {signal.Signals(signum).name} after epoch {done}/{trainer.epochs}; continue "
                   f"with: graphspec train {spec} --resume --run-dir {folder}")
        trainer.write_state(status="interrupted", message=message)
        return RunResult(folder, "interrupted", done, trainer.epochs, trainer.history, None, message,
                         EXIT_SIGNAL.get(signum, 130), fit_seconds, len(trainer.data.train), best)
    es = trainer.callbacks_by_name.get("early_stopping")
    stopped_early = done < trainer.epochs or (es is not None and es.stopped_epoch > 0) or (
        trainer.previous_status == "early_stopped")
    status = "early_stopped" if stopped_early else "completed"
    test = trainer.evaluate_test()
    results = {"status": status, "epochs_completed": done, "best": best,
               "weights": BEST if (folder / BEST).exists() else LAST, "test": test, "finished": _now()}
    artifacts.atomic_write_json(folder / RESULTS, results)
    message = f"{'stopped early' if stopped_early else 'finished'} after {done} epochs; run folder: {folder}"
    trainer.write_state(status=status, message=message)
    return RunResult(folder, status, done, trainer.epochs, trainer.history, test, message, EXIT_OK, fit_seconds,
                     len(trainer.data.train), best)


def evaluate(spec_or_run: str | Path, *, weights: str | Path | None = None, sets: list[str] | None = None,
             plugins: list[str] | None = None, model: str | None = None, runs_root: str | Path = "runs",
             note: Any = None) -> dict[str, float]:
    """Metrics of the trained model on the test set: metric name -> value."""
    loaded = load_for_inference(spec_or_run, weights=weights, sets=sets, plugins=plugins, model=model,
                                runs_root=runs_root, note=note)
    spec = loaded.checked.spec
    assert spec is not None
    if spec.data is None:
        raise _spec_error("GS410", "the spec has no `data` section: nothing to evaluate on", loaded.checked, ())
    if _compile_settings(loaded.checked, loaded.model_name) is None:
        raise _spec_error("GS410", f"model `{loaded.model_name}` has no compile settings (loss, metrics)",
                          loaded.checked, ())
    seed = spec.train.seed if spec.train is not None and spec.train.seed is not None else 0
    base = Path(loaded.checked.file).resolve().parent

    def locate(path: tuple[Any, ...]) -> Location:
        assert loaded.checked.source is not None
        return loaded.checked.source.location(path, key=True)

    data = data_mod.prepare(spec.data, loaded.io, base_dir=base, seed=seed, graph=loaded.checked.graph,
                            locate=locate)
    if data.test is None:
        raise _spec_error("GS410", "the data has no test set", loaded.checked, ("data",),
                          "set `data.test_split`, or a `test` file in the source")
    ds = data_mod.eval_dataset(data.test, loaded.io, batch_size=spec.data.batch_size)
    result = loaded.model.evaluate(ds, verbose=0, return_dict=True)
    return {k: float(v) for k, v in result.items()}


def predict(spec_or_run: str | Path, inputs: str | Path, output: str | Path, *, weights: str | Path | None = None,
            sets: list[str] | None = None, plugins: list[str] | None = None, model: str | None = None,
            runs_root: str | Path = "runs", transforms: bool = True, batch_size: int | None = None,
            note: Any = None) -> dict[str, tuple[int, ...]]:
    """Predictions for the named input arrays of an .npz file, written to an .npz by output name."""
    loaded = load_for_inference(spec_or_run, weights=weights, sets=sets, plugins=plugins, model=model,
                                runs_root=runs_root, note=note)
    try:
        with np.load(inputs, allow_pickle=False) as npz:
            arrays = {k: npz[k] for k in npz.files}
    except (OSError, ValueError) as exc:
        raise UsageError(f"{inputs}: cannot read an .npz file ({exc})") from None
    spec = loaded.checked.spec
    assert spec is not None

    def locate(path: tuple[Any, ...]) -> Location:
        if path and path[0] == "inputs":
            return Location(str(inputs))
        assert loaded.checked.source is not None
        return loaded.checked.source.location(path, key=True)

    split = data_mod.inputs_from_arrays(arrays, loaded.io, spec.data, transforms=transforms, locate=locate)
    xs = [split.inputs[p.name] for p in loaded.io.inputs]
    x: Any = xs[0] if len(xs) == 1 else {p.keras_name: a for p, a in zip(loaded.io.inputs, xs)}
    bs = batch_size or (spec.data.batch_size if spec.data is not None else 32)
    preds = loaded.model.predict(x, batch_size=bs, verbose=0)
    outs = preds if isinstance(preds, (list, tuple)) else [preds]
    if isinstance(preds, dict):
        outs = [preds[p.keras_name] for p in loaded.io.outputs]
    named = {p.name: np.asarray(o) for p, o in zip(loaded.io.outputs, outs)}
    artifacts.save_npz(output, named)
    return {k: tuple(v.shape) for k, v in named.items()}


def export(spec_or_run: str | Path, output: str | Path, *, fmt: str | None = None, weights: str | Path | None = None,
           **kwargs: Any) -> str:
    """A trained model (run or --weights) exported as .keras, SavedModel or TFLite."""
    loaded = load_for_inference(spec_or_run, weights=weights, **kwargs)
    return artifacts.export_model(loaded.model, output, fmt)


# -- presentation --------------------------------------------------------------------------------------------
def results_table(result: RunResult) -> Any:
    """A rich table: each metric's last training and validation value, and the test value."""
    from rich.table import Table

    last = result.history[-1] if result.history else {}
    names: list[str] = []
    for k in last:
        base = k[4:] if k.startswith("val_") else k
        if k not in {"epoch", "time", "learning_rate"} and base not in names:
            names.append(base)
    for k in result.test_metrics or {}:
        if k not in names:
            names.append(k)
    title = f"{result.status}: {result.epochs_done}/{result.epochs} epochs"
    table = Table(title=title, caption=str(result.run_dir))
    table.add_column("metric")
    table.add_column("train", justify="right")
    table.add_column("validation", justify="right")
    table.add_column("test", justify="right")

    def fmt(v: Any) -> str:
        return "" if v is None else f"{float(v):.4f}"

    for n in names:
        table.add_row(n, fmt(last.get(n)), fmt(last.get(f"val_{n}")), fmt((result.test_metrics or {}).get(n)))
    if result.best:
        table.caption = (f"best {result.best.get('monitor')} {float(result.best['value']):.4f} at epoch "
                         f"{result.best.get('epoch')}; run folder: {result.run_dir}")
    return table
