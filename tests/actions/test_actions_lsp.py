"""End to end over LSP (pytest-lsp, the real server process): list, resolve, versions, commands, progress,
cancellation and hover. The fake engine only checks protocol behaviour; every action kind is also
resolved with the real embedded model below."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest
from lsprotocol import types
from pygls.exceptions import JsonRpcException, JsonRpcRequestCancelled
from pytest_lsp import LanguageClient

from codeassist_lsp.features.code_actions import COMMAND_APPLY, COMMAND_EXPLAIN
from tests.actions.helpers import apply_edit, bounded_server, code_action_params, parses, position_at
from tests.lsp.helpers import capabilities, open_document, status, wait_for_model

SOURCE = '''import os


def is_palindrome(text):
    """Return True when text reads the same backwards, ignoring case."""


def word_counts(text):
    counts = {}
    for word in text.split():
        counts[word] = counts.get(word, 0) + 1
    return counts


def average(values):
    total = sum(values)
    return totl / len(values)


def clamp(value, low, high):
    return max(low, min(value, high))


def positive_numbers(values):
    result = []
    for value in values:
        if value > 0:
            result.append(value)
    return result
'''
# Slow fake steps make a resolve take ~1 s: long enough for progress and cancellation.
FAKE_ENV = {"CODEASSIST_FAKE_STEP_MS": "30"}
FAKE = {"engine": "fake", "completion": {"prewarm": False}, "actions": {"hoverDebounceMs": 10, "bestOfN": 2}}
# hoverBudgetMs: these tests are about the model's answers, not about how fast a busy machine gives them.
REAL = {"completion": {"prewarm": False},
        "actions": {"bestOfN": 2, "maxTokens": 64, "explainMaxTokens": 48, "hoverMaxTokens": 32, "hoverDebounceMs": 10,
                    "hoverBudgetMs": 600000}}


async def actions_at(client: LanguageClient, uri: str, start: int, end: int | None = None,
                     diagnostics: list[types.Diagnostic] | None = None) -> list[types.CodeAction]:
    result = await client.text_document_code_action_async(code_action_params(uri, SOURCE, start, end, diagnostics))
    return [a for a in (result or []) if isinstance(a, types.CodeAction)]


def pick(actions: list[types.CodeAction], action: str) -> types.CodeAction:
    found = [a for a in actions if isinstance(a.data, dict) and a.data["codeassist"]["action"] == action]
    assert found, [a.title for a in actions]
    return found[0]


def undefined_name_diagnostic() -> types.Diagnostic:
    start = SOURCE.index("totl")
    return types.Diagnostic(range=types.Range(start=position_at(SOURCE, start), end=position_at(SOURCE, start + 4)),
                            message="undefined name 'totl'", source="pyflakes")


def no_resolve_capabilities() -> types.ClientCapabilities:
    caps = capabilities()
    assert caps.text_document is not None and caps.text_document.code_action is not None
    caps.text_document.code_action.resolve_support = None
    return caps


# -- protocol behaviour (fake engine) ----------------------------------------------------------------

async def test_list_is_instant_and_only_resolve_calls_the_model() -> None:
    async with bounded_server(FAKE, seconds=60, env=FAKE_ENV) as (client, result):
        assert result.capabilities.code_action_provider.resolve_provider is True
        await wait_for_model(client)
        uri = "file:///tmp/codeassist-actions/list.py"
        open_document(client, uri, SOURCE)
        elapsed = []
        for _ in range(20):
            started = time.perf_counter()
            actions = await actions_at(client, uri, SOURCE.index("ignoring"), diagnostics=[undefined_name_diagnostic()])
            elapsed.append(time.perf_counter() - started)
        assert sorted(elapsed)[len(elapsed) // 2] < 0.1, elapsed  # the round trip, not just the server
        kinds = {a.kind for a in actions}
        assert types.CodeActionKind.QuickFix in kinds and "refactor.rewrite.codeassist.generate" in kinds
        assert all(a.edit is None and a.command is None for a in actions)  # resolve-capable client: no command
        report = await status(client)
        assert report["stats"].get("action_model_jobs", 0) == 0
        await client.code_action_resolve_async(pick(actions, "generate"))
        report = await status(client)
        assert report["stats"]["action_model_jobs"] >= 1


async def test_stale_version_is_rejected() -> None:
    async with bounded_server(FAKE, seconds=60, env=FAKE_ENV) as (client, _):
        await wait_for_model(client)
        uri = "file:///tmp/codeassist-actions/stale.py"
        open_document(client, uri, SOURCE)
        action = pick(await actions_at(client, uri, SOURCE.index("ignoring")), "generate")
        client.text_document_did_change(types.DidChangeTextDocumentParams(
            text_document=types.VersionedTextDocumentIdentifier(uri=uri, version=2),
            content_changes=[types.TextDocumentContentChangePartial(
                range=types.Range(start=types.Position(line=0, character=0), end=types.Position(line=0, character=0)),
                text="# edited\n")]))
        with pytest.raises(JsonRpcException) as raised:
            await client.code_action_resolve_async(action)
        assert raised.value.code == -32801  # ContentModified
        assert (await status(client))["stats"].get("action_model_jobs", 0) == 0


async def test_cancel_request_stops_a_running_resolve() -> None:
    async with bounded_server(FAKE, seconds=60, env=FAKE_ENV) as (client, _):
        await wait_for_model(client)
        uri = "file:///tmp/codeassist-actions/cancel.py"
        open_document(client, uri, SOURCE)
        action = pick(await actions_at(client, uri, SOURCE.index("ignoring")), "generate")
        future = client.protocol.send_request(types.CODE_ACTION_RESOLVE, action, msg_id="cancel-action")
        await asyncio.sleep(0.3)
        client.protocol.notify(types.CANCEL_REQUEST, types.CancelParams(id="cancel-action"))
        with pytest.raises(JsonRpcRequestCancelled):
            await asyncio.wrap_future(future)
        # The model thread is free again: the next resolve is answered.
        again = await client.code_action_resolve_async(pick(await actions_at(client, uri, 0, len(SOURCE)), "refactor"))
        assert again.title


async def test_progress_for_long_generations_and_cancel_from_the_progress_token() -> None:
    async with bounded_server(FAKE, seconds=60, env=FAKE_ENV) as (client, _):
        await wait_for_model(client)
        uri = "file:///tmp/codeassist-actions/progress.py"
        open_document(client, uri, SOURCE)
        action = pick(await actions_at(client, uri, SOURCE.index("ignoring")), "generate")
        await client.code_action_resolve_async(action)
        begun = [(token, reports) for token, reports in client.progress_reports.items()
                 if reports and isinstance(reports[0], types.WorkDoneProgressBegin)]
        assert begun, client.progress_reports
        token, reports = begun[-1]
        assert reports[0].cancellable is True
        assert isinstance(reports[-1], types.WorkDoneProgressEnd)
        # A cancel on the work-done token stops the work.
        known = set(client.progress_reports)
        pending = asyncio.ensure_future(client.code_action_resolve_async(action))
        for _ in range(100):
            await asyncio.sleep(0.05)
            fresh = [t for t, r in client.progress_reports.items() if t not in known and r]
            if fresh:
                break
        assert fresh, "no progress began"
        client.protocol.notify(types.WINDOW_WORK_DONE_PROGRESS_CANCEL, types.WorkDoneProgressCancelParams(token=fresh[0]))
        with pytest.raises(JsonRpcException):
            await pending
        assert isinstance(client.progress_reports[fresh[0]][-1], types.WorkDoneProgressEnd)


async def test_hover_has_markdown_and_a_range_and_can_be_switched_off() -> None:
    async with bounded_server(FAKE, seconds=60, env=FAKE_ENV) as (client, _):
        await wait_for_model(client)
        uri = "file:///tmp/codeassist-actions/hover.py"
        open_document(client, uri, SOURCE)
        params = types.HoverParams(text_document=types.TextDocumentIdentifier(uri=uri),
                                   position=position_at(SOURCE, SOURCE.index("def clamp") + 5))
        hover = await client.text_document_hover_async(params)
        assert hover is not None and isinstance(hover.contents, types.MarkupContent)
        assert hover.contents.kind == types.MarkupKind.Markdown and hover.contents.value
        assert hover.range == types.Range(start=position_at(SOURCE, SOURCE.index("def clamp")),
                                          end=position_at(SOURCE, SOURCE.index("high))") + len("high))")))
        jobs = (await status(client))["stats"]["action_model_jobs"]
        assert await client.text_document_hover_async(params) == hover  # cached by content
        assert (await status(client))["stats"]["action_model_jobs"] == jobs
        blank = types.HoverParams(text_document=params.text_document, position=types.Position(line=1, character=0))
        assert await client.text_document_hover_async(blank) is None
        client.workspace_did_change_configuration(types.DidChangeConfigurationParams(
            settings={**FAKE, "actions": {**FAKE["actions"], "hover": False}}))
        await asyncio.sleep(0.2)
        assert await client.text_document_hover_async(params) is None


async def test_clients_without_resolve_get_a_command() -> None:
    async with bounded_server(FAKE, seconds=60, caps=no_resolve_capabilities(), env=FAKE_ENV) as (client, _):
        await wait_for_model(client)
        uri = "file:///tmp/codeassist-actions/command.py"
        open_document(client, uri, SOURCE)
        actions = await actions_at(client, uri, SOURCE.index("counts = {}"), diagnostics=[undefined_name_diagnostic()])
        assert {a.data["codeassist"]["action"] for a in actions} >= {"fix", "docstring"}
        start, end = SOURCE.index("    counts = {}"), SOURCE.index("    return counts\n") + len("    return counts\n")
        actions += await actions_at(client, uri, start, end)
        assert "explain" in {a.data["codeassist"]["action"] for a in actions}
        for action in actions:
            assert action.command is not None and action.edit is None
            expected = COMMAND_EXPLAIN if action.data["codeassist"]["action"] == "explain" else COMMAND_APPLY
            assert action.command.command == expected and list(action.command.arguments) == [action.data]


# -- every action with the real model ------------------------------------------------------------------

def record_apply_edit(client: LanguageClient) -> list[types.ApplyWorkspaceEditParams]:
    received: list[types.ApplyWorkspaceEditParams] = []

    @client.feature(types.WORKSPACE_APPLY_EDIT)
    def apply(params: types.ApplyWorkspaceEditParams) -> types.ApplyWorkspaceEditResult:
        received.append(params)
        return types.ApplyWorkspaceEditResult(applied=True)

    return received


async def resolve_and_apply(client: LanguageClient, uri: str, action: types.CodeAction) -> str:
    resolved = await client.code_action_resolve_async(action)
    assert resolved.edit is not None, [m.message for m in client.messages]
    new_text = apply_edit(SOURCE, resolved.edit, uri, 1)
    assert new_text != SOURCE and parses(new_text)
    return new_text


@pytest.mark.model
@pytest.mark.actions_e2e
async def test_every_action_kind_with_the_real_model() -> None:
    async with bounded_server(REAL, seconds=300) as (client, _):
        assert (await wait_for_model(client, timeout=120))["model"]["state"] == "ready"
        uri = "file:///tmp/codeassist-actions/real.py"
        open_document(client, uri, SOURCE)
        outcomes: dict[str, Any] = {}

        generated = await resolve_and_apply(client, uri, pick(await actions_at(client, uri, SOURCE.index("ignoring")), "generate"))
        body = generated[generated.index('ignoring case."""'):generated.index("def word_counts")]
        assert body.count("\n    ") >= 1  # code inside the function body
        outcomes["generate"] = body

        documented = await resolve_and_apply(client, uri, pick(await actions_at(client, uri, SOURCE.index("counts = {}")), "docstring"))
        assert documented.count('"""') == SOURCE.count('"""') + 2
        outcomes["docstring"] = documented

        fixed = await resolve_and_apply(client, uri, pick(await actions_at(
            client, uri, SOURCE.index("totl"), diagnostics=[undefined_name_diagnostic()]), "fix"))
        outcomes["fix"] = fixed

        start, end = SOURCE.index("    result = []"), SOURCE.index("    return result\n") + len("    return result\n")
        refactors = [a for a in await actions_at(client, uri, start, end)
                     if isinstance(a.data, dict) and a.data["codeassist"]["action"] == "refactor"]
        resolved_refactor = await client.code_action_resolve_async(
            next(a for a in refactors if a.data["codeassist"]["preset"] == "simplify"))
        assert resolved_refactor.edit is not None, [m.message for m in client.messages]
        edit = resolved_refactor.edit.document_changes[0].edits[0]
        # The edit stays inside the selection and the result parses.
        assert (edit.range.start.line, edit.range.start.character) >= (position_at(SOURCE, start).line, 0)
        assert edit.range.end.line <= position_at(SOURCE, end).line
        assert parses(apply_edit(SOURCE, resolved_refactor.edit, uri, 1))

        start, end = SOURCE.index("    counts = {}"), SOURCE.index("    return counts\n") + len("    return counts\n")
        explain = pick(await actions_at(client, uri, start, end), "explain")
        assert explain.command is not None and explain.command.command == COMMAND_EXPLAIN
        result = await client.workspace_execute_command_async(types.ExecuteCommandParams(
            command=explain.command.command, arguments=explain.command.arguments))
        assert result["explanation"] and client.shown_documents
        assert client.shown_documents[-1].uri.endswith(".md")

        hover = await client.text_document_hover_async(types.HoverParams(
            text_document=types.TextDocumentIdentifier(uri=uri), position=position_at(SOURCE, SOURCE.index("def clamp") + 5)))
        assert hover is not None and hover.contents.kind == types.MarkupKind.Markdown and hover.range is not None


@pytest.mark.model
@pytest.mark.actions_e2e
async def test_command_path_applies_the_edit_with_the_real_model() -> None:
    async with bounded_server(REAL, seconds=90, caps=no_resolve_capabilities()) as (client, _):
        received = record_apply_edit(client)
        assert (await wait_for_model(client, timeout=120))["model"]["state"] == "ready"
        uri = "file:///tmp/codeassist-actions/command-real.py"
        open_document(client, uri, SOURCE)
        action = pick(await actions_at(client, uri, SOURCE.index("counts = {}")), "docstring")
        assert action.command is not None and action.command.command == COMMAND_APPLY
        result = await client.workspace_execute_command_async(types.ExecuteCommandParams(
            command=action.command.command, arguments=action.command.arguments))
        assert result["applied"] is True, result
        assert received and parses(apply_edit(SOURCE, received[0].edit, uri, 1))


JS_SOURCE = """function sumOf(numbers) {
  let total = 0;
  for (const n of numbers) total += n;
  return total;
}
"""


@pytest.mark.model
@pytest.mark.actions_e2e
async def test_hover_explains_functions_with_the_real_model() -> None:
    async with bounded_server(REAL, seconds=90) as (client, _):
        assert (await wait_for_model(client, timeout=60))["model"]["state"] == "ready"
        for uri, text, language, name in (("file:///tmp/codeassist-actions/hover-real.py", SOURCE, "python", "def clamp"),
                                          ("file:///tmp/codeassist-actions/hover-real.js", JS_SOURCE, "javascript",
                                           "function sumOf")):
            open_document(client, uri, text, language_id=language)
            hover = await client.text_document_hover_async(types.HoverParams(
                text_document=types.TextDocumentIdentifier(uri=uri), position=position_at(text, text.index(name) + len(name) - 2)))
            assert hover is not None and isinstance(hover.contents, types.MarkupContent), (language, hover)
            assert hover.contents.kind == types.MarkupKind.Markdown
            value = hover.contents.value
            # The model's sentence (not the structural fallback), prose rather than code.
            assert "Structural summary" not in value and "This function" in value, value
            assert len(value.split()) >= 6 and "```" not in value, value
            end = text.index("high))") + len("high))") if language == "python" else text.rstrip().__len__()
            assert hover.range == types.Range(start=position_at(text, text.index(name)), end=position_at(text, end)), hover.range
