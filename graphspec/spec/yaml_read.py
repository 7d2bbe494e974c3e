"""Reading YAML text safely: the loader, the limits checked before anything is built, YAML errors.

:mod:`graphspec.spec.source` builds data and the position map from what this
module composes. Here: the safe loader (libyaml when PyYAML has it, with PyYAML's
tag resolution done without its per-node Python overhead), the limits an
untrusted file must stay within (size, nesting, number of values) when they must
be checked on the event stream before composing, and the located diagnostics for
YAML errors and whole-file problems.
"""

from __future__ import annotations

import re
from typing import Any

import yaml
from yaml.nodes import ScalarNode

from graphspec.diagnostics import Diagnostic, Location, Severity

MAX_BYTES = 1024 * 1024
MAX_DEPTH = 64
MAX_NODES = 100_000
MAX_INT_DIGITS = 30

# libyaml (C) when PyYAML has it: ~20x faster, same node marks. The pure-Python
# loader re-reads a file that has a syntax error, for its more precise messages.
BASE_LOADER: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
_IMPLICIT: dict[str, tuple[tuple[str, re.Pattern[str]], ...]] = {
    first: tuple(resolvers) + tuple(BASE_LOADER.yaml_implicit_resolvers.get(None, ()))
    for first, resolvers in BASE_LOADER.yaml_implicit_resolvers.items() if first is not None
}
_WILDCARD = tuple(BASE_LOADER.yaml_implicit_resolvers.get(None, ()))
STR_TAG = "tag:yaml.org,2002:str"
INT_TAG = "tag:yaml.org,2002:int"
NUMBER_START = frozenset("0123456789+-.")


class _FastLoader(BASE_LOADER):
    """The safe loader with the same tags, resolved without PyYAML's per-node Python overhead.

    The composer asks the resolver for the tag of every node (half of the time it
    takes on a large spec); specs use no path resolvers, so only the implicit
    first-character table of the safe loader is consulted, as PyYAML would.
    """

    def descend_resolver(self, current_node: Any, current_index: Any) -> None:
        return None

    def ascend_resolver(self) -> None:
        return None

    def resolve(self, kind: Any, value: Any, implicit: Any) -> str:
        if kind is ScalarNode:
            if implicit[0]:
                for tag, regexp in _IMPLICIT.get(value[:1], _WILDCARD):
                    if regexp.match(value):
                        return str(tag)
            return STR_TAG
        return str(super().resolve(kind, value, implicit))


FAST_LOADER: Any = _FastLoader

STANDARD_TAGS = {
    "tag:yaml.org,2002:str",
    "tag:yaml.org,2002:int",
    "tag:yaml.org,2002:float",
    "tag:yaml.org,2002:bool",
    "tag:yaml.org,2002:null",
    "tag:yaml.org,2002:map",
    "tag:yaml.org,2002:seq",
    "tag:yaml.org,2002:merge",
    "tag:yaml.org,2002:timestamp",
}


class SourceError(Exception):
    def __init__(self, diagnostic: Diagnostic) -> None:
        super().__init__(diagnostic.message)
        self.diagnostic = diagnostic


def check_depth(text: str, file: str) -> None:
    """Reject deep nesting and too many values from the event stream, before composing nodes."""
    open_: list[list[int]] = []  # per open collection: [is a mapping, items seen]
    values = 0
    try:
        for event in yaml.parse(text, Loader=FAST_LOADER):
            if isinstance(event, (yaml.ScalarEvent, yaml.AliasEvent, yaml.MappingStartEvent,
                                  yaml.SequenceStartEvent)):
                is_key = bool(open_) and open_[-1][0] == 1 and open_[-1][1] % 2 == 0
                if open_:
                    open_[-1][1] += 1
                values += not is_key
                problem = None
                if values > MAX_NODES:
                    problem = f"the document has more than {MAX_NODES:,} values"
                elif isinstance(event, (yaml.MappingStartEvent, yaml.SequenceStartEvent)):
                    open_.append([int(isinstance(event, yaml.MappingStartEvent)), 0])
                    if len(open_) > MAX_DEPTH + 1:  # the document itself is level 0, as in the builder
                        problem = f"nesting deeper than {MAX_DEPTH} levels"
                if problem:
                    m = event.start_mark
                    raise SourceError(Diagnostic("GS003", Severity.ERROR, problem,
                                                 Location(file, m.line + 1, m.column + 1),
                                                 "a spec never needs this much"))
            elif isinstance(event, (yaml.MappingEndEvent, yaml.SequenceEndEvent)):
                open_.pop()
    except yaml.YAMLError as exc:
        raise SourceError(yaml_failure(exc, text, file)) from None


def yaml_failure(exc: yaml.YAMLError, text: str, file: str) -> Diagnostic:
    """The diagnostic for a YAML error (raising GS003 instead where it is libyaml's nesting cap)."""
    if "maximum nesting depth" in str(exc):  # libyaml's own cap, far deeper than ours
        _crossed_depth(text, exc, file)
        return _yaml_error(exc, file, text)
    return _yaml_error(_precise(exc, text), file, text)


def _crossed_depth(text: str, exc: yaml.YAMLError, file: str) -> None:
    """Raise GS003 where our nesting limit is crossed, for a text that reached libyaml's own cap.

    libyaml refuses the text before it yields an event; the text up to where it
    stopped stays under its cap, so reading that part's events finds our limit.
    """
    mark = getattr(exc, "problem_mark", None)
    if mark is None:
        return
    try:
        check_depth(text[:mark.index], file)
    except SourceError as found:
        if found.diagnostic.code == "GS003":
            raise
    return


def _precise(exc: yaml.YAMLError, text: str) -> yaml.YAMLError:
    """The pure-Python loader's error for the same text: it names the offending character."""
    if BASE_LOADER is yaml.SafeLoader:
        return exc
    try:
        yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError as slow:
        return slow
    except Exception:  # noqa: BLE001 - keep the first error
        return exc
    return exc


def _yaml_error(exc: yaml.YAMLError, file: str, text: str = "") -> Diagnostic:
    if isinstance(exc, yaml.reader.ReaderError):
        # A character YAML does not allow (control characters): the file is not a text spec.
        before = text[: exc.position]
        line, col = before.count("\n") + 1, exc.position - (before.rfind("\n") + 1) + 1
        what = f"U+{exc.character:04X}" if isinstance(exc.character, int) else repr(exc.character)
        return Diagnostic("GS001", Severity.ERROR, f"character {what} is not allowed in YAML: not a text spec",
                          Location(file, line, col), "a spec is UTF-8 text without control characters")
    if not isinstance(exc, yaml.MarkedYAMLError):
        return Diagnostic("GS002", Severity.ERROR, f"YAML error: {exc}", at_start(file))
    mark = exc.problem_mark or exc.context_mark
    loc = Location(file, mark.line + 1, mark.column + 1) if mark else at_start(file)
    message = exc.problem or str(exc)
    notes: tuple[str, ...] = ()
    if "maximum nesting depth" in message:  # libyaml's own cap, far beyond ours
        return Diagnostic("GS003", Severity.ERROR, f"nesting deeper than {MAX_DEPTH} levels", loc,
                          "a spec never needs this much nesting")
    if "found another document" in message:
        return Diagnostic("GS002", Severity.ERROR, "YAML syntax error: a spec is one YAML document, but another "
                          "starts here", loc, "remove the `---` line and what follows, or split the file")
    cm = exc.context_mark
    if exc.context and cm is not None and exc.problem_mark is not None and (cm.line, cm.column) != (
            exc.problem_mark.line, exc.problem_mark.column):
        notes = (f"{exc.context}, which starts at line {cm.line + 1}, column {cm.column + 1}",)
    elif exc.context:
        message = f"{message} ({exc.context})"
    fault_line = text.splitlines()[mark.line] if mark and text and mark.line < len(text.splitlines()) else ""
    if "found character '\\t'" in message:
        hint: str | None = "YAML does not allow tabs for indentation; use spaces"
    elif "${" in fault_line and ("flow" in (exc.context or "") or "flow" in message):
        hint = "inside `{...}` or `[...]`, quote a variable reference: \"${width}\", or write $width"
    elif "flow sequence" in (exc.context or "") or "flow mapping" in (exc.context or ""):
        hint = "is a closing `]` or `}` or a `,` missing?"
    elif "quoted scalar" in (exc.context or ""):
        hint = "is a closing quote missing?"
    elif "expected <block end>" in message:
        hint = "check the indentation of this line against the lines above it"
    elif "mapping values are not allowed" in message:
        hint = "quote a value that contains `: `, e.g. `description: \"a: b\"`"
    else:
        hint = None
    return Diagnostic("GS002", Severity.ERROR, f"YAML syntax error: {message}", loc, hint, notes)


def _position(text: str, index: int) -> tuple[int, int]:
    """1-based (line, column) of the character at `index`."""
    line_start = text.rfind("\n", 0, index) + 1
    return text.count("\n", 0, index) + 1, index - line_start + 1


def byte_location(file: str, raw: bytes, offset: int) -> Location:
    """Where byte `offset` of a file's bytes lies (columns in characters, as everywhere)."""
    line_start = raw.rfind(b"\n", 0, offset) + 1
    col = len(raw[line_start:offset].decode("utf-8", errors="replace")) + 1
    if line_start == 0 and raw.startswith(b"\xef\xbb\xbf"):
        col -= 1  # the byte-order mark is not part of the text
    return Location(file, raw.count(b"\n", 0, offset) + 1, col)


def text_location(file: str, text: str, index: int) -> Location:
    return Location(file, *_position(text, index))


def at_start(file: str) -> Location:
    """Where a diagnostic about a whole file points: its first line (SARIF and editors need a line)."""
    return Location(file, 1, 1)


def may_exceed(text: str) -> bool:
    """Whether the text could hold more values than allowed (a cheap upper bound on their number).

    Every value but the first follows one of these characters: `,` `:` `-` `?` `[` `{` or
    a line break; aliases (`*`) are measured separately, before anything is built.
    """
    return len(text) > MAX_NODES and sum(map(text.count, ",:-?[{\n")) + 1 > MAX_NODES
