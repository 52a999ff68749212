"""Document sync hooks: evaluate the prompt ahead of time when a file opens or typing pauses."""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING

from lsprotocol import types

from codeassist_lsp.errors import CodeassistError

if TYPE_CHECKING:
    from codeassist_lsp.server import CodeassistServer

log = logging.getLogger(__name__)

# Typing pause after which the prompt at the cursor is evaluated in the background.
PREWARM_IDLE_SECONDS = 0.3


def _prewarm(server: CodeassistServer, uri: str, position: types.Position | None) -> None:
    service = server.service
    if service is None or not server.settings.completion.prewarm:
        return
    try:
        document = server.workspace.get_text_document(uri)
        text = document.source
        offset = len(text) if position is None else min(document.offset_at_position(position), len(text))
        future = service.prewarm(text, offset, path=document.path, language_id=document.language_id)
        if future is not None:
            future.add_done_callback(lambda f: f.exception())  # a superseded prewarm is fine
    except CodeassistError as error:
        log.debug("prewarm skipped: %s", error.message)


def _schedule(server: CodeassistServer, uri: str, position: types.Position | None, delay: float) -> None:
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
    if len(lines) == 1:
        return types.Position(line=start.line, character=start.character + units)
    return types.Position(line=start.line + len(lines) - 1, character=units)


def register(server: CodeassistServer) -> None:
    """Prewarm on open and after a typing pause; forget state on close."""

    @server.feature(types.TEXT_DOCUMENT_DID_OPEN)
    async def did_open(params: types.DidOpenTextDocumentParams) -> None:
        _schedule(server, params.text_document.uri, None, 0.0)

    @server.feature(types.TEXT_DOCUMENT_DID_CHANGE)
    async def did_change(params: types.DidChangeTextDocumentParams) -> None:
        if params.content_changes:
            position = _end_of_change(server, params.content_changes[-1])
            _schedule(server, params.text_document.uri, position, PREWARM_IDLE_SECONDS)

    @server.feature(types.TEXT_DOCUMENT_DID_CLOSE)
    async def did_close(params: types.DidCloseTextDocumentParams) -> None:
        handle = server.prewarm_tasks.pop(params.text_document.uri, None)
        if handle is not None:
            handle.cancel()
