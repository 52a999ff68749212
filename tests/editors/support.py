"""Helpers of the editor tests: where the editors and the server are, failure messages."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest


REPO = Path(__file__).resolve().parents[2]
EDITORS = REPO / "editors"
VENV_BIN = Path(sys.executable).parent
INSTALL_HINT = "run ./dev.sh test (it calls editors/install-test-deps.sh), or that script directly"

# Where a completion is likely non-empty: the server answers a single line after `return `.
SAMPLE_PY = "def add(a, b):\n    return \n"
SAMPLE_LINE = "    return "


def require_executable(name: str, *candidates: Path | str) -> str:
    """The editor's executable; FAIL (never skip) with a clear message when it is missing."""
    for candidate in candidates:
        found = shutil.which(str(candidate))
        if found:
            return found
    pytest.fail(f"{name} not found (looked for {', '.join(map(str, candidates))}): {INSTALL_HINT}.")


def server_command() -> list[str]:
    """The language server as an editor starts it: the console script from this venv.

    $CODEASSIST_TEST_SERVER overrides it (one executable, e.g. a wrapper around another build).
    """
    override = os.environ.get("CODEASSIST_TEST_SERVER")
    if override:
        return [override]
    script = VENV_BIN / "codeassist-lsp"
    if not script.exists():
        pytest.fail(f"{script} is missing: install the project (pip install -e .) first.")
    return [str(script)]


def tail(path: Path, lines: int = 40) -> str:
    """The end of a log file, for failure messages."""
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return f"({path} not written)"


def advertised_capabilities() -> dict[str, Any]:
    """The server's capabilities as its initialize answer gives them (deterministic engine: no model load)."""
    global _CAPABILITIES
    if _CAPABILITIES is None:
        request = {"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
            "processId": None, "rootUri": None, "capabilities": {},
            "initializationOptions": {"engine": "fake", "context": {"indexWorkspace": False}}}}
        process = subprocess.Popen(server_command(), stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                   stderr=subprocess.DEVNULL)
        try:
            assert process.stdin is not None and process.stdout is not None
            body = json.dumps(request).encode()
            process.stdin.write(b"Content-Length: %d\r\n\r\n%s" % (len(body), body))
            process.stdin.flush()
            length = 0
            while (line := process.stdout.readline().strip()):
                if line.lower().startswith(b"content-length:"):
                    length = int(line.split(b":")[1])
            _CAPABILITIES = json.loads(process.stdout.read(length))["result"]["capabilities"]
        finally:
            process.kill()
            process.wait()
    return _CAPABILITIES


_CAPABILITIES: dict[str, Any] | None = None
