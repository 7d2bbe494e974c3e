"""Completion and code actions.

Completion reads the line being typed (the last analysis may be of an older text, or
of none that parsed): after `type:` the layer types of the catalog, after `$` the
variables, after `inputs:`/`outputs:`/`share:` the nodes and inputs, after `block:`
the blocks, and where a key is typed inside a node the arguments of its layer type
(with their defaults). Code actions are the hints of `lint` that are edits: a
"did you mean `X`?" replaces the misspelt name, and a model's parameter count can be
written into its `expect:`.
"""

from __future__ import annotations

import difflib
import re
from typing import Any

from lsprotocol import types as lsp

from graphspec.lsp.convert import span_range
from graphspec.lsp.hover import NODE_KEYS, argument_summary, model_anchor
from graphspec.lsp.snapshot import Snapshot, lookup
from graphspec.render.diff import flow
from graphspec.spec import catalog

_VAR = re.compile(r"\$\{?([A-Za-z0-9_\-]*)$")
_TYPE = re.compile(r"(?:^|[{,\s])type:\s*['\"]?([A-Za-z0-9_]*)$")
_REF = re.compile(r"(?:^|[{,\s])(?:inputs|outputs|share):\s*\[?(?:[^\]\n]*,\s*)?['\"]?([\w\-]*)$")
_ITEM = re.compile(r"^\s*-\s*['\"]?([\w\-]*)$")
_BLOCK = re.compile(r"(?:^|[{,\s])block:\s*['\"]?([\w\-]*)$")
_KEY = re.compile(r"(?:^\s*|[{,]\s*)([A-Za-z_][\w]*)?$")
_FLOW_TYPE = re.compile(r"(?:^|[{,\s])type:\s*['\"]?([A-Za-z0-9_]+)")
_DID_YOU_MEAN = re.compile(r"did you mean `([^`]+)`\?")
_WORD = re.compile(r"[A-Za-z_][\w\-]*")


def _items(names: Any, kind: lsp.CompletionItemKind, detail: Any = None) -> list[lsp.CompletionItem]:
    return [lsp.CompletionItem(label=str(n), kind=kind, detail=detail(n) if callable(detail) else None)
            for n in names]


def _vars(snap: Snapshot | None) -> dict[str, Any]:
    if snap is None:
        return {}
    data = snap.merged.data if snap.merged is not None else snap.data
    found = data.get("vars") if isinstance(data, dict) else None
    return found if isinstance(found, dict) else {}


def _names(snap: Snapshot | None) -> list[str]:
    """The nodes and inputs a reference may name: the file's (with its bases') and the expanded graph's."""
    if snap is None:
        return []
    out: dict[str, None] = {}
    for src in (snap.merged, snap.raw):
        data = src.data if src is not None else None
        for section in ("inputs", "nodes"):
            part = data.get(section) if isinstance(data, dict) else None
            out.update(dict.fromkeys(str(k) for k in (part if isinstance(part, dict) else {})))
    return list(out)


def _blocks(snap: Snapshot | None) -> list[str]:
    data = snap.merged.data if snap is not None and snap.merged is not None else None
    blocks = data.get("blocks") if isinstance(data, dict) else None
    return [str(b) for b in blocks] if isinstance(blocks, dict) else []


def _node_type(snap: Snapshot | None, line_text: str, line: int) -> str | None:
    """The layer type of the node being written on (or around) a 1-based line."""
    m = _FLOW_TYPE.search(line_text)
    if m:
        return m.group(1)
    if snap is None:
        return None
    for path in reversed(snap.enclosing(line)):
        if len(path) == 2 and path[0] == "nodes":
            node = lookup(snap.data, path)
            layer = node.get("type") if isinstance(node, dict) else None
            if layer is None and snap.graph is not None and path[1] in snap.graph.nodes:
                layer = snap.graph.nodes[path[1]].layer_type
            return layer if isinstance(layer, str) else None
    return None


def _arguments(layer: str, line_text: str) -> list[lsp.CompletionItem]:
    entry = catalog.LAYERS.get(layer)
    if entry is None:
        return []
    written = set(re.findall(r"([A-Za-z_]\w*):", line_text))
    out = []
    for name, p in entry.get("params", {}).items():
        if name in written:
            continue
        detail = "required" if p.get("required") else f"default: {flow(p.get('default'))}" + (
            f" ({type(p.get('default')).__name__})" if p.get("default") is not None else "")
        meaning = catalog.arg_doc(layer, name)
        doc = lsp.MarkupContent(lsp.MarkupKind.Markdown, "\n\n".join(
            [*([meaning] if meaning else []), argument_summary(layer, name, p)]))
        out.append(lsp.CompletionItem(label=name, kind=lsp.CompletionItemKind.Property, detail=detail,
                                      documentation=doc, insert_text=f"{name}: ",
                                      sort_text=("0" if p.get("required") else "1") + name))
    out.extend(lsp.CompletionItem(label=k, kind=lsp.CompletionItemKind.Keyword, insert_text=f"{k}: ",
                                  sort_text="2" + k) for k in sorted(NODE_KEYS) if k not in written)
    return out


def completion(snap: Snapshot | None, line_text: str, pos: lsp.Position) -> lsp.CompletionList:
    """What may be typed at `pos`, from the line as it is now."""
    before = line_text[:pos.character]
    items: list[lsp.CompletionItem] = []
    if _VAR.search(before) is not None:
        variables = _vars(snap)
        items = _items(variables, lsp.CompletionItemKind.Variable, lambda n: f"= {flow(variables[n])}")
    elif _TYPE.search(before):
        names = [n for n in catalog.LAYERS if n not in catalog.DANGEROUS_LAYERS]
        items = [lsp.CompletionItem(label=n, kind=lsp.CompletionItemKind.Class,
                                    detail=catalog.LAYERS[n].get("doc")) for n in names]
    elif _BLOCK.search(before):
        items = _items(_blocks(snap), lsp.CompletionItemKind.Module)
    elif _REF.search(before) or (_ITEM.search(before) and snap is not None and
                                 any(p and p[-1] in ("inputs", "outputs") for p in snap.enclosing(pos.line + 1))):
        items = _items(_names(snap), lsp.CompletionItemKind.Reference)
    elif _KEY.search(before):
        layer = _node_type(snap, line_text, pos.line + 1)
        items = _arguments(layer, line_text) if layer else []
    return lsp.CompletionList(is_incomplete=False, items=items)


# -- code actions ---------------------------------------------------------------------------------------


def _text_in(snap: Snapshot, rng: lsp.Range) -> str:
    lines = snap.text.splitlines()
    if rng.start.line != rng.end.line or rng.start.line >= len(lines):
        return ""
    return str(lines[rng.start.line][rng.start.character:rng.end.character])


def _fix(snap: Snapshot, diag: lsp.Diagnostic) -> lsp.CodeAction | None:
    hint: str | None = diag.data.get("hint") if isinstance(diag.data, dict) else None
    m = _DID_YOU_MEAN.search(hint or diag.message)
    if m is None:
        return None
    new = m.group(1)
    text = _text_in(snap, diag.range)
    words = [w for w in _WORD.finditer(text) if w.group(0) != new]
    if not words:
        return None
    best = max(words, key=lambda w: difflib.SequenceMatcher(None, w.group(0), new).ratio())
    line, start = diag.range.start.line, diag.range.start.character
    edit = lsp.TextEdit(lsp.Range(lsp.Position(line, start + best.start()), lsp.Position(line, start + best.end())),
                        new)
    return lsp.CodeAction(title=f"Replace `{best.group(0)}` with `{new}`", kind=lsp.CodeActionKind.QuickFix,
                          diagnostics=[diag], edit=lsp.WorkspaceEdit(changes={snap.uri: [edit]}), is_preferred=True)


def _indent(text: str) -> str:
    return text[:len(text) - len(text.lstrip(" "))]


def expect_edit(snap: Snapshot, model: str, params: int) -> lsp.TextEdit | None:
    """The edit that makes a model's `expect:` say `params: N` (adding `expect:` where there is none)."""
    path = tuple(snap.graph.models[model].path)
    base = path if path and path[0] == "models" else ()
    at = snap.value_span((*base, "expect", "params"))
    if at is not None:
        return lsp.TextEdit(span_range(at), str(params))
    expect = snap.value_span((*base, "expect"))
    raw = snap.raw
    if raw is None:
        return None
    if expect is not None:
        first = raw.line_text(expect.line)[expect.col - 1:]
        if first.startswith("{"):
            pos = lsp.Position(expect.line - 1, expect.col)
            return lsp.TextEdit(lsp.Range(pos, pos), f"params: {params}, ")
        pos = lsp.Position(expect.line - 1, expect.col - 1)
        return lsp.TextEdit(lsp.Range(pos, pos), f"params: {params}\n{' ' * (expect.col - 1)}")
    if base:
        value = snap.value_span(base)
        key = snap.key_span(base)
        if value is None or key is None:
            return None
        if raw.line_text(value.line)[value.col - 1:].startswith("{"):
            pos = lsp.Position(value.line - 1, value.col)
            return lsp.TextEdit(lsp.Range(pos, pos), f"expect: {{params: {params}}}, ")
        indent = _indent(raw.line_text(value.line)) if value.line > key.line else " " * (key.col + 1)
        pos = lsp.Position(key.line, 0)
        return lsp.TextEdit(lsp.Range(pos, pos), f"{indent}expect: {{params: {params}}}\n")
    lines = snap.text.splitlines()
    pos = lsp.Position(len(lines), 0)
    sep = "" if snap.text.endswith("\n") or not snap.text else "\n"
    return lsp.TextEdit(lsp.Range(pos, pos), f"{sep}expect: {{params: {params}}}\n")


def _expect_actions(snap: Snapshot, rng: lsp.Range, diags: list[lsp.Diagnostic]) -> list[lsp.CodeAction]:
    out: list[lsp.CodeAction] = []
    if snap.graph is None or snap.analysis is None:
        return out
    flagged = any(d.code == "GS501" for d in diags)
    for name, model in snap.graph.models.items():
        info = snap.analysis.models.get(name)
        line = model_anchor(snap, name, model.path)
        if info is None or info.params is None or line is None:
            continue
        base = tuple(model.path) if model.path and model.path[0] == "models" else ()
        current = lookup(snap.data, (*base, "expect", "params"))
        near = rng.start.line + 1 <= line <= rng.end.line + 1 or flagged
        if current == info.params or not near:
            continue
        edit = expect_edit(snap, name, info.params)
        if edit is not None:
            verb = "Update" if current is not None else "Add"
            out.append(lsp.CodeAction(title=f"{verb} `expect: {{params: {info.params}}}` of model `{name}`",
                                      kind=lsp.CodeActionKind.QuickFix,
                                      edit=lsp.WorkspaceEdit(changes={snap.uri: [edit]})))
    return out


def code_actions(snap: Snapshot, rng: lsp.Range, diags: list[lsp.Diagnostic]) -> list[lsp.CodeAction]:
    out = [a for d in diags if (a := _fix(snap, d)) is not None]
    return out + _expect_actions(snap, rng, diags)
