"""The `sweep:` section of a spec: what `graphspec sweep` searches over, and for what.

Strict pydantic models, like :mod:`graphspec.spec.schema_run`, so that type errors come out of the
parse stage as located GS1xx diagnostics. What needs the rest of the spec (paths that exist, ranges
that are not empty, an objective the model logs) is checked in :mod:`graphspec.analysis.sweep_checks`;
the search itself (Optuna) is :mod:`graphspec.experiments.sweep`.

    sweep:
      objective: {metric: val_accuracy, mode: max}
      sampler: tpe            # tpe | random | grid
      pruner: median          # median | hyperband | none
      trials: 20
      params:                 # `--set` paths -> a distribution
        compile.optimizer.learning_rate: {log_uniform: [1.0e-4, 1.0e-2]}
        vars.width: {choice: [32, 64, 128]}
        nodes.dropout.rate: {uniform: [0.0, 0.5], points: 3}
        nodes.hidden.units: {int: [32, 256], step: 32}
"""

from __future__ import annotations

import math
from typing import Annotated, Any, Literal, Union

from pydantic import BaseModel, ConfigDict, Discriminator, Field, StringConstraints, Tag

Scalar = str | int | float | bool | None
_Points = Annotated[int, Field(ge=2, le=10_000)]
_Bounds = Annotated[list[float], Field(min_length=2, max_length=2)]
_IntBounds = Annotated[list[int], Field(min_length=2, max_length=2)]
# A `--set` path: dotted keys (list indices as numbers), e.g. `nodes.dense_1.units`.
SetPath = Annotated[
    str,
    StringConstraints(pattern=r"^[A-Za-z0-9_\-]+(\.[A-Za-z0-9_\-]+)*$", max_length=512),
    Field(description="A `--set` path, e.g. `compile.optimizer.learning_rate`."),
]


class _Strict(BaseModel):
    model_config = ConfigDict(strict=True, extra="forbid")


class LogUniform(_Strict):
    """A float drawn uniformly on a log scale (learning rates, weight decay)."""

    log_uniform: _Bounds = Field(description="`[low, high]`, both > 0.")
    points: _Points | None = Field(None, description="The grid sampler's number of points (log-spaced).")


class Uniform(_Strict):
    """A float drawn uniformly from a range."""

    uniform: _Bounds = Field(description="`[low, high]`.")
    step: float | None = Field(None, gt=0, description="Only multiples of this step above `low`.")
    points: _Points | None = Field(None, description="The grid sampler's number of points (evenly spaced).")


class IntRange(_Strict):
    """An integer from a range, both ends included."""

    int_: _IntBounds = Field(alias="int", description="`[low, high]`, both included.")
    step: Annotated[int, Field(ge=1)] = Field(1, description="Only `low`, `low + step`, ...")
    log: bool = Field(False, description="Draw on a log scale (`low` >= 1; `step` must be 1).")


class Choice(_Strict):
    """One of a list of values (numbers, strings, booleans or null)."""

    choice: list[Scalar] = Field(description="The values to choose from.")


_KINDS = ("log_uniform", "uniform", "int", "choice")


def _param_tag(value: Any) -> str | None:
    if isinstance(value, dict):
        found = [k for k in _KINDS if k in value]
        return found[0] if len(found) == 1 else None
    fields = getattr(type(value), "model_fields", {})
    for name in _KINDS:
        if name in fields or f"{name}_" in fields:
            return name
    return None


Param = Annotated[
    Union[
        Annotated[LogUniform, Tag("log_uniform")],
        Annotated[Uniform, Tag("uniform")],
        Annotated[IntRange, Tag("int")],
        Annotated[Choice, Tag("choice")],
    ],
    Discriminator(
        _param_tag,
        custom_error_type="invalid_param",
        custom_error_message="a swept parameter is one of `{log_uniform: [LOW, HIGH]}`, `{uniform: [LOW, HIGH]}`, "
        "`{int: [LOW, HIGH]}`, `{choice: [A, B, ...]}`",
    ),
]


class Objective(_Strict):
    """What a trial is scored by: the best value of a logged metric over its epochs."""

    metric: str = Field(description="A metric the model logs, e.g. `val_accuracy` or `val_loss`.")
    mode: Literal["auto", "min", "max"] = Field(
        "auto", description="Minimise or maximise; `auto`: maximise accuracy-like metrics, else minimise.")


class SweepSpec(_Strict):
    """A hyperparameter search over `--set` paths, run by `graphspec sweep` (see docs/experiments.md)."""

    objective: Objective = Field(description="The metric each trial is scored by.")
    sampler: Literal["tpe", "random", "grid"] = Field("tpe", description="Optuna's sampler: TPE, random or grid.")
    pruner: Literal["median", "hyperband", "none"] = Field(
        "median", description="Stops unpromising trials early from their per-epoch values.")
    trials: Annotated[int, Field(ge=1, le=1_000_000)] | None = Field(
        None, description="Trials in all, over every worker (default: 20; grid: every point).")
    params: dict[SetPath, Param] = Field(
        description="`--set` path -> the values to try; each trial sets every path.", min_length=1)


MAX_GRID = 1_000_000  # points of a grid sweep (lint's GS460 beyond)


def param_points(param: Any) -> int | None:
    """How many values the grid sampler tries for one parameter, computed from its bounds (never listed);
    None when it has no finite set of values (a range without `points` or `step`, or bounds that are not
    finite numbers)."""
    if isinstance(param, Choice):
        return len(param.choice)
    if isinstance(param, IntRange):
        low, high = param.int_
        return max(0, (high - low) // param.step + 1)
    if isinstance(param, LogUniform):
        return param.points
    assert isinstance(param, Uniform)
    if param.points is not None:
        return param.points
    if param.step is None:
        return None
    span = (param.uniform[1] - param.uniform[0]) / param.step
    if not math.isfinite(span):
        return None
    return max(0, int(span + 1e-9) + 1)


def grid_points(sweep: SweepSpec) -> int | None:
    """The size of the sweep's grid: the product of each parameter's points (None if one has no finite set)."""
    size = 1
    for param in sweep.params.values():
        n = param_points(param)
        if n is None:
            return None
        size *= max(1, n)
    return size


def auto_mode(metric: str, mode: str) -> str:
    """`min` or `max` for an objective (`auto`: accuracy-like metrics are maximised)."""
    if mode != "auto":
        return mode
    m = metric.lower()
    return "max" if any(k in m for k in ("acc", "auc", "precision", "recall", "f1", "fbeta", "iou")) else "min"
