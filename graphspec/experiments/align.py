"""Aligning the nodes of two graphs before they are compared (as Fiddle aligns two configs).

First by name; then a node of A left over is paired with a node of B left over when
they compute the same thing (type, arguments) from the same inputs, once the inputs
themselves are aligned: that pair is a rename. Walking B in topological order lets a
rename of a whole chain (a block instance renamed) align in one pass; a tie between
identical candidates is broken by their consumers, and what stays tied is paired in
order.
"""

from __future__ import annotations

import dataclasses
import json
from typing import Any

from graphspec.analysis.graph import Graph, Node, Ref
from graphspec.spec import catalog, schema


def canonical(value: Any) -> Any:
    """A value in a form where equal meaning is equal data: `1.0` and `1` alike, tuples as lists."""
    if isinstance(value, bool) or value is None or isinstance(value, str):
        return value
    if isinstance(value, float) and value.is_integer() and abs(value) < 2**53:
        return int(value)
    if isinstance(value, dict):
        return {str(k): canonical(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [canonical(v) for v in value]
    return value


# Arguments Keras expands from one int to one per spatial axis (`pool_size: 2` is `(2, 2)`).
_PER_AXIS = {"kernel_size", "pool_size", "strides", "dilation_rate", "size"}


def _per_axis(value: Any) -> Any:
    """`[k, k, ...]` -> `k`: the int Keras would expand to it."""
    if isinstance(value, list) and value and all(isinstance(v, int) and not isinstance(v, bool) and v == value[0]
                                                for v in value):
        return value[0]
    return value


def without_defaults(type_name: str | None, args: dict[str, Any]) -> dict[str, Any]:
    """A layer's arguments less those equal to the layer's default in the catalog (the table the importer's
    defaults come from): `{pool_size: 2}` of a MaxPooling2D is no argument, `use_bias: true` of a Dense none.

    Per-axis arguments are compared as Keras reads them (`2` is `[2, 2]`). Unknown layers keep every argument.
    """
    entry = catalog.LAYERS.get(type_name) if type_name is not None else None
    if entry is None:
        return args
    params = entry.get("params") or {}
    out: dict[str, Any] = {}
    for key, value in args.items():
        param = params.get(key) or {}
        default = param.get("default", _MISSING) if not param.get("required") else _MISSING
        if key in _PER_AXIS or isinstance(default, list):
            value = _per_axis(value)
            default = _per_axis(canonical(default)) if default is not _MISSING else default
        if default is not _MISSING and canonical(default) == value:
            continue
        out[key] = value
    if "pool_size" in params and out.get("strides") is not None and params.get("strides", {}).get("default", 0) is None:
        pool = out.get("pool_size", _per_axis(canonical(params["pool_size"].get("default"))))
        if out["strides"] == pool:  # a pooling layer's strides default to its pool size
            del out["strides"]
    return out


_MISSING = object()


def view(node: Node) -> dict[str, Any]:
    """What a node computes, without its name and edges: `{type: Dense, units: 64, ...}`.

    Arguments equal to the layer's defaults are left out: writing a default out is no change.
    """
    ns = node.spec
    if isinstance(ns, schema.InputSpec):
        return canonical(ns.model_dump(mode="json", exclude={"description"}))  # type: ignore[no-any-return]
    out: dict[str, Any] = {}
    for key in ("type", "model", "application", "op"):
        if getattr(ns, key) is not None:
            out[key] = getattr(ns, key)
    if ns.fresh:
        out["fresh"] = True
    if ns.call:
        out["call"] = canonical(dict(ns.call))
    args = canonical(dict(ns.args))
    out.update(without_defaults(ns.type, args) if ns.type is not None and ns.model is None else args)
    return out


def edges(node: Node, rename: dict[str, str] | None = None) -> tuple[str, tuple[Any, ...]]:
    """A node's inputs (style, then key and reference of each), node names mapped through `rename`."""
    style = "single" if node.style == "none" and len(node.inputs) == 1 else node.style
    refs: list[Any] = []
    for i, ref in enumerate(node.inputs):
        name = ref.node if rename is None else rename.get(ref.node, "\0" + ref.node)
        text = str(dataclasses.replace(ref, node=name))
        refs.append((node.input_keys[i], text) if node.style == "dict" else text)
    return style, tuple(refs)


def shared(node: Node, rename: dict[str, str] | None = None) -> str | None:
    """The node whose layer a `share:` node calls, mapped through `rename`."""
    if node.owner is None:
        return None
    return node.owner if rename is None else rename.get(node.owner, "\0" + node.owner)


def written_inputs(node: Node) -> Any:
    """A node's inputs as a spec writes them: `x`, `[a, b]`, `{query: q, value: v}`."""
    refs = [str(r) for r in node.inputs]
    if node.style == "dict":
        out: dict[str, Any] = {}
        for key, ref in zip(node.input_keys, refs):
            out[key] = ref if key not in out else (out[key] if isinstance(out[key], list) else [out[key]]) + [ref]
        return out
    return refs[0] if len(refs) == 1 and node.style in ("single", "none") else refs


@dataclasses.dataclass
class Alignment:
    """A's node names -> B's; `renamed` is the subset whose names differ."""

    pairs: dict[str, str]
    renamed: dict[str, str]

    @property
    def back(self) -> dict[str, str]:
        return {b: a for a, b in self.pairs.items()}


def _signature(node: Node) -> str:
    return json.dumps([node.kind == "input", view(node)], sort_keys=True, default=str)


class _Aligner:
    def __init__(self, ga: Graph, gb: Graph) -> None:
        self.ga, self.gb = ga, gb
        self.pairs: dict[str, str] = {}
        self.back: dict[str, str] = {}
        self.cons_a = ga.consumers()
        self.cons_b = gb.consumers()

    def pair(self, a: str, b: str) -> None:
        self.pairs[a] = b
        self.back[b] = a

    def by_name(self) -> None:
        for name, node in self.ga.nodes.items():
            other = self.gb.nodes.get(name)
            if other is not None and (node.kind == "input") == (other.kind == "input"):
                self.pair(name, name)

    def key(self, node: Node, rename: dict[str, str] | None) -> tuple[Any, ...]:
        return _signature(node), edges(node, rename), shared(node, rename)

    def renames(self) -> None:
        # A's unpaired nodes by what they compute and from which (A) inputs; B's node looks
        # itself up with its inputs mapped back to A's names: equal keys, aligned inputs.
        index: dict[tuple[Any, ...], list[str]] = {}
        for name in self.ga.order:
            if name not in self.pairs and name in self.ga.nodes:
                index.setdefault(self.key(self.ga.nodes[name], None), []).append(name)
        if not index:
            return
        todo = [b for b in self.gb.order if b not in self.back and b in self.gb.nodes]
        for settle in (False, True):  # unique matches until nothing moves; then ties, in order
            progress = True
            while progress and todo:
                progress = False
                left: list[str] = []
                for b in todo:
                    found = [a for a in index.get(self.key(self.gb.nodes[b], self.back), ()) if a not in self.pairs]
                    if len(found) > 1:
                        theirs = sorted(self.cons_b.get(b, []))
                        found = [a for a in found if self.consumers(a) == theirs] or found
                    if len(found) == 1 or (settle and found):
                        self.pair(found[0], b)
                        progress = True
                    else:
                        left.append(b)
                todo = left

    def consumers(self, a: str) -> list[str]:
        return sorted(self.pairs.get(c, "\0" + c) for c in self.cons_a.get(a, []))


def align(ga: Graph, gb: Graph) -> Alignment:
    """Pair A's nodes with B's: by name, then renames (same type, arguments and aligned inputs)."""
    aligner = _Aligner(ga, gb)
    aligner.by_name()
    aligner.renames()
    pairs = aligner.pairs
    return Alignment(pairs, {a: b for a, b in pairs.items() if a != b})


def mapped_ref(text: str, rename: dict[str, str]) -> str:
    """A reference (`node`, `node.1`, `node.layer`) with its node name mapped."""
    ref = Ref.parse(text)
    return str(dataclasses.replace(ref, node=rename.get(ref.node, ref.node)))


__all__ = ["Alignment", "align", "canonical", "edges", "mapped_ref", "shared", "view", "written_inputs"]
