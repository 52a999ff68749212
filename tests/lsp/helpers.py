"""Helpers to drive the real server process with pytest-lsp."""

from __future__ import annotations

import asyncio
import contextlib
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from lsprotocol import types
from pytest_lsp import ClientServerConfig, LanguageClient, client_capabilities

SERVER_COMMAND = [sys.executable, "-m", "codeassist_lsp", "-v"]


def capabilities(profile: str = "visual-studio-code", encodings: list[str] | None = None) -> types.ClientCapabilities:
    """A real client's capabilities plus inline completion (no bundled profile declares it)."""
    caps = client_capabilities(profile)
    text_document = caps.text_document or types.TextDocumentClientCapabilities()
    text_document.inline_completion = types.InlineCompletionClientCapabilities(dynamic_registration=False)
    caps.text_document = text_document
    if encodings is not None:
        caps.general = types.GeneralClientCapabilities(position_encodings=encodings)
    return caps


async def initialize(client: LanguageClient, options: dict[str, Any] | None = None,
                     caps: types.ClientCapabilities | None = None,
                     root: Path | None = None) -> types.InitializeResult:
    """initialize + initialized with our settings (and `root` as the only workspace folder)."""
    return await client.initialize_session(types.InitializeParams(
        capabilities=caps or capabilities(), initialization_options=options or {},
        root_uri=root.as_uri() if root else None,
        workspace_folders=[types.WorkspaceFolder(uri=root.as_uri(), name=root.name)] if root else None))


async def status(client: LanguageClient) -> dict[str, Any]:
    """The server's codeassist.status report."""
    return await client.workspace_execute_command_async(
        types.ExecuteCommandParams(command="codeassist.status", arguments=[]))


async def wait_for_model(client: LanguageClient, timeout: float = 60) -> dict[str, Any]:
    """Poll the status command until the model is loaded (or failed)."""
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        report = await status(client)
        if report["model"]["state"] != "loading" or asyncio.get_running_loop().time() > deadline:
            return report
        await asyncio.sleep(0.1)


def open_document(client: LanguageClient, uri: str, text: str, language_id: str = "python",
                  version: int = 1) -> None:
    """didOpen a document."""
    client.text_document_did_open(types.DidOpenTextDocumentParams(
        text_document=types.TextDocumentItem(uri=uri, language_id=language_id, version=version, text=text)))


def end_position(text: str) -> types.Position:
    """The position after the last character (UTF-16 units)."""
    lines = text.split("\n")
    return types.Position(line=len(lines) - 1, character=len(lines[-1].encode("utf-16-le")) // 2)


def inline_params(uri: str, position: types.Position) -> types.InlineCompletionParams:
    """An automatic inline completion request, as VS Code sends while typing."""
    return types.InlineCompletionParams(
        text_document=types.TextDocumentIdentifier(uri=uri), position=position,
        context=types.InlineCompletionContext(trigger_kind=types.InlineCompletionTriggerKind.Automatic))


@contextlib.asynccontextmanager
async def running_server(options: dict[str, Any] | None = None,
                         caps: types.ClientCapabilities | None = None,
                         env: dict[str, str] | None = None,
                         root: Path | None = None) -> AsyncIterator[tuple[LanguageClient, types.InitializeResult]]:
    """A fresh server process for one test (pytest-lsp fixtures are module-scoped here)."""
    # The fake engine never uses the preloaded default model: skip loading it (CPU for other tests).
    fake = (options or {}).get("engine") == "fake"
    command = SERVER_COMMAND + (["--no-preload"] if fake else [])
    client = await ClientServerConfig(server_command=command, server_env=env).start()
    try:
        result = await initialize(client, options, caps, root)
        yield client, result
        await client.shutdown_session()
    except BaseException:
        # A failed test never sent shutdown/exit: end the process, or client.stop() waits forever.
        server = getattr(client, "_server", None)
        if server is not None and server.returncode is None:
            server.kill()
        raise
    finally:
        await client.stop()
