"""graphspec's diagnostics and spans as LSP objects.

A diagnostic keeps its code, severity, range and message; its hint follows the
message (as `lint` prints it), its notes become related locations (a note that
starts with `file:line` points there, any other points at the diagnostic itself),
and its code links to its entry in docs/codes.md. A diagnostic located in a base
file (`extends`) is shown on the document's `extends:` line, its place in the
base as a related location.
"""

from __future__ import annotations

import re
from pathlib import Path

from lsprotocol import types as lsp

from graphspec.diagnostics import Diagnostic, Location, Severity
from graphspec.render.lint import CODES_DOC, TOOL_URI
from graphspec.spec.source import Span

SOURCE = "graphspec"
_NOTE_AT = re.compile(r"^(?P<file>[^\s:`][^\s:]*\.ya?ml):(?P<line>\d+)(?::(?P<col>\d+))?\b")


def uri_of(file: str) -> str:
    return Path(file).resolve().as_uri()


def path_of(uri: str) -> str:
    """The file a `file:` URI names (other schemes: the URI itself, as a name)."""
    from urllib.parse import unquote, urlparse

    parsed = urlparse(uri)
    if parsed.scheme != "file":
        return uri
    return unquote(parsed.path)


def position(line: int, col: int) -> lsp.Position:
    """A 1-based line and column as an LSP position (0-based)."""
    return lsp.Position(max(line - 1, 0), max(col - 1, 0))


def span_range(span: Span) -> lsp.Range:
    return lsp.Range(position(span.line, span.col), position(span.end_line, span.end_col))


def location_range(loc: Location) -> lsp.Range:
    if not loc.line:
        return lsp.Range(lsp.Position(0, 0), lsp.Position(0, 0))
    end_line, end_col = (loc.end_line, loc.end_col) if loc.end_line else (loc.line, loc.col + 1)
    return lsp.Range(position(loc.line, loc.col), position(end_line, end_col))


def code_link(code: str) -> str:
    return f"{TOOL_URI}/blob/main/{CODES_DOC}#{code.lower()}"


def _same(a: str, b: str) -> bool:
    return a == b or Path(a).resolve() == Path(b).resolve()


def diagnostic(d: Diagnostic, file: str, extends_span: Span | None) -> lsp.Diagnostic:
    """One graphspec diagnostic of `file` as the LSP shows it."""
    loc = d.location
    related: list[lsp.DiagnosticRelatedInformation] = []
    here = location_range(loc)
    if loc.file != file and not _same(loc.file, file):
        if loc.line and not loc.file.startswith("--set"):
            related.append(lsp.DiagnosticRelatedInformation(
                lsp.Location(uri_of(loc.file), here), f"{loc.file}:{loc.line}:{loc.col}: here"))
        here = lsp.Range(position(extends_span.line, extends_span.col),
                         position(extends_span.end_line, extends_span.end_col)) if extends_span is not None else \
            lsp.Range(lsp.Position(0, 0), lsp.Position(0, 0))
    for note in d.notes:
        m = _NOTE_AT.match(note)
        if m:
            line, col = int(m.group("line")), int(m.group("col") or 1)
            related.append(lsp.DiagnosticRelatedInformation(
                lsp.Location(uri_of(m.group("file")), lsp.Range(position(line, col), position(line, col))), note))
        else:
            related.append(lsp.DiagnosticRelatedInformation(lsp.Location(uri_of(file), here), note))
    message = d.message + (f"\nhint: {d.hint}" if d.hint else "")
    return lsp.Diagnostic(
        range=here,
        message=message,
        severity=lsp.DiagnosticSeverity.Error if d.severity is Severity.ERROR else lsp.DiagnosticSeverity.Warning,
        code=d.code,
        code_description=lsp.CodeDescription(href=code_link(d.code)),
        source=SOURCE,
        related_information=related or None,
        data={"hint": d.hint} if d.hint else None,
    )
