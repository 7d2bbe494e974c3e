"""YAML text -> plain data and a position map.

The spec is parsed with PyYAML's safe *composer* only: we walk its node tree
ourselves so that we can record the line and column of every value, reject
duplicate keys and non-standard tags, and bound the work an untrusted file can
cause (file size, nesting depth, alias expansion). No Python object is ever
constructed from a tag, so a spec cannot make graphspec run code.
"""

from __future__ import annotations

import dataclasses
import math
import re
import stat
from pathlib import Path
from typing import Any

import yaml
from yaml.constructor import SafeConstructor
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from graphspec.diagnostics import Diagnostic, Location, PathKey, Severity

MAX_BYTES = 1024 * 1024
MAX_DEPTH = 64
MAX_NODES = 100_000
MAX_INT_DIGITS = 30
_EXP_FLOAT = re.compile(r"^[-+]?(\d[\d_]*\.?\d*|\.\d+)[eE][-+]?\d+$")

# libyaml (C) when PyYAML has it: ~20x faster, same node marks. The pure-Python
# loader re-reads a file that has a syntax error, for its more precise messages.
_FAST_LOADER: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)

_STANDARD_TAGS = {
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


@dataclasses.dataclass(frozen=True)
class Span:
    line: int
    col: int
    end_line: int
    end_col: int
    # The file that holds the value when it is not the spec's own file: a base the
    # spec `extends` (graphspec.spec.extends). None: the spec's file.
    file: str | None = None


@dataclasses.dataclass
class Source:
    """A loaded spec: its data and where each part of it came from."""

    file: str
    text: str
    data: Any
    values: dict[PathKey, Span]
    keys: dict[PathKey, Span]
    overrides: dict[PathKey, str] = dataclasses.field(default_factory=dict)
    # Notes attached to every diagnostic located at or under a path, e.g. which
    # block instance an expanded node comes from (see graphspec.spec.expand).
    origins: dict[PathKey, tuple[str, ...]] = dataclasses.field(default_factory=dict)
    # With `extends` (graphspec.spec.extends): the text of every base file, by name, so that
    # diagnostics located in a base show its lines; which file names each base; and the
    # values a later file replaced at a path (where each was set, oldest first).
    bases: dict[str, str] = dataclasses.field(default_factory=dict)
    extended_by: dict[str, str] = dataclasses.field(default_factory=dict)
    history: dict[PathKey, tuple[tuple[Location, Any], ...]] = dataclasses.field(default_factory=dict)

    def texts(self) -> dict[str, str]:
        """File name -> text for the spec and every base it extends (for showing source lines)."""
        return {**self.bases, self.file: self.text}

    def chain_note(self, file: str, line: int = 0) -> str:
        """`specs/base.yaml:12 is extended by specs/wide.yaml` (and by whatever extends that)."""
        at = f"{file}:{line}" if line else file
        children: list[str] = []
        cur = file
        while cur in self.extended_by and len(children) <= len(self.extended_by):
            cur = self.extended_by[cur]
            children.append(cur)
        if not children:
            return f"{at} is extended by {self.file}"
        return f"{at} is extended by " + ", which is extended by ".join(children)

    def span(self, path: PathKey, *, key: bool = False) -> Span | None:
        """The span of the value at ``path`` (or of its key), else of the nearest parent."""
        table = self.keys if key else self.values
        p = tuple(path)
        while p:
            if p in table:
                return table[p]
            if p in self.values:
                return self.values[p]
            p = p[:-1]
        return self.values.get((), None)

    def location(self, path: PathKey, *, key: bool = False) -> Location:
        p = tuple(path)
        notes = self._origin_notes(p)
        for i in range(len(p), 0, -1):
            if p[:i] in self.overrides:
                return _located(notes, f"--set {self.overrides[p[:i]]}")
        span = self.span(path, key=key)
        if span is None:
            return _located(notes, self.file)
        file = span.file or self.file
        if file != self.file:
            notes = notes + (self.chain_note(file, span.line),)
        return _located(notes, file, span.line, span.col, span.end_line, span.end_col)

    def _origin_notes(self, path: PathKey) -> tuple[str, ...]:
        if not self.origins:
            return ()
        notes: list[str] = []
        for i in range(1, len(path) + 1):
            for note in self.origins.get(path[:i], ()):
                if note not in notes:
                    notes.append(note)
        return tuple(notes)

    def line_text(self, line: int) -> str:
        lines = self.text.splitlines()
        return lines[line - 1] if 0 < line <= len(lines) else ""


@dataclasses.dataclass(frozen=True)
class NotedLocation(Location):
    """A location that carries notes: every Diagnostic made with it shows them."""

    notes: tuple[str, ...] = dataclasses.field(default=(), compare=False, repr=False)


def _located(notes: tuple[str, ...], file: str, line: int = 0, col: int = 0, end_line: int = 0,
             end_col: int = 0) -> Location:
    if notes:
        return NotedLocation(file, line, col, end_line, end_col, notes=notes)
    return Location(file, line, col, end_line, end_col)


class SourceError(Exception):
    def __init__(self, diagnostic: Diagnostic) -> None:
        super().__init__(diagnostic.message)
        self.diagnostic = diagnostic


def _span(node: Node) -> Span:
    s, e = node.start_mark, node.end_mark
    return Span(s.line + 1, s.column + 1, e.line + 1, e.column + 1)


class _Builder:
    """Turns a composed YAML node tree into data, recording spans."""

    def __init__(self, file: str) -> None:
        self.file = file
        self.values: dict[PathKey, Span] = {}
        self.keys: dict[PathKey, Span] = {}
        self.count = 0
        self.scalars = SafeConstructor()
        self.diagnostics: list[Diagnostic] = []

    def fail(self, code: str, message: str, node: Node, hint: str | None = None) -> SourceError:
        sp = _span(node)
        loc = Location(self.file, sp.line, sp.col, sp.end_line, sp.end_col)
        return SourceError(Diagnostic(code, Severity.ERROR, message, loc, hint))

    def build(self, node: Node, path: PathKey) -> Any:
        self.count += 1
        if self.count > MAX_NODES:
            raise self.fail(
                "GS003",
                f"the document expands to more than {MAX_NODES:,} values",
                node,
                "YAML aliases (*name) are expanded; an alias of an alias multiplies",
            )
        if node.tag not in _STANDARD_TAGS:
            raise self.fail(
                "GS005",
                f"YAML tag {node.tag!r} is not allowed: a spec is plain data",
                node,
                "remove the tag; graphspec only reads maps, lists, strings, numbers, booleans and null",
            )
        self.values.setdefault(path, _span(node))
        if isinstance(node, MappingNode):
            return self._mapping(node, path)
        if isinstance(node, SequenceNode):
            return [self.build(child, path + (i,)) for i, child in enumerate(node.value)]
        assert isinstance(node, ScalarNode)
        return self._scalar(node)

    def measure(self, root: Node) -> None:
        """Refuse, before building anything, a document whose aliases expand it beyond the limits.

        Aliases share nodes, so the composed tree is small even when its expansion
        is not (a billion-laughs bomb); sizes and heights are computed once per node.
        """
        sizes: dict[int, tuple[int, int]] = {}  # id -> (values after expansion, capped; height)
        active: set[int] = set()
        too_deep = f"nesting deeper than {MAX_DEPTH} levels (aliases counted as expanded)"

        def walk(node: Node, depth: int) -> tuple[int, int]:
            known = sizes.get(id(node))
            if known is None:
                if not isinstance(node, (MappingNode, SequenceNode)):
                    return 1, 0
                if id(node) in active:
                    raise self.fail("GS003", "recursive YAML alias: a value contains itself", node,
                                    "an alias (*name) may not refer to a mapping or list that contains it")
                if depth > MAX_DEPTH:
                    raise self.fail("GS003", too_deep, node, "a spec never needs this much nesting")
                active.add(id(node))
                children = node.value if isinstance(node, SequenceNode) else [v for _, v in node.value]
                size, height = 1, 0
                for child in children:
                    s, h = walk(child, depth + 1)
                    size, height = min(size + s, MAX_NODES + 1), max(height, h + 1)
                active.discard(id(node))
                known = sizes[id(node)] = (size, height)
            if depth + known[1] > MAX_DEPTH:
                raise self.fail("GS003", too_deep, node, "a spec never needs this much nesting")
            return known

        if walk(root, 0)[0] <= MAX_NODES:
            return
        # Point at the innermost value that alone expands beyond the limit.
        node = root
        while True:
            if isinstance(node, SequenceNode):
                children = node.value
            elif isinstance(node, MappingNode):
                children = [v for _, v in node.value]
            else:
                break
            big = [c for c in children if sizes.get(id(c), (1, 0))[0] > MAX_NODES]
            if not big:
                break
            node = big[0]
        raise self.fail("GS003", f"this value expands to more than {MAX_NODES:,} values", node,
                        "YAML aliases (*name) are expanded; an alias of an alias multiplies")

    def _scalar(self, node: ScalarNode) -> Any:
        tag = node.tag
        if tag == "tag:yaml.org,2002:int":
            digits = re.sub(r"[^0-9a-fA-F]", "", node.value)
            if len(digits) > MAX_INT_DIGITS:
                raise self.fail(
                    "GS500", f"integer with {len(digits)} digits is too large", node,
                    f"integers are limited to {MAX_INT_DIGITS} digits",
                )
        if tag == "tag:yaml.org,2002:timestamp":
            return node.value  # keep dates as text; no spec field is a date
        if tag == "tag:yaml.org,2002:str" and not node.style and _EXP_FLOAT.match(node.value):
            return float(node.value)  # YAML 1.2 reads `1e-4` as a number; YAML 1.1 as text
        try:
            value = self.scalars.construct_object(node, deep=True)
        except Exception:  # noqa: BLE001 - PyYAML raises anything on e.g. `!!int ""`, `!!bool maybe`
            kind = tag.rsplit(":", 1)[-1]
            raise self.fail("GS002", f"{node.value!r} is not a valid {kind}", node,
                            f"remove the explicit `!!{kind}` tag or fix the value") from None
        if isinstance(value, float) and math.isinf(value) and "inf" not in node.value.lower():
            return value
        return value

    def _merge_sources(self, node: Node) -> list[tuple[Node, Node]]:
        if isinstance(node, MappingNode):
            return list(node.value)
        if isinstance(node, SequenceNode):
            pairs: list[tuple[Node, Node]] = []
            for sub in node.value:
                if not isinstance(sub, MappingNode):
                    raise self.fail("GS002", "merge key `<<` expects a mapping or a list of mappings", sub)
                pairs.extend(sub.value)
            return pairs
        raise self.fail("GS002", "merge key `<<` expects a mapping or a list of mappings", node)

    def _mapping(self, node: MappingNode, path: PathKey) -> dict[Any, Any]:
        out: dict[Any, Any] = {}
        explicit: set[Any] = set()
        merged: list[tuple[Node, Node]] = []
        for key_node, value_node in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":
                merged.extend(self._merge_sources(value_node))
                continue
            if not isinstance(key_node, ScalarNode) or key_node.tag not in _STANDARD_TAGS:
                raise self.fail("GS002", "mapping keys must be plain scalars", key_node)
            key = self._scalar(key_node)
            if isinstance(key, bool) or key is None:
                key = key_node.value  # `yes:`/`on:`/`null:` as keys are names, not booleans
            if key in explicit:
                first = self.keys.get(path + (key,))
                where = f" (first defined on line {first.line})" if first else ""
                raise self.fail("GS004", f"duplicate key {key!r}{where}", key_node,
                                "each key may appear once in a mapping")
            explicit.add(key)
            self.keys[path + (key,)] = _span(key_node)
            out[key] = self.build(value_node, path + (key,))
        for key_node, value_node in merged:
            key = self._scalar(key_node) if isinstance(key_node, ScalarNode) else None
            if key is None or key in out:
                continue
            self.keys.setdefault(path + (key,), _span(key_node))
            out[key] = self.build(value_node, path + (key,))
        return out


def _check_depth(text: str, file: str) -> None:
    """Reject deep nesting and too many values from the event stream, before composing nodes."""
    open_: list[list[int]] = []  # per open collection: [is a mapping, items seen]
    values = 0
    try:
        for event in yaml.parse(text, Loader=_FAST_LOADER):
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
                    if len(open_) > MAX_DEPTH:
                        problem = f"nesting deeper than {MAX_DEPTH} levels"
                if problem:
                    m = event.start_mark
                    raise SourceError(Diagnostic("GS003", Severity.ERROR, problem,
                                                 Location(file, m.line + 1, m.column + 1),
                                                 "a spec never needs this much"))
            elif isinstance(event, (yaml.MappingEndEvent, yaml.SequenceEndEvent)):
                open_.pop()
    except yaml.YAMLError as exc:
        raise SourceError(_yaml_error(_precise(exc, text), file, text)) from None


def _precise(exc: yaml.YAMLError, text: str) -> yaml.YAMLError:
    """The pure-Python loader's error for the same text: it names the offending character."""
    if _FAST_LOADER is yaml.SafeLoader:
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
        return Diagnostic("GS002", Severity.ERROR, f"YAML error: {exc}", Location(file))
    mark = exc.problem_mark or exc.context_mark
    loc = Location(file, mark.line + 1, mark.column + 1) if mark else Location(file)
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


def loads(text: str, file: str = "<string>") -> Source:
    """Parse spec text; raise :class:`SourceError` with a located diagnostic."""
    try:
        size = len(text.encode("utf-8"))
    except UnicodeEncodeError:
        raise SourceError(Diagnostic(
            "GS001", Severity.ERROR, "text is not valid Unicode (lone surrogates)", Location(file))) from None
    if size > MAX_BYTES:
        raise SourceError(Diagnostic(
            "GS001", Severity.ERROR, f"file is larger than {MAX_BYTES // 1024} KiB", Location(file)))
    if "\x00" in text:
        raise SourceError(Diagnostic(
            "GS001", Severity.ERROR, "file contains NUL bytes: not a text file", Location(file)))
    if _FAST_LOADER is yaml.SafeLoader or len(text) > MAX_NODES:
        # The pure-Python composer recurses, and a long file may hold more values
        # than allowed: count and measure from the event stream before composing.
        # Otherwise libyaml caps nesting itself and `measure` checks the rest.
        _check_depth(text, file)
    try:
        node = yaml.compose(text, Loader=_FAST_LOADER)
    except yaml.YAMLError as exc:
        raise SourceError(_yaml_error(_precise(exc, text), file, text)) from None
    except RecursionError as exc:
        raise SourceError(Diagnostic("GS002", Severity.ERROR, f"YAML error: {exc}", Location(file))) from None
    builder = _Builder(file)
    if node is None:
        data: Any = None
    else:
        try:
            builder.measure(node)
            data = builder.build(node, ())
        except (yaml.constructor.ConstructorError, ValueError, OverflowError) as exc:
            raise SourceError(Diagnostic(
                "GS002", Severity.ERROR, f"YAML value error: {exc}", Location(file, 1, 1))) from None
    return Source(file, text, data, builder.values, builder.keys)


def load(path: str | Path) -> Source:
    """Read and parse a spec file."""
    p = Path(path)
    name = str(path)
    try:
        st = p.stat()
        if not stat.S_ISREG(st.st_mode):  # a device, a pipe (or a link to one) could be read forever
            raise SourceError(Diagnostic(
                "GS001", Severity.ERROR, "not a regular file", Location(name)))
        size = st.st_size
        if size > MAX_BYTES:
            raise SourceError(Diagnostic(
                "GS001", Severity.ERROR, f"file is {size:,} bytes; the limit is {MAX_BYTES:,}",
                Location(name)))
        with p.open("rb") as fh:
            raw = fh.read(MAX_BYTES + 1)  # bounded even if the file grows meanwhile
        if len(raw) > MAX_BYTES:
            raise SourceError(Diagnostic(
                "GS001", Severity.ERROR, f"file is larger than {MAX_BYTES:,} bytes", Location(name)))
    except OSError as exc:
        raise SourceError(Diagnostic(
            "GS001", Severity.ERROR, f"cannot read file: {exc.strerror or exc}", Location(name))) from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise SourceError(Diagnostic(
            "GS001", Severity.ERROR, f"file is not UTF-8 text (byte {exc.start})", Location(name))) from None
    if text.startswith("\ufeff"):
        text = text[1:]
    return loads(text, name)
