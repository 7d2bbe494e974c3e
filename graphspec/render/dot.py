"""A model's layer graph as Graphviz DOT text, like ``keras.utils.plot_model`` draws it.

Pure: works from the resolved :class:`~graphspec.analysis.graph.Graph` and the static
shape analysis (:mod:`graphspec.analysis.shapecheck`), so plotting needs no TensorFlow.
One box per node with its type (and name, and input/output shapes when asked);
a ``model:`` node is one box, or with ``expand_nested`` a dashed cluster that
holds the called model's own nodes.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from graphspec.spec import schema
from graphspec.analysis.graph import Graph, Model, Node

MAX_NESTING = 32  # model calls inside model calls (the graph stage already forbids cycles)


def quote(text: str) -> str:
    """A DOT double-quoted ID: backslashes and quotes escaped, newlines as `\\n`."""
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n").replace("\r", "") + '"'


def html(text: str) -> str:
    """Text for an HTML-like label."""
    return (text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace('"', "&quot;")
            .replace("\n", "<br/>"))


def shape_text(shape: Any) -> str:
    """`(None, 26, 26, 16)`: with the batch dimension, as Keras prints it; `?` when unknown."""
    if shape is None:
        return "?"
    return "(" + ", ".join(["None"] + ["None" if d is None else str(d) for d in shape]) + ")"


def shapes_text(shapes: list[Any]) -> str:
    if len(shapes) == 1:
        return shape_text(shapes[0])
    return "[" + ", ".join(shape_text(s) for s in shapes) + "]"


@dataclasses.dataclass
class Options:
    show_shapes: bool = False
    show_names: bool = False
    expand_nested: bool = False
    rankdir: str = "TB"
    dpi: int = 200


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


class _Writer:
    def __init__(self, graph: Graph, analysis: Any, options: Options) -> None:
        self.graph = graph
        self.infos: dict[str, Any] = dict(getattr(analysis, "nodes", {}) or {})
        self.opt = options
        self.lines: list[str] = []
        self.edges: list[tuple[str, str]] = []
        self.seen_edges: set[tuple[str, str]] = set()

    # -- which boxes a reference leads to / from -----------------------------------
    def expanded(self, node: Node, depth: int) -> Model | None:
        ns = node.spec
        if (self.opt.expand_nested and node.kind == "model" and isinstance(ns, schema.NodeSpec)
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

    # -- output ------------------------------------------------------------------------
    def edge(self, a: str, b: str) -> None:
        if (a, b) not in self.seen_edges:
            self.seen_edges.add((a, b))
            self.edges.append((a, b))

    def label(self, node: Node) -> str:
        kind = node_type(self.graph, node)
        head = f"<b>{html(node.name)}</b> ({html(kind)})" if self.opt.show_names else f"<b>{html(kind)}</b>"
        cells: list[str] = []
        if self.opt.show_shapes:
            info = self.infos.get(node.name)
            if node.kind != "input":
                ins: list[Any] = []
                for ref in node.inputs:
                    src = self.infos.get(ref.node)
                    ok = src is not None and src.outputs and ref.layer is None and ref.output < len(src.outputs)
                    ins.append(src.outputs[ref.output] if ok and src is not None and src.outputs else None)
                if node.style == "dict" and node.input_keys:
                    text = ", ".join(f"{k}: {shape_text(s)}" for k, s in zip(node.input_keys, ins))
                else:
                    text = shapes_text(ins) if ins else "?"
                cells.append(f"Input shape: <b>{html(text)}</b>")
            outs = list(info.outputs) if info is not None and info.outputs is not None else [None]
            cells.append(f"Output shape: <b>{html(shapes_text(outs))}</b>")
        span = max(1, len(cells))
        rows = [f'<tr><td colspan="{span}" bgcolor="black"><font point-size="16" color="white">{head}</font></td></tr>']
        if cells:
            rows.append("<tr>" + "".join(f'<td bgcolor="white"><font point-size="14">{c}</font></td>'
                                         for c in cells) + "</tr>")
        return '<<table border="0" cellborder="1" cellspacing="0" cellpadding="10">' + "".join(rows) + "</table>>"

    def body(self, model: Model, prefix: str, depth: int, indent: str) -> None:
        for name in model.nodes:
            node = self.graph.nodes[name]
            inner = self.expanded(node, depth)
            if inner is not None:
                title = f"{name} ({inner.name})"
                self.lines.append(f"{indent}subgraph {quote('cluster_' + prefix + name)} {{")
                self.lines.append(f'{indent}  label={quote(title)}; labeljust="l"; style="dashed";')
                self.body(inner, f"{prefix}{name}/", depth + 1, indent + "  ")
                self.lines.append(f"{indent}}}")
            else:
                self.lines.append(f"{indent}{quote(prefix + name)} [label={self.label(node)}];")
            for i, ref in enumerate(node.inputs):
                for a in self.sources(ref.node, prefix, depth):
                    for b in self.targets(name, prefix, depth, i):
                        self.edge(a, b)

    def write(self, model: Model) -> str:
        o = self.opt
        self.lines = [
            f"digraph {quote(model.name)} {{",
            f'  graph [rankdir={quote(o.rankdir)}, concentrate=true, dpi={int(o.dpi)}, splines="ortho", '
            'fontname="Helvetica"];',
            '  node [shape="plaintext", fontname="Helvetica", margin="0"];',
            '  edge [penwidth="2"];',
        ]
        self.body(model, "", 0, "  ")
        self.lines.extend(f"  {quote(a)} -> {quote(b)};" for a, b in self.edges)
        self.lines.append("}")
        return "\n".join(self.lines) + "\n"


def model_dot(graph: Graph, analysis: Any, model: str, options: Options | None = None) -> str:
    """DOT text for one model of a resolved graph (``analysis``: shapes, may be None)."""
    return _Writer(graph, analysis, options or Options()).write(graph.models[model])


__all__ = ["Options", "model_dot", "node_type", "quote", "html", "shape_text"]
