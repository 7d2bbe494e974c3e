"""The `sweep:` section (schema, lint), a sweep's plan, its study bookkeeping (budget, dead workers) and
`graphspec runs`, without training anything (tests/test_sweep_run.py trains)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

import graphspec
from graphspec.errors import UsageError

from .conftest import ROOT

BASE = """\
graphspec: 1
name: sw
vars: {width: 64}
inputs:
  image: {shape: [8, 8, 1]}
nodes:
  flatten: {type: Flatten}
  hidden: {type: Dense, units: "${width}", activation: relu}
  dropout: {type: Dropout, rate: 0.3}
  logits: {type: Dense, units: 10}
compile:
  optimizer: {type: Adam, learning_rate: 0.001}
  loss: {type: SparseCategoricalCrossentropy, from_logits: true}
  metrics: [accuracy]
data:
  source: {kind: sklearn, name: digits}
  validation_split: 0.1
train: {epochs: 2, seed: 0}
sweep:
  objective: {metric: %(metric)s}
  sampler: %(sampler)s
  params:
    %(param)s
"""


def spec(tmp_path: Path, param: str, *, metric: str = "val_accuracy", sampler: str = "tpe", extra: str = "") -> Path:
    path = tmp_path / "sw.yaml"
    path.write_text((BASE % {"metric": metric, "sampler": sampler, "param": param}) + extra)
    return path


def errors(path: Path) -> list[tuple[str, int, str]]:
    checked = graphspec.check(path)
    return [(d.code, d.location.line, d.message) for d in checked.diagnostics.sorted()
            if d.code.startswith(("GS1", "GS46"))]


# (param line, objective metric, sampler) -> (code, a fragment of the message); line 23 is the param line.
BAD = [
    ("nodes.dropout.rat: {uniform: [0.0, 0.5]}", "val_accuracy", "tpe", "GS460", "`nodes.dropout.rat` names nothing"),
    ("nodes.droput.rate: {uniform: [0.0, 0.5]}", "val_accuracy", "tpe", "GS460", "there is no `nodes.droput`"),
    ("vars.widht: {choice: [32, 64]}", "val_accuracy", "tpe", "GS460", "`vars.widht` names nothing"),
    ("nodes.dropout.rate: {uniform: [0.5, 0.1]}", "val_accuracy", "tpe", "GS460", "is empty: low is above high"),
    ("nodes.hidden.units: {int: [64, 8]}", "val_accuracy", "tpe", "GS460", "is empty: low is above high"),
    ("compile.optimizer.learning_rate: {log_uniform: [0.0, 0.1]}", "val_accuracy", "tpe", "GS460", "needs low > 0"),
    ("nodes.hidden.units: {choice: []}", "val_accuracy", "tpe", "GS460", "lists no values"),
    ("nodes.dropout.rate: {uniform: [0.0, 0.5]}", "val_accuracy", "grid", "GS460", "give this range `points: N`"),
    ("sweep.trials: {choice: [1, 2]}", "val_accuracy", "tpe", "GS460", "cannot sweep its own settings"),
    ("nodes.dropout.rate: {uniform: [0.0, 0.5]}", "val_acuracy", "tpe", "GS461", "logs no metric `val_acuracy`"),
    ("nodes.dropout.rate: {uniform: [0.0, 0.5]}", "val_auc", "tpe", "GS461", "logs no metric `val_auc`"),
    ("nodes.dropout.rate: {unifrm: [0.0, 0.5]}", "val_accuracy", "tpe", "GS102", "a swept parameter is one of"),
    ("nodes.dropout.rate: {uniform: [0.0]}", "val_accuracy", "tpe", "GS102", "at least 2 items"),
    ("nodes.dropout.rate: {uniform: [0.0, 0.5], steps: 3}", "val_accuracy", "tpe", "GS101", "unknown field `steps`"),
]


@pytest.mark.parametrize("param,metric,sampler,code,fragment", BAD)
def test_lint_reports_a_bad_sweep_where_it_is(tmp_path: Path, param: str, metric: str, sampler: str, code: str,
                                               fragment: str) -> None:
    found = errors(spec(tmp_path, param, metric=metric, sampler=sampler))
    assert any(c == code and fragment in m for c, _, m in found), found
    line = next(ln for c, ln, m in found if c == code and fragment in m)
    assert line == (20 if code == "GS461" else 23), found


GOOD = [
    "nodes.dropout.rate: {uniform: [0.0, 0.5]}",
    "nodes.hidden.use_bias: {choice: [true, false]}",  # an argument the node leaves at its default
    "compile.optimizer.learning_rate: {log_uniform: [1.0e-4, 1.0e-2]}",
    "compile.optimizer.beta_1: {uniform: [0.8, 0.99]}",  # an argument the optimizer leaves at its default
    "vars.width: {int: [16, 128], step: 16}",
    "train.epochs: {int: [1, 3]}",
]


@pytest.mark.parametrize("param", GOOD)
def test_lint_accepts_a_good_sweep(tmp_path: Path, param: str) -> None:
    assert errors(spec(tmp_path, param)) == []


def test_an_optimizer_given_by_name_takes_no_swept_arguments(tmp_path: Path) -> None:
    path = spec(tmp_path, "compile.optimizer.learning_rate: {log_uniform: [1.0e-4, 1.0e-2]}")
    path.write_text(path.read_text().replace("optimizer: {type: Adam, learning_rate: 0.001}", "optimizer: adam"))
    checked = graphspec.check(path)
    (d,) = [d for d in checked.diagnostics if d.code == "GS460"]
    assert "is the name `adam`" in d.message and d.hint == "write `optimizer: {type: Adam}` to sweep its arguments"


def test_a_misspelt_node_gets_a_hint(tmp_path: Path) -> None:
    checked = graphspec.check(spec(tmp_path, "nodes.hiden.units: {int: [8, 64]}"))
    (d,) = [d for d in checked.diagnostics if d.code == "GS460"]
    assert "there is no `nodes.hiden`" in d.message and d.hint == "did you mean `hidden`?"


def test_a_sweep_needs_validation_data_for_a_val_objective(tmp_path: Path) -> None:
    path = spec(tmp_path, "nodes.dropout.rate: {uniform: [0.0, 0.5]}")
    path.write_text(path.read_text().replace("  validation_split: 0.1\n", ""))
    assert any(c == "GS461" and "needs validation data" in m for c, _, m in errors(path))


def test_the_json_schema_knows_the_sweep_section() -> None:
    from graphspec.spec.schema import json_schema

    schema = json_schema()
    assert "sweep" in schema["properties"]
    text = json.dumps(schema)
    for key in ("log_uniform", "uniform", "choice", "objective", "hyperband", "tpe"):
        assert key in text
    committed = json.loads((ROOT / "graphspec.schema.json").read_text())
    assert "sweep" in committed["properties"], "regenerate graphspec.schema.json"


# -- the plan --------------------------------------------------------------------------------------------------
def test_values_become_set_overrides_that_read_back_the_same(tmp_path: Path) -> None:
    from graphspec.experiments.sweep_plan import trial_sets, yaml_scalar
    from graphspec.spec.source import loads

    for value in (1e-05, 0.001, 3, True, None, "adam", "1e-3", 2.5e10, -0.0):
        assert loads(yaml_scalar(value)).data == value, (value, yaml_scalar(value))
    path = spec(tmp_path, "compile.optimizer.learning_rate: {log_uniform: [1.0e-5, 1.0e-2]}")
    sets = trial_sets({"compile.optimizer.learning_rate": 1e-05, "vars.width": 32, "nodes.dropout.rate": 0.25})
    checked = graphspec.check(path, sets=sets)
    assert checked.ok
    assert checked.spec.compile.optimizer == {"type": "Adam", "learning_rate": 1e-05}
    assert checked.spec.nodes["hidden"].args["units"] == 32


def test_the_grid_and_the_budget() -> None:
    from graphspec.experiments.sweep_plan import grid_space, plan
    from graphspec.spec.schema_sweep import SweepSpec

    sweep = SweepSpec.model_validate({
        "objective": {"metric": "val_loss"}, "sampler": "grid",
        "params": {"a": {"log_uniform": [1e-4, 1e-2], "points": 3}, "b": {"int": [8, 32], "step": 8},
                   "c": {"choice": ["x", None]}, "d": {"uniform": [0.0, 0.5], "points": 2}}})
    space = grid_space(sweep)
    assert space["a"] == pytest.approx([1e-4, 1e-3, 1e-2]) and space["a"][-1] == 1e-2
    assert space["b"] == [8, 16, 24, 32] and space["c"] == ["x", None] and space["d"] == [0.0, 0.5]
    p = plan(sweep, trials=None, epochs=5)
    assert (p.budget, p.mode, p.direction, p.note) == (48, "min", "minimize", None)
    capped = plan(sweep, trials=100, epochs=5)
    assert capped.budget == 48 and "the grid has 48 points" in (capped.note or "")
    tpe = SweepSpec.model_validate({"objective": {"metric": "val_accuracy"}, "params": {"a": {"choice": [1, 2]}}})
    assert plan(tpe, trials=None, epochs=1).budget == 20 and plan(tpe, trials=3, epochs=1).mode == "max"


# -- the study: budget, dead workers, retries ------------------------------------------------------------------
def _study(tmp_path: Path, budget_trials: int = 3) -> tuple[Any, Any]:
    pytest.importorskip("optuna")
    from graphspec.experiments import sweep_plan, sweep_study
    from graphspec.spec.schema_sweep import SweepSpec

    sweep = SweepSpec.model_validate({"objective": {"metric": "val_loss"}, "sampler": "random",
                                      "params": {"x": {"uniform": [0.0, 1.0]}}})
    p = sweep_plan.plan(sweep, trials=budget_trials, epochs=2)
    url = sweep_study.default_storage(tmp_path)
    return sweep_study.open_study(url, "s", p, "f1", seed=0, create=True), p


def _dead_pid() -> int:
    proc = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    return int(proc.stdout)


def test_a_trial_of_a_dead_worker_is_queued_again_once(tmp_path: Path) -> None:
    import socket

    from graphspec.experiments import sweep_study

    study, p = _study(tmp_path)
    t0 = study.ask()
    t0.suggest_float("x", 0.0, 1.0)
    study.tell(t0, 0.5)
    t1 = study.ask()
    x = t1.suggest_float("x", 0.0, 1.0)
    for k, v in (("host", socket.gethostname()), ("pid", _dead_pid()), ("run_dir", "trial-0001")):
        t1.set_user_attr(k, v)
    assert sweep_study.used(study) == (2, 0)
    assert sweep_study.recover(study, tmp_path) == [1]
    assert sweep_study.recover(study, tmp_path) == []  # once
    assert sweep_study.used(study) == (2, 1)  # the interrupted one no longer counts; its retry does
    retry = study.ask()
    assert retry.user_attrs == {"retry_of": 1, "replaces": 1, "run_dir": "trial-0001", "reason": retry.user_attrs["reason"]}
    assert "is gone" in retry.user_attrs["reason"]
    assert retry.suggest_float("x", 0.0, 1.0) == x  # the same values
    assert not sweep_study.is_surplus(study, retry, p.budget)
    study.tell(retry, 0.4)
    t3 = study.ask()
    assert not sweep_study.is_surplus(study, t3, p.budget)
    t4 = study.ask()  # a second worker asking at the same time: over the budget
    assert sweep_study.is_surplus(study, t4, p.budget)
    live = study.ask()
    live.set_user_attr("host", socket.gethostname())
    live.set_user_attr("pid", os.getpid())
    assert sweep_study.recover(study, tmp_path) == []  # a live worker's trial is left alone


def test_a_study_of_another_spec_is_refused(tmp_path: Path) -> None:
    from graphspec.experiments import sweep_study

    study, p = _study(tmp_path)
    with pytest.raises(UsageError, match="started from another spec"):
        sweep_study.open_study(sweep_study.default_storage(tmp_path), "s", p, "other", seed=0, create=True)
    with pytest.raises(UsageError, match="no study 'nope'"):
        sweep_study.open_study(sweep_study.default_storage(tmp_path), "nope", p, "f1", seed=0, create=False)
    assert sweep_study.redact("postgresql://bob:secret@db:5432/x") == "postgresql://bob:***@db:5432/x"


def test_a_sweep_folder_of_another_spec_is_refused(tmp_path: Path) -> None:
    from graphspec.experiments import sweep

    one = spec(tmp_path, "nodes.dropout.rate: {uniform: [0.0, 0.5]}")
    folder = tmp_path / "sweeps"
    folder.mkdir()
    other = tmp_path / "other.yaml"
    other.write_text(one.read_text().replace("name: sw", "name: other"))
    (folder / "sweep.json").write_text(json.dumps({"spec": str(other), "sets": []}))
    with pytest.raises(UsageError, match="holds a sweep of"):
        sweep.settings_for(one, folder=folder)
    settings = sweep.settings_for(folder)
    assert settings.spec == str(other) and settings.storage.endswith("sweeps/study.db") and settings.study == "other"


# -- graphspec runs ---------------------------------------------------------------------------------------------
def _run_folder(path: Path, *, status: str, best: float, history: list[float], sets: list[str] | None = None,
                trial: dict[str, Any] | None = None) -> None:
    path.mkdir(parents=True)
    (path / "spec.yaml").write_text("graphspec: 1\n")
    rows = [{"epoch": i + 1, "loss": 1.0 / (i + 1), "val_loss": v, "time": 0.5} for i, v in enumerate(history)]
    (path / "history.json").write_text(json.dumps(rows))
    epoch = 1 + min(range(len(history)), key=history.__getitem__)
    (path / "state.json").write_text(json.dumps({
        "status": status, "epochs_completed": len(history), "monitor": "val_loss", "mode": "min",
        "best": {"monitor": "val_loss", "mode": "min", "value": best, "epoch": epoch}}))
    (path / "results.json").write_text(json.dumps({"test": {"loss": best + 0.1}}))
    argv = ["graphspec", "train", "x.yaml"] + [a for s in (sets or []) for a in ("--set", s)]
    (path / "environment.json").write_text(json.dumps({"argv": argv}))
    if trial is not None:
        (path / "trial.json").write_text(json.dumps(trial))


def test_runs_lists_runs_and_trials_best_first(tmp_path: Path) -> None:
    from graphspec.experiments import runs
    from graphspec.render import runs as render

    _run_folder(tmp_path / "runs" / "m" / "20240101-000000", status="completed", best=0.30, history=[0.5, 0.3],
                sets=["nodes.d.units=8"])
    _run_folder(tmp_path / "runs" / "m" / "20240102-000000", status="running", best=0.20, history=[0.2])
    _run_folder(tmp_path / "runs" / "m" / "20240103-000000", status="early_stopped", best=0.25,
                history=[0.4, 0.25, 0.3])
    rows = runs.collect([tmp_path / "runs"])
    assert [(r["name"], r["status"], r["objective"]) for r in rows] == [
        ("m/20240102-000000", "interrupted", 0.20),  # `running`, but nobody holds its claim: its process is gone
        ("m/20240103-000000", "completed", 0.25),
        ("m/20240101-000000", "completed", 0.30),
    ]
    assert rows[2]["params"] == {"nodes.d.units": "8"} and rows[2]["test"] == {"loss": pytest.approx(0.4)}
    assert rows[1]["metrics"]["val_loss"] == 0.25 and rows[1]["epochs"] == 3 and rows[1]["seconds"] == 1.5
    by_loss = runs.collect([tmp_path / "runs"], sort="loss")  # the best epoch's training loss
    assert [r["name"] for r in by_loss][-1] == "m/20240102-000000"  # loss 1.0 at its best epoch; 0.5 for both others
    with pytest.raises(UsageError, match="no run has a value in that column"):
        runs.collect([tmp_path / "runs"], sort="val_auc")

    data = json.loads(render.as_json(rows))
    assert set(data["runs"][0]) >= {"name", "path", "status", "params", "objective", "metrics", "test", "seconds"}
    lines = render.as_csv(rows).splitlines()
    assert lines[0].startswith("name,path,status,objective,monitor,mode,epochs,seconds,params.nodes.d.units,"
                               "metrics.loss")
    assert lines[3].split(",")[8] == "8"

    from rich.console import Console

    console = Console(width=160, color_system=None, record=True)
    console.print(render.table(rows, width=160))
    text = console.export_text()
    assert "val_loss" in text and "interrupted" in text and "units=8" in text and "test_loss" in text


def test_runs_counts_the_epochs_a_training_run_has_trained(tmp_path: Path) -> None:
    """A run still training (its claim held) shows the epochs in its history: state.json counts the checkpoint's,
    written once a minute."""
    from graphspec.experiments import runs
    from graphspec.run.lock import claim

    folder = tmp_path / "runs" / "m" / "20240101-000000"
    _run_folder(folder, status="running", best=0.2, history=[0.5, 0.3, 0.2])
    state = json.loads((folder / "state.json").read_text())
    (folder / "state.json").write_text(json.dumps({**state, "epochs_completed": 1}))
    with claim(folder):
        (row,) = runs.collect([tmp_path / "runs"])
        assert (row["status"], row["epochs"]) == ("running", 3)
    (row,) = runs.collect([tmp_path / "runs"])  # its process gone: the epochs a resume starts after
    assert (row["status"], row["epochs"]) == ("interrupted", 1)


def test_runs_reads_trial_records(tmp_path: Path) -> None:
    from graphspec.experiments import runs

    sweep = tmp_path / "sweeps" / "s"
    trial = {"number": 0, "state": "completed", "params": {"nodes.d.rate": 0.1}, "metric": "val_accuracy",
             "mode": "max", "value": 0.9, "static": False, "epochs": 2, "seconds": 3.0}
    _run_folder(sweep / "trial-0000", status="completed", best=0.3, history=[0.4, 0.3], trial=trial)
    (sweep / "trial-0001").mkdir()
    (sweep / "trial-0001" / "trial.json").write_text(json.dumps({**trial, "number": 1, "state": "pruned",
                                                                  "value": None, "static": True, "seconds": 0.01}))
    _run_folder(sweep / "trial-0002", status="completed", best=0.2, history=[0.2],
                trial={**trial, "number": 2, "value": 0.95})
    rows = runs.collect([tmp_path / "sweeps"])
    assert [(r["name"], r["status"], r["objective"]) for r in rows] == [
        ("s/trial-0002", "completed", 0.95), ("s/trial-0000", "completed", 0.9), ("s/trial-0001", "pruned", None)]
    assert rows[0]["params"] == {"nodes.d.rate": 0.1} and rows[0]["monitor"] == "val_accuracy"


def test_runs_and_sweep_usage_errors_exit_2_without_a_traceback(tmp_path: Path) -> None:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "NO_COLOR": "1"}

    def cli(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "graphspec", *args], cwd=tmp_path, env=env, capture_output=True,
                              text=True, timeout=120)

    for args, fragment in [
        (("runs",), "no runs/ or sweeps/ folder here"),
        (("runs", "nowhere"), "nowhere: no such folder"),
        (("runs", ".", "--format", "xml"), "--format must be table, json or csv"),
        (("runs", ".", "--plot", "val_loss"), "--plot METRIC and -o FILE go together"),
        (("sweep", str(ROOT / "specs" / "digits.yaml"), "--dir", str(tmp_path / "d")), "has no `sweep:` section"),
    ]:
        proc = cli(*args)
        assert proc.returncode == 2, (args, proc.stderr)
        assert fragment in proc.stderr and "Traceback" not in proc.stderr, (args, proc.stderr)
    bad = spec(tmp_path, "nodes.dropout.rat: {uniform: [0.0, 0.5]}")
    proc = cli("sweep", str(bad), "--dir", str(tmp_path / "d"))
    assert proc.returncode == 1 and "error[GS460]" in proc.stderr and "Traceback" not in proc.stderr


@pytest.mark.keras
def test_the_trial_callback_reports_each_epoch_and_stops_a_pruned_trial() -> None:
    from graphspec.experiments.sweep import StopFlag
    from graphspec.experiments.sweep_callback import TrialReport

    class Trial:
        def __init__(self) -> None:
            self.reported: list[tuple[float, int]] = []

        def report(self, value: float, step: int) -> None:
            self.reported.append((value, step))

        def should_prune(self) -> bool:
            return len(self.reported) >= 2

    class Model:
        stop_training = False

    trial, model = Trial(), Model()
    cb = TrialReport(trial, "val_accuracy", StopFlag())
    cb.set_model(model)
    cb.on_epoch_end(0, {"val_accuracy": 0.5, "loss": 1.0})
    assert trial.reported == [(0.5, 1)] and not model.stop_training
    cb.on_epoch_end(1, {"val_accuracy": float("nan")})  # nothing finite to report
    assert trial.reported == [(0.5, 1)]
    cb.on_epoch_end(2, {"val_accuracy": 0.6})
    assert trial.reported == [(0.5, 1), (0.6, 3)] and model.stop_training and cb.pruned_at == 3
    cb.on_epoch_end(3, {"val_accuracy": 0.7})  # the trainer stopped: an epoch it discards is not reported
    assert len(trial.reported) == 2


def test_a_second_ctrl_c_still_queues_the_trial_when_marking_it_fails() -> None:
    """`_interrupted` tries every step: a storage error on the first must not skip the re-queue."""
    from graphspec.experiments import sweep as sweep_mod

    calls: list[str] = []

    class Trial:
        number = 3
        _trial_id = 7

        def set_user_attr(self, key: str, value: object) -> None:
            calls.append("mark")
            raise RuntimeError("database is locked")

    class Storage:
        def get_trial(self, trial_id: int) -> object:
            calls.append(f"get {trial_id}")
            return type("Frozen", (), {"user_attrs": {}, "number": 3, "params": {"lr": 0.1}})()

    class Study:
        _storage = Storage()

        def tell(self, trial: object, state: object) -> None:
            calls.append("tell")

        def enqueue_trial(self, params: dict[str, object], user_attrs: dict[str, object]) -> None:
            calls.append(f"enqueue {params} {user_attrs['reason']}")

    problems = sweep_mod._interrupted(Study(), Trial())
    assert calls == ["mark", "tell", "get 7", "enqueue {'lr': 0.1} interrupted"]
    assert problems == ["could not mark it interrupted: RuntimeError: database is locked"]
