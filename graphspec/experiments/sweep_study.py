"""A sweep's study: its storage, the trials budget, and trials whose worker died.

The study lives in an Optuna storage: SQLite in the sweep folder by default (one host, nothing to start),
PostgreSQL (or any SQLAlchemy URL) for many hosts. Workers are stateless; each pulls trials from the
study until the budget is used. Who ran a trial is in its user attributes (host, pid, run folder), so:

* a trial left RUNNING by a process that is gone from this host (a ``kill -9``) is found at once: its
  run folder's claim (:mod:`graphspec.run.lock`) serialises the workers that notice, the trial is
  marked failed with ``status: interrupted``, and a retry with the same values is enqueued, which
  continues the same run folder from its last checkpoint;
* on a shared server, workers also record heartbeats, and Optuna fails the trials of a host that
  stopped beating (:func:`optuna.storages.fail_stale_trials`); the same retry is enqueued;
* on a journal file (``--storage journal:PATH``: Optuna's :class:`~optuna.storages.JournalStorage`
  with its file backend, for a shared file system without a database server), which has no heartbeat
  in Optuna, a worker writes the time into its running trial's ``heartbeat`` user attribute instead,
  and a worker that finds a running trial whose beat is older than the grace period fails it and
  enqueues the same retry (first to fail it wins: the journal refuses a second update of a finished
  trial, exactly as RDB's ``fail_stale_trials`` does).

Interrupted and surplus trials do not count toward the budget; a retry does.
"""

from __future__ import annotations

import contextlib
import os
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from graphspec.errors import UsageError
from graphspec.experiments import sweep_plan
from graphspec.experiments.storage_url import scrub
from graphspec.run.lock import RunInUse, claim

HEARTBEAT_S = 20
GRACE_S = 120
# Trial user attributes.
STATUS, RUN_DIR, RETRY_OF, HOST, PID = "status", "run_dir", "retry_of", "host", "pid"
REPLACES = "replaces"  # a retry: the number of the trial it replaces
INTERRUPTED, SURPLUS = "interrupted", "surplus"
SPEC_KEY = "graphspec_spec"
NO_HEARTBEAT = f"its worker sent no heartbeat for {GRACE_S} s"
BEAT = "heartbeat"  # a journal trial's last beat (seconds since the epoch, the worker's clock)
WORKER, SAMPLER_SEED = "worker", "sampler_seed"  # who sampled a trial, and from which seed
JOURNAL = "journal:"


def default_storage(folder: Path) -> str:
    return f"sqlite:///{(folder / 'study.db').resolve()}"


def is_sqlite(url: str) -> bool:
    return url.startswith("sqlite:")


def is_journal(url: str) -> bool:
    return url.startswith(JOURNAL)


def journal_url(url: str) -> str:
    """``journal:PATH`` with PATH made absolute (workers may start in other folders)."""
    path = url[len(JOURNAL):].strip()
    if not path:
        raise UsageError("--storage journal:PATH needs the journal file's path, e.g. journal:/shared/study.log")
    return JOURNAL + str(Path(path).expanduser().resolve())


def journal(url: str) -> Any:
    """Optuna's JournalStorage on a file: appends under a lock file next to it (``JournalFileSymlinkLock``,
    Optuna's default: atomic on NFS too; a lock left by a dead process is broken after 30 s)."""
    from optuna.storages import JournalStorage
    from optuna.storages.journal import JournalFileBackend

    path = Path(url[len(JOURNAL):])
    if not path.parent.is_dir():
        raise UsageError(f"--storage {url}: the folder {path.parent} does not exist")
    try:
        return JournalStorage(JournalFileBackend(str(path)))
    except OSError as exc:
        raise UsageError(f"--storage {url}: cannot open the journal: {exc.strerror or exc}") from None


def storage(url: str) -> Any:
    """An Optuna RDB storage: SQLite waits for its lock instead of failing; a server gets heartbeats. A
    ``journal:PATH`` is a journal file (:func:`journal`)."""
    import optuna

    if is_journal(url):
        return journal(url)
    from graphspec.experiments.storage_url import problem

    wrong = problem(url)
    if wrong is not None:
        raise UsageError(f"--storage {redact(url)}: {wrong}")
    try:
        if is_sqlite(url):
            # A file this call creates is stamped with this Optuna's schema: checking it again would only
            # load Alembic's revision scripts a second time.
            fresh = url.startswith("sqlite:///") and not Path(url.removeprefix("sqlite:///")).exists()
            return optuna.storages.RDBStorage(url, engine_kwargs={"connect_args": {"timeout": 120}},
                                              skip_compatibility_check=fresh)
        for attempt in range(20):
            try:
                return optuna.storages.RDBStorage(
                    url, engine_kwargs={"pool_pre_ping": True}, heartbeat_interval=HEARTBEAT_S, grace_period=GRACE_S,
                    heartbeat_stale_trial_callback=lambda study, trial: requeue(study, trial, NO_HEARTBEAT))
            except Exception as exc:
                # Hosts starting at once on an empty database all create Optuna's tables; all but one lose
                # that race (a duplicate key in the catalog) and find the tables made when they try again.
                text = str(exc).lower()
                if attempt == 19 or not ("duplicate key" in text or "already exists" in text):
                    raise
                time.sleep(0.2 + 0.1 * attempt)
        raise AssertionError("unreachable")
    except ImportError as exc:
        raise UsageError(f"--storage {redact(url)}: a driver is missing ({scrub(str(exc), url)}); for PostgreSQL install "
                         "keras-graphspec[postgres] (psycopg 3; or name another driver: postgresql+psycopg2://...)") from None
    except Exception as exc:  # SQLAlchemy's connection and URL errors have no common base worth naming
        raise UsageError(f"--storage {redact(url)}: cannot open the study's storage: "
                         f"{scrub(_first_line(exc), url)}") from None


def redact(url: str) -> str:
    """The URL without its password or secret query values, for messages and sweep.json
    (:func:`graphspec.experiments.storage_url.redact`)."""
    from graphspec.experiments.storage_url import redact as redact_url

    return redact_url(url)


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__


def open_study(url: str, name: str, p: sweep_plan.Plan, fingerprint: str, *, seed: int | None,
               create: bool) -> Any:
    """Create (or load) the study; refuse one that was started from another spec."""
    import optuna

    store = storage(url)
    if create:
        direction = optuna.study.StudyDirection.MAXIMIZE if p.mode == "max" else optuna.study.StudyDirection.MINIMIZE
        study = optuna.create_study(storage=store, study_name=name, direction=direction, load_if_exists=True,
                                    sampler=sweep_plan.sampler(p, seed), pruner=sweep_plan.pruner(p))
        if SPEC_KEY not in study.user_attrs:
            study.set_user_attr(SPEC_KEY, fingerprint)
    else:
        try:
            study = optuna.load_study(storage=store, study_name=name, sampler=sweep_plan.sampler(p, seed),
                                      pruner=sweep_plan.pruner(p))
        except KeyError:
            raise UsageError(f"--resume: no study {name!r} in {redact(url)}: start the sweep without --resume") from None
    if study.user_attrs.get(SPEC_KEY) != fingerprint:
        raise UsageError(f"the study {name!r} in {redact(url)} was started from another spec (or other --set "
                         "values): continue it with the same spec, or choose another --study, --dir or --storage")
    if study.direction.name.lower() != p.direction:
        raise UsageError(f"the study {name!r} {study.direction.name.lower()}s; this sweep would {p.direction}")
    return study


# -- the budget -------------------------------------------------------------------------------------------------
def replaced(trials: list[Any]) -> set[int]:
    """Numbers of the trials that were interrupted and queued again (their retries name them)."""
    out = {int(t.user_attrs[REPLACES]) for t in trials if isinstance(t.user_attrs.get(REPLACES), int)}
    return out | {t.number for t in trials if t.user_attrs.get(STATUS) == INTERRUPTED}


def counts_toward_budget(t: Any, replaced_numbers: set[int]) -> bool:
    from optuna.trial import TrialState

    if t.state == TrialState.FAIL and (t.number in replaced_numbers or t.user_attrs.get(STATUS) == SURPLUS):
        return False
    return True


def used(study: Any) -> tuple[int, int]:
    """(trials that count toward the budget, of which are waiting to be run)."""
    from optuna.trial import TrialState

    trials = study.get_trials(deepcopy=False)
    gone = replaced(trials)
    waiting = sum(1 for t in trials if t.state == TrialState.WAITING)
    return sum(1 for t in trials if counts_toward_budget(t, gone)), waiting


def is_surplus(study: Any, trial: Any, budget: int) -> bool:
    """A new trial asked for when the budget was already used (two workers asked at once)."""
    if trial.user_attrs.get(RETRY_OF) is not None:
        return False
    trials = study.get_trials(deepcopy=False)
    gone = replaced(trials)
    return sum(1 for t in trials if t.number < trial.number and counts_toward_budget(t, gone)) >= budget


# -- workers ---------------------------------------------------------------------------------------------------
def worker_seed(seed: int | None, worker: int, url: str, environ: dict[str, str] | None = None
                ) -> tuple[int | None, str]:
    """(the sampler seed of this worker, its identity). Workers sharing a study with the same --seed must not
    draw the same values: on a shared storage (a journal, a server) the seed is derived from (seed, worker
    identity): the Slurm array task (``SLURM_ARRAY_TASK_ID``, the same when the array is run again), else
    host and pid; on one host's SQLite, worker k of the command draws from seed + k - 1, as before."""
    env = dict(os.environ) if environ is None else environ
    task = env.get("SLURM_ARRAY_TASK_ID", "").strip()
    if task:
        identity = f"slurm-array-{env.get('SLURM_ARRAY_JOB_ID', '').strip() or '?'}-{task}"
    elif is_sqlite(url):
        identity = f"worker-{worker}"
    else:
        identity = f"{socket.gethostname()}:{os.getpid()}"
    if seed is None:
        return None, identity
    if is_sqlite(url) and not task:
        return seed + max(0, worker - 1), identity
    import hashlib

    key = f"slurm-array-task-{task}" if task else identity  # not the array's job id: a rerun draws the same
    digest = hashlib.sha256(f"{seed}/{key}".encode()).digest()
    return int.from_bytes(digest[:4], "big") % (2**31 - 1), identity


# -- trials whose worker is gone ---------------------------------------------------------------------------------
def requeue(study: Any, trial: Any, why: str) -> None:
    """Enqueue a retry of an interrupted trial: the same values, the same run folder (continued from its
    checkpoint). The retry names the trial it replaces, which then no longer counts toward the budget."""
    run_dir = trial.user_attrs.get(RUN_DIR)
    attrs: dict[str, Any] = {RETRY_OF: trial.user_attrs.get(RETRY_OF, trial.number), REPLACES: trial.number,
                             "reason": why}
    if run_dir:
        attrs[RUN_DIR] = run_dir
    study.enqueue_trial(dict(trial.params), user_attrs=attrs)


def _beats(store: Any) -> bool:
    return getattr(store, "get_heartbeat_interval", lambda: None)() is not None


def _journal_beats(store: Any) -> bool:
    from optuna.storages import JournalStorage

    return isinstance(store, JournalStorage)


def fail_stale_journal_trials(study: Any, *, now: float | None = None) -> list[int]:
    """Fail and requeue the running trials of a journal whose heartbeat is older than the grace period
    (what :func:`optuna.storages.fail_stale_trials` does for RDB storages); the numbers requeued."""
    import optuna
    from optuna.trial import TrialState

    limit = (time.time() if now is None else now) - GRACE_S
    done: list[int] = []
    for t in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        beat = t.user_attrs.get(BEAT)
        if not isinstance(beat, (int, float)) or beat >= limit:
            continue
        try:
            study._storage.set_trial_user_attr(t._trial_id, STATUS, INTERRUPTED)
            study._storage.set_trial_state_values(t._trial_id, state=TrialState.FAIL)
        except optuna.exceptions.UpdateFinishedTrialError:
            continue  # another worker failed it first
        requeue(study, t, NO_HEARTBEAT)
        done.append(t.number)
    return done


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def recover(study: Any, folder: Path) -> list[int]:
    """Requeue the RUNNING trials of processes that are gone from this host; the numbers requeued."""
    import optuna
    from optuna.trial import TrialState

    if _beats(study._storage):  # other hosts: by their heartbeats
        import warnings

        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            optuna.storages.fail_stale_trials(study)
    me = socket.gethostname()
    done: list[int] = []
    if _journal_beats(study._storage):  # other hosts: by the beats in the trials' attributes
        done += fail_stale_journal_trials(study)
    for t in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        pid = t.user_attrs.get(PID)
        if t.user_attrs.get(HOST) != me or not isinstance(pid, int) or pid == os.getpid() or _alive(pid):
            continue
        run_dir = folder / str(t.user_attrs.get(RUN_DIR) or f"trial-{t.number:04d}")
        try:
            # The claim serialises the workers of this host that found the same dead trial.
            with claim(run_dir, command="sweep recovery"):
                current = study._storage.get_trial(t._trial_id)
                if current.state != TrialState.RUNNING:
                    continue
                try:
                    study._storage.set_trial_user_attr(t._trial_id, STATUS, INTERRUPTED)
                    study._storage.set_trial_state_values(t._trial_id, state=TrialState.FAIL)
                except optuna.exceptions.UpdateFinishedTrialError:
                    continue
                requeue(study, current, f"its worker (pid {pid} on {me}) is gone")
                done.append(t.number)
        except RunInUse:
            continue
    return done


@contextlib.contextmanager
def heartbeat(study: Any, trial: Any) -> Iterator[None]:
    """Record the trial's heartbeat while it runs (storages with heartbeats only)."""
    store = study._storage
    if _journal_beats(store):
        def record(trial_id: int) -> None:
            store.set_trial_user_attr(trial_id, BEAT, time.time())
    elif _beats(store):
        record = store.record_heartbeat
    else:
        yield
        return
    stop = threading.Event()
    record(trial._trial_id)

    def beat() -> None:
        while not stop.wait(HEARTBEAT_S):
            with contextlib.suppress(Exception):  # a lost connection is retried on the next beat
                record(trial._trial_id)

    thread = threading.Thread(target=beat, name="graphspec-heartbeat", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join(timeout=5)
