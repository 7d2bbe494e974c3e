"""`--set key.path=value`: change a spec's data before it is validated.

Values are read as YAML scalars or flow collections (`--set data.batch_size=128`,
`--set compile.loss=[mse, mae]`) with the same safe loader as files, and the
result goes through the same validation as the file itself; diagnostics about
an overridden value point at the `--set` that made it.
"""

from __future__ import annotations

import copy
import dataclasses
from typing import Any

from graphspec.spec import source as source_mod
from graphspec.diagnostics import Diagnostic, Location, PathKey, Severity
from graphspec.spec.source import Source, SourceError, Span


def _parse_key(key: str) -> PathKey:
    parts: list[str | int] = []
    for part in key.split("."):
        if not part:
            raise ValueError("empty path segment")
        parts.append(int(part) if part.lstrip("-").isdigit() else part)
    return tuple(parts)


def apply(src: Source, sets: list[str]) -> Source:
    """Return a copy of `src` with each `key=value` applied; raise SourceError if malformed."""
    data = copy.deepcopy(src.data if src.data is not None else {})
    overridden: dict[PathKey, str] = dict(src.overrides)
    for item in sets:
        where = Location(f"--set {item}")
        key, sep, raw = item.partition("=")
        if not sep or not key:
            raise SourceError(Diagnostic("GS600", Severity.ERROR, f"--set expects KEY=VALUE, got {item!r}", where,
                                         "for example: --set compile.optimizer.learning_rate=1e-4"))
        try:
            path = _parse_key(key.strip())
        except ValueError:
            raise SourceError(Diagnostic("GS600", Severity.ERROR, f"--set key {key!r} is not a dotted path", where)) from None
        try:
            value = source_mod.loads(raw, f"--set {item}").data if raw.strip() else None
        except SourceError as exc:
            d = exc.diagnostic
            raise SourceError(Diagnostic("GS600", Severity.ERROR, f"--set value: {d.message}", where)) from None
        if not isinstance(data, dict):
            raise SourceError(Diagnostic("GS600", Severity.ERROR, "the spec is not a mapping", where))
        cur: Any = data
        for i, part in enumerate(path[:-1]):
            nxt = cur.get(part) if isinstance(cur, dict) else (
                cur[part] if isinstance(cur, list) and isinstance(part, int) and -len(cur) <= part < len(cur) else None)
            if nxt is None:
                if isinstance(cur, dict):
                    cur[part] = {}
                    nxt = cur[part]
                else:
                    raise SourceError(Diagnostic("GS600", Severity.ERROR,
                                                 f"--set {key}: `{'.'.join(map(str, path[:i + 1]))}` is not a mapping",
                                                 where))
            elif not isinstance(nxt, (dict, list)):
                if isinstance(cur, dict):
                    # A scalar replaced by a mapping: `optimizer: adam` + `optimizer.learning_rate=...`
                    cur[part] = {"type": nxt} if isinstance(nxt, str) else {}
                    nxt = cur[part]
                else:
                    raise SourceError(Diagnostic("GS600", Severity.ERROR,
                                                 f"--set {key}: `{'.'.join(map(str, path[:i + 1]))}` is not a mapping",
                                                 where))
            cur = nxt
        last = path[-1]
        if isinstance(cur, dict):
            cur[last] = value
        elif isinstance(cur, list) and isinstance(last, int) and -len(cur) <= last < len(cur):
            cur[last] = value
        else:
            raise SourceError(Diagnostic("GS600", Severity.ERROR, f"--set {key}: cannot set this path", where))
        overridden[path] = item
    return dataclasses.replace(src, data=data, values=dict(src.values), keys=dict(src.keys), overrides=overridden)


__all__ = ["apply", "Span"]
