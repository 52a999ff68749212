"""End to end: the real server process, the real embedded model, a pytest-lsp client."""

from __future__ import annotations

import asyncio

import pytest
import pytest_lsp
from lsprotocol import types
from pygls.exceptions import JsonRpcRequestCancelled
from pytest_lsp import ClientServerConfig, LanguageClient

from tests.lsp.helpers import (
    SERVER_COMMAND, end_position, initialize, inline_params, open_document, wait_for_model,
)

pytestmark = pytest.mark.model

FUNCTION = "def add(a, b):\n    \"\"\"Return the sum of a and b.\"\"\"\n    return "


@pytest_lsp.fixture(config=ClientServerConfig(server_command=SERVER_COMMAND), scope="module")
async def client(lsp_client: LanguageClient):  # type: ignore[no-untyped-def]
    # No completion cache: these tests are about the model path (a disk hit from an earlier run
    # would answer before a cancel could arrive).
    # These tests need a suggestion at given places: acceptance gating (tests/feedback) is off here.
    result = await initialize(lsp_client, {"completion": {"debounceMs": 10, "acceptanceThreshold": 0},
                                           "cache": {"enabled": False}})
    lsp_client.initialize_result = result  # type: ignore[attr-defined]
    report = await wait_for_model(lsp_client)
    assert report["model"]["state"] == "ready", report
    yield
    await lsp_client.shutdown_session()


async def test_capabilities(client: LanguageClient) -> None:
    caps = client.initialize_result.capabilities  # type: ignore[attr-defined]
    assert caps.inline_completion_provider is not None
    assert caps.completion_provider is not None
    sync = caps.text_document_sync
    assert sync.change == types.TextDocumentSyncKind.Incremental
    assert caps.position_encoding in (None, types.PositionEncodingKind.Utf16)


async def test_inline_completion_from_the_model(client: LanguageClient) -> None:
    uri = "file:///tmp/codeassist-tests/add.py"
    open_document(client, uri, FUNCTION)
    position = end_position(FUNCTION)
    result = await client.text_document_inline_completion_async(inline_params(uri, position))
    assert result is not None and result.items
    item = result.items[0]
    text = item.insert_text if isinstance(item.insert_text, str) else item.insert_text.value
    assert text.strip() and "\n" not in text  # one line: the cursor is mid-statement
    assert item.range == types.Range(start=position, end=position)


async def test_block_completion_in_an_empty_body(client: LanguageClient) -> None:
    uri = "file:///tmp/codeassist-tests/block.py"
    text = "def is_even(number):\n    "
    open_document(client, uri, text)
    result = await client.text_document_inline_completion_async(inline_params(uri, end_position(text)))
    assert result is not None and result.items
    suggestion = result.items[0].insert_text
    assert isinstance(suggestion, str) and suggestion.strip()
    # Every following line of the block stays inside the body.
    for line in suggestion.split("\n")[1:]:
        assert not line.strip() or line.startswith("    ")


async def test_completion_item_for_clients_without_inline_completion(client: LanguageClient) -> None:
    uri = "file:///tmp/codeassist-tests/items.py"
    text = "import os\n\n\ndef home_directory():\n    return os.path.expand"
    open_document(client, uri, text)
    position = end_position(text)
    result = await client.text_document_completion_async(types.CompletionParams(
        text_document=types.TextDocumentIdentifier(uri=uri), position=position))
    assert result is not None and result.items
    edit = result.items[0].text_edit
    assert isinstance(edit, types.TextEdit)
    # The edit starts at the word being typed so the client's filter keeps the item.
    assert edit.range.start == types.Position(line=position.line, character=position.character - len("expand"))
    assert edit.new_text.startswith("expand") and len(edit.new_text) > len("expand")


async def test_stale_version_is_dropped(client: LanguageClient) -> None:
    uri = "file:///tmp/codeassist-tests/stale.py"
    # A block body: generation runs for many tokens, so the edit lands while it is in flight.
    text = "class Point:\n    def __init__(self, x, y):\n        "
    open_document(client, uri, text)
    await asyncio.sleep(0.5)  # let the open's prewarm finish so only our request is in flight
    # pytest-lsp sends a request only when its coroutine runs: start it now.
    pending = asyncio.ensure_future(
        client.text_document_inline_completion_async(inline_params(uri, end_position(text))))
    await asyncio.sleep(0.05)
    client.text_document_did_change(types.DidChangeTextDocumentParams(
        text_document=types.VersionedTextDocumentIdentifier(uri=uri, version=2),
        content_changes=[types.TextDocumentContentChangePartial(
            range=types.Range(start=end_position(text), end=end_position(text)), text="x")]))
    assert await pending is None
    report = await client.workspace_execute_command_async(
        types.ExecuteCommandParams(command="codeassist.status"))
    assert report["stats"]["stale"] >= 1, report["stats"]


async def test_cancel_request_stops_generation_and_server_keeps_serving(client: LanguageClient) -> None:
    uri = "file:///tmp/codeassist-tests/cancel.py"
    text = "def fizzbuzz(n):\n    "
    open_document(client, uri, text)
    future = client.protocol.send_request(types.TEXT_DOCUMENT_INLINE_COMPLETION,
                                          inline_params(uri, end_position(text)), msg_id="cancel-me")
    await asyncio.sleep(0.05)
    client.protocol.notify(types.CANCEL_REQUEST, types.CancelParams(id="cancel-me"))
    with pytest.raises(JsonRpcRequestCancelled):
        await asyncio.wrap_future(future)
    # The model thread is free again: the next request is answered.
    result = await client.text_document_inline_completion_async(inline_params(uri, end_position(text)))
    assert result is not None and result.items


async def test_unknown_language_and_out_of_range_positions_are_harmless(client: LanguageClient) -> None:
    uri = "file:///tmp/codeassist-tests/notes.unknownlang"
    text = "Shopping list:\n- apples\n- "
    open_document(client, uri, text, language_id="totally-unknown")
    result = await client.text_document_inline_completion_async(inline_params(uri, end_position(text)))
    assert result is None or all(isinstance(i.insert_text, str) for i in result.items)
    far = await client.text_document_inline_completion_async(
        inline_params(uri, types.Position(line=999, character=0)))
    assert far is None


async def test_huge_and_binary_documents_are_harmless(client: LanguageClient) -> None:
    uri = "file:///tmp/codeassist-tests/huge.py"
    body = "".join(f"def function_{i}(value):\n    return value * {i}\n\n\n" for i in range(20000))
    text = body + "def last(value):\n    return "
    open_document(client, uri, text)
    result = None
    for _ in range(50):  # the first request may pass completion.answerWithinMs; the next ones reuse its work
        result = await client.text_document_inline_completion_async(inline_params(uri, end_position(text)))
        if result is not None and result.items:
            break
        await asyncio.sleep(0.1)
    assert result is not None and result.items  # the window, not the file, is what the model reads
    minified = "file:///tmp/codeassist-tests/min.js"
    line = "var a=" + ",".join(str(i) for i in range(5000))
    open_document(client, minified, line, language_id="javascript")
    assert await client.text_document_inline_completion_async(inline_params(minified, end_position(line))) is None
    binary = "file:///tmp/codeassist-tests/blob.py"
    data = "x = 1\n\x00\x01\x02garbage\x00"
    open_document(client, binary, data)
    assert await client.text_document_inline_completion_async(inline_params(binary, end_position(data))) is None
    report = await client.workspace_execute_command_async(types.ExecuteCommandParams(command="codeassist.status"))
    assert report["model"]["state"] == "ready"


async def test_a_request_sent_while_the_model_loads_waits_for_it() -> None:
    # What a user typing right after the editor starts sees: the first request is answered by the
    # model once it has loaded, not with an empty result they would have to type again to replace.
    from tests.lsp.helpers import running_server, status

    # answerWithinMs 0: the wait for the model is what is tested, not the first prompt's time on a busy machine.
    async with running_server({"cache": {"enabled": False},
                               "completion": {"answerWithinMs": 0, "acceptanceThreshold": 0}}) as (client, _result):
        uri = "file:///tmp/codeassist-tests/first.py"
        open_document(client, uri, FUNCTION)
        result = await client.text_document_inline_completion_async(inline_params(uri, end_position(FUNCTION)))
        assert result is not None and result.items
        report = await status(client)
        assert report["stats"].get("unavailable", 0) == 0, report["stats"]


async def test_position_past_the_line_end_means_the_line_end() -> None:
    # LSP: "If the character value is greater than the line length it defaults back to the line length."
    from tests.lsp.helpers import running_server

    # The same whole answer each time: no time budget or early guess, which depend on the machine's load.
    settings = {"cache": {"enabled": False},
                "completion": {"lineBudgetMs": 0, "guessBelow": 0, "answerWithinMs": 0, "acceptanceThreshold": 0}}
    async with running_server(settings) as (client, _result):
        uri = "file:///tmp/codeassist-tests/past_end.py"
        line = "    return [f for f in os.listdir(folder) if f."
        text = f"import os\n\n\ndef python_files(folder):\n{line}"
        open_document(client, uri, text)
        answers = []
        for character in (len(line), len(line) + 1, len(line) + 40):
            position = types.Position(line=4, character=character)
            result = await client.text_document_inline_completion_async(inline_params(uri, position))
            assert result is not None and result.items, character
            assert result.items[0].range.start == types.Position(line=4, character=len(line))
            answers.append(result.items[0].insert_text)
    assert answers[0].strip() and answers[1:] == answers[:1] * 2, answers


async def test_an_answer_past_the_time_limit_comes_back_empty_and_the_next_request_reuses_the_work() -> None:
    # The first request after opening a file evaluates a whole prompt (~2 s on 2 cores): the user gets
    # an empty answer at the limit, never a late one, and the model's work is not lost.
    from tests.lsp.helpers import running_server, status

    # Gating off: the answer the cache serves is what is tested, not whether the gate would show it.
    settings = {"completion": {"answerWithinMs": 1, "prewarm": False, "acceptanceThreshold": 0}, "cache": {"disk": False}}
    async with running_server(settings) as (client, _result):
        uri = "file:///tmp/codeassist-tests/limit.py"
        open_document(client, uri, FUNCTION)
        params = inline_params(uri, end_position(FUNCTION))
        first = await client.text_document_inline_completion_async(params)
        assert first is None or not first.items, first
        assert (await status(client))["stats"].get("over_limit") == 1
        later = None
        for _ in range(100):  # the model goes on; its answer serves the same request from the cache
            await asyncio.sleep(0.1)
            later = await client.text_document_inline_completion_async(params)
            if later is not None and later.items:
                break
        assert later is not None and later.items and later.items[0].insert_text.strip(), later
        report = await client.workspace_execute_command_async(
            types.ExecuteCommandParams(command="codeassist.status", arguments=[{"recent": True}]))
        assert report["recent_requests"][-1]["source"] == "cache", report["recent_requests"][-3:]


def test_a_snippet_item_expands_to_exactly_the_suggestion() -> None:
    from codeassist_lsp.features.completion import completion_item, snippet_text

    # `$` and `}` would be tab stops and `\` an escape in a snippet (template strings, PHP, shells).
    assert snippet_text("`${a}` + \\n + $b") == "`\\${a\\}` + \\\\n + \\$b"
    here = types.Position(line=1, character=11)
    plain = completion_item("a + b", "", here, here)
    snippet = completion_item("a + b", "", here, here, as_snippet=True)
    assert plain.insert_text_format == types.InsertTextFormat.PlainText and plain.text_edit.new_text == "a + b"
    # Neovim's menu inserts a snippet item's label whole (a plain-text edit's first word only).
    assert snippet.insert_text_format == types.InsertTextFormat.Snippet and snippet.label == "a + b"
