"""`--set key.path=value`: change a spec's data before it is validated.

Values are read as YAML scalars or flow collections (`--set data.batch_size=128`,
`--set compile.loss=[mse, mae]`) with the same safe loader as files, and the
result goes through the same validation as the file itself. Diagnostics about an
overridden value, or about a value of the file that an override made wrong (a
`name:` left over after `--set data.source.kind=synthetic`), point at the `--set`
that caused them: `--set #2`, with a note saying what it was.
"""

from __future__ import annotations

import copy
import dataclasses
from collections.abc import Callable
from typing import Any

from graphspec.spec import source as source_mod
from graphspec.diagnostics import Diagnostic, PathKey, Severity
from graphspec.spec.schema_run import expand_source_shorthand
from graphspec.spec.source import Override, Source, SourceError, Span

# Mappings whose short form is not `{type: NAME}`: `source: synthetic` is `{kind: synthetic}`.
_SHORTHANDS: dict[PathKey, Callable[[str], dict[str, Any]]] = {("data", "source"): expand_source_shorthand}
MAX_SHOWN = 200  # characters of a --set shown in messages


def _depth(value: Any) -> int:
    """How deeply a value nests (a scalar: 0), without recursion."""
    deepest = 0
    stack: list[tuple[Any, int]] = [(value, 0)]
    while stack:
        v, d = stack.pop()
        if isinstance(v, dict):
            stack.extend((x, d + 1) for x in v.values())
        elif isinstance(v, list):
            stack.extend((x, d + 1) for x in v)
        else:
            deepest = max(deepest, d)
            continue
        deepest = max(deepest, d + 1)
    return deepest


def _parse_key(key: str) -> PathKey:
    parts: list[str | int] = []
    for part in key.split("."):
        if not part:
            raise ValueError("empty path segment")
        parts.append(int(part) if part.lstrip("-").isdigit() else part)
    return tuple(parts)


def _as_mapping(path: PathKey, value: Any) -> dict[str, Any]:
    """A scalar that a deeper override turns into a mapping: `optimizer: adam` + `optimizer.learning_rate=...`."""
    if not isinstance(value, str):
        return {}
    expand = _SHORTHANDS.get(tuple(path))
    return expand(value) if expand is not None else {"type": value}


def _error(override: Override, message: str, hint: str | None = None) -> SourceError:
    return SourceError(Diagnostic("GS600", Severity.ERROR, message, override.location(), hint))


def apply(src: Source, sets: list[str]) -> Source:
    """Return a copy of `src` with each `key=value` applied; raise SourceError if malformed."""
    data = copy.deepcopy(src.data if src.data is not None else {})
    overridden: dict[PathKey, Override] = dict(src.overrides)
    first = max((o.number for o in overridden.values()), default=0) + 1
    for number, item in enumerate(sets, start=first):
        shown = item  # what names the --set in every message about it
        if len(item) > MAX_SHOWN:
            shown = f"{item[:MAX_SHOWN - 30]}... ({len(item):,} characters)"
        override = Override(number, shown)
        key, sep, raw = item.partition("=")
        if not sep or not key:
            raise _error(override, f"--set expects KEY=VALUE, got {shown!r}",
                         "for example: --set compile.optimizer.learning_rate=1e-4")
        try:
            path = _parse_key(key.strip())
        except ValueError:
            raise _error(override, f"--set key {key!r} is not a dotted path") from None
        try:
            value = source_mod.loads(raw, override.label).data if raw.strip() else None
        except SourceError as exc:
            raise _error(override, f"--set value: {exc.diagnostic.message}") from None
        if not isinstance(data, dict):
            raise _error(override, "the spec is not a mapping")
        if len(path) + _depth(value) > source_mod.MAX_DEPTH:
            raise _error(override, f"--set path and value nest deeper than {source_mod.MAX_DEPTH} levels "
                         f"(the path has {len(path):,} parts)", "a spec never needs this much nesting")
        cur: Any = data
        for i, part in enumerate(path[:-1]):
            nxt = cur.get(part) if isinstance(cur, dict) else (
                cur[part] if isinstance(cur, list) and isinstance(part, int) and -len(cur) <= part < len(cur) else None)
            if isinstance(nxt, (dict, list)):
                cur = nxt
                continue
            if not isinstance(cur, dict):
                raise _error(override, f"--set {key}: `{'.'.join(map(str, path[:i + 1]))}` is not a mapping")
            # Missing: a new mapping. A scalar: the mapping it is short for, now this override's doing.
            cur[part] = {} if nxt is None else _as_mapping(path[:i + 1], nxt)
            if nxt is not None:
                overridden[path[:i + 1]] = override
            cur = cur[part]
        last = path[-1]
        if isinstance(cur, dict):
            cur[last] = value
        elif isinstance(cur, list) and isinstance(last, int) and -len(cur) <= last < len(cur):
            cur[last] = value
        else:
            raise _error(override, f"--set {key}: cannot set this path")
        overridden[path] = override
    return dataclasses.replace(src, data=data, values=dict(src.values), keys=dict(src.keys), overrides=overridden)


__all__ = ["apply", "Span"]
