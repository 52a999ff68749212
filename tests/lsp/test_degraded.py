"""The server keeps running and says once what is wrong: no model, invalid settings."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from lsprotocol import types

from tests.lsp.helpers import (
    capabilities, end_position, inline_params, open_document, running_server, wait_for_model,
)


async def test_missing_model_says_once_how_to_fix_and_answers_empty(tmp_path: Path) -> None:
    async with running_server({"model": {"path": str(tmp_path / "nowhere.gguf")}}) as (client, _):
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


async def test_unknown_model_name_lists_the_known_ones() -> None:
    async with running_server({"model": {"name": "no-such-model"}}) as (client, _):
        report = await wait_for_model(client)
        assert report["model"]["state"] == "error"
        await asyncio.sleep(0.2)
        assert any("Known models" in m.message and "gemma-3-270m" in m.message for m in client.messages)


async def test_registry_model_not_installed_names_the_install_command(tmp_path: Path) -> None:
    env = {"CODEASSIST_CACHE_DIR": str(tmp_path)}
    import os

    async with running_server({"model": {"name": "smollm2-135m-instruct"}},
                              env={**os.environ, **env}) as (client, _):
        report = await wait_for_model(client)
        assert report["model"]["state"] == "error"
        await asyncio.sleep(0.2)
        assert any("codeassist models install smollm2-135m-instruct" in m.message for m in client.messages)


async def test_corrupt_model_file_is_reported_not_fatal(tmp_path: Path) -> None:
    bogus = tmp_path / "broken.gguf"
    bogus.write_bytes(b"GGUF" + b"\0" * 64)
    async with running_server({"model": {"path": str(bogus)}}) as (client, _):
        report = await wait_for_model(client)
        assert report["model"]["state"] == "error"
        await asyncio.sleep(0.2)
        assert any("not a valid GGUF" in m.message for m in client.messages)
        uri = "file:///tmp/codeassist-tests/corrupt.py"
        open_document(client, uri, "x = ")
        assert await client.text_document_inline_completion_async(
            inline_params(uri, end_position("x = "))) is None


@pytest.mark.model
async def test_invalid_settings_are_reported_once_and_defaults_used() -> None:
    async with running_server({"completion": {"debounceMs": "soon", "bogus": True}}) as (client, _):
        report = await wait_for_model(client)
        assert report["model"]["state"] == "ready"
        assert report["settings"]["completion"]["debounceMs"] == 0
        invalid = [m for m in client.messages if "Invalid codeassist settings" in m.message]
        assert len(invalid) == 1 and "bogus" in invalid[0].message
        uri = "file:///tmp/codeassist-tests/defaults.py"
        text = "def square(x):\n    return "
        open_document(client, uri, text)
        result = await client.text_document_inline_completion_async(inline_params(uri, end_position(text)))
        assert result is not None and result.items


@pytest.mark.model
async def test_utf8_position_encoding_when_offered() -> None:
    # A suggestion is needed here whatever the machine's speed (answerWithinMs) or the gate's verdict.
    settings = {"completion": {"answerWithinMs": 0, "acceptanceThreshold": 0}}
    async with running_server(settings, capabilities(encodings=["utf-8", "utf-16"])) as (client, result):
        assert result.capabilities.position_encoding == types.PositionEncodingKind.Utf8
        await wait_for_model(client)
        uri = "file:///tmp/codeassist-tests/utf8.py"
        text = "greeting = \"héllo wörld 🌍\"\nname = \"🌍 \" + greeting.up"
        open_document(client, uri, text)
        last = text.split("\n")[-1]
        position = types.Position(line=1, character=len(last.encode("utf-8")))
        items = await client.text_document_completion_async(types.CompletionParams(
            text_document=types.TextDocumentIdentifier(uri=uri), position=position))
        assert items is not None and items.items
        edit = items.items[0].text_edit
        assert edit.range.start.character == position.character - len("up")
