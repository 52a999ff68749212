"""Test stage: examples found in docstrings and comments, run in the sandbox; workspace tests; agreement."""

from __future__ import annotations

import shutil
import textwrap
from pathlib import Path

import pytest

from codeassist_lsp.verify.execution import (
    Example, ExecutionReport, agreement, find_examples, find_workspace_tests, generated_inputs, plan_tests, run_tests,
)

HEADER = '''def add(a: int, b: int) -> int:
    """Add two numbers.

    >>> add(2, 3)
    5
    >>> add(-1, 1)
    0
    """
'''


def test_doctests_example_lines_and_comment_asserts_are_found() -> None:
    assert [e.call for e in find_examples(HEADER, "add")] == ["add(2, 3)", "add(-1, 1)"]
    lines = textwrap.dedent('''
        is_sorted([5]) \u279e True
        is_sorted([1, 3, 2]) \u279e False
        For lst = [1, 2, 3], the output should be true
        sort_it([3, 1]) == [1, 3]
        is_sorted(x) -> whatever
        >>> is_sorted([1, 2]) == True

    ''')
    found = find_examples(lines, "is_sorted")
    assert [(e.call, e.expected, e.kind) for e in found] == [
        ("is_sorted([5])", "True", "example"), ("is_sorted([1, 3, 2])", "False", "example"),
        ("is_sorted(lst=[1, 2, 3])", "True", "example"), ("is_sorted([1, 2])", "True", "doctest")]
    comment = "# Add a and b.\n# assert add(2, 3) == 5\n# assert add(0, 0) == 0\n# assert is_positive(add(1, 1))\n"
    asserts = find_examples(comment, "add")
    assert [(e.call, e.expected, e.style) for e in asserts] == [
        ("add(2, 3)", "5", "value"), ("add(0, 0)", "0", "value"), ("is_positive(add(1, 1))", "True", "truthy")]
    assert all(e.kind == "assert" for e in asserts)


def test_generated_inputs_come_from_examples_or_annotations() -> None:
    examples = [Example("f([1, 2, 3], 2)", "x", "doctest")]
    made = generated_inputs(examples, "f", None, count=5)
    assert len(made) == 5 and all(e.call.startswith("f(") and e.expected is None for e in made)
    assert len({e.call for e in made}) == 5 and "f([1, 2, 3], 2)" not in {e.call for e in made}
    import ast

    signature = ast.parse("def g(n: int, s: str) -> str: ...").body[0]
    assert isinstance(signature, ast.FunctionDef)
    made = generated_inputs([], "g", signature, count=3)
    assert [e.call for e in made] == ["g(0, 'a')", "g(1, 'Hello World')", "g(2, 'racecar')"]
    untyped = ast.parse("def h(x): ...").body[0]
    assert isinstance(untyped, ast.FunctionDef)
    assert generated_inputs([], "h", untyped) == []


def _program(body: str) -> str:
    return HEADER + textwrap.indent(textwrap.dedent(body), "    ")


def test_a_correct_candidate_passes_and_a_wrong_one_fails() -> None:
    plan = plan_tests(document=HEADER, header=HEADER, function="add")
    good = run_tests(plan, _program("return a + b\n"))
    assert good.counts["doctest"] == [2, 2] and good.summary() == "2/2 doctests pass"
    assert good.isolation in ("bwrap", "unshare", "rlimits")
    bad = run_tests(plan, _program("return a * b\n"))
    assert bad.counts["doctest"] == [0, 2] and bad.summary() == "0/2 doctests pass"
    assert len(good.outputs) == len(plan.examples) > 2  # examples plus generated agreement inputs


def test_candidates_that_hang_crash_or_exit_are_contained() -> None:
    plan = plan_tests(document=HEADER, header=HEADER, function="add")
    hangs = run_tests(plan, _program("while True:\n    pass\n"))
    assert hangs.passed == 0 and hangs.run == 2
    raises = run_tests(plan, _program("raise ValueError('no')\n"))
    assert raises.passed == 0 and raises.run == 2
    exits = run_tests(plan, HEADER + "    return a + b\n\nimport sys\nsys.exit(3)\n")
    assert exits.passed == 0 and exits.load_error.startswith("SystemExit")
    assert "does not load" in exits.summary()
    printed = run_tests(plan, _program("print('noise')\nreturn a + b\n"))
    assert printed.counts["doctest"] == [2, 2]


def test_doctest_text_output_and_truthy_asserts() -> None:
    header = 'def greet(name):\n    """Greet.\n\n    >>> greet("Ann")\n    \'Hello, Ann\'\n    >>> show(1)\n    1\n    """\n'
    plan = plan_tests(document=header, header="# assert greet('Bo').startswith('Hello')\n" + header, function="greet")
    program = header + "    return f'Hello, {name}'\n\ndef show(x):\n    print(x)\n"
    report = run_tests(plan, program)
    assert report.counts == {"doctest": [1, 1], "assert": [1, 1]}
    assert report.summary() == "1/1 doctest passes, 1/1 assert passes"


def test_agreement_prefers_the_majority_behaviour() -> None:
    def report(*outputs: str | None) -> ExecutionReport:
        return ExecutionReport(outputs=list(outputs))

    scores = agreement([report("1", "2", "3"), report("1", "2", "3"), report("1", "5", None), None])
    assert scores[0] == scores[1] > scores[2] > scores[3] == 0
    assert agreement([report("1")]) == [0.0]


def test_workspace_tests_that_import_the_function_run_on_a_scratch_copy(tmp_path: Path) -> None:
    pytest.importorskip("pytest")
    (tmp_path / "pyproject.toml").write_text("[project]\nname = 'demo'\n")
    package = tmp_path / "demo"
    package.mkdir()
    (package / "__init__.py").write_text("")
    module = package / "mathy.py"
    module.write_text("def double(x):\n    # TODO\n    pass\n")
    tests = tmp_path / "tests"
    tests.mkdir()
    (tests / "test_mathy.py").write_text(
        "from demo.mathy import double\n\ndef test_two():\n    assert double(2) == 4\n\n"
        "def test_zero():\n    assert double(0) == 0\n")
    (tests / "test_other.py").write_text("def test_other():\n    assert True\n")
    assert find_workspace_tests(str(tmp_path), "demo/mathy.py", "double") == [str(Path("tests/test_mathy.py"))]
    document = module.read_text()
    plan = plan_tests(document=document, header="def double(x):\n", function="double", path=str(module))
    assert plan.workspace_tests == (str(Path("tests/test_mathy.py")),)
    good = run_tests(plan, "def double(x):\n    return 2 * x\n")
    assert good.counts["workspace"] == [2, 2] and good.summary() == "2/2 tests pass"
    bad = run_tests(plan, "def double(x):\n    return x + 2\n")
    assert bad.counts["workspace"] == [1, 2]
    broken = run_tests(plan, "def double(x):\n    return undefined_name\n")
    assert broken.counts["workspace"][0] == 0
    assert module.read_text() == document  # the workspace itself is never touched
    assert not (tmp_path / ".pytest_cache").exists()


def test_nothing_to_run_is_said() -> None:
    plan = plan_tests(document="def f(x):\n    pass\n", header="def f(x):\n    '''Do it.'''\n", function="f")
    assert plan.empty and plan.not_run


def test_a_file_whose_imports_are_missing_counts_nothing() -> None:
    header = "import not_a_module_here\n\n" + HEADER
    plan = plan_tests(document=header, header=HEADER, function="add")
    report = run_tests(plan, header + "    return a + b\n")
    assert report.run == 0 and report.summary() == ""
    assert any("not_a_module_here" in note for note in report.notes)


def test_javascript_workspace_tests_run_with_node_test(tmp_path: Path) -> None:
    if shutil.which("node") is None:
        pytest.skip("node is not installed")
    (tmp_path / "package.json").write_text('{"name": "demo", "type": "commonjs"}\n')
    (tmp_path / "src").mkdir()
    module = tmp_path / "src" / "mathy.js"
    module.write_text("function double(x) {\n  // TODO\n}\nmodule.exports = { double };\n")
    (tmp_path / "test").mkdir()
    (tmp_path / "test" / "mathy.test.js").write_text(
        "const test = require('node:test');\nconst assert = require('node:assert');\n"
        "const { double } = require('../src/mathy');\n"
        "test('two', () => assert.strictEqual(double(2), 4));\ntest('zero', () => assert.strictEqual(double(0), 0));\n")
    (tmp_path / "test" / "other.test.js").write_text("require('node:test')('other', () => {});\n")
    plan = plan_tests(document=module.read_text(), header="", function="double", path=str(module),
                      language="javascript")
    assert plan.test_runner == "node" and plan.workspace_tests == (str(Path("test/mathy.test.js")),)
    good = run_tests(plan, "function double(x) {\n  return 2 * x;\n}\nmodule.exports = { double };\n")
    assert good.counts["workspace"] == [2, 2] and good.summary() == "2/2 tests pass"
    wrong = run_tests(plan, "function double(x) {\n  return x + 2;\n}\nmodule.exports = { double };\n")
    assert wrong.counts["workspace"] == [1, 2]  # double(2) is 4 either way
    broken = run_tests(plan, "function double(x) {\n  return x +;\n}\nmodule.exports = { double };\n")
    assert broken.counts["workspace"][0] == 0 and broken.counts["workspace"][1] >= 1
    assert module.read_text().endswith("module.exports = { double };\n") and "TODO" in module.read_text()


def test_go_workspace_tests_run_the_tests_that_call_the_function(tmp_path: Path) -> None:
    if shutil.which("go") is None:
        pytest.skip("go is not installed")
    (tmp_path / "go.mod").write_text("module example.com/demo\n\ngo 1.19\n")
    (tmp_path / "mathy").mkdir()
    module = tmp_path / "mathy" / "double.go"
    module.write_text("package mathy\n\nfunc Double(x int) int {\n\treturn 0\n}\n")
    (tmp_path / "mathy" / "double_test.go").write_text(
        'package mathy\n\nimport "testing"\n\n'
        "func TestDoubleTwo(t *testing.T) {\n\tif Double(2) != 4 {\n\t\tt.Fatal(Double(2))\n\t}\n}\n\n"
        "func TestDoubleZero(t *testing.T) {\n\tif Double(0) != 0 {\n\t\tt.Fatal(Double(0))\n\t}\n}\n\n"
        "func TestUnrelated(t *testing.T) {\n\tt.Fatal(\"not about Double's tests\")\n}\n")
    plan = plan_tests(document=module.read_text(), header="", function="Double", path=str(module), language="go")
    assert plan.test_runner == "go" and plan.test_names == ("TestDoubleTwo", "TestDoubleZero")
    good = run_tests(plan, "package mathy\n\nfunc Double(x int) int {\n\treturn 2 * x\n}\n")
    assert good.counts["workspace"] == [2, 2], good.notes
    wrong = run_tests(plan, "package mathy\n\nfunc Double(x int) int {\n\treturn x + 2\n}\n")
    assert wrong.counts["workspace"] == [1, 2]  # Double(2) is 4 either way
    broken = run_tests(plan, "package mathy\n\nfunc Double(x int) int {\n\treturn x +\n}\n")
    assert broken.counts["workspace"] == [0, 1] and any("go test" in note for note in broken.notes)
    assert "return 0" in module.read_text()  # the workspace itself is never touched
