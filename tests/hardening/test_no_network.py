"""No network by default: the whole feature set, on the real models, under an audit hook that records sockets."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from tests.hardening.support import EDITOR_CAPABILITIES, RawServer

pytestmark = pytest.mark.model

AUDITED_SERVER = Path(__file__).with_name("audited_server.py")
CAPABILITIES = {**EDITOR_CAPABILITIES, "window": {"workDoneProgress": True}}
# Small inputs: the code model answers an action in seconds on 2 CPU cores.
SOURCE = "import math\n\n\ndef circle_area(radius):\n    return math.pi * radius ** 2\n\n\nprint(circle_area(2))\nx = "


def audit_records(path: Path) -> list[dict[str, Any]]:
    """The audit hook's records."""
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def test_the_audit_hook_sees_a_connection(tmp_path: Path) -> None:
    # The main test proves nothing unless the hook really records sockets: try one on loopback.
    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]
    audit = tmp_path / "audit.jsonl"
    code = ("import socket, sys; sys.path.insert(0, sys.argv[1]); "
            "from audited_server import install_network_audit; install_network_audit(sys.argv[2]); "
            f"socket.create_connection(('127.0.0.1', {port})).close()")
    subprocess.run([sys.executable, "-c", code, str(AUDITED_SERVER.parent), str(audit)], check=True, timeout=30)
    listener.close()
    events = {record["event"] for record in audit_records(audit)}
    assert {"socket.__new__", "socket.connect"} <= events, events


def _wait(condition: Any, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.1)


def test_every_feature_runs_without_a_socket(tmp_path: Path) -> None:
    audit = tmp_path / "audit.jsonl"
    workspace = tmp_path / "project"
    workspace.mkdir()
    (workspace / "shapes.py").write_text("def square_area(side):\n    return side * side\n", encoding="utf-8")
    path = workspace / "main.py"
    path.write_text(SOURCE, encoding="utf-8")
    uri = path.as_uri()
    # Default settings (the in-process llama engine, both tiers, cache, index, security scan); one
    # candidate per action and a short docstring keep the code model's part to seconds.
    server = RawServer(tmp_path / "server.log", extra_args=(),
                       command=[sys.executable, str(AUDITED_SERVER), str(audit)])
    try:
        result = server.request("initialize", {
            "processId": None, "rootUri": workspace.as_uri(), "capabilities": CAPABILITIES,
            "workspaceFolders": [{"uri": workspace.as_uri(), "name": "project"}],
            "initializationOptions": {"actions": {"bestOfN": 1, "maxTokens": 48}}})
        assert "result" in result, result
        server.notify("initialized", {})
        server.notify("textDocument/didOpen", {"textDocument": {
            "uri": uri, "languageId": "python", "version": 1, "text": SOURCE}})

        def status() -> dict[str, Any]:
            return server.request("workspace/executeCommand", {"command": "codeassist.status"})["result"]

        _wait(lambda: status()["model"]["state"] != "loading" and status()["qualityModel"]["state"] != "loading",
              60, "both models to load")
        report = status()
        assert report["model"]["state"] == "ready", report["model"]
        assert report["qualityModel"]["state"] == "ready", report["qualityModel"]  # the code model

        end = {"line": SOURCE.count("\n"), "character": len(SOURCE.rsplit("\n", 1)[1])}
        document = {"uri": uri}
        inline = server.request("textDocument/inlineCompletion", {
            "textDocument": document, "position": end, "context": {"triggerKind": 2}}, timeout=60)
        assert "result" in inline, inline
        completion = server.request("textDocument/completion", {"textDocument": document, "position": end},
                                    timeout=60)
        assert "result" in completion, completion
        hover = server.request("textDocument/hover", {
            "textDocument": document, "position": {"line": 3, "character": 6}}, timeout=60)
        assert "result" in hover and hover["result"], hover  # a model or structural explanation
        listed = server.request("textDocument/codeAction", {
            "textDocument": document, "range": {"start": {"line": 3, "character": 4}, "end": {"line": 3, "character": 4}},
            "context": {"diagnostics": []}})
        docstring = [a for a in listed["result"] or [] if a.get("kind") == "refactor.rewrite.codeassist.docstring"]
        assert docstring, listed
        resolved = server.request("codeAction/resolve", docstring[0], timeout=90)
        assert "edit" in resolved.get("result", {}), resolved  # the code model wrote a docstring
        server.notify("textDocument/didSave", {"textDocument": document})
        _wait(lambda: any(n["method"] == "textDocument/publishDiagnostics" and n["params"]["uri"] == uri
                          for n in server.notifications), 60, "the security scan's diagnostics")
        _wait(lambda: status()["index"]["ready"], 30, "the workspace index")
        assert server.shutdown_and_exit() == 0
    finally:
        server.close()
    records = audit_records(audit)
    assert records and records[0]["kind"] == "installed", records[:3]
    network = [r for r in records if r["kind"] == "network"]
    assert not network, network
