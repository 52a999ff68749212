"""The two tiers end to end over LSP: the code model answers actions and hover (Python and JavaScript),
typing stays on the fast model, and without the code model everything still works and the user is told."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path
from typing import Any

import pytest
from lsprotocol import types
from pytest_lsp import LanguageClient

from codeassist_lsp.engine.models import installed_model_path, models_dir
from codeassist_lsp.engine.tiers import quality_model_name
from tests.actions.helpers import apply_edit, bounded_server, code_action_params, parses, position_at
from tests.lsp.helpers import open_document, status, wait_for_model

pytestmark = [pytest.mark.model, pytest.mark.actions_e2e]

# hoverBudgetMs: the explanation is tested, not the speed estimate (a busy machine's record may be slow).
OPTIONS = {"completion": {"prewarm": False}, "actions": {"bestOfN": 1, "hoverDebounceMs": 10, "hoverBudgetMs": 600000}}

RING = '''import math


def ring_area(outer, inner):
    if inner > outer:
        raise ValueError("inner radius larger than outer")
    return math.pi * (outer * outer - inner * inner)
'''

JS = '''function average(values) {
  const total = values.reduce((sum, v) => sum + v, 0);
  return totl / values.length;
}

function positiveNumbers(values) {
  const result = [];
  for (let i = 0; i < values.length; i++) {
    if (values[i] > 0) {
      result.push(values[i]);
    }
  }
  return result;
}

function wordCounts(text) {
  const counts = {};
  for (const word of text.split(" ")) {
    counts[word] = (counts[word] || 0) + 1;
  }
  return counts;
}

// Return true when text reads the same backwards, ignoring case.
'''


@pytest.fixture(scope="module")
def coder_installed() -> Path:
    """The code model; the suite fails (not skips) without it: ./dev.sh test installs it."""
    path = installed_model_path(quality_model_name())
    if path is None:
        pytest.fail(f"the code model is not installed: codeassist models install {quality_model_name()}")
    return path


async def _actions(client: LanguageClient, uri: str, text: str, start: int, end: int | None = None,
                   diagnostics: list[types.Diagnostic] | None = None) -> list[types.CodeAction]:
    result = await client.text_document_code_action_async(code_action_params(uri, text, start, end, diagnostics))
    return [a for a in (result or []) if isinstance(a, types.CodeAction)]


def _pick(actions: list[types.CodeAction], action: str, preset: str = "") -> types.CodeAction:
    found = [a for a in actions if a.data["codeassist"]["action"] == action
             and (not preset or a.data["codeassist"]["preset"] == preset)]
    assert found, [a.title for a in actions]
    return found[0]


async def _applied(client: LanguageClient, uri: str, text: str, action: types.CodeAction) -> str:
    resolved = await client.code_action_resolve_async(action)
    assert resolved.edit is not None, [m.message for m in client.messages]
    new_text = apply_edit(text, resolved.edit, uri, 1)
    assert new_text != text
    return new_text


async def _ready(client: LanguageClient) -> dict[str, Any]:
    report = await wait_for_model(client, timeout=120)
    assert report["model"]["state"] == "ready", report
    for _ in range(600):
        report = await status(client)
        if report["qualityModel"]["state"] != "loading":
            return report
        await asyncio.sleep(0.1)
    return report


async def test_code_model_serves_actions_and_hover_while_typing_stays_fast(coder_installed: Path) -> None:
    async with bounded_server(OPTIONS, seconds=240) as (client, _):
        report = await _ready(client)
        assert report["qualityModel"]["state"] == "ready" and report["qualityModel"]["id"].startswith(coder_installed.name)
        assert not report["qualityModel"]["sharedWithCompletion"]
        assert report["model"]["id"].startswith("gemma"), report["model"]  # CPU: typing keeps the fast model

        uri = "file:///tmp/codeassist-tiers/ring.py"
        open_document(client, uri, RING)
        hover = await client.text_document_hover_async(types.HoverParams(
            text_document=types.TextDocumentIdentifier(uri=uri), position=position_at(RING, RING.index("ring_area") + 2)))
        assert hover is not None and isinstance(hover.contents, types.MarkupContent)
        sentence = hover.contents.value.lower()
        # The explanation is right: it names both radii and the error (Gemma said "the ring of radius 1").
        assert "outer" in sentence and "inner" in sentence and "valueerror" in sentence.replace(" ", ""), sentence

        documented = await _applied(client, uri, RING, _pick(await _actions(client, uri, RING, RING.index("if inner")),
                                                             "docstring"))
        assert parses(documented) and documented.count('"""') == 2, documented


async def test_every_action_in_javascript_with_the_code_model(coder_installed: Path) -> None:
    async with bounded_server(OPTIONS, seconds=300) as (client, _):
        await _ready(client)
        uri = "file:///tmp/codeassist-tiers/shop.js"
        open_document(client, uri, JS, language_id="javascript")

        start = JS.index("totl")
        problem = types.Diagnostic(range=types.Range(start=position_at(JS, start), end=position_at(JS, start + 4)),
                                   message="'totl' is not defined.", source="eslint")
        fixed = await _applied(client, uri, JS, _pick(await _actions(client, uri, JS, start, diagnostics=[problem]), "fix"))
        assert "return total / values.length;" in fixed and parses(fixed, "javascript"), fixed

        documented = await _applied(client, uri, JS, _pick(await _actions(client, uri, JS, JS.index("const counts")),
                                                           "docstring"))
        assert "/**" in documented and documented.index("/**") < documented.index("function wordCounts"), documented
        assert parses(documented, "javascript")

        start, end = JS.index("  const result"), JS.index("  return result;\n") + len("  return result;\n")
        simplified = await _applied(client, uri, JS, _pick(await _actions(client, uri, JS, start, end),
                                                           "refactor", "simplify"))
        assert parses(simplified, "javascript") and "function positiveNumbers(values) {" in simplified, simplified
        assert simplified.count("\n") < JS.count("\n"), simplified

        generated = await _applied(client, uri, JS, _pick(await _actions(client, uri, JS, len(JS) - 1), "generate"))
        tail = generated[len(JS):]
        assert parses(generated, "javascript") and "function" in tail and "return" in tail, tail

        explain = _pick(await _actions(client, uri, JS, JS.index("function wordCounts"), JS.index("// Return")),
                        "explain")
        result = await client.workspace_execute_command_async(types.ExecuteCommandParams(
            command=explain.command.command, arguments=explain.command.arguments))
        assert result["explanation"] and "count" in result["explanation"].lower(), result


async def test_without_the_code_model_actions_fall_back_and_the_user_is_told_once(tmp_path: Path) -> None:
    # A cache dir that holds only the fast model: a machine that never installed the code model.
    fast = installed_model_path()
    assert fast is not None
    folder = tmp_path / "models"
    folder.mkdir()
    (folder / fast.name).symlink_to(fast)
    marker = models_dir() / (fast.name + ".sha256")
    (folder / marker.name).write_text(marker.read_text())
    env = {**os.environ, "CODEASSIST_CACHE_DIR": str(tmp_path)}
    async with bounded_server(OPTIONS, seconds=120, env=env) as (client, _):
        report = await _ready(client)
        assert report["qualityModel"]["state"] == "fallback" and report["qualityModel"]["sharedWithCompletion"]
        hints = [m.message for m in client.messages if f"codeassist models install {quality_model_name()}" in m.message]
        assert len(hints) == 1, [m.message for m in client.messages]
        uri = "file:///tmp/codeassist-tiers/fallback.py"
        open_document(client, uri, RING)
        documented = await _applied(client, uri, RING, _pick(await _actions(client, uri, RING, RING.index("if inner")),
                                                             "docstring"))
        assert parses(documented)
        # Still told once: a second action does not repeat the hint.
        await client.code_action_resolve_async(_pick(await _actions(client, uri, RING, RING.index("if inner")),
                                                     "docstring"))
        hints = [m.message for m in client.messages if f"codeassist models install {quality_model_name()}" in m.message]
        assert len(hints) == 1
