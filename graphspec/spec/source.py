"""YAML text -> plain data and a position map.

The spec is parsed with PyYAML's safe *composer* only (see
:mod:`graphspec.spec.yaml_read`): we walk its node tree ourselves so that we can
record the line and column of every value, reject duplicate keys and
non-standard tags, and bound the work an untrusted file can cause (file size,
nesting depth, alias expansion). No Python object is ever constructed from a
tag, so a spec cannot make graphspec run code.
"""

from __future__ import annotations

import dataclasses
import os
import re
import stat
from pathlib import Path
from typing import Any, NamedTuple

import yaml
from yaml.constructor import SafeConstructor
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from graphspec.diagnostics import Diagnostic, Location, PathKey, Severity
from graphspec.spec import yaml12
from graphspec.spec.yaml_read import (
    BASE_LOADER, FAST_LOADER, INT_TAG, MAX_BYTES, MAX_DEPTH, MAX_INT_DIGITS, MAX_NODES, NUMBER_START,
    STANDARD_TAGS, STR_TAG, SourceError, at_start, byte_location, check_depth, may_exceed, text_location,
    yaml_failure,
)

_INT_LIKE = re.compile(r"^[-+]?(?:[0-9]+|0o[0-7]+|0x[0-9a-fA-F]+)$")


class Span(NamedTuple):
    """Where a value (or key) is: 1-based line and column of its first and last character + 1."""

    line: int
    col: int
    end_line: int
    end_col: int
    # The file that holds the value when it is not the spec's own file: a base the
    # spec `extends` (graphspec.spec.extends). None: the spec's file.
    file: str | None = None


# Span(...) without the Python-level __new__ of a named tuple: the builder makes one per key and value.
_new_span = tuple.__new__


class Override(NamedTuple):
    """A `--set KEY=VALUE` that changed a value: diagnostics about that value point at it."""

    number: int  # its place among the --set options, from 1
    text: str  # KEY=VALUE as given

    @property
    def label(self) -> str:
        return f"--set #{self.number}"

    def location(self, notes: tuple[str, ...] = ()) -> Location:
        """Where a diagnostic caused by this override points: `--set #2`, with a note saying what it was."""
        return OverrideLocation(self.label, notes=(f"{self.label} is `{self.text}`", *notes), override=self.text)


# The keys that say what kind of mapping a mapping is, and so which other keys it
# may have: `{kind: synthetic, ...}` for data sources, `{type: Dense, ...}` for nodes.
_KIND_KEYS = ("kind", "type")


@dataclasses.dataclass
class Source:
    """A loaded spec: its data and where each part of it came from."""

    file: str
    text: str
    data: Any
    values: dict[PathKey, Span]
    keys: dict[PathKey, Span]
    overrides: dict[PathKey, Override] = dataclasses.field(default_factory=dict)
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
        if self.overrides:
            cause = self.override_of(p)
            if cause is not None:
                span = self.span(p, key=key)
                if span is not None and not any(p[:i] in self.overrides for i in range(len(p), 0, -1)):
                    dotted = ".".join(map(str, p))
                    notes = (*notes, f"`{dotted}` is on line {span.line} of {span.file or self.file}")
                return cause.location(notes)
        span = self.span(path, key=key)
        if span is None:  # an empty document (or only comments): its first line
            return _located(notes, self.file, 1, 1)
        file = span.file or self.file
        if file != self.file:
            notes = notes + (self.chain_note(file, span.line),)
        return _located(notes, file, span.line, span.col, span.end_line, span.end_col)

    def override_of(self, path: PathKey) -> Override | None:
        """The override that set the value at `path` (or a parent of it), or that changed the kind
        of the mapping it is in (`--set data.source.kind=synthetic` makes the file's `name:` wrong)."""
        for i in range(len(path), 0, -1):
            if path[:i] in self.overrides:
                return self.overrides[path[:i]]
        for i in range(len(path), -1, -1):
            for kind in _KIND_KEYS:
                found = self.overrides.get(path[:i] + (kind,))
                if found is not None:
                    return found
        return None

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
        """The text of a 1-based line of the main file ('' past its end)."""
        lines = self.text.splitlines()
        return lines[line - 1] if 0 < line <= len(lines) else ""


@dataclasses.dataclass(frozen=True)
class NotedLocation(Location):
    """A location that carries notes: every Diagnostic made with it shows them."""

    notes: tuple[str, ...] = dataclasses.field(default=(), compare=False, repr=False)


@dataclasses.dataclass(frozen=True)
class OverrideLocation(NotedLocation):
    """The location of a `--set` override (`--set #2`); `override` is its KEY=VALUE."""

    override: str = dataclasses.field(default="", compare=False, repr=False)


def _located(notes: tuple[str, ...], file: str, line: int = 0, col: int = 0, end_line: int = 0,
             end_col: int = 0) -> Location:
    if notes:
        return NotedLocation(file, line, col, end_line, end_col, notes=notes)
    return Location(file, line, col, end_line, end_col)


def _span(node: Node) -> Span:
    s, e = node.start_mark, node.end_mark
    return _new_span(Span, (s.line + 1, s.column + 1, e.line + 1, e.column + 1, None))


_NOT_PLAIN = object()


def _plain_value(node: ScalarNode) -> Any:
    return _plain(node.tag, node.value, node.style)


def _plain(tag: str, text: str, style: str | None) -> Any:
    """The value of a scalar that needs no more than a look, else _NOT_PLAIN.

    All read alike in YAML 1.1 and 1.2: text that cannot start a number, decimal integers
    without a leading zero (`010` is octal in YAML 1.1), null, `true`/`false` and decimal
    fractions such as `0.5`.
    """
    if tag == STR_TAG:
        return text if style or text[:1] not in NUMBER_START else _NOT_PLAIN
    if tag == INT_TAG and text.isdigit() and len(text) <= MAX_INT_DIGITS and (text[0] != "0" or len(text) == 1):
        return int(text)
    if tag == NULL_TAG and text in _NULLS:
        return None
    if tag == BOOL_TAG and text in _BOOLS:
        return _BOOLS[text]
    if tag == FLOAT_TAG and _DECIMAL.match(text):
        return float(text)  # `0.5`: a number alike in YAML 1.1 and 1.2 (`1e-4`, `.5` are not)
    return _NOT_PLAIN


# Null, booleans and decimal fractions that YAML 1.1 and 1.2 read alike (`yes`, `on` are not).
NULL_TAG = "tag:yaml.org,2002:null"
BOOL_TAG = "tag:yaml.org,2002:bool"
FLOAT_TAG = "tag:yaml.org,2002:float"
_NULLS = frozenset(("", "~", "null", "Null", "NULL"))
_BOOLS = {"true": True, "True": True, "TRUE": True, "false": False, "False": False, "FALSE": False}
_DECIMAL = re.compile(r"[-+]?[0-9]+\.[0-9]+\Z")


class _Builder:
    """Turns a composed YAML node tree into data, recording spans."""

    def __init__(self, file: str, text: str = "") -> None:
        self.file = file
        self.text = text
        self.values: dict[PathKey, Span] = {}
        self.keys: dict[PathKey, Span] = {}
        self.count = 0
        self.scalars = SafeConstructor()
        self.diagnostics: list[Diagnostic] = []

    def fail(self, code: str, message: str, node: Node, hint: str | None = None) -> SourceError:
        sp = _span(node)
        loc = Location(self.file, sp.line, sp.col, sp.end_line, sp.end_col)
        return SourceError(Diagnostic(code, Severity.ERROR, message, loc, hint))

    def build(self, node: Node, path: PathKey, depth: int = 0) -> Any:
        self.count += 1
        if self.count > MAX_NODES:
            raise self.fail(
                "GS003",
                f"the document expands to more than {MAX_NODES:,} values",
                node,
                "YAML aliases (*name) are expanded; an alias of an alias multiplies",
            )
        if node.tag not in STANDARD_TAGS:
            raise self.fail(
                "GS005",
                f"YAML tag {node.tag!r} is not allowed: a spec is plain data",
                node,
                "remove the tag; graphspec only reads maps, lists, strings, numbers, booleans and null",
            )
        if path not in self.values:
            s, e = node.start_mark, node.end_mark
            self.values[path] = _new_span(Span, (s.line + 1, s.column + 1, e.line + 1, e.column + 1, None))
        kind = node.__class__
        if kind is ScalarNode:
            return self._scalar(node)
        if depth >= MAX_DEPTH and node.value:  # its values would lie deeper than the limit
            raise self.fail("GS003", f"nesting deeper than {MAX_DEPTH} levels", node.value[0] if kind is
                            SequenceNode else node.value[0][1], "a spec never needs this much nesting")
        if kind is MappingNode:
            return self._mapping(node, path, depth)
        assert isinstance(node, SequenceNode)
        return [self.build(child, path + (i,), depth + 1) for i, child in enumerate(node.value)]

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

    def _scalar(self, node: ScalarNode, *, key: bool = False) -> Any:
        tag, text = node.tag, node.value
        plain = _plain(tag, text, node.style)
        if plain is not _NOT_PLAIN:
            return plain  # text, or a decimal integer: YAML 1.1 and 1.2 read it alike
        if len(text) > MAX_INT_DIGITS and (tag == INT_TAG or (not node.style and _INT_LIKE.match(text))):
            digits = re.sub(r"[^0-9a-fA-F]", "", text)
            if len(digits) > MAX_INT_DIGITS:
                raise self.fail(
                    "GS500", f"integer with {len(digits)} digits is too large", node,
                    f"integers are limited to {MAX_INT_DIGITS} digits",
                )
        if tag == "tag:yaml.org,2002:timestamp":
            return text  # keep dates as text, as YAML 1.2 does; no spec field is a date
        try:
            value = self.scalars.construct_object(node, deep=True)
        except Exception:  # noqa: BLE001 - PyYAML raises anything on e.g. `!!int ""`, `!!bool maybe`
            kind = tag.rsplit(":", 1)[-1]
            raise self.fail("GS002", f"{node.value!r} is not a valid {kind}", node,
                            f"remove the explicit `!!{kind}` tag or fix the value") from None
        if not node.style:
            # A plain scalar: read it as YAML 1.2 does, unless it has an explicit tag (`!!int 010`).
            v12 = yaml12.resolve(node.value)
            if not yaml12.same(value, v12) and not self._tagged(node):
                if key or isinstance(value, str):
                    return v12  # `1e-4`, `0o17`: numbers in YAML 1.2, text in YAML 1.1
                message, hint = yaml12.difference(node.value, value, v12)
                raise self.fail("GS007", message, node, hint)
        return value

    def _tagged(self, node: Node) -> bool:
        """Whether a node has an explicit tag (its text starts with `!`)."""
        at = node.start_mark.index
        return 0 <= at < len(self.text) and self.text[at] == "!"

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

    def _mapping(self, node: MappingNode, path: PathKey, depth: int) -> dict[Any, Any]:
        out: dict[Any, Any] = {}  # during the first loop: the explicit keys only
        merged: list[tuple[Node, Node]] = []
        keys, values = self.keys, self.values
        for key_node, value_node in node.value:
            tag = key_node.tag
            if tag == STR_TAG and not key_node.style and key_node.value[:1] not in NUMBER_START:
                key = key_node.value  # the common case, `name:`, without the general path below
            elif tag == "tag:yaml.org,2002:merge":
                merged.extend(self._merge_sources(value_node))
                continue
            else:
                if not isinstance(key_node, ScalarNode) or tag not in STANDARD_TAGS:
                    raise self.fail("GS002", "mapping keys must be plain scalars", key_node)
                key = self._scalar(key_node, key=True)
                if isinstance(key, bool) or key is None:
                    key = key_node.value  # `yes:`/`on:`/`null:` as keys are names, not booleans
            if key in out:
                first = keys.get(path + (key,))
                where = f" (first defined on line {first.line})" if first else ""
                raise self.fail("GS004", f"duplicate key {key!r}{where}", key_node,
                                "each key may appear once in a mapping")
            sub = path + (key,)
            s, e = key_node.start_mark, key_node.end_mark
            keys[sub] = _new_span(Span, (s.line + 1, s.column + 1, e.line + 1, e.column + 1, None))
            value = _plain_value(value_node) if value_node.__class__ is ScalarNode else _NOT_PLAIN
            if value is not _NOT_PLAIN and self.count < MAX_NODES and sub not in values:
                # A string or a small integer: what `build` would do, inline (most values of a spec).
                self.count += 1
                s, e = value_node.start_mark, value_node.end_mark
                values[sub] = _new_span(Span, (s.line + 1, s.column + 1, e.line + 1, e.column + 1, None))
                out[key] = value
            else:
                out[key] = self.build(value_node, sub, depth + 1)
        for key_node, value_node in merged:
            key = self._scalar(key_node, key=True) if isinstance(key_node, ScalarNode) else None
            if key is None or key in out:
                continue
            self.keys.setdefault(path + (key,), _span(key_node))
            out[key] = self.build(value_node, path + (key,), depth + 1)
        return out


def loads(text: str, file: str = "<string>") -> Source:
    """Parse spec text; raise :class:`SourceError` with a located diagnostic."""
    try:
        size = len(text.encode("utf-8"))
    except UnicodeEncodeError as exc:
        raise SourceError(Diagnostic(
            "GS001", Severity.ERROR, "text is not valid Unicode (lone surrogates)",
            text_location(file, text, exc.start))) from None
    if size > MAX_BYTES:
        within = len(text.encode("utf-8")[:MAX_BYTES].decode("utf-8", errors="ignore"))
        raise SourceError(Diagnostic(
            "GS001", Severity.ERROR, f"file is larger than {MAX_BYTES // 1024} KiB",
            text_location(file, text, within), "the limit is crossed here"))
    nul = text.find("\x00")
    if nul >= 0:
        raise SourceError(Diagnostic(
            "GS001", Severity.ERROR, "file contains NUL bytes: not a text file", text_location(file, text, nul)))
    if BASE_LOADER is yaml.SafeLoader or may_exceed(text):
        # The pure-Python composer recurses, and a long file may hold more values
        # than allowed: count and measure from the event stream before composing.
        # Otherwise libyaml caps nesting itself and the builder checks the rest.
        check_depth(text, file)
    try:
        node = yaml.compose(text, Loader=FAST_LOADER)
    except yaml.YAMLError as exc:
        raise SourceError(yaml_failure(exc, text, file)) from None
    except RecursionError as exc:
        raise SourceError(Diagnostic("GS002", Severity.ERROR, f"YAML error: {exc}", at_start(file))) from None
    builder = _Builder(file, text)
    if node is None:
        data: Any = None
    else:
        try:
            if "*" in text:  # aliases: refuse a document they would expand too far before building it
                builder.measure(node)
            data = builder.build(node, ())
        except (yaml.constructor.ConstructorError, ValueError, OverflowError) as exc:
            raise SourceError(Diagnostic(
                "GS002", Severity.ERROR, f"YAML value error: {exc}", at_start(file))) from None
    return Source(file, text, data, builder.values, builder.keys)


LINK_OUTSIDE = "symbolic link to a file outside the working folder: not read"


def _under(path: str, folder: str) -> bool:
    return path == folder or path.startswith(folder.rstrip(os.sep) + os.sep)


def links_outside(name: str) -> bool:
    """Whether a spec named `name` is reached through a symbolic link to a file outside the working folder.

    The spec itself a link, or a relative path through a linked folder: a pull request can hold such a link
    to any file on the machine, whose lines a command would print. A path that leaves the working folder
    without a link (`../x.yaml`, `/srv/specs/x.yaml`) is the user's own choice."""
    cwd = os.path.realpath(os.getcwd())
    real = os.path.realpath(name)
    if _under(real, cwd):
        return False
    if os.path.islink(name):
        return True
    return not os.path.isabs(name) and real != os.path.normpath(os.path.join(cwd, name))


def load(path: str | Path, *, named: bool = True) -> Source:
    """Read and parse a spec file: the one reader of a spec for every command (lint, resolve, diff, build, train...).

    A spec `named` by the user (not a base that `extends` reaches, which has rules of its own) is refused
    when a symbolic link takes it outside the working folder (:func:`links_outside`), as `lint` refuses it.
    """
    p = Path(path)
    name = str(path)
    if named and links_outside(name):
        raise SourceError(Diagnostic("GS001", Severity.ERROR, LINK_OUTSIDE, at_start(name),
                                     "copy the file into the working folder, or run graphspec from a folder "
                                     "that holds it"))
    try:
        st = p.stat()
        if not stat.S_ISREG(st.st_mode):  # a device, a pipe (or a link to one) could be read forever
            raise SourceError(Diagnostic(
                "GS001", Severity.ERROR, "not a regular file", at_start(name)))
        with p.open("rb") as fh:
            raw = fh.read(MAX_BYTES + 1)  # bounded even if the file grows meanwhile
        if len(raw) > MAX_BYTES:
            size = max(st.st_size, len(raw))
            what = f"file is {size:,} bytes; the limit is {MAX_BYTES:,}" if st.st_size > MAX_BYTES else (
                f"file is larger than {MAX_BYTES:,} bytes")
            raise SourceError(Diagnostic("GS001", Severity.ERROR, what, byte_location(name, raw, MAX_BYTES),
                                         "the limit is crossed here"))
    except OSError as exc:
        raise SourceError(Diagnostic(
            "GS001", Severity.ERROR, f"cannot read file: {exc.strerror or exc}", at_start(name))) from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise SourceError(Diagnostic(
            "GS001", Severity.ERROR, f"file is not UTF-8 text (byte {exc.start})",
            byte_location(name, raw, exc.start))) from None
    if text.startswith("\ufeff"):
        text = text[1:]
    return loads(text, name)


__all__ = ["MAX_BYTES", "MAX_DEPTH", "MAX_INT_DIGITS", "MAX_NODES", "NotedLocation", "Override", "OverrideLocation",
           "Source",
           "SourceError", "Span", "byte_location", "load", "loads"]
