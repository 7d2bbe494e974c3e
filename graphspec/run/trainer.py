"""Training: train a spec's model into a run folder, or resume one, and report the result.

:class:`Trainer` is one training session of a run folder (fresh or resumed): it builds the model
and the data, writes the run's files after every completed epoch (the layout is in
:mod:`graphspec.run.folders`), and restores a run's state on `--resume`. :func:`train` is the
entry point behind `graphspec train`; :func:`results_table` shows its result.

Every file is written to a temporary file in the same folder and renamed into place
(:mod:`graphspec.run.artifacts`); the checkpoint is written before the state that names it, so a
process killed at any moment leaves a run that loads and resumes.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import math
import secrets
import signal
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from graphspec import compiler
from graphspec.run import artifacts
from graphspec.run import data as data_mod
from graphspec.run import failures, pipeline, plugin_pins, sources, state_check
from graphspec.run.folders import (BEST, CHECKPOINTS, ENVIRONMENT, HISTORY, LAST, METRICS, RESULTS, SPEC, STATE,
                                   TENSORBOARD, environment, now, read_state, resolved_spec_text,
                                   resume_target, new_run_folder, claimed)
from graphspec.run.models import check, compile_settings, load_weights, model_io, pick_model, spec_error
from graphspec.spec import plugins as plugins_mod
from graphspec.spec import schema_run
from graphspec.diagnostics import Location
from graphspec.errors import GraphSpecError, SpecError

if TYPE_CHECKING:
    from graphspec.run.callbacks import EpochProgress

# Keras (and graphspec.run.callbacks, which subclasses its callbacks) is imported once a Trainer is made:
# what `train` checks before that (the spec, a run folder's state and plugins, the claim) fails fast.
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


# -- the trainer ------------------------------------------------------------------------------------------
def _auto_mode(monitor: str, mode: str) -> str:
    if mode != "auto":
        return mode
    m = monitor.lower()
    return "max" if any(k in m for k in ("acc", "auc", "precision", "recall", "f1", "fbeta", "iou")) else "min"


class Trainer:
    """One training session of a run folder (fresh or resumed)."""

    def __init__(self, checked: compiler.Checked, model_name: str, run_dir: Path, *, resume: bool,
                 console: Any, live: bool | None, plugins: list[str], base_dir: Path,
                 roots: list[Path] | None = None) -> None:
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
        self.roots = roots
        if self.spec.data is None:
            raise spec_error("GS410", "the spec has no `data` section: `graphspec train` needs one", checked, (),
                             "add one (see docs/training.md), or smoke-test with `--set data.source=synthetic`")
        self.data_spec = self.spec.data
        self.train_spec = self.spec.train or schema_run.TrainSpec()
        self.settings = compile_settings(checked, model_name)
        if self.settings is None:
            raise spec_error("GS410", f"model `{model_name}` has no compile settings (optimizer, loss) to "
                             "train with", checked, ("compile",), "add a `compile:` section")
        if self.settings.loss is None:
            raise spec_error("GS410", f"model `{model_name}` has no loss to train with", checked, ("compile",),
                             "add `loss:` to the compile settings")
        self.epochs = self.train_spec.epochs
        assert self.train_spec.seed is not None, "the seed is filled in before training"
        self.seed = self.train_spec.seed
        from graphspec.run.callbacks import Stop

        self.stop = Stop()
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
        from graphspec.build.backend import keras
        from graphspec.run.callbacks import current_lr

        if self.train_spec.deterministic:
            import tensorflow as tf

            tf.config.experimental.enable_op_determinism()
        keras.utils.set_random_seed(self.seed)
        self.model = compiler.build(self.checked, models=[self.model_name])[self.model_name]
        if self.train_spec.lr_schedule is not None and not isinstance(
                self.model.optimizer._learning_rate, keras.Variable):
            raise spec_error("GS410", "`train.lr_schedule` needs a constant learning rate, but "
                             "`compile.optimizer.learning_rate` is a schedule", self.checked,
                             ("train", "lr_schedule"), "use one of them")
        self.model.optimizer.build(self.model.trainable_variables)
        self.io = model_io(self.checked, self.model_name, self.model)
        self.data = data_mod.prepare(self.data_spec, self.io, base_dir=self.base_dir, seed=self.seed,
                                     graph=self.checked.graph, locate=self.locate, roots=self.roots)
        self.has_validation = self.data.validation is not None
        if self.monitor.startswith("val_") and not self.has_validation:
            self.monitor = self.monitor[4:]
        self.steps = pipeline.steps(len(self.data.train), self.data_spec.batch_size)
        self.initial_lr = current_lr(self.model) or 0.0

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
        self.state["updated"] = now()
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
            learning_rate=_current_lr(self.model),
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
                "status": "running", "model": self.model_name, "plugins": plugin_pins.record(self.plugins),
                "epochs": self.epochs, "epochs_completed": 0, "seed": self.seed, "started": now(),
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
        ckpt = state_check.checkpoint_path(self.state, self.run_dir, LAST)
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
            try:
                var.assign(np.asarray(value, dtype=var.dtype))
            except (ValueError, TypeError, OverflowError):
                raise state_check.error("the run state's `seed_states` do not fit the model's seed generators",
                                        self.run_dir / STATE) from None
        self.initial_lr = float(self.state.get("initial_learning_rate", self.initial_lr))
        self.previous_status = self.state.get("status")
        self.state.update(status="running", epochs=self.epochs, resumed=now(),
                          plugins=plugin_pins.record(self.plugins))
        self.state.pop("message", None)
        self.write_state()
        return done

    def make_callbacks(self, progress: EpochProgress) -> list[Any]:
        from graphspec.build.backend import keras
        from graphspec.run.callbacks import EpochTensorBoard, RunCallback

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
        cbs.append(RunCallback(self))
        if ts.tensorboard:
            cbs.append(EpochTensorBoard(log_dir=str(self.run_dir / TENSORBOARD), write_graph=False,
                                         profile_batch=0, update_freq="epoch"))
        cbs.append(progress)
        return cbs

    def _monitor(self, monitor: str | None) -> str:
        m = monitor or self.monitor
        return m[4:] if m.startswith("val_") and not self.has_validation else m

    def fit(self, first_epoch: int) -> float:
        from graphspec.run.callbacks import EpochProgress, stop_on_signals

        ds, _ = pipeline.train_dataset(
            self.data.train, self.io, batch_size=self.data_spec.batch_size, seed=self.seed,
            first_epoch=first_epoch, epochs=self.epochs, shuffle=self.data_spec.shuffle,
            prefetch=self.data_spec.prefetch)
        val = None
        if self.data.validation is not None:
            val = pipeline.eval_dataset(self.data.validation, self.io, batch_size=self.data_spec.batch_size,
                                        cache=self.data_spec.cache, prefetch=self.data_spec.prefetch)
        live = self.live if self.live is not None else bool(getattr(self.console, "is_terminal", False))
        self.progress = EpochProgress(self.console, self.epochs, self.steps, live)
        callbacks = self.make_callbacks(self.progress)
        started = time.perf_counter()
        self.fitting = True
        try:
            with stop_on_signals(self.stop, self.say):
                self.model.fit(ds, epochs=self.epochs, initial_epoch=first_epoch, steps_per_epoch=self.steps,
                               validation_data=val, callbacks=callbacks, verbose=0, shuffle=False)
        except GraphSpecError:
            raise
        except Exception as exc:  # what only Keras sees (a shape fit rejects); KeyboardInterrupt passes
            raise failures.fit_failed(exc, self.locate(("data",)), {layer.name for layer in self.model.layers}) from None
        finally:
            self.fitting = False
            self.progress.on_train_end()
        return time.perf_counter() - started

    def evaluate_test(self) -> dict[str, float] | None:
        if self.data.test is None:
            return None
        weights = self.run_dir / BEST if (self.run_dir / BEST).exists() else self.run_dir / LAST
        load_weights(self.model, weights, with_optimizer=True)
        ds = pipeline.eval_dataset(self.data.test, self.io, batch_size=self.data_spec.batch_size,
                                   cache=False, prefetch=self.data_spec.prefetch)
        try:
            result = self.model.evaluate(ds, verbose=0, return_dict=True)
        except Exception as exc:
            raise failures.fit_failed(exc, self.locate(("data",)), {layer.name for layer in self.model.layers}) from None
        return {k: float(v) for k, v in result.items()}

    def failed(self, error: SpecError) -> SpecError:
        """Mark the run failed (if it has a state yet) and say what is kept: see :mod:`graphspec.run.failures`."""
        if not self.state:
            return error
        return failures.mark_failed(error, self.run_dir / STATE, self.run_dir / LAST,
                                    int(self.state.get("epochs_completed", 0)), self.write_state)


def _current_lr(model: Any) -> float | None:
    from graphspec.run.callbacks import current_lr

    return current_lr(model)


def _jsonable(value: Any) -> Any:
    f = float(value)
    return f if math.isfinite(f) else str(f)


def _unjson(value: Any) -> float:
    return float(value)


# -- the entry point -------------------------------------------------------------------------------------------
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
    force_unlock: bool = False,
    data_roots: list[Path] | None = None,
) -> RunResult:
    """Train SPEC's model into a run folder (or resume one). Raises SpecError/UsageError for spec, data or
    usage problems; a non-finite loss or a signal is reported in the result (exit_code 1 / 130 / 143)."""
    from rich.console import Console

    console = console or Console(file=sys.stderr)
    plugins = [str(Path(p).resolve()) if p.endswith(".py") and Path(p).is_file() else p
               for p in plugins_mod.all_plugins(plugins)]

    def say(text: str) -> None:
        console.print(text, markup=False, highlight=False, soft_wrap=True)

    folder: Path
    with contextlib.ExitStack() as stack:
        if resume:
            folder = resume_target(spec, run_dir, runs_root)
            stack.enter_context(claimed(folder, fresh=False, force_unlock=force_unlock, note=say))
            spec_file = folder / SPEC
            state = read_state(folder)
            model = model or state.get("model")
            plugin_pins.require(state, plugins, folder / STATE)  # the run's plugins are never imported for it
            base_dir = folder  # the run's spec.yaml holds absolute data paths; never a base_dir it names
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
            raise spec_error("GS410", "the spec has no `data` section: `graphspec train` needs one", checked, (),
                             "add one (see docs/training.md), or smoke-test with `--set data.source=synthetic`")
        name = pick_model(checked, model)
        fill: dict[str, Any] = {}
        if checked.spec.train is None or checked.spec.train.seed is None:
            fill["train.seed"] = secrets.randbelow(2**31 - 1)
            if checked.spec.train is None:
                checked.spec.train = schema_run.TrainSpec(seed=fill["train.seed"])
            else:
                checked.spec.train.seed = fill["train.seed"]
        # Data paths in a spec stay inside its folder; a run's spec.yaml (absolute paths) inside the current one.
        roots = sources.data_roots(data_roots, Path.cwd() if resume else base_dir)
        assert checked.source is not None
        sources.preflight(checked.spec.data, base_dir, roots, lambda path: checked.source.location(path, key=True))
        if not resume:
            # Claimed before anything is built or written: a second process is refused at once.
            made: list[Path] = []
            if run_dir is not None:
                folder = Path(run_dir)
            else:
                folder, made = new_run_folder(runs_root, checked.spec.name)
            stack.enter_context(claimed(folder, fresh=True, force_unlock=force_unlock, note=say, made=made))
        trainer = Trainer(checked, name, folder, resume=resume, console=console, live=live, plugins=plugins,
                          base_dir=base_dir, roots=roots)
        trainer.build()  # model and data: every spec or data problem is raised before the folder is written
        try:
            return _run(trainer, spec, spec_file, all_sets, fill)
        except SpecError as exc:  # a write that failed, Keras rejecting the data inside fit
            raise trainer.failed(exc) from None


def _run(trainer: Trainer, spec: str | Path, spec_file: Path, all_sets: list[str], fill: dict[str, Any]) -> RunResult:
    """Write the run's files, train, evaluate on the test set, and report: a built trainer's session."""
    folder, resume, name = trainer.run_dir, trainer.resume, trainer.model_name
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
               "weights": BEST if (folder / BEST).exists() else LAST, "test": test, "finished": now()}
    artifacts.atomic_write_json(folder / RESULTS, results)
    message = f"{'stopped early' if stopped_early else 'finished'} after {done} epochs; run folder: {folder}"
    trainer.write_state(status=status, message=message)
    return RunResult(folder, status, done, trainer.epochs, trainer.history, test, message, EXIT_OK, fit_seconds,
                     len(trainer.data.train), best)


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
