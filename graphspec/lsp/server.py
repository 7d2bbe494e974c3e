"""The pygls server: one document store, one analysis per version, answers from the last one.

An edit schedules an analysis of the document. An edit that finds the worker idle and
no analysis of its document pending is analysed at once (an isolated edit gets its
diagnostics without waiting); one that arrives while an analysis runs or waits is
debounced: it waits a short pause, restarted by every further edit, so a burst of
typing is analysed once more at its end. A newer edit cancels an
analysis that has not started, an analysis that starts after a newer edit returns at
once, and one that finishes for an older version is not published (a stale picture).
Analyses run one at a time on a worker thread, so the event loop keeps answering:
every request answers from the last complete analysis of its document, never waiting
for the next.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import dataclasses
import gc
import os
import re
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from lsprotocol import types as lsp
from pygls.lsp.server import LanguageServer

from graphspec import __version__
from graphspec.diagnostics import Diagnostic, Location, Severity
from graphspec.lsp import convert, hover, navigate
from graphspec.lsp.snapshot import Settings, Snapshot, analyse

DEBOUNCE_S = 0.1
_SPEC = re.compile(r"^(?:graphspec|extends):|graphspec\.schema\.json", re.MULTILINE)
T = TypeVar("T")


@dataclasses.dataclass
class DocState:
    uri: str
    version: int = 0
    snapshot: Snapshot | None = None  # the last complete analysis whose text parsed (requests answer from it)
    published: int = -1  # the version whose diagnostics were last published
    pending: asyncio.Task[None] | None = None
    spec: bool = True  # whether the document looked like a spec when it was opened (other YAML is left alone)


class GraphspecServer(LanguageServer):
    """A language server for graphspec specs."""

    def __init__(self, plugins: list[str] | None = None, debounce: float = DEBOUNCE_S) -> None:
        super().__init__("graphspec", __version__)
        self.docs: dict[str, DocState] = {}
        self.cli_plugins = plugins or []
        self.settings = Settings()
        self.debounce = debounce
        self.worker = concurrent.futures.ThreadPoolExecutor(max_workers=1, thread_name_prefix="graphspec-analysis")
        self.running = 0  # analyses submitted to the worker and not yet finished

    # -- the document store ---------------------------------------------------------------------------

    def state(self, uri: str) -> DocState:
        found = self.docs.get(uri)
        if found is None:
            found = self.docs[uri] = DocState(uri)
        return found

    def snapshot(self, uri: str) -> Snapshot | None:
        doc = self.docs.get(uri)
        return doc.snapshot if doc is not None else None

    def schedule(self, uri: str, version: int, *, delay: float) -> None:
        doc = self.state(uri)
        doc.version = version
        if not doc.spec:
            return
        quiet = self.running == 0  # the worker is idle: nothing to wait for
        if doc.pending is not None and not doc.pending.done():
            doc.pending.cancel()
            quiet = False  # in a burst: wait for its end
        doc.pending = asyncio.ensure_future(self._analyse_later(uri, version, 0 if quiet else delay))

    async def _analyse_later(self, uri: str, version: int, delay: float) -> None:
        if delay:
            await asyncio.sleep(delay)
        loop = asyncio.get_running_loop()
        job = self.worker.submit(self._analyse, uri, version)
        self.running += 1  # until the worker is done with it (a cancelled wait does not stop a running job)
        job.add_done_callback(lambda _: loop.call_soon_threadsafe(self._finished))
        snap, error = await asyncio.wrap_future(job)  # cancelled: a job not yet started never runs
        if error:  # logged from the event loop: the transport is not the worker thread's to write to
            self.log(lsp.MessageType.Error, error)
        doc = self.docs.get(uri)
        if snap is None or doc is None or doc.version != version:
            return  # a newer edit arrived: its own analysis publishes
        if snap.raw is not None or doc.snapshot is None:
            doc.snapshot = snap
        doc.published = version
        self.text_document_publish_diagnostics(lsp.PublishDiagnosticsParams(
            uri=uri, version=version, diagnostics=self._lsp_diagnostics(snap)))

    def _finished(self) -> None:
        self.running -= 1

    def _analyse(self, uri: str, version: int) -> tuple[Snapshot | None, str]:
        """On the worker thread: the analysis of `version` (None if a newer edit made it useless), and
        the traceback of a crash."""
        doc = self.docs.get(uri)
        if doc is None or doc.version != version:
            return None, ""
        text = self.workspace.get_text_document(uri).source
        file = convert.path_of(uri)
        try:
            return analyse(uri, file, version, text, self.settings), ""
        except Exception as exc:  # noqa: BLE001 - as `lint`: a crash on one file is a GS900 diagnostic
            diag = Diagnostic("GS900", Severity.ERROR, f"internal error while checking this file: "
                              f"{type(exc).__name__}: {exc}", Location(file, 1, 1),
                              "this is a bug in graphspec; please report it with this file")
            error = f"internal error analysing {file}:\n{traceback.format_exc()}"
            return Snapshot(uri, file, version, text, [diag], None, None, None), error

    def _lsp_diagnostics(self, snap: Snapshot) -> list[lsp.Diagnostic]:
        extends_span = snap.key_span(("extends",))
        return [convert.diagnostic(d, snap.file, extends_span) for d in snap.diagnostics]

    def log(self, kind: lsp.MessageType, message: str) -> None:
        self.window_log_message(lsp.LogMessageParams(kind, message))

    def guard(self, what: str, fn: Callable[[], T], default: T) -> T:
        """A request's answer; an exception is logged as an error and answered with nothing."""
        try:
            return fn()
        except Exception:  # noqa: BLE001 - one failing request never takes the server down
            self.log(lsp.MessageType.Error, f"{what} failed:\n{traceback.format_exc()}")
            return default

    def read(self, file: str) -> str | None:
        """A file's text: the open document's if it is open, else what is on disk."""
        uri = convert.uri_of(file)
        doc = self.workspace.text_documents.get(uri)
        if doc is not None:
            return str(doc.source)
        try:
            return Path(file).read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError):
            return None

    def root(self) -> str | None:
        return self.workspace.root_path or None


def make_server(plugins: list[str] | None = None, debounce: float = DEBOUNCE_S) -> GraphspecServer:
    """A server with every feature registered."""
    from graphspec.lsp import complete

    server = GraphspecServer(plugins, debounce)

    @server.feature(lsp.INITIALIZED)
    def initialized(ls: GraphspecServer, params: lsp.InitializedParams) -> None:
        from graphspec.spec import plugins as plugins_mod

        root = ls.root()
        if root and Path(root).is_dir():
            os.chdir(root)  # as `lint` run from the project's folder: its pyproject.toml, its plugins
        gc.freeze()  # as `lint`: what start-up imported is never garbage, keep the collector off it
        ls.settings.plugins = ls.guard("reading the project's plugins",
                                       lambda: plugins_mod.all_plugins(ls.cli_plugins), list(ls.cli_plugins))

    @server.feature(lsp.TEXT_DOCUMENT_DID_OPEN)
    def did_open(ls: GraphspecServer, params: lsp.DidOpenTextDocumentParams) -> None:
        # As `lint` on a folder: YAML without a `graphspec:` (or `extends:`) key is not a spec.
        ls.state(params.text_document.uri).spec = bool(_SPEC.search(params.text_document.text))
        ls.schedule(params.text_document.uri, params.text_document.version, delay=0)

    @server.feature(lsp.TEXT_DOCUMENT_DID_CHANGE)
    def did_change(ls: GraphspecServer, params: lsp.DidChangeTextDocumentParams) -> None:
        ls.schedule(params.text_document.uri, params.text_document.version, delay=ls.debounce)

    @server.feature(lsp.TEXT_DOCUMENT_DID_SAVE)
    def did_save(ls: GraphspecServer, params: lsp.DidSaveTextDocumentParams) -> None:
        doc = ls.docs.get(params.text_document.uri)
        if doc is not None:  # a base changed on disk: its variants' pictures are stale
            for other in ls.docs.values():
                if other is not doc and other.snapshot is not None and other.snapshot.merged is not None \
                        and other.snapshot.merged.bases:
                    ls.schedule(other.uri, other.version, delay=ls.debounce)

    @server.feature(lsp.TEXT_DOCUMENT_DID_CLOSE)
    def did_close(ls: GraphspecServer, params: lsp.DidCloseTextDocumentParams) -> None:
        doc = ls.docs.pop(params.text_document.uri, None)
        if doc is not None and doc.pending is not None:
            doc.pending.cancel()
        ls.text_document_publish_diagnostics(lsp.PublishDiagnosticsParams(uri=params.text_document.uri,
                                                                          diagnostics=[]))

    @server.feature(lsp.TEXT_DOCUMENT_HOVER)
    def on_hover(ls: GraphspecServer, params: lsp.HoverParams) -> lsp.Hover | None:
        snap = ls.snapshot(params.text_document.uri)
        return None if snap is None else ls.guard("hover", lambda: hover.hover(snap, params.position), None)

    @server.feature(lsp.TEXT_DOCUMENT_INLAY_HINT)
    def on_inlay(ls: GraphspecServer, params: lsp.InlayHintParams) -> list[lsp.InlayHint]:
        snap = ls.snapshot(params.text_document.uri)
        r = params.range
        return [] if snap is None else ls.guard(
            "inlay hints", lambda: hover.inlay_hints(snap, r.start.line + 1, r.end.line + 1), [])

    @server.feature(lsp.TEXT_DOCUMENT_DOCUMENT_SYMBOL)
    def on_symbols(ls: GraphspecServer, params: lsp.DocumentSymbolParams) -> list[lsp.DocumentSymbol]:
        snap = ls.snapshot(params.text_document.uri)
        return [] if snap is None else ls.guard("document symbols", lambda: navigate.symbols(snap), [])

    @server.feature(lsp.TEXT_DOCUMENT_DEFINITION)
    def on_definition(ls: GraphspecServer, params: lsp.DefinitionParams) -> lsp.Location | None:
        snap = ls.snapshot(params.text_document.uri)
        p = params.position
        return None if snap is None else ls.guard(
            "definition", lambda: navigate.definition(snap, p.line + 1, p.character + 1), None)

    @server.feature(lsp.TEXT_DOCUMENT_REFERENCES)
    def on_references(ls: GraphspecServer, params: lsp.ReferenceParams) -> list[lsp.Location]:
        snap = ls.snapshot(params.text_document.uri)
        if snap is None:
            return []

        def answer() -> list[lsp.Location]:
            assert snap is not None
            name = navigate.name_at(snap, params.position.line + 1, params.position.character + 1)
            if name is None:
                return []
            files = navigate.family(snap, ls.root(), ls.read)
            return navigate.references(snap, name, files, params.context.include_declaration)

        return ls.guard("references", answer, [])

    @server.feature(lsp.TEXT_DOCUMENT_PREPARE_RENAME)
    def on_prepare_rename(ls: GraphspecServer, params: lsp.PrepareRenameParams) -> Any:
        snap = ls.snapshot(params.text_document.uri)
        p = params.position
        name = None if snap is None else ls.guard(
            "prepare rename", lambda: navigate.name_at(snap, p.line + 1, p.character + 1), None)
        return None if name is None else lsp.PrepareRenameDefaultBehavior(default_behavior=True)

    @server.feature(lsp.TEXT_DOCUMENT_RENAME)
    def on_rename(ls: GraphspecServer, params: lsp.RenameParams) -> lsp.WorkspaceEdit | None:
        snap = ls.snapshot(params.text_document.uri)
        if snap is None:
            return None

        def answer() -> lsp.WorkspaceEdit | None:
            assert snap is not None
            name = navigate.name_at(snap, params.position.line + 1, params.position.character + 1)
            if name is None:
                return None
            refused = navigate.refuse_rename(snap, name, params.new_name)
            if refused is not None:
                ls.window_show_message(lsp.ShowMessageParams(lsp.MessageType.Info, refused))
                return None
            files = navigate.family(snap, ls.root(), ls.read)
            return navigate.rename_edits(snap, name, params.new_name, files)

        return ls.guard("rename", answer, None)

    @server.feature(lsp.TEXT_DOCUMENT_COMPLETION, lsp.CompletionOptions(trigger_characters=["$", ":", " ", "["]))
    def on_completion(ls: GraphspecServer, params: lsp.CompletionParams) -> lsp.CompletionList:
        snap = ls.snapshot(params.text_document.uri)
        text = ls.workspace.get_text_document(params.text_document.uri).lines
        line = text[params.position.line] if params.position.line < len(text) else ""
        return ls.guard("completion", lambda: complete.completion(snap, line, params.position),
                        lsp.CompletionList(is_incomplete=False, items=[]))

    @server.feature(lsp.TEXT_DOCUMENT_CODE_ACTION,
                    lsp.CodeActionOptions(code_action_kinds=[lsp.CodeActionKind.QuickFix]))
    def on_code_action(ls: GraphspecServer, params: lsp.CodeActionParams) -> list[lsp.CodeAction]:
        snap = ls.snapshot(params.text_document.uri)
        return [] if snap is None else ls.guard(
            "code actions", lambda: complete.code_actions(snap, params.range, list(params.context.diagnostics)), [])

    return server


def serve(plugins: list[str] | None = None) -> None:
    """Run the server on standard input and output until the client says exit."""
    make_server(plugins).start_io()
