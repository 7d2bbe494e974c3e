"""`graphspec sweep`: a hyperparameter search over a spec's `sweep:` section, on Optuna, on one host or many.

:func:`sweep` prepares the sweep folder (``sweeps/<spec name>/`` by default: ``sweep.json``, the
SQLite study, one run folder per trial), creates the study, runs the workers and sums up the study.
A worker (:func:`work`) is stateless: it pulls trials from the study until the budget is used, so the
same command on several hosts (``--storage postgresql://...``) or ``--workers N`` on one host share a
sweep. Re-running the command (or ``--resume``) continues the study: finished trials are kept, an
interrupted trial continues from its checkpoint (:mod:`graphspec.experiments.sweep_study`).

SIGINT or SIGTERM stops a worker cleanly: a trial in training stops after its last completed epoch
and is queued again; no new trial starts. The parent forwards the signal to its worker processes.
"""

from __future__ import annotations

import collections
import contextlib
import dataclasses
import json
import os
import signal
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from graphspec.errors import UsageError
from graphspec.experiments import sweep_plan, sweep_study, sweep_trial
from graphspec.run import artifacts, folder_guard
from graphspec.run.folders import now

MANIFEST = "sweep.json"
EXIT_SIGNAL: dict[int, int] = {signal.SIGINT: 130, signal.SIGTERM: 143}
Say = Callable[[str], None]


@dataclasses.dataclass
class Settings:
    """A sweep as the command line gives it; what each worker process is started with (as JSON)."""

    spec: str  # absolute path of the spec file
    sets: list[str]
    folder: str
    storage: str
    study: str
    trials: int | None = None
    seed: int | None = None
    plugins: list[str] = dataclasses.field(default_factory=list)
    worker: int = 0  # 0: the process that started the sweep; 1..N: a worker process
    track: dict[str, Any] | None = None  # tracking.Options as a dict (--track mlflow), with the parent run


@dataclasses.dataclass
class Summary:
    """The study after the workers stopped, over every worker and host."""

    folder: Path
    storage: str
    study: str
    budget: int
    counts: dict[str, int]  # completed, pruned_static, pruned, failed, interrupted, running, waiting
    static_codes: dict[str, int]
    best: dict[str, Any] | None
    metric: str
    mode: str
    note: str | None
    exit_code: int


class StopFlag:
    """The first SIGINT/SIGTERM a worker got: no new trial starts."""

    def __init__(self) -> None:
        self.signum: int | None = None


@contextlib.contextmanager
def stopping(flag: StopFlag, say: Say) -> Iterator[None]:
    """SIGINT/SIGTERM set `flag` (a second SIGINT interrupts at once). The trainer installs its own
    handlers while it fits, and puts these back after."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum: int, frame: Any) -> None:
        if flag.signum is not None and signum == signal.SIGINT:
            raise KeyboardInterrupt
        flag.signum = signum
        say(f"{signal.Signals(signum).name}: stopping the sweep after the current trial's epoch")

    old = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}
    for s in old:
        signal.signal(s, handler)
    try:
        yield
    finally:
        for s, h in old.items():
            signal.signal(s, h)


# -- preparing ------------------------------------------------------------------------------------------
def _check(spec: Path, sets: list[str], plugins: list[str]) -> Any:
    import graphspec

    checked = graphspec.check(spec, sets=sets, plugins=plugins)
    checked.raise_for_errors()
    if checked.spec is None or checked.spec.sweep is None:
        raise UsageError(f"{spec} has no `sweep:` section: add one (see docs/experiments.md)")
    return checked


def _preflight(checked: Any, plan: sweep_plan.Plan) -> None:
    """The base configuration's data files, names and lengths (GS411, GS416, ...): what would fail every trial
    alike, said before the backend starts. Skipped where the sweep varies the data, the inputs or the models."""
    from graphspec.analysis.run_checks import trained_model_name
    from graphspec.run import preflight, sources

    spec, graph = checked.spec, checked.graph
    if spec is None or spec.data is None or graph is None or checked.source is None:
        return
    if any(str(p).split(".")[0] in {"data", "inputs", "models", "train"} for p in plan.sweep.params):
        return
    name = trained_model_name(graph)
    if name is None:
        return
    base = Path(checked.file).resolve().parent
    roots = sources.data_roots(None, base)

    def locate(path: tuple[Any, ...]) -> Any:
        return checked.source.location(path, key=True)

    sources.preflight(spec.data, base, roots, locate)
    preflight.data(checked, name, base, roots, locate=locate, shapes=False)


def _plan(checked: Any, trials: int | None) -> sweep_plan.Plan:
    train = checked.spec.train
    return sweep_plan.plan(checked.spec.sweep, trials=trials, epochs=train.epochs if train is not None else 1)


def _fingerprint(settings: Settings) -> str:
    try:
        text = Path(settings.spec).read_text(encoding="utf-8")
    except OSError as exc:
        raise UsageError(f"{settings.spec}: {exc.strerror or exc}") from None
    return sweep_plan.fingerprint(text, settings.sets)


def _read_manifest(folder: Path) -> dict[str, Any] | None:
    path = folder / MANIFEST
    if not path.is_file():
        return None
    try:
        value = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise UsageError(f"{path}: not a readable sweep manifest ({exc})") from None
    if not isinstance(value, dict) or not isinstance(value.get("spec"), str):
        raise UsageError(f"{path}: not a sweep manifest")
    return value


def settings_for(spec_or_dir: str | Path, *, sets: list[str] | None = None, folder: str | Path | None = None,
                 storage: str | None = None, study: str | None = None, trials: int | None = None,
                 seed: int | None = None, plugins: list[str] | None = None,
                 track: dict[str, Any] | None = None) -> Settings:
    """The sweep's settings: from a spec and the options, or from a sweep folder's manifest."""
    from graphspec.run.folders import spec_name
    from graphspec.spec import plugins as plugins_mod

    target = Path(spec_or_dir)
    manifest = _read_manifest(target) if target.is_dir() else None
    if target.is_dir() and manifest is None:
        raise UsageError(f"{target} is a folder without {MANIFEST}: give the spec file, or a sweep folder")
    if manifest is not None:
        if sets:
            raise UsageError("--set applies when a sweep starts; this folder's sweep has its own")
        spec_file, the_sets, dest = Path(manifest["spec"]), list(manifest.get("sets", [])), target
    else:
        spec_file, the_sets = target.resolve(), list(sets or [])
        dest = Path(folder) if folder is not None else Path("sweeps") / spec_name(spec_file)
        manifest = _read_manifest(dest)
        if manifest is not None and (manifest["spec"] != str(spec_file) or manifest.get("sets", []) != the_sets):
            raise UsageError(f"{dest} holds a sweep of {manifest['spec']}" + (
                f" with --set {' '.join(manifest.get('sets', []))}" if manifest.get("sets") else "") +
                ": choose another --dir, or give the same spec and --set values")
    known = manifest or {}
    if storage is not None and sweep_study.is_journal(storage):
        storage = sweep_study.journal_url(storage)
    elif storage is not None:  # refused before sweep.json is written or a driver quotes it
        from graphspec.experiments.storage_url import problem

        wrong = problem(storage)
        if wrong is not None:
            raise UsageError(f"--storage {sweep_study.redact(storage)}: {wrong}")
    url = storage or (known.get("storage") if "***" not in str(known.get("storage", "")) else None)
    if url is None and known.get("storage") and "***" in str(known["storage"]):
        raise UsageError(f"this sweep's storage has a password: give it again with --storage "
                         f"({known['storage']})")
    return Settings(
        spec=str(spec_file), sets=the_sets, folder=str(dest.resolve()),
        storage=url or sweep_study.default_storage(dest),
        study=study or known.get("study") or spec_name(spec_file),
        trials=trials if trials is not None else known.get("trials"),
        seed=seed if seed is not None else known.get("seed"),
        plugins=[str(Path(p).resolve()) if p.endswith(".py") and Path(p).is_file() else p
                 for p in plugins_mod.all_plugins(plugins)],
        track=track,
    )


def _write_manifest(settings: Settings) -> None:
    folder = Path(settings.folder)
    if (folder / MANIFEST).is_file():
        return
    folder.mkdir(parents=True, exist_ok=True)
    artifacts.atomic_write_json(folder / MANIFEST, {
        "spec": settings.spec, "sets": settings.sets, "storage": sweep_study.redact(settings.storage),
        "study": settings.study, "trials": settings.trials, "seed": settings.seed, "created": now()})


# -- a worker ---------------------------------------------------------------------------------------------------
def work(settings: Settings, say: Say, *, opened: tuple[Any, sweep_plan.Plan] | None = None) -> int:
    """Pull trials from the study until the budget is used or a signal comes; the exit code. `opened`: the
    study and plan, when this process has them already."""
    if opened is None:
        checked = _check(Path(settings.spec), settings.sets, settings.plugins)
        plan = _plan(checked, settings.trials)
        seed, _ = sweep_study.worker_seed(settings.seed, settings.worker, settings.storage)
        study = sweep_study.open_study(settings.storage, settings.study, plan, _fingerprint(settings), seed=seed,
                                       create=False)
    else:
        study, plan = opened
    sampler_seed, identity = sweep_study.worker_seed(settings.seed, settings.worker, settings.storage)
    folder = Path(settings.folder)
    flag = StopFlag()
    ctx = sweep_trial.Context(study, plan, folder, Path(settings.spec), settings.sets, settings.plugins, flag,
                              track=settings.track)
    prefix = f"[worker {settings.worker}] " if settings.worker else ""
    exit_code = 0
    with stopping(flag, lambda text: say(prefix + text)):
        while flag.signum is None:
            for n in sweep_study.recover(study, folder):
                say(f"{prefix}trial {n}: its worker is gone; queued again (it continues from its checkpoint)")
            used, waiting = sweep_study.used(study)
            if used >= plan.budget and waiting == 0:
                break
            trial = study.ask()
            if sweep_study.is_surplus(study, trial, plan.budget):
                _drop(study, trial)
                break
            trial.set_user_attr(sweep_study.WORKER, identity)  # who sampled it, from which seed: reproducible
            trial.set_user_attr(sweep_study.SAMPLER_SEED, sampler_seed)
            try:
                outcome = sweep_trial.run(ctx, trial)
            except KeyboardInterrupt:
                for problem in _interrupted(study, trial):
                    say(f"{prefix}trial {trial.number}: {problem}")
                raise
            say(prefix + describe(outcome, plan))
            if outcome.state == "interrupted":
                exit_code = outcome.exit_code or 130
                break
    if flag.signum is not None:
        exit_code = EXIT_SIGNAL.get(flag.signum, 130)
    return exit_code


def _drop(study: Any, trial: Any) -> None:
    from optuna.trial import TrialState

    trial.set_user_attr(sweep_study.STATUS, sweep_study.SURPLUS)
    study.tell(trial, state=TrialState.FAIL)


def _interrupted(study: Any, trial: Any) -> list[str]:
    """A second Ctrl-C inside a trial: queue it again before leaving. Each step is tried even when the one
    before it failed (a trial whose mark could not be written must still be queued again); what failed is
    returned, for the worker to say."""
    from optuna.trial import TrialState

    steps: list[tuple[str, Callable[[], object]]] = [
        ("mark it interrupted", lambda: trial.set_user_attr(sweep_study.STATUS, sweep_study.INTERRUPTED)),
        ("close it", lambda: study.tell(trial, state=TrialState.FAIL)),
        ("queue it again", lambda: sweep_study.requeue(study, study._storage.get_trial(trial._trial_id),
                                                      "interrupted")),
    ]
    failed = []
    for what, step in steps:
        try:
            step()
        except Exception as exc:  # the study's storage (SQLite, PostgreSQL, a journal) raises its own errors
            failed.append(f"could not {what}: {type(exc).__name__}: {exc}")
    return failed


def describe(out: sweep_trial.Outcome, plan: sweep_plan.Plan) -> str:
    """One line about a finished trial."""
    values = " ".join(f"{k}={sweep_plan.yaml_scalar(v)}" for k, v in out.values.items())
    head = f"trial {out.number}" + (f" (again, of {out.retry_of})" if out.retry_of is not None else "")
    if out.static:
        return f"{head}: pruned before training: {out.message} [{values}]"
    value = f"{plan.metric} {out.value:.4f}" if out.value is not None else f"no {plan.metric}"
    if out.state == "completed":
        return f"{head}: {value} after {out.epochs} epochs ({out.seconds:.1f} s) [{values}] -> {out.run_dir}"
    if out.state == "pruned":
        return f"{head}: {out.message}: {value} [{values}]"
    if out.state == "interrupted":
        return f"{head}: interrupted after {out.epochs} epochs; it continues when the sweep is run again"
    return f"{head}: failed: {out.message} [{values}]"


# -- the sweep --------------------------------------------------------------------------------------------------
def sweep(settings: Settings, *, workers: int = 1, resume: bool = False, say: Say,
          worker_command: Callable[[Settings], list[str]] | None = None) -> Summary:
    """Run the sweep with `workers` processes on this host (1: in this process) and sum up the study."""
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    checked = _check(Path(settings.spec), settings.sets, settings.plugins)
    plan = _plan(checked, settings.trials)
    _preflight(checked, plan)  # before a study, a folder or a backend
    if plan.note:
        say(f"note: {plan.note}")
    folder_guard.check_sweep_folder(Path(settings.folder))  # before the study or a trial writes there
    if not resume:
        _write_manifest(settings)
    elif not (Path(settings.folder) / MANIFEST).is_file() and sweep_study.is_sqlite(settings.storage):
        raise UsageError(f"--resume: no sweep in {settings.folder}: start it without --resume")
    seed, _ = sweep_study.worker_seed(settings.seed, settings.worker, settings.storage)
    study = sweep_study.open_study(settings.storage, settings.study, plan, _fingerprint(settings),
                                   seed=seed, create=not resume)
    if resume:
        _write_manifest(settings)
    elif not list(Path(settings.folder).glob("events.out.tfevents.*")):
        try:
            sweep_trial.experiment_hparams(Path(settings.folder), plan, settings.sets)
        except Exception as exc:  # TensorBoard is a view: the study and the run folders are the record
            say(f"note: no TensorBoard HParams experiment: {type(exc).__name__}: {exc}")
    parent = _parent_run(settings, study, plan, say) if settings.track is not None else None
    if parent is not None:
        settings = dataclasses.replace(settings, track={**(settings.track or {}), "parent_run_id": parent.run_id})
    used, _ = sweep_study.used(study)
    say(f"sweep `{settings.study}` ({plan.sweep.sampler}, {plan.budget} trials, {used} done or queued) in "
        f"{settings.folder}; storage {sweep_study.redact(settings.storage)}")
    if workers <= 1:
        code = work(settings, say, opened=(study, plan))
    else:
        code = _run_workers(settings, workers, say, worker_command or default_worker_command)
    summary = summarize(study, settings, plan, code)
    if parent is not None:
        if summary.best is not None:
            parent.log_metrics(0, {f"best_{plan.metric}": float(summary.best["value"])})
            parent.set_tags({"graphspec.best_trial": str(summary.best["number"])})
        parent.finish("FINISHED" if summary.exit_code == 0 else "FAILED")
    return summary


def _parent_run(settings: Settings, study: Any, plan: sweep_plan.Plan, say: Say) -> Any:
    """The sweep's MLflow run, parent of one run per trial; kept in the study, so that every host's command
    and a resumed sweep use the same parent."""
    from graphspec.experiments import tracking

    opts = tracking.Options(**(settings.track or {}))
    parent = tracking.MlflowRun(say)
    known = study.user_attrs.get(tracking.PARENT_KEY)
    if isinstance(known, str):
        parent.resume(known)
        return parent
    checked = _check(Path(settings.spec), settings.sets, settings.plugins)
    params, tags = tracking.describe(checked, None, settings.sets)
    params.update({"sweep.sampler": plan.sweep.sampler, "sweep.trials": str(plan.budget),
                   "sweep.metric": plan.metric, "sweep.mode": plan.mode, "sweep.seed": str(settings.seed)})
    tags.update({"graphspec.sweep": settings.folder, "graphspec.study": settings.study})
    parent = tracking.MlflowRun.start(experiment=opts.experiment or checked.spec.name, run_name=f"sweep-{settings.study}",
                                      params=params, tags=tags, say=say)
    if parent.run_id is not None:
        study.set_user_attr(tracking.PARENT_KEY, parent.run_id)
    return parent


STORAGE_ENV = "GRAPHSPEC_SWEEP_STORAGE"  # a worker's storage URL: in its environment, not in its arguments


def default_worker_command(settings: Settings) -> list[str]:
    """A worker process: `graphspec sweep SPEC --worker-config JSON` (the CLI runs :func:`work`). The storage
    URL in the JSON is redacted (any user can read a process's arguments); the worker reads the real one
    from its environment (:data:`STORAGE_ENV`)."""
    shown = dataclasses.replace(settings, storage=sweep_study.redact(settings.storage))
    return [sys.executable, "-m", "graphspec", "sweep", settings.spec, "--worker-config",
            json.dumps(dataclasses.asdict(shown))]


def worker_settings(config: str) -> Settings:
    """The settings `--worker-config JSON` describes, with the storage URL from the environment when given."""
    settings = Settings(**json.loads(config))
    storage = os.environ.get(STORAGE_ENV)
    return dataclasses.replace(settings, storage=storage) if storage else settings


def _run_workers(settings: Settings, n: int, say: Say, command: Callable[[Settings], list[str]]) -> int:
    procs: list[subprocess.Popen[bytes]] = []
    flag = StopFlag()

    def forward(signum: int, frame: Any) -> None:
        first = flag.signum is None
        flag.signum = signum
        if first:
            say(f"{signal.Signals(signum).name}: stopping the workers after their current epoch")
        for p in procs:
            with contextlib.suppress(ProcessLookupError):
                p.send_signal(signum)

    old = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}
    if threading.current_thread() is threading.main_thread():
        for s in old:
            signal.signal(s, forward)
    try:
        for i in range(1, n + 1):
            # Own sessions: a terminal's Ctrl-C reaches them once, through `forward`.
            procs.append(subprocess.Popen(command(dataclasses.replace(settings, worker=i)), start_new_session=True,
                                          env={**os.environ, STORAGE_ENV: settings.storage}))
        codes = []
        for p in procs:
            while True:
                try:
                    codes.append(p.wait())
                    break
                except InterruptedError:
                    continue
    finally:
        if threading.current_thread() is threading.main_thread():
            for s, h in old.items():
                signal.signal(s, h)
        for p in procs:
            if p.poll() is None:
                p.kill()
    if flag.signum is not None:
        return EXIT_SIGNAL.get(flag.signum, 130)
    signalled = [c for c in codes if c in (130, 143)]
    if signalled:
        return signalled[0]
    return int(max(codes, default=0))


def die_with_parent() -> None:
    """A worker process gets SIGTERM when the sweep that started it dies, however it dies (Linux)."""
    if sys.platform.startswith("linux"):
        import ctypes

        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


# -- the result -------------------------------------------------------------------------------------------------
def summarize(study: Any, settings: Settings, plan: sweep_plan.Plan, code: int) -> Summary:
    from optuna.trial import TrialState

    counts = collections.Counter({k: 0 for k in ("completed", "pruned_static", "pruned", "failed", "interrupted",
                                                 "running", "waiting")})
    static_codes: collections.Counter[str] = collections.Counter()
    trials = study.get_trials(deepcopy=False)
    gone = sweep_study.replaced(trials)
    for t in trials:
        status = t.user_attrs.get(sweep_study.STATUS)
        if t.state == TrialState.COMPLETE:
            counts["completed"] += 1
        elif t.state == TrialState.PRUNED and t.user_attrs.get("static"):
            counts["pruned_static"] += 1
            for d in t.user_attrs.get("diagnostics", [])[:1]:
                static_codes[str(d.get("code"))] += 1
        elif t.state == TrialState.PRUNED:
            counts["pruned"] += 1
        elif t.state == TrialState.FAIL and t.number in gone:
            counts["interrupted"] += 1
        elif t.state == TrialState.FAIL and status != sweep_study.SURPLUS:
            counts["failed"] += 1
        elif t.state == TrialState.RUNNING:
            counts["running"] += 1
        elif t.state == TrialState.WAITING:
            counts["waiting"] += 1
    best = None
    if counts["completed"]:
        b = study.best_trial
        best = {"number": b.number, "value": b.value, "params": dict(b.params),
                "run_dir": str(Path(settings.folder) / str(b.user_attrs.get(sweep_study.RUN_DIR, "")))}
    if code == 0 and not counts["completed"]:
        code = 1
    return Summary(Path(settings.folder), sweep_study.redact(settings.storage), settings.study, plan.budget,
                   dict(counts), dict(static_codes), best, plan.metric, plan.mode, plan.note, code)

