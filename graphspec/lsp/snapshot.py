"""One analysed version of an open document, and where each part of its text is.

:func:`analyse` runs what `graphspec lint` runs on a file (:func:`graphspec.compiler.check`,
then the project's `[tool.graphspec.lint]` policy and the file's suppression comments)
and keeps, besides the diagnostics, the text as written with its position map: requests
about a place in the text (hover, definition, completion) look it up here.
"""

from __future__ import annotations

import dataclasses
import gc
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from graphspec import compiler
from graphspec.analysis import lint_policy
from graphspec.diagnostics import Diagnostic, PathKey
from graphspec.spec import extends
from graphspec.spec import source as source_mod
from graphspec.spec.source import Source, SourceError, Span

# Keys whose values name nodes or inputs (a node's `inputs:`, a model's `inputs:`/`outputs:`, `share:`).
REF_KEYS = frozenset({"inputs", "outputs", "share"})
_REF_NAME = re.compile(r"[^:\[\]\s]+?(?=$|:|\.|\[)")
VAR_REF = re.compile(r"\$\{([^{}]*)\}|\$([A-Za-z_][A-Za-z0-9_\-]*)")
NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_\-]*")


@dataclasses.dataclass(frozen=True)
class Entry:
    """A key or a value of the text as written: its path and span."""

    path: PathKey
    span: Span
    key: bool


@dataclasses.dataclass
class Snapshot:
    """The result of one analysis of one version of a document."""

    uri: str
    file: str
    version: int
    text: str
    diagnostics: list[Diagnostic]
    checked: compiler.Checked | None
    raw: Source | None  # the text as written: positions
    merged: Source | None  # with its bases merged (`extends`), before vars and blocks
    lines: dict[int, list[Entry]] = dataclasses.field(default_factory=dict)  # single-line entries by line
    spans: list[Entry] = dataclasses.field(default_factory=list)  # entries spanning several lines

    @property
    def graph(self) -> Any:
        return self.checked.graph if self.checked is not None else None

    @property
    def analysis(self) -> Any:
        return self.checked.analysis if self.checked is not None else None

    @property
    def data(self) -> Any:
        return self.raw.data if self.raw is not None else None

    def at(self, line: int, col: int) -> Entry | None:
        """The narrowest key or value at a 1-based line and column (keys win a tie)."""
        best: Entry | None = None
        for e in self.lines.get(line, ()):
            s = e.span
            if s.col <= col <= s.end_col and (best is None or s.end_col - s.col < best.span.end_col - best.span.col
                                                or (e.key and s.end_col - s.col == best.span.end_col - best.span.col)):
                best = e
        return best

    def enclosing(self, line: int) -> list[PathKey]:
        """The paths of the multi-line values around a line, outermost first."""
        found = [e for e in self.spans if e.span.line <= line <= e.span.end_line and not e.key]
        found.sort(key=lambda e: len(e.path))
        return [e.path for e in found]

    def key_span(self, path: PathKey) -> Span | None:
        return self.raw.keys.get(path) if self.raw is not None else None

    def value_span(self, path: PathKey) -> Span | None:
        return self.raw.values.get(path) if self.raw is not None else None

    def value_at(self, path: PathKey) -> Any:
        return lookup(self.data, path)


def lookup(data: Any, path: PathKey) -> Any:
    """The value at `path` in plain data, or None."""
    cur = data
    for part in path:
        if isinstance(cur, dict) and part in cur:
            cur = cur[part]
        elif isinstance(cur, list) and isinstance(part, int) and 0 <= part < len(cur):
            cur = cur[part]
        else:
            return None
    return cur


def ref_name(text: str) -> str:
    """The node a reference names: `dense_1` for `dense_1`, `lstm:1`, `vgg.block1_conv1`, `split[0]`."""
    m = _REF_NAME.match(text)
    return m.group(0) if m else text


def is_ref(path: PathKey) -> bool:
    """Whether the value at `path` is a reference to a node or input (`inputs: x`, `outputs: [a, b]`, `share: d`)."""
    return bool(path) and (path[-1] in REF_KEYS or (len(path) > 1 and path[-2] in REF_KEYS)
                           or (len(path) > 2 and path[-3] == "inputs" and isinstance(path[-1], int)))


def var_names(text: str) -> Iterator[tuple[str, int]]:
    """The variables a string uses (`$width`, `${4 * filters}`), with their offsets in it."""
    for m in VAR_REF.finditer(text):
        if m.group(2) is not None:
            yield m.group(2), m.start(2)
        else:
            for n in NAME.finditer(m.group(1)):
                yield n.group(0), m.start(1) + n.start()


def _index(raw: Source) -> tuple[dict[int, list[Entry]], list[Entry]]:
    lines: dict[int, list[Entry]] = {}
    spans: list[Entry] = []
    for table, key in ((raw.keys, True), (raw.values, False)):
        for path, span in table.items():
            if span.file is not None:
                continue
            e = Entry(path, span, key)
            if span.line == span.end_line:
                lines.setdefault(span.line, []).append(e)
            else:
                spans.append(e)
    return lines, spans


def load_raw(text: str, file: str) -> Source | None:
    """The text as written, with its position map; None when it is not YAML."""
    try:
        return source_mod.loads(text, file)
    except SourceError:
        return None


@dataclasses.dataclass
class Settings:
    """What `lint` reads from the project: its plugins and its `[tool.graphspec.lint]`."""

    plugins: list[str] = dataclasses.field(default_factory=list)
    configs: dict[str, lint_policy.LintConfig] = dataclasses.field(default_factory=dict)

    def config(self, file: str) -> lint_policy.LintConfig:
        folder = str(Path(file).parent)
        found = self.configs.get(folder)
        if found is None:
            try:
                found = lint_policy.load_config(Path(folder))
            except Exception:  # noqa: BLE001 - an unreadable pyproject.toml: lint's defaults
                found = lint_policy.LintConfig()
            self.configs[folder] = found
        return found


def _as_written(checked: compiler.Checked, text: str) -> bool:
    """Whether the checked source is the text as written (no base merged, nothing expanded): then it is
    the position map too, and the text need not be read twice."""
    src = checked.source
    return (src is not None and src.text == text and not src.bases and not src.overrides
            and "$" not in text and "block" not in text and "vars" not in text)


def analyse(uri: str, file: str, version: int, text: str, settings: Settings) -> Snapshot:
    """Check one version of a document as `lint` checks a file, and index its text."""
    # As `lint` does: the checker's many small objects form no cycles worth collecting meanwhile.
    collecting = gc.isenabled()
    gc.disable()
    try:
        return _analyse(uri, file, version, text, settings)
    finally:
        if collecting:
            gc.enable()


def _analyse(uri: str, file: str, version: int, text: str, settings: Settings) -> Snapshot:
    checked = compiler.check(file, text=text, plugins=settings.plugins)
    config = settings.config(file)
    diags = lint_policy.apply(checked.diagnostics.sorted(), file, config, checked.source, strict=False,
                              complete=checked.analysis is not None)
    diags.sort(key=lambda d: d.sort_key())
    raw = checked.source if _as_written(checked, text) else load_raw(text, file)
    merged = raw
    if raw is not None and extends.uses_extends(raw):
        copy = load_raw(text, file)  # extends.apply may reuse what it is given
        merged = extends.apply(copy)[0] if copy is not None else None
    snap = Snapshot(uri, file, version, text, diags, checked, raw, merged)
    if raw is not None:
        snap.lines, snap.spans = _index(raw)
    return snap
