"""Where a value of an expanded spec comes from: the variables and block parameters it was computed from.

A value written `$filters` in a block's body is the instance's `filters:` (or its `first:` / `each:` entry,
or the block's default); that may be `${width + 8}`, which is the variable `width`, set in a file that
`extends` the base. :func:`trace` follows such a value back, step by step, through instances nested in
instances (the expansion notes name each instance, :mod:`graphspec.spec.expand`), to the variables at
the end. `resolve --explain` shows the steps; `diff` uses them to report a changed variable as the cause
of the changes it made.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Iterable
from typing import Any

from graphspec.diagnostics import PathKey

_REF = re.compile(r"\$\{([^{}]*)\}|\$([A-Za-z_][A-Za-z0-9_\-]*)")
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_\-]*")
_INSTANCE = re.compile(r"^in `([^`]+)`(?:, repetition (\d+) of \d+)?: an instance of block `([^`]+)`")


@dataclasses.dataclass(frozen=True)
class Instance:
    """One block instance a node was expanded from: its expanded name, repetition (1-based) and block."""

    name: str
    rep: int | None
    block: str


@dataclasses.dataclass(frozen=True)
class Step:
    """A variable (`kind` "variable") or a block parameter (`kind` "parameter", of `instance`) a value
    refers to: the path where it is written in the unexpanded spec, and what is written there."""

    kind: str
    name: str
    path: PathKey
    written: Any
    instance: Instance | None = None


def names(written: Any) -> list[str]:
    """The names a written value refers to (`$x`, `${x * y}`), in order, each once; any depth."""
    out: list[str] = []
    if isinstance(written, str):
        if "$" in written:
            for m in _REF.finditer(written):
                out.extend(n for n in _NAME.findall(m.group(1) or m.group(2) or "") if n not in out)
    elif isinstance(written, dict):
        for v in written.values():
            out.extend(n for n in names(v) if n not in out)
    elif isinstance(written, list):
        for v in written:
            out.extend(n for n in names(v) if n not in out)
    return out


def instances(notes: Iterable[str]) -> list[Instance]:
    """The block instances the notes of an expanded spec's value name (innermost first), outermost first."""
    out = []
    for note in notes:
        m = _INSTANCE.match(note)
        if m:
            out.append(Instance(m.group(1), int(m.group(2)) if m.group(2) else None, m.group(3)))
    return out[::-1]


def _get(data: Any, path: PathKey) -> Any:
    for part in path:
        if isinstance(data, dict) and part in data:
            data = data[part]
        elif isinstance(data, list) and isinstance(part, int) and 0 <= part < len(data):
            data = data[part]
        else:
            return None
    return data


def instance_path(data: Any, chain: list[Instance]) -> PathKey | None:
    """Where the innermost instance of `chain` is written: `nodes.NAME`, or a node of the enclosing block."""
    if not chain:
        return None
    inner = chain[-1]
    local = inner.name
    if len(chain) > 1:  # named `<outer>_<local>` (`<outer>_<rep>_<local>` in a repetition)
        outer = chain[-2]
        prefix = f"{outer.name}_" + (f"{outer.rep}_" if outer.rep is not None else "")
        local = inner.name.removeprefix(prefix)
    where: PathKey = ("nodes",) if len(chain) == 1 else ("blocks", chain[-2].block, "nodes")
    node = _get(data, where + (local,))
    block = node.get("block") if isinstance(node, dict) else None
    if isinstance(block, str) and (block == inner.block or "$" in block):  # `block: $unit` names it by a variable
        return where + (local,)
    return None


def parameter(data: Any, chain: list[Instance], name: str) -> Step | None:
    """Where the innermost instance's parameter `name` is given: `each`, `first`, the instance, the default."""
    inner = chain[-1]
    path = instance_path(data, chain)
    node = _get(data, path) if path is not None else None
    if path is not None and isinstance(node, dict):
        each = node.get("each")
        if inner.rep is not None and isinstance(each, dict) and isinstance(each.get(name), list) and (
                len(each[name]) >= inner.rep):
            return Step("parameter", name, path + ("each", name, inner.rep - 1), each[name][inner.rep - 1], inner)
        first = node.get("first")
        if inner.rep in (None, 1) and isinstance(first, dict) and name in first:
            return Step("parameter", name, path + ("first", name), first[name], inner)
        if name in node:
            return Step("parameter", name, path + (name,), node[name], inner)
    default: PathKey = ("blocks", inner.block, "params", name)
    params = _get(data, default[:-1])
    if isinstance(params, dict) and name in params:
        return Step("parameter", name, default, params[name], inner)
    return None


def trace(data: Any, written: Any, chain: list[Instance], _seen: frozenset[str] = frozenset()) -> list[Step]:
    """Every variable and block parameter `written` (a value in the body of `chain`'s innermost instance,
    or at the top level) was computed from, nearest first, back to the variables."""
    out: list[Step] = []
    variables = _get(data, ("vars",))
    for name in names(written):
        params = _get(data, ("blocks", chain[-1].block, "params")) if chain else None
        if chain and isinstance(params, dict) and name in params:  # a block's parameters shadow variables
            step = parameter(data, chain, name)
            if step is not None:
                out.append(step)
                out.extend(trace(data, step.written, chain[:-1], _seen))
                continue
        if isinstance(variables, dict) and name in variables and name not in _seen:
            out.append(Step("variable", name, ("vars", name), variables[name]))
            out.extend(trace(data, variables[name], [], _seen | {name}))
    return out


def node_instances(origins: dict[PathKey, tuple[str, ...]], node: str) -> list[Instance]:
    """The instances an expanded node was made by (from the expanded spec's notes)."""
    return instances(origins.get(("nodes", node), ()))


__all__ = ["Instance", "Step", "instance_path", "instances", "names", "node_instances", "parameter", "trace"]
