"""Extracting a repeated expression: finding it, the helper checked against it by running both, the call
sites and imports. The helper's body stands in for the model's (both ways round, and a wrong one),
because which way round a real model writes it cannot be produced on demand; the agent benchmark runs
the real model on the same task."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from codeassist_lsp.agent.extract import HelperRequest, extract_function, find_duplicate, polarity, sandbox_runner, probe_inputs
from codeassist_lsp.agent.refactor import RefactorRefused
from codeassist_lsp.agent.run import plan_from_instruction
from codeassist_lsp.agent.workspace import StagedWorkspace

TASK = Path(__file__).resolve().parents[2] / "benchmarks" / "agent_tasks" / "py_extract_helper"
CONDITION = "'@' not in email or email.startswith('@') or email.endswith('@')"


def workspace(tmp_path: Path) -> StagedWorkspace:
    folder = tmp_path / "project"
    shutil.copytree(TASK / "project", folder)
    return StagedWorkspace(folder)


def writer(body: str):
    """A helper writer that answers with `body` as the function's return expression."""
    seen: list[HelperRequest] = []

    async def write(request: HelperRequest) -> str:
        seen.append(request)
        if request.language == "javascript":
            return f"```javascript\nfunction {request.name}({', '.join(request.parameters)}) {{\n  return {body};\n}}\n```"
        return f"```python\ndef {request.name}({', '.join(request.parameters)}):\n    return {body}\n```"

    write.seen = seen  # type: ignore[attr-defined]
    return write


def test_the_repeated_expression_and_its_free_names_are_found(tmp_path: Path) -> None:
    duplicate = find_duplicate(workspace(tmp_path), ["signup.py", "invite.py"])
    assert duplicate.text == CONDITION
    assert duplicate.parameters == ["email"]  # `startswith` is an attribute, not a name
    assert sorted({o.path for o in duplicate.occurrences}) == ["invite.py", "signup.py"]
    assert duplicate.usage.startswith("if '@' not in email") and "raise ValueError" in duplicate.usage


async def test_a_helper_named_for_the_opposite_is_called_negated(tmp_path: Path) -> None:
    ws = workspace(tmp_path)
    write = writer("'@' in email and not email.startswith('@') and not email.endswith('@')")
    changed = await extract_function(ws, "is_valid_email", ["signup.py", "invite.py"], "validation.py", write,
                                     sandbox_runner(ws))
    assert sorted(changed) == ["invite.py", "signup.py", "validation.py"]
    assert write.seen[0].parameters == ["email"]  # type: ignore[attr-defined]
    signup = ws.read("signup.py")
    assert "if not is_valid_email(email):" in signup and signup.startswith("from validation import is_valid_email\n")
    assert "if not is_valid_email(email):" in ws.read("invite.py")
    # The staged copy passes the task's hidden checks.
    out = tmp_path / "out"
    shutil.copytree(ws.root, out)
    for path, (_before, after) in ws.changed().items():
        (out / path).write_text(after)
    shutil.copy(TASK / "check" / "check_extract.py", out)
    run = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "check_extract.py"],
                         cwd=out, capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stdout[-1500:]


async def test_a_helper_that_computes_the_expression_itself_is_called_as_is(tmp_path: Path) -> None:
    ws = workspace(tmp_path)
    await extract_function(ws, "is_bad_email", ["signup.py", "invite.py"], "validation.py", writer(CONDITION),
                           sandbox_runner(ws))
    assert "if is_bad_email(email):" in ws.read("invite.py")


async def test_a_helper_that_computes_something_else_is_refused(tmp_path: Path) -> None:
    ws = workspace(tmp_path)
    with pytest.raises(RefactorRefused, match="does not compute"):
        await extract_function(ws, "is_valid_email", ["signup.py", "invite.py"], "validation.py",
                               writer("'@' in email"), sandbox_runner(ws))  # forgets the edges
    assert ws.changed() == {}


async def test_no_repeat_or_a_taken_name_is_refused(tmp_path: Path) -> None:
    ws = workspace(tmp_path)
    with pytest.raises(RefactorRefused, match="already defined"):
        await extract_function(ws, "signup", ["signup.py", "invite.py"], "validation.py", writer("True"),
                               sandbox_runner(ws))
    (ws.root / "other.py").write_text("def other(x):\n    return x.strip().lower() == 'yes'\n")
    ws = StagedWorkspace(ws.root)
    with pytest.raises(RefactorRefused, match="No expression is repeated"):
        find_duplicate(ws, ["other.py", "invite.py"])


def test_an_expression_that_reads_a_module_name_is_left_to_the_user(tmp_path: Path) -> None:
    folder = tmp_path / "p"
    folder.mkdir()
    for name in ("a.py", "b.py"):
        (folder / name).write_text(f"LIMIT = 3\n\n\ndef {name[0]}(items):\n    return len(items) > LIMIT or not items\n")
    with pytest.raises(RefactorRefused, match="LIMIT"):
        find_duplicate(StagedWorkspace(folder), ["a.py", "b.py"])


def test_inputs_exercise_both_outcomes_and_the_polarity_must_hold_on_all() -> None:
    inputs = probe_inputs(["email"], ["@"])
    assert ["a@b"] in inputs and ["@"] in inputs and [""] in inputs
    value = [["value", True, "True"], ["value", True, "True"]]
    flipped = [["value", False, "False"], ["value", True, "True"]]
    assert polarity([value, [["value", False, "False"], ["value", False, "False"]]]) is True
    assert polarity([flipped, [["value", True, "True"], ["value", False, "False"]]]) is False
    assert polarity([value, flipped]) is None  # agrees on one input, not on the other
    assert polarity([value, value]) is None  # the inputs never made the expression false: nothing proved
    assert polarity([value, [["raises", "TypeError"], ["value", False, "False"]]]) is None
    # A value (not a condition) must be equal: 2.5 and 3 are both "true" but not the same number.
    numbers = [[["value", True, "2.5"], ["value", True, "2.5"]], [["value", False, "0"], ["value", False, "0"]]]
    assert polarity(numbers, exact=True) is True
    assert polarity([[["value", True, "2.5"], ["value", True, "3"]], numbers[1]], exact=True) is None


def test_plans_for_extracting_and_for_async_from_the_words() -> None:
    assert plan_from_instruction("Extract the duplicated email check in signup.py and invite.py into a function "
                                 "is_valid_email in validation.py and use it in both") == {
        "operation": "extract_function", "function": "is_valid_email", "target": "validation.py",
        "files": ["signup.py", "invite.py"]}
    assert plan_from_instruction("Convert the blocking function load_user in users.py to async/await") == {
        "operation": "make_async", "function": "load_user"}
    assert plan_from_instruction("Make `fetch_all()` async") == {"operation": "make_async", "function": "fetch_all"}
    assert plan_from_instruction("Make load_user non-blocking") is None


async def test_the_same_check_under_other_names_is_one_repeat(tmp_path: Path) -> None:
    folder = tmp_path / "p"
    shutil.copytree(TASK.parent / "py_extract_range" / "project", folder)
    ws = StagedWorkspace(folder)
    duplicate = find_duplicate(ws, ["grades.py", "stats.py"])  # `score < 0 or score > 100` and `s < 0 or s > 100`
    assert duplicate.parameters == ["score"]
    assert sorted(o.arguments[0] for o in duplicate.occurrences) == ["s", "score"]
    await extract_function(ws, "is_valid_score", ["grades.py", "stats.py"], "checks.py",
                           writer("0 <= score <= 100"), sandbox_runner(ws))
    assert "if not is_valid_score(s):" in ws.read("stats.py")
    assert "if not is_valid_score(score):" in ws.read("grades.py")



async def test_a_repeated_value_must_be_computed_exactly(tmp_path: Path) -> None:
    folder = tmp_path / "p"
    folder.mkdir()
    (folder / "cart.py").write_text("def total(amount, percent):\n    return round(amount * (1 - percent / 100), 2)\n")
    (folder / "invoice.py").write_text("def line(amount, percent):\n    net = round(amount * (1 - percent / 100), 2)\n"
                                       "    return f'net {net}'\n")
    (folder / "pricing.py").write_text('"""Pricing helpers."""\n')
    ws = StagedWorkspace(folder)
    write = writer("round(amount * percent / 100, 2)")  # the discount, not the discounted price
    with pytest.raises(RefactorRefused, match="does not compute"):
        await extract_function(ws, "apply_discount", ["cart.py", "invoice.py"], "pricing.py", write,
                               sandbox_runner(ws))
    assert write.seen[0].condition is False  # a value, not a condition: the model is not told it returns a bool
    await extract_function(ws, "apply_discount", ["cart.py", "invoice.py"], "pricing.py",
                           writer("round(amount * (1 - percent / 100), 2)"), sandbox_runner(ws))
    assert "return apply_discount(amount, percent)" in ws.read("cart.py")
    assert "net = apply_discount(amount, percent)" in ws.read("invoice.py")


def _node_check(ws: StagedWorkspace, tmp_path: Path, script: str) -> str:
    """The staged copy, written out, runs `script` with node."""
    if shutil.which("node") is None:
        pytest.skip("node is not installed")
    out = tmp_path / "out"
    shutil.copytree(ws.root, out)
    for path, (_before, after) in ws.changed().items():
        (out / path).write_text(after)
    run = subprocess.run(["node", "-e", script], cwd=out, capture_output=True, text=True, timeout=60)
    assert run.returncode == 0, run.stderr[-1500:]
    return run.stdout.strip()


async def test_javascript_a_repeated_value_into_a_commonjs_module(tmp_path: Path) -> None:
    if shutil.which("node") is None:
        pytest.skip("node is not installed")
    folder = tmp_path / "p"
    folder.mkdir()
    (folder / "cart.js").write_text("function cartTotal(amount, percent) {\n"
                                    "  return Math.round(amount * (1 - percent / 100) * 100) / 100;\n}\n\n"
                                    "module.exports = { cartTotal };\n")
    (folder / "invoice.js").write_text("'use strict';\n\nfunction invoiceLine(amount, pct) {\n"
                                       "  const net = Math.round(amount * (1 - pct / 100) * 100) / 100;\n"
                                       "  return `net ${net}`;\n}\n\nmodule.exports = { invoiceLine };\n")
    (folder / "pricing.js").write_text("// Pricing helpers.\nmodule.exports = {};\n")
    ws = StagedWorkspace(folder)
    with pytest.raises(RefactorRefused, match="does not compute"):  # the discount, not the discounted price
        await extract_function(ws, "applyDiscount", ["cart.js", "invoice.js"], "pricing.js",
                               writer("Math.round(amount * percent) / 100"), sandbox_runner(ws))
    assert ws.changed() == {}
    write = writer("Math.round(amount * (1 - percent / 100) * 100) / 100")
    await extract_function(ws, "applyDiscount", ["cart.js", "invoice.js"], "pricing.js", write, sandbox_runner(ws))
    assert write.seen[0].language == "javascript" and write.seen[0].parameters == ["amount", "percent"]
    invoice = ws.read("invoice.js")
    assert invoice.startswith("'use strict';\nconst { applyDiscount } = require('./pricing');\n")
    assert "const net = applyDiscount(amount, pct);" in invoice  # its own names
    assert "return applyDiscount(amount, percent);" in ws.read("cart.js")
    printed = _node_check(ws, tmp_path, "const p = require('./pricing'); const c = require('./cart');"
                                        "const i = require('./invoice');"
                                        "console.log(p.applyDiscount(200, 10), c.cartTotal(50, 50), i.invoiceLine(10, 0))")
    assert printed == "180 25 net 10"


async def test_javascript_a_condition_named_for_the_opposite_is_negated(tmp_path: Path) -> None:
    if shutil.which("node") is None:
        pytest.skip("node is not installed")
    folder = tmp_path / "p"
    folder.mkdir()
    check = "!email.includes('@') || email.startsWith('@') || email.endsWith('@')"
    (folder / "signup.js").write_text(f"function signup(email) {{\n  if ({check}) {{\n    throw new Error('bad');\n"
                                      "  }\n  return { email };\n}\n\nmodule.exports = { signup };\n")
    (folder / "invite.js").write_text(f"function invite(email) {{\n  if ({check}) return null;\n"
                                      "  return 'invited ' + email;\n}\n\nmodule.exports = { invite };\n")
    (folder / "validation.js").write_text("module.exports = {};\n")
    ws = StagedWorkspace(folder)
    write = writer("email.includes('@') && !email.startsWith('@') && !email.endsWith('@')")
    await extract_function(ws, "isValidEmail", ["signup.js", "invite.js"], "validation.js", write, sandbox_runner(ws))
    assert write.seen[0].condition is True
    assert "if (!isValidEmail(email)) return null;" in ws.read("invite.js")
    printed = _node_check(ws, tmp_path, "const v = require('./validation'); const i = require('./invite');"
                                        "console.log(v.isValidEmail('a@b'), v.isValidEmail('@b'), i.invite('x'))")
    assert printed == "true false null"


async def test_javascript_es_modules_are_left_to_the_user(tmp_path: Path) -> None:
    folder = tmp_path / "p"
    folder.mkdir()
    for name in ("a.js", "b.js"):
        (folder / name).write_text(f"export function {name[0]}(x) {{\n  return x * 2 + x * 3 - 1;\n}}\n")
    (folder / "c.js").write_text("export {};\n")
    ws = StagedWorkspace(folder)
    with pytest.raises(RefactorRefused, match="ES modules"):
        await extract_function(ws, "f", ["a.js", "b.js"], "c.js", writer("x * 2 + x * 3 - 1"), sandbox_runner(ws))
