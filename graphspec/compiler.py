"""Runs the stages in order; nothing else.

``check`` runs the pure stages (source -> schema -> graph -> shapes -> checks)
and never imports TensorFlow; ``build`` adds the Keras emitter.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

from graphspec.analysis import checks
from graphspec.analysis import memory
from graphspec.analysis import graph as graph_mod
from graphspec.spec import extends
from graphspec.spec import files
from graphspec.spec import overrides
from graphspec.spec import parse
from graphspec.spec import plugins as plugins_mod
from graphspec.spec import source as source_mod
from graphspec.diagnostics import Diagnostic, Diagnostics, Location, Severity
from graphspec.errors import SpecError, UsageError
from graphspec.analysis.graph import Graph
from graphspec.spec.schema import Spec
from graphspec.spec.source import Source, SourceError


@dataclasses.dataclass
class Checked:
    """The result of the pure stages for one spec."""

    file: str
    source: Source | None
    spec: Spec | None
    graph: Graph | None
    analysis: Any  # graphspec.analysis.shapecheck.Analysis | None
    diagnostics: Diagnostics
    plugins: list[str]
    # Where files the spec names (vocabularies) may be: its folder and the --data-root folders.
    roots: files.Roots = dataclasses.field(default_factory=lambda: files.roots_for(None))
    # The spec before vars and blocks were expanded (bases merged, --set applied): where a variable is set.
    unexpanded: Source | None = None
    # The plugin layers' `graphspec_shapes` declarations, by class name (read once, by check).
    declarations: dict[str, plugins_mod.Declaration] = dataclasses.field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return not self.diagnostics.has_errors

    def raise_for_errors(self) -> None:
        if self.diagnostics.has_errors:
            sources = self.source.texts() if self.source is not None else {}
            raise SpecError(self.diagnostics.sorted(), sources)


def check(
    path: str | Path | None = None,
    *,
    text: str | None = None,
    plugins: list[str] | None = None,
    sets: list[str] | None = None,
    shapes: bool = True,
    data_roots: list[str] | None = None,
) -> Checked:
    """Validate a spec without TensorFlow. Plugins are read statically, not imported.

    Files the spec names (vocabularies) must be in its folder or one of `data_roots`.
    """
    file = str(path) if path is not None else "<string>"
    diags = Diagnostics()
    plugin_list = list(dict.fromkeys([*(plugins or []), *plugins_mod.BUILTIN]))
    roots = files.roots_for(str(path) if path is not None else None, data_roots)
    result = Checked(file, None, None, None, None, diags, plugin_list, roots)
    try:
        src = source_mod.loads(text, file) if text is not None else source_mod.load(file)
    except SourceError as exc:
        diags.add(exc.diagnostic)
        return result
    src, extends_diags = extends.apply(src)  # a variant merged over its bases: before --set
    if extends_diags:
        result.source = src
        diags.extend(extends_diags)
        return result
    try:
        if sets:
            src = overrides.apply(src, sets)
            extends.check_sets(src)
    except SourceError as exc:
        diags.add(exc.diagnostic)
        return result
    from graphspec.spec import expand  # vars and blocks: after --set, before the schema

    result.unexpanded = src
    src, expand_diags = expand.expand(src)
    result.source = src
    diags.extend(expand_diags)
    if diags.has_errors:
        return result
    plugin_layers, result.declarations, unreadable = plugins_mod.read_all(plugin_list)
    if unreadable is not None:
        diags.add(Diagnostic("GS601", Severity.ERROR, str(unreadable), Location(file, 1, 1)))
        plugin_layers = {}
    spec, parse_diags = parse.parse(src, plugin_layers=plugin_layers)
    diags.extend(parse_diags)
    if spec is None:
        return result
    diags.extend(files.check_spec(src, spec.nodes, roots))
    if spec.sweep is not None:
        diags.extend(files.check_sweep(src, spec.sweep, roots))
    if diags.has_errors:
        # Schema errors leave placeholders (parse.salvage) and argument errors leave
        # the graph intact: report its problems too (an undefined reference next to a
        # misspelt argument), but stop there. Warnings wait for a file without errors:
        # with parts left out, "unused" would be guesswork.
        graph, graph_diags = graph_mod.resolve(src, spec)
        diags.extend(d for d in graph_diags if d.is_error)
        models_lost = isinstance(src.data, dict) and src.data.get("models") is not None and not spec.models
        if graph is not None and not models_lost:
            diags.extend(d for d in checks.run(src, graph) if d.is_error)
        return result
    result.spec = spec
    graph, graph_diags = graph_mod.resolve(src, spec)
    diags.extend(graph_diags)
    if graph is None:
        return result
    result.graph = graph
    diags.extend(checks.run(src, graph))
    if shapes:
        from graphspec.analysis import shapecheck

        analysis, shape_diags = shapecheck.analyze(src, graph, set(plugin_layers), result.declarations)
        result.analysis = analysis
        diags.extend(shape_diags)
        if not shape_diags.has_errors:
            diags.extend(memory.check(src, graph, analysis, severity=Severity.WARNING, training=True))
    return result


def memory_gate(checked: Checked, *, models: list[str] | None = None, training: bool = False) -> None:
    """Refuse (GS502) a model whose weights (with `training`: also its optimizer state, one batch of activations
    and synthetic data) are over its memory budget, as the static analysis estimates them: no backend needed."""
    assert checked.graph is not None and checked.source is not None
    over = memory.check(checked.source, checked.graph, checked.analysis, severity=Severity.ERROR,
                        training=training, models=models)
    if over:
        raise SpecError(over, checked.source.texts())


def build(checked: Checked, *, models: list[str] | None = None, compile: bool = True,
          training: bool = False, values: bool = True) -> dict[str, Any]:
    """Build Keras models for a checked spec (imports Keras and the plugins).

    Refuses (GS502) a model whose weights (with `training`: also one batch of activations
    and synthetic data) are over its memory budget, before Keras allocates anything.

    `values=False` is for commands that read what a model is, never what its weights hold (`build`,
    `summary --keras`): its variables are made with their shapes, dtypes and paths but no values, by Keras's
    own deferred initialisation (a `StatelessScope` that does not initialise them). Every layer is still
    built and called by Keras; only the backend's variables and their random draws are skipped (two thirds
    of building a 3,000-layer chain or NASNetLarge on TensorFlow). A build that fails that way is built
    again the usual way, so that every error is the one a full build gives.
    """
    checked.raise_for_errors()
    assert checked.graph is not None and checked.source is not None
    memory_gate(checked, models=models, training=training)
    # Importing emit imports Keras: without it, a usage error (exit 2) that says how to install it.
    from graphspec.build import emit as _emit, plugins as plugin_loader  # noqa: F401
    from graphspec.build.backend import deep_graphs

    try:
        classes = plugin_loader.load_all(checked.plugins)
    except UsageError as exc:
        raise SpecError([Diagnostic("GS601", Severity.ERROR, str(exc), Location(checked.file))]) from None
    if models is not None:
        for name in models:
            if name not in checked.graph.models:
                from graphspec.spec.catalog import did_you_mean

                hint = did_you_mean(name, list(checked.graph.models))
                raise UsageError(f"no model named {name!r} in {checked.file}; it defines "
                                 f"{', '.join(checked.graph.models)}" + (f" ({hint})" if hint else ""))
    with deep_graphs(len(checked.graph.nodes)):
        if not values:
            from graphspec.build.backend import keras, variables_without_values

            before = list(checked.diagnostics)
            try:
                with variables_without_values():
                    built = _build(checked, classes, models, compile=False)
                return _compile(checked, built) if compile else built  # the optimizer's few variables: real
            except Exception:  # noqa: BLE001 - reported by the full build below, as it would be
                checked.diagnostics = Diagnostics(before)
                keras.backend.clear_session()
        return _build(checked, classes, models, compile)


def _build(checked: Checked, classes: dict[str, type], models: list[str] | None, compile: bool) -> dict[str, Any]:
    from graphspec.build import emit

    assert checked.graph is not None and checked.source is not None
    built, diags = emit.build_models(checked.graph, checked.source, classes, models, _declared(checked),
                                     roots=checked.roots)
    checked.diagnostics.extend(diags)
    if diags.has_errors:  # only what building found: the check's own warnings were shown already
        raise SpecError(diags.sorted(), checked.source.texts())
    return _compile(checked, built) if compile else built


def _compile(checked: Checked, built: dict[str, Any]) -> dict[str, Any]:
    from graphspec.build import emit

    assert checked.graph is not None and checked.source is not None
    for name, model in built.items():
        settings, _ = graph_mod.effective_compile(checked.graph, checked.graph.models[name])
        if settings is not None:
            try:
                emit.compile_model(model, settings)
            except Exception as exc:
                m = checked.graph.models[name]
                raise SpecError([Diagnostic("GS402", Severity.ERROR,
                                            f"Keras rejected the compile settings of `{name}`: {exc}",
                                            checked.source.location(m.path, key=True))]) from None
    return built


def _declared(checked: Checked) -> dict[str, Any]:
    """The nodes whose static shapes came from a plugin's declaration, for build to verify."""
    from graphspec.analysis.shapes import has_rule
    from graphspec.build.declared import Declared

    decls = {k: d for k, d in checked.declarations.items() if not has_rule(k)}
    out: dict[str, Any] = {}
    if checked.analysis is None or checked.graph is None or not decls:
        return out
    for name, node in checked.graph.nodes.items():
        info = checked.analysis.nodes.get(name)
        decl = decls.get(node.layer_type or "") if node.kind == "type" else None
        if decl is None or info is None or info.outputs is None or info.params is None:
            continue
        out[name] = Declared(decl.layer, Location(decl.file, decl.line, decl.col), info.outputs, info.params,
                             info.trainable)
    return out


def load(path: str | Path, *, plugins: list[str] | None = None, sets: list[str] | None = None,
         models: list[str] | None = None, data_roots: list[str] | None = None) -> dict[str, Any]:
    """Check and build a spec file: model name -> compiled keras.Model. Raises SpecError."""
    checked = check(path, plugins=plugins_mod.all_plugins(plugins), sets=sets, data_roots=data_roots)
    return build(checked, models=models)
