"""A synchronous driver for `graphspec lsp` over stdio, with pytest-lsp's client (tests/test_lsp*.py).

One server process per test module: each call runs one request to completion on the
module's own event loop, so tests (and hypothesis) stay plain functions.
"""

from __future__ import annotations

import asyncio
import contextlib
import sys
from collections.abc import Coroutine, Sequence
from pathlib import Path
from typing import Any, TypeVar

from lsprotocol import types as lsp
from pytest_lsp import client as pytest_lsp_client

ROOT = Path(__file__).resolve().parent.parent
T = TypeVar("T")


class Session:
    """A running server and a client talking to it."""

    def __init__(self, root: Path = ROOT, command: Sequence[str] = (sys.executable, "-m", "graphspec", "lsp"),
                 env: dict[str, str] | None = None) -> None:
        self.loop = asyncio.new_event_loop()
        self.client = pytest_lsp_client.LanguageClient(converter_factory=pytest_lsp_client.default_converter)  # type: ignore[attr-defined]
        self.published: dict[str, int | None] = {}  # uri -> the document version of its last diagnostics

        def publish(params: lsp.PublishDiagnosticsParams) -> None:  # (no `ls` parameter: pygls passes params only)
            self.client.diagnostics[params.uri] = params.diagnostics
            self.published[params.uri] = params.version

        pytest_lsp_client.register_lsp_features(self.client, {
            **pytest_lsp_client.DEFAULT_CLIENT_FEATURES, lsp.TEXT_DOCUMENT_PUBLISH_DIAGNOSTICS: publish})
        self.run(self.client.start_io(command[0], *command[1:], env=env))
        self.init_result = self.run(self.client.initialize_session(lsp.InitializeParams(
            capabilities=lsp.ClientCapabilities(), root_uri=root.as_uri())))
        self.versions: dict[str, int] = {}

    def run(self, coro: Coroutine[Any, Any, T], timeout: float = 60) -> T:
        return self.loop.run_until_complete(asyncio.wait_for(coro, timeout))

    def close(self) -> None:
        self.run(self.client.shutdown_session())
        self.loop.close()

    def errors(self) -> list[str]:
        """Errors and warnings the server logged (window/logMessage, window/showMessage)."""
        return [m.message for m in self.client.log_messages if m.type in (lsp.MessageType.Error,
                                                                          lsp.MessageType.Warning)]

    async def _diagnostics(self, uri: str, version: int | None = None) -> list[lsp.Diagnostic]:
        """The diagnostics published for `uri` (for its `version`, when given: an idle server analyses the
        first of several edits at once, and that earlier picture must not be taken for the last one's)."""
        while uri not in self.client.diagnostics or (
                version is not None and self.published.get(uri) not in (version, None)):
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self.client.wait_for_notification(lsp.TEXT_DOCUMENT_PUBLISH_DIAGNOSTICS), 0.5)
        return list(self.client.diagnostics[uri])

    def open(self, path: Path | str, text: str | None = None) -> tuple[str, list[lsp.Diagnostic]]:
        """Open a document (its text from disk unless given); its URI and first diagnostics."""
        path = Path(path).resolve()
        uri = path.as_uri()
        text = path.read_text(encoding="utf-8") if text is None else text
        self.client.diagnostics.pop(uri, None)
        self.versions[uri] = 1
        self.client.text_document_did_open(lsp.DidOpenTextDocumentParams(lsp.TextDocumentItem(uri, "yaml", 1, text)))
        return uri, self.run(self._diagnostics(uri))

    def change(self, uri: str, edits: list[tuple[lsp.Range | None, str]], *, wait: bool = True
               ) -> list[lsp.Diagnostic] | None:
        """Apply edits (a range and its new text; None: the whole text), then (wait) the diagnostics."""
        self.client.diagnostics.pop(uri, None)
        self.published.pop(uri, None)
        for rng, text in edits:
            self.versions[uri] += 1
            change: Any = (lsp.TextDocumentContentChangePartial(range=rng, text=text) if rng is not None
                           else lsp.TextDocumentContentChangeWholeDocument(text=text))
            self.client.text_document_did_change(lsp.DidChangeTextDocumentParams(
                lsp.VersionedTextDocumentIdentifier(version=self.versions[uri], uri=uri), [change]))
        return self.run(self._diagnostics(uri, self.versions[uri])) if wait else None

    def close_doc(self, uri: str) -> None:
        """Close a document, and wait for the server to clear its diagnostics (so no late one is taken
        for the next open's)."""
        self.client.diagnostics.pop(uri, None)
        self.client.text_document_did_close(lsp.DidCloseTextDocumentParams(lsp.TextDocumentIdentifier(uri)))
        assert self.run(self._diagnostics(uri)) == []

    def hover(self, uri: str, line: int, col: int) -> str | None:
        h = self.run(self.client.text_document_hover_async(lsp.HoverParams(
            lsp.TextDocumentIdentifier(uri), lsp.Position(line, col))))
        if h is None:
            return None
        assert isinstance(h.contents, lsp.MarkupContent)
        return str(h.contents.value)

    def inlay(self, uri: str, lines: int) -> list[lsp.InlayHint]:
        found = self.run(self.client.text_document_inlay_hint_async(lsp.InlayHintParams(
            lsp.TextDocumentIdentifier(uri), lsp.Range(lsp.Position(0, 0), lsp.Position(lines, 0)))))
        return list(found or [])

    def definition(self, uri: str, line: int, col: int) -> Any:
        return self.run(self.client.text_document_definition_async(lsp.DefinitionParams(
            lsp.TextDocumentIdentifier(uri), lsp.Position(line, col))))

    def references(self, uri: str, line: int, col: int) -> list[lsp.Location]:
        found = self.run(self.client.text_document_references_async(lsp.ReferenceParams(
            context=lsp.ReferenceContext(include_declaration=True), text_document=lsp.TextDocumentIdentifier(uri),
            position=lsp.Position(line, col))))
        return list(found or [])

    def completion(self, uri: str, line: int, col: int) -> list[str]:
        return [i.label for i in self.completion_items(uri, line, col)]

    def completion_items(self, uri: str, line: int, col: int) -> list[lsp.CompletionItem]:
        r = self.run(self.client.text_document_completion_async(lsp.CompletionParams(
            lsp.TextDocumentIdentifier(uri), lsp.Position(line, col))))
        return list(r.items if isinstance(r, lsp.CompletionList) else (r or []))

    def code_actions(self, uri: str, rng: lsp.Range, diags: list[lsp.Diagnostic]) -> list[lsp.CodeAction]:
        r = self.run(self.client.text_document_code_action_async(lsp.CodeActionParams(
            lsp.TextDocumentIdentifier(uri), rng, lsp.CodeActionContext(diagnostics=diags))))
        return [a for a in (r or []) if isinstance(a, lsp.CodeAction)]

    def rename(self, uri: str, line: int, col: int, new: str) -> lsp.WorkspaceEdit | None:
        return self.run(self.client.text_document_rename_async(lsp.RenameParams(
            lsp.TextDocumentIdentifier(uri), lsp.Position(line, col), new)))

    def symbols(self, uri: str) -> list[Any]:
        return list(self.run(self.client.text_document_document_symbol_async(lsp.DocumentSymbolParams(
            lsp.TextDocumentIdentifier(uri)))) or [])


def apply_edits(text: str, edits: Sequence[lsp.TextEdit]) -> str:
    """`text` with non-overlapping edits applied (as an editor applies a WorkspaceEdit)."""
    lines = text.splitlines(keepends=True)
    starts = [0]
    for line in lines:
        starts.append(starts[-1] + len(line))

    def offset(p: lsp.Position) -> int:
        return int(starts[min(p.line, len(lines))] + p.character)

    for e in sorted(edits, key=lambda e: (e.range.start.line, e.range.start.character), reverse=True):
        text = text[:offset(e.range.start)] + e.new_text + text[offset(e.range.end):]
    return text
