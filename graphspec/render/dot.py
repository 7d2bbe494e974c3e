"""A model's layer graph as Graphviz DOT text, like ``keras.utils.plot_model`` draws it.

Pure rendering of a drawing (:mod:`graphspec.analysis.drawing` computes it from the
resolved graph and static shapes): one box per node with its type (and name, and
input/output shapes when asked), dashed clusters for expanded model calls.
"""

from __future__ import annotations

import dataclasses
from typing import Any


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


# `plot --diff`: the colour of each kind of change (boxes' title bars, edges).
MARK_COLORS = {"added": "#2e7d32", "removed": "#c62828", "changed": "#ef6c00", "renamed": "#1565c0"}


@dataclasses.dataclass
class Options:
    show_shapes: bool = False
    show_names: bool = False
    expand_nested: bool = False
    rankdir: str = "TB"
    dpi: int = 200
    # `plot --diff`: box id -> (kind of change, note); edge -> kind. Kinds are MARK_COLORS' keys.
    marks: dict[str, tuple[str, str]] = dataclasses.field(default_factory=dict)
    edge_marks: dict[tuple[str, str], str] = dataclasses.field(default_factory=dict)


class _Writer:
    def __init__(self, options: Options) -> None:
        self.opt = options
        self.lines: list[str] = []

    def label(self, box: Any) -> str:
        kind = box.kind
        head = f"<b>{html(box.name)}</b> ({html(kind)})" if self.opt.show_names else f"<b>{html(kind)}</b>"
        cells: list[str] = []
        if self.opt.show_shapes:
            if not box.is_input:
                ins = box.input_shapes
                if box.input_keys:
                    text = ", ".join(f"{k}: {shape_text(s)}" for k, s in zip(box.input_keys, ins))
                else:
                    text = shapes_text(ins) if ins else "?"
                cells.append(f"Input shape: <b>{html(text)}</b>")
            cells.append(f"Output shape: <b>{html(shapes_text(box.output_shapes))}</b>")
        span = max(1, len(cells))
        color = "black"
        mark = self.opt.marks.get(box.id)
        if mark is not None:
            color = MARK_COLORS.get(mark[0], "black")
            if mark[1]:
                head += f'<br/><font point-size="12">{html(mark[1])}</font>'
        rows = [f'<tr><td colspan="{span}" bgcolor="{color}"><font point-size="16" color="white">{head}</font></td></tr>']
        if cells:
            rows.append("<tr>" + "".join(f'<td bgcolor="white"><font point-size="14">{c}</font></td>'
                                         for c in cells) + "</tr>")
        return '<<table border="0" cellborder="1" cellspacing="0" cellpadding="10">' + "".join(rows) + "</table>>"

    def body(self, items: list[Any], indent: str) -> None:
        for item in items:
            if getattr(item, "items", None) is not None:  # a cluster
                self.lines.append(f"{indent}subgraph {quote(item.id)} {{")
                self.lines.append(f'{indent}  label={quote(item.title)}; labeljust="l"; style="dashed";')
                self.body(item.items, indent + "  ")
                self.lines.append(f"{indent}}}")
            else:
                self.lines.append(f"{indent}{quote(item.id)} [label={self.label(item)}];")

    def write(self, drawing: Any) -> str:
        o = self.opt
        self.lines = [
            f"digraph {quote(drawing.name)} {{",
            f'  graph [rankdir={quote(o.rankdir)}, concentrate=true, dpi={int(o.dpi)}, splines="ortho", '
            'fontname="Helvetica"];',
            '  node [shape="plaintext", fontname="Helvetica", margin="0"];',
            '  edge [penwidth="2"];',
        ]
        self.body(drawing.items, "  ")
        for a, b in drawing.edges:
            kind = o.edge_marks.get((a, b))
            style = "" if kind is None else (f' [color="{MARK_COLORS.get(kind, "black")}"'
                                             + (', style="dashed"' if kind == "removed" else "") + "]")
            self.lines.append(f"  {quote(a)} -> {quote(b)}{style};")
        self.lines.append("}")
        return "\n".join(self.lines) + "\n"


def drawing_dot(drawing: Any, options: Options | None = None) -> str:
    """DOT text for a drawing (:class:`graphspec.analysis.drawing.Drawing`: boxes, clusters, edges)."""
    return _Writer(options or Options()).write(drawing)


__all__ = ["MARK_COLORS", "Options", "drawing_dot", "quote", "html", "shape_text", "shapes_text"]
