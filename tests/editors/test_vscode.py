"""VS Code (code-server 4.99.4 in headless Chromium) with the built .vsix and the real embedded model."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import time
import urllib.request
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest

from codeassist_lsp.feedback.store import FILE_NAME, FeedbackStore

from .support import (EDITORS, INSTALL_HINT, SAMPLE_LINE, SAMPLE_PY, advertised_capabilities, require_executable,
                      server_command, tail)

pytestmark = pytest.mark.model
DRIVER = Path(__file__).with_name("vscode_driver.js")
EXTENSION = EDITORS / "vscode"
EXTENSION_ID = "codeassist.codeassist"  # publisher.name in editors/vscode/package.json
CODE_SERVER_VERSION = "4.99.4"


def _code_server() -> str:
    """code-server as editors/install-test-deps.sh caches it."""
    cache = Path(os.environ.get("CODEASSIST_EDITORS_CACHE")
                 or Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "codeassist-editors")
    return require_executable(f"code-server {CODE_SERVER_VERSION}",
                              cache / f"code-server-{CODE_SERVER_VERSION}" / "node_modules/.bin/code-server")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _wait_http(url: str, process: subprocess.Popen[bytes], seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"code-server exited with {process.returncode}")
        try:
            with urllib.request.urlopen(url, timeout=2):
                return
        except OSError:
            time.sleep(0.3)
    pytest.fail(f"code-server did not answer on {url} within {seconds} s")


@pytest.fixture(scope="module")
def vsix() -> Path:
    """The extension, compiled and packaged by vsce from editors/vscode."""
    if not (EXTENSION / "node_modules/.bin/vsce").exists():
        pytest.fail(f"editors/vscode/node_modules is missing: {INSTALL_HINT}.")
    built = subprocess.run(["npm", "run", "--silent", "package"], cwd=EXTENSION, capture_output=True, text=True,
                           timeout=180)
    assert built.returncode == 0, built.stdout[-3000:] + built.stderr[-3000:]
    return EXTENSION / "codeassist.vsix"


@pytest.fixture(scope="module")
def vscode_run(vsix: Path, editor_home: dict[str, str], tmp_path_factory: pytest.TempPathFactory,
               artifacts: Path) -> dict[str, Any]:
    """code-server with the .vsix installed, driven by playwright-core; the driver's JSON report."""
    code_server = _code_server()
    chromium = require_executable("Chromium (Debian chromium)", "chromium")
    node = require_executable("Node.js", "node")
    root = tmp_path_factory.mktemp("vscode")
    folder = root / "project"
    folder.mkdir()
    # No trailing space: typing it is what asks for the suggestion.
    # A second function: the partial accept (Ctrl+Right) happens in its body.
    (folder / "sample.py").write_text(SAMPLE_PY.replace(SAMPLE_LINE + "\n", SAMPLE_LINE.rstrip() + "\n")
                                      + "\n\ndef mul(a, b):\n    return\n")
    user_data, extensions = root / "user-data", root / "extensions"
    log = artifacts / "vscode-server.log"
    for stale in artifacts.glob("vscode-*"):
        stale.unlink()
    (user_data / "User").mkdir(parents=True)
    (user_data / "User/settings.json").write_text(json.dumps({
        "codeassist.server.command": [*server_command(), "--log-file", str(log)],
        "codeassist.server.logLevel": "debug",
        "editor.inlineSuggest.enabled": True,
        # The completion menu would take Tab first; this test is about ghost text.
        "editor.quickSuggestions": {"other": "off", "comments": "off", "strings": "off"},
        "editor.suggestOnTriggerCharacters": False,
        "workbench.startupEditor": "none",
        "workbench.tips.enabled": False,
        "security.workspace.trust.enabled": False,
        "telemetry.telemetryLevel": "off",
        "extensions.autoCheckUpdates": False,
        "extensions.autoUpdate": False,
    }))
    base = [code_server, "--user-data-dir", str(user_data), "--extensions-dir", str(extensions)]
    # The outcomes of this run's suggestions, read back after it (the server stores them as decided).
    feedback = root / "feedback"
    editor_env = dict(editor_home, CODEASSIST_FEEDBACK_DIR=str(feedback))
    installed = subprocess.run([*base, "--install-extension", str(vsix)], env=editor_env,
                               capture_output=True, text=True, timeout=120)
    assert installed.returncode == 0, installed.stdout + installed.stderr
    port = _free_port()
    server_out = (artifacts / "vscode-code-server.log").open("wb")
    # The extension's show and partial-accept callbacks are a proposed API: VS Code calls them only
    # for extensions it is told to trust with proposals.
    process = subprocess.Popen(
        [*base, "--auth", "none", "--bind-addr", f"127.0.0.1:{port}", "--disable-telemetry",
         "--disable-update-check", "--disable-workspace-trust", "--enable-proposed-api", EXTENSION_ID, str(folder)],
        env=editor_env, stdin=subprocess.DEVNULL, stdout=server_out, stderr=subprocess.STDOUT)
    try:
        url = f"http://127.0.0.1:{port}/"
        _wait_http(url + "healthz", process, 60)
        capabilities = advertised_capabilities()
        env = dict(editor_home, CODEASSIST_URL=f"{url}?folder={quote(str(folder))}", CODEASSIST_CHROMIUM=chromium,
                   CODEASSIST_SAMPLE=str(folder / "sample.py"),
                   CODEASSIST_USER_DATA=str(user_data),
                   CODEASSIST_HOVER="1" if capabilities.get("hoverProvider") else "0",
                   CODEASSIST_CODE_ACTION="1" if capabilities.get("codeActionProvider") else "0",
                   CODEASSIST_ARTIFACTS=str(artifacts), CODEASSIST_NODE_MODULES=str(EXTENSION / "node_modules"))
        try:
            driven = subprocess.run([node, str(DRIVER)], env=env, capture_output=True, text=True, timeout=420)
        except subprocess.TimeoutExpired:
            pytest.fail(f"the VS Code driver did not finish in 420 s; server log:\n{tail(log)}")
    finally:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
        server_out.close()
    result = artifacts / "vscode-result.json"
    if not result.exists():
        pytest.fail(f"the VS Code driver wrote no report:\n{driven.stderr[-3000:]}")
    report: dict[str, Any] = json.loads(result.read_text())
    if "error" in report:
        pytest.fail(f"VS Code driver: {report['error']}\nsteps: {report['steps']}\n"
                    f"screenshots in {artifacts}\nserver log:\n{tail(log)}")
    if (feedback / FILE_NAME).exists():
        store = FeedbackStore(feedback, max_records=0, retention_days=0)
        report["outcomes"] = store.rows(unseen=True)
        store.close()
    return report


def test_status_bar_says_ready(vscode_run: dict[str, Any]) -> None:
    assert vscode_run["statusLabel"].startswith("codeassist ready"), vscode_run["statusLabel"]
    assert "gemma-3-270m" in vscode_run["statusLabel"]


def test_ghost_text_from_the_model_accepted_with_tab(vscode_run: dict[str, Any]) -> None:
    ghost = vscode_run["ghostText"]
    assert ghost.strip(), vscode_run
    second_line = vscode_run["savedAfterTab"].split("\n")[1]
    assert second_line.startswith(SAMPLE_LINE) and second_line[len(SAMPLE_LINE):].strip(), vscode_run["savedAfterTab"]
    assert second_line == SAMPLE_LINE + ghost or second_line.startswith(SAMPLE_LINE + ghost.strip()), (
        ghost, second_line)
    assert vscode_run["lineAfterTab"].rstrip() == second_line.rstrip()


def test_tab_accept_is_recorded_as_accepted_and_seen(vscode_run: dict[str, Any]) -> None:
    # The extension forwards VS Code's show callback: outcomes then say whether the suggestion was on
    # screen (seen is NULL for clients that never report it), and the one taken with Tab was.
    outcomes = vscode_run.get("outcomes") or []
    ghost = vscode_run["ghostText"].strip()
    taken = [o for o in outcomes if o["outcome"] == "accepted" and o["reason"] == "explicit" and o["seen"] == 1]
    assert [o for o in taken if o["accepted_chars"] >= len(ghost)], (ghost, outcomes)
    # Suggestions VS Code never showed are kept apart (outcome unseen), never counted as rejected.
    assert all(o["seen"] == 0 for o in outcomes if o["outcome"] == "unseen"), outcomes


def test_accepting_a_word_is_recorded_as_a_partial_accept(vscode_run: dict[str, Any]) -> None:
    partial = vscode_run.get("partial") or {}
    assert "error" not in partial and partial.get("ghostText", "").strip(), partial
    before, ghost, line = partial["before"], partial["ghostText"], partial["line"].rstrip()
    assert line.startswith(before.rstrip()) and len(line) > len(before.rstrip()), partial
    accepted = line[len(before):] if line.startswith(before) else line[len(before.rstrip()):]
    assert ghost.startswith(accepted), partial
    outcomes = vscode_run.get("outcomes") or []
    if accepted == ghost.rstrip():  # a one-word suggestion: the word was all of it
        assert [o for o in outcomes if o["outcome"] == "accepted" and o["seen"] == 1
                and o["shown_chars"] == len(ghost)], (partial, outcomes)
    else:  # the client said "word", even for one character (which edits alone cannot tell from typing)
        assert [o for o in outcomes if o["outcome"] == "partial" and o["reason"] == "word" and o["seen"] == 1
                and o["accepted_chars"] == len(accepted)], (partial, outcomes)


def test_status_command_reports_stats(vscode_run: dict[str, Any]) -> None:
    message = vscode_run["statusMessage"]
    assert message and "ready" in message and "shown" in message, message


def test_toggle_inline_suggestions_command(vscode_run: dict[str, Any]) -> None:
    assert vscode_run["toggle"] == {"off": True, "on": True}, vscode_run["toggle"]


def test_hover_shows_an_explanation(vscode_run: dict[str, Any]) -> None:
    assert advertised_capabilities().get("hoverProvider"), "the server does not advertise hoverProvider"
    hover = vscode_run.get("hover") or {}
    assert "error" not in hover and hover.get("text"), f"no hover explanation in VS Code: {hover}"


def test_code_action_applies_an_edit(vscode_run: dict[str, Any]) -> None:
    assert advertised_capabilities().get("codeActionProvider"), "the server does not advertise codeActionProvider"
    action = vscode_run.get("codeAction") or {}
    assert "error" not in action and action.get("applied"), f"no code action applied in VS Code: {action}"
    assert action["after"] != action["before"] and "def add(a, b):" in action["after"], action


def test_restart_command_restarts_the_server(vscode_run: dict[str, Any]) -> None:
    assert vscode_run.get("restart") == {"left": True, "readyAgain": True}, vscode_run.get("restart")


def test_a_missing_server_command_gets_one_clear_error(vscode_run: dict[str, Any]) -> None:
    missing = vscode_run.get("missingServer") or {}
    message = missing.get("message") or ""
    assert "/nonexistent/bin/codeassist-lsp" in message and "codeassist.server.command" in message, missing
    assert (missing.get("statusLabel") or "").startswith("codeassist error: codeassist: server not found"), missing
