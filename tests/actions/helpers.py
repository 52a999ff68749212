"""Helpers for code-action tests: request builders and applying edits to text."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any, Union

from lsprotocol import types
from pytest_lsp import LanguageClient

from tests.lsp.helpers import running_server


def offset_at(text: str, position: types.Position) -> int:
    """str offset of an LSP position (ASCII test documents: UTF-16 units are characters)."""
    lines = text.split("\n")
    return sum(len(line) + 1 for line in lines[:position.line]) + position.character


def position_at(text: str, offset: int) -> types.Position:
    """LSP position of a str offset (ASCII test documents)."""
    line = text.count("\n", 0, offset)
    return types.Position(line=line, character=offset - (text.rfind("\n", 0, offset) + 1))


def apply_edit(text: str, edit: types.WorkspaceEdit, uri: str, version: int) -> str:
    """Apply a WorkspaceEdit made of one versioned TextDocumentEdit; checks uri and version."""
    assert edit.document_changes and len(edit.document_changes) == 1, edit
    change = edit.document_changes[0]
    assert isinstance(change, types.TextDocumentEdit)
    assert change.text_document.uri == uri and change.text_document.version == version
    for text_edit in sorted(change.edits, key=lambda e: offset_at(text, e.range.start), reverse=True):
        start, end = offset_at(text, text_edit.range.start), offset_at(text, text_edit.range.end)
        text = text[:start] + text_edit.new_text + text[end:]
    return text


def code_action_params(uri: str, text: str, start: int, end: int | None = None,
                       diagnostics: list[types.Diagnostic] | None = None) -> types.CodeActionParams:
    """A codeAction request for [start, end) of text."""
    return types.CodeActionParams(
        text_document=types.TextDocumentIdentifier(uri=uri),
        range=types.Range(start=position_at(text, start), end=position_at(text, end if end is not None else start)),
        context=types.CodeActionContext(diagnostics=diagnostics or [],
                                        trigger_kind=types.CodeActionTriggerKind.Invoked))


def parses(text: str, language: str = "python") -> bool:
    """Whether text parses without a syntax error (tree-sitter)."""
    from codeassist_lsp.context.languages import language_for, parse

    tree = parse(language_for(language), text.encode())
    return tree is not None and not tree.root_node.has_error


def parse_code_actions_by_spec(client: LanguageClient) -> None:
    """Make the test client tell a CodeAction carrying a command from a bare Command, as editors do."""
    # lsprotocol's hook structures any result item with a "command" key as a Command, so a CodeAction
    # with a command (what we send to clients without resolve support, and for explanations) came back
    # as a Command and the tests found no action. The spec tells them apart by the type of `command`.
    converter = client.protocol._converter

    def structure(obj: Any, _: type) -> types.Command | types.CodeAction:
        kind = types.Command if isinstance(obj.get("command"), str) else types.CodeAction
        return converter.structure(obj, kind)

    converter.register_structure_hook(Union[types.Command, types.CodeAction], structure)


@contextlib.asynccontextmanager
async def bounded_server(options: dict[str, Any], *, seconds: float, caps: types.ClientCapabilities | None = None,
                         env: dict[str, str] | None = None) -> AsyncIterator[tuple[LanguageClient, types.InitializeResult]]:
    """running_server with a wall-clock limit (running_server ends the server when a test fails)."""
    async with running_server(options, caps=caps, env=env) as (client, result):
        parse_code_actions_by_spec(client)
        async with asyncio.timeout(seconds):
            yield client, result
