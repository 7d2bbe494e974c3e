"""Cross-field rules: compile settings against models' outputs, and the like.

Each check is a small function taking the resolved graph and returning
diagnostics; :data:`CHECKS` lists them in the order they run.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from graphspec.spec import catalog
from graphspec.spec import layers
from graphspec.spec.catalog import did_you_mean
from graphspec.diagnostics import Diagnostic, PathKey, Severity
from graphspec.analysis.graph import Graph, Model, effective_compile, output_names
from graphspec.analysis.preprocessing_checks import check_preprocessing
from graphspec.analysis.run_checks import check_run
from graphspec.analysis.sweep_checks import check_sweep
from graphspec.spec.source import Source

Check = Callable[[Source, Graph], Iterable[Diagnostic]]


def _named(table: catalog.Table, value: Any, path: PathKey, src: Source) -> Iterable[Diagnostic]:
    if value is None:
        return
    if isinstance(value, str):
        if table.resolve(value) is None:
            code = "GS115" if any(c in value for c in ".:/") else "GS117"
            message = (f"{table.kind} {value!r} is not allowed: names are looked up in graphspec's table of "
                       "Keras built-ins, never imported" if code == "GS115" else f"unknown {table.kind} {value!r}")
            yield Diagnostic(code, Severity.ERROR, message, src.location(path),
                             table.suggest(value) if code == "GS117" else None)
        return
    found = layers.config_problem(table, value)
    if found:
        where, (code, message, hint) = found
        if code == "GS114" and where == ("type",):
            code = "GS117"
        yield Diagnostic(code, Severity.ERROR, message, src.location(path + where, key=code == "GS111"), hint)


def _per_output(value: Any, path: PathKey, outputs: list[str] | None, what: str, src: Source,
                model: Model) -> Iterable[tuple[Any, PathKey, str | None]]:
    """Yield (item, path, output name) for a value that may be one, a list or a mapping."""
    if isinstance(value, dict) and "type" not in value:
        for key, item in value.items():
            if outputs is not None and key not in outputs:
                yield from ()
                hint = did_you_mean(key, outputs)
                raise _Report(Diagnostic(
                    "GS400", Severity.ERROR,
                    f"{what} names output `{key}`, but model `{model.name}` has outputs {', '.join(outputs)}",
                    src.location(path + (key,), key=True), hint))
            yield item, path + (key,), key
    elif isinstance(value, list) and what != "metrics":
        if outputs is not None and len(value) != len(outputs):
            raise _Report(Diagnostic(
                "GS402", Severity.ERROR,
                f"{what} lists {len(value)} entries but model `{model.name}` has {len(outputs)} outputs "
                f"({', '.join(outputs)})", src.location(path)))
        for i, item in enumerate(value):
            yield item, path + (i,), outputs[i] if outputs else None
    elif isinstance(value, list):
        for i, item in enumerate(value):
            yield item, path + (i,), None
    else:
        yield value, path, None


class _Report(Exception):
    def __init__(self, diag: Diagnostic) -> None:
        self.diag = diag


def check_compile(src: Source, graph: Graph) -> Iterable[Diagnostic]:
    """Optimizer, losses, loss weights and metrics name real things and real outputs."""
    if graph.spec.compile is not None and graph.spec.compile.model is not None:
        if graph.spec.compile.model not in graph.models:
            yield Diagnostic("GS200", Severity.ERROR, f"`compile.model: {graph.spec.compile.model}` names no model",
                             src.location(("compile", "model")), did_you_mean(graph.spec.compile.model, list(graph.models)))
    seen: set[PathKey] = set()
    for model in graph.models.values():
        settings, path = effective_compile(graph, model)
        if settings is None:
            continue
        outputs = output_names(model)
        diags: list[Diagnostic] = []
        if path not in seen:
            diags.extend(_named(catalog.OPTIMIZERS, settings.optimizer, path + ("optimizer",), src))
        try:
            covered: set[str] = set()
            for item, p, out in _per_output(settings.loss, path + ("loss",), outputs, "loss", src, model):
                if out:
                    covered.add(out)
                if path not in seen:
                    diags.extend(_named(catalog.LOSSES, item, p, src))
            if (isinstance(settings.loss, dict) and "type" not in settings.loss and outputs
                    and len(outputs) > 1):
                for out in outputs:
                    if out not in covered:
                        diags.append(Diagnostic("GS401", Severity.WARNING,
                                                f"output `{out}` of model `{model.name}` has no loss",
                                                src.location(path + ("loss",), key=True)))
            if settings.loss_weights is not None:
                for _ in _per_output(settings.loss_weights, path + ("loss_weights",), outputs, "loss_weights",
                                     src, model):
                    pass
            if settings.metrics is not None:
                for item, p, _ in _per_output(settings.metrics, path + ("metrics",), outputs, "metrics", src, model):
                    for i, m in enumerate(item if isinstance(item, list) else [item]):
                        mp = p + (i,) if isinstance(item, list) else p
                        if path not in seen:
                            diags.extend(_named(catalog.METRICS, m, mp, src))
        except _Report as r:
            diags.append(r.diag)
        seen.add(path)
        yield from diags


CHECKS: list[Check] = [check_compile, check_run, check_preprocessing, check_sweep]


def run(src: Source, graph: Graph) -> list[Diagnostic]:
    out: list[Diagnostic] = []
    for check in CHECKS:
        out.extend(check(src, graph))
    return out
