"""Cross-field checks of the `data:` and `train:` sections against the model they train.

:data:`graphspec.analysis.checks.CHECKS` runs them with the other cross-field checks.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from graphspec.analysis.graph import Graph, Model, effective_compile, output_names
from graphspec.diagnostics import Diagnostic, Severity
from graphspec.spec import catalog
from graphspec.spec.catalog import did_you_mean, snake
from graphspec.spec.schema_run import (
    KERAS_DATASETS,
    SEQUENCE_DATASETS,
    SKLEARN_DATASETS,
    DataSpec,
    TrainSpec,
    has_validation,
)
from graphspec.spec.source import Source


def trained_model_name(graph: Graph, requested: str | None = None) -> str | None:
    """The model `train` trains: `requested`, `train.model`, or the spec's only public model."""
    spec = graph.spec
    if requested:
        return requested if requested in graph.models else None
    if spec.train is not None and spec.train.model is not None:
        return spec.train.model if spec.train.model in graph.models else None
    public = [m.name for m in graph.public_models()]
    return public[0] if len(public) == 1 else None


def input_names(model: Model) -> list[str]:
    return [ref.node if ref.layer is None else ref.layer for ref in model.inputs]


def _metric_name(value: Any) -> str | None:
    """The log key Keras uses for a metric given by name or `{type: ...}` (None if unknown)."""
    if isinstance(value, str):
        return value
    if isinstance(value, dict):
        if isinstance(value.get("name"), str):
            return str(value["name"])
        if isinstance(value.get("type"), str):
            return snake(value["type"])
    return None


def misspelt_metrics(compile_settings: Any) -> list[str]:
    """The metrics named in `compile.metrics` that are no metric (GS117 reports each)."""
    metrics = compile_settings.metrics
    items = [i for v in metrics.values() for i in (v if isinstance(v, list) else [v])] if isinstance(
        metrics, dict) else list(metrics or [])
    return [i for i in items if isinstance(i, str) and catalog.METRICS.resolve(i) is None]


def metric_names(compile_settings: Any, outputs: list[str] | None) -> set[str] | None:
    """The training log keys (without `val_`) a compiled model reports, or None if unknown."""
    names = {"loss"}
    multi = outputs is not None and len(outputs) > 1
    if outputs is None:
        return None
    if multi:
        names.update(f"{o}_loss" for o in outputs)
    metrics = compile_settings.metrics
    if metrics is None:
        return names
    if isinstance(metrics, dict):
        for out, items in metrics.items():
            for item in items if isinstance(items, list) else [items]:
                n = _metric_name(item)
                if n is None:
                    return None
                names.add(f"{out}_{n}" if multi else n)
    else:
        for item in metrics:
            n = _metric_name(item)
            if n is None:
                return None
            if multi:
                names.update(f"{o}_{n}" for o in outputs)
            else:
                names.add(n)
    return names


def check_run(src: Source, graph: Graph) -> Iterable[Diagnostic]:
    """Data and training settings against the model they train."""
    spec = graph.spec
    data: DataSpec | None = spec.data
    train: TrainSpec | None = spec.train
    if data is None and train is None:
        return

    def diag(code: str, message: str, path: tuple[Any, ...], hint: str | None = None, *, key: bool = False,
             warning: bool = False) -> Diagnostic:
        return Diagnostic(code, Severity.WARNING if warning else Severity.ERROR, message,
                          src.location(path, key=key), hint)

    if train is not None and train.model is not None and train.model not in graph.models:
        yield diag("GS410", f"`train.model: {train.model}` names no model", ("train", "model"),
                   did_you_mean(train.model, list(graph.models)))
        return

    if data is not None:
        source = data.source
        kind = getattr(source, "kind", None)
        known = {"keras": KERAS_DATASETS, "sklearn": SKLEARN_DATASETS}.get(kind or "")
        name = getattr(source, "name", None)
        if known is not None and name not in known:
            yield diag("GS413", f"unknown {kind} dataset {name!r}; known: {', '.join(known)}",
                       ("data", "source", "name") if not isinstance(src.data.get("data", {}).get("source"), str)
                       else ("data", "source"), did_you_mean(str(name), list(known)))
        if kind == "keras" and name in SEQUENCE_DATASETS and getattr(source, "maxlen", None) is None:
            yield diag("GS410", f"{name} has sequences of different lengths: set `maxlen` to batch them",
                       ("data", "source"), "for example `maxlen: 200`")
        if getattr(source, "validation", None) and data.validation_split > 0:
            yield diag("GS410", "the source has a validation set; `validation_split` is ignored",
                       ("data", "validation_split"), warning=True)

    name = trained_model_name(graph)
    model = graph.models.get(name) if name else None
    if model is None:
        return
    settings, _ = effective_compile(graph, model)
    if settings is None:
        yield diag("GS410", f"model `{model.name}` has no compile settings (optimizer, loss) to train with",
                   ("data",) if data is not None else ("train",),
                   "add a `compile:` section", key=True)
    elif settings.loss is None:
        yield diag("GS410", f"model `{model.name}` has no loss to train with", ("compile",),
                   "add `loss:` to the compile settings", key=True)
    ins = input_names(model)
    outs = output_names(model)
    if data is not None:
        for section, names, what in (("inputs", ins, "input"), ("outputs", outs, "output")):
            mapping = getattr(data, section) or {}
            if names is None:
                continue
            for key in mapping:
                if key not in names:
                    yield diag("GS411", f"`data.{section}` maps `{key}`, but model `{model.name}` has no "
                               f"{what} `{key}` (its {what}s: {', '.join(names)})",
                               ("data", section, key), did_you_mean(key, names), key=True)
        if outs is not None:
            for key in data.transforms:
                if key not in ins and key not in outs:
                    yield diag("GS411", f"`data.transforms` names `{key}`, which is neither an input nor an "
                               f"output of model `{model.name}` (inputs: {', '.join(ins)}; outputs: "
                               f"{', '.join(outs)})", ("data", "transforms", key),
                               did_you_mean(key, ins + outs), key=True)

    if train is None or settings is None:
        return
    known_metrics = metric_names(settings, outs)
    validation = has_validation(data)
    monitors: list[tuple[str, tuple[Any, ...]]] = []
    if train.checkpoint.monitor is not None:
        monitors.append((train.checkpoint.monitor, ("train", "checkpoint", "monitor")))
    for field in ("early_stopping", "reduce_lr_on_plateau"):
        cb = getattr(train, field)
        if cb is not None and cb.monitor is not None:
            monitors.append((cb.monitor, ("train", field, "monitor")))
    for monitor, path in monitors:
        if monitor.startswith("val_") and not validation and data is not None:
            yield diag("GS412", f"`{monitor}` needs validation data, and the data section has none", path,
                       "set `data.validation_split` (e.g. 0.1), or monitor the training metric "
                       f"`{monitor[4:]}`")
            continue
        if known_metrics is None:
            continue
        base = monitor[4:] if monitor.startswith("val_") else monitor
        if base not in known_metrics and base != "learning_rate":
            # a suggestion is never built from a misspelt metric: that one is reported (GS117) and fixed first
            typos = misspelt_metrics(settings)
            real = {m for m in known_metrics if not any(m == t or m.endswith(f"_{t}") for t in typos)}
            choices = sorted(real) + (sorted(f"val_{m}" for m in real) if validation else [])
            message = f"the model logs no metric `{monitor}`; it logs {', '.join(choices)}"
            hint = did_you_mean(monitor, choices)
            if typos:
                fixed = [catalog.METRICS.suggest(t) for t in typos]
                message += (f" (and `{'`, `'.join(typos)}` in `compile.metrics`, which "
                            f"{'is' if len(typos) == 1 else 'are'} no metric)")
                hint = (f"fix the metric name{'s' if len(typos) > 1 else ''} in `compile.metrics` first"
                        + (f" ({'; '.join(f for f in fixed if f)})" if any(fixed) else "")
                        + (f"; then {hint}" if hint else ""))
            yield diag("GS412", message, path, hint)
    if train.lr_schedule is not None and train.reduce_lr_on_plateau is not None:
        yield diag("GS410", "`lr_schedule` sets the learning rate every epoch, overriding `reduce_lr_on_plateau`",
                   ("train", "lr_schedule"), "use one of them", key=True, warning=True)
