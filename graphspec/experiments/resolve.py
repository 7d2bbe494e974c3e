"""`graphspec resolve`: the spec as graphspec sees it, and where each value came from.

The resolved spec is the file with its bases merged (`extends`) and `--set` applied,
and with vars and blocks expanded when asked: YAML that is itself a valid spec
(Ludwig's `render_config`, Hydra's `--cfg job`). :func:`explain` answers "why is this
128?" for one path (Fiddle's per-value history): the file and line that hold the
value, the `--set` that set it, the variables it was computed from, the block
instance it belongs to, and the values it replaced along the `extends` chain.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

from graphspec import compiler
from graphspec.diagnostics import Location, PathKey
from graphspec.errors import UsageError
from graphspec.spec import extends, overrides
from graphspec.spec import plugins as plugins_mod
from graphspec.spec.catalog import did_you_mean
from graphspec.render.explain import Explanation, Origin, Variable
from graphspec.spec.source import OverrideLocation, Source, SourceError



@dataclasses.dataclass
class Resolved:
    """A spec read three ways: bases merged, then `--set` applied, then vars and blocks expanded."""

    file: str
    sets: list[str]
    merged: Source
    overridden: Source
    checked: compiler.Checked

    @property
    def expanded(self) -> Source:
        assert self.checked.source is not None
        return self.checked.source


def resolve(path: str | Path, *, sets: list[str] | None = None, plugins: list[str] | None = None) -> Resolved:
    """Check the spec (raising SpecError on errors) and keep each stage's view of it."""
    checked = compiler.check(path, plugins=plugins_mod.all_plugins(plugins), sets=sets)
    checked.raise_for_errors()
    try:
        merged = extends.load(str(path))
        overridden = overrides.apply(merged, sets) if sets else merged
    except SourceError as exc:  # the check above passed: only a file changed in between gets here
        from graphspec.errors import SpecError

        raise SpecError([exc.diagnostic]) from None
    return Resolved(str(path), list(sets or []), merged, overridden, checked)


def spec_text(resolved: Resolved, *, expand: bool = False) -> str:
    """The resolved spec as YAML, with a header comment saying what was done."""
    import yaml

    data = resolved.expanded.data if expand else resolved.overridden.data
    done = ["bases merged"] if resolved.merged.bases else []
    done += [f"--set {s}" for s in resolved.sets]
    if expand:
        done.append("vars and blocks expanded")
    header = f"# {resolved.file}, resolved by graphspec" + (f": {'; '.join(done)}" if done else "") + "\n"
    body: str = yaml.safe_dump(data, sort_keys=False, allow_unicode=True, width=120, default_flow_style=None)
    return header + body


# -- explain ------------------------------------------------------------------------------


def parse_path(text: str) -> PathKey:
    """`nodes.dense_1.units` -> ("nodes", "dense_1", "units"); list indexes as integers."""
    parts: list[str | int] = []
    for part in text.strip().split("."):
        if not part:
            raise UsageError(f"--explain {text!r} is not a dotted path, e.g. nodes.dense_1.units")
        parts.append(int(part) if part.lstrip("-").isdigit() else part)
    return tuple(parts)


def _lookup(data: Any, path: PathKey) -> tuple[bool, Any, int]:
    """(found, value, how many parts matched)."""
    cur = data
    for i, part in enumerate(path):
        if isinstance(cur, dict) and part in cur:
            cur = cur[part]
        elif isinstance(cur, list) and isinstance(part, int) and -len(cur) <= part < len(cur):
            cur = cur[part]
        else:
            return False, None, i
    return True, cur, len(path)


def _plain(loc: Location) -> Location:
    if isinstance(loc, OverrideLocation):  # `--set KEY=VALUE`: one value, its override by name
        return Location(f"--set {loc.override}")
    return Location(loc.file, loc.line, loc.col, loc.end_line, loc.end_col)


def _origin_path(src: Source, merged: Source, path: PathKey) -> PathKey:
    """The path in the unexpanded spec whose text a value of the expanded one comes from."""
    span = src.values.get(path)
    if span is None or merged.values.get(path) == span:
        return path
    for p, s in merged.values.items():
        if s == span:
            return p
    return path


def _variables(written: Any, r: Resolved, notes: tuple[str, ...] = ()) -> list[Variable]:
    """The variables and block parameters `written` was computed from, back to the lines that set them."""
    from graphspec.experiments import provenance

    if not provenance.names(written):
        return []
    data = r.overridden.data
    out = []
    for step in provenance.trace(data, written, provenance.instances(notes)):
        if step.kind == "variable":
            out.append(Variable(step.name, step.written, _plain(r.overridden.location(step.path)),
                                _replaced(r, step.path)))
        else:
            assert step.instance is not None
            label = f"{step.name} of `{step.instance.name}` (block `{step.instance.block}`)"
            out.append(Variable(label, step.written, _plain(r.overridden.location(step.path)),
                                _replaced(r, step.path), kind="parameter"))
    return out


def _replaced(r: Resolved, path: PathKey) -> list[Origin]:
    """Earlier values of `path`: the file's value under a `--set`, then the bases' values."""
    out: list[Origin] = []
    if any(path[:i] in r.overridden.overrides for i in range(1, len(path) + 1)):
        found, value, _ = _lookup(r.merged.data, path)
        if found:
            out.append(Origin(_plain(r.merged.location(path)), value))
    for i in range(len(path), 0, -1):
        history = r.merged.history.get(path[:i])
        if history:
            for loc, old in reversed(history):
                found, value, _ = _lookup(old, path[i:]) if i < len(path) else (True, old, 0)
                if found:
                    out.append(Origin(loc, value))
            break
    return out


def explain(r: Resolved, dotted: str) -> Explanation:
    """Where the value at `dotted` (a path in the expanded spec, or in vars/blocks) comes from."""
    path = parse_path(dotted)
    expanded = r.expanded
    src = expanded
    found, value, depth = _lookup(expanded.data, path)
    if not found:
        src = r.overridden
        found2, value, depth2 = _lookup(r.overridden.data, path)
        if not found2:
            deepest = r.overridden.data if depth2 > depth else expanded.data
            depth = max(depth, depth2)
            _, parent, _ = _lookup(deepest, path[:depth])
            choices = [str(k) for k in parent] if isinstance(parent, dict) else []
            where = ".".join(map(str, path[:depth])) or "the spec"
            hint = did_you_mean(str(path[depth]), choices) if choices else None
            raise UsageError(f"--explain {dotted}: {where} has no `{path[depth]}`"
                             + (f" ({hint})" if hint else (f"; it has {', '.join(choices[:12])}" if choices else "")))
    loc = src.location(path)
    origin = _origin_path(src, r.overridden, path) if src is expanded else path
    found_w, written, _ = _lookup(r.overridden.data, origin)
    written = written if found_w and written != value else None
    notes = getattr(loc, "notes", ())
    if isinstance(loc, OverrideLocation):  # shown as `set by --set KEY=VALUE`: no note to say which it was
        notes = tuple(n for n in notes if not n.startswith(f"{loc.file} is `"))
    replaced = _replaced(r, origin)
    variables = _variables(written, r, tuple(getattr(loc, "notes", ())))
    return Explanation(dotted, value, _plain(loc), tuple(notes), written, variables, replaced)


__all__ = ["Explanation", "Origin", "Resolved", "Variable", "explain", "parse_path", "resolve", "spec_text"]
