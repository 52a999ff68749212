"""The server keeps running and says once what is wrong: no model, invalid settings."""

from __future__ import annotations

import asyncio

import pytest
import pytest_lsp
from lsprotocol import types
from pytest_lsp import ClientServerConfig, LanguageClient

from tests.lsp.helpers import SERVER_COMMAND, end_position, initialize, inline_params, open_document, wait_for_model


@pytest_lsp.fixture(config=ClientServerConfig(server_command=SERVER_COMMAND), scope="function")
async def client(lsp_client: LanguageClient):  # type: ignore[no-untyped-def]
    yield
    await lsp_client.shutdown_session()


async def test_missing_model_says_once_how_to_fix_and_answers_empty(client: LanguageClient, tmp_path) -> None:  # type: ignore[no-untyped-def]
    await initialize(client, {"model": {"path": str(tmp_path / "nowhere.gguf")}})
    report = await wait_for_model(client)
    assert report["model"]["state"] == "error"
    uri = "file:///tmp/codeassist-tests/nomodel.py"
    text = "def f():\n    return "
    open_document(client, uri, text)
    for _ in range(3):
        result = await client.text_document_inline_completion_async(inline_params(uri, end_position(text)))
        assert result is None
        items = await client.text_document_completion_async(types.CompletionParams(
            text_document=types.TextDocumentIdentifier(uri=uri), position=end_position(text)))
        assert items is None or not items.items
    shown = [m for m in client.messages if "nowhere.gguf" in m.message]
    assert len(shown) == 1, client.messages
    assert "model.path" in shown[0].message  # it says how to fix it


async def test_unknown_model_name_names_the_install_command(client: LanguageClient) -> None:
    await initialize(client, {"model": {"name": "no-such-model"}})
    report = await wait_for_model(client)
    assert report["model"]["state"] == "error"
    await asyncio.sleep(0.2)
    assert any("Known models" in m.message for m in client.messages)


@pytest.mark.model
async def test_invalid_settings_are_reported_once_and_defaults_used(client: LanguageClient) -> None:
    await initialize(client, {"completion": {"debounceMs": "soon", "bogus": True}})
    report = await wait_for_model(client)
    assert report["model"]["state"] == "ready"
    assert report["settings"]["completion"]["debounceMs"] == 40
    invalid = [m for m in client.messages if "Invalid codeassist settings" in m.message]
    assert len(invalid) == 1 and "bogus" in invalid[0].message
    uri = "file:///tmp/codeassist-tests/defaults.py"
    text = "def square(x):\n    return "
    open_document(client, uri, text)
    result = await client.text_document_inline_completion_async(inline_params(uri, end_position(text)))
    assert result is not None and result.items


@pytest.mark.model
async def test_utf8_position_encoding_when_offered(client: LanguageClient) -> None:
    from tests.lsp.helpers import capabilities

    result = await initialize(client, {}, capabilities(encodings=["utf-8", "utf-16"]))
    assert result.capabilities.position_encoding == types.PositionEncodingKind.Utf8
    await wait_for_model(client)
    uri = "file:///tmp/codeassist-tests/utf8.py"
    text = "greeting = \"héllo wörld 🌍\"\nname = greeting.up"
    open_document(client, uri, text)
    last = text.split("\n")[-1]
    position = types.Position(line=1, character=len(last.encode("utf-8")))
    items = await client.text_document_completion_async(types.CompletionParams(
        text_document=types.TextDocumentIdentifier(uri=uri), position=position))
    assert items is not None and items.items
    edit = items.items[0].text_edit
    assert edit.range.start.character == position.character - len("up")
