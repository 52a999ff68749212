"""textDocument/completion: the same suggestion as a completion item, for clients without ghost text."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from lsprotocol import types

from codeassist_lsp.context.positions import line_ending, with_line_ending
from codeassist_lsp.features import clamp_position
from codeassist_lsp.features.suggest import suggest_at

if TYPE_CHECKING:
    from codeassist_lsp.server import CodeassistServer

_WORD_TAIL = re.compile(r"[\w$]+$")


def snippet_text(text: str) -> str:
    """Text as an LSP snippet that expands to exactly it (no tab stops)."""
    return text.replace("\\", "\\\\").replace("$", "\\$").replace("}", "\\}")


def completion_item(suggestion_text: str, word_before: str, start: types.Position,
                    position: types.Position, *, as_snippet: bool = False) -> types.CompletionItem:
    """An item whose edit starts at the word being typed, so client-side filtering keeps it.

    as_snippet: for Neovim, whose menu inserts only the first word of a plain-text edit ("a" of
    "a + b") but the whole label of a snippet (its built-in completion then expands the whole text).
    """
    new_text = word_before + suggestion_text
    first_line = new_text.split("\n", 1)[0]
    return types.CompletionItem(
        label=first_line.strip() or new_text.strip(),
        kind=types.CompletionItemKind.Snippet if "\n" in new_text else types.CompletionItemKind.Text,
        detail="codeassist",
        filter_text=new_text,
        sort_text="0",
        insert_text_format=types.InsertTextFormat.Snippet if as_snippet else types.InsertTextFormat.PlainText,
        text_edit=types.TextEdit(range=types.Range(start=start, end=position),
                                 new_text=snippet_text(new_text) if as_snippet else new_text),
        documentation=types.MarkupContent(kind=types.MarkupKind.Markdown,
                                          value=f"```\n{new_text}\n```") if "\n" in new_text else None,
    )


def register(server: CodeassistServer) -> None:
    """Serve the model's suggestion through the completion menu."""

    @server.feature(types.TEXT_DOCUMENT_COMPLETION, types.CompletionOptions(trigger_characters=[".", "(", " "]))
    async def completion(params: types.CompletionParams) -> types.CompletionList | None:
        suggestion = await suggest_at(server, params.text_document.uri, params.position)
        if suggestion is None or not suggestion.text:
            return types.CompletionList(is_incomplete=True, items=[])
        document = server.workspace.get_text_document(params.text_document.uri)
        text_before = document.source[: suggestion.offset]
        match = _WORD_TAIL.search(text_before[text_before.rfind("\n") + 1:])
        word = match.group(0) if match else ""
        # The edit starts where the word starts, counted in the client's position units.
        units = document.position_codec.client_num_units(word)
        position = clamp_position(document, params.position)
        start = types.Position(line=position.line, character=position.character - units)
        item = completion_item(with_line_ending(suggestion.text, line_ending(document.source)), word, start, position,
                               as_snippet=server.client_name.lower().startswith("neovim"))
        return types.CompletionList(is_incomplete=True, items=[item])
