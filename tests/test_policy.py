"""Workspace/admin policy (load, apply, allows, stricter wins, fail closed) and the --tcp token handshake."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import socket
import stat
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
from lsprotocol import types
from pytest_lsp import ClientServerConfig, LanguageClient

from codeassist_lsp.config import Settings, parse_settings
from codeassist_lsp.policy import POLICY_ENV, Policy, is_loopback_host, load_policy
from tests.lsp.helpers import SERVER_COMMAND, capabilities, end_position, inline_params, open_document, status

REMOTE = {"engine": "remote", "remote": {"url": "https://gpu.corp.example:8000", "model": "qwen2.5-coder-1.5b"}}
HAS_REDIS = hasattr(Settings().cache, "redis")  # the shared cache tier is another change; test it when there


def write_policy(folder: Path, text: str) -> Path:
    """`folder/.codeassist/policy.toml` with `text`."""
    path = folder / ".codeassist" / "policy.toml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


@pytest.fixture(autouse=True)
def no_admin_policy(monkeypatch: pytest.MonkeyPatch) -> None:
    """The developer's own $CODEASSIST_POLICY never leaks into these tests."""
    monkeypatch.delenv(POLICY_ENV, raising=False)


# -- loading -----------------------------------------------------------------------------------------

def test_no_policy_allows_everything_and_changes_nothing(tmp_path: Path) -> None:
    policy = load_policy(tmp_path)
    settings = parse_settings({"model": REMOTE})
    tightened, messages = policy.apply(settings)
    assert policy.sources == [] and messages == [] and tightened == settings
    assert policy.allows("completion", "python", str(tmp_path / "a.py"))
    assert load_policy(None).sources == []


def test_workspace_policy_is_found_walking_up(tmp_path: Path) -> None:
    outer = write_policy(tmp_path, "local_only = true\n")
    inner_root = tmp_path / "repo"
    inner = write_policy(inner_root, "max_context_tokens = 512\n")
    deep = inner_root / "src" / "pkg"
    deep.mkdir(parents=True)
    assert load_policy(deep).sources == [inner.resolve()]  # the first one found, not both
    assert load_policy(tmp_path / "elsewhere").sources == [outer.resolve()]


def test_admin_and_workspace_policies_both_apply(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    workspace = write_policy(tmp_path, 'allowed_remote_hosts = ["*.corp.example", "redis.lan"]\n'
                                       "max_context_tokens = 1024\n")
    admin = tmp_path / "admin.toml"
    admin.write_text('allowed_remote_hosts = ["gpu.corp.example"]\nmax_context_tokens = 600\n'
                     '[[disable]]\nfeatures = ["hover"]\n', encoding="utf-8")
    monkeypatch.setenv(POLICY_ENV, str(admin))
    policy = load_policy(tmp_path)
    assert policy.sources == [workspace.resolve(), admin]
    # A host must pass both lists; the smaller cap wins; the admin's rule applies too.
    assert policy.host_allowed("gpu.corp.example") and not policy.host_allowed("other.corp.example")
    assert not policy.host_allowed("redis.lan")
    assert policy.max_context_tokens == 600
    assert not policy.allows("hover", "python", str(tmp_path / "a.py"))
    assert policy.allows("completion", "python", str(tmp_path / "a.py"))


# -- apply ---------------------------------------------------------------------------------------------

def test_local_only_forces_every_remote_tier_local(tmp_path: Path) -> None:
    write_policy(tmp_path, "local_only = true\n")
    settings = parse_settings({"model": REMOTE, "actions": {"model": REMOTE}})
    tightened, messages = load_policy(tmp_path).apply(settings)
    assert tightened.model.engine == "local" and tightened.actions.model.engine == "local"
    assert settings.model.engine == "remote"  # the caller's settings are left as they were
    assert len(messages) == 2 and all("local_only" in m and "gpu.corp.example" in m for m in messages)
    assert "model.engine" in messages[0] and "actions.model.engine" in messages[1]


def test_allowed_remote_hosts_keep_matching_servers_only(tmp_path: Path) -> None:
    write_policy(tmp_path, 'allowed_remote_hosts = ["*.corp.example"]\n')
    policy = load_policy(tmp_path)
    kept, messages = policy.apply(parse_settings({"model": REMOTE}))
    assert kept.model.engine == "remote" and messages == []
    elsewhere = {**REMOTE, "remote": {"url": "http://gpu.example.com:8080"}}
    refused, messages = policy.apply(parse_settings({"actions": {"model": elsewhere}}))
    assert refused.actions.model.engine == "local"
    assert len(messages) == 1 and "gpu.example.com is not in allowed_remote_hosts" in messages[0]


@pytest.mark.skipif(not HAS_REDIS, reason="cache.redis is not in this tree yet")
def test_shared_cache_only_on_loopback_under_local_only(tmp_path: Path) -> None:
    write_policy(tmp_path, "local_only = true\n")
    policy = load_policy(tmp_path)
    local, messages = policy.apply(parse_settings({"cache": {"redis": {"url": "redis://127.0.0.1:6379/0"}}}))
    assert local.cache.redis.url == "redis://127.0.0.1:6379/0" and messages == []
    shared, messages = policy.apply(parse_settings({"cache": {"redis": {"url": "redis://cache.lan:6379/0"}}}))
    assert shared.cache.redis.url is None
    assert len(messages) == 1 and "shared cache on cache.lan is off" in messages[0]


@pytest.mark.skipif(not HAS_REDIS, reason="cache.redis is not in this tree yet")
def test_shared_cache_host_must_be_allowed(tmp_path: Path) -> None:
    write_policy(tmp_path, 'allowed_remote_hosts = ["redis.corp.example"]\n')
    policy = load_policy(tmp_path)
    ok, messages = policy.apply(parse_settings({"cache": {"redis": {"url": "rediss://redis.corp.example/1"}}}))
    assert ok.cache.redis.url == "rediss://redis.corp.example/1" and messages == []
    refused, messages = policy.apply(parse_settings({"cache": {"redis": {"url": "redis://evil.example/0"}}}))
    assert refused.cache.redis.url is None and "evil.example is not in allowed_remote_hosts" in messages[0]


def test_max_context_tokens_caps_both_budgets(tmp_path: Path) -> None:
    write_policy(tmp_path, "max_context_tokens = 1000\n")
    settings = parse_settings({"completion": {"contextTokens": 4000}, "actions": {"contextTokens": 800}})
    tightened, messages = load_policy(tmp_path).apply(settings)
    assert tightened.completion.context_tokens == 1000 and tightened.actions.context_tokens == 800
    assert messages == [m for m in messages if "completion.contextTokens 4000 is capped" in m] and len(messages) == 1


# -- allows --------------------------------------------------------------------------------------------

def test_disable_rules_by_feature_language_and_path(tmp_path: Path) -> None:
    write_policy(tmp_path, """
[[disable]]
paths = ["*.secret.py", "vendor/"]

[[disable]]
features = ["hover", "actions"]
languages = ["markdown"]

[[disable]]
features = ["completion"]
languages = ["python"]
paths = ["generated/**"]
""")
    policy = load_policy(tmp_path)
    root = tmp_path.resolve()
    for feature in ("completion", "actions", "hover"):
        assert not policy.allows(feature, "python", str(root / "src" / "keys.secret.py"))
        assert not policy.allows(feature, "c", str(root / "vendor" / "lib" / "x.c"))
        assert policy.allows(feature, "python", str(root / "src" / "app.py"))
    assert not policy.allows("hover", "markdown", str(root / "README.md"))
    assert policy.allows("completion", "markdown", str(root / "README.md"))
    # Both conditions of one table must match.
    assert not policy.allows("completion", "python", str(root / "generated" / "a" / "m.py"))
    assert policy.allows("completion", "javascript", str(root / "generated" / "m.js"))
    assert policy.allows("actions", "python", str(root / "generated" / "m.py"))
    # A file-name pattern applies outside the workspace too; an anchored one does not.
    assert not policy.allows("completion", "python", "/elsewhere/db.secret.py")
    assert policy.allows("completion", "python", "/elsewhere/vendor/x.py")
    # No path (an untitled buffer): only the rules without paths apply.
    assert policy.allows("completion", "python", None) and not policy.allows("hover", "markdown", None)


def test_describe_for_the_status_command(tmp_path: Path) -> None:
    source = write_policy(tmp_path, 'local_only = true\nmax_context_tokens = 700\n[[disable]]\nfeatures = ["hover"]\n')
    described = load_policy(tmp_path).describe()
    assert described["sources"] == [str(source.resolve())]
    assert described["localOnly"] is True and described["maxContextTokens"] == 700
    assert described["disable"][0]["features"] == ["hover"] and described["errors"] == []
    assert described["allowedRemoteHosts"] is None
    json.dumps(described)  # plain JSON for the wire
    assert Policy().describe()["sources"] == []


# -- fail closed ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("text", [
    "local_only = tru\n",                   # not TOML
    "local-only = true\n",                  # a typo: an unknown key
    "local_only = \"yes\"\n",               # a wrong type
    "allowed_remote_hosts = \"gpu.lan\"\n",  # not a list
    "max_context_tokens = -5\n",
    "[[disable]]\nfeatures = [\"completions\"]\n",  # an unknown feature
    "[disable]\nfeatures = [\"hover\"]\n",         # a table, not [[disable]] tables
])
def test_a_malformed_policy_locks_down(tmp_path: Path, text: str) -> None:
    write_policy(tmp_path, text)
    policy = load_policy(tmp_path)
    assert policy.local_only and not policy.host_allowed("gpu.corp.example")
    assert not any(policy.allows(f, "python", str(tmp_path / "a.py")) for f in ("completion", "actions", "hover"))
    assert len(policy.errors) == 1 and "locked down" in policy.errors[0]
    tightened, messages = policy.apply(parse_settings({"model": REMOTE}))
    assert tightened.model.engine == "local" and messages


def test_a_missing_admin_policy_locks_down(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(POLICY_ENV, str(tmp_path / "nowhere.toml"))
    policy = load_policy(tmp_path)
    assert policy.local_only and not policy.allows("completion", "python", None)
    assert "nowhere.toml" in policy.errors[0]


def test_loopback_hosts() -> None:
    assert all(is_loopback_host(h) for h in ("localhost", "127.0.0.1", "127.8.0.1", "::1", "[::1]"))
    assert not any(is_loopback_host(h) for h in ("0.0.0.0", "::", "192.168.1.5", "gpu.lan", "", None))


# -- end to end: the real server with the fake engine ---------------------------------------------------

FAKE = {"engine": "fake", "security": {"diagnostics": False}, "cache": {"enabled": False},
        "completion": {"prewarm": False}}


@contextlib.asynccontextmanager
async def server_in(workspace: Path, options: dict[str, Any],
                    env: dict[str, str] | None = None) -> AsyncIterator[LanguageClient]:
    """A server process initialized with `workspace` as its only folder."""
    client = await ClientServerConfig(server_command=[*SERVER_COMMAND, "--no-preload"],
                                      server_env={**os.environ, **(env or {})}).start()
    try:
        await client.initialize_session(types.InitializeParams(
            capabilities=capabilities(), initialization_options=options, root_uri=workspace.as_uri(),
            workspace_folders=[types.WorkspaceFolder(uri=workspace.as_uri(), name="ws")]))
        yield client
        await client.shutdown_session()
    except BaseException:
        server = getattr(client, "_server", None)
        if server is not None and server.returncode is None:
            server.kill()
        raise
    finally:
        await client.stop()


async def test_policy_disables_inline_completion_for_secret_files(tmp_path: Path) -> None:
    write_policy(tmp_path, '[[disable]]\nfeatures = ["completion"]\npaths = ["*.secret.py"]\n')
    text = "def add(a, b):\n    return "
    async with server_in(tmp_path, FAKE) as client:
        plain, secret = (tmp_path / "app.py").as_uri(), (tmp_path / "keys.secret.py").as_uri()
        open_document(client, plain, text)
        open_document(client, secret, text)
        shown = await client.text_document_inline_completion_async(inline_params(plain, end_position(text)))
        assert shown is not None and shown.items  # the fake model answers elsewhere
        hidden = await client.text_document_inline_completion_async(inline_params(secret, end_position(text)))
        assert hidden is None
        items = await client.text_document_completion_async(types.CompletionParams(
            text_document=types.TextDocumentIdentifier(uri=secret), position=end_position(text)))
        assert items is None or not items.items


async def test_local_only_forces_remote_local_and_status_shows_the_policy(tmp_path: Path) -> None:
    source = write_policy(tmp_path, "local_only = true\nmax_context_tokens = 900\n")
    async with server_in(tmp_path, {**FAKE, "model": REMOTE}) as client:
        report = await status(client)
        assert report["settings"]["model"]["engine"] == "local"
        assert report["settings"]["completion"]["contextTokens"] == 900
        assert report["policy"]["sources"] == [str(source.resolve())] and report["policy"]["localOnly"]
        await asyncio.sleep(0.2)
        told = [m for m in client.messages if "local_only" in m.message and "model.engine" in m.message]
        assert len(told) == 1 and told[0].type == types.MessageType.Warning
        # Settings sent again cannot loosen it, and the same override is not told twice.
        client.workspace_did_change_configuration(types.DidChangeConfigurationParams(
            settings={**FAKE, "model": REMOTE}))
        report = await status(client)
        assert report["settings"]["model"]["engine"] == "local"
        await asyncio.sleep(0.2)
        assert len([m for m in client.messages if "local_only" in m.message and "model.engine" in m.message]) == 1


# -- --tcp -----------------------------------------------------------------------------------------------

def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _server_argv() -> list[str]:
    script = Path(sys.executable).parent / "codeassist-lsp"
    return [str(script)] if script.exists() else [sys.executable, "-m", "codeassist_lsp"]


def _send(sock: socket.socket, message: dict[str, Any]) -> None:
    body = json.dumps(message).encode()
    sock.sendall(b"Content-Length: %d\r\n\r\n" % len(body) + body)


_buffers: dict[int, bytes] = {}


def _receive(sock: socket.socket) -> dict[str, Any] | None:
    """The next message, or None when the server closed the connection."""
    data = _buffers.pop(sock.fileno(), b"")
    while True:
        head, separator, rest = data.partition(b"\r\n\r\n")
        if separator:
            length = next(int(line.split(b":")[1]) for line in head.split(b"\r\n")
                          if line.lower().startswith(b"content-length"))
            if len(rest) >= length:
                _buffers[sock.fileno()] = rest[length:]
                return json.loads(rest[:length])  # type: ignore[no-any-return]
        try:
            chunk = sock.recv(65536)
        except ConnectionResetError:  # closed while our last message was unread
            return None
        if not chunk:
            return None
        data += chunk


def _response(sock: socket.socket, msg_id: int) -> dict[str, Any] | None:
    """The answer to request `msg_id`, skipping notifications."""
    while (message := _receive(sock)) is not None:
        if message.get("id") == msg_id and "method" not in message:
            return message
    return None


def _initialize(msg_id: int, options: dict[str, Any]) -> dict[str, Any]:
    return {"jsonrpc": "2.0", "id": msg_id, "method": "initialize",
            "params": {"processId": None, "rootUri": None, "capabilities": {}, "initializationOptions": options}}


@contextlib.contextmanager
def tcp_server(tmp_path: Path) -> Iterator[tuple[int, Path, subprocess.Popen[bytes]]]:
    port, token_file = _free_port(), tmp_path / "tokens" / "tcp-token"
    process = subprocess.Popen([*_server_argv(), "--tcp", f"127.0.0.1:{port}", "--token-file", str(token_file),
                                "--no-preload"], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        yield port, token_file, process
    finally:
        if process.poll() is None:
            process.kill()
        process.communicate(timeout=10)


def _connect(port: int, process: subprocess.Popen[bytes]) -> socket.socket:
    deadline = time.monotonic() + 30
    while True:
        try:
            sock = socket.create_connection(("127.0.0.1", port), timeout=20)
            _buffers.pop(sock.fileno(), None)  # a closed socket's leftovers under a reused number
            return sock
        except OSError:
            assert process.poll() is None, process.communicate()[1].decode()[-2000:]
            assert time.monotonic() < deadline, "the TCP server did not start"
            time.sleep(0.1)


def test_tcp_needs_the_token_from_the_token_file(tmp_path: Path) -> None:
    with tcp_server(tmp_path) as (port, token_file, process):
        for options in ({}, {"token": "guessed"}, {"codeassist": {"token": "guessed"}}):
            with _connect(port, process) as sock:
                _send(sock, _initialize(1, {**options, **FAKE}))
                answer = _response(sock, 1)
                assert answer is not None and answer["error"]["code"] == -32600, answer
                assert "token" in answer["error"]["message"]
                # Nothing more from this connection is served: it is closed.
                with contextlib.suppress(OSError):
                    _send(sock, {"jsonrpc": "2.0", "id": 2, "method": "shutdown"})
                assert _receive(sock) is None
        assert process.poll() is None  # refused clients do not end the server
        assert stat.S_IMODE(token_file.stat().st_mode) == 0o600
        token = token_file.read_text().strip()
        with _connect(port, process) as sock:
            _send(sock, _initialize(1, {"codeassist": {**FAKE, "token": token}}))
            answer = _response(sock, 1)
            assert answer is not None and "result" in answer, answer
            assert answer["result"]["capabilities"]["inlineCompletionProvider"] is not None
            _send(sock, {"jsonrpc": "2.0", "method": "initialized", "params": {}})
            _send(sock, {"jsonrpc": "2.0", "id": 2, "method": "workspace/executeCommand",
                         "params": {"command": "codeassist.status", "arguments": []}})
            report = _response(sock, 2)
            assert report is not None and report["result"]["settings"]["engine"] == "fake"  # no "invalid settings"
            _send(sock, {"jsonrpc": "2.0", "id": 3, "method": "shutdown"})
            assert _response(sock, 3) is not None
            _send(sock, {"jsonrpc": "2.0", "method": "exit"})
        assert process.wait(timeout=20) == 0
        assert process.stdout is not None and process.stdout.read() == b""  # the token is never printed


def test_tcp_refuses_a_non_loopback_address_without_the_flag(tmp_path: Path) -> None:
    run = subprocess.run([*_server_argv(), "--tcp", f"0.0.0.0:{_free_port()}", "--token-file",
                          str(tmp_path / "token"), "--no-preload"], capture_output=True, text=True, timeout=60)
    assert run.returncode == 2, run.stderr
    assert "--allow-remote-clients" in run.stderr and run.stdout == ""
    assert not (tmp_path / "token").exists()


def test_stdio_ignores_a_token_in_the_options() -> None:
    from codeassist_lsp.tcp import pop_token  # stdio needs no token; one sent anyway is no invalid setting

    options: dict[str, Any] = {"token": "t", "codeassist": {"token": "u", "engine": "fake"}}
    assert pop_token(options) == "t" and options == {"codeassist": {"engine": "fake"}}
    assert parse_settings(options).engine == "fake"
