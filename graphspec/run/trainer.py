"""Training: train a spec's model into a run folder, or resume one, and report the result.

:class:`Trainer` is one training session of a run folder (fresh or resumed): it builds the model
and the data, writes the run's metrics after every completed epoch and its checkpoint at most every
`train.checkpoint.every` seconds (:mod:`graphspec.run.checkpoints`; the layout is in
:mod:`graphspec.run.folders`), and restores a run's state on `--resume`. :func:`train` is the entry point
behind `graphspec train`; :func:`graphspec.render.text.results_table` shows its result.

Every file is written to a temporary file in the same folder and renamed into place
(:mod:`graphspec.run.artifacts`); the checkpoint is written before the state that names it, so a
process killed at any moment leaves a run that loads and resumes.
"""

from __future__ import annotations

import contextlib
import csv
import io
import json
import math
import secrets
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from graphspec import compiler
from graphspec.run import adapt, artifacts
from graphspec.run.checkpoints import Checkpoints
from graphspec.run import data as data_mod
from graphspec.run import distribute
from graphspec.run import failures, folder_guard, plugin_pins, preflight, session, sources, state_check
from graphspec.run.lock import CLAIM
from graphspec.run.folders import (BEST, CHECKPOINTS, HISTORY, LAST, METRICS, SPEC, STATE,
                                   TENSORBOARD, now, read_state, recorded_backend, resume_target, new_run_folder, claimed)
from graphspec.render.escape import csv_cell
from graphspec.run.models import check, compile_settings, load_weights, model_io, pick_model, spec_error
from graphspec.spec import plugins as plugins_mod
from graphspec.spec import schema_run
from graphspec.build import backend
from graphspec.diagnostics import Location
from graphspec.errors import GraphSpecError, SpecError
from graphspec.run.session import EXIT_FAILED, EXIT_OK, EXIT_SIGNAL, RunFailed, RunResult

if TYPE_CHECKING:
    from graphspec.run.callbacks import EpochProgress

# Keras (and graphspec.run.callbacks, which subclasses its callbacks) is imported once a Trainer is made:
# what `train` checks before that (the spec, a run folder's state and plugins, the claim) fails fast.
__all__ = ["EXIT_FAILED", "EXIT_OK", "EXIT_SIGNAL", "RunFailed", "RunResult", "Trainer", "train"]


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
                 roots: list[Path] | None = None, runtime: distribute.Runtime | None = None,
                 callbacks: list[Any] | None = None, prepared: data_mod.Data | None = None) -> None:
        assert checked.spec is not None and checked.graph is not None
        self.checked = checked
        self.spec = checked.spec
        self.model_name = model_name
        self.run_dir = run_dir
        self.resume = resume
        self.in_memory_epoch: int | None = None  # the checkpoint the model in memory equals, if any
        self.checkpoints: Checkpoints  # made by start(), fresh or resumed
        self.console = console
        self.live = live
        self.plugins = plugins
        self.base_dir = base_dir
        self.roots = roots
        self.runtime = runtime or distribute.Runtime(distribute.Plan())
        self.shard = self.runtime.shard()
        self.multi_process = self.runtime.plan.multi_process
        self.extra_callbacks = list(callbacks or [])
        self.prepared = prepared  # the data read and checked before Keras started (preflight.prepare)
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

    def node_location(self, name: str) -> Location:
        """Where node `name` is written; the data section if the spec has no such node."""
        return self.locate(("nodes", name) if name in self.checked.graph.nodes else ("data",))  # type: ignore[union-attr]

    def locate(self, path: tuple[Any, ...]) -> Location:
        assert self.checked.source is not None
        return self.checked.source.location(path, key=True)

    # -- set-up
    def build(self) -> None:
        from graphspec.build.backend import keras
        from graphspec.run.callbacks import current_lr

        if self.train_spec.deterministic:
            backend.make_deterministic()
        with backend._quiet_fd2():  # on TensorFlow, its first use of the runtime
            backend.set_random_seed(self.seed)
        with self.runtime.scope():
            self.model = compiler.build(self.checked, models=[self.model_name], training=True)[self.model_name]
        if self.train_spec.lr_schedule is not None and not isinstance(
                self.model.optimizer._learning_rate, keras.Variable):
            raise spec_error("GS410", "`train.lr_schedule` needs a constant learning rate, but "
                             "`compile.optimizer.learning_rate` is a schedule", self.checked,
                             ("train", "lr_schedule"), "use one of them")
        with self.runtime.scope():
            self.model.optimizer.build(self.model.trainable_variables)
        self.io = model_io(self.checked, self.model_name, self.model)
        adopted = preflight.adopt(self.prepared, self.io, self.data_spec, self.locate) if self.prepared else None
        self.prepared = None  # self.data holds it now; or, refused, it is freed before the files are read anew
        self.data = adopted or data_mod.prepare(self.data_spec, self.io, base_dir=self.base_dir, seed=self.seed,
                                     graph=self.checked.graph, locate=self.locate, roots=self.roots)
        self.has_validation = self.data.validation is not None
        if self.monitor.startswith("val_") and not self.has_validation:
            self.monitor = self.monitor[4:]
        self.steps = self.shard.steps(len(self.data.train), self.data_spec.batch_size)
        self.initial_lr = current_lr(self.model) or 0.0

    def agree_stop(self) -> bool:
        return self.runtime.any_process(self.stop.requested)

    def seed_variables(self) -> list[Any]:
        return [v for v in self.model.variables if "seed_generator_state" in v.path]

    # -- files
    def write_history(self, durable: bool = True) -> None:
        """history.json and metrics.csv (`durable=False`: made durable by the next checkpoint, see
        :func:`graphspec.run.artifacts.atomic_path`)."""
        artifacts.atomic_write_json(self.run_dir / HISTORY, self.history, durable=durable)
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
        writer.writerow({k: csv_cell(k) for k in header})  # a metric's `name:` is the spec's, any string
        for row in self.history:
            writer.writerow({k: (repr(v) if isinstance(v, float) else v) for k, v in row.items()})
        artifacts.atomic_write_text(self.run_dir / METRICS, buf.getvalue(), durable=durable)

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

    def save_epoch(self, epochs_done: int, row: dict[str, Any], stopping: bool = False) -> bool:
        """Epoch `epochs_done` is complete: its row into the metrics files, then the checkpoint, now or later
        (:mod:`graphspec.run.checkpoints`; `stopping`: the run stops after it). True if the best improved."""
        folder_guard.check_run_folder(self.run_dir)  # again: nothing written or deleted through a link
        if epochs_done > 0:
            self.history = self.history[: epochs_done - 1] + [row]
            self.write_history(durable=False)  # fsync'd with the checkpoint: 5 ms an epoch on this machine's disk
        return self.checkpoints.epoch_end(epochs_done, row.get(self.monitor), stopping=stopping)

    def epoch_fields(self) -> dict[str, Any]:
        return {"callbacks": self.callback_state(),
                "seed_states": [np.asarray(v).tolist() for v in self.seed_variables()],
                "learning_rate": _current_lr(self.model), "initial_learning_rate": self.initial_lr}

    def clean_temporaries(self) -> None:
        folder_guard.check_run_folder(self.run_dir)
        for folder in (self.run_dir, self.run_dir / CHECKPOINTS):
            if folder.is_dir() and not folder.is_symlink():
                for p in folder.glob(".*.tmp*"):
                    with contextlib.suppress(OSError):
                        if p.is_dir() and not p.is_symlink():  # a link is removed, never what it points to
                            shutil.rmtree(p)
                        else:
                            p.unlink()

    # -- fresh or resumed
    def start(self) -> int:
        """Set up the run folder; the first epoch to train."""
        self.es_best_weights = None
        self.in_memory_epoch = None
        self.previous_status: str | None = None
        if self.data.skipped:  # `on_error: skip`: which files, and why
            artifacts.atomic_write_json(self.run_dir / "data-skipped.json", {
                "count": len(self.data.skipped), "files": [{"file": f, "why": w} for f, w in self.data.skipped]})
        if not self.resume:
            self.state = {
                "status": "running", "model": self.model_name, "plugins": plugin_pins.record(self.plugins),
                "epochs": self.epochs, "epochs_completed": 0, "seed": self.seed, "started": now(),
                "monitor": self.monitor, "mode": self.mode, "base_dir": str(self.base_dir),
                "backend": backend.active(),
            }
            if self.data.classes:
                self.state["classes"] = self.data.classes  # predict names its rows by them
            self.history = []
            artifacts.atomic_write_json(self.run_dir / HISTORY, [])
            artifacts.atomic_write_text(self.run_dir / METRICS, "epoch\n")
            self.adapt()
            self.checkpoints = Checkpoints(self, self.train_spec.checkpoint.every, None)
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
        adapt.restore(self.model, self.run_dir)  # vocabularies: not in the weights; never adapted again
        load_weights(self.model, ckpt, with_optimizer=True)
        for var, value in zip(self.seed_variables(), self.state.get("seed_states", [])):
            try:
                var.assign(np.asarray(value, dtype=var.dtype))
            except (ValueError, TypeError, OverflowError):
                raise state_check.error("the run state's `seed_states` do not fit the model's seed generators",
                                        self.run_dir / STATE) from None
        self.initial_lr = float(self.state.get("initial_learning_rate", self.initial_lr))
        self.previous_status = self.state.get("status")
        self.state.update(status="running", epochs=self.epochs, resumed=now(), backend=backend.active(),
                          plugins=plugin_pins.record(self.plugins))
        self.state.pop("message", None)
        self.write_state()
        self.checkpoints = Checkpoints(self, self.train_spec.checkpoint.every, self.state.get("best"))
        return done

    def adapt(self) -> None:
        """Adapt the preprocessing nodes on the training split (a fresh run, `train.adapt` on)."""
        if self.train_spec.adapt:
            adapt.adapt_run(self)

    def augment(self) -> Any:
        """The `data.augment` layers (:class:`graphspec.run.augment.Augment`), or None."""
        if not self.data_spec.augment:
            return None
        from graphspec.run.augment import Augment

        return Augment(self.data_spec.augment, self.io, seed=self.seed, shard=self.shard,
                       samples=len(self.data.train), batch_size=self.data_spec.batch_size)

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
        cbs.extend(self.extra_callbacks)  # e.g. a sweep's per-epoch report: sees the epoch recorded
        # Keras writes the logs with tf.summary on TensorFlow; on JAX and PyTorch graphspec writes the same events
        # with the tensorboard package alone (graphspec.run.tb_events).
        needed = ("tensorflow", "tensorboard") if backend.active() == "tensorflow" else ("tensorboard",)
        missing = [m for m in needed if not backend.importable(m)]
        if not self.runtime.chief:
            pass  # process 0 writes the run folder, TensorBoard logs included
        elif ts.tensorboard and missing:
            hint = backend.install_hint("tensorflow") if "tensorflow" in missing else "pip install tensorboard"
            writer = "Keras writes them with TensorFlow and the tensorboard package" if len(needed) == 2 else \
                "they are written with the tensorboard package"
            self.say(f"note: no TensorBoard logs: {writer}, and {' and '.join(missing)} "
                     f"{'is' if len(missing) == 1 else 'are'} not installed ({hint}; "
                     "`train.tensorboard: false` silences this)")
        elif ts.tensorboard:
            # Keras's writer follows paths: it writes into a folder made and checked here (and re-checked
            # before each epoch's files, see save_epoch).
            with artifacts.writing(self.run_dir / TENSORBOARD):
                (self.run_dir / TENSORBOARD).mkdir(exist_ok=True)
            folder_guard.check_run_folder(self.run_dir)
            cbs.append(EpochTensorBoard(log_dir=str(self.run_dir / TENSORBOARD), write_graph=True,
                                         profile_batch=0, update_freq="epoch"))
        cbs.append(progress)
        return cbs

    def _monitor(self, monitor: str | None) -> str:
        m = monitor or self.monitor
        return m[4:] if m.startswith("val_") and not self.has_validation else m

    def fit(self, first_epoch: int) -> float:
        from graphspec.run import pipeline
        from graphspec.run.callbacks import EpochProgress, close_tensorboard, step_callbacks, stop_on_signals

        augment = self.augment()
        # Augmented: the augment map joins the stream's batch map (or follows it, fused), the prefetch after it.
        ds, _ = pipeline.train_dataset(
            self.data.train, self.io, batch_size=self.data_spec.batch_size, seed=self.seed,
            first_epoch=first_epoch, epochs=self.epochs, shuffle=self.data_spec.shuffle,
            prefetch=False if augment else self.data_spec.prefetch, shard=self.shard)
        if augment:
            ds = augment.train(ds, first_epoch=first_epoch, steps=self.steps, prefetch=self.data_spec.prefetch)
        val = None
        if self.data.validation is not None:
            val = pipeline.eval_dataset(self.data.validation, self.io, batch_size=self.data_spec.batch_size,
                                        cache=self.data_spec.cache, prefetch=self.data_spec.prefetch,
                                        shard=self.shard)
            val = augment.evaluation(val) if augment else val
        live = self.live if self.live is not None else bool(getattr(self.console, "is_terminal", False))
        if self.runtime.chief:
            self.progress = EpochProgress(self.console, self.epochs, self.steps, live)
        else:  # only process 0 shows progress
            from rich.console import Console

            self.progress = EpochProgress(Console(file=io.StringIO()), self.epochs, self.steps, False)
        callbacks = self.make_callbacks(self.progress)
        sources.arrays.take_lost()  # a data problem kept from an earlier run in this process is not this one's
        started = time.perf_counter()
        self.fitting = True
        try:
            with stop_on_signals(self.stop, self.say), self.runtime.scope(), \
                    step_callbacks(self.model, callbacks, history=True, epochs=self.epochs, steps=self.steps) as every:
                self.model.fit(ds, epochs=self.epochs, initial_epoch=first_epoch, steps_per_epoch=self.steps,
                               validation_data=val, validation_steps=pipeline.known_batches(val),
                               callbacks=every, verbose=0, shuffle=False)
                self.checkpoints.flush()  # the last completed epoch, if it is not written yet
        except GraphSpecError:
            raise
        except Exception as exc:  # what only Keras sees (a shape fit rejects); KeyboardInterrupt passes
            raise failures.fit_failed(exc, self.locate(("data",)), {layer.name for layer in self.model.layers},
                                          self.node_location) from None
        finally:
            self.fitting = False
            self.progress.on_train_end()
            close_tensorboard(callbacks)
        return time.perf_counter() - started

    def evaluate_test(self) -> dict[str, float] | None:
        if self.data.test is None:
            return None
        weights = self.run_dir / BEST if (self.run_dir / BEST).exists() else self.run_dir / LAST
        if not self._holds(weights):
            load_weights(self.model, weights, with_optimizer=True)
        from graphspec.run import pipeline
        from graphspec.run.callbacks import step_callbacks

        ds = pipeline.eval_dataset(self.data.test, self.io, batch_size=self.data_spec.batch_size,
                                   cache=False, prefetch=self.data_spec.prefetch, shard=self.shard)
        augment = self.augment()
        ds = augment.evaluation(ds) if augment else ds
        try:
            with self.runtime.scope(), step_callbacks(self.model, epochs=1) as callbacks:
                result = self.model.evaluate(ds, steps=pipeline.known_batches(ds), verbose=0, return_dict=True,
                                             callbacks=callbacks)
        except Exception as exc:
            raise failures.fit_failed(exc, self.locate(("data",)), {layer.name for layer in self.model.layers},
                                          self.node_location) from None
        return {k: float(v) for k, v in result.items()}

    def _holds(self, weights: Path) -> bool:
        """Whether the model in memory already is `weights` (best or last): saved at the end of the last epoch
        this process trained, and not changed since (EarlyStopping's restore_best_weights changes it)."""
        es = self.callbacks_by_name.get("early_stopping")
        if self.in_memory_epoch is None or (es is not None and es.restore_best_weights):
            return False
        if self.in_memory_epoch != int(self.state.get("epochs_completed", -1)):
            return False
        best = self.state.get("best") or {}
        return weights.name == LAST or best.get("epoch") == self.in_memory_epoch

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
    backend_name: str | None = None,
    plan: distribute.Plan | None = None,
    callbacks: list[Any] | None = None,
) -> RunResult:
    """Train SPEC's model into a run folder (or resume one). Raises SpecError/UsageError for spec, data or
    usage problems; a non-finite loss or a signal is reported in the result (exit_code 1 / 130 / 143).

    The Keras backend is the one this process runs (:mod:`graphspec.build.backend`; the CLI selects it
    before importing this module: `--backend`, else the run's own on `--resume`); `backend_name` must
    match it. `plan` distributes the training (:mod:`graphspec.run.distribute`): only process 0 claims
    and writes the run folder; the others work in a scratch folder of their own, deleted at the end.

    ``callbacks`` are Keras callbacks run after each epoch is recorded (a sweep reports and prunes there);
    one that sets ``model.stop_training`` ends the run as stopped early."""
    from rich.console import Console

    console = console or Console(file=sys.stderr)
    plugins = [str(Path(p).resolve()) if p.endswith(".py") and Path(p).is_file() else p
               for p in plugins_mod.all_plugins(plugins)]

    def say(text: str) -> None:
        console.print(text, markup=False, highlight=False, soft_wrap=True)

    backend.select(backend_name, command="train")
    runtime = distribute.start(plan or distribute.Plan())
    folder: Path
    with contextlib.ExitStack() as stack:
        scratch = None if runtime.chief else Path(stack.enter_context(tempfile.TemporaryDirectory(
            prefix=f"graphspec-process-{runtime.plan.process_id}-", dir=distribute.scratch_root())))
        if resume:
            folder = resume_target(spec, run_dir, runs_root)
            if scratch is None:
                stack.enter_context(claimed(folder, fresh=False, force_unlock=force_unlock, note=say))
            spec_file = folder / SPEC
            state = read_state(folder)
            recorded = recorded_backend(folder)
            if backend_name is None and recorded is not None and recorded != backend.active():
                say(f"note: the run was trained on {recorded}; it continues on {backend.active()}, the backend "
                    "Keras runs on in this process")
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
        problem = distribute.check_batch(runtime, checked.spec.data.batch_size)
        if problem is not None:
            raise spec_error("GS414", problem, checked, ("data", "batch_size"),
                             distribute.batch_hint(checked.spec.data.batch_size, runtime.replicas))
        fill: dict[str, Any] = {}
        if checked.spec.train is None or checked.spec.train.seed is None:
            # One seed for every process of a job (process 0's): the initial weights must be the same.
            fill["train.seed"] = runtime.agree(secrets.randbelow(2**31 - 1))
            if checked.spec.train is None:
                checked.spec.train = schema_run.TrainSpec(seed=fill["train.seed"])
            else:
                checked.spec.train.seed = fill["train.seed"]
        # Data paths in a spec stay inside its folder; a run's spec.yaml (absolute paths) inside the current one.
        roots = sources.data_roots(data_roots, Path.cwd() if resume else base_dir)
        assert checked.source is not None
        sources.preflight(checked.spec.data, base_dir, roots, lambda path: checked.source.location(path, key=True))
        compiler.memory_gate(checked, models=[name], training=True)  # build's gate, before Keras starts
        preflight.data(checked, name, base_dir, roots)  # names, shapes and dtypes from headers: before Keras starts
        assert checked.spec.train is not None and checked.spec.train.seed is not None  # filled in above
        prepared = preflight.prepare(checked, name, base_dir, roots, seed=checked.spec.train.seed)  # values: GS417
        if scratch is not None:  # not process 0: the run folder is read, never written
            if resume:
                folder_guard.check_run_folder(folder)
                shutil.copytree(folder, scratch, dirs_exist_ok=True,
                                ignore=shutil.ignore_patterns(TENSORBOARD, CLAIM + "*"))
            folder = scratch
        elif not resume:
            # Claimed before anything is built or written: a second process is refused at once.
            made: list[Path] = []
            if run_dir is not None:
                folder = Path(run_dir)
            else:
                folder, made = new_run_folder(runs_root, checked.spec.name)
            stack.enter_context(claimed(folder, fresh=True, force_unlock=force_unlock, note=say, made=made))
        trainer = Trainer(checked, name, folder, resume=resume, console=console, live=live, plugins=plugins,
                          base_dir=base_dir, roots=roots, runtime=runtime, callbacks=callbacks, prepared=prepared)
        del prepared  # the trainer's only: it lets go of it if it must prepare the data anew
        stack.enter_context(backend.forgetting_custom_gradients())  # the graphs go with the model (TensorFlow)
        trainer.build()  # model and data: every spec or data problem is raised before the folder is written
        try:
            return session.run(trainer, runtime, spec, spec_file, all_sets, fill)
        except SpecError as exc:  # a write that failed, Keras rejecting the data inside fit
            raise trainer.failed(exc) from None

