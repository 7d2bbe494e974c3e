"""Experiment tracking: every graphspec run (and every sweep) in MLflow, fed by what run/ writes.

`graphspec train ... --track mlflow` makes one MLflow run per graphspec run, at MLflow's own
``MLFLOW_TRACKING_URI`` (MLflow's local store when unset), in the experiment named like the spec
(`--experiment NAME`):

- params: the values that make this run differ (`--set` overrides, a trial's swept values) and the
  key settings of the resolved spec (model, epochs, batch size, optimizer, learning rate, loss, seed);
- tags: backend, distribution, git commit, graphspec version, the model's static parameters and
  multiply-accumulates, and the run folder;
- metrics: each epoch's logs with ``step`` = the epoch (1-based, like history.json), from a Keras callback
  at epoch end, sent in one batch per epoch without waiting (MLflow's asynchronous logging);
- artifacts at the end: the run's ``spec.yaml``, the fully resolved spec (``resolved.yaml``: vars and
  blocks expanded), ``environment.json``, and with `--track-models` the best model.

`graphspec sweep ... --track mlflow` is a parent run with one child run per trial (the layout of
optuna-integration's ``MLflowCallback`` with ``nest_trials``), the child's params the swept values.

Tracking never stops training: the first failing MLflow call is reported once as a warning and
tracking stops for that run; the run folder stays the record.
"""

from __future__ import annotations

import dataclasses
import importlib.util
import subprocess
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from graphspec.errors import UsageError

KINDS = ("mlflow",)
EXTRA = "pip install 'keras-graphspec[mlflow]'"
PARENT_KEY = "graphspec_mlflow_parent_run"  # a sweep study's user attribute: its MLflow parent run
Say = Callable[[str], None]


@dataclasses.dataclass(frozen=True)
class Options:
    """What `--track`, `--experiment` and `--track-models` asked for."""

    kind: str = "mlflow"
    experiment: str | None = None
    models: bool = False
    parent_run_id: str | None = None  # a sweep's trials: the sweep's run


def options(kind: str | None, *, experiment: str | None = None, models: bool = False) -> Options | None:
    """The tracking a command asked for (None: none), checked before anything starts: an unknown kind or
    MLflow not installed is one line naming the fix."""
    if kind is None:
        if experiment is not None or models:
            raise UsageError("--experiment and --track-models go with --track mlflow")
        return None
    kind = kind.strip().lower()
    if kind not in KINDS:
        raise UsageError(f"--track {kind!r}: choose {', '.join(KINDS)}")
    if importlib.util.find_spec("mlflow") is None:
        raise UsageError(f"--track mlflow needs MLflow, which is not installed: {EXTRA}")
    return Options(kind, experiment, models)


# -- what a run is described by -------------------------------------------------------------------------------
def _set_pairs(sets: Iterable[str]) -> dict[str, str]:
    out: dict[str, str] = {}
    for s in sets:
        key, sep, value = s.partition("=")
        if sep:
            out[key.strip()] = value.strip()
    return out


def describe(checked: Any, model: str | None, sets: Iterable[str]) -> tuple[dict[str, str], dict[str, str]]:
    """(params, tags) of a checked spec and its overrides: the overrides, then the key settings."""
    from graphspec import __version__

    spec = checked.spec
    params = _set_pairs(sets)
    names = list(getattr(spec, "models", None) or {})
    name = model or (names[0] if names else None)
    settings: dict[str, Any] = {"model": name}
    if spec.data is not None:
        settings["data.batch_size"] = spec.data.batch_size
    train = spec.train
    if train is not None:
        settings["train.epochs"] = train.epochs
        if train.seed is not None:
            settings["train.seed"] = train.seed
    compile_ = getattr(spec, "compile", None)
    for key, value in _compile_settings(compile_).items():
        settings[key] = value
    for key, value in settings.items():
        if value is not None:
            params.setdefault(key, str(value))
    tags = {"graphspec.version": __version__, "graphspec.spec": str(Path(str(checked.file)).resolve())}
    info = (checked.analysis.models.get(name) if checked.analysis is not None and name else None)
    if info is not None:
        if info.params is not None:
            tags["graphspec.params"] = str(info.params)
        if info.macs is not None:
            tags["graphspec.macs"] = str(info.macs)
    commit = git_commit(Path(str(checked.file)).resolve().parent)
    if commit:
        tags["mlflow.source.git.commit"] = commit
    return params, tags


def _compile_settings(compile_: Any) -> dict[str, Any]:
    """optimizer type and learning rate, loss: whatever shape the compile section has."""
    if compile_ is None:
        return {}
    data = compile_.model_dump(mode="json", exclude_none=True) if hasattr(compile_, "model_dump") else compile_
    if not isinstance(data, dict):
        return {}
    if "optimizer" not in data and len(data) == 1:  # settings per model
        only = next(iter(data.values()))
        data = only if isinstance(only, dict) else data
    out: dict[str, Any] = {}
    opt = data.get("optimizer")
    if isinstance(opt, dict):
        out["compile.optimizer.type"] = opt.get("type")
        lr = opt.get("learning_rate")
        out["compile.optimizer.learning_rate"] = lr if not isinstance(lr, dict) else lr.get("type")
    elif isinstance(opt, str):
        out["compile.optimizer.type"] = opt
    loss = data.get("loss")
    out["compile.loss"] = loss.get("type") if isinstance(loss, dict) else loss
    return out


def git_commit(folder: Path) -> str | None:
    """The commit of the git work tree holding `folder`, if any (no git, no repository: None)."""
    try:
        proc = subprocess.run(["git", "rev-parse", "HEAD"], cwd=folder, capture_output=True, text=True, timeout=5)
    except (OSError, subprocess.SubprocessError):
        return None
    return proc.stdout.strip() or None if proc.returncode == 0 else None


# -- an MLflow run --------------------------------------------------------------------------------------------
class MlflowRun:
    """One MLflow run. Every call is guarded: the first failure warns once and ends tracking for it."""

    def __init__(self, say: Say) -> None:
        self.say = say
        self.client: Any = None
        self.run_id: str | None = None
        self.broken = False
        self.pending: list[Any] = []
        self.logged_params: set[str] = set()

    def _guard(self, what: str, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        if self.broken:
            return None
        try:
            return fn(*args, **kwargs)
        except Exception as exc:  # a tracking server down, a full disk, a bad URI: training goes on
            self.broken = True
            text = str(exc).strip().splitlines()
            self.say(f"warning: MLflow tracking stopped ({what}: {text[0] if text else type(exc).__name__}); the "
                     "run folder keeps the record")
            return None

    @classmethod
    def start(cls, *, experiment: str, run_name: str | None, params: dict[str, str], tags: dict[str, str],
              parent_run_id: str | None = None, say: Say) -> MlflowRun:
        """Create the run (and its experiment) and log its params and tags."""
        run = cls(say)
        run._guard("start", run._start, experiment, run_name, params, tags, parent_run_id)
        return run

    def _start(self, experiment: str, run_name: str | None, params: dict[str, str], tags: dict[str, str],
               parent_run_id: str | None) -> None:
        from mlflow import MlflowClient

        self.client = MlflowClient()
        found = self.client.get_experiment_by_name(experiment)
        if found is not None:
            experiment_id = found.experiment_id
        else:
            try:
                experiment_id = self.client.create_experiment(experiment)
            except Exception:  # another worker created it first
                again = self.client.get_experiment_by_name(experiment)
                if again is None:
                    raise
                experiment_id = again.experiment_id
        all_tags = dict(tags)
        if parent_run_id:
            all_tags["mlflow.parentRunId"] = parent_run_id
        run = self.client.create_run(experiment_id, run_name=run_name, tags=all_tags)
        self.run_id = run.info.run_id
        self.log_params(params)

    def resume(self, run_id: str) -> None:
        """Log to an existing run (a sweep's parent, continued)."""
        def attach() -> None:
            from mlflow import MlflowClient

            self.client = MlflowClient()
            self.client.update_run(run_id, status="RUNNING")
            self.run_id = run_id

        self._guard("resume", attach)

    def log_params(self, params: dict[str, str]) -> None:
        """Params not logged yet (MLflow's params are write-once); values cut to MLflow's length limit."""
        from mlflow.entities import Param

        new = [Param(k, str(v)[:6000]) for k, v in params.items() if k not in self.logged_params]
        if new and self.run_id:
            # Without waiting, like the metrics: the first asynchronous call starts MLflow's logging thread,
            # which is then running before the first epoch ends.
            op = self._guard("params", self.client.log_batch, self.run_id, params=new, synchronous=False)
            if op is not None:
                self.pending.append(op)
            self.logged_params.update(p.key for p in new)

    def set_tags(self, tags: dict[str, str]) -> None:
        from mlflow.entities import RunTag

        if tags and self.run_id:
            self._guard("tags", self.client.log_batch, self.run_id, tags=[RunTag(k, str(v)) for k, v in tags.items()])

    def log_metrics(self, step: int, metrics: dict[str, float]) -> None:
        """One batch, sent without waiting (MLflow's asynchronous logging); :meth:`finish` waits for them."""
        from mlflow.entities import Metric

        if not self.run_id or self.broken:
            return
        stamp = int(time.time() * 1000)
        batch = [Metric(k, float(v), stamp, step) for k, v in metrics.items()]
        if batch:
            op = self._guard("metrics", self.client.log_batch, self.run_id, metrics=batch, synchronous=False)
            if op is not None:
                self.pending.append(op)

    def log_artifact(self, path: Path, folder: str | None = None) -> None:
        if self.run_id and path.is_file():
            self._guard(f"artifact {path.name}", self.client.log_artifact, self.run_id, str(path), folder)

    def finish(self, status: str) -> None:
        """Wait for the metrics in flight, then end the run: FINISHED, FAILED or KILLED (interrupted)."""
        if not self.run_id:
            return
        for op in self.pending:
            self._guard("metrics", op.wait)
        self.pending.clear()
        self._guard("end", self.client.set_terminated, self.run_id, status)


STATUS = {"completed": "FINISHED", "early_stopped": "FINISHED", "interrupted": "KILLED", "failed": "FAILED"}


def numeric_logs(logs: dict[str, Any] | None) -> dict[str, float]:
    out: dict[str, float] = {}
    for k, v in (logs or {}).items():
        try:
            out[str(k)] = float(v)
        except (TypeError, ValueError):
            continue
    return out


def keras_callback(run: MlflowRun) -> Any:
    """A Keras callback logging each epoch's logs (and learning rate) with step = the epoch, 1-based."""
    from graphspec.build.backend import keras

    class MlflowEpochs(keras.callbacks.Callback):
        def on_epoch_end(self, epoch: int, logs: Any = None) -> None:
            metrics = numeric_logs(logs)
            try:
                metrics.setdefault("learning_rate", float(keras.ops.convert_to_numpy(
                    self.model.optimizer.learning_rate)))
            except Exception:  # a schedule without a value to read: the logs have what Keras logged
                pass
            run.log_metrics(epoch + 1, metrics)

    return MlflowEpochs()


# -- a graphspec run ------------------------------------------------------------------------------------------
class RunTracker:
    """The MLflow run of one graphspec run: started before training, finished from its run folder."""

    def __init__(self, opts: Options, checked: Any, *, model: str | None, sets: list[str],
                 run_name: str | None, say: Say, extra_params: dict[str, str] | None = None,
                 tags: dict[str, str] | None = None) -> None:
        params, base_tags = describe(checked, model, sets)
        params.update(extra_params or {})
        base_tags.update(tags or {})
        self.opts = opts
        self.checked = checked
        self.sets = sets
        self.run = MlflowRun.start(experiment=opts.experiment or checked.spec.name, run_name=run_name,
                                   params=params, tags=base_tags, parent_run_id=opts.parent_run_id, say=say)

    def callback(self) -> Any:
        return keras_callback(self.run)

    def finish(self, status: str, run_dir: Path | None, test: dict[str, float] | None = None,
               epochs: int = 0) -> None:
        """Log the run folder (tags from its files, artifacts) and end the MLflow run."""
        import json

        if run_dir is not None:
            tags = {"graphspec.run_dir": str(run_dir.resolve()), "graphspec.status": status,
                    "mlflow.runName": run_dir.name}
            try:
                env = json.loads((run_dir / "environment.json").read_text(encoding="utf-8"))
                state = json.loads((run_dir / "state.json").read_text(encoding="utf-8"))
            except (OSError, ValueError):
                env, state = {}, {}
            if isinstance(env, dict):
                tags["graphspec.backend"] = str(env.get("backend", ""))
                dist = env.get("distribution") or {}
                tags["graphspec.distribution"] = str(dist.get("strategy", "none")) if isinstance(dist, dict) else "none"
                if isinstance(dist, dict) and isinstance(dist.get("cluster"), dict):
                    tags["graphspec.cluster"] = str(dist["cluster"].get("kind"))
            self.run.set_tags(tags)
            if isinstance(state, dict) and state.get("seed") is not None:
                self.run.log_params({"train.seed": str(state["seed"])})
            for name in ("spec.yaml", "environment.json"):
                self.run.log_artifact(run_dir / name)
            self._resolved(run_dir)
            if self.opts.models:
                best = run_dir / "best.keras"
                self.run.log_artifact(best if best.is_file() else run_dir / "last.keras", "model")
        if test:
            self.run.log_metrics(epochs, {f"test_{k}": v for k, v in test.items()})
        self.run.finish(STATUS.get(status, "FINISHED"))

    def _resolved(self, run_dir: Path) -> None:
        """The spec with bases merged, overrides applied, vars and blocks expanded."""
        import tempfile

        from graphspec.experiments import resolve

        try:
            text = resolve.spec_text(resolve.resolve(run_dir / "spec.yaml"), expand=True)
        except Exception:  # a spec that resolves no more (a plugin gone): spec.yaml is logged anyway
            return
        with tempfile.TemporaryDirectory(prefix="graphspec-mlflow-") as tmp:
            path = Path(tmp) / "resolved.yaml"
            path.write_text(text, encoding="utf-8")
            self.run.log_artifact(path)
