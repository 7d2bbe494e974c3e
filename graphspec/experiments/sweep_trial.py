"""One trial of a sweep: its values checked statically, then trained into a run folder, then told to Optuna.

A trial's values become `--set` overrides. The pure stages check them first (milliseconds): a trial
that fails is recorded as pruned with its diagnostics, and costs no training. Otherwise the trial is
a normal run folder, ``DIR/trial-0007/``, trained by :func:`graphspec.run.trainer.train` with a Keras
callback that reports each epoch's objective to Optuna and stops the run when the pruner says so. A
trial that fails at run time (Keras rejects a shape only at `fit`, a non-finite loss, out of memory)
is recorded as failed with a located diagnostic; the sweep goes on.

Each trial folder also holds ``trial.json`` (its number, values, outcome and diagnostics: what
`graphspec runs` reads), ``train.log`` (the training's output) and TensorBoard HParams summaries.
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
import socket
import time
from pathlib import Path
from typing import Any

from graphspec.diagnostics import Diagnostic, Location, Severity
from graphspec.errors import GraphSpecError, SpecError
from graphspec.experiments import sweep_plan, sweep_study
from graphspec.run import artifacts, folder_guard
from graphspec.run.folders import HISTORY, SPEC, STATE, TENSORBOARD, is_run_dir, now, resolved_spec_text

TRIAL = "trial.json"
LOG = "train.log"
_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")


@dataclasses.dataclass
class Context:
    """What every trial of one worker shares."""

    study: Any
    plan: sweep_plan.Plan
    folder: Path  # the sweep folder
    spec_file: Path  # absolute
    sets: list[str]  # the sweep's own --set overrides, before each trial's values
    plugins: list[str]
    stop: Any  # graphspec.experiments.sweep.StopFlag: a signal received by the worker
    track: dict[str, Any] | None = None  # graphspec.experiments.tracking.Options as a dict: a child run per trial


@dataclasses.dataclass
class Outcome:
    number: int
    state: str  # completed | pruned | failed | interrupted | surplus
    values: dict[str, Any]
    run_dir: Path | None = None
    value: float | None = None
    static: bool = False
    epochs: int = 0
    message: str = ""
    diagnostics: list[dict[str, Any]] = dataclasses.field(default_factory=list)
    seconds: float = 0.0
    retry_of: int | None = None
    exit_code: int = 0  # an interrupted trial: 130 (SIGINT) or 143 (SIGTERM)


def best_value(history: list[dict[str, Any]], metric: str, mode: str) -> float | None:
    values = [v for v in (sweep_plan.metric_value(r, metric) for r in history) if v is not None]
    if not values:
        return None
    return max(values) if mode == "max" else min(values)


# -- one trial --------------------------------------------------------------------------------------------------
def run(ctx: Context, trial: Any) -> Outcome:
    """Check, train and tell one asked trial."""
    started = time.monotonic()
    retry_of = trial.user_attrs.get(sweep_study.RETRY_OF)
    run_name = str(trial.user_attrs.get(sweep_study.RUN_DIR) or f"trial-{trial.number:04d}")
    for key, value in ((sweep_study.HOST, socket.gethostname()), (sweep_study.PID, os.getpid()),
                       (sweep_study.RUN_DIR, run_name)):
        trial.set_user_attr(key, value)
    with sweep_study.heartbeat(ctx.study, trial):
        values = sweep_plan.suggest(trial, ctx.plan.sweep)
        folder = ctx.folder / run_name
        folder_guard.check_sweep_folder(ctx.folder, [run_name])  # a trial folder (or what it holds) may be a link
        folder.mkdir(parents=True, exist_ok=True)
        out = Outcome(trial.number, "failed", values, folder, retry_of=retry_of)
        _write_record(out, "running", started, ctx.plan)
        sets = ctx.sets + sweep_plan.trial_sets(values)
        checked = _check(ctx, sets)
        if not checked.ok:
            errors = [d for d in checked.diagnostics.sorted() if d.is_error]
            out.state, out.static = "pruned", True
            out.diagnostics = [d.as_dict() for d in errors]
            out.message = f"{errors[0].code} {errors[0].message} ({errors[0].location})"
            _write_static_spec(ctx, folder, sets)
        else:
            _train(ctx, trial, out, folder, sets, checked)
    out.seconds = round(time.monotonic() - started, 3)
    _tell(ctx, trial, out)
    _write_record(out, out.state, started, ctx.plan)
    if out.run_dir is not None and (out.run_dir / STATE).is_file():
        _hparams(out)
    return out


def _check(ctx: Context, sets: list[str]) -> Any:
    import graphspec

    return graphspec.check(ctx.spec_file, sets=sets, plugins=ctx.plugins)


def _write_static_spec(ctx: Context, folder: Path, sets: list[str]) -> None:
    """The trial's spec, so that `graphspec lint DIR/trial-N/spec.yaml` shows why it was pruned."""
    try:
        text = resolved_spec_text(ctx.spec_file, sets, {})
    except Exception:  # a --set that does not apply: trial.json holds its diagnostic
        return
    artifacts.atomic_write_text(folder / SPEC, text)


def _train(ctx: Context, trial: Any, out: Outcome, folder: Path, sets: list[str], checked: Any) -> None:
    from rich.console import Console

    from graphspec.run import trainer

    resume = is_run_dir(folder)
    if resume:  # a retry: the pruner sees the epochs the run folder already has
        for i, row in enumerate(_history(folder)):
            value = sweep_plan.metric_value(row, ctx.plan.metric)
            if value is not None:
                trial.report(value, i + 1)
    from graphspec.experiments.sweep_callback import TrialReport

    report = TrialReport(trial, ctx.plan.metric, ctx.stop)
    log_fd = folder_guard.open_nofollow(folder / LOG, os.O_WRONLY | os.O_APPEND | os.O_CREAT)
    with os.fdopen(log_fd, "a", encoding="utf-8") as log:
        console = Console(file=log, width=120, no_color=True, force_terminal=False)
        tracker = _tracker(ctx, trial, out, checked, sets, lambda text: log.write(text + "\n"))
        try:
            result = trainer.train(folder if resume else ctx.spec_file, sets=None if resume else sets,
                                   run_dir=folder, resume=resume, plugins=ctx.plugins, console=console, live=False,
                                   callbacks=[report] if tracker is None else [report, tracker.callback()])
        except SpecError as exc:
            out.diagnostics = [d.as_dict() for d in exc.diagnostics]
            first = exc.diagnostics[0] if exc.diagnostics else None
            out.message = f"{first.code} {first.message} ({first.location})" if first else str(exc)
            _mark_failed(folder, out.message)
            _finish(tracker, "failed", folder)
            return
        except GraphSpecError as exc:
            out.message = str(exc)
            _mark_failed(folder, out.message)
            _finish(tracker, "failed", folder)
            return
        except Exception as exc:  # Keras or TensorFlow refused at run time: located, recorded, the sweep goes on
            d = runtime_diagnostic(exc, checked)
            out.diagnostics, out.message = [d.as_dict()], f"{d.code} {d.message} ({d.location})"
            log.write(f"error: {out.message}\n")
            _mark_failed(folder, out.message)
            _finish(tracker, "failed", folder)
            return
        except BaseException:
            _finish(tracker, "interrupted", folder)
            raise
        _finish(tracker, result.status, folder, result.test_metrics, result.epochs_done)
    out.epochs = result.epochs_done
    out.value = best_value(result.history, ctx.plan.metric, ctx.plan.mode)
    if result.status == "interrupted":
        out.state, out.message, out.exit_code = "interrupted", result.message, result.exit_code
    elif result.status == "failed":
        loc = checked.source.location(("compile", "optimizer")) if checked.source is not None else Location(
            str(ctx.spec_file))
        d = Diagnostic("GS462", Severity.ERROR, result.message, loc, "try a smaller learning rate")
        out.diagnostics, out.message = [d.as_dict()], f"{d.code} {result.message}"
    elif report.pruned_at is not None:
        out.state = "pruned"
        out.message = f"pruned by the {ctx.plan.sweep.pruner} pruner after epoch {report.pruned_at}"
    elif out.value is None:
        out.message = f"the run logged no finite `{ctx.plan.metric}`"
    else:
        out.state = "completed"


def _tracker(ctx: Context, trial: Any, out: Outcome, checked: Any, sets: list[str], say: Any) -> Any:
    """The trial's MLflow run, a child of the sweep's (--track mlflow): its params the swept values first."""
    if ctx.track is None:
        return None
    from graphspec.experiments import tracking

    values = {k: sweep_plan.yaml_scalar(v) for k, v in out.values.items()}
    return tracking.RunTracker(tracking.Options(**ctx.track), checked, model=None, sets=sets,
                               run_name=f"trial-{trial.number:04d}", say=say, extra_params=values,
                               tags={"graphspec.trial": str(trial.number), "graphspec.sweep": str(ctx.folder)})


def _finish(tracker: Any, status: str, folder: Path, test: dict[str, float] | None = None, epochs: int = 0) -> None:
    if tracker is not None:
        tracker.finish(status, folder, test, epochs)


def _history(folder: Path) -> list[dict[str, Any]]:
    """The epochs a retry resumes after: the history up to the run's checkpoint (the epochs after it, trained
    before a crash, are trained again)."""
    try:
        rows = json.loads((folder / HISTORY).read_text(encoding="utf-8"))
        state = json.loads((folder / STATE).read_text(encoding="utf-8"))
        done = int(state.get("epochs_completed", 0)) if isinstance(state, dict) else 0
    except (OSError, ValueError, TypeError):
        return []
    return [r for r in rows if isinstance(r, dict)][:max(done, 0)] if isinstance(rows, list) else []


def _mark_failed(folder: Path, message: str) -> None:
    """A run the trainer left `running` after an error (it raised): say it failed, and why."""
    try:
        folder_guard.check_run_folder(folder)
        state = json.loads((folder / STATE).read_text(encoding="utf-8"))
    except (OSError, ValueError, SpecError):
        return
    if isinstance(state, dict) and state.get("status") == "running":
        state.update(status="failed", message=message, updated=now())
        artifacts.atomic_write_json(folder / STATE, state)


def runtime_diagnostic(exc: BaseException, checked: Any) -> Diagnostic:
    """A located GS462 for an error raised while training: the node whose layer failed, when it can be told."""
    text = _ANSI.sub("", str(exc)).strip()
    if isinstance(exc, MemoryError) or "ResourceExhausted" in type(exc).__name__ or "OOM" in text:
        kind = "ran out of memory"
    else:
        kind = "Keras rejected the model at run time"
    node = _failing_node(text, checked)
    lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
    body = [ln for ln in lines if not ln.startswith(("Exception encountered", "Arguments received", "•"))]
    detail = re.sub(r"\s*for '\{\{node [^}]*\}\}.*?' with", " with", body[0] if body else type(exc).__name__)
    notes = tuple(ln.lstrip("• ").strip() for ln in lines if ln.startswith("•"))
    graph, source = checked.graph, checked.source
    if node is not None and graph is not None and source is not None:
        layer = graph.nodes[node].layer_type
        where = source.location(graph.nodes[node].path, key=True)
        message = f"{kind} in node `{node}`" + (f" ({layer})" if layer else "") + f": {detail}"
    else:
        where = Location(str(checked.file))
        message = f"{kind}: {detail}"
    hint = ("the static check cannot see this shape (a `null` axis or the data's own shape): check the data "
            "against the layer's arguments") if "memory" not in kind else "try a smaller batch size or model"
    return Diagnostic("GS462", Severity.ERROR, message, where, hint, notes)


def _failing_node(text: str, checked: Any) -> str | None:
    graph = checked.graph
    if graph is None:
        return None
    names = set(graph.nodes)
    for op in re.findall(r"\{\{node ([^}\s]+)\}\}", text):
        for part in op.split("/"):
            base = re.sub(r"_\d+$", "", part)
            for candidate in (part, base):
                if candidate in names:
                    return candidate
    called = re.search(r"calling (\w+)\.call\(\)", text)
    if called:
        of_type = [n for n, node in graph.nodes.items() if node.layer_type == called.group(1)]
        if len(of_type) == 1:
            return str(of_type[0])
    return None


# -- telling Optuna, and the records in the folder -------------------------------------------------------------
def _tell(ctx: Context, trial: Any, out: Outcome) -> None:
    from optuna.trial import TrialState

    trial.set_user_attr("static", out.static)
    if out.message:
        trial.set_user_attr("message", out.message[:2000])
    if out.diagnostics:
        trial.set_user_attr("diagnostics", out.diagnostics[:20])
    if out.state == "completed":
        ctx.study.tell(trial, out.value)
    elif out.state == "pruned":
        ctx.study.tell(trial, state=TrialState.PRUNED)
    elif out.state == "interrupted":
        trial.set_user_attr(sweep_study.STATUS, sweep_study.INTERRUPTED)
        ctx.study.tell(trial, state=TrialState.FAIL)
        sweep_study.requeue(ctx.study, ctx.study._storage.get_trial(trial._trial_id), "interrupted")
    else:
        ctx.study.tell(trial, state=TrialState.FAIL)


def _write_record(out: Outcome, state: str, started: float, plan: sweep_plan.Plan) -> None:
    if out.run_dir is None:
        return
    record = {
        "number": out.number, "state": state, "params": out.values, "metric": plan.metric, "mode": plan.mode,
        "value": out.value, "static": out.static,
        "epochs": out.epochs, "message": out.message, "diagnostics": out.diagnostics, "retry_of": out.retry_of,
        "seconds": out.seconds or round(time.monotonic() - started, 3), "host": socket.gethostname(),
        "pid": os.getpid(), "updated": now(),
    }
    artifacts.atomic_write_json(out.run_dir / TRIAL, record)


def _hparams(out: Outcome) -> None:
    """TensorBoard HParams: the trainer wrote the trial's values; here its end as the sweep saw it (pruned,
    failed, ...) and its objective, so the HParams dashboard compares the trials."""
    from tensorboard.plugins.scalar import summary as scalar

    from graphspec.run import hparams

    assert out.run_dir is not None
    if not hparams.available():
        return
    folder_guard.check_run_folder(out.run_dir)  # the event writer follows paths: a checked folder
    logdir = out.run_dir / TENSORBOARD
    if out.value is not None:
        hparams._write(logdir, scalar.pb(OBJECTIVE_TAG, out.value), step=max(1, out.epochs))
    hparams.session_end(logdir, out.state)


OBJECTIVE_TAG = "sweep/objective"


def experiment_hparams(folder: Path, plan: sweep_plan.Plan, sets: list[str]) -> None:
    """The sweep's HParams experiment in its folder: each swept parameter's domain (integers and choices as
    they are, not float intervals), the values every trial records, and the metrics, the objective first."""
    from graphspec.run import hparams
    from graphspec.spec.schema_sweep import Choice, IntRange, LogUniform

    if not hparams.available():
        return
    domains = []
    for path, param in plan.sweep.params.items():
        if isinstance(param, Choice):
            kinds = {type(v) for v in param.choice}
            domains.append(hparams.Domain(path, values=list(param.choice) if len(kinds) == 1 else None))
        elif isinstance(param, IntRange):
            domains.append(hparams.Domain(path, interval=(param.int_[0], param.int_[1]), integer=True))
        elif isinstance(param, LogUniform):
            domains.append(hparams.Domain(path, interval=(param.log_uniform[0], param.log_uniform[1])))
        else:
            domains.append(hparams.Domain(path, interval=(param.uniform[0], param.uniform[1])))
    statics = {k: v for k, v in hparams.set_values(sets).items() if k not in plan.sweep.params}
    statics.update({"params": None, "macs": None})
    metric = plan.metric
    group, base = ("validation", metric[4:]) if metric.startswith("val_") else ("train", metric)
    metrics = [(OBJECTIVE_TAG, None, f"objective: best {metric}"), (f"epoch_{base}", group, metric)]
    metrics += [(t, g, n) for t, g, n in (("epoch_loss", "train", "loss"), ("epoch_loss", "validation", "val_loss"))
                if n != metric]
    hparams.experiment(folder, domains, metrics, statics)
