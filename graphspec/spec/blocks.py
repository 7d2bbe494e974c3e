"""Block definitions (`blocks:`): read and checked before any instance of them is expanded.

A block is a named group of nodes with inputs, outputs (default: its last node) and parameters
(`null`: required, else a default). :mod:`graphspec.spec.expand` expands its instances.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from pydantic import ValidationError

from graphspec.spec import schema
from graphspec.spec.catalog import did_you_mean
from graphspec.diagnostics import PathKey
from graphspec.spec.expressions import Reporter

MAX_DEPTH = 16  # blocks inside blocks

RESERVED = ("block", "inputs", "repeat", "first", "each")


@dataclasses.dataclass
class Block:
    """A checked block definition."""

    name: str
    inputs: list[str]
    outputs: list[str]
    required: list[str]
    defaults: dict[str, Any]
    nodes: dict[str, Any]


class _Blocks(schema.Strict):
    """The `blocks:` and `vars:` sections, validated before anything is expanded."""

    blocks: dict[schema.Name, schema.BlockSpec] | None = None
    vars: dict[schema.Name, Any] | None = None


def read_blocks(rep: Reporter, data: dict[str, Any]) -> tuple[dict[str, Block], set[str]]:
    """The blocks `data` defines: (the usable ones by name, the names of broken ones; "*": all of them).

    Problems are reported to `rep`.
    """
    blocks: dict[str, Block] = {}
    broken: set[str] = set()
    raw = {k: data[k] for k in ("blocks", "vars") if k in data}
    try:
        _Blocks.model_validate(raw)
    except ValidationError as exc:
        from graphspec.spec.parse import schema_diagnostics

        bad = schema_diagnostics(rep.src, exc, _Blocks)
        rep.diags.extend(bad)
        for err in exc.errors(include_url=False):
            loc = err["loc"]
            if len(loc) >= 2 and loc[0] == "blocks":
                broken.add(str(loc[1]))
            elif len(loc) == 1 and loc[0] == "blocks":
                broken.add("*")
    specs = data.get("blocks")
    if not isinstance(specs, dict) or "*" in broken:
        return blocks, broken
    for name, spec in specs.items():
        if name in broken or not isinstance(spec, dict):
            continue
        block = _read_block(rep, specs, name, spec)
        if block is None:
            broken.add(name)
        else:
            blocks[name] = block
    return blocks, broken


def _read_block(rep: Reporter, specs: dict[str, Any], name: str, spec: dict[str, Any]) -> Block | None:
    """One block definition, checked; None if it is broken (reported to `rep`)."""
    path: PathKey = ("blocks", name)
    ok = True
    raw_inputs = spec.get("inputs", "x")  # a block with one input may leave it out: it is `x`
    inputs = [raw_inputs] if isinstance(raw_inputs, str) else list(raw_inputs)
    nodes: dict[str, Any] = spec["nodes"]
    if not inputs:
        rep.error("GS126", f"block `{name}` has no inputs", path + ("inputs",))
        ok = False
    if len(set(inputs)) != len(inputs):
        rep.error("GS126", f"block `{name}` names an input twice", path + ("inputs",))
        ok = False
    if not nodes:
        rep.error("GS126", f"block `{name}` has no nodes", path + ("nodes",))
        return None
    local: list[str] = []
    for n, node in nodes.items():
        if n in inputs:
            rep.error("GS126", f"block `{name}`: `{n}` is both an input and a node", path + ("nodes", n),
                      key=True, hint="give the node another name")
            ok = False
        if isinstance(node, dict) and isinstance(node.get("block"), str) and node["block"] in specs:
            outs = _outputs_of(specs, node["block"])
            local.extend([n] if len(outs) <= 1 else [f"{n}_{o}" for o in outs])
        else:
            local.append(n)
    raw_out = spec.get("outputs")
    if raw_out is None:
        outputs = _outputs_of(specs, name)
    else:
        outputs = [raw_out] if isinstance(raw_out, str) else list(raw_out)
        if not outputs:
            rep.error("GS126", f"block `{name}` has no outputs", path + ("outputs",))
            ok = False
        for i, o in enumerate(outputs):
            p = path + ("outputs",) + ((i,) if isinstance(raw_out, list) else ())
            if o in inputs:
                rep.error("GS126", f"block `{name}`: output `{o}` is one of its inputs; outputs must be "
                          "nodes of the block", p)
                ok = False
            elif o not in local:
                rep.error("GS126", f"block `{name}` has no node `{o}` to output", p,
                          hint=did_you_mean(o, local) or f"its nodes: {', '.join(local)}")
                ok = False
        if len(set(outputs)) != len(outputs):
            rep.error("GS126", f"block `{name}` names an output twice", path + ("outputs",))
            ok = False
    raw_params = spec.get("params", {})
    if isinstance(raw_params, list):
        required, defaults = list(raw_params), {}
        pnames = required
    else:
        required = [k for k, v in raw_params.items() if v is None]
        defaults = {k: v for k, v in raw_params.items() if v is not None}
        pnames = list(raw_params)
    for i, p in enumerate(pnames):
        ppath = path + ("params",) + ((i,) if isinstance(raw_params, list) else (p,))
        if p in RESERVED:
            rep.error("GS126", f"block `{name}`: `{p}` cannot be a parameter name: instances use it",
                      ppath, key=not isinstance(raw_params, list),
                      hint=f"reserved: {', '.join(RESERVED)}")
            ok = False
    if len(set(pnames)) != len(pnames):
        rep.error("GS126", f"block `{name}` names a parameter twice", path + ("params",))
        ok = False
    if not ok:
        return None
    return Block(name, inputs, outputs, required, defaults, nodes)


def _outputs_of(specs: dict[str, Any], name: str, seen: frozenset[str] = frozenset()) -> list[str]:
    """A block's output names, read from its definition (without validating it)."""
    spec = specs.get(name)
    if not isinstance(spec, dict) or name in seen or len(seen) > MAX_DEPTH:
        return []
    raw = spec.get("outputs")
    if isinstance(raw, str):
        return [raw]
    if isinstance(raw, list):
        return [o for o in raw if isinstance(o, str)]
    nodes = spec.get("nodes")
    if isinstance(nodes, dict) and nodes:
        last = list(nodes)[-1]
        node = nodes[last]
        if isinstance(node, dict) and isinstance(node.get("block"), str):
            inner = _outputs_of(specs, node["block"], seen | {name})
            return [last] if len(inner) <= 1 else [f"{last}_{o}" for o in inner]
        return [last]
    return []
