"""Test stage: run what can test a generated function, in the sandbox, and compare candidates' behaviour.

What runs for Python:

* the docstring's examples: doctests (``>>> f(2)`` + the expected output) and example lines written
  ``f(2) == 4``, ``f(2) ➞ 4``, ``f(2) => 4``, ``f(2) returns 4``;
* ``assert`` examples in the comment the user wrote (``# assert add(2, 3) == 5``);
* the workspace's own tests that import the edited function (pytest, when codeassist's interpreter has it),
  run against a scratch copy of the workspace with the edited file in place.

For JavaScript and Go, the workspace's own tests that use the edited function: ``node --test`` on the
``*.test.js`` / ``*.spec.js`` / ``test/`` files that import the edited module, and ``go test -run`` on the
edited package's ``Test*`` functions that call it (when node / go are installed; else the plan says so).
TypeScript tests need a Node that strips types (>= 22.6); with an older one they are not run, said so.

Besides pass/fail, each candidate is run on *agreement inputs*: the examples' calls and a few inputs made
from them or from the signature's annotations. Candidates whose outputs agree with most others rank higher
(the CodeT / MBR-exec idea: independent samples rarely agree on a wrong answer). Nothing here reads hidden
tests: only what is written in the document and the workspace.
"""

from __future__ import annotations

import ast
import json
import logging
import os
import random
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

import attrs

from codeassist_lsp.verify.sandbox import Sandbox, SandboxLimits, default_sandbox

log = logging.getLogger(__name__)

# Agreement inputs generated per function (beyond the examples' own calls).
GENERATED_INPUTS = 6
# Seconds one example or agreement call may take inside the sandbox.
CASE_TIMEOUT_S = 0.5
# After this many calls timed out, a candidate's remaining calls are not run (it hangs: they count as failed).
TIMEOUTS_BEFORE_GIVING_UP = 2
# Seconds the candidate's module may take to load (imports, module-level code).
LOAD_TIMEOUT_S = 3.0
# A workspace copied for its tests: at most this many files / bytes (bigger workspaces: tests not run).
WORKSPACE_FILES = 3000
WORKSPACE_BYTES = 30 * 1024 * 1024
SKIPPED_FOLDERS = {".git", ".hg", ".svn", ".venv", "venv", "env", "node_modules", "__pycache__", ".mypy_cache",
                   ".pytest_cache", ".tox", ".nox", "build", "dist", ".eggs", "site-packages", ".idea", ".vscode"}
CONFIG_FILES = {"pyproject.toml", "setup.cfg", "pytest.ini", "tox.ini", "conftest.py", "setup.py"}

_ARROWS = r"==>|==|\u279e|\u2192|->|=>|\bshould return\b|\breturns\b|\bshould be\b|\bgives\b"


@attrs.frozen
class Example:
    """One check taken from the user's text: a call, and what it should give (None: agreement input only)."""

    call: str
    expected: str | None
    kind: str  # "doctest" | "example" | "assert" | "generated"
    style: str = "value"  # "value": call == expected; "truthy": the call must be true; "output": doctest text


@attrs.frozen
class TestPlan:
    """What to run for every candidate of one generation."""

    function: str
    examples: tuple[Example, ...] = ()
    workspace_root: str | None = None
    relative_path: str = "candidate.py"
    workspace_tests: tuple[str, ...] = ()
    not_run: tuple[str, ...] = ()
    test_runner: str = "pytest"
    """Which WORKSPACE_RUNNERS entry runs `workspace_tests`."""
    test_names: tuple[str, ...] = ()
    """For `go test`: the Test functions that call the edited function (-run)."""

    @property
    def empty(self) -> bool:
        """Nothing to run at all."""
        return not self.examples and not self.workspace_tests


@attrs.define
class ExecutionReport:
    """What ran for one candidate, what passed, and its outputs on the agreement inputs."""

    counts: dict[str, list[int]] = attrs.Factory(dict)  # kind -> [passed, run]
    outputs: list[str | None] = attrs.Factory(list)  # per example (plan order); None: no output (error)
    load_error: str = ""
    isolation: str = ""
    elapsed_ms: float = 0.0
    notes: list[str] = attrs.Factory(list)

    @property
    def passed(self) -> int:
        """Checks passed (examples, asserts and workspace tests together)."""
        return sum(passed for passed, _ in self.counts.values())

    @property
    def run(self) -> int:
        """Checks run."""
        return sum(run for _, run in self.counts.values())

    def summary(self) -> str:
        """Short text for the action's title: "3/3 doctests pass", "1/2 asserts pass, 4/4 tests pass"."""
        names = {"doctest": "doctests", "example": "examples", "assert": "asserts", "workspace": "tests"}
        parts = []
        for kind in ("doctest", "example", "assert", "workspace"):
            if kind in self.counts and self.counts[kind][1]:
                passed, run = self.counts[kind]
                parts.append(f"{passed}/{run} {names[kind] if run > 1 else names[kind][:-1]} "
                             f"{'pass' if run > 1 else 'passes'}")
        text = ", ".join(parts)
        if self.load_error:
            text += f"{'; ' if text else ''}does not load: {self.load_error.split(' (', 1)[0][:60]}"
        return text


# -- finding what to run -----------------------------------------------------------------------------

def _strip_comment(line: str) -> str:
    return re.sub(r"^\s*(#+|//+|\*)\s?", "", line).rstrip()


def _is_call_of(expression: str, function: str) -> bool:
    """Whether `expression` parses as an expression that calls `function` (any function when '')."""
    try:
        tree = ast.parse(expression.strip(), mode="eval")
    except (SyntaxError, ValueError):
        return False
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and (not function or node.func.id == function):
            return True
    return False


def _parses(expression: str) -> bool:
    try:
        ast.parse(expression.strip(), mode="eval")
    except (SyntaxError, ValueError):
        return False
    return True


def _split_comparison(expression: str) -> tuple[str, str] | None:
    """(left, right) of `left == right` at the top level, else None."""
    try:
        tree = ast.parse(expression.strip(), mode="eval").body
    except (SyntaxError, ValueError):
        return None
    if isinstance(tree, ast.Compare) and len(tree.ops) == 1 and isinstance(tree.ops[0], ast.Eq):
        return ast.unparse(tree.left), ast.unparse(tree.comparators[0])
    return None


def find_examples(text: str, function: str) -> list[Example]:
    """Doctests, example lines and comment asserts in `text` (a docstring and/or the comment above the code)."""
    lines = text.split("\n")
    examples: list[Example] = []
    seen: set[tuple[str, str | None]] = set()

    def add(example: Example) -> None:
        key = (example.call, example.expected)
        if key not in seen:
            seen.add(key)
            examples.append(example)

    number = 0
    while number < len(lines):
        raw = lines[number]
        line = _strip_comment(raw).strip()
        number += 1
        if line.startswith(">>>"):
            source = line[3:].strip()
            while number < len(lines) and _strip_comment(lines[number]).strip().startswith("..."):
                source += "\n" + _strip_comment(lines[number]).strip()[3:].strip()
                number += 1
            want_lines: list[str] = []
            while number < len(lines):
                following = _strip_comment(lines[number]).strip()
                if not following or following.startswith(">>>") or following.startswith(('"""', "'''")):
                    break
                want_lines.append(following.rstrip('"\'') if following.endswith(('"""', "'''")) else following)
                number += 1
            if not _is_call_of(source, function) and not (function == "" and _parses(source)):
                continue
            if want_lines:
                add(Example(source, "\n".join(want_lines), "doctest", "value"))
            else:
                split = _split_comparison(source)
                if split is not None and _is_call_of(split[0], function):
                    add(Example(split[0], split[1], "doctest", "value"))
                elif source.startswith(function + "(") and function:
                    add(Example(source, None, "generated"))  # a call without a result: an input only
            continue
        if line.startswith("assert "):
            body = line[len("assert "):].split(", \"", 1)[0].strip()
            split = _split_comparison(body)
            if split is not None and _is_call_of(split[0], function):
                add(Example(split[0], split[1], "assert", "value"))
            elif _is_call_of(body, function):
                add(Example(body, "True", "assert", "truthy"))
            continue
        if function and line.startswith(function + "("):
            match = re.match(rf"^(?P<call>{re.escape(function)}\(.*?\))\s*(?:{_ARROWS})\s*(?P<want>.+?)[.,;]?\s*$", line)
            if match is None:
                continue
            call, want = match.group("call"), match.group("want").strip()
            while not _is_call_of(call, function) and ")" in want:  # the call's own ")" came later
                extra, _, want = want.partition(")")
                call = f"{call}{extra})"
                want = re.sub(rf"^\s*(?:{_ARROWS})\s*", "", want)
            want = _literal_want(want)
            if want is not None and _literal_args(call) is not None:
                add(Example(call, want, "example", "value"))
            continue
        match = _FOR_OUTPUT.match(line)
        if function and match is not None:  # "For lst = [1, 2], the output should be 3"
            want = _literal_want(match.group("want"))
            assignments = match.group("assign").split(",")
            for cut in range(len(assignments), 0, -1):
                call = f"{function}({','.join(assignments[:cut])})"
                try:
                    node = ast.parse(call, mode="eval").body
                except (SyntaxError, ValueError):
                    continue
                if want is not None and isinstance(node, ast.Call) and node.keywords and not node.args and all(
                        _literal(k.value) for k in node.keywords):
                    add(Example(ast.unparse(node), want, "example", "value"))
                break
    return examples


_FOR_OUTPUT = re.compile(r"^For\s+(?P<assign>\w+\s*=.+?),?\s+(?:the\s+)?(?:output|result|answer)\s+should\s+be:?\s+"
                         r"(?P<want>.+?)[.,;]?\s*$", re.IGNORECASE)
_JSON_WORDS = {"true": "True", "false": "False", "null": "None", "none": "None"}


def _literal(node: ast.expr) -> bool:
    try:
        ast.literal_eval(node)
    except (ValueError, SyntaxError, TypeError):
        return False
    return True


def _literal_want(want: str) -> str | None:
    """The expected value of an example line as a Python literal ("19 - 5 - 6 = 8" -> "8"), or None."""
    want = want.strip().rstrip(".,;").strip()
    if " = " in want:
        want = want.rsplit(" = ", 1)[1].strip()
    want = _JSON_WORDS.get(want.lower(), want) if want.lower() in _JSON_WORDS else want
    try:
        node = ast.parse(want, mode="eval").body
    except (SyntaxError, ValueError):
        return None
    return want if _literal(node) or (isinstance(node, ast.UnaryOp) and _literal(node.operand)) else None


def _literal_args(call: str) -> list[object] | None:
    """The positional literal arguments of a call, or None when any is not a literal."""
    try:
        node = ast.parse(call, mode="eval").body
    except (SyntaxError, ValueError):
        return None
    if not isinstance(node, ast.Call) or node.keywords:
        return None
    values = []
    for argument in node.args:
        try:
            values.append(ast.literal_eval(argument))
        except (ValueError, SyntaxError, TypeError):
            return None
    return values


def _mutations(value: object) -> list[object]:
    """Nearby values of the same type (the inputs a careless implementation gets wrong)."""
    if isinstance(value, bool):
        return [not value]
    if isinstance(value, int):
        return [value + 1, value * 2 + 1, 0, -value if value else 7, value + 10]
    if isinstance(value, float):
        return [value + 0.5, value * 2, 0.0, -value]
    if isinstance(value, str):
        return [value[::-1], value + (value[:1] or "a"), "", value.upper(), value[1:]]
    if isinstance(value, list):
        return [value[::-1], value[:-1], value + value[:1], sorted(value, key=repr), []]
    if isinstance(value, tuple):
        return [tuple(m) for m in _mutations(list(value)) if isinstance(m, list)]
    return []


_BY_ANNOTATION: dict[str, list[object]] = {
    "int": [0, 1, 2, 5, -3, 10, 13], "float": [0.0, 1.5, -2.25, 3.0, 10.0], "bool": [True, False],
    "str": ["", "a", "abc", "Hello World", "aab", "racecar"],
    "list[int]": [[], [1], [1, 2, 3], [3, 1, 2, 3], [-1, 5, 0], [2, 2, 2, 2]],
    "list[float]": [[], [1.0], [1.0, 2.5, 3.0], [-1.5, 0.5]],
    "list[str]": [[], ["a"], ["ab", "c"], ["abc", "abc", "x"]],
    "list": [[], [1], [1, 2, 3], [3, 1, 2, 3], [-1, 5, 0]],
}


def _annotation_values(annotation: ast.expr | None) -> list[object] | None:
    if annotation is None:
        return None
    text = ast.unparse(annotation).replace("List[", "list[").replace("typing.", "")
    return _BY_ANNOTATION.get(text)


def generated_inputs(examples: Sequence[Example], function: str, signature: ast.FunctionDef | None,
                     count: int = GENERATED_INPUTS, seed: int = 0) -> list[Example]:
    """Agreement inputs: the examples' arguments mutated one at a time, else values from the annotations."""
    rng = random.Random(seed)
    known = {example.call for example in examples}
    made: list[Example] = []

    def add(args: Sequence[object]) -> None:
        call = f"{function}({', '.join(repr(a) for a in args)})"
        if call not in known and len(call) < 400:
            known.add(call)
            made.append(Example(call, None, "generated"))

    bases = [args for args in (_literal_args(e.call) for e in examples) if args]
    attempts = 0
    while bases and len(made) < count and attempts < 20 * count:
        attempts += 1
        args = list(rng.choice(bases))
        position = rng.randrange(len(args))
        options = _mutations(args[position])
        if not options:
            continue
        args[position] = rng.choice(options)
        add(args)
    if not bases and signature is not None and not signature.args.vararg:
        parameters = [*signature.args.posonlyargs, *signature.args.args]
        pools = [_annotation_values(p.annotation) or [] for p in parameters]
        if parameters and all(pools):
            for index in range(count):
                add([pool[(index * (position + 1) + position) % len(pool)] for position, pool in enumerate(pools)])
    return made


def _function_node(document: str, function: str) -> ast.FunctionDef | None:
    try:
        module = ast.parse(document)
    except (SyntaxError, ValueError):
        return None
    found = [n for n in ast.walk(module) if isinstance(n, ast.FunctionDef) and n.name == function]
    return found[-1] if found else None


def _is_test_file(name: str) -> bool:
    return name.endswith(".py") and (name.startswith("test_") or name.endswith("_test.py"))


def find_workspace_tests(root: str, relative_path: str, function: str, limit: int = 2000) -> list[str]:
    """Test files under `root` that import `function` from the edited module (by module name)."""
    module = Path(relative_path).with_suffix("").name
    if not function or not module:
        return []
    imports = re.compile(rf"^\s*(from\s+[\w.]*\b{re.escape(module)}\s+import\b[^\n]*\b{re.escape(function)}\b"
                         rf"|import\s+[\w.]*\b{re.escape(module)}\b)", re.MULTILINE)
    return [path for path, text in _test_files(root, lambda path: _is_test_file(os.path.basename(path)), limit)
            if imports.search(text) and re.search(rf"\b{re.escape(function)}\b", text)]


def _test_files(root: str, is_test_file: Callable[[str], bool], limit: int = 2000) -> Iterator[tuple[str, str]]:
    """(path relative to root, text) of the test files under root, in a stable order, at most `limit`."""
    seen = 0
    for folder, dirs, names in os.walk(root):
        dirs[:] = sorted(d for d in dirs if d not in SKIPPED_FOLDERS and not d.startswith("."))
        for name in sorted(names):
            path = os.path.relpath(os.path.join(folder, name), root)
            if not is_test_file(path):
                continue
            seen += 1
            if seen > limit:
                return
            try:
                yield path, Path(root, path).read_text(encoding="utf-8", errors="replace")
            except OSError:
                continue


PYTHON_PROJECT_MARKERS = ("pyproject.toml", "setup.py", "setup.cfg", ".git", "pytest.ini", "tox.ini")


def workspace_root_of(path: str | None, markers: Sequence[str] = PYTHON_PROJECT_MARKERS) -> str | None:
    """The nearest folder above `path` with a project marker (pyproject.toml, setup.py, .git, ...)."""
    if not path:
        return None
    current = Path(path).resolve().parent
    for folder in [current, *current.parents]:
        if any((folder / marker).exists() for marker in markers):
            return str(folder) if folder != Path(folder.anchor) else None
    return None


def plan_tests(*, document: str, header: str, function: str, path: str | None = None,
               workspace_tests: bool = True, language: str = "python") -> TestPlan:
    """What to run for candidates of `function`: examples from `header` (docstring/comment) and workspace tests."""
    if language != "python":
        return _plan_workspace_tests(language, function, path if workspace_tests else None)
    examples = find_examples(header, function)
    not_run: list[str] = []
    given = [e for e in examples if e.kind != "generated"]
    if function:
        examples += generated_inputs(examples, function, _function_node(document, function))
    root = workspace_root_of(path) if workspace_tests else None
    relative: str = "candidate.py"
    tests: tuple[str, ...] = ()
    if root is not None and path:
        relative = os.path.relpath(Path(path).resolve(), root)
        tests = tuple(find_workspace_tests(root, relative, function))
        if tests:
            try:
                import pytest  # noqa: F401  (only whether the sandboxed interpreter can run it)
            except ImportError:
                not_run.append("workspace tests: pytest is not installed for codeassist's interpreter")
                tests = ()
    if not given and not tests:
        not_run.append("no doctests, examples, asserts or workspace tests to run")
    return TestPlan(function, tuple(examples), root if tests else None, relative if tests else "candidate.py",
                    tests, tuple(not_run))


# -- running -----------------------------------------------------------------------------------------

# Runs inside the sandbox: load the candidate's module, evaluate every example with a per-call alarm,
# print one JSON line. Self-contained (the sandbox sees only the scratch copy and the interpreter).
HARNESS = r'''
import contextlib, doctest, io, json, math, signal, sys

spec = json.load(open(sys.argv[1]))
sys.setrecursionlimit(3000)


class Timeout(BaseException):
    pass


def alarm(signum, frame):
    raise Timeout()


signal.signal(signal.SIGALRM, alarm)


def canon(value, depth=0):
    if depth > 4:
        return "..."
    if isinstance(value, float):
        return "float:" + ("nan" if value != value else repr(round(value, 6)))
    if isinstance(value, (list, tuple)):
        return type(value).__name__ + "[" + ",".join(canon(v, depth + 1) for v in value[:200]) + "]"
    if isinstance(value, (set, frozenset)):
        return "set{" + ",".join(sorted(canon(v, depth + 1) for v in value)) + "}"
    if isinstance(value, dict):
        return "dict{" + ",".join(sorted(canon(k, depth + 1) + ":" + canon(v, depth + 1) for k, v in value.items())) + "}"
    text = repr(value)
    return text[:1000] if " at 0x" not in text else type(value).__name__


def equal(a, b):
    if isinstance(a, bool) or isinstance(b, bool):
        return a is b or (a == b and type(a) is type(b))
    if isinstance(a, (int, float)) and isinstance(b, (int, float)):
        return math.isclose(a, b, rel_tol=1e-6, abs_tol=1e-9)
    if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)) and len(a) == len(b):
        return all(equal(x, y) for x, y in zip(a, b))
    try:
        return bool(a == b)
    except Exception:
        return False


result = {"load_error": "", "cases": []}
namespace = {"__name__": "__codeassist_candidate__"}
try:
    signal.setitimer(signal.ITIMER_REAL, spec["load_timeout"])
    with contextlib.redirect_stdout(io.StringIO()):
        exec(compile(open(spec["module"], encoding="utf-8").read(), spec["module"], "exec"), namespace)
    signal.setitimer(signal.ITIMER_REAL, 0)
except BaseException as error:
    signal.setitimer(signal.ITIMER_REAL, 0)
    result["load_error"] = (type(error).__name__ + ": " + str(error))[:300]
    print("\n" + json.dumps(result))
    sys.exit(0)

checker = doctest.OutputChecker()
timeouts = 0
for case in spec["cases"]:
    record = {"passed": None, "output": None}
    if timeouts >= spec["give_up_after"]:
        record["error"] = "skipped"
        record["passed"] = False if case["expected"] is not None else None
        result["cases"].append(record)
        continue
    printed = io.StringIO()
    try:
        signal.setitimer(signal.ITIMER_REAL, spec["case_timeout"])
        with contextlib.redirect_stdout(printed):
            value = eval(compile(case["call"], "<example>", "eval"), namespace)
        signal.setitimer(signal.ITIMER_REAL, 0)
        record["output"] = canon(value) + ("|" + printed.getvalue()[:500] if printed.getvalue() else "")
        expected = case["expected"]
        if expected is not None:
            if case["style"] == "truthy":
                record["passed"] = bool(value)
            else:
                try:
                    wanted, literal = eval(compile(expected, "<expected>", "eval"), namespace), True
                except BaseException:
                    wanted, literal = None, False
                if literal:
                    record["passed"] = equal(value, wanted)
                else:  # doctest output that is not a Python value: compare the text as doctest does
                    got = printed.getvalue() + ("" if value is None else repr(value) + "\n")
                    record["passed"] = checker.check_output(expected + "\n", got,
                                                            doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    except BaseException as error:
        signal.setitimer(signal.ITIMER_REAL, 0)
        record["output"] = None
        record["error"] = type(error).__name__
        timeouts += isinstance(error, Timeout)
        if case["expected"] is not None:
            record["passed"] = False
    result["cases"].append(record)
print("\n" + json.dumps(result))
'''


def _run_examples(plan: TestPlan, program: str, sandbox: Sandbox, report: ExecutionReport) -> None:
    if not plan.examples:
        return
    spec = {"module": "candidate.py", "load_timeout": LOAD_TIMEOUT_S, "case_timeout": CASE_TIMEOUT_S,
            "give_up_after": TIMEOUTS_BEFORE_GIVING_UP,
            "cases": [attrs.asdict(example) for example in plan.examples]}
    wall = LOAD_TIMEOUT_S + CASE_TIMEOUT_S * len(plan.examples) + 3
    limits = attrs.evolve(sandbox.limits, wall_s=wall, cpu_s=int(wall) + 1)
    with sandbox.scratch({"candidate.py": program, "_codeassist_harness.py": HARNESS,
                          "_codeassist_cases.json": json.dumps(spec)}) as folder:
        result = sandbox.run([sys.executable, "-I", "_codeassist_harness.py", "_codeassist_cases.json"], folder,
                             limits=limits)
    report.isolation = result.isolation
    payload = None
    for line in reversed(result.stdout.strip().split("\n")):
        if line.startswith("{"):
            try:
                payload = json.loads(line)
            except ValueError:
                payload = None
            break
    checked = [e for e in plan.examples if e.expected is not None]
    if payload is None:
        report.load_error = "timed out" if result.timed_out else (result.stderr.strip().split("\n")[-1][:200] or "crashed")
        report.outputs = [None] * len(plan.examples)
        for example in checked:
            report.counts.setdefault(example.kind, [0, 0])[1] += 1
        return
    if payload["load_error"].startswith(("ModuleNotFoundError", "ImportError")):
        # The file imports what the scratch copy lacks (a sibling module, an uninstalled package): the
        # examples say nothing about the candidate, so none count (said in the notes, not as a failure).
        report.notes.append(f"examples not run: {payload['load_error'][:120]}")
        return
    report.load_error = payload["load_error"]
    cases = payload["cases"] or [{"passed": False if e.expected is not None else None, "output": None}
                                 for e in plan.examples]
    report.outputs = [case.get("output") for case in cases]
    for example, case in zip(plan.examples, cases):
        if example.expected is None:
            continue
        counts = report.counts.setdefault(example.kind, [0, 0])
        counts[1] += 1
        counts[0] += bool(case.get("passed"))


def _copy_filter(root: str, sources: tuple[str, ...] = (".py",)) -> object:
    budget = [WORKSPACE_FILES, WORKSPACE_BYTES]

    def ignore(folder: str, names: list[str]) -> list[str]:
        skipped = []
        for name in names:
            path = os.path.join(folder, name)
            if os.path.isdir(path):
                if name in SKIPPED_FOLDERS or name.startswith("."):
                    skipped.append(name)
                continue
            if not (name.endswith(sources) or name in CONFIG_FILES or name.endswith((".json", ".toml", ".cfg",
                                                                                   ".txt", ".ini"))):
                skipped.append(name)
                continue
            try:
                size = os.path.getsize(path)
            except OSError:
                skipped.append(name)
                continue
            if budget[0] <= 0 or budget[1] < size:
                skipped.append(name)
                continue
            budget[0] -= 1
            budget[1] -= size
        return skipped

    return ignore


_PYTEST_COUNTS = re.compile(r"(\d+) (passed|failed|error|errors)\b")


def _run_workspace_tests(plan: TestPlan, program: str, sandbox: Sandbox, report: ExecutionReport,
                         timeout_s: float) -> None:
    if not plan.workspace_tests or plan.workspace_root is None:
        return
    if plan.test_runner != "pytest":
        _run_other_tests(WORKSPACE_RUNNERS[plan.test_runner], plan, program, sandbox, report, timeout_s)
        return
    limits = attrs.evolve(sandbox.limits, wall_s=timeout_s, cpu_s=int(timeout_s) + 1)
    with sandbox.scratch({plan.relative_path: program}, copy_from=plan.workspace_root,
                         copy_filter=_copy_filter(plan.workspace_root)) as folder:
        Path(folder, plan.relative_path).write_text(program, encoding="utf-8")  # the edited file, not the saved one
        result = sandbox.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--no-header",
                              "-o", "addopts=", *plan.workspace_tests], folder, limits=limits,
                             env={"PYTHONPATH": folder})
    passed = failed = 0
    for number, word in _PYTEST_COUNTS.findall(result.stdout.strip().split("\n")[-1] if result.stdout.strip() else ""):
        if word == "passed":
            passed += int(number)
        else:
            failed += int(number)
    if result.timed_out:
        report.notes.append("workspace tests timed out")
        failed = max(failed, 1)
    if passed + failed == 0 and result.returncode not in (0, 5):
        failed = 1  # collection failed (the edit breaks an import): counts as one failed test
    report.counts["workspace"] = [passed, passed + failed]


# -- JavaScript (node --test) and Go (go test) -----------------------------------------------------------

@attrs.frozen
class WorkspaceRunner:
    """How one language's workspace tests are found and run."""

    name: str
    tool: str
    languages: tuple[str, ...]
    sources: tuple[str, ...]
    """File endings copied into the scratch copy (besides the project's config files)."""
    is_test_file: Callable[[str], bool]
    uses: Callable[[str, str, str, str], tuple[str, ...] | None]
    """(test file text, its path, edited file's relative path, function) -> test names that use the function
    (empty tuple: the whole file), None: it does not use it."""
    argv: Callable[[TestPlan], list[str]]
    counts: Callable[[str], tuple[int, int]]
    """stdout -> (passed, failed)."""
    env: Callable[[str], dict[str, str]] = lambda scratch: {}
    """The scratch folder -> extra environment."""
    memory_mb: int = 1024


def _node_uses(text: str, test_path: str, edited: str, function: str) -> tuple[str, ...] | None:
    module = re.escape(Path(edited).with_suffix("").name)
    imports = re.search(rf"""(?:require\(\s*|from\s+|import\s*\(\s*)['"][^'"]*\b{module}(?:\.[cm]?[jt]s)?['"]""", text)
    return () if imports and re.search(rf"\b{re.escape(function)}\b", text) else None


def _node_counts(stdout: str) -> tuple[int, int]:
    counts = dict(re.findall(r"^# (pass|fail|cancelled) (\d+)$", stdout, re.M))
    return int(counts.get("pass", 0)), int(counts.get("fail", 0)) + int(counts.get("cancelled", 0))


def _go_uses(text: str, test_path: str, edited: str, function: str) -> tuple[str, ...] | None:
    if Path(test_path).parent != Path(edited).parent:
        return None  # go tests exercise their own package: the edited file's folder
    names = []
    for match in re.finditer(r"^func\s+(Test\w*)\s*\(\s*\w+\s+\*testing\.T\s*\)", text, re.M):
        following = re.search(r"^func\s", text[match.end():], re.M)
        body = text[match.end():match.end() + following.start()] if following else text[match.end():]
        if re.search(rf"\b{re.escape(function)}\s*\(", body):
            names.append(match.group(1))
    return tuple(names) if names else None


def _go_counts(stdout: str) -> tuple[int, int]:
    passed = len(re.findall(r"^\s*--- PASS: ", stdout, re.M))
    failed = len(re.findall(r"^\s*--- FAIL: ", stdout, re.M))
    return passed, failed


def _go_argv(plan: TestPlan) -> list[str]:
    package = "./" + (Path(plan.relative_path).parent.as_posix() if Path(plan.relative_path).parent.parts else "")
    return ["go", "test", "-v", "-count=1", "-run", f"^({'|'.join(plan.test_names)})$", package.rstrip("/") or "."]


def _go_env(scratch: str) -> dict[str, str]:
    # Offline, no cgo, the build cache inside the scratch copy (go wants absolute paths).
    tmp = os.path.join(scratch, ".tmp")
    return {"GOFLAGS": "-mod=mod", "GOPROXY": "off", "GOTOOLCHAIN": "local", "CGO_ENABLED": "0",
            "GOCACHE": os.path.join(tmp, "go-build"), "GOPATH": os.path.join(tmp, "go"), "GOTMPDIR": tmp}


_NODE_TEST_FILE = re.compile(r"(\.(test|spec)\.[cm]?[jt]s$)|(^|/)(tests?|__tests__)/[^/]+\.[cm]?[jt]s$")
WORKSPACE_RUNNERS: dict[str, WorkspaceRunner] = {
    "node": WorkspaceRunner(
        name="node --test", tool="node", languages=("javascript", "typescript"),
        sources=(".js", ".mjs", ".cjs", ".ts", ".mts", ".cts", ".json"),
        is_test_file=lambda path: bool(_NODE_TEST_FILE.search(path)), uses=_node_uses,
        argv=lambda plan: ["node", "--test", "--test-reporter=tap", *_strip_types(plan), *plan.workspace_tests],
        counts=_node_counts),
    "go": WorkspaceRunner(
        name="go test", tool="go", languages=("go",), sources=(".go", ".mod", ".sum"),
        is_test_file=lambda path: path.endswith("_test.go"), uses=_go_uses, argv=_go_argv, counts=_go_counts,
        env=_go_env, memory_mb=2048),
}
PROJECT_MARKERS = ("package.json", "go.mod", "tsconfig.json", ".git")
TESTED_LANGUAGES = ("python", *(language for runner in WORKSPACE_RUNNERS.values() for language in runner.languages))


def _strip_types(plan: TestPlan) -> list[str]:
    typed = any(t.endswith((".ts", ".mts", ".cts")) for t in plan.workspace_tests)
    return ["--experimental-strip-types", "--no-warnings"] if typed else []


def _node_version() -> tuple[int, int]:
    """The installed node's (major, minor); (0, 0) when it does not run."""
    try:
        out = subprocess.run(["node", "--version"], capture_output=True, text=True, timeout=5).stdout
    except (OSError, subprocess.SubprocessError):
        return (0, 0)
    match = re.match(r"v(\d+)\.(\d+)", out.strip())
    return (int(match.group(1)), int(match.group(2))) if match else (0, 0)


def _plan_workspace_tests(language: str, function: str, path: str | None) -> TestPlan:
    """The plan for a JavaScript/TypeScript/Go function: the workspace tests that use it."""
    runner_key = next((key for key, runner in WORKSPACE_RUNNERS.items() if language in runner.languages), None)
    if runner_key is None:
        return TestPlan(function, not_run=(f"no test stage for {language}",))
    runner = WORKSPACE_RUNNERS[runner_key]
    root = workspace_root_of(path, PROJECT_MARKERS) if function else None
    if root is None or path is None:
        return TestPlan(function, not_run=("no workspace tests to run (no project folder)",))
    relative = os.path.relpath(Path(path).resolve(), root)
    tests: list[str] = []
    names: list[str] = []
    for test_path, text in _test_files(root, runner.is_test_file):
        used = runner.uses(text, test_path, relative, function)
        if used is not None:
            tests.append(test_path)
            names += used
    if not tests:
        return TestPlan(function, not_run=(f"no workspace tests use {function}",))
    if shutil.which(runner.tool) is None:
        return TestPlan(function, not_run=(f"workspace tests: {runner.tool} is not installed",))
    if runner_key == "node" and _strip_types(TestPlan(function, workspace_tests=tuple(tests))) \
            and _node_version() < (22, 6):
        return TestPlan(function, not_run=("TypeScript tests: this Node cannot strip types (needs >= 22.6)",))
    return TestPlan(function, workspace_root=root, relative_path=relative, workspace_tests=tuple(tests),
                    test_runner=runner_key, test_names=tuple(names))


def _run_other_tests(runner: WorkspaceRunner, plan: TestPlan, program: str, sandbox: Sandbox,
                     report: ExecutionReport, timeout_s: float) -> None:
    """node --test / go test against a scratch copy of the project with the edited file in place."""
    assert plan.workspace_root is not None
    limits = attrs.evolve(sandbox.limits, wall_s=timeout_s, cpu_s=int(timeout_s) + 1,
                          memory_mb=max(sandbox.limits.memory_mb, runner.memory_mb), tmp_mb=256)
    keep = runner.sources + (".json", ".toml")
    with sandbox.scratch({plan.relative_path: program}, copy_from=plan.workspace_root,
                         copy_filter=_copy_filter(plan.workspace_root, keep)) as folder:
        modules = Path(plan.workspace_root, "node_modules")
        if runner.tool == "node" and modules.is_dir():
            os.symlink(modules, Path(folder, "node_modules"))  # read-only in the sandbox, never copied
        result = sandbox.run(runner.argv(plan), folder, limits=limits, env=runner.env(folder))
    passed, failed = runner.counts(result.stdout)
    if result.timed_out:
        report.notes.append("workspace tests timed out")
        failed = max(failed, 1)
    if passed + failed == 0 and result.returncode != 0:
        failed = 1  # the edit breaks loading or building: counts as one failed test
        last = (result.stderr or result.stdout).strip().splitlines()
        report.notes.append(f"{runner.name}: {last[-1] if last else 'failed'}"[:160])
    report.counts["workspace"] = [passed, passed + failed]
    report.isolation = report.isolation or result.isolation


def run_tests(plan: TestPlan, program: str, sandbox: Sandbox | None = None,
              workspace_timeout_s: float = 20.0) -> ExecutionReport:
    """Run the plan against `program` (the whole document after the edit) in the sandbox (blocking)."""
    sandbox = sandbox or default_sandbox()
    started = time.perf_counter()
    report = ExecutionReport()
    _run_examples(plan, program, sandbox, report)
    _run_workspace_tests(plan, program, sandbox, report, workspace_timeout_s)
    report.isolation = report.isolation or sandbox.mechanism
    report.notes += list(plan.not_run)
    report.elapsed_ms = (time.perf_counter() - started) * 1000
    return report


def agreement(reports: Sequence[ExecutionReport | None]) -> list[float]:
    """Per candidate: on each example/agreement input, the share of the other candidates with the same output."""
    if len(reports) < 2:
        return [0.0] * len(reports)
    scores = []
    for index, report in enumerate(reports):
        if report is None or not report.outputs:
            scores.append(0.0)
            continue
        total = 0.0
        for position, output in enumerate(report.outputs):
            if output is None:
                continue  # an error agrees with nothing
            same = sum(1 for other_index, other in enumerate(reports) if other_index != index and other is not None
                       and position < len(other.outputs) and other.outputs[position] == output)
            total += same / (len(reports) - 1)
        scores.append(round(total, 6))
    return scores


def sandbox_limits(memory_mb: int = 1024, processes: int = 32) -> SandboxLimits:
    """Limits of a test run (wall and CPU are set per run from the number of examples)."""
    return SandboxLimits(memory_mb=memory_mb, processes=processes)
