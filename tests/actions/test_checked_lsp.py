"""A checked quick fix end to end over LSP with the real code model: the editor sends mypy's diagnostics,
the fix comes back only when the diagnostic is gone after it (mypy run again by the server) and it added
no error; a diagnostic no checker reproduces gets its fix with a "not verified" notice."""

from __future__ import annotations

import asyncio

import pytest
from lsprotocol import types

from codeassist_lsp.verify import typecheck
from tests.actions.helpers import apply_edit, bounded_server, code_action_params, offset_at, parses, position_at
from tests.lsp.helpers import open_document, status, wait_for_model

pytestmark = [pytest.mark.model, pytest.mark.actions_e2e]

OPTIONS = {"completion": {"prewarm": False}, "actions": {"bestOfN": 1, "hoverDebounceMs": 10}}
SOURCE = '''def clamp(value: int, low: int, high: int) -> int:
    return max(low, min(value, high))


def average(values: list[float]) -> float:
    total = sum(values)
    return totl / len(values)


def percent_of(part: int, whole: int) -> int:
    return clamp(100 * part // whole, 0, 100, 1)
'''


def diagnostic(anchor: str, message: str, source: str = "mypy") -> types.Diagnostic:
    start = SOURCE.index(anchor)
    return types.Diagnostic(range=types.Range(start=position_at(SOURCE, start), end=position_at(SOURCE, start + len(anchor))),
                            message=message, source=source)


async def fix_of(client, uri: str, problem: types.Diagnostic) -> types.CodeAction:  # type: ignore[no-untyped-def]
    start = offset_at(SOURCE, problem.range.start)
    result = await client.text_document_code_action_async(code_action_params(uri, SOURCE, start, diagnostics=[problem]))
    actions = [a for a in (result or []) if isinstance(a, types.CodeAction) and a.data["codeassist"]["action"] == "fix"]
    assert actions, result
    return actions[0]


async def test_a_fix_is_offered_only_when_its_diagnostic_is_gone() -> None:
    async with bounded_server(OPTIONS, seconds=300) as (client, _):
        assert (await wait_for_model(client, timeout=120))["model"]["state"] == "ready"
        for _ in range(600):
            if (await status(client))["qualityModel"]["state"] != "loading":
                break
            await asyncio.sleep(0.1)
        uri = "file:///tmp/codeassist-checked/stats.py"
        open_document(client, uri, SOURCE)
        offered = {}
        for problem, name in ((diagnostic("totl", 'Name "totl" is not defined  [name-defined]'), "name-defined"),
                              (diagnostic("clamp(100", 'Too many arguments for "clamp"  [call-arg]'), "call-arg")):
            resolved = await client.code_action_resolve_async(await fix_of(client, uri, problem))
            offered[name] = resolved.edit is not None
            if resolved.edit is None:
                continue  # the model wrote no fix, or the checks refused it (the user is told why)
            fixed = apply_edit(SOURCE, resolved.edit, uri, 1)
            assert parses(fixed), fixed
            # What was offered is right: mypy (checked again here) no longer reports it and reports nothing new.
            check = typecheck.check_edit(SOURCE, fixed, language_id="python")
            assert check.ran and not check.new_errors, check.new_errors
            assert name not in {p.code for p in check.after}, (fixed, check.after)
        # The undefined name is a fix the code model makes: the checks must not refuse everything.
        assert offered["name-defined"], [m.message for m in client.messages]

        # A diagnostic none of our checkers reproduces: the fix is offered, marked as not verified.
        style = diagnostic("return max", "Consider using a conditional expression", source="somelinter")
        resolved = await client.code_action_resolve_async(await fix_of(client, uri, style))
        if resolved.edit is not None:
            assert resolved.title.endswith("(not verified)"), resolved.title
            assert any("fix not verified" in m.message for m in client.messages), [m.message for m in client.messages]


async def test_a_fix_that_leaves_the_diagnostic_is_not_offered_and_the_user_is_told() -> None:
    # The fake engine's "fix" calls an undefined `fake_completion()`: the server re-runs mypy, finds the
    # error the fix adds, offers no edit and says why.
    fake = {"engine": "fake", "completion": {"prewarm": False}, "actions": {"bestOfN": 1}}
    async with bounded_server(fake, seconds=120) as (client, _):
        await wait_for_model(client)
        uri = "file:///tmp/codeassist-checked/fake.py"
        open_document(client, uri, SOURCE)
        problem = diagnostic("totl", 'Name "totl" is not defined  [name-defined]')
        resolved = await client.code_action_resolve_async(await fix_of(client, uri, problem))
        messages = [m.message for m in client.messages]
        assert resolved.edit is None, resolved.edit
        assert any("does not remove the problem" in m or "did not type-check" in m for m in messages), messages
