"""`graphspec plot --diff A B`: B's drawing with what changed since A marked.

B's model is drawn as `plot` draws it (:mod:`graphspec.analysis.drawing`); its boxes are
marked added, renamed or changed from the diff, A's removed nodes are drawn as extra
boxes where they were (edges to their aligned neighbours), and edges B gained or lost
are marked too. :mod:`graphspec.render.dot` colours what is marked.
"""

from __future__ import annotations

import dataclasses
import json
from typing import Any

from graphspec.analysis.drawing import Box, Drawing, model_drawing, node_type
from graphspec.analysis.graph import Graph
from graphspec.experiments.diff import Side, compare
from graphspec.render.diff import DiffReport

REMOVED_PREFIX = "removed/"


@dataclasses.dataclass
class Marked:
    """A drawing and its marks: box id -> (kind, note), edge -> kind."""

    drawing: Drawing
    boxes: dict[str, tuple[str, str]]
    edges: dict[tuple[str, str], str]
    report: DiffReport


def _model_edges(graph: Graph, model: str | None, rename: dict[str, str] | None = None) -> set[tuple[str, str]]:
    if model is None or model not in graph.models:
        return set()
    out = set()
    for name in graph.models[model].nodes:
        for ref in graph.nodes[name].inputs:
            a, b = ref.node, name
            if rename is not None:
                a = rename.get(a, REMOVED_PREFIX + a)
                b = rename.get(b, REMOVED_PREFIX + b)
            out.add((a, b))
    return out


def _value(value: Any, limit: int = 24) -> str:
    text = value if isinstance(value, str) else json.dumps(value, default=str)
    return text if len(text) <= limit else text[:limit - 1] + "…"


def _change_text(path: str, kind: str, before: Any, after: Any) -> str:
    """One change as a box shows it: `filters: 16 → 32`, `use_bias: true → (default)`."""
    return f"{path}: {'(default)' if kind == 'added' else _value(before)} → " \
           f"{'(default)' if kind == 'removed' else _value(after)}"


def _node_marks(report: DiffReport) -> tuple[dict[str, tuple[str, str]], list[str]]:
    """B's node names -> (kind, note); A's removed node names."""
    marks: dict[str, tuple[str, str]] = {}
    changed: dict[str, list[str]] = {}
    removed: list[str] = []
    for c in report.changes:
        parts = c.path.split(".")
        if parts[0] not in ("nodes", "inputs") or len(parts) < 2:
            continue
        name = parts[1]
        if c.kind == "removed" and len(parts) == 2:
            removed.append(name)
        elif c.kind == "added" and len(parts) == 2:
            marks[name] = ("added", "added")
        elif c.kind == "renamed":
            marks[name] = ("renamed", f"renamed from {c.before}")
        else:
            changed.setdefault(name, []).append(_change_text(".".join(parts[2:]) or parts[1], c.kind, c.before,
                                                             c.after))
    for name, what in changed.items():
        kind, note = marks.get(name, ("changed", ""))
        note = ", ".join(filter(None, [note, *dict.fromkeys(what)]))
        marks[name] = ("changed" if kind == "changed" else kind, note)
    return marks, removed


def diff_drawing(a: Side, b: Side, model: str, *, expand_nested: bool = False) -> Marked:
    """Model `model` of B drawn with the differences from A marked."""
    report, alignment = compare(a, b, model=model)
    drawing = model_drawing(b.graph, b.checked.analysis, model, expand_nested=expand_nested)
    marks, removed = _node_marks(report)
    old_model = next((x for x in a.graph.models if x == model), None)
    if old_model is None:
        gone = [x for x in a.graph.models if x not in b.graph.models]
        old_model = gone[0] if len(gone) == 1 else None
    infos = getattr(a.checked.analysis, "nodes", {}) or {}
    for name in removed:
        node = a.graph.nodes[name]
        info = infos.get(name)
        outs = list(info.outputs) if info is not None and info.outputs is not None else [None]
        box_id = REMOVED_PREFIX + name
        drawing.items.append(Box(box_id, name, node_type(a.graph, node), node.kind == "input", [], None, outs))
        marks[box_id] = ("removed", "removed")
    new_edges = _model_edges(b.graph, model)
    old_edges = _model_edges(a.graph, old_model, alignment.pairs)
    edge_marks: dict[tuple[str, str], str] = {}
    drawn = {item.id for item in drawing.items if isinstance(item, Box)}
    for edge in sorted(old_edges - new_edges):
        if edge[0] in drawn and edge[1] in drawn:
            drawing.edges.append(edge)
            edge_marks[edge] = "removed"
    for edge in new_edges - old_edges:
        edge_marks[edge] = "added"
    return Marked(drawing, {k: v for k, v in marks.items() if k in drawn}, edge_marks, report)


__all__ = ["Marked", "REMOVED_PREFIX", "diff_drawing"]
