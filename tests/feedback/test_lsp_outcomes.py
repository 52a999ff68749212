"""Scripted edit sequences against the real server and the real model: every outcome inferred right.

The client here behaves like VS Code: it asks for ghost text after every edit, accepts by inserting
the item's text (and running its command, when the script says so), accepts a word, types through,
moves the cursor (a code-action request elsewhere, as VS Code's lightbulb sends) and undoes.
"""

from __future__ import annotations

import asyncio
import re
from pathlib import Path
from typing import Any

import pytest
import pytest_lsp
from lsprotocol import types
from pytest_lsp import ClientServerConfig, LanguageClient

from codeassist_lsp.feedback.store import FeedbackStore
from codeassist_lsp.features.inline_completion import ACCEPTED_COMMAND, DID_PARTIALLY_ACCEPT, DID_SHOW
from tests.lsp.helpers import (
    SERVER_COMMAND, end_position, initialize, inline_params, open_document, status, wait_for_model,
)

pytestmark = pytest.mark.model

# Cursor positions where the embedded model suggests several words (each test uses its own file).
SOURCE = ("import os\n\n\ndef config_path(name):\n    \"\"\"The path of the config file `name` in the home "
          "directory.\"\"\"\n    return os.path.")
FEEDBACK_DIR: dict[str, Path] = {}


@pytest_lsp.fixture(config=ClientServerConfig(server_command=SERVER_COMMAND), scope="module")
async def client(lsp_client: LanguageClient, tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    directory = tmp_path_factory.mktemp("feedback")
    FEEDBACK_DIR["path"] = directory
    # Memory cache only (typed-ahead needs the cache; nothing of the tests lands in the user's cache dir).
    # Outcome inference needs suggestions at given places: gating is off but in its own test.
    await initialize(lsp_client, {"cache": {"disk": False}, "feedback": {"directory": str(directory)},
                                  "completion": {"acceptanceThreshold": 0}})
    report = await wait_for_model(lsp_client)
    assert report["model"]["state"] == "ready", report
    yield
    await lsp_client.shutdown_session()


class Editor:
    """One open document in a scripted client: the text, the cursor, the ghost text showing."""

    def __init__(self, client: LanguageClient, name: str, text: str = SOURCE) -> None:
        self.client = client
        self.uri = f"file:///tmp/codeassist-feedback/{name}.py"
        self.text = text
        self.cursor = len(text)
        self.version = 1
        open_document(client, self.uri, text)

    def position(self, offset: int) -> types.Position:
        return end_position(self.text[:offset])

    async def ghost_text(self) -> tuple[str, str] | None:
        """Ask for ghost text at the cursor: (suggestion id, text) or None."""
        result = await self.client.text_document_inline_completion_async(
            inline_params(self.uri, self.position(self.cursor)))
        if not result or not result.items:
            return None
        item = result.items[0]
        assert item.command is not None and item.command.command == ACCEPTED_COMMAND
        text = item.insert_text if isinstance(item.insert_text, str) else item.insert_text.value
        return item.command.arguments[0], text  # type: ignore[index]

    def edit(self, start: int, end: int, new_text: str) -> None:
        """One didChange replacing text[start:end]; the cursor ends after the new text."""
        self.version += 1
        change = types.TextDocumentContentChangePartial(
            range=types.Range(start=self.position(start), end=self.position(end)), text=new_text)
        self.text = self.text[:start] + new_text + self.text[end:]
        self.cursor = start + len(new_text)
        self.client.text_document_did_change(types.DidChangeTextDocumentParams(
            text_document=types.VersionedTextDocumentIdentifier(uri=self.uri, version=self.version),
            content_changes=[change]))

    def type(self, text: str) -> None:
        self.edit(self.cursor, self.cursor, text)

    async def accept_command(self, suggestion_id: str) -> Any:
        return await self.client.workspace_execute_command_async(
            types.ExecuteCommandParams(command=ACCEPTED_COMMAND, arguments=[suggestion_id]))

    async def move_cursor(self, offset: int) -> None:
        """The cursor moves: VS Code asks for the code actions at it."""
        self.cursor = offset
        position = self.position(offset)
        await self.client.text_document_code_action_async(types.CodeActionParams(
            text_document=types.TextDocumentIdentifier(uri=self.uri), range=types.Range(start=position, end=position),
            context=types.CodeActionContext(diagnostics=[])))

    def close(self) -> None:
        self.client.text_document_did_close(types.DidCloseTextDocumentParams(
            text_document=types.TextDocumentIdentifier(uri=self.uri)))


async def outcome_of(client: LanguageClient, suggestion_id: str) -> dict[str, Any]:
    """The outcome the server decided for a suggestion (waits until the notifications before were handled)."""
    for _ in range(200):
        report = await client.workspace_execute_command_async(
            types.ExecuteCommandParams(command="codeassist.status", arguments=[{"recent": True}]))
        found = [o for o in report["feedback"]["recent"] if o["id"] == suggestion_id]
        if found:
            assert len(found) == 1, found
            return found[0]
        await asyncio.sleep(0.05)
    raise AssertionError(f"no outcome for {suggestion_id}: {report['feedback']}")


async def shown(editor: Editor) -> tuple[str, str]:
    ghost = await editor.ghost_text()
    assert ghost is not None, "the model suggested nothing here"
    return ghost


FIRST_WORD = re.compile(r"\s*(\w+|[^\w\s]+)")


async def test_accept_whole_with_the_command(client: LanguageClient) -> None:
    editor = Editor(client, "accept_command")
    sid, text = await shown(editor)
    editor.type(text)  # Tab: the client inserts the item's text, then runs its command
    assert await editor.accept_command(sid) is True
    editor.type("\n")  # and goes on typing
    outcome = await outcome_of(client, sid)
    assert (outcome["outcome"], outcome["reason"], outcome["acceptedChars"]) == ("accepted", "explicit", len(text))


async def test_accept_whole_without_a_command(client: LanguageClient) -> None:
    # Neovim, Emacs, Helix: the edit is all the server sees.
    editor = Editor(client, "accept_edit")
    sid, text = await shown(editor)
    editor.type(text)
    editor.close()
    outcome = await outcome_of(client, sid)
    assert (outcome["outcome"], outcome["reason"]) == ("accepted", "whole")


async def test_accept_a_word(client: LanguageClient) -> None:
    editor = Editor(client, "accept_word")
    sid, text = await shown(editor)
    word = FIRST_WORD.match(text)
    assert word is not None and 2 <= len(word.group(0)) < len(text), text
    editor.type(word.group(0))
    # VS Code asks again after a partial accept: the rest is the same suggestion.
    again = await editor.ghost_text()
    assert again is not None and again[0] == sid
    await editor.move_cursor(0)
    outcome = await outcome_of(client, sid)
    assert (outcome["outcome"], outcome["reason"], outcome["acceptedChars"]) == ("partial", "word", len(word.group(0)))


async def test_type_it_through(client: LanguageClient) -> None:
    editor = Editor(client, "type_through")
    sid, rest = await shown(editor)
    typed = ""
    while rest:
        editor.type(rest[0])
        typed += rest[0]
        ghost = await editor.ghost_text()
        # Typed-ahead answers (possibly extended by the rest of the generation) continue the suggestion.
        rest = ghost[1] if ghost is not None and ghost[0] == sid else ""
    assert len(typed) >= 2
    outcome = await outcome_of(client, sid)
    assert (outcome["outcome"], outcome["reason"], outcome["acceptedChars"]) == ("typed", "typed", len(typed))


async def test_reject_by_typing_something_else(client: LanguageClient) -> None:
    editor = Editor(client, "diverge")
    sid, text = await shown(editor)
    editor.type("~" if text[0] != "~" else "!")
    outcome = await outcome_of(client, sid)
    assert (outcome["outcome"], outcome["reason"], outcome["acceptedChars"]) == ("rejected", "diverged", 0)


async def test_reject_by_moving_away(client: LanguageClient) -> None:
    editor = Editor(client, "move_away")
    sid, _text = await shown(editor)
    await editor.move_cursor(editor.cursor)  # the lightbulb at the cursor itself: nothing decided
    await editor.move_cursor(0)
    outcome = await outcome_of(client, sid)
    assert (outcome["outcome"], outcome["reason"]) == ("rejected", "moved")


async def test_undo_after_accept(client: LanguageClient) -> None:
    editor = Editor(client, "undo")
    sid, text = await shown(editor)
    start = editor.cursor
    editor.type(text)
    await editor.ghost_text()  # VS Code shows the next suggestion at once
    editor.edit(start, start + len(text), "")  # Ctrl+Z
    outcome = await outcome_of(client, sid)
    assert (outcome["outcome"], outcome["reason"], outcome["acceptedChars"]) == ("rejected", "undone", 0)


async def test_the_store_holds_one_row_per_decided_suggestion_and_no_code(client: LanguageClient) -> None:
    report = await status(client)
    assert report["feedback"]["stored"]
    directory = FEEDBACK_DIR["path"]
    rows = FeedbackStore(directory).rows()
    assert len(rows) == len({row["id"] for row in rows}) >= 7
    assert all(row["language"] == "python" and row["model_id"] and row["prompt_hash"] for row in rows)
    assert any(row["mean_logprob"] is not None and row["first_logprob"] is not None and row["shown_tokens"]
               for row in rows)
    stored = b"".join(path.read_bytes() for path in directory.iterdir() if path.is_file())
    assert b"config_path" not in stored and b"os.path" not in stored


async def test_the_acceptance_threshold_withholds_suggestions(client: LanguageClient) -> None:
    def threshold(value: float) -> None:
        client.workspace_did_change_configuration(types.DidChangeConfigurationParams(settings={"codeassist": {
            "cache": {"disk": False}, "feedback": {"directory": str(FEEDBACK_DIR["path"])},
            "completion": {"acceptanceThreshold": value}}}))

    threshold(1.0)  # no suggestion is that sure: nothing is shown
    assert await Editor(client, "gated", SOURCE.replace("config_path", "settings_path")).ghost_text() is None
    assert (await status(client))["feedback"]["withheldByGating"] >= 1
    threshold(0.0)  # show all
    assert await Editor(client, "ungated", SOURCE.replace("config_path", "rc_path")).ghost_text() is not None


# -- VS Code's explicit signals (the extension forwards its provider's show and partial-accept callbacks).
# Last in this module: after the first show report the server treats every suggestion not reported as
# unseen, as it should for a client that reports them all.


async def test_a_word_accept_reported_by_the_client(client: LanguageClient) -> None:
    editor = Editor(client, "vscode_word")
    sid, text = await shown(editor)
    client.protocol.notify(DID_SHOW, {"id": sid})
    editor.type(text[0])  # accept word took one character: from the edit alone, typing
    client.protocol.notify(DID_PARTIALLY_ACCEPT, {"id": sid, "kind": "word", "acceptedLength": 1})
    await editor.move_cursor(0)
    outcome = await outcome_of(client, sid)
    assert (outcome["outcome"], outcome["reason"], outcome["acceptedChars"], outcome["seen"]) == (
        "partial", "word", 1, True)


async def test_a_suggestion_the_client_never_showed_is_unseen(client: LanguageClient) -> None:
    editor = Editor(client, "vscode_unseen")
    sid, text = await shown(editor)
    editor.type("~" if text[0] != "~" else "!")  # typed on before the ghost text came up
    outcome = await outcome_of(client, sid)
    assert (outcome["outcome"], outcome["reason"], outcome["seen"]) == ("unseen", "not-shown", False)
    assert sid not in {row["id"] for row in FeedbackStore(FEEDBACK_DIR["path"]).rows()}  # counted nowhere


async def test_malformed_reports_are_ignored(client: LanguageClient) -> None:
    for params in ({}, {"id": 5}, {"id": "no-such-suggestion", "kind": 3}, None):
        client.protocol.notify(DID_SHOW, params)
        client.protocol.notify(DID_PARTIALLY_ACCEPT, params)
    report = await status(client)
    assert report["model"]["state"] == "ready"
