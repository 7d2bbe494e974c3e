"""Cross-field checks of the `sweep:` section: its paths exist, its ranges hold values, its objective is logged.

:data:`graphspec.analysis.checks.CHECKS` runs :func:`check_sweep` with the other cross-field checks, so
`graphspec lint` reports a sweep that could never run before any trial is started. Each trial's sampled
values are checked again, in full, by `graphspec sweep` (:mod:`graphspec.experiments.sweep`).
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any

from graphspec.analysis.graph import Graph, effective_compile, output_names
from graphspec.analysis.run_checks import metric_names, trained_model_name
from graphspec.diagnostics import Diagnostic, PathKey, Severity
from graphspec.spec import catalog, layers
from graphspec.spec.catalog import did_you_mean
from graphspec.spec.schema_run import has_validation
from graphspec.spec.schema_sweep import (MAX_GRID, Choice, IntRange, LogUniform, SweepSpec, Uniform, auto_mode,
                                         grid_points)
from graphspec.spec.source import Source

_MISSING = object()


def set_path(text: str) -> PathKey:
    """A `--set` path as a key tuple (list indices as ints), as :mod:`graphspec.spec.overrides` reads it."""
    return tuple(int(p) if p.lstrip("-").isdigit() else p for p in text.split("."))


def _get(data: Any, path: PathKey) -> Any:
    cur = data
    for part in path:
        if isinstance(cur, dict) and part in cur:
            cur = cur[part]
        elif isinstance(cur, list) and isinstance(part, int) and -len(cur) <= part < len(cur):
            cur = cur[part]
        else:
            return _MISSING
    return cur


def _written(src: Source, path: PathKey) -> bool:
    """Whether the spec file (or a --set) wrote a value at `path` (vars and blocks included)."""
    return path in src.values or path in src.keys or path in src.overrides


def _new_key_allowed(src: Source, path: PathKey) -> bool:
    """A key the spec leaves at its default, that a `--set` may still give: a layer or optimizer argument."""
    parent, key = path[:-1], path[-1]
    value = _get(src.data, parent)
    if len(parent) == 2 and parent[0] == "nodes" and isinstance(value, dict):
        kind = value.get("type")
        if isinstance(kind, str) and kind in catalog.LAYERS:
            return key in layers.layer_params(kind)
        return not isinstance(kind, str)  # an application, op or model call: left to the trial's check
    if parent and parent[-1] == "optimizer" and isinstance(value, dict):
        name = value.get("type")
        cls = catalog.OPTIMIZERS.classes.get(name) if isinstance(name, str) else None
        return cls is None or key in cls.get("params", {})
    if parent[:1] == ("nodes",) and len(parent) == 2 and _written(src, parent):
        return True  # a block instance (expanded away): its parameters are checked with each trial
    return False


def _path_problem(src: Source, path: PathKey, text: str) -> tuple[str, str | None] | None:
    if path[:1] == ("sweep",):
        return "a sweep cannot sweep its own settings", None
    if path[:2] in src.origins and path[:1] == ("nodes",):
        return (f"`{path[1]}` is a node made by a block instance, which a `--set` cannot reach",
                "sweep the instance's parameter (`nodes.INSTANCE.PARAM`) or a `vars.NAME` instead")
    if _written(src, path) or _get(src.data, path) is not _MISSING:
        return None
    if _written(src, path[:-1]) or _get(src.data, path[:-1]) is not _MISSING:
        if _new_key_allowed(src, path):
            return None
        parent_value = _get(src.data, path[:-1])
        if path[-2:-1] == ("optimizer",) and isinstance(parent_value, str):
            cls = next((n for n in catalog.OPTIMIZERS.classes if n.lower() == parent_value.replace("_", "").lower()),
                       parent_value)
            return (f"`{'.'.join(map(str, path[:-1]))}` is the name `{parent_value}`, which takes no arguments: "
                    f"a --set of `{path[-1]}` would make it `{{type: {parent_value}, {path[-1]}: ...}}`, "
                    "which names no optimizer class",
                    f"write `optimizer: {{type: {cls}}}` to sweep its arguments")
        parent = _get(src.data, path[:-1])
        keys = [str(k) for k in parent] if isinstance(parent, dict) else []
        if path[:1] == ("vars",):
            keys = [str(p[1]) for p in src.keys if len(p) == 2 and p[0] == "vars"]
        return f"`{text}` names nothing in the spec", did_you_mean(str(path[-1]), keys)
    for i in range(len(path) - 1, 0, -1):
        if _written(src, path[:i]) or _get(src.data, path[:i]) is not _MISSING:
            missing = ".".join(map(str, path[: i + 1]))
            parent = _get(src.data, path[:i])
            keys = [str(k) for k in parent] if isinstance(parent, dict) else []
            return f"`{text}` names nothing in the spec: there is no `{missing}`", did_you_mean(str(path[i]), keys)
    top = [str(k) for k in src.data] if isinstance(src.data, dict) else []
    return f"`{text}` names nothing in the spec", did_you_mean(str(path[0]), top)


def _range_problems(param: Any, sampler: str) -> Iterable[tuple[str, str | None, bool]]:
    """(message, hint, is_warning) for one parameter's values."""
    if isinstance(param, (LogUniform, Uniform)):
        low, high = param.log_uniform if isinstance(param, LogUniform) else param.uniform
        step = param.step if isinstance(param, Uniform) else None
        if not (math.isfinite(low) and math.isfinite(high)) or (step is not None and not math.isfinite(step)):
            yield (f"the range [{low:g}, {high:g}]{f' with step {step:g}' if step is not None else ''} is not made "
                   "of finite numbers", "write both ends (and the step) as plain numbers", False)
            return
        if low > high:
            yield f"the range [{low:g}, {high:g}] is empty: low is above high", "swap the two ends", False
        elif low == high:
            yield f"the range [{low:g}, {high:g}] holds one value: nothing is searched", None, True
        if isinstance(param, LogUniform) and low <= 0:
            yield f"a log-uniform range needs low > 0, got {low:g}", "for example [1.0e-5, 1.0e-1]", False
        if isinstance(param, Uniform) and param.step is not None and low < high and param.step > high - low:
            yield f"step {param.step:g} is wider than the range [{low:g}, {high:g}]", None, True
        if sampler == "grid" and param.points is None and not (isinstance(param, Uniform) and param.step):
            yield ("the grid sampler needs a finite set of values: give this range `points: N`",
                   "or use `{choice: [...]}`", False)
    elif isinstance(param, IntRange):
        low, high = param.int_
        if low > high:
            yield f"the range [{low}, {high}] is empty: low is above high", "swap the two ends", False
        elif low == high:
            yield f"the range [{low}, {high}] holds one value: nothing is searched", None, True
        if param.log and low < 1:
            yield f"a log-scale integer range needs low >= 1, got {low}", None, False
        if param.log and param.step != 1:
            yield "a log-scale integer range takes no `step`", None, False
    elif isinstance(param, Choice):
        if not param.choice:
            yield "`choice` lists no values", "list at least one", False
        elif len({repr(v) for v in param.choice}) < len(param.choice):
            yield "`choice` lists a value twice", None, True


def _objective_problems(src: Source, graph: Graph, sweep: SweepSpec) -> Iterable[Diagnostic]:
    metric = sweep.objective.metric
    where = src.location(("sweep", "objective", "metric"))
    if graph.spec.data is None:
        yield Diagnostic("GS461", Severity.ERROR, "a sweep trains its trials, and the spec has no `data` section",
                         src.location(("sweep",), key=True), "add one (see docs/training.md)")
        return
    if metric.startswith("val_") and not has_validation(graph.spec.data):
        yield Diagnostic("GS461", Severity.ERROR, f"the objective `{metric}` needs validation data, and the data "
                         "section has none", where, "set `data.validation_split` (e.g. 0.1), or optimise the "
                         f"training metric `{metric[4:]}`")
        return
    name = trained_model_name(graph)
    model = graph.models.get(name) if name else None
    if model is None:
        return
    settings, _ = effective_compile(graph, model)
    known = metric_names(settings, output_names(model)) if settings is not None else None
    if known is None:
        return
    base = metric[4:] if metric.startswith("val_") else metric
    if base not in known:
        choices = sorted(known) + (sorted(f"val_{m}" for m in known) if has_validation(graph.spec.data) else [])
        yield Diagnostic("GS461", Severity.ERROR, f"the model logs no metric `{metric}`; it logs "
                         f"{', '.join(choices)}", where, did_you_mean(metric, choices))
    if sweep.objective.mode != "auto" and sweep.objective.mode != auto_mode(metric, "auto") and (
            "loss" in base or any(k in base for k in ("acc", "auc", "precision", "recall"))):
        yield Diagnostic("GS461", Severity.WARNING, f"`mode: {sweep.objective.mode}` for `{metric}`: the sweep "
                         f"looks for its {'lowest' if sweep.objective.mode == 'min' else 'highest'} value",
                         src.location(("sweep", "objective", "mode")), f"did you mean `mode: "
                         f"{auto_mode(metric, 'auto')}`?")


def check_sweep(src: Source, graph: Graph) -> Iterable[Diagnostic]:
    """The sweep's paths exist, its ranges are not empty, its objective is a metric the model logs."""
    sweep = graph.spec.sweep
    if sweep is None:
        return
    for text, param in sweep.params.items():
        at: PathKey = ("sweep", "params", text)
        problem = _path_problem(src, set_path(text), text)
        if problem is not None:
            yield Diagnostic("GS460", Severity.ERROR, problem[0], src.location(at, key=True), problem[1])
        for message, hint, warning in _range_problems(param, sweep.sampler):
            yield Diagnostic("GS460", Severity.WARNING if warning else Severity.ERROR, message,
                             src.location(at), hint)
    yield from _grid_problems(src, sweep)
    yield from _objective_problems(src, graph, sweep)


def _grid_problems(src: Source, sweep: SweepSpec) -> Iterable[Diagnostic]:
    """A grid's size, computed from the bounds (never listed): at most MAX_GRID points; more points than
    `trials` is a warning (the grid is not covered)."""
    if sweep.sampler != "grid":
        return
    size = grid_points(sweep)
    if size is None:
        return  # a parameter without a finite set of values: reported with its range
    where = src.location(("sweep", "params"), key=True)
    if size > MAX_GRID:
        yield Diagnostic("GS460", Severity.ERROR, f"the grid has {_count(size)} points; a grid sweep holds at most "
                         f"{MAX_GRID:,}", where, "use fewer `points`, a wider `step`, or the `random` or `tpe` sampler")
    elif sweep.trials is not None and sweep.trials < size:
        yield Diagnostic("GS460", Severity.WARNING, f"the grid has {size:,} points and `trials: {sweep.trials:,}` "
                         f"tries only {sweep.trials:,} of them", src.location(("sweep", "trials")),
                         "raise `trials`, or leave it out to try every point")


def _count(n: int) -> str:
    """`1,000,000` or, for a number too long to read, `about 10^18`."""
    return f"{n:,}" if n < 10**12 else f"about 10^{len(str(n)) - 1}"
