"""Thin LSP adapters: params in, one call on a service, an lsprotocol type out."""

from __future__ import annotations

from typing import Any
from urllib.parse import unquote

from lsprotocol import types


def clamp_position(document: Any, position: types.Position) -> types.Position:
    """A character past its line's end means the line's end (LSP spec); other positions as given."""
    lines = document.lines
    if 0 <= position.line < len(lines):
        length = document.position_codec.client_num_units(lines[position.line].rstrip("\r\n"))
        if position.character > length:
            return types.Position(line=position.line, character=length)
    return position


def offset_in(document: Any, position: types.Position) -> int:
    """The str offset of an LSP position, clamped to its line and to the document."""
    return min(document.offset_at_position(clamp_position(document, position)), len(document.source))


def open_document(server: Any, uri: str) -> Any | None:
    """The document as the client has it open, or None (pygls would read a closed one from disk)."""
    # The same key pygls files open documents under.
    return server.workspace.text_documents.get(unquote(uri))
