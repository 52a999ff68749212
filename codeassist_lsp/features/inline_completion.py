"""textDocument/inlineCompletion: ghost text at the cursor."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from lsprotocol import types

from codeassist_lsp.context.positions import line_ending, with_line_ending
from codeassist_lsp.features import clamp_position
from codeassist_lsp.features.suggest import suggest_at

if TYPE_CHECKING:
    from codeassist_lsp.server import CodeassistServer

# Run by the client when the user accepts an inline item (VS Code, Neovim 0.12): an explicit acceptance signal.
ACCEPTED_COMMAND = "codeassist.suggestionAccepted"
# Sent by the VS Code extension from its provider's show and partial-accept callbacks (params below).
DID_SHOW = "codeassist/didShowCompletion"
"""{"id": suggestion id}: the suggestion is on screen."""
DID_PARTIALLY_ACCEPT = "codeassist/didPartiallyAcceptCompletion"
"""{"id": suggestion id, "kind": "word" | "line" | "", "acceptedLength": characters taken so far}."""


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
            command=types.Command(title="codeassist: suggestion accepted", command=ACCEPTED_COMMAND,
                                  arguments=[suggestion.id]) if suggestion.id else None,
        )])

    @server.command(ACCEPTED_COMMAND)
    def suggestion_accepted(*args: Any) -> bool:
        # arguments: [suggestion id]; an unknown or already decided id changes nothing.
        suggestion_id = args[0] if args and isinstance(args[0], str) else None
        return bool(suggestion_id and server.service is not None and server.service.suggestion_accepted(suggestion_id))

    @server.feature(DID_SHOW)
    def did_show(params: Any) -> None:
        suggestion_id = _suggestion_id(params)
        if suggestion_id and server.service is not None:
            server.service.suggestion_shown(suggestion_id)

    @server.feature(DID_PARTIALLY_ACCEPT)
    def did_partially_accept(params: Any) -> None:
        suggestion_id = _suggestion_id(params)
        kind = getattr(params, "kind", "")
        if suggestion_id and server.service is not None:
            server.service.suggestion_partially_accepted(suggestion_id, kind if isinstance(kind, str) else "")


def _suggestion_id(params: Any) -> str | None:
    """The id in a client's notification about a suggestion (None when malformed: it is ignored)."""
    suggestion_id = getattr(params, "id", None)
    return suggestion_id if isinstance(suggestion_id, str) else None
