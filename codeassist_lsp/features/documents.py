"""Document sync hooks: keep syntax trees current, prewarm the prompt, index and scan on save."""

from __future__ import annotations

import asyncio
import logging
import os
from typing import TYPE_CHECKING

from lsprotocol import types
from pygls.uris import to_fs_path

from codeassist_lsp.context.documents import MAX_PARSE_CHARS, Document
from codeassist_lsp.context.languages import PARSE_TIMEOUT_MICROS
from codeassist_lsp.errors import CodeassistError
from codeassist_lsp.features import offset_in, open_document
from codeassist_lsp.service import MAX_LINE_CHARS

if TYPE_CHECKING:
    from codeassist_lsp.server import CodeassistServer

log = logging.getLogger(__name__)

# Typing pause after which context is refreshed and the prompt at the cursor evaluated.
PREWARM_IDLE_SECONDS = 0.3
# The largest line or character an LSP position may carry (the spec's uinteger).
MAX_UINTEGER = 2**31 - 1


def _prewarm(server: CodeassistServer, uri: str, position: types.Position | None) -> None:
    server.prewarm_tasks.pop(uri, None)
    service = server.service
    document = open_document(server, uri)
    if (service is None or document is None or not server.settings.completion.prewarm
            or not server.policy.allows("completion", document.language_id, document.path)):
        return  # a policy-disabled document is not even shown to the model
    try:
        text = document.source
        offset = len(text) if position is None else offset_in(document, position)
        if not _completable_line(text, offset):
            return  # the service never suggests there, and the prompt of a megabyte line costs seconds
        future = service.prewarm(text, offset, path=document.path, language_id=document.language_id,
                                 version=document.version)
        if future is not None:
            future.add_done_callback(lambda f: f.cancelled() or f.exception())  # superseded is fine
    except CodeassistError as error:
        log.debug("prewarm skipped: %s", error.message)


def _completable_line(text: str, offset: int) -> bool:
    """Whether the service may suggest at offset: it refuses minified and binary lines."""
    line_start = text.rfind("\n", 0, offset) + 1
    return offset - line_start <= MAX_LINE_CHARS and "\x00" not in text[line_start:offset]


def schedule_prewarm(server: CodeassistServer, uri: str, position: types.Position | None,
                     delay: float = PREWARM_IDLE_SECONDS) -> None:
    """Evaluate the prompt at `position` once the document has been idle for `delay` seconds."""
    previous = server.prewarm_tasks.pop(uri, None)
    if previous is not None:
        previous.cancel()
    loop = asyncio.get_running_loop()
    server.prewarm_tasks[uri] = loop.call_later(delay, _prewarm, server, uri, position)


def _end_of_change(server: CodeassistServer,
                   change: types.TextDocumentContentChangeEvent) -> types.Position | None:
    """Where the cursor most likely is after an edit: the end of the inserted text."""
    if not isinstance(change, types.TextDocumentContentChangePartial):
        return None
    lines = change.text.split("\n")
    start = change.range.start
    units = server.workspace.position_codec.client_num_units(lines[-1])
    # A client may name a character past the line's end (up to LSP's uinteger maximum): stay inside it.
    if len(lines) == 1:
        return types.Position(line=start.line, character=min(start.character + units, MAX_UINTEGER))
    return types.Position(line=min(start.line + len(lines) - 1, MAX_UINTEGER), character=units)


def _tell_if_parsed_without_tree(server: CodeassistServer, document: Document | None) -> None:
    """Once per session and reason: a document too big, or too slow, to parse (it is served without its tree)."""
    if document is None or document.language is None:
        return
    name = os.path.basename(document.uri) or document.uri
    if len(document.text) > MAX_PARSE_CHARS:
        key, why = "too-big-to-parse", (f"{name} has {len(document.text):,} characters, over the "
                                        f"{MAX_PARSE_CHARS:,} that are parsed")
    elif document.parse_timed_out:
        key, why = "parse-timeout", f"{name} takes longer than {PARSE_TIMEOUT_MICROS // 1000} ms to parse"
    else:
        return
    server.tell_once(key, (
        f"{why}, so suggestions in it are made and checked without its syntax tree (no block suggestions, no "
        "syntax check). Expected for huge or generated files; nothing to fix, and other files are not affected."),
        types.MessageType.Info)


def _scan(server: CodeassistServer, uri: str) -> None:
    if server.settings.security.diagnostics and server.diagnostics is not None:
        server.diagnostics.schedule(uri)


def register(server: CodeassistServer) -> None:
    """didOpen / didChange / didSave / didClose / didChangeWatchedFiles."""

    @server.feature(types.TEXT_DOCUMENT_DID_OPEN)
    async def did_open(params: types.DidOpenTextDocumentParams) -> None:
        item = params.text_document
        document = server.documents.open(to_fs_path(item.uri) or item.uri, item.text, item.language_id, item.version)
        _tell_if_parsed_without_tree(server, document)
        # After the usual idle delay, not at once: a cursor hint that follows the open (a codeAction
        # request) replaces this guess at the end of the document with where the user really is.
        schedule_prewarm(server, item.uri, None)
        _scan(server, item.uri)

    @server.feature(types.TEXT_DOCUMENT_DID_CHANGE)
    async def did_change(params: types.DidChangeTextDocumentParams) -> None:
        uri = params.text_document.uri
        document = server.workspace.get_text_document(uri)
        # pygls already applied the edits in the negotiated encoding; the tree follows the text.
        _tell_if_parsed_without_tree(server, server.documents.update(document.path, document.source, document.version))
        if server.service is not None:
            server.service.document_changed(document.path, document.source)
        if params.content_changes:
            position = _end_of_change(server, params.content_changes[-1])
            schedule_prewarm(server, uri, position, PREWARM_IDLE_SECONDS)

    @server.feature(types.TEXT_DOCUMENT_DID_SAVE, types.SaveOptions(include_text=False))
    async def did_save(params: types.DidSaveTextDocumentParams) -> None:
        uri = params.text_document.uri
        if server.index is not None:
            path = to_fs_path(uri)
            if path:
                await asyncio.get_running_loop().run_in_executor(None, server.index.update_file, path)
        _scan(server, uri)

    @server.feature(types.TEXT_DOCUMENT_DID_CLOSE)
    async def did_close(params: types.DidCloseTextDocumentParams) -> None:
        uri = params.text_document.uri
        handle = server.prewarm_tasks.pop(uri, None)
        if handle is not None:
            handle.cancel()
        path = to_fs_path(uri) or uri
        server.documents.close(path)
        if server.service is not None:
            server.service.forget(path)
        if server.diagnostics is not None:
            server.diagnostics.forget(uri)

    @server.feature(types.WORKSPACE_DID_CHANGE_WATCHED_FILES)
    async def did_change_watched_files(params: types.DidChangeWatchedFilesParams) -> None:
        if server.index is None:
            return
        loop = asyncio.get_running_loop()
        for change in params.changes:
            path = to_fs_path(change.uri)
            if path:
                await loop.run_in_executor(None, server.index.update_file, path)
