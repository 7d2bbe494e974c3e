"""Sweeps on a journal file (issue 24): `--storage journal:PATH` (Optuna's JournalStorage, file backend), the
heartbeat a journal lacks (a trial whose worker stopped beating is failed and queued again, once), each
worker's own sampler seed, and several processes of a Slurm array sharing one journal."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

from .conftest import JAX_CACHE
from typing import Any

import pytest

from graphspec.errors import UsageError

from .conftest import ROOT

pytest.importorskip("optuna")


def _study(tmp_path: Path, url: str | None = None) -> tuple[Any, Any, str]:
    from graphspec.experiments import sweep_plan, sweep_study
    from graphspec.spec.schema_sweep import SweepSpec

    sweep = SweepSpec.model_validate({"objective": {"metric": "val_loss"}, "sampler": "random",
                                      "params": {"x": {"uniform": [0.0, 1.0]}}})
    p = sweep_plan.plan(sweep, trials=3, epochs=2)
    url = url or sweep_study.journal_url(f"journal:{tmp_path / 'study.log'}")
    return sweep_study.open_study(url, "s", p, "f1", seed=0, create=True), p, url


def _dead_pid() -> int:
    proc = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    return int(proc.stdout)


def test_a_journal_study_is_created_loaded_and_refused_like_an_rdb_one(tmp_path: Path) -> None:
    from optuna.storages import JournalStorage

    from graphspec.experiments import sweep_study

    study, p, url = _study(tmp_path)
    assert isinstance(study._storage, JournalStorage) and url == f"journal:{(tmp_path / 'study.log').resolve()}"
    t = study.ask()
    t.suggest_float("x", 0.0, 1.0)
    study.tell(t, 0.5)
    again = sweep_study.open_study(url, "s", p, "f1", seed=0, create=False)  # another process: the same study
    assert [x.value for x in again.get_trials()] == [0.5]
    with pytest.raises(UsageError, match="started from another spec"):
        sweep_study.open_study(url, "s", p, "other", seed=0, create=True)
    with pytest.raises(UsageError, match="does not exist"):
        sweep_study.storage(f"journal:{tmp_path / 'missing' / 'study.log'}")
    with pytest.raises(UsageError, match="needs the journal file's path"):
        sweep_study.journal_url("journal:")


def test_a_trial_whose_worker_stopped_beating_is_failed_and_queued_again_once(tmp_path: Path) -> None:
    from optuna.trial import TrialState

    from graphspec.experiments import sweep_study

    study, _, url = _study(tmp_path)
    stale = study.ask()
    x = stale.suggest_float("x", 0.0, 1.0)
    for k, v in (("host", "other-host"), ("pid", 1), ("run_dir", "trial-0000"),
                 (sweep_study.BEAT, time.time() - sweep_study.GRACE_S - 5)):
        stale.set_user_attr(k, v)
    fresh = study.ask()  # another host's trial, beating
    fresh.set_user_attr("host", "other-host")
    fresh.set_user_attr(sweep_study.BEAT, time.time())
    # Two workers (two storage objects on the file, as two hosts) find it: one fails it and queues it again.
    other, _, _ = _study(tmp_path, url)
    assert sweep_study.recover(study, tmp_path) == [0]
    assert sweep_study.recover(other, tmp_path) == []
    trials = other.get_trials()
    assert trials[0].state == TrialState.FAIL and trials[0].user_attrs["status"] == "interrupted"
    assert trials[1].state == TrialState.RUNNING
    assert len([t for t in trials if t.state == TrialState.WAITING]) == 1
    retry = other.ask()
    assert retry.user_attrs["replaces"] == 0 and retry.user_attrs["reason"] == sweep_study.NO_HEARTBEAT
    assert retry.suggest_float("x", 0.0, 1.0) == x  # the same values


def test_a_killed_worker_on_this_host_is_found_on_a_journal_too(tmp_path: Path) -> None:
    from graphspec.experiments import sweep_study

    study, _, _ = _study(tmp_path)
    t = study.ask()
    t.suggest_float("x", 0.0, 1.0)
    for k, v in (("host", socket.gethostname()), ("pid", _dead_pid()), ("run_dir", "trial-0000"),
                 (sweep_study.BEAT, time.time())):
        t.set_user_attr(k, v)
    assert sweep_study.recover(study, tmp_path) == [0]
    assert sweep_study.used(study) == (1, 1)  # the killed one no longer counts; its retry waits


def test_workers_sharing_a_study_draw_from_their_own_seeds() -> None:
    from graphspec.experiments.sweep_study import worker_seed

    sqlite, journal = "sqlite:///x/study.db", "journal:/shared/study.log"
    assert worker_seed(5, 3, sqlite, {}) == (7, "worker-3")  # one host: seed + k - 1, as before
    assert worker_seed(None, 0, journal, {})[0] is None
    a = worker_seed(5, 0, journal, {"SLURM_ARRAY_JOB_ID": "100", "SLURM_ARRAY_TASK_ID": "0"})
    b = worker_seed(5, 0, journal, {"SLURM_ARRAY_JOB_ID": "100", "SLURM_ARRAY_TASK_ID": "1"})
    rerun = worker_seed(5, 0, journal, {"SLURM_ARRAY_JOB_ID": "200", "SLURM_ARRAY_TASK_ID": "0"})
    assert a[0] != b[0] and a[0] == rerun[0] and a[1] == "slurm-array-100-0"  # the same task draws the same
    host = worker_seed(5, 0, journal, {})
    assert host[1] == f"{socket.gethostname()}:{os.getpid()}" and host[0] not in (5, a[0], None)


DIGITS = """\
graphspec: 1
name: array
inputs:
  image: {shape: [8, 8, 1]}
nodes:
  flatten: {type: Flatten}
  hidden: {type: Dense, units: 8, activation: relu}
  logits: {type: Dense, units: 10}
compile:
  optimizer: {type: Adam, learning_rate: 0.01}
  loss: {type: SparseCategoricalCrossentropy, from_logits: true}
  metrics: [accuracy]
data:
  source: {kind: sklearn, name: digits}
  transforms:
    image: [{reshape: [8, 8, 1]}, {divide: 16}]
  validation_split: 0.2
  batch_size: 128
train: {epochs: 1, seed: 0, tensorboard: false}
sweep:
  objective: {metric: val_accuracy}
  sampler: random
  pruner: none
  params:
    compile.optimizer.learning_rate: {log_uniform: [0.001, 0.1]}
"""


@pytest.mark.keras
@pytest.mark.slow
def test_a_slurm_array_on_one_journal_runs_every_trial_once(tmp_path: Path) -> None:
    import optuna

    spec = tmp_path / "array.yaml"
    spec.write_text(DIGITS)
    journal = tmp_path / "study.log"
    # Two array tasks, the same command and --seed: `sbatch --array=0-1 ... graphspec sweep ...`.
    procs = []
    for task in range(2):
        env = {**os.environ, **JAX_CACHE, "NO_COLOR": "1", "PYTHONPATH": str(ROOT), "SLURM_ARRAY_JOB_ID": "9",
               "SLURM_ARRAY_TASK_ID": str(task), "KERAS_BACKEND": "jax", "CUDA_VISIBLE_DEVICES": ""}
        procs.append(subprocess.Popen(
            [sys.executable, "-m", "graphspec", "sweep", str(spec), "--trials", "4", "--seed", "3", "--storage",
             f"journal:{journal}", "--dir", str(tmp_path / "sweep")], cwd=tmp_path, env=env, text=True,
            stdout=subprocess.PIPE, stderr=subprocess.PIPE))
    outs = [p.communicate(timeout=400) for p in procs]
    assert all(p.returncode == 0 for p in procs), [o[1][-2000:] for o in outs]
    store = optuna.storages.JournalStorage(optuna.storages.journal.JournalFileBackend(str(journal)))
    got = optuna.load_study(study_name="array", storage=store).get_trials()
    counted = [t for t in got if t.user_attrs.get("status") != "surplus"]
    assert len([t for t in counted if t.state.name == "COMPLETE"]) == 4 and len(counted) == 4  # exact total
    folders = sorted(p.name for p in (tmp_path / "sweep").glob("trial-*"))
    assert folders == [f"trial-{t.number:04d}" for t in counted]  # each trial ran once, in one folder
    seeds = {t.user_attrs["worker"]: t.user_attrs["sampler_seed"] for t in counted}
    assert len(set(seeds.values())) == len(seeds)  # every worker its own seed, recorded per trial
    assert len({t.params["compile.optimizer.learning_rate"] for t in counted}) == 4  # no two draws alike
    manifest = json.loads((tmp_path / "sweep" / "sweep.json").read_text())
    assert manifest["storage"] == f"journal:{journal.resolve()}"
    # `--resume` and the report read the journal.
    from typer.testing import CliRunner

    from graphspec.cli.app import app

    resumed = CliRunner().invoke(app, ["sweep", str(tmp_path / "sweep"), "--resume"])
    assert resumed.exit_code == 0 and "4 done or queued" in resumed.output, resumed.output
