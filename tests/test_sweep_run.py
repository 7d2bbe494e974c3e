"""`graphspec sweep` for real: trials trained on the digits data, workers sharing one study, a sweep killed
with -9 and resumed, a runtime error in a trial, and (when CI gives a server) two workers on PostgreSQL."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from .conftest import ROOT, CliResult, graphspec_cli

pytest.importorskip("optuna")
pytestmark = [pytest.mark.keras, pytest.mark.slow]

DIGITS = """\
graphspec: 1
name: %(name)s
inputs:
  image: {shape: [8, 8, 1]}
nodes:
  flatten: {type: Flatten}
  hidden: {type: Dense, units: 16, activation: relu}
  dropout: {type: Dropout, rate: 0.2}
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
  batch_size: %(batch)d
train: {epochs: %(epochs)d, seed: 0}
expect: {max_params: 20000}
sweep:
  objective: {metric: val_accuracy}
%(sweep)s
"""

GRID4 = """\
  sampler: grid
  params:
    nodes.hidden.units: {choice: [16, 24]}
    nodes.dropout.rate: {uniform: [0.0, 0.4], points: 2}
"""


def write(tmp_path: Path, sweep: str, *, name: str = "digits_sweep", epochs: int = 2, batch: int = 64) -> Path:
    path = tmp_path / f"{name}.yaml"
    path.write_text(DIGITS % {"name": name, "sweep": sweep, "epochs": epochs, "batch": batch})
    return path


def cli(*args: str, timeout: int = 600) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "NO_COLOR": "1", "PYTHONPATH": str(ROOT)}
    return subprocess.run([sys.executable, "-m", "graphspec", *args], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=timeout)


def popen(*args: str) -> subprocess.Popen[str]:
    env = {**os.environ, "NO_COLOR": "1", "PYTHONPATH": str(ROOT)}
    return subprocess.Popen([sys.executable, "-m", "graphspec", *args], cwd=ROOT, env=env, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def records(folder: Path) -> dict[str, dict[str, Any]]:
    return {p.parent.name: json.loads(p.read_text()) for p in sorted(folder.glob("trial-*/trial.json"))}


def trials(folder: Path, study: str) -> list[Any]:
    import optuna

    return optuna.load_study(study_name=study, storage=f"sqlite:///{folder / 'study.db'}").get_trials()


def no_traceback(proc: subprocess.CompletedProcess[str] | CliResult) -> None:
    assert "Traceback" not in proc.stderr and "GS900" not in proc.stderr, proc.stderr


def test_a_grid_of_4_points_on_2_workers(tmp_path: Path) -> None:
    spec = write(tmp_path, GRID4)
    folder = tmp_path / "sweep"
    proc = cli("sweep", str(spec), "--workers", "2", "--dir", str(folder))
    no_traceback(proc)
    assert proc.returncode == 0, proc.stderr
    recs = records(folder)
    assert sorted(recs) == ["trial-0000", "trial-0001", "trial-0002", "trial-0003"]
    assert all(r["state"] == "completed" for r in recs.values()), recs
    # Every grid point once, by two different processes.
    points = {(r["params"]["nodes.hidden.units"], r["params"]["nodes.dropout.rate"]) for r in recs.values()}
    assert points == {(16, 0.0), (16, 0.4), (24, 0.0), (24, 0.4)}
    assert len({r["pid"] for r in recs.values()}) == 2
    for name in recs:  # normal run folders: trained once, reproducible from their spec
        state = json.loads((folder / name / "state.json").read_text())
        assert state["status"] == "completed" and "resumed" not in state
        assert (folder / name / "best.keras").is_file() and (folder / name / "spec.yaml").is_file()
        assert list((folder / name / "tensorboard").glob("events.out.tfevents.*"))  # HParams summary
    best = max(recs.values(), key=lambda r: r["value"])
    assert f"best: trial {best['number']}, val_accuracy {best['value']:.4f}" in proc.stdout
    assert "4 completed, 0 pruned" in proc.stdout
    # The trial's spec reproduces it: its values are set in it.
    text = (folder / f"trial-{best['number']:04d}" / "spec.yaml").read_text()
    assert f"units: {best['params']['nodes.hidden.units']}" in text

    # Reading the sweep back is not about processes: in this one.
    shown = graphspec_cli("runs", folder, "--format", "json")
    assert shown.returncode == 0, shown.stderr
    rows = json.loads(shown.stdout)["runs"]
    assert [r["name"] for r in rows][0] == f"trial-{best['number']:04d}"  # best first
    assert {r["status"] for r in rows} == {"completed"}
    assert set(rows[0]) >= {"name", "path", "status", "params", "objective", "metrics", "test", "seconds"}
    report = graphspec_cli("sweep", folder, "--report", "-o", tmp_path / "report.html")
    assert report.returncode == 0, report.stderr
    assert "plotly" in (tmp_path / "report.html").read_text()[:2_000_000]
    curves = graphspec_cli("runs", folder, "--plot", "val_loss", "-o", tmp_path / "curves.png")
    assert curves.returncode == 0 and (tmp_path / "curves.png").read_bytes()[:4] == b"\x89PNG"


def _sweep_in_process(spec: Path, folder: Path, **kwargs: Any) -> Any:
    from graphspec.experiments import sweep as sweep_mod

    lines: list[str] = []
    settings = sweep_mod.settings_for(spec, folder=folder, **kwargs)
    summary = sweep_mod.sweep(settings, workers=1, say=lines.append)
    return summary, lines


def test_a_point_over_max_params_is_pruned_without_training(tmp_path: Path) -> None:
    spec = write(tmp_path, "  sampler: grid\n  params:\n    nodes.hidden.units: {choice: [16, 4096]}\n",
                 name="budget", epochs=1)
    summary, lines = _sweep_in_process(spec, tmp_path / "sweep")
    assert summary.counts["completed"] == 1 and summary.counts["pruned_static"] == 1, lines
    recs = records(tmp_path / "sweep")
    pruned = next(r for r in recs.values() if r["params"]["nodes.hidden.units"] == 4096)
    folder = tmp_path / "sweep" / f"trial-{pruned['number']:04d}"
    assert pruned["state"] == "pruned" and pruned["static"] is True
    assert pruned["diagnostics"][0]["code"] == "GS500" and pruned["diagnostics"][0]["line"] > 0
    # No training: no state, no checkpoint, no model; the spec is there to lint.
    assert sorted(p.name for p in folder.iterdir()) == ["spec.yaml", "train.log", "trial.json"] or \
        sorted(p.name for p in folder.iterdir()) == ["spec.yaml", "trial.json"]
    assert "pruned before training: GS500" in "\n".join(lines)
    assert summary.static_codes == {"GS500": 1}
    # The study knows it too.
    (t,) = [t for t in trials(tmp_path / "sweep", "budget") if t.params["nodes.hidden.units"] == 4096]
    assert t.state.name == "PRUNED" and t.user_attrs["static"] is True and not t.intermediate_values


RUNTIME = """\
graphspec: 1
name: convs
inputs:
  seq: {shape: [null, 4]}
nodes:
  conv: {type: Conv1D, filters: 4, kernel_size: 5}
  pool: {type: GlobalMaxPooling1D}
  out: {type: Dense, units: 2}
compile:
  optimizer: adam
  loss: {type: SparseCategoricalCrossentropy, from_logits: true}
data:
  source: {kind: synthetic, samples: 32, test_samples: 8, sequence_length: 3}
  batch_size: 16
train: {epochs: 1, seed: 0}
sweep:
  objective: {metric: loss}
  sampler: grid
  params:
    nodes.conv.kernel_size: {choice: [5, 2]}
"""


def test_a_runtime_error_fails_the_trial_with_a_located_error_and_the_sweep_goes_on(tmp_path: Path) -> None:
    spec = tmp_path / "convs.yaml"
    spec.write_text(RUNTIME)
    summary, lines = _sweep_in_process(spec, tmp_path / "sweep")
    assert summary.counts["failed"] == 1 and summary.counts["completed"] == 1, lines
    recs = records(tmp_path / "sweep")
    failed = next(r for r in recs.values() if r["state"] == "failed")
    d = failed["diagnostics"][0]
    # train itself reports a failure inside fit as GS423 (issue 15); the sweep keeps that diagnostic
    assert d["code"] in {"GS423", "GS462"}, d
    assert (d["file"], d["line"]) == (str(spec.resolve()), 6)  # the node `conv` in the spec
    assert "\x1b[" not in d["message"]
    state = json.loads((tmp_path / "sweep" / f"trial-{failed['number']:04d}" / "state.json").read_text())
    assert state["status"] == "failed"


def _wait(cond: Any, proc: subprocess.Popen[str], seconds: float = 300) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if cond():
            return
        if proc.poll() is not None:
            raise AssertionError(f"the sweep ended early ({proc.returncode}): {proc.stderr.read() if proc.stderr else ''}")
        time.sleep(0.05)
    proc.kill()
    raise AssertionError("timed out")


def _json(path: Path) -> Any:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def test_kill_9_then_resume_finishes_without_running_a_finished_trial_again(tmp_path: Path) -> None:
    spec = write(tmp_path, "  sampler: grid\n  params:\n    nodes.hidden.units: {choice: [16, 20, 24]}\n",
                 name="killed", epochs=4, batch=16)  # killed after 2 epochs of trial 1, 2 left to resume
    spec.write_text(spec.read_text().replace("seed: 0}", "seed: 0, checkpoint: {every: 0}}"))  # each epoch's
    folder = tmp_path / "sweep"
    proc = popen("sweep", str(spec), "--dir", str(folder))
    t1 = folder / "trial-0001"

    def mid_trial_1() -> bool:
        state = _json(t1 / "state.json")
        return bool(state) and state.get("status") == "running" and state.get("epochs_completed", 0) >= 2

    _wait(mid_trial_1, proc)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    first = _json(folder / "trial-0000" / "trial.json")
    assert first["state"] == "completed"
    before = {p.name: p.stat().st_mtime_ns for p in (folder / "trial-0000").iterdir() if p.is_file()}
    epochs_before = _json(t1 / "state.json")["epochs_completed"]

    resumed = graphspec_cli("sweep", spec, "--dir", folder, "--resume")  # the resume itself: in this process
    no_traceback(resumed)
    assert resumed.returncode == 0, resumed.stderr
    assert "trial 1: its worker is gone; queued again" in resumed.stderr
    # Trial 0 was not touched; trial 1 continued from its checkpoint, in its own folder.
    assert {p.name: p.stat().st_mtime_ns for p in (folder / "trial-0000").iterdir() if p.is_file()} == before
    state = _json(t1 / "state.json")
    assert state["status"] == "completed" and "resumed" in state and state["epochs_completed"] == 4
    assert len(_json(t1 / "history.json")) == 4 and epochs_before >= 2
    assert _json(t1 / "trial.json")["retry_of"] == 1
    done = [t for t in trials(folder, "killed") if t.state.name == "COMPLETE"]
    assert sorted(t.params["nodes.hidden.units"] for t in done) == [16, 20, 24]  # each point once
    assert "3 completed" in resumed.stdout
    again = graphspec_cli("sweep", spec, "--dir", folder)  # the same command once more: nothing left to run
    assert again.returncode == 0 and len([t for t in trials(folder, "killed") if t.state.name == "COMPLETE"]) == 3


def test_sigterm_stops_every_worker_cleanly_and_the_same_command_continues(tmp_path: Path) -> None:
    spec = write(tmp_path, "  sampler: grid\n  params:\n    nodes.hidden.units: {choice: [16, 20, 24]}\n",
                 name="stopped", epochs=4, batch=16)
    folder = tmp_path / "sweep"
    proc = popen("sweep", str(spec), "--dir", str(folder), "--workers", "2")

    def training() -> bool:  # a trial running with an epoch trained (history.json; its checkpoint comes later)
        trials = [p.parent for p in folder.glob("trial-*/state.json")]
        return any((_json(t / "state.json") or {}).get("status") == "running"
                   and len(_json(t / "history.json") or []) >= 1 for t in trials)

    _wait(training, proc)
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=300)
    assert proc.returncode == 143, err
    assert "Traceback" not in err and "interrupted" in out
    workers = {r["pid"] for r in records(folder).values()}
    for pid in workers:  # no worker left behind
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)
    stopped = [r for r in records(folder).values() if r["state"] == "interrupted"]
    assert stopped, records(folder)
    trained = []
    for r in stopped:  # a consistent run folder: the epochs it records are the epochs its history holds
        trial = folder / f"trial-{r['number']:04d}"
        state = _json(trial / "state.json")
        assert state["status"] == "interrupted"
        history = _json(trial / "history.json") if (trial / "history.json").exists() else []
        assert state["epochs_completed"] == len(history), (state, history)
        if state["epochs_completed"] >= 1:
            trained.append(r)
    # The worker the test waited for had finished an epoch (written at the stop); the other may have stopped
    # before its first.
    assert trained, [(_json(folder / f"trial-{r['number']:04d}" / "state.json")) for r in stopped]
    again = graphspec_cli("sweep", spec, "--dir", folder)
    assert again.returncode == 0, again.stderr
    done = [t for t in trials(folder, "stopped") if t.state.name == "COMPLETE"]
    assert sorted(t.params["nodes.hidden.units"] for t in done) == [16, 20, 24]
    for r in trained:  # continued from its checkpoint
        assert "resumed" in _json(folder / f"trial-{r['number']:04d}" / "state.json")


def test_two_worker_processes_on_one_sqlite_study_never_run_a_trial_twice(tmp_path: Path) -> None:
    # No pruner: which trial a median pruner stops depends on the order the two workers finish in.
    spec = write(tmp_path, "  sampler: random\n  pruner: none\n  trials: 6\n  params:\n"
                 "    nodes.hidden.units: {int: [8, 64]}\n    nodes.dropout.rate: {uniform: [0.0, 0.5]}\n",
                 name="shared", epochs=1)
    folder = tmp_path / "sweep"
    first = graphspec_cli("sweep", spec, "--dir", folder, "--trials", "1", "--seed", "1")  # creates the study
    assert first.returncode == 0, first.stderr
    # Two commands, as two hosts would run them, on the same storage.
    procs = [popen("sweep", str(spec), "--dir", str(folder), "--trials", "6", "--seed", str(s)) for s in (2, 3)]
    outs = [p.communicate(timeout=600) for p in procs]
    assert all(p.returncode == 0 for p in procs), outs
    got = trials(folder, "shared")
    counted = [t for t in got if t.user_attrs.get("status") != "surplus"]
    assert len([t for t in counted if t.state.name == "COMPLETE"]) == 6
    assert all(t.state.name in ("COMPLETE", "FAIL") for t in got)
    recs = records(folder)
    assert len(recs) == 6 and sorted(r["number"] for r in recs.values()) == sorted(t.number for t in counted)
    for name in recs:
        state = json.loads((folder / name / "state.json").read_text())
        assert "resumed" not in state and len(json.loads((folder / name / "history.json").read_text())) == 1
    pids = {r["pid"] for r in recs.values()}
    assert len(pids) >= 2  # both processes (and the first command) trained


@pytest.mark.skipif(not os.environ.get("GRAPHSPEC_TEST_POSTGRES_URL"),
                    reason="no PostgreSQL server: set GRAPHSPEC_TEST_POSTGRES_URL (.ci/run starts one)")
def test_two_workers_on_a_postgresql_study(tmp_path: Path) -> None:
    import optuna

    url = os.environ["GRAPHSPEC_TEST_POSTGRES_URL"]
    spec = write(tmp_path, "  sampler: random\n  trials: 4\n  params:\n    nodes.hidden.units: {int: [8, 64]}\n",
                 name="pg", epochs=1)
    study = f"pg-{os.getpid()}-{time.time_ns()}"
    # Two "hosts": separate commands, separate folders, one study on the server.
    procs = [popen("sweep", str(spec), "--dir", str(tmp_path / f"host{i}"), "--storage", url, "--study", study,
                   "--seed", str(i)) for i in (1, 2)]
    outs = [p.communicate(timeout=600) for p in procs]
    assert all(p.returncode == 0 for p in procs), outs
    got = optuna.load_study(study_name=study, storage=url).get_trials()
    counted = [t for t in got if t.user_attrs.get("status") != "surplus"]
    assert len([t for t in counted if t.state.name == "COMPLETE"]) == 4
    folders = [p for i in (1, 2) for p in (tmp_path / f"host{i}").glob("trial-*")]
    assert len(folders) == 4 and len({p.name for p in folders}) == 4  # each trial ran on one host only
    assert {t.user_attrs["pid"] for t in counted} <= {procs[0].pid, procs[1].pid}
