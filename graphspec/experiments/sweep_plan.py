"""A sweep's plan: the `sweep:` section turned into Optuna distributions, samplers, pruners and `--set`s.

Pure bookkeeping over :class:`graphspec.spec.schema_sweep.SweepSpec`; nothing here trains or opens a
storage. :func:`suggest` draws one trial's values through Optuna's ``trial.suggest_*`` API, and
:func:`trial_sets` turns them into the `--set` overrides the trial is checked and trained with.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
from typing import Any

from graphspec.errors import UsageError
from graphspec.spec.schema_sweep import (MAX_GRID, Choice, IntRange, LogUniform, SweepSpec, Uniform, auto_mode,
                                         grid_points)

DEFAULT_TRIALS = 20


@dataclasses.dataclass(frozen=True)
class Plan:
    """What every worker of a sweep agrees on."""

    sweep: SweepSpec
    metric: str
    mode: str  # min | max
    budget: int  # trials in all, over every worker and host
    epochs: int  # the pruner's resource (the spec's train.epochs)
    note: str | None = None  # e.g. trials capped by the size of the grid

    @property
    def direction(self) -> str:
        return "maximize" if self.mode == "max" else "minimize"


def plan(sweep: SweepSpec, *, trials: int | None, epochs: int) -> Plan:
    """The plan of a checked sweep; `trials` (--trials) overrides `sweep.trials`."""
    wanted = trials or sweep.trials
    note = None
    if sweep.sampler == "grid":
        size = grid_size(sweep)
        if wanted is None or wanted > size:
            if wanted is not None:
                note = f"the grid has {size} points: {size} trials, not {wanted}"
            wanted = size
    budget = wanted or DEFAULT_TRIALS
    return Plan(sweep, sweep.objective.metric, auto_mode(sweep.objective.metric, sweep.objective.mode), budget,
                max(1, epochs), note)


# -- the values of one parameter -------------------------------------------------------------------------
def _spaced(low: float, high: float, points: int, *, log: bool) -> list[float]:
    out: list[float] = []
    for i in range(points):
        if i == points - 1:
            out.append(high)  # exactly the end, not a rounding of it
        elif log:
            out.append(low * (high / low) ** (i / (points - 1)))
        else:
            out.append(low + (high - low) * i / (points - 1))
    return out


def grid_values(param: Any) -> list[Any]:
    """The values the grid sampler tries for one parameter (lint has checked the range)."""
    if isinstance(param, Choice):
        return list(param.choice)
    if isinstance(param, IntRange):
        return list(range(param.int_[0], param.int_[1] + 1, param.step))
    if isinstance(param, LogUniform):
        if param.points is None:
            raise UsageError("the grid sampler needs `points: N` on every log_uniform range")
        return _spaced(param.log_uniform[0], param.log_uniform[1], param.points, log=True)
    assert isinstance(param, Uniform)
    low, high = param.uniform
    if param.points is not None:
        return _spaced(low, high, param.points, log=False)
    if param.step is None:
        raise UsageError("the grid sampler needs `points: N` (or `step`) on every uniform range")
    n = int((high - low) / param.step + 1e-9) + 1
    return [low + i * param.step for i in range(n)]


def grid_space(sweep: SweepSpec) -> dict[str, list[Any]]:
    return {path: grid_values(param) for path, param in sweep.params.items()}


def grid_size(sweep: SweepSpec) -> int:
    """The number of grid points, from the bounds (the grid is never listed to count it); refuses a grid
    over MAX_GRID points before anything lists it (lint reports it as GS460)."""
    size = grid_points(sweep)
    if size is None:
        raise UsageError("the grid sampler needs a finite set of values for every parameter (`points: N`)")
    if size > MAX_GRID:
        raise UsageError(f"the grid has {size:,} points; a grid sweep holds at most {MAX_GRID:,}")
    return size


def suggest(trial: Any, sweep: SweepSpec) -> dict[str, Any]:
    """One trial's values, drawn through Optuna (a retried or enqueued trial gets its fixed values back)."""
    values: dict[str, Any] = {}
    for path, param in sweep.params.items():
        if isinstance(param, Choice):
            values[path] = trial.suggest_categorical(path, list(param.choice))
        elif isinstance(param, IntRange):
            values[path] = trial.suggest_int(path, param.int_[0], param.int_[1], step=param.step, log=param.log)
        elif isinstance(param, LogUniform):
            values[path] = trial.suggest_float(path, param.log_uniform[0], param.log_uniform[1], log=True)
        else:
            step = param.step if sweep.sampler != "grid" or param.points is None else None
            values[path] = trial.suggest_float(path, param.uniform[0], param.uniform[1], step=step)
    return values


def metric_value(row: dict[str, Any], metric: str) -> float | None:
    """A finite value of `metric` in an epoch's row (`val_` dropped when the run has no validation data)."""
    value = row.get(metric, row.get(metric[4:]) if metric.startswith("val_") else None)
    try:
        f = float(value) if value is not None else math.nan
    except (TypeError, ValueError):
        return None
    return f if math.isfinite(f) else None


# -- values as `--set` overrides -----------------------------------------------------------------------------
def yaml_scalar(value: Any) -> str:
    """A value as a `--set` value that reads back as the same value (strings quoted, as JSON is YAML)."""
    if isinstance(value, bool) or value is None:
        return json.dumps(value)
    if isinstance(value, float):
        return repr(value)
    if isinstance(value, int):
        return str(value)
    return json.dumps(value, ensure_ascii=False)


def trial_sets(values: dict[str, Any]) -> list[str]:
    return [f"{path}={yaml_scalar(value)}" for path, value in values.items()]


# -- Optuna's parts ---------------------------------------------------------------------------------------
def sampler(p: Plan, seed: int | None) -> Any:
    import optuna

    if p.sweep.sampler == "grid":
        class Grid(optuna.samplers.GridSampler):
            """Optuna's grid; the end of the grid is the budget's business, not `Study.stop` (which only
            works inside `Study.optimize`, and graphspec's workers ask and tell)."""

            def after_trial(self, study: Any, trial: Any, state: Any, values: Any) -> None:
                pass

        return Grid(grid_space(p.sweep), seed=seed)
    if p.sweep.sampler == "random":
        return optuna.samplers.RandomSampler(seed=seed)
    return optuna.samplers.TPESampler(seed=seed)


def pruner(p: Plan) -> Any:
    import optuna

    if p.sweep.pruner == "median":
        return optuna.pruners.MedianPruner(n_startup_trials=5, n_warmup_steps=1)
    if p.sweep.pruner == "hyperband":
        return optuna.pruners.HyperbandPruner(min_resource=1, max_resource=p.epochs)
    return optuna.pruners.NopPruner()


def fingerprint(spec_text: str, sets: list[str]) -> str:
    """What makes two sweeps the same study: the spec's text and the `--set`s it is swept with."""
    raw = json.dumps({"spec": spec_text, "sets": sets}, sort_keys=True).encode("utf-8")
    return hashlib.sha256(raw).hexdigest()[:16]
