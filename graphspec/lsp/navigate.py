"""Names in a spec and where they are: the outline, definitions, references and renames.

A name is a node (or input), a block or a variable. Its occurrences in one file are
read from the text as written (its position map): a node's key and every `inputs:`,
`outputs:` and `share:` that names it; a block's key and every `block:` that names it;
a variable's key and every `$name` and `${...}` that uses it. A rename edits them in
the document, in the bases it `extends`, and in the workspace's specs that extend it.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, Literal

from lsprotocol import types as lsp

from graphspec.diagnostics import PathKey
from graphspec.lsp.convert import span_range, uri_of
from graphspec.lsp.hover import _var_at, outputs_text
from graphspec.lsp.snapshot import NAME, Snapshot, is_ref, load_raw, lookup, ref_name, var_names
from graphspec.spec.source import Source, Span

Kind = Literal["node", "block", "var"]
_EXTENDS = re.compile(r"^extends:\s*['\"]?([^'\"#\n]+?)['\"]?\s*(?:#.*)?$", re.MULTILINE)
MAX_WORKSPACE_FILES = 2000


@dataclasses.dataclass(frozen=True)
class Name:
    kind: Kind
    name: str


def name_at(snap: Snapshot, line: int, col: int) -> Name | None:
    """The node, block or variable named at a 1-based line and column."""
    entry = snap.at(line, col)
    if entry is None:
        return None
    var = _var_at(snap, entry, col)
    if var is not None:
        return Name("var", var)
    path, value = entry.path, lookup(snap.data, entry.path)
    if len(path) == 2 and path[0] == "vars" and entry.key:
        return Name("var", str(path[1]))
    if len(path) == 2 and path[0] in ("nodes", "inputs") and entry.key:
        return Name("node", str(path[1]))
    if len(path) == 2 and path[0] == "blocks" and entry.key:
        return Name("block", str(path[1]))
    if not entry.key and path and path[-1] == "block" and isinstance(value, str) and not value.startswith("$"):
        return Name("block", value)
    if not entry.key and is_ref(path) and path[0] != "blocks" and isinstance(value, str):
        return Name("node", ref_name(value))
    return None


def _value_offset(src: Source, span: Span, value: str) -> int:
    """Where a string value starts inside its span (after a quote, if it is quoted)."""
    seg = src.line_text(span.line)[span.col - 1:span.end_col - 1]
    found = seg.find(value)
    return found if found >= 0 else (1 if seg[:1] in "'\"" else 0)


def _range(span: Span, offset: int, length: int) -> lsp.Range:
    start = span.col - 1 + offset
    return lsp.Range(lsp.Position(span.line - 1, start), lsp.Position(span.line - 1, start + length))


def _walk(data: Any, path: PathKey = ()) -> Iterator[tuple[PathKey, Any]]:
    yield path, data
    if isinstance(data, dict):
        for k, v in data.items():
            yield from _walk(v, (*path, k))
    elif isinstance(data, list):
        for i, v in enumerate(data):
            yield from _walk(v, (*path, i))


def occurrences(src: Source, name: Name) -> list[lsp.Range]:
    """Every place in one file (as written) that names `name`."""
    out: list[lsp.Range] = []
    keys = {"node": (("nodes", name.name), ("inputs", name.name)), "block": (("blocks", name.name),),
            "var": (("vars", name.name),)}[name.kind]
    for key in keys:
        span = src.keys.get(key)
        if span is not None and span.file is None:
            out.append(_range(span, 0, span.end_col - span.col) if span.line == span.end_line
                       else _range(span, 0, len(name.name)))
    for path, value in _walk(src.data):
        span = src.values.get(path)
        if not isinstance(value, str) or span is None or span.file is not None or span.line != span.end_line:
            continue
        if name.kind == "var":
            start = _value_offset(src, span, value)
            out.extend(_range(span, start + off, len(n)) for n, off in var_names(value) if n == name.name)
        elif name.kind == "block" and path[-1] == "block" and value == name.name:
            out.append(_range(span, _value_offset(src, span, value), len(value)))
        elif name.kind == "node" and is_ref(path) and path[0] != "blocks" and ref_name(value) == name.name:
            out.append(_range(span, _value_offset(src, span, value), len(name.name)))
    return out


# -- files that share names: the document, its bases, and the workspace's specs that extend them ---------


def _extends_of(text: str, file: str) -> str | None:
    m = _EXTENDS.search(text)
    return str((Path(file).parent / m.group(1).strip()).resolve()) if m else None


def family(snap: Snapshot, root: str | None, read: Callable[[str], str | None]) -> dict[str, str]:
    """File -> text: the document, its bases, and the specs under `root` that extend any of them."""
    out = {str(Path(snap.file).resolve()): snap.text}
    if snap.merged is not None:
        for f, text in snap.merged.bases.items():
            out[str(Path(f).resolve())] = text
    if root is None:
        return out
    files: list[str] = []
    for pattern in ("*.yaml", "*.yml"):
        for p in Path(root).rglob(pattern):
            if len(files) >= MAX_WORKSPACE_FILES:
                break
            if not any(part.startswith(".") or part in ("node_modules", "runs") for part in p.parts):
                files.append(str(p.resolve()))
    texts = {f: read(f) for f in files if f not in out}
    grew = True
    while grew:
        grew = False
        for f, maybe in texts.items():
            if f not in out and maybe is not None and _extends_of(maybe, f) in out:
                out[f] = maybe
                grew = True
    return out


def refuse_rename(snap: Snapshot, name: Name, new: str) -> str | None:
    """Why `name` cannot become `new` (not a name, or one already taken), or None."""
    if not NAME.fullmatch(new):
        return f"`{new}` is not a name: letters, digits, `_` and `-`, not starting with a digit"
    data = snap.merged.data if snap.merged is not None else snap.data
    sections = {"node": ("nodes", "inputs"), "block": ("blocks",), "var": ("vars",)}[name.kind]
    for section in sections:
        part = data.get(section) if isinstance(data, dict) else None
        if isinstance(part, dict) and new in part and new != name.name:
            return f"`{new}` is already a {section[:-1]} of this spec"
    return None


def rename_edits(snap: Snapshot, name: Name, new: str, files: dict[str, str]) -> lsp.WorkspaceEdit:
    changes: dict[str, list[lsp.TextEdit]] = {}
    for f, text in files.items():
        src = snap.raw if f == str(Path(snap.file).resolve()) else load_raw(text, f)
        if src is None:
            continue
        ranges = occurrences(src, name)
        if ranges:
            uri = snap.uri if src is snap.raw else uri_of(f)
            changes[uri] = [lsp.TextEdit(r, new) for r in ranges]
    return lsp.WorkspaceEdit(changes=changes)


def references(snap: Snapshot, name: Name, files: dict[str, str], include_declaration: bool) -> list[lsp.Location]:
    out: list[lsp.Location] = []
    for f, text in files.items():
        src = snap.raw if f == str(Path(snap.file).resolve()) else load_raw(text, f)
        if src is None:
            continue
        uri = snap.uri if src is snap.raw else uri_of(f)
        decl = _declaration(src, name)
        out.extend(lsp.Location(uri, r) for r in occurrences(src, name)
                   if include_declaration or decl is None or r != decl)
    return out


def _declaration(src: Source, name: Name) -> lsp.Range | None:
    for key in {"node": (("nodes", name.name), ("inputs", name.name)), "block": (("blocks", name.name),),
                "var": (("vars", name.name),)}[name.kind]:
        span = src.keys.get(key)
        if span is not None and span.file is None:
            return _range(span, 0, span.end_col - span.col)
    return None


# -- definition -----------------------------------------------------------------------------------------


def _located(file: str | None, snap: Snapshot, span: Span) -> lsp.Location:
    target = span.file or file or snap.file
    uri = snap.uri if target == snap.file else uri_of(target)
    return lsp.Location(uri, span_range(span))


def _base_node(snap: Snapshot, node: str) -> lsp.Location | None:
    """The node of a base that a variant's node changes."""
    if snap.merged is None:
        return None
    for f, text in snap.merged.bases.items():
        src = load_raw(text, f)
        span = src.keys.get(("nodes", node)) if src is not None else None
        if span is not None:
            return lsp.Location(uri_of(f), span_range(span))
    return None


def definition(snap: Snapshot, line: int, col: int) -> lsp.Location | None:
    entry = snap.at(line, col)
    if entry is None:
        return None
    path, value = entry.path, lookup(snap.data, entry.path)
    if path == ("extends",) and isinstance(value, str):
        target = Path(snap.file).parent / value
        return lsp.Location(uri_of(str(target)), lsp.Range(lsp.Position(0, 0), lsp.Position(0, 0)))
    if len(path) == 2 and path[0] == "nodes" and entry.key:
        return _base_node(snap, str(path[1]))
    if not entry.key and len(path) >= 5 and path[0] == "blocks" and path[2] == "nodes" and is_ref(path) \
            and isinstance(value, str):
        block = path[:2]
        span = snap.key_span((*block, "nodes", ref_name(value))) or snap.value_span((*block, "inputs"))
        return _located(None, snap, span) if span is not None else None
    if (not entry.key and isinstance(value, str) and path[:1] == ("nodes",)
            and path[2:] in (("model",), ("layer", "model"))):  # a node calling (or wrapping) a sub-model
        src = snap.merged or snap.raw
        span = src.keys.get(("models", value)) if src is not None else None
        return _located(None, snap, span) if span is not None else None
    name = name_at(snap, line, col)
    if name is None:
        return None
    merged = snap.merged or snap.raw
    if merged is None:
        return None
    keys = {"node": (("nodes", name.name), ("inputs", name.name)), "block": (("blocks", name.name),),
            "var": (("vars", name.name),)}[name.kind]
    for key in keys:
        span = merged.keys.get(key)
        if span is not None:
            return _located(None, snap, span)
    src = snap.checked.source if snap.checked is not None else None
    node = snap.graph.nodes.get(name.name) if snap.graph is not None and name.kind == "node" else None
    if node is not None and src is not None:  # an expanded node: where its block instance is
        span = src.span(tuple(node.path), key=True)
        if span is not None:
            return _located(None, snap, span)
    return None


# -- outline --------------------------------------------------------------------------------------------


def _symbol(snap: Snapshot, path: PathKey, kind: lsp.SymbolKind, detail: str | None) -> lsp.DocumentSymbol | None:
    key, value = snap.key_span(path), snap.value_span(path)
    if key is None:
        return None
    end = value if value is not None else key
    rng = lsp.Range(span_range(key).start, span_range(end).end)
    return lsp.DocumentSymbol(name=str(path[-1]), kind=kind, range=rng, selection_range=span_range(key),
                              detail=detail)


def symbols(snap: Snapshot) -> list[lsp.DocumentSymbol]:
    """The outline: inputs, nodes, blocks and models, each under its section."""
    data = snap.data if isinstance(snap.data, dict) else {}
    analysis = snap.analysis
    out: list[lsp.DocumentSymbol] = []
    sections: list[tuple[str, lsp.SymbolKind]] = [("inputs", lsp.SymbolKind.Variable),
                                                  ("nodes", lsp.SymbolKind.Function),
                                                  ("blocks", lsp.SymbolKind.Class),
                                                  ("models", lsp.SymbolKind.Module)]
    for section, kind in sections:
        items = data.get(section)
        if not isinstance(items, dict):
            continue
        children = []
        for name, value in items.items():
            detail = None
            if section in ("inputs", "nodes"):
                info = analysis.nodes.get(name) if analysis is not None else None
                layer = value.get("type") or value.get("block") if isinstance(value, dict) else None
                detail = " ".join(x for x in (str(layer) if layer else "", outputs_text(info) if info else "") if x)
            sym = _symbol(snap, (section, name), kind, detail or None)
            if sym is not None:
                children.append(sym)
        head = _symbol(snap, (section,), lsp.SymbolKind.Namespace, None)
        if head is not None:
            head.children = children
            out.append(head)
    return out
