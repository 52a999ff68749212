"""Checked edits (no model): a fix is offered only when its diagnostic is gone and nothing new broke;
an edit that adds type errors is not offered; a diagnostic no checker reproduces is "not verified"."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from codeassist_lsp.actions.checked import check_fix, gate_edit, same_problem
from codeassist_lsp.actions.edits import Replacement
from codeassist_lsp.actions.targets import ActionTarget
from codeassist_lsp.context.languages import language_for
from codeassist_lsp.verify import typecheck
from codeassist_lsp.verify.typecheck import TypeProblem

PYTHON = language_for("python")
SOURCE = '''def average(values: list[float]) -> float:
    total = sum(values)
    return totl / len(values)


def clamp(value: int, low: int, high: int) -> int:
    return max(low, min(value, high))


def middle(values: list[int]) -> int:
    return clamp(values[0], 0, 10, 20)
'''


@pytest.fixture(autouse=True)
def fresh_checkers(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setenv("CODEASSIST_CACHE_DIR", str(tmp_path_factory.getbasetemp() / "codeassist-cache"))
    yield
    typecheck.shutdown()


def edit(old: str, new: str, text: str = SOURCE) -> Replacement:
    start = text.index(old)
    return Replacement(start, start + len(old), new)


def fix(message: str, anchor: str, old: str, new: str, text: str = SOURCE, language=PYTHON):  # type: ignore[no-untyped-def]
    start = text.index(anchor)
    return check_fix(text, edit(old, new, text), message=message, start=start, end=start + len(anchor),
                     language=language, path=None)


def test_undefined_name_fixed_and_not_fixed() -> None:
    done = fix("undefined name 'totl'", "totl", "totl /", "total /")
    assert done.verdict == "fixed" and done.checker == "mypy" and done.offered
    kept = fix("undefined name 'totl'", "totl", "totl / len(values)", "totl / max(len(values), 1)")
    assert kept.verdict == "not-fixed" and not kept.offered and "totl" in kept.reason


def test_wrong_arity_fixed_but_a_fix_that_breaks_something_else_is_refused() -> None:
    message = 'Too many arguments for "clamp"  [call-arg]'
    assert fix(message, "clamp(values[0]", "clamp(values[0], 0, 10, 20)", "clamp(values[0], 0, 10)").verdict == "fixed"
    broken = fix(message, "clamp(values[0]", "clamp(values[0], 0, 10, 20)", "clamp(values[0], 0, '10')")
    assert broken.verdict == "new-errors" and not broken.offered and "arg-type" in broken.reason


def test_syntax_error_fix() -> None:
    text = "def f(x):\n    return (x + 1\n\n\ndef g():\n    return 2\n"
    message = "'(' was never closed"
    assert fix(message, "(x + 1", "(x + 1", "(x + 1)", text).verdict == "fixed"
    assert fix(message, "(x + 1", "(x + 1", "(x + 2", text).verdict == "not-fixed"


def test_security_finding_fix() -> None:
    text = "import subprocess\n\n\ndef run(cmd: str) -> None:\n    subprocess.call(cmd, shell=True)\n"
    from codeassist_lsp.verify import scan_document

    findings = [f for f in scan_document(text, PYTHON) if f.line == 4]
    assert findings, "the scan must flag shell=True"
    message = findings[0].message + (f" ({findings[0].cwe})" if findings[0].cwe else "")
    done = fix(message, "subprocess.call", "subprocess.call(cmd, shell=True)", "subprocess.call(cmd.split())", text)
    assert done.verdict == "fixed" and done.checker == "security", done


def test_a_diagnostic_no_checker_reproduces_is_offered_as_not_verified() -> None:
    result = fix("line too long (120 > 100 characters)", "return max", "return max(low, min(value, high))",
                 "return max(low, min(high, value))")
    assert result.verdict == "unverified" and result.offered and "not verified" in result.reason
    gate = gate_edit(ActionTarget("fix", "file:///tmp/x.py", 1, SOURCE.index("    return max"),
                                  SOURCE.index("    return max") + 10, message="line too long"),
                     SOURCE, edit("min(value, high)", "min(high, value)"), PYTHON, path=None)
    assert gate.offered and gate.notice.startswith("fix not verified")


def test_other_actions_are_refused_when_they_add_type_errors() -> None:
    target = ActionTarget("refactor", "file:///tmp/x.py", 1, 0, 10, preset="simplify")
    refused = gate_edit(target, SOURCE, edit("return max(low, min(value, high))", "return str(value)"), PYTHON, path=None)
    assert not refused.offered and "did not type-check" in refused.reason and "return-value" in refused.reason
    fine = gate_edit(target, SOURCE, edit("return max(low, min(value, high))", "return min(max(value, low), high)"),
                     PYTHON, path=None)
    assert fine.offered and fine.type_check is not None and fine.type_check.ran
    # No checker for the language: the edit is offered, the stage says it did not run.
    assert gate_edit(target, "fn main() {}\n", Replacement(0, 2, "fn"), language_for("rust"), path=None).offered


def test_same_problem_across_tools() -> None:
    mypy = TypeProblem(2, 11, "name-defined", 'Name "totl" is not defined')
    assert same_problem("undefined name 'totl'", mypy)
    assert same_problem("Name \u201ctotl\u201d is not defined", mypy)
    assert same_problem("error [name-defined]", mypy)
    assert not same_problem("undefined name 'other'", mypy)


def test_workspace_path_and_scratch(tmp_path: Path) -> None:
    (tmp_path / "pyproject.toml").write_text("[project]\nname = 'demo'\n")
    path = tmp_path / "stats.py"
    path.write_text(SOURCE)
    start = SOURCE.index("totl")
    result = check_fix(SOURCE, edit("totl /", "total /"), message="undefined name 'totl'", start=start,
                       end=start + 4, language=PYTHON, path=str(path))
    assert result.verdict == "fixed"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["pyproject.toml", "stats.py"]
    assert path.read_text() == SOURCE


def test_best_of_n_filter_rejects_candidates_that_add_type_errors() -> None:
    from codeassist_lsp.actions.checked import candidate_filter

    bad = SOURCE.replace("return max(low, min(value, high))", "return str(value)")
    reason = candidate_filter(SOURCE, bad, "python", None)
    assert reason is not None and reason.startswith("type error: mypy: line 7")
    assert candidate_filter(SOURCE, SOURCE.replace("min(value, high)", "min(high, value)"), "python", None) is None
    assert candidate_filter("fn a() {}", "fn b() {}", "rust", "/x/a.rs") is None


def test_failing_doctest_fix_is_run_in_the_sandbox() -> None:
    text = '''def double(x: int) -> int:
    """Twice x.

    >>> double(2)
    4
    >>> double(5)
    10
    """
    return x + 2
'''
    message = "doctest failed: Failed example: double(5) Expected: 10 Got: 7"
    right = fix(message, "return x + 2", "x + 2", "x * 2", text)
    assert right.verdict == "fixed" and right.checker == "doctest" and "2/2" in right.reason, right
    wrong = fix(message, "return x + 2", "x + 2", "x + 3", text)
    assert wrong.verdict == "not-fixed" and wrong.checker == "doctest", wrong
    # Changing the example instead of the code does not count: the doctests as written before are run.
    cheat = fix(message, "return x + 2", "    >>> double(5)\n    10", "    >>> double(5)\n    7", text)
    assert cheat.verdict == "not-fixed", cheat
