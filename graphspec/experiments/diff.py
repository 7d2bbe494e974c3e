"""`graphspec diff A B`: what a change to a spec does to the model, as data.

Semantic, not textual: both specs go through the pure stages (extends merged, vars
and blocks expanded, edges resolved, shapes inferred), so formatting, comments, key
order, defaults written out, and a block written by hand instead of with `repeat`
are not changes. The nodes are aligned first (:mod:`graphspec.experiments.align`:
by name, then renames); then the changes are listed by path, node by node in B's
order, then removed nodes, models, and the `compile`, `expect`, `data` and `train`
sections. Each model's parameters, trainable parameters and output shapes come
from the static analysis of both sides. The result is a
:class:`graphspec.render.diff.DiffReport`; rendering is render/'s.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

from graphspec import compiler
from graphspec.analysis.graph import Graph, Node
from graphspec.diagnostics import Location, PathKey
from graphspec.errors import SpecError, UsageError
from graphspec.experiments import align as align_mod
from graphspec.experiments import diff_causes as causes_mod
from graphspec.experiments.align import Alignment, canonical
from graphspec.render.diff import Change, DiffReport, ModelDelta
from graphspec.spec import plugins as plugins_mod
from graphspec.spec.catalog import did_you_mean

RUN_SPEC = "spec.yaml"  # what a run folder keeps of its spec (graphspec.run.trainer.SPEC)
SECTIONS = ("name", "compile", "expect", "data", "train")


@dataclasses.dataclass
class Side:
    """One side of a diff: what was named, the spec file read, and the checked spec."""

    label: str
    file: str
    checked: compiler.Checked

    @property
    def graph(self) -> Graph:
        assert self.checked.graph is not None
        return self.checked.graph

    def texts(self) -> dict[str, str]:
        """The text of the spec and its bases, by file (for showing source lines)."""
        return self.checked.source.texts() if self.checked.source is not None else {}

    def location(self, path: PathKey, *, key: bool = False) -> Location | None:
        src = self.checked.source
        return src.location(path, key=key) if src is not None else None

    def model_info(self, name: str) -> Any:
        analysis = self.checked.analysis
        return None if analysis is None else analysis.models.get(name)


def spec_file(path: str | Path) -> Path:
    """The spec a diff argument names: a file, or a run folder's `spec.yaml`."""
    p = Path(path)
    if p.is_dir():
        if not (p / RUN_SPEC).is_file():
            raise UsageError(f"{p} is a folder without {RUN_SPEC}: give a spec file or a run folder")
        return p / RUN_SPEC
    if not p.exists():
        raise UsageError(f"{p}: no such spec file or run folder")
    return p


def load_side(path: str | Path, plugins: list[str] | None = None) -> Side:
    """Check one side through the pure stages; raise SpecError when its graph cannot be resolved.

    A spec whose graph resolves but that has later errors (a shape mismatch, a broken
    `expect:`, a budget) is still compared: those errors are what a reviewer wants to
    see next to the diff (they are in ``side.checked.diagnostics``).
    """
    file = spec_file(path)
    checked = compiler.check(file, plugins=plugins_mod.all_plugins(plugins))
    if checked.graph is None or checked.spec is None:
        checked.raise_for_errors()
        raise UsageError(f"{file}: the spec could not be read")  # only if no diagnostic said why
    return Side(str(path), str(file), checked)


# -- nodes ------------------------------------------------------------------------------


def _node_path(node: Node) -> PathKey:
    return node.path  # ("inputs", name) or ("nodes", name)


def _dotted(path: PathKey) -> str:
    return ".".join(str(p) for p in path)


class _Differ:
    def __init__(self, a: Side, b: Side, alignment: Alignment, only: tuple[set[str], set[str]] | None) -> None:
        self.a, self.b = a, b
        self.al = alignment
        self.back = alignment.back
        self.only = only
        self.changes: list[Change] = []

    def add(self, kind: str, path: PathKey, before: Any, after: Any, *, a: PathKey | None = None,
            b: PathKey | None = None, key: bool = False) -> None:
        self.changes.append(Change(kind, _dotted(path), before, after,
                                   self.a.location(a, key=key) if a is not None else None,
                                   self.b.location(b, key=key) if b is not None else None))

    def wanted(self, a: str | None, b: str | None) -> bool:
        if self.only is None:
            return True
        return (a is not None and a in self.only[0]) or (b is not None and b in self.only[1])

    def written(self, node: Node) -> dict[str, Any]:
        out = align_mod.view(node)
        if node.kind != "input":
            if node.spec.share is not None:  # type: ignore[union-attr]
                out = {"share": node.spec.share, **out}  # type: ignore[union-attr]
            out["inputs"] = align_mod.written_inputs(node)
        return out

    def nodes(self) -> None:
        ga, gb = self.a.graph, self.b.graph
        for name in gb.order:
            nb = gb.nodes.get(name)
            if nb is None:
                continue
            old = self.back.get(name)
            if not self.wanted(old, name):
                continue
            if old is None:
                self.add("added", _node_path(nb), None, self.written(nb), b=_node_path(nb), key=True)
                continue
            na = ga.nodes[old]
            if old != name:
                self.add("renamed", _node_path(nb), old, name, a=_node_path(na), b=_node_path(nb), key=True)
            self.node_changes(na, nb)
        for name in ga.order:
            gone = ga.nodes.get(name)
            if gone is not None and name not in self.al.pairs and self.wanted(name, None):
                self.add("removed", _node_path(gone), self.written(gone), None, a=_node_path(gone), key=True)

    def node_changes(self, na: Node, nb: Node) -> None:
        va, vb = align_mod.view(na), align_mod.view(nb)
        self.mapping(va, vb, nb.path, na.path, nb.path)
        if na.kind != "input" and (align_mod.shared(na, self.al.pairs) != align_mod.shared(nb)):
            self.add("changed", nb.path + ("share",), na.owner, nb.owner, a=na.path + ("share",),
                     b=nb.path + ("share",))
        if na.kind != "input" and align_mod.edges(na, self.al.pairs) != align_mod.edges(nb):
            self.add("changed", nb.path + ("inputs",), align_mod.written_inputs(na),
                     align_mod.written_inputs(nb), a=na.path + ("inputs",), b=nb.path + ("inputs",))

    # -- values by path ---------------------------------------------------------------------
    def mapping(self, va: Any, vb: Any, path: PathKey, pa: PathKey, pb: PathKey) -> None:
        """Changes between two values, by path: mappings key by key, anything else whole."""
        if isinstance(va, dict) and isinstance(vb, dict):
            for k in list(va) + [k for k in vb if k not in va]:
                if k not in vb:
                    self.add("removed", path + (k,), va[k], None, a=pa + (k,))
                elif k not in va:
                    self.add("added", path + (k,), None, vb[k], b=pb + (k,))
                else:
                    self.mapping(va[k], vb[k], path + (k,), pa + (k,), pb + (k,))
        elif va != vb:
            self.add("changed", path, va, vb, a=pa, b=pb)

    def section(self, key: str) -> None:
        sa = _dump(getattr(self.a.checked.spec, key))
        sb = _dump(getattr(self.b.checked.spec, key))
        if key == "data":  # a run folder's spec.yaml holds absolute data paths; the spec, relative ones
            sa, sb = _data_paths(sa, self.a.file), _data_paths(sb, self.b.file)
        if sa is None and sb is None:
            return
        if sa is None:
            self.add("added", (key,), None, _written(self.b, key), b=(key,), key=True)
        elif sb is None:
            self.add("removed", (key,), _written(self.a, key), None, a=(key,), key=True)
        else:
            self.mapping(sa, sb, (key,), (key,), (key,))

    # -- models -------------------------------------------------------------------------------
    def model_pairs(self) -> list[tuple[str | None, str | None]]:
        ma, mb = list(self.a.graph.models), list(self.b.graph.models)
        gone = [m for m in ma if m not in mb]
        new = [m for m in mb if m not in ma]
        renamed = {gone[0]: new[0]} if len(gone) == 1 and len(new) == 1 else {}
        out: list[tuple[str | None, str | None]] = []
        for m in mb:
            old = m if m in ma else next((a for a, b in renamed.items() if b == m), None)
            out.append((old, m))
        out.extend((m, None) for m in gone if m not in renamed)
        return out

    def models(self, pairs: list[tuple[str | None, str | None]]) -> None:
        for old, new in pairs:
            if new is None:
                assert old is not None
                self.add("removed", ("models", old), self.model_view(self.a, old, None), None,
                         a=("models", old), key=True)
                continue
            if old is None:
                self.add("added", ("models", new), None, self.model_view(self.b, new, None), b=("models", new),
                         key=True)
                continue
            if old != new and (self.a.graph.spec.models or self.b.graph.spec.models):
                # (a default model is named after the spec: the name's change says it)
                self.add("renamed", ("models", new), old, new, a=("models", old), b=("models", new), key=True)
            self.mapping(self.model_view(self.a, old, self.al.pairs), self.model_view(self.b, new, None),
                         ("models", new), ("models", old), ("models", new))

    def model_view(self, side: Side, name: str, rename: dict[str, str] | None) -> dict[str, Any]:
        m = side.graph.models[name]

        def refs(items: list[Any]) -> list[str]:
            return [align_mod.mapped_ref(str(r), rename) if rename else str(r) for r in items]

        view: dict[str, Any] = {"inputs": refs(m.inputs), "outputs": refs(m.outputs), "submodel": m.submodel}
        written = name in (side.graph.spec.models or {})  # else its compile and expect are the top-level ones
        for key in ("compile", "expect") if written else ():
            value = _dump(getattr(m.spec, key))
            if value is not None:
                view[key] = value
        return canonical(view)  # type: ignore[no-any-return]

    def delta(self, old: str | None, new: str | None) -> ModelDelta:
        ia = self.a.model_info(old) if old is not None else None
        ib = self.b.model_info(new) if new is not None else None
        shapes: dict[str, tuple[Any, Any]] = {}
        for out, shape in (ib.output_shapes.items() if ib is not None else ()):
            shapes[out] = (None, _shape(shape))
        if ia is not None:
            for out, shape in ia.output_shapes.items():
                key = align_mod.mapped_ref(out, self.al.pairs)
                shapes[key] = (_shape(shape), shapes.get(key, (None, None))[1])
        name = new if new is not None else old
        assert name is not None
        return ModelDelta(name, (getattr(ia, "params", None), getattr(ib, "params", None)),
                          (getattr(ia, "trainable", None), getattr(ib, "trainable", None)), shapes,
                          (old is not None, new is not None), (getattr(ia, "macs", None), getattr(ib, "macs", None)))


def _dump(value: Any) -> Any:
    """A settings object as plain data, defaults filled in (so writing a default out is no change)."""
    if value is None:
        return None
    data = value.model_dump(mode="json", exclude={"description"}) if hasattr(value, "model_dump") else value
    return canonical(data)


# Keys of `data.source` that name files or folders (relative to the spec's folder).
_PATH_KEYS = ("train", "validation", "test", "path", "paths", "root", "directory", "dir", "files")


def _data_paths(data: Any, spec: str) -> Any:
    """`data` with its source's file paths in one form: absolute, symlinks resolved (a spec against its own
    run folder names the same files); a value that names no file (a split of a hub dataset) stays as written."""
    source = data.get("source") if isinstance(data, dict) else None
    if not isinstance(source, dict):
        return data
    base = Path(spec).resolve().parent
    files = source.get("kind") in ("npz", "csv")

    def one(value: Any) -> Any:
        if not isinstance(value, str) or not value:
            return value
        path = base / value  # an absolute value stays itself
        return str(path.resolve()) if files or path.exists() else value

    fixed = {k: ([one(v) for v in value] if isinstance(value, list) else one(value)) if k in _PATH_KEYS else value
             for k, value in source.items()}
    return {**data, "source": fixed}


def _written(side: Side, key: str) -> Any:
    """A section as the (expanded) spec writes it, for a section only one side has."""
    src = side.checked.source
    data = src.data if src is not None and isinstance(src.data, dict) else {}
    return canonical(data.get(key))


def _shape(shape: Any) -> list[int | None] | None:
    return None if shape is None else list(shape)


def _members(graph: Graph, model: str | None) -> set[str]:
    if model is None or model not in graph.models:
        return set()
    return set(graph.models[model].nodes)


def diff(a: Side, b: Side, *, model: str | None = None) -> DiffReport:
    """The semantic difference of two checked specs (`model`: only that model's nodes and numbers)."""
    return compare(a, b, model=model)[0]


def compare(a: Side, b: Side, *, model: str | None = None) -> tuple[DiffReport, Alignment]:
    """:func:`diff`, and the node alignment it was computed over (A's names -> B's)."""
    alignment = align_mod.align(a.graph, b.graph)
    if model is not None and model not in a.graph.models and model not in b.graph.models:
        names = list(dict.fromkeys([*b.graph.models, *a.graph.models]))
        hint = did_you_mean(model, names)
        raise UsageError(f"--model {model}: neither spec has a model named {model!r}; they define "
                         f"{', '.join(names)}" + (f" ({hint})" if hint else ""))
    d = _Differ(a, b, alignment, None)
    pairs = d.model_pairs()
    if model is not None:
        pairs = [(x, y) for x, y in pairs if model in (x, y)]
        d.only = (set().union(*(_members(a.graph, x) for x, _ in pairs)),
                  set().union(*(_members(b.graph, y) for _, y in pairs)))
    d.nodes()
    d.models(pairs)
    for key in SECTIONS:
        if key == "name":
            if a.graph.spec.name != b.graph.spec.name and model is None:
                d.add("changed", ("name",), a.graph.spec.name, b.graph.spec.name, a=("name",), b=("name",))
            continue
        d.section(key)
    changes = d.changes
    causes = causes_mod.variable_changes(a.checked, b.checked)
    if causes:  # a changed variable first, the changes it made under it, located where their values came from
        effects = causes_mod.attribute(d.changes, causes, a.checked, b.checked)
        made = {c.cause for c in effects}  # a variable that changed nothing (unused, written out) is no change
        changes = [c for c in causes if c.path in made] + effects
    deltas = [d.delta(x, y) for x, y in pairs]
    return DiffReport(a.label, b.label, changes, deltas), alignment


def diff_paths(a: str | Path, b: str | Path, *, model: str | None = None,
               plugins: list[str] | None = None) -> tuple[DiffReport, Side, Side]:
    """Check both specs (files or run folders) and diff them; raises SpecError, UsageError."""
    errors: list[Any] = []
    sources: dict[str, str] = {}
    sides: list[Side] = []
    for path in (a, b):
        try:
            sides.append(load_side(path, plugins))
        except SpecError as exc:
            errors.extend(exc.diagnostics)
            sources.update(exc.sources)
    if errors:
        raise SpecError(errors, sources)
    report = diff(sides[0], sides[1], model=model)
    report.errors = [d for side in sides for d in side.checked.diagnostics.sorted() if d.is_error]
    return report, sides[0], sides[1]


__all__ = ["Side", "compare", "diff", "diff_paths", "load_side", "spec_file"]
