"""What a plot of one model shows, as plain data: boxes, dashed clusters for called models, edges.

Computed from the resolved :class:`~graphspec.analysis.graph.Graph` and the static
shape analysis; :mod:`graphspec.render.dot` turns it into DOT text without knowing
any stage. A ``model:`` node is one box, or with ``expand_nested`` a cluster that
holds the called model's own nodes (edges then lead into and out of its boxes).
"""

from __future__ import annotations

import dataclasses
from typing import Any

from graphspec.analysis.graph import Graph, Model, Node
from graphspec.spec import schema

MAX_NESTING = 32  # model calls inside model calls (the graph stage already forbids cycles)

Shape = tuple[int | None, ...] | None


@dataclasses.dataclass
class Box:
    """One node: its id in the drawing, name, what it is, and (statically known) shapes."""

    id: str
    name: str
    kind: str
    is_input: bool
    input_shapes: list[Shape]
    input_keys: list[str] | None
    output_shapes: list[Shape]


@dataclasses.dataclass
class Cluster:
    """A called model drawn with its own nodes inside."""

    id: str
    title: str
    items: list[Box | Cluster]


@dataclasses.dataclass
class Drawing:
    """One model's drawing: its name, the boxes and clusters in order, and the edges between box ids."""

    name: str
    items: list[Box | Cluster]
    edges: list[tuple[str, str]]


def node_type(graph: Graph, node: Node) -> str:
    """What the box says a node is: its layer class, application, op, or called model."""
    ns = node.spec
    if node.kind == "input":
        return "InputLayer"
    assert isinstance(ns, schema.NodeSpec)
    if node.kind == "model":
        return f"{ns.model}" + (" (fresh)" if ns.fresh else "")
    if node.kind == "share":
        owner = graph.nodes.get(node.owner or "")
        layer = owner.layer_type if owner is not None else None
        return f"{layer or '?'}, shares {node.owner or ns.share}"
    if node.kind == "op":
        return str(getattr(ns, "op", None) or "op")
    return node.layer_type or node.kind


class _Walker:
    def __init__(self, graph: Graph, analysis: Any, expand_nested: bool) -> None:
        self.graph = graph
        self.infos: dict[str, Any] = dict(getattr(analysis, "nodes", {}) or {})
        self.expand_nested = expand_nested
        self.edges: list[tuple[str, str]] = []
        self.seen_edges: set[tuple[str, str]] = set()

    def expanded(self, node: Node, depth: int) -> Model | None:
        ns = node.spec
        if (self.expand_nested and node.kind == "model" and isinstance(ns, schema.NodeSpec)
                and ns.model in self.graph.models and depth < MAX_NESTING):
            return self.graph.models[ns.model]
        return None

    def sources(self, name: str, prefix: str, depth: int) -> list[str]:
        """IDs of the boxes whose output is node `name`'s output."""
        node = self.graph.nodes.get(name)
        if node is None:
            return []
        inner = self.expanded(node, depth)
        if inner is None:
            return [prefix + name]
        out: list[str] = []
        for ref in inner.outputs:
            out.extend(self.sources(ref.node, f"{prefix}{name}/", depth + 1))
        return out

    def targets(self, name: str, prefix: str, depth: int, index: int) -> list[str]:
        """IDs of the boxes that receive input `index` of node `name`."""
        node = self.graph.nodes[name]
        inner = self.expanded(node, depth)
        if inner is None:
            return [prefix + name]
        if not inner.inputs:
            return []
        ref = inner.inputs[min(index, len(inner.inputs) - 1)]
        return self.targets(ref.node, f"{prefix}{name}/", depth + 1, 0)

    def edge(self, a: str, b: str) -> None:
        if (a, b) not in self.seen_edges:
            self.seen_edges.add((a, b))
            self.edges.append((a, b))

    def box(self, node: Node, box_id: str) -> Box:
        ins: list[Shape] = []
        for ref in node.inputs:
            src = self.infos.get(ref.node)
            if ref.layer is not None:  # a layer of an application
                found = (getattr(src, "layers", None) or {}).get(ref.layer)
                ins.append(found[0] if found else None)
                continue
            ok = src is not None and src.outputs and ref.output < len(src.outputs)
            ins.append(src.outputs[ref.output] if ok and src is not None and src.outputs else None)
        info = self.infos.get(node.name)
        app_layers = getattr(info, "layers", None)
        if node.kind == "application" and not node.inputs and app_layers:
            ins = [next(iter(app_layers.values()))[0]]  # a stand-alone application: its own input
        outs = list(info.outputs) if info is not None and info.outputs is not None else [None]
        keys = list(node.input_keys) if node.style == "dict" and node.input_keys else None
        return Box(box_id, node.name, node_type(self.graph, node), node.kind == "input", ins, keys, outs)

    def items(self, model: Model, prefix: str, depth: int) -> list[Box | Cluster]:
        out: list[Box | Cluster] = []
        for name in model.nodes:
            node = self.graph.nodes[name]
            inner = self.expanded(node, depth)
            if inner is not None:
                out.append(Cluster("cluster_" + prefix + name, f"{name} ({inner.name})",
                                   self.items(inner, f"{prefix}{name}/", depth + 1)))
            else:
                out.append(self.box(node, prefix + name))
            for i, ref in enumerate(node.inputs):
                for a in self.sources(ref.node, prefix, depth):
                    for b in self.targets(name, prefix, depth, i):
                        self.edge(a, b)
        return out


def model_drawing(graph: Graph, analysis: Any, model: str, *, expand_nested: bool = False) -> Drawing:
    """The drawing of one model of a resolved graph (``analysis``: static shapes, may be None)."""
    walker = _Walker(graph, analysis, expand_nested)
    items = walker.items(graph.models[model], "", 0)
    return Drawing(model, items, walker.edges)
