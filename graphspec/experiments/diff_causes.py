"""A diff's causes: the variables that changed, and which node-level changes each one made.

`vars: {width: 32}` in a variant changes every value computed from `width`; `vars: {depth: 4}` adds the
repetitions of a block instance. :func:`variable_changes` lists the variables whose values differ (at
their lines in each file); :func:`attribute` marks each change that follows from one of them (traced with
:mod:`graphspec.experiments.provenance`: a value through the variables and block parameters it was
computed from; a node added, removed or rewired through the block instances that made it) and locates
it where its value came from on each side: the variable's line in each file.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from graphspec import compiler
from graphspec.diagnostics import PathKey
from graphspec.experiments import provenance
from graphspec.render.diff import Change


def _vars(checked: compiler.Checked) -> dict[str, Any]:
    src = checked.unexpanded
    data = src.data.get("vars") if src is not None and isinstance(src.data, dict) else None
    return data if isinstance(data, dict) else {}


def variable_changes(a: compiler.Checked, b: compiler.Checked) -> list[Change]:
    """One change per variable whose value differs, at its line in each file."""
    va, vb = _vars(a), _vars(b)
    if va == vb:
        return []
    out = []
    for name in list(va) + [k for k in vb if k not in va]:
        path: PathKey = ("vars", name)
        la = a.unexpanded.location(path) if a.unexpanded is not None and name in va else None
        lb = b.unexpanded.location(path) if b.unexpanded is not None and name in vb else None
        if name not in vb:
            out.append(Change("removed", f"vars.{name}", va[name], None, la, None))
        elif name not in va:
            out.append(Change("added", f"vars.{name}", None, vb[name], None, lb))
        elif va[name] != vb[name]:
            out.append(Change("changed", f"vars.{name}", va[name], vb[name], la, lb))
    return out


def _origin(src: Any, unexpanded: Any, path: PathKey) -> PathKey:
    """The path in the unexpanded spec whose text a value of the expanded one comes from."""
    span = src.values.get(path)
    if span is None or unexpanded.values.get(path) == span:
        return path
    return next((p for p, s in unexpanded.values.items() if s == span), path)


def _get(data: Any, path: PathKey) -> Any:
    for part in path:
        if not isinstance(data, dict) or part not in data:
            return None
        data = data[part]
    return data


def _traced(checked: compiler.Checked, parts: list[str]) -> list[str]:
    """The variables a change at `nodes.NAME[.ARG...]` of this side follows from, nearest first."""
    src, raw = checked.source, checked.unexpanded
    if src is None or raw is None or len(parts) < 2 or parts[0] != "nodes":
        return []
    node = parts[1]
    chain = provenance.node_instances(src.origins, node)
    found: list[str] = []
    if len(parts) > 2 and parts[2] not in ("inputs", "share"):  # a value: what it is written as, traced
        path: PathKey = tuple(parts)
        written = _get(raw.data, _origin(src, raw, path))
        found += [s.name for s in provenance.trace(raw.data, written, chain) if s.kind == "variable"]
    for depth in range(len(chain), 0, -1):  # a node made (or rewired) by an instance: what the instance is given
        where = provenance.instance_path(raw.data, chain[:depth])
        if where is not None:
            given = {k: v for k, v in (_get(raw.data, where) or {}).items() if k != "inputs"}
            found += [s.name for s in provenance.trace(raw.data, given, chain[:depth - 1]) if s.kind == "variable"]
    return list(dict.fromkeys(found))


def attribute(changes: list[Change], causes: list[Change], a: compiler.Checked,
              b: compiler.Checked) -> list[Change]:
    """`changes` with each one a changed variable explains marked (`cause`) and located at that variable."""
    by_name = {c.path.removeprefix("vars."): c for c in causes}
    out = []
    for c in changes:
        parts = c.path.split(".")
        names = _traced(a, parts) if c.kind == "removed" else _traced(b, parts)
        if c.kind == "changed" and not any(n in by_name for n in names):
            names += _traced(a, parts)
        cause = next((by_name[n] for n in names if n in by_name), None)
        if cause is None:
            out.append(c)
            continue
        out.append(dataclasses.replace(c, cause=cause.path, a=cause.a if c.a is not None else None,
                                       b=cause.b if c.b is not None else None))
    return out


__all__ = ["attribute", "variable_changes"]
