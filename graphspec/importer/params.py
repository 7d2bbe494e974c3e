"""Block parameters from the settings that differ between a block's repetitions, and instance arguments.

The importer finds structure that repeats (:mod:`graphspec.importer.repeats` at the top level,
:mod:`graphspec.importer.nest` inside blocks) and writes it once, as a block. What differs between
the repetitions becomes parameters:

* an argument whose value differs is a parameter named after the argument (`filters`), with the
  most common value as its default; an argument left out is compared at Keras's default;
* two arguments that always agree are one parameter, and one that is always a whole multiple of
  another is an expression (`"${4 * filters}"`);
* a layer `type` that differs is a parameter named after what the layer types have in common
  (`conv2d` for SeparableConv2D and Conv2DTranspose): `type: $conv2d`;
* a value that is itself an expression of the enclosing block's parameters (`$filters`) is always a
  parameter: the block it moves into has its own parameters, so it is passed in at the instance.

An instance then gives, per parameter, the value its repetitions share (when it is not the
default), `first:` when only the first repetition differs, and `each:` when they all do.
"""

from __future__ import annotations

import dataclasses
import re
from collections import Counter
from typing import Any

from graphspec.importer.refs import keras_snake
from graphspec.importer.write import Expr
from graphspec.spec import catalog

NO_DEFAULT = object()
_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_\-]*$")
_RESERVED = ("block", "inputs", "repeat", "first", "each", "type", "op")

Key = tuple[int, str]  # (node position in the repeated structure, argument)


def default_of(entry: dict[str, Any], key: str) -> Any:
    """What Keras uses for an argument a node leaves out (NO_DEFAULT where the catalog cannot say)."""
    from graphspec.importer.layer_args import _collapse

    table = None
    if isinstance(entry.get("type"), str):
        table = catalog.LAYERS.get(entry["type"], {}).get("params")
    elif isinstance(entry.get("op"), str):
        table = catalog.OPS.get(entry["op"], {}).get("params")
    p = (table or {}).get(key)
    if key == "trainable" and table is not None:
        return True
    if p is None or "default" not in p or p.get("opaque_default"):
        return NO_DEFAULT
    return _collapse(key, p["default"])


@dataclasses.dataclass
class Params:
    """A block's parameters: where each is used, its value in every repetition, and its default."""

    names: list[str]  # parameter names, in order
    where: dict[Key, Any]  # (node position, argument) -> Expr (or absent: constant)
    vectors: dict[str, list[Any]]  # parameter -> its value in every repetition, in order
    defaults: dict[str, Any]  # parameter -> default (None: required)


def block_params(reps: list[dict[Key, Any]], entries: list[dict[str, Any]]) -> Params:
    """The parameters for repetitions `reps` ((position, argument) -> value each); `entries` are the
    first repetition's nodes, whose types give the defaults of arguments a repetition leaves out."""
    keys: list[Key] = []
    for rep in reps:
        keys.extend(k for k in rep if k not in keys)

    def value(rep: dict[Key, Any], key: Key) -> Any:
        return rep[key] if key in rep else default_of(entries[key[0]], key[1])

    varying: dict[Key, list[Any]] = {}
    for key in keys:
        vec = [value(rep, key) for rep in reps]
        if any(v != vec[0] for v in vec[1:]) or any(isinstance(v, Expr) for v in vec):
            varying[key] = vec
    names: list[str] = []
    where: dict[Key, Any] = {}
    vectors: dict[str, list[Any]] = {}
    used = Counter(k[1] for k in varying)
    for key, vec in varying.items():
        same = next((p for p in names if vectors[p] == vec), None)
        if same is not None:
            where[key] = Expr(f"${same}")
            continue
        multiple = next((p for p in names if _multiple(vectors[p], vec)), None)
        if multiple is not None:
            where[key] = Expr(f"${{{_multiple(vectors[multiple], vec)} * {multiple}}}")
            continue
        stem = _type_name(vec) if key[1] == "type" else key[1]
        pname = stem if used[key[1]] == 1 or stem not in names else f"{stem}_{len(names) + 1}"
        pname = re.sub(r"[^A-Za-z0-9_]", "_", pname)
        if not _NAME.match(pname) or pname in names or pname in _RESERVED:
            pname = f"p{len(names) + 1}"
        names.append(pname)
        vectors[pname] = vec
        where[key] = Expr(f"${pname}")
    return Params(names, where, vectors, {p: _default(vectors[p]) for p in names})


def _default(vec: list[Any]) -> Any:
    """The most common value that can be a default: not null (required) and not an expression."""
    counts = Counter(repr(v) for v in vec if v is not None and not isinstance(v, Expr))
    if not counts:
        return None  # required: every instance gives it
    best = counts.most_common(1)[0][0]
    return next(v for v in vec if repr(v) == best and not isinstance(v, Expr))


def _type_name(types: list[Any]) -> str:
    """A parameter name for layer types: the longest part their snake_case names share
    (`conv2d` for SeparableConv2D and Conv2DTranspose), else `layer`."""
    snakes = [keras_snake(str(t)) for t in dict.fromkeys(types)]
    best = ""
    first = snakes[0]
    for i in range(len(first)):
        for j in range(len(first), i + len(best), -1):
            part = first[i:j].strip("_")
            if len(part) > len(best) and all(part in s for s in snakes[1:]):
                best = part
                break
    return best if len(best) >= 3 and _NAME.match(best) else "layer"


def _multiple(a: list[Any], b: list[Any]) -> int | None:
    """k when b == k * a for a whole k >= 2 (integers only)."""
    if not all(isinstance(x, int) and not isinstance(x, bool) and x > 0 for x in a + b):
        return None
    if b[0] % a[0]:
        return None
    k = b[0] // a[0]
    return k if k >= 2 and all(y == k * x for x, y in zip(a, b)) else None


def instance_args(defaults: dict[str, Any], per_rep: list[dict[str, Any]]) -> dict[str, Any]:
    """An instance's arguments for a block's parameters (parameter -> default, None: required) from
    its repetitions' values (parameter -> value, per repetition):
    shared values (unless the default), `first:` when only the first repetition differs, `each:`
    when they all do (or when there are two, both to be written: `each` says it shorter)."""
    entry: dict[str, Any] = {}
    each: dict[str, list[Any]] = {}
    first: dict[str, Any] = {}
    for p, default in defaults.items():
        vec = [rep[p] for rep in per_rep]
        rest = vec[1:] or vec
        if any(repr(v) != repr(rest[0]) for v in rest) or (
                len(vec) == 2 and repr(vec[0]) != repr(vec[1]) and (default is None or repr(vec[1]) != repr(default))):
            each[p] = vec  # differs from repetition to repetition (`each: {k: [1, 3]}` for `k: 3, first: {k: 1}`)
            continue
        if default is None or repr(rest[0]) != repr(default):
            entry[p] = rest[0]  # required parameters are always given
        if repr(vec[0]) != repr(rest[0]):
            first[p] = vec[0]  # only the first repetition differs
    if first:
        entry["first"] = first
    if each:
        entry["each"] = each
    return entry
