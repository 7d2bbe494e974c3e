"""`--track mlflow` (issue 24): a run and a sweep read back from MLflow (a SQLite store in a temporary folder,
no server, no network): params, tags, the full metric history, artifacts; a sweep's parent and children;
a tracking store that fails does not stop training; without MLflow, one line names the extra."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from graphspec.cli.app import app

TINY = """\
graphspec: 1
name: tracked
inputs:
  x: {shape: [4]}
nodes:
  h: {type: Dense, units: 8, activation: relu}
  y: {type: Dense, units: 1}
models:
  tiny: {outputs: y}
compile:
  optimizer: {type: Adam, learning_rate: 0.01}
  loss: mse
data:
  source: {kind: synthetic, samples: 64}
  validation_split: 0.25
  batch_size: 16
train: {epochs: 3, seed: 1, tensorboard: false}
sweep:
  objective: {metric: val_loss}
  sampler: grid
  pruner: none
  params:
    nodes.h.units: {choice: [4, 8]}
"""


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> str:
    """One SQLite store for the module (creating MLflow's tables takes seconds)."""
    pytest.importorskip("mlflow")
    return f"sqlite:///{tmp_path_factory.mktemp('mlflow') / 'mlflow.db'}"


def _client(uri: str) -> Any:
    from mlflow import MlflowClient

    return MlflowClient(tracking_uri=uri)


def _spec(tmp_path: Path) -> Path:
    path = tmp_path / "tracked.yaml"
    path.write_text(TINY)
    return path


def test_without_mlflow_track_is_one_line_naming_the_extra(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from graphspec.experiments import tracking

    monkeypatch.setattr(tracking.importlib.util, "find_spec", lambda name: None)
    result = CliRunner().invoke(app, ["train", str(_spec(tmp_path)), "--track", "mlflow"])
    assert result.exit_code != 0 and "pip install 'keras-graphspec[mlflow]'" in result.output, result.output
    assert not (tmp_path / "runs").exists()
    result = CliRunner().invoke(app, ["train", str(_spec(tmp_path)), "--track", "wandb"])
    assert "choose mlflow" in result.output


@pytest.mark.keras
def test_a_tracked_run_reads_back_from_mlflow(tmp_path: Path, store: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MLFLOW_TRACKING_URI", store)
    monkeypatch.chdir(tmp_path)  # MLflow keeps artifacts in ./mlruns next to a sqlite store
    run_dir = tmp_path / "run"
    result = CliRunner().invoke(app, ["train", str(_spec(tmp_path)), "--run-dir", str(run_dir), "--set",
                                      "nodes.h.units=6", "--track", "mlflow", "--experiment", "exp-train",
                                      "--track-models"])
    assert result.exit_code == 0, result.output
    client = _client(store)
    exp = client.get_experiment_by_name("exp-train")
    (run,) = client.search_runs([exp.experiment_id])
    assert run.info.status == "FINISHED" and run.info.run_name == "run"
    params = run.data.params
    assert params["nodes.h.units"] == "6"  # what makes this run differ
    assert (params["train.epochs"], params["data.batch_size"], params["train.seed"]) == ("3", "16", "1")
    assert (params["compile.optimizer.type"], params["compile.optimizer.learning_rate"]) == ("Adam", "0.01")
    tags = run.data.tags
    assert tags["graphspec.params"] == str(4 * 6 + 6 + 6 + 1) and tags["graphspec.macs"] == str(4 * 6 + 6)
    assert tags["graphspec.distribution"] == "none" and tags["graphspec.backend"] and tags["graphspec.version"]
    assert tags["graphspec.run_dir"] == str(run_dir.resolve())
    import json

    history = json.loads((run_dir / "history.json").read_text())
    for key in ("loss", "val_loss"):
        got = [(m.step, m.value) for m in client.get_metric_history(run.info.run_id, key)]
        assert sorted(got) == [(row["epoch"], pytest.approx(row[key], rel=1e-6)) for row in history]
    artifacts = {f.path for f in client.list_artifacts(run.info.run_id)}
    assert {"spec.yaml", "resolved.yaml", "environment.json", "model"} <= artifacts
    assert [f.path for f in client.list_artifacts(run.info.run_id, "model")] == ["model/best.keras"]


@pytest.mark.keras
def test_a_tracking_store_that_fails_does_not_stop_training(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("mlflow")
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("")
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{blocker / 'mlflow.db'}")
    monkeypatch.chdir(tmp_path)
    run_dir = tmp_path / "run"
    result = CliRunner().invoke(app, ["train", str(_spec(tmp_path)), "--run-dir", str(run_dir), "--epochs", "1",
                                      "--track", "mlflow"])
    assert result.exit_code == 0, result.output
    assert result.output.count("warning: MLflow tracking stopped") == 1, result.output
    assert (run_dir / "best.keras").exists()


@pytest.mark.keras
@pytest.mark.slow
def test_a_tracked_sweep_is_a_parent_run_with_a_child_per_trial(tmp_path: Path, store: str,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("optuna")
    monkeypatch.setenv("MLFLOW_TRACKING_URI", store)
    monkeypatch.chdir(tmp_path)  # MLflow keeps artifacts in ./mlruns next to a sqlite store
    result = CliRunner().invoke(app, ["sweep", str(_spec(tmp_path)), "--dir", str(tmp_path / "sweep"), "--set",
                                      "train.epochs=1", "--track", "mlflow", "--experiment", "exp-sweep"])
    assert result.exit_code == 0, result.output
    client = _client(store)
    exp = client.get_experiment_by_name("exp-sweep")
    runs = client.search_runs([exp.experiment_id])
    (parent,) = [r for r in runs if "mlflow.parentRunId" not in r.data.tags]
    children = [r for r in runs if r.data.tags.get("mlflow.parentRunId") == parent.info.run_id]
    assert len(runs) == 3 and len(children) == 2
    assert parent.info.status == "FINISHED" and parent.data.params["sweep.sampler"] == "grid"
    assert sorted(c.data.params["nodes.h.units"] for c in children) == ["4", "8"]  # the swept values
    assert sorted(c.info.run_name for c in children) == ["trial-0000", "trial-0001"]
    for child in children:
        assert [m.step for m in client.get_metric_history(child.info.run_id, "val_loss")] == [1]
    assert "best_val_loss" in client.get_run(parent.info.run_id).data.metrics
