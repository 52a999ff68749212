"""textDocument/inlineCompletion: ghost text at the cursor."""

from __future__ import annotations

from typing import TYPE_CHECKING

from lsprotocol import types

from codeassist_lsp.context.positions import line_ending, with_line_ending
from codeassist_lsp.features import clamp_position
from codeassist_lsp.features.suggest import suggest_at

if TYPE_CHECKING:
    from codeassist_lsp.server import CodeassistServer


def register(server: CodeassistServer) -> None:
    """Advertise and serve inline completion (pygls advertises it only with explicit options)."""

    @server.feature(types.TEXT_DOCUMENT_INLINE_COMPLETION, types.InlineCompletionOptions())
    async def inline_completion(params: types.InlineCompletionParams) -> types.InlineCompletionList | None:
        suggestion = await suggest_at(server, params.text_document.uri, params.position)
        if suggestion is None or not suggestion.text:
            return None
        document = server.workspace.get_text_document(params.text_document.uri)
        position = clamp_position(document, params.position)
        return types.InlineCompletionList(items=[types.InlineCompletionItem(
            insert_text=with_line_ending(suggestion.text, line_ending(document.source)),
            range=types.Range(start=position, end=position),
        )])
