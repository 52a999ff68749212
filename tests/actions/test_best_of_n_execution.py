"""Best-of-N that executes: candidate filters, the test stage on each candidate, ranking by tests then agreement."""

from __future__ import annotations

import asyncio

from lsprotocol import types

from codeassist_lsp.actions.edits import Replacement, verify_replacement
from codeassist_lsp.actions.runner import ActionOutcome, ActionRunner, Candidate, comment_above, rank_candidates
from codeassist_lsp.actions.targets import ActionTarget, DocumentView, generation_target
from codeassist_lsp.config import ActionsSettings
from codeassist_lsp.context.languages import language_for
from codeassist_lsp.engine.base import GenerationResult
from codeassist_lsp.verify import SecurityPolicy
from codeassist_lsp.verify.execution import ExecutionReport

DOCUMENT = '''# assert add(10, 5) == 15
def add(a: int, b: int) -> int:
    """Add two numbers.

    >>> add(2, 3)
    5
    """
'''


def _setup(bodies: list[str], logprobs: list[float] | None = None
           ) -> tuple[DocumentView, object, list[Candidate]]:
    view = DocumentView.of("file:///work/add.py", DOCUMENT, 1, "python")
    target = generation_target(view, DOCUMENT.rindex('"""'))
    assert target is not None and target.name == "add"
    candidates = []
    for index, body in enumerate(bodies):
        replacement = Replacement(target.start, target.end, "\n    " + body)
        checked = verify_replacement(view.text, replacement, language_for("python"), SecurityPolicy())
        assert checked.accepted, checked.reason
        logprob = (logprobs or [-0.1] * len(bodies))[index]
        candidates.append(Candidate(GenerationResult(text=body, token_logprobs=[logprob]), checked, index=index))
    return view, target, candidates


def _header(view: DocumentView, target: object) -> str:
    anchor = target.anchor  # type: ignore[attr-defined]
    return comment_above(view.text, anchor) + view.text[anchor:target.start]  # type: ignore[attr-defined]


def test_tests_passed_outrank_the_score_and_the_summary_is_attached() -> None:
    # The greedy candidate (most confident) multiplies; a sample adds: the tests pick the sample.
    view, target, candidates = _setup(["return a * b", "return a + b", "return b + a"], [-0.01, -0.5, -0.6])
    runner = ActionRunner(None, ActionsSettings())
    asyncio.run(runner._execute_candidates(target, view, "", _header(view, target), candidates))  # type: ignore[arg-type]
    assert candidates[0].execution is not None and candidates[0].execution.counts == {"doctest": [0, 1], "assert": [0, 1]}
    assert candidates[1].execution is not None and candidates[1].execution.summary() == \
        "1/1 doctest passes, 1/1 assert passes"
    best = rank_candidates(candidates)
    assert best is candidates[1]  # a + b and b + a tie on tests and agreement; a + b has the better score
    assert candidates[1].agreement == candidates[2].agreement > candidates[0].agreement
    outcome = ActionOutcome(candidates=candidates)
    assert outcome.best is candidates[1]
    assert runner.stats["action_test_runs"] == 3


def test_agreement_breaks_a_tie_on_tests() -> None:
    def candidate(index: int, outputs: list[str | None], score: float) -> Candidate:
        view, _target, [made] = _setup(["return a + b"])
        made.index = index
        made.execution = ExecutionReport(counts={"doctest": [1, 1]}, outputs=outputs)
        made.result = GenerationResult(text=str(index), token_logprobs=[score])
        return made

    majority = [candidate(1, ["5", "1", "2"], -0.9), candidate(2, ["5", "1", "2"], -0.8)]
    loner = candidate(0, ["5", "7", "9"], -0.01)
    best = rank_candidates([loner, *majority])
    assert best is majority[1]


def test_candidate_filters_reject_before_the_test_stage() -> None:
    view, target, candidates = _setup(["return a + b", "return str(a) + str(b)"])
    runner = ActionRunner(None, ActionsSettings())
    seen = []

    def type_check(before: str, after: str, language_id: str | None, path: str) -> str | None:
        seen.append((language_id, path))
        return "type error: returns str, expected int" if "str(" in after else None

    runner.candidate_filters.append(type_check)
    asyncio.run(runner._filter_candidates(view, "/work/add.py", candidates))
    assert seen == [("python", "/work/add.py")] * 2
    assert candidates[0].accepted and not candidates[1].accepted
    assert candidates[1].rejected.startswith("type error")
    asyncio.run(runner._execute_candidates(target, view, "", _header(view, target), candidates))  # type: ignore[arg-type]
    assert candidates[1].execution is None  # rejected candidates are not run


def test_the_test_stage_can_be_turned_off() -> None:
    view, target, candidates = _setup(["return a + b"])
    runner = ActionRunner(None, ActionsSettings(run_tests=False))
    asyncio.run(runner._execute_candidates(target, view, "", _header(view, target), candidates))  # type: ignore[arg-type]
    assert candidates[0].execution is None


def test_comment_above_takes_the_comment_block() -> None:
    text = "x = 1\n\n# Adds.\n# assert add(1, 2) == 3\ndef add(a, b):\n"
    assert comment_above(text, text.index("def")) == "# Adds.\n# assert add(1, 2) == 3\n"
    assert comment_above(text, 0) == ""


# -- over LSP (the fake engine writes `fake_completion()` / `return None`: the doctest fails, and says so) --

async def test_resolve_puts_the_test_result_in_the_title_and_status_names_the_sandbox() -> None:
    from tests.actions.helpers import bounded_server, code_action_params
    from tests.lsp.helpers import open_document, status, wait_for_model

    source = 'def square(x):\n    """Square x.\n\n    >>> square(3)\n    9\n    """\n'
    # The type check would (rightly) reject the fake engine's code; the test stage is what is tested here.
    options = {"engine": "fake", "completion": {"prewarm": False}, "actions": {"bestOfN": 2, "typeCheck": False}}
    async with bounded_server(options, seconds=60) as (client, _):
        await wait_for_model(client)
        uri = "file:///tmp/codeassist-actions/square.py"
        open_document(client, uri, source)
        offset = source.index("Square")
        listed = await client.text_document_code_action_async(code_action_params(uri, source, offset))
        generate = [a for a in listed or [] if isinstance(a, types.CodeAction) and isinstance(a.data, dict)
                    and a.data["codeassist"]["action"] == "generate"]
        assert generate, listed
        resolved = await client.code_action_resolve_async(generate[0])
        assert resolved.edit is not None
        assert "(0/1 doctest passes" in resolved.title, resolved.title
        report = await status(client)
        assert report["sandbox"]["testStage"] is True
        assert report["sandbox"]["isolation"] in ("bwrap", "unshare", "rlimits")
        assert report["stats"]["action_test_runs"] >= 1


def test_javascript_candidates_are_ranked_by_the_workspace_tests(tmp_path) -> None:  # type: ignore[no-untyped-def]
    import shutil

    import pytest

    if shutil.which("node") is None:
        pytest.skip("node is not installed")
    (tmp_path / "package.json").write_text('{"name": "demo"}\n')
    document = "// Double a number.\nfunction double(x) {\n}\nmodule.exports = { double };\n"
    module = tmp_path / "mathy.js"
    module.write_text(document)
    (tmp_path / "mathy.test.js").write_text(
        "const test = require('node:test');\nconst assert = require('node:assert');\n"
        "const { double } = require('./mathy.js');\n"
        "test('two', () => assert.strictEqual(double(2), 4));\ntest('five', () => assert.strictEqual(double(5), 10));\n")
    view = DocumentView.of(module.as_uri(), document, 1, "javascript")
    start = document.index("{\n") + 1
    target = ActionTarget("generate", view.uri, 1, start, start, name="double", indent="  ")
    candidates = []
    for index, (body, logprob) in enumerate([("return x * 3;", -0.01), ("return 2 * x;", -0.4)]):
        replacement = Replacement(start, start, "\n  " + body)
        checked = verify_replacement(view.text, replacement, language_for("javascript"), SecurityPolicy())
        assert checked.accepted, checked.reason
        candidates.append(Candidate(GenerationResult(text=body, token_logprobs=[logprob]), checked, index=index))
    runner = ActionRunner(None, ActionsSettings())
    asyncio.run(runner._execute_candidates(target, view, str(module), "// Double a number.\n", candidates))
    assert candidates[0].execution is not None and candidates[0].execution.counts["workspace"] == [0, 2]
    assert candidates[1].execution is not None and candidates[1].execution.summary() == "2/2 tests pass"
    assert rank_candidates(candidates) is candidates[1]  # the tests outrank the greedy candidate's confidence

