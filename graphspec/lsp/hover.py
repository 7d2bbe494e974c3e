"""What the server says about a place in a spec: hovers and inlay hints.

Every figure comes from the static analysis (:mod:`graphspec.analysis.shapecheck`):
the same output shapes, parameters and multiply-accumulates that `lint` and
`summary --static` report. Where a value came from is
:func:`graphspec.experiments.resolve.explain`, as `resolve --explain` prints it.
"""

from __future__ import annotations

import re
from typing import Any

from lsprotocol import types as lsp

from graphspec.diagnostics import PathKey
from graphspec.lsp.convert import position
from graphspec.lsp.snapshot import Entry, Snapshot, is_ref, lookup, ref_name, var_names
from graphspec.render.diff import flow
from graphspec.render.lint import human_bytes
from graphspec.spec import catalog, layers

# Keys of a node that are not arguments of its layer.
NODE_KEYS = frozenset({"type", "share", "model", "application", "op", "inputs", "block", "repeat", "first", "fresh",
                       "call", "trainable", "name", "dtype"})


def shape_text(shape: Any, batched: bool = True) -> str:
    """`(None, 16, 16, 64)`: a static shape with its batch dimension, as Keras prints it."""
    if shape is None:
        return "?"
    dims = (None, *shape) if batched else tuple(shape)
    return "(" + ", ".join("None" if d is None else str(d) for d in dims) + (",)" if len(dims) == 1 else ")")


def outputs_text(info: Any) -> str:
    if info is None or info.outputs is None:
        return "?"
    return ", ".join(shape_text(s, info.batched) for s in info.outputs)


def _count(n: int | None) -> str:
    return "?" if n is None else f"{n:,}"


def node_lines(snap: Snapshot, name: str) -> list[str]:
    """A node of the resolved graph: type, outputs, parameters, MACs, inputs."""
    graph, analysis = snap.graph, snap.analysis
    node = graph.nodes.get(name) if graph is not None else None
    if node is None:
        return [f"**{name}** (not in the last complete analysis)"]
    info = analysis.nodes.get(name) if analysis is not None else None
    kind = node.layer_type or node.kind if hasattr(node, "layer_type") else node.kind
    lines = [f"**{name}** · `{kind}`" if node.kind != "input" else f"**{name}** · input"]
    lines.append(f"output: `{outputs_text(info)}`")
    if info is not None and node.kind != "input":
        if info.owner != name:
            lines.append(f"params: shared with `{info.owner}`")
        else:
            non = None if info.params is None or info.trainable is None else info.params - info.trainable
            lines.append(f"params: {_count(info.params)} ({_count(info.trainable)} trainable, "
                         f"{_count(non)} non-trainable)")
        lines.append(f"MACs: {_count(info.macs)}")
    if node.inputs:
        lines.append("inputs: " + ", ".join(f"`{r}`" for r in node.inputs))
    return lines


def model_lines(snap: Snapshot, name: str) -> list[str]:
    """A model's totals, as `lint` and `summary` print them."""
    info = snap.analysis.models.get(name) if snap.analysis is not None else None
    if info is None:
        return [f"**model {name}** (not in the last complete analysis)"]
    lines = [f"**model {name}**", f"params: {_count(info.params)}"
             + (f" ({human_bytes(info.weight_bytes)} of float32 weights)" if info.weight_bytes is not None else "")]
    lines.append(f"trainable: {_count(info.trainable)}, non-trainable: {_count(info.non_trainable)}")
    lines.append(f"MACs: {_count(info.macs)}")
    for out, shape in info.output_shapes.items():
        lines.append(f"output `{out}`: `{shape_text(shape)}`")
    if info.unchecked:
        lines.append("not checked statically: " + ", ".join(f"`{n}`" for n in info.unchecked[:5]))
    return lines


def instance_nodes(snap: Snapshot, instance: str) -> list[str]:
    """The nodes a block instance expands to, in graph order."""
    src = snap.checked.source if snap.checked is not None else None
    if src is None or snap.graph is None:
        return []
    mark = f"in `{instance}`: an instance of block"
    return [n for n, node in snap.graph.nodes.items()
            if n == instance or any(note.startswith(mark) for note in src.origins.get(tuple(node.path), ()))]


def instance_lines(snap: Snapshot, instance: str, block: Any) -> list[str]:
    names = instance_nodes(snap, instance)
    analysis = snap.analysis
    params = 0
    known = analysis is not None
    for n in names:
        info = analysis.nodes.get(n) if analysis is not None else None
        if info is None or info.params is None:
            known = False
        elif info.owner == n:
            params += info.params
    lines = [f"**{instance}** · instance of block `{block}`", f"expands to {len(names)} node(s)"
             + (": " + ", ".join(f"`{n}`" for n in names[:8]) + (", ..." if len(names) > 8 else "") if names else "")]
    lines.append(f"params: {params:,}" if known else "params: ?")
    if instance in (snap.graph.nodes if snap.graph is not None else {}):
        info = analysis.nodes.get(instance) if analysis is not None else None
        lines.append(f"output: `{outputs_text(info)}`")
    return lines


def block_node_lines(snap: Snapshot, block: str, name: str) -> list[str]:
    """A node inside a block's definition: what it became in each instance of the block."""
    node = lookup(snap.data, ("blocks", block, "nodes", name))
    layer = node.get("type") or node.get("block") if isinstance(node, dict) else None
    lines = [f"**{name}** · `{layer}` in block `{block}`" if layer else f"**{name}** in block `{block}`"]
    src = snap.checked.source if snap.checked is not None else None
    if src is None or snap.graph is None:
        return lines
    mark = re.compile(r"in `([^`]+)`: an instance of block `" + re.escape(block) + "`")
    found = []
    for n, gnode in snap.graph.nodes.items():
        notes = src.origins.get(tuple(gnode.path), ())
        m = mark.match(notes[0]) if notes else None
        if m is not None and n == f"{m.group(1)}_{name}":
            info = snap.analysis.nodes.get(n) if snap.analysis is not None else None
            found.append(f"`{n}` → `{outputs_text(info)}`")
    lines.append(f"{len(found)} instance(s)" + (": " if found else ""))
    lines.extend(found[:8] + ([f"... and {len(found) - 8} more"] if len(found) > 8 else []))
    return lines


def explain_lines(snap: Snapshot, path: PathKey) -> list[str]:
    """Where the value at `path` came from, as `resolve --explain` says it."""
    if snap.checked is None or snap.checked.source is None or snap.merged is None:
        return []
    from graphspec.experiments.resolve import Resolved, explain
    from graphspec.render import explain as render_explain

    try:
        e = explain(Resolved(snap.file, [], snap.merged, snap.merged, snap.checked), ".".join(map(str, path)))
    except Exception:  # noqa: BLE001 - a path the expanded spec does not have (a block's own node): no origin
        return []
    return ["```", render_explain.text(e).rstrip("\n"), "```"]


def argument_type(layer: str, arg: str, param: dict[str, Any]) -> str:
    """The values graphspec accepts for a layer argument, in words (`positive int`, `one of 'valid', 'same'`)."""
    check = layers.checker_for(layer, arg, param)
    if check.__qualname__ == "one_of.<locals>.check" and check.__closure__:
        return "one of " + ", ".join(f"`{flow(c)}`" for c in check.__closure__[0].cell_contents)
    name = getattr(check, "__name__", "")
    if name in ("<lambda>", "check", "json_value", ""):
        default = param.get("default")
        return type(default).__name__ if default is not None and not param.get("opaque_default") else "any"
    return name.replace("_", " ")


def argument_summary(layer: str, arg: str, param: dict[str, Any]) -> str:
    """`type: positive int · required`, `type: boolean · default: true`: an argument's type and default."""
    kind = f"type: {argument_type(layer, arg, param)}"
    if param.get("required"):
        return f"{kind} · required"
    return f"{kind} · default: `{flow(param.get('default'))}`"


def argument_lines(snap: Snapshot, path: PathKey) -> list[str]:
    """A layer argument: its value, what Keras says of it, and where the value came from."""
    node = lookup(snap.data, path[:-1])
    arg = str(path[-1])
    layer = node.get("type") if isinstance(node, dict) else None
    graph_node = snap.graph.nodes.get(str(path[1])) if snap.graph is not None and path[0] == "nodes" else None
    if not isinstance(layer, str) and graph_node is not None:
        layer = getattr(graph_node, "layer_type", None)  # a variant's node: the base gives its type
    lines = [f"**{arg}**" + (f" · argument of `{layer}`" if isinstance(layer, str) else "")]
    entry = catalog.LAYERS.get(layer) if isinstance(layer, str) else None
    params = layers.layer_params(layer) if entry is not None and isinstance(layer, str) else {}
    if arg in params and isinstance(layer, str):
        meaning = catalog.arg_doc(layer, arg)
        if meaning:
            lines.append(meaning)
        lines.append(argument_summary(layer, arg, params[arg]))
    elif entry is not None:
        lines.append(f"not an argument of `{layer}`" + (f" ({hint})" if (hint := catalog.did_you_mean(
            arg, list(params))) else ""))
    if entry is not None and entry.get("doc"):
        lines.append(f"`{layer}`: {entry['doc']}")
    return lines + explain_lines(snap, path)


def variable_lines(snap: Snapshot, name: str) -> list[str]:
    data = snap.merged.data if snap.merged is not None else snap.data
    raw_vars = data.get("vars") if isinstance(data, dict) else None
    if not isinstance(raw_vars, dict) or name not in raw_vars:
        return [f"**${name}**: a block parameter or an unknown variable"]
    lines = [f"**${name}** = `{flow(raw_vars[name])}`"]
    src = snap.merged
    if src is not None:
        loc = src.location(("vars", name))
        lines.append(f"set at {loc.file}:{loc.line}:{loc.col}")
        for old_loc, old in reversed(src.history.get(("vars", name), ())):
            lines.append(f"replacing `{flow(old)}` from {old_loc.file}:{old_loc.line}")
    return lines


def _var_at(snap: Snapshot, entry: Entry, col: int) -> str | None:
    value = lookup(snap.data, entry.path)
    if entry.key or not isinstance(value, str) or "$" not in value:
        return None
    text = snap.raw.line_text(entry.span.line) if snap.raw is not None else ""
    piece = text[entry.span.col - 1:entry.span.end_col - 1]
    start = piece.find(value) if piece.find(value) >= 0 else (1 if piece[:1] in "'\"" else 0)
    for name, offset in var_names(value):
        first = entry.span.col + start + offset
        if first - 1 <= col <= first + len(name):
            return name
    return None


def hover_lines(snap: Snapshot, line: int, col: int) -> list[str] | None:
    """The hover text at a 1-based line and column, or None for nothing to say."""
    entry = snap.at(line, col)
    if entry is None:
        return None
    path, data = entry.path, snap.data
    var = _var_at(snap, entry, col)
    if var is not None:
        return variable_lines(snap, var)
    if len(path) == 2 and path[0] == "vars":
        return variable_lines(snap, str(path[1]))
    if len(path) == 2 and path[0] in ("nodes", "inputs") and entry.key:
        node = lookup(data, path)
        if isinstance(node, dict) and "block" in node:
            return instance_lines(snap, str(path[1]), node.get("block"))
        return node_lines(snap, str(path[1]))
    if len(path) == 3 and path[0] == "nodes" and path[2] == "type":
        return node_lines(snap, str(path[1]))
    if len(path) == 2 and path[0] == "models" and entry.key:
        return model_lines(snap, str(path[1]))
    if len(path) == 4 and path[0] == "nodes" and path[2:] == ("layer", "model"):  # a wrapper over a sub-model
        wrapped = lookup(data, path)
        if isinstance(wrapped, str):
            return [f"`{path[1]}` applies model `{wrapped}` to every time step", "", *model_lines(snap, wrapped)]
    if path == ("name",) and snap.analysis is not None:
        return [line for m in snap.analysis.models for line in [*model_lines(snap, m), ""]][:-1] or None
    if is_ref(path) and not entry.key and isinstance(lookup(data, path), str) and path[0] != "blocks":
        return node_lines(snap, ref_name(lookup(data, path)))
    if len(path) == 3 and path[0] == "nodes" and str(path[2]) not in NODE_KEYS:
        return argument_lines(snap, path)
    if len(path) == 5 and path[0] == "blocks" and path[2] == "nodes" and str(path[4]) not in NODE_KEYS:
        return argument_lines(snap, path)
    if len(path) == 4 and path[0] == "blocks" and path[2] == "nodes" and entry.key:
        return block_node_lines(snap, str(path[1]), str(path[3]))
    if len(path) == 2 and path[0] == "blocks" and entry.key:
        uses = [n for n, v in (data.get("nodes") or {}).items() if isinstance(v, dict) and v.get("block") == path[1]]
        return [f"**block {path[1]}**", "instances: " + (", ".join(f"`{u}`" for u in uses) or "none in this file")]
    return None


def hover(snap: Snapshot, pos: lsp.Position) -> lsp.Hover | None:
    lines = hover_lines(snap, pos.line + 1, pos.character + 1)
    if not lines:
        return None
    return lsp.Hover(contents=lsp.MarkupContent(kind=lsp.MarkupKind.Markdown, value=_join(lines)))


def _join(lines: list[str]) -> str:
    """Markdown with a hard line break after each line (outside code blocks)."""
    out: list[str] = []
    fence = False
    for line in lines:
        if line == "```":
            fence = not fence
            out.append(line)
        else:
            out.append(line if fence else line + "  ")
    return "\n".join(out).rstrip()


# -- inlay hints ----------------------------------------------------------------------------------------


def _end_of(snap: Snapshot, line: int) -> lsp.Position:
    text = snap.raw.line_text(line) if snap.raw is not None else ""
    return position(line, len(text) + 1)


def model_anchor(snap: Snapshot, name: str, path: PathKey) -> int | None:
    """The line a model's totals are shown on: its key under `models:`, else the spec's `name:`."""
    span = snap.key_span(tuple(path)) if path and path[0] == "models" else None
    span = span or snap.key_span(("name",)) or snap.key_span(("nodes",))
    return span.line if span is not None else None


def inlay_hints(snap: Snapshot, first: int, last: int) -> list[lsp.InlayHint]:
    """`→ (None, 16, 16, 64)` after each node of this file, and each model's parameters (1-based lines)."""
    out: list[lsp.InlayHint] = []
    graph, analysis = snap.graph, snap.analysis
    if graph is None or analysis is None or snap.raw is None:
        return out
    data = snap.data if isinstance(snap.data, dict) else {}
    named = [(section, name) for section in ("inputs", "nodes") if isinstance(data.get(section), dict)
             for name in data[section]]
    for section, name in named:
        span = snap.key_span((section, name))
        info = analysis.nodes.get(name)
        if span is None or info is None or not first <= span.line <= last:
            continue
        out.append(lsp.InlayHint(position=_end_of(snap, span.line), label=f"→ {outputs_text(info)}",
                                 kind=lsp.InlayHintKind.Type, padding_left=True))
    for name, model in graph.models.items():
        info = analysis.models.get(name)
        line = model_anchor(snap, name, model.path)
        if info is None or line is None or not first <= line <= last:
            continue
        out.append(lsp.InlayHint(position=_end_of(snap, line), label=f"{_count(info.params)} params",
                                 padding_left=True))
    out.sort(key=lambda h: (h.position.line, h.position.character))
    return out
