"""A sweep's outputs read by the clients a user opens them with: TensorBoard (EventAccumulator and the HParams
plugin's protos: the experiment config, each trial's values and end status, the model graph), optuna-dashboard
(its WSGI app, opened with the URL docs/experiments.md gives, read through its JSON API) and the HTML report
(its title and the objective named on its axes)."""

from __future__ import annotations

import io
import json
import re
import sys
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("optuna")
pytestmark = [pytest.mark.keras]

SPEC = """\
graphspec: 1
name: clients
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
train: {epochs: 1, seed: 0}
sweep:
  objective: {metric: val_accuracy}
  sampler: grid
  params:
    nodes.hidden.units: {choice: [8, 12]}
    nodes.hidden.activation: {choice: [relu]}
    compile.optimizer.learning_rate: {uniform: [0.005, 0.01], points: 2}
"""


@pytest.fixture(scope="module")
def swept(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from graphspec.experiments import sweep as sweep_mod

    root = tmp_path_factory.mktemp("sweep")
    spec = root / "clients.yaml"
    spec.write_text(SPEC)
    folder = root / "sweep"
    settings = sweep_mod.settings_for(spec, folder=folder, trials=2)
    summary = sweep_mod.sweep(settings, workers=1, say=lambda _: None)
    assert summary.counts["completed"] == 2, summary
    return folder


def _hparams_content(logdir: Path) -> dict[str, bytes]:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    acc = EventAccumulator(str(logdir))
    acc.Reload()
    content: dict[str, bytes] = acc.PluginTagToContent("hparams")
    return content


def test_tensorboard_hparams_experiment_and_sessions(swept: Path) -> None:
    pytest.importorskip("tensorboard")
    from tensorboard.plugins.hparams import api_pb2, metadata

    experiment = metadata.parse_experiment_plugin_data(_hparams_content(swept)[metadata.EXPERIMENT_TAG])
    infos = {h.name: h for h in experiment.hparam_infos}
    units, activation = infos["nodes.hidden.units"], infos["nodes.hidden.activation"]
    assert [v.number_value for v in units.domain_discrete.values] == [8.0, 12.0]  # discrete, not an interval
    assert [v.string_value for v in activation.domain_discrete.values] == ["relu"]
    assert activation.type == api_pb2.DATA_TYPE_STRING
    rate = infos["compile.optimizer.learning_rate"].domain_interval
    assert (rate.min_value, rate.max_value) == (0.005, 0.01)
    assert {"params", "macs"} <= set(infos)
    metrics = [(m.name.group, m.name.tag) for m in experiment.metric_infos]
    assert metrics[0] == ("", "sweep/objective") and ("validation", "epoch_accuracy") in metrics

    from graphspec import compiler

    for trial in sorted(swept.glob("trial-*")):
        record = json.loads((trial / "trial.json").read_text())
        content = _hparams_content(trial / "tensorboard")
        start = metadata.parse_session_start_info_plugin_data(content[metadata.SESSION_START_INFO_TAG])
        values = {k: v.number_value if v.HasField("number_value") else v.string_value
                  for k, v in start.hparams.items()}
        assert values["nodes.hidden.units"] == record["params"]["nodes.hidden.units"]
        assert values["nodes.hidden.activation"] == "relu"
        assert values["compile.optimizer.learning_rate"] == pytest.approx(
            record["params"]["compile.optimizer.learning_rate"])
        checked = compiler.check(trial / "spec.yaml")
        info = next(iter(checked.analysis.models.values()))
        assert (values["params"], values["macs"]) == (info.params, info.macs)
        end = metadata.parse_session_end_info_plugin_data(content[metadata.SESSION_END_INFO_TAG])
        assert end.status == api_pb2.STATUS_SUCCESS


def test_tensorboard_has_the_model_graph(swept: Path) -> None:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    from tensorboard.util import tensor_util

    # The conceptual graph (the Keras model's config: what the Graphs dashboard draws, on any backend),
    # written once at the start; the op graph would need a traced batch (batches stay asynchronous).
    acc = EventAccumulator(str(swept / "trial-0000" / "tensorboard" / "train"))
    acc.Reload()
    assert "keras" in acc.PluginTagToContent("graph_keras_model")
    (event,) = acc.Tensors("keras")
    config = json.loads(tensor_util.make_ndarray(event.tensor_proto).item())
    assert [layer["name"] for layer in config["config"]["layers"]][1:] == ["flatten", "hidden", "logits"]


def test_a_failed_run_ends_its_session_as_failed(tmp_path: Path) -> None:
    from tensorboard.plugins.hparams import api_pb2, metadata

    from graphspec.run import hparams

    hparams.session_start(tmp_path, {"x": 1}, trial_id="t")
    hparams.session_end(tmp_path, "failed")
    content = _hparams_content(tmp_path)
    assert metadata.parse_session_end_info_plugin_data(
        content[metadata.SESSION_END_INFO_TAG]).status == api_pb2.STATUS_FAILURE


def _get(app: Any, path: str) -> tuple[str, bytes]:
    from wsgiref.util import setup_testing_defaults

    environ: dict[str, Any] = {"PATH_INFO": path, "REQUEST_METHOD": "GET", "wsgi.errors": sys.stderr,
                               "wsgi.input": io.BytesIO()}
    setup_testing_defaults(environ)
    status: list[str] = []
    body = b"".join(app(environ, lambda s, headers, exc=None: status.append(s)))
    return status[0], body


def test_optuna_dashboard_opens_the_study_with_the_documented_url(swept: Path) -> None:
    pytest.importorskip("optuna_dashboard")
    from optuna_dashboard import wsgi
    from optuna_dashboard._storage_url import get_storage

    docs = (Path(__file__).resolve().parents[1] / "docs" / "experiments.md").read_text()
    (command,) = re.findall(r"`optuna-dashboard (sqlite:///\S+)`", docs)
    url = command.replace("sweeps/x/", f"{swept}/")
    with pytest.raises(ValueError, match="sqlite:///"):  # what the docs said before: a bare file name
        get_storage(str(swept / "study.db"))
    app = wsgi(get_storage(url))
    status, body = _get(app, "/api/studies")
    assert status.startswith("200"), body[:500]
    (study,) = json.loads(body)["study_summaries"]
    assert study["study_name"] == "clients"
    status, body = _get(app, f"/api/studies/{study['study_id']}")
    assert status.startswith("200"), body[:500]
    detail = json.loads(body)
    assert len(detail["trials"]) == 2 and {t["state"] for t in detail["trials"]} == {"Complete"}
    assert detail["objective_names"] == ["val_accuracy"]  # the study names its metric


def test_the_report_names_the_sweep_and_the_metric(swept: Path, tmp_path: Path) -> None:
    pytest.importorskip("plotly")
    from typer.testing import CliRunner

    from graphspec.cli.app import app

    result = CliRunner().invoke(app, ["sweep", str(swept), "--report", "-o", str(tmp_path / "r.html")])
    assert result.exit_code == 0, result.output
    page = (tmp_path / "r.html").read_text()
    title = re.findall(r"<title>(.*?)</title>", page)[0]  # the page's own (plotly.js holds others)
    assert title == "sweep clients" and "`" not in re.findall(r"<h1>(.*?)</h1>", page)[0]
    assert "Objective Value" not in page
    assert re.search(r'"yaxis":\{[^{}]*"title":\{"text":"val_accuracy"\}', page), "history y axis"


def test_a_plain_run_records_its_set_values_statics_and_end(tmp_path: Path) -> None:
    pytest.importorskip("tensorboard")
    from tensorboard.plugins.hparams import api_pb2, metadata
    from typer.testing import CliRunner

    from graphspec import compiler
    from graphspec.cli.app import app

    spec = tmp_path / "plain.yaml"
    spec.write_text(SPEC.split("sweep:")[0])
    run = tmp_path / "run"
    result = CliRunner().invoke(app, ["train", str(spec), "--set", "nodes.hidden.units=9", "--epochs", "1",
                                      "--run-dir", str(run)])
    assert result.exit_code == 0, result.output
    content = _hparams_content(run / "tensorboard")
    start = metadata.parse_session_start_info_plugin_data(content[metadata.SESSION_START_INFO_TAG])
    values = {k: v.number_value for k, v in start.hparams.items()}
    info = compiler.check(spec, sets=["nodes.hidden.units=9"]).analysis.models["clients"]
    assert values == {"nodes.hidden.units": 9, "train.epochs": 1, "params": info.params, "macs": info.macs}
    end = metadata.parse_session_end_info_plugin_data(content[metadata.SESSION_END_INFO_TAG])
    assert end.status == api_pb2.STATUS_SUCCESS
