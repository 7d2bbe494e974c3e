"""Which of its findings `graphspec lint` reports: project configuration and inline suppressions.

Two ways to accept a known finding, as ruff does:

* `[tool.graphspec.lint]` in the nearest `pyproject.toml` that has it (up to the repository's root): `select` and
  `ignore` (codes, code prefixes such as `GS3`, or rule names such as
  `not-shape-checked`), `per-file-ignores` (a glob -> codes) and `exclude` (globs of
  paths that walking folders skips);
* a comment `# graphspec: ignore[GS302]` (several codes: `ignore[GS302, GS204]`) on
  the line of a diagnostic, or on the line of the node (input, model, block node)
  it is about: then it covers the whole node. A comment in a base the spec
  `extends` covers what is located there.

A suppression that suppresses nothing is reported (GS603) by `lint --strict`, for
files that went through every stage (with an error early on, what later stages
would have found is unknown). Internal errors (GS900) are never suppressed.
"""

from __future__ import annotations

import bisect
import dataclasses
import fnmatch
import os
import re
from collections.abc import Iterable, Sequence
from pathlib import Path, PurePosixPath
from typing import Any

from graphspec.diagnostics import CODES, NAMES, Diagnostic, Location, Severity, rule_name
from graphspec.errors import UsageError
from graphspec.spec.source import Source

SECTION = "[tool.graphspec.lint]"
KEYS = ("select", "ignore", "per-file-ignores", "exclude")
NEVER_SUPPRESSED = frozenset({"GS900"})
UNUSED = "GS603"
_COMMENT = re.compile(r"(?:^|\s)#\s*graphspec:\s*ignore\b(\[[^\]\n]*\]?)?")
# Mapping entries a comment on their key's line covers entirely: path length by first key.
_NODE_DEPTH = {"nodes": 2, "inputs": 2, "models": 2, "blocks": 2}


def _valid_pattern(item: str) -> bool:
    if item == "ALL" or item in NAMES.values():
        return True
    return bool(re.fullmatch(r"GS\d{0,3}", item)) and any(c.startswith(item) for c in CODES)


def matches(pattern: str, code: str) -> bool:
    """A code prefix (`GS3`, `GS302`), a rule name (`not-shape-checked`) or `ALL` selects `code`."""
    if pattern == "ALL":
        return True
    return code.startswith(pattern) if pattern.startswith("GS") else pattern == rule_name(code)


def _path_matches(pattern: str, path: Path, root: Path | None) -> bool:
    """ruff's rule: a pattern without `/` matches any file or folder of that name; with one, the
    path relative to the project root (or, with `**`, any depth)."""
    pattern = pattern.rstrip("/")
    if "/" not in pattern:
        return any(fnmatch.fnmatchcase(part, pattern) for part in path.parts)
    if root is None:
        return False
    try:
        rel = PurePosixPath(Path(os.path.abspath(path)).relative_to(root).as_posix())
    except ValueError:
        return False
    candidates = [str(c) for c in [rel, *rel.parents][:-1]]  # a folder pattern covers what is under it
    patterns = {pattern, pattern.replace("**/", "")}  # `**/` also matches no folder at all
    return any(fnmatch.fnmatchcase(c, p) for c in candidates for p in patterns)


@dataclasses.dataclass(frozen=True)
class LintConfig:
    """`[tool.graphspec.lint]`; the defaults report everything."""

    file: Path | None = None  # the pyproject.toml it came from
    select: tuple[str, ...] = ("ALL",)
    ignore: tuple[str, ...] = ()
    per_file_ignores: tuple[tuple[str, tuple[str, ...]], ...] = ()
    exclude: tuple[str, ...] = ()

    @property
    def root(self) -> Path | None:
        return self.file.parent if self.file is not None else None

    def wanted(self, code: str, file: str) -> bool:
        """Whether `code` is reported for `file` (select, ignore, per-file-ignores)."""
        if code in NEVER_SUPPRESSED:
            return True
        if not any(matches(p, code) for p in self.select) or any(matches(p, code) for p in self.ignore):
            return False
        for pattern, codes in self.per_file_ignores:
            if any(matches(p, code) for p in codes) and _path_matches(pattern, Path(file), self.root):
                return False
        return True

    def excluded(self, path: Path) -> bool:
        return any(_path_matches(p, path, self.root) for p in self.exclude)


def _strings(value: Any, where: str, file: Path, *, codes: bool) -> tuple[str, ...]:
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise UsageError(f"{file}: {SECTION} {where} must be a list of strings")
    if codes:
        for item in value:
            if not _valid_pattern(item):
                from graphspec.spec.catalog import did_you_mean

                hint = did_you_mean(item, [*CODES, *NAMES.values()])
                raise UsageError(f"{file}: {SECTION} {where}: {item!r} is not a code, a code prefix or a rule "
                                 "name" + (f" ({hint})" if hint else "") + "; see docs/codes.md")
    return tuple(value)


def parse_config(table: Any, file: Path) -> LintConfig:
    """Validate the `[tool.graphspec.lint]` table; a mistake is a usage error naming the key."""
    if not isinstance(table, dict):
        raise UsageError(f"{file}: {SECTION} must be a table")
    table = {k.replace("_", "-"): v for k, v in table.items()}
    for key in table:
        if key not in KEYS:
            from graphspec.spec.catalog import did_you_mean

            hint = did_you_mean(key, list(KEYS))
            raise UsageError(f"{file}: {SECTION} has no setting {key!r}" + (f" ({hint})" if hint else "")
                             + f"; the settings are {', '.join(KEYS)}")
    per_file = table.get("per-file-ignores", {})
    if not isinstance(per_file, dict):
        raise UsageError(f"{file}: {SECTION} per-file-ignores must be a table of glob = [codes]")
    return LintConfig(
        file=file,
        select=_strings(table["select"], "select", file, codes=True) if "select" in table else ("ALL",),
        ignore=_strings(table.get("ignore", []), "ignore", file, codes=True),
        per_file_ignores=tuple((str(k), _strings(v, f"per-file-ignores {k!r}", file, codes=True))
                               for k, v in per_file.items()),
        exclude=_strings(table.get("exclude", []), "exclude", file, codes=False),
    )


def load_config(start: Path) -> LintConfig:
    """The `[tool.graphspec.lint]` of the nearest trusted `pyproject.toml` that has one, up to the repository's
    root (:mod:`graphspec.spec.project`); defaults without."""
    from graphspec.spec import project

    found = project.lint_table(start)
    return parse_config(found[0], found[1]) if found is not None else LintConfig()


# -- inline suppressions ------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Suppression:
    """A `# graphspec: ignore[...]` comment: the lines it covers and the codes it names."""

    file: str  # the spec, or a base it `extends` (a comment there covers its nodes in every variant)
    line: int
    col: int
    end_line: int  # the last line it covers (its node's, when it is on a node's line)
    codes: tuple[str, ...]  # empty: the comment names none (a mistake)

    def covers(self, d: Diagnostic) -> bool:
        loc = d.location
        return (loc.file == self.file and self.line <= loc.line <= self.end_line
                and any(matches(c, d.code) for c in self.codes))


def _node_ends(src: Source, file: str) -> tuple[dict[int, int], dict[int, list[int]]]:
    """For the keys `file` holds: key line -> nesting depth of the node entries, and depth -> sorted
    lines of keys at most that deep (where a node's lines end)."""
    starts: dict[int, int] = {}
    bounds: dict[int, set[int]] = {2: set(), 4: set()}
    own = None if file == src.file else file  # the merged position map names the file of a base's values
    for path, span in src.keys.items():
        if span.file != own:
            continue
        depth = len(path)
        if depth <= 2:
            bounds[2].add(span.line)
        if depth <= 4 and path[0] == "blocks":
            bounds[4].add(span.line)
        if depth == _NODE_DEPTH.get(str(path[0]), 0):
            starts.setdefault(span.line, 2)
        elif depth == 4 and path[0] == "blocks" and path[2] == "nodes":
            starts.setdefault(span.line, 4)
    return starts, {d: sorted(lines | bounds[2]) for d, lines in bounds.items()}


def suppressions(src: Source) -> list[Suppression]:
    """The suppression comments of a spec and of the bases it extends, each with the lines it covers."""
    out: list[Suppression] = []
    for file, text in {src.file: src.text, **src.bases}.items():
        if "graphspec:" in text and "ignore" in text:
            out.extend(_comments(src, file, text))
    return out


def _comments(src: Source, file: str, text: str) -> list[Suppression]:
    lines = text.splitlines()
    starts: dict[int, int] | None = None
    texts: dict[int, list[Any]] | None = None
    bounds: dict[int, list[int]] = {}
    out: list[Suppression] = []
    for number, line in enumerate(lines, start=1):
        if "#" not in line:
            continue
        m = _COMMENT.search(line)
        if m is None:
            continue
        if texts is None:
            texts = _text_spans(src, file)
        col = line.index("#", m.start()) + 1
        if any((t.line, t.col) < (number, col) < (t.end_line, t.end_col) for t in texts.get(number, ())):
            continue
        raw = m.group(1) or ""
        codes = tuple(c.strip() for c in raw.strip("[]").split(",") if c.strip()) if raw.endswith("]") else ()
        if starts is None:
            starts, bounds = _node_ends(src, file)
        end = number
        depth = starts.get(number)
        if depth is not None:
            after = bounds[depth]
            i = bisect.bisect_right(after, number)
            end = after[i] - 1 if i < len(after) else len(lines)
        out.append(Suppression(file, number, col, end, codes))
    return out


def _text_spans(src: Source, file: str) -> dict[int, list[Any]]:
    """Line -> the spans of `file`'s text values on it (`description: "a # b"`, a `|` block), where a `#`
    is text, not a comment."""
    own = None if file == src.file else file
    out: dict[int, list[Any]] = {}
    for path, span in src.values.items():
        if span.file == own and isinstance(_at(src.data, path), str):
            for number in range(span.line, span.end_line + 1):
                out.setdefault(number, []).append(span)
    return out


def _at(data: Any, path: Sequence[Any]) -> Any:
    for key in path:
        try:
            data = data[key]
        except (KeyError, IndexError, TypeError):
            return None
    return data


def _unused(s: Suppression, code: str | None) -> Diagnostic:
    loc = Location(s.file, s.line, s.col)
    if code is None:
        return Diagnostic(UNUSED, Severity.WARNING, "`# graphspec: ignore` names no code, so it suppresses nothing",
                          loc, "name the codes it is for: `# graphspec: ignore[GS302]`")
    if not _valid_pattern(code):
        return Diagnostic(UNUSED, Severity.WARNING, f"`{code}` in this suppression is not a code or a rule name",
                          loc, "see docs/codes.md for the codes")
    return Diagnostic(UNUSED, Severity.WARNING, f"unused suppression: no {code} here",
                      loc, f"remove `{code}` from the comment")


def apply(diagnostics: Sequence[Diagnostic], file: str, config: LintConfig, src: Source | None, *,
          strict: bool = False, complete: bool = False) -> list[Diagnostic]:
    """The diagnostics of one file that are reported, and (strict, complete files) the unused suppressions."""
    sups = suppressions(src) if src is not None else []
    used: set[tuple[str, int, str]] = set()
    out: list[Diagnostic] = []
    for d in diagnostics:
        if not config.wanted(d.code, file):
            continue
        if d.code not in NEVER_SUPPRESSED and d.location.line:
            covering = [s for s in sups if s.covers(d)]
            if covering:
                used.update((s.file, s.line, c) for s in covering for c in s.codes if matches(c, d.code))
                continue
        out.append(d)
    if strict and complete:
        out.extend(_unused_all(file, sups, used, config))
    return out


def _unused_all(file: str, sups: Iterable[Suppression], used: set[tuple[str, int, str]],
                config: LintConfig) -> list[Diagnostic]:
    """Unused suppressions of the file itself (a base's may be used by its other variants)."""
    if not config.wanted(UNUSED, file):
        return []
    out = []
    for s in sups:
        if s.file != file:
            continue
        if not s.codes:
            out.append(_unused(s, None))
        out.extend(_unused(s, c) for c in s.codes if (s.file, s.line, c) not in used)
    return out
