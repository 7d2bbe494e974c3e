"""Rendering `graphspec resolve --explain PATH`: a value and where it came from.

Pure: takes an :class:`Explanation` (computed by :mod:`graphspec.experiments.resolve`)
and returns text.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from graphspec.diagnostics import Location
from graphspec.render.diff import flow


@dataclasses.dataclass
class Origin:
    """Where a value was set: a place (file:line:col, or `--set KEY=VALUE`) and the value."""

    location: Location
    value: Any


@dataclasses.dataclass
class Variable:
    """A variable a value was computed from: its value, where that is set, and what it replaced."""

    name: str
    value: Any
    location: Location
    replaced: list[Origin]  # newest first
    kind: str = "variable"  # or "parameter": a block instance's parameter (`name` says which instance)


@dataclasses.dataclass
class Explanation:
    """Why a path of the resolved spec has its value."""

    path: str
    value: Any
    location: Location
    notes: tuple[str, ...]  # block instance, `${...}` substitution, the extends chain
    written: Any  # the value as written, when it differs (`$width`, `${4 * filters}`)
    variables: list[Variable]
    replaced: list[Origin]  # values it replaced, newest first


def _where(loc: Location) -> str:
    return str(loc) if not loc.file.startswith("--set") else loc.file


def text(e: Explanation) -> str:
    """`nodes.dense_1.units = 128`, then `set at FILE:LINE:COL`, the notes, variables and replaced values."""
    lines = [f"{e.path} = {flow(e.value)}"]
    verb = "set by" if e.location.file.startswith("--set") else "set at"
    lines.append(f"  {verb} {_where(e.location)}" + (f" as {flow(e.written)}" if e.written is not None else ""))
    lines.extend(f"  note: {n}" for n in e.notes)
    for v in e.variables:
        verb = "set by" if v.location.file.startswith("--set") else "set at"
        lines.append(f"  {v.kind} {v.name} = {flow(v.value)}, {verb} {_where(v.location)}")
        lines.extend(f"    replacing {flow(o.value)} from {_where(o.location)}" for o in v.replaced)
    lines.extend(f"  replacing {flow(o.value)} from {_where(o.location)}" for o in e.replaced)
    return "\n".join(lines) + "\n"


__all__ = ["Explanation", "Origin", "Variable", "text"]
