"""TensorBoard HParams for a run and a sweep, written with TensorBoard's own protos and event writer.

A run's `tensorboard/` folder gets a session: its start (the spec's `--set` values, sweep values included,
with the model's static parameter count and multiply-accumulates) and its end status. A sweep folder gets
the experiment (`hparams_config`): each swept parameter's domain (integers and choices as discrete values,
so the dashboard shows them as they are) and the metrics, the objective first. Nothing here stops a run:
a failed write is one note (the run folder stays the record).
"""

from __future__ import annotations

import dataclasses
import importlib.util
import time
from pathlib import Path
from typing import Any

import yaml

# A run's status -> the HParams plugin's session status (api.proto: UNKNOWN, SUCCESS, FAILURE, RUNNING).
STATUS = {"completed": "STATUS_SUCCESS", "early_stopped": "STATUS_SUCCESS", "pruned": "STATUS_SUCCESS",
          "failed": "STATUS_FAILURE", "interrupted": "STATUS_UNKNOWN", "running": "STATUS_RUNNING"}


def available() -> bool:
    """Whether TensorBoard (its protos and event writer) is installed; nothing is imported."""
    return importlib.util.find_spec("tensorboard") is not None


def _write(logdir: Path, summary: Any, step: int = 0) -> None:
    """One event file of one summary, written whole and atomically (no writer thread: a full disk leaves no
    open file behind, and the run folder's rule of never following a link holds for it too)."""
    from tensorboard.compat.proto import event_pb2, summary_pb2

    from graphspec.run import artifacts, tb_events

    if not isinstance(summary, summary_pb2.Summary):  # TensorFlow's own Summary class, where it is installed
        summary = summary_pb2.Summary.FromString(summary.SerializeToString())
    now = time.time()
    data = tb_events.records(event_pb2.Event(wall_time=now, file_version="brain.Event:2"),
                             event_pb2.Event(wall_time=now, step=step, summary=summary))
    artifacts.atomic_write_bytes(Path(logdir) / tb_events.file_name("hparams", now), data)


def set_values(sets: list[str]) -> dict[str, Any]:
    """`--set KEY=VALUE` overrides as HParams values (numbers and booleans typed, the rest as text)."""
    out: dict[str, Any] = {}
    for item in sets:
        key, sep, text = item.partition("=")
        if not sep:
            continue
        try:
            value = yaml.safe_load(text)
        except yaml.YAMLError:
            value = text
        out[key.strip()] = value if isinstance(value, (bool, int, float, str)) else text
    return out


def session_start(logdir: Path, values: dict[str, Any], *, trial_id: str) -> None:
    """The run's HParams: `values` (name -> bool, number or text), under `trial_id`."""
    from tensorboard.plugins.hparams import summary_v2

    _write(logdir, summary_v2.hparams_pb(values, trial_id=trial_id, start_time_secs=int(time.time())))


def session_end(logdir: Path, status: str) -> None:
    """The run's end: `status` is a run status (completed, early_stopped, pruned, failed, interrupted)."""
    from tensorboard.compat.proto import summary_pb2
    from tensorboard.plugins.hparams import api_pb2, metadata, plugin_data_pb2

    # What tensorboard.plugins.hparams.summary.session_end_pb makes, without that module's TensorFlow import.
    code = api_pb2.Status.Value(STATUS.get(status, "STATUS_UNKNOWN"))
    data = plugin_data_pb2.HParamsPluginData(
        session_end_info=plugin_data_pb2.SessionEndInfo(status=code, end_time_secs=int(time.time())))
    _write(logdir, summary_pb2.Summary(value=[summary_pb2.Summary.Value(
        tag=metadata.SESSION_END_INFO_TAG, metadata=metadata.create_summary_metadata(data),
        tensor=metadata.NULL_TENSOR)]))


@dataclasses.dataclass
class Domain:
    """One swept parameter: `values` (discrete: ints, choices) or `interval` (floats), integer or not."""

    name: str
    values: list[Any] | None = None
    interval: tuple[float, float] | None = None
    integer: bool = False


def experiment(logdir: Path, domains: list[Domain], metrics: list[tuple[str, str | None, str]],
               statics: dict[str, Any]) -> None:
    """The sweep's `hparams_config`: the parameters' domains, the static values every trial records, and
    `metrics` as (tag, run group or None, display name), the objective first."""
    from tensorboard.plugins.hparams import summary_v2 as hp  # what `api` re-exports, less its TensorFlow import

    params = []
    for d in domains:
        if d.values is not None:
            params.append(hp.HParam(d.name, hp.Discrete(d.values)))
        elif d.interval is not None and d.integer:
            params.append(hp.HParam(d.name, hp.IntInterval(int(d.interval[0]), int(d.interval[1]))))
        elif d.interval is not None:
            params.append(hp.HParam(d.name, hp.RealInterval(float(d.interval[0]), float(d.interval[1]))))
        else:
            params.append(hp.HParam(d.name))
    params.extend(hp.HParam(name) for name in statics)
    shown = [hp.Metric(tag, group=group, display_name=name) for tag, group, name in metrics]
    _write(logdir, hp.hparams_config_pb(hparams=params, metrics=shown,
                                                time_created_secs=int(time.time())))


def model_statics(checked: Any, model: str) -> dict[str, Any]:
    """The model's static parameter count and multiply-accumulates (lint's figures), where known."""
    info = checked.analysis.models.get(model) if checked.analysis is not None else None
    out: dict[str, Any] = {}
    if info is not None and info.params is not None:
        out["params"] = int(info.params)
    if info is not None and info.macs is not None:
        out["macs"] = int(info.macs)
    return out
