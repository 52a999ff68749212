"""Extract a duplicated expression into a named function, checked by running both on the same inputs.

Deterministic code does what it can: it finds the longest expression that appears in two of the files
(on Python or JavaScript syntax trees), works out its free names (the helper's parameters), replaces
each occurrence by a call and adds the import. The model writes only the helper's body, because only it
can read the helper's name: `is_valid_email` for a check that is true when an email is *invalid* must
return the opposite. Which way round the model wrote it is not trusted but measured: the original
expression and the helper run side by side in the sandbox (python or node) on inputs built from the
expression's literals, and each call site becomes `helper(...)` or `not helper(...)` only when every
input agrees one way; a value that is not only a condition must be equal on every input.
"""

from __future__ import annotations

import ast
import builtins
import itertools
import json
import posixpath
import re
import shutil
import sys
import textwrap
from collections.abc import Awaitable, Callable
from pathlib import PurePosixPath
from typing import Any

import attrs

from codeassist_lsp.actions.edits import strip_fences
from codeassist_lsp.agent.refactor import RefactorRefused, _nodes, _replace_spans, _tree, definitions
from codeassist_lsp.agent.workspace import StagedWorkspace
from codeassist_lsp.context.languages import parse

# Expressions worth extracting (a bare name or a literal is not). JavaScript's parenthesised expression
# is left out: as an `if`'s condition its parentheses belong to the statement.
EXPRESSIONS = frozenset({"boolean_operator", "comparison_operator", "not_operator", "call", "binary_operator",
                         "conditional_expression", "parenthesized_expression"})
JS_EXPRESSIONS = frozenset({"binary_expression", "call_expression", "ternary_expression", "unary_expression"})
JS_GLOBALS = frozenset({"Math", "JSON", "Number", "String", "Boolean", "Object", "Array", "Date", "RegExp", "Error",
                        "Map", "Set", "Promise", "Symbol", "BigInt", "parseInt", "parseFloat", "isNaN", "isFinite",
                        "undefined", "NaN", "Infinity", "console", "require", "module", "exports", "globalThis"})
MIN_EXPRESSION_CHARS = 14  # of the expression with its names numbered: `x < 0 or x > 9`, not `x < 0`
MAX_INPUTS = 200
# Slots where only the expression's truth matters (JavaScript's `if (...)` through its parentheses).
CONDITION_SLOTS = frozenset({"if_statement", "elif_clause", "while_statement", "not_operator", "assert_statement",
                             "do_statement"})
# Slots where `not f(x)` needs no parentheses.
BARE_SLOTS = frozenset({"if_statement", "elif_clause", "while_statement", "return_statement", "assignment",
                        "expression_statement", "not_operator"})
BUILTINS = frozenset(dir(builtins))

RunScript = Callable[[dict[str, str], list[str]], str]
"""(files to add to the staged ones, argv) -> what the command printed, run in the sandbox on a copy of
the workspace."""


@attrs.frozen
class HelperRequest:
    """What the model is asked to write: the function `name(parameters)` in `target` for `expression`."""

    name: str
    parameters: list[str]
    expression: str
    usage: str
    """The first statement that uses the expression (what the model is shown)."""
    target: str
    condition: bool
    """The expression is only ever a condition: the function answers True or False."""
    language: str
    """python or javascript."""


WriteHelper = Callable[[HelperRequest], Awaitable[str]]
"""The model's answer: the helper's source."""


@attrs.frozen
class Occurrence:
    """One place the duplicated expression appears."""

    path: str
    start: int
    end: int
    parent_type: str
    arguments: list[str]
    """Its own names for the helper's parameters (`s` where another place says `score`)."""
    condition: bool
    """Only its truth is used (an `if`'s or `while`'s condition, negated, asserted)."""


@attrs.frozen
class Duplicate:
    """The expression to extract, where it is, and the names it needs."""

    text: str
    parameters: list[str]
    literals: list[Any]
    occurrences: list[Occurrence]
    usage: str
    """The first statement that uses it, dedented (what the model is shown)."""
    language: str


def find_duplicate(workspace: StagedWorkspace, files: list[str]) -> Duplicate:
    """The longest expression that occurs in at least two of `files` (or twice in one), equal up to the
    names of its free variables (`score < 0` and `s < 0` are the same check); Python or JavaScript."""
    seen: dict[str, list[tuple[str, Any]]] = {}
    languages = {(workspace.language(path).name if workspace.language(path) else None) for path in files}
    if len(languages) != 1 or not languages <= {"python", "javascript"}:
        raise RefactorRefused(f"Extracting a function works on Python or JavaScript files of one language, "
                              f"not {', '.join(files)}.")
    language = languages.pop()
    python = language == "python"
    for path in files:
        tree = _tree(workspace, path)
        if tree is None:
            continue
        for node in _nodes(tree.root_node):
            if node.type in (EXPRESSIONS if python else JS_EXPRESSIONS):
                key = _shape(node)
                if key is not None and len(key) >= MIN_EXPRESSION_CHARS:
                    seen.setdefault(key, []).append((path, node))
    repeated = [(key, places) for key, places in seen.items()
                if len({path for path, _ in places}) >= min(2, len(files)) and len(places) >= 2]
    if not repeated:
        raise RefactorRefused(f"No expression is repeated in {', '.join(files)}; nothing to extract.")
    key, places = max(repeated, key=lambda item: len(item[0]))
    node = places[0][1]
    parameters, literals = _free_names(node), _literals(node)
    occurrence_names = {(path, place.start_byte): _free_names(place) for path, place in places}
    for path, place in places:
        tree = _tree(workspace, path)
        defined = _module_names(tree.root_node) if tree is not None else set()
        clash = [name for name in occurrence_names[(path, place.start_byte)] if name in defined]
        if clash:
            raise RefactorRefused(f"The repeated expression uses {', '.join(clash)} from {path}'s module; "
                                  "extract it by hand.")
    occurrences = [Occurrence(path, n.start_byte, n.end_byte, n.parent.type if n.parent else "",
                              occurrence_names[(path, n.start_byte)], _in_condition(n)) for path, n in places]
    return Duplicate(_normal(node.text.decode("utf-8")), parameters, literals, occurrences, _statement(node),
                     language)


def _in_condition(node: Any) -> bool:
    """Whether only the node's truth is used: an if/while condition (through parentheses), `not x`, `!x`."""
    parent = node.parent
    while parent is not None and parent.type == "parenthesized_expression":
        parent = parent.parent
    if parent is None:
        return False
    if parent.type == "unary_expression":
        operator = parent.child_by_field_name("operator")
        return operator is not None and operator.type == "!"
    return parent.type in CONDITION_SLOTS


def _normal(text: str) -> str:
    return re.sub(r"\s+", " ", text).strip()


def _shape(node: Any) -> str | None:
    """The expression with its free names numbered in order of appearance; None when it has none (a
    constant expression, e.g. an exception's message, is not a check to extract)."""
    free = _free_names(node)
    if not free:
        return None
    numbering = {name: f"\x00{index}" for index, name in enumerate(free)}
    data = node.text
    spans = []
    for inner in _nodes(node):
        if inner.type == "identifier" and inner.text.decode("utf-8") in numbering and _is_free(inner):
            spans.append((inner.start_byte - node.start_byte, inner.end_byte - node.start_byte,
                          numbering[inner.text.decode("utf-8")].encode()))
    for start, end, new in sorted(spans, reverse=True):
        data = data[:start] + new + data[end:]
    return _normal(data.decode("utf-8"))


def _is_free(identifier: Any) -> bool:
    """Not an attribute's or a keyword argument's name."""
    parent = identifier.parent
    if parent is not None and parent.type == "attribute" and parent.child_by_field_name("attribute") == identifier:
        return False
    return not (parent is not None and parent.type == "keyword_argument"
                and parent.child_by_field_name("name") == identifier)


def _free_names(node: Any) -> list[str]:
    """Names the expression reads but does not bind, in order (attribute and keyword names excluded)."""
    bound: set[str] = set()
    for inner in _nodes(node):
        if inner.type in ("for_in_clause", "lambda_parameters", "formal_parameters"):
            target = inner.child_by_field_name("left") if inner.type == "for_in_clause" else inner
            bound.update(n.text.decode("utf-8") for n in _nodes(target) if n.type == "identifier")
    names: list[str] = []
    for inner in _nodes(node):
        if inner.type != "identifier" or not _is_free(inner):
            continue
        name = inner.text.decode("utf-8")
        if name not in bound and name not in BUILTINS and name not in JS_GLOBALS and name not in names:
            names.append(name)
    return names


def _literals(node: Any) -> list[Any]:
    """The string and number literals in the expression (the seeds of the test inputs)."""
    values = []
    for inner in _nodes(node):
        if inner.type in ("string", "integer", "float", "number"):
            try:
                values.append(ast.literal_eval(inner.text.decode("utf-8")))
            except (ValueError, SyntaxError):
                continue
    return values


def _module_names(root: Any) -> set[str]:
    """Names bound at module level: imports, functions, classes, assignments."""
    names = set()
    for child in root.children:
        if child.type in ("function_definition", "class_definition", "function_declaration", "class_declaration"):
            names.add(child.child_by_field_name("name").text.decode("utf-8"))
        elif child.type in ("lexical_declaration", "variable_declaration"):  # JavaScript: const x = ..., requires
            for declarator in child.named_children:
                bound = declarator.child_by_field_name("name") if declarator.type == "variable_declarator" else None
                names.update(n.text.decode("utf-8") for n in _nodes(bound) if bound is not None
                             and n.type in ("identifier", "shorthand_property_identifier_pattern"))
        elif child.type in ("import_statement", "import_from_statement"):
            for inner in _nodes(child):
                if inner.type in ("dotted_name", "aliased_import") and inner.parent is not None \
                        and inner.parent.child_by_field_name("module_name") != inner:
                    names.add(inner.text.decode("utf-8").split(" as ")[-1].split(".")[0])
        elif child.type == "expression_statement" and child.children and child.children[0].type == "assignment":
            left = child.children[0].child_by_field_name("left")
            if left is not None and left.type == "identifier":
                names.add(left.text.decode("utf-8"))
    return names


def _statement(node: Any) -> str:
    """The statement holding the node (an `if` with its first branch), dedented."""
    current = node
    while current.parent is not None and current.parent.type not in ("block", "module", "statement_block", "program"):
        current = current.parent
    return textwrap.dedent(" " * current.start_point[1] + current.text.decode("utf-8"))


def probe_inputs(parameters: list[str], literals: list[Any]) -> list[list[Any]]:
    """Argument lists that exercise the expression: values built from its literals, then a few plain ones."""
    strings = [value for value in literals if isinstance(value, str)]
    numbers = [value for value in literals if isinstance(value, (int, float)) and not isinstance(value, bool)]
    values: list[Any] = []
    for text in strings:
        values += [text, "a" + text, text + "a", "a" + text + "b", text + text, text + "a" + text]
    for number in numbers:
        values += [number, number - 1, number + 1]
    values += ["", "a", "abc", 0, 1, -1] if not (strings or numbers) else (["", "abc"] if strings else [0, -1])
    values = list(dict.fromkeys(json.dumps(v) for v in values))
    combos = itertools.product(values, repeat=len(parameters)) if parameters else iter([()])
    return [[json.loads(v) for v in combo] for combo in itertools.islice(combos, MAX_INPUTS)]


_COMPARE = """\
import json, sys
sys.path.insert(0, ".")
from {module} import {name} as helper

def original({parameters}):
    return ({expression})

def outcome(function, arguments):
    try:
        value = function(*arguments)
        return ["value", bool(value), repr(value)]
    except Exception as error:
        return ["raises", type(error).__name__]

rows = [[outcome(original, args), outcome(helper, args)] for args in json.loads(sys.argv[1])]
print(json.dumps(rows))
"""
_JS_COMPARE = """\
const helper = require('./{module}').{name};
function original({parameters}) {{ return ({expression}); }}
function outcome(f, args) {{
  try {{
    const value = f(...args);
    return ['value', Boolean(value), value === undefined ? 'undefined' : JSON.stringify(value)];
  }} catch (error) {{
    return ['raises', error && error.constructor ? error.constructor.name : 'Error'];
  }}
}}
console.log(JSON.stringify(JSON.parse(process.argv[2]).map((args) => [outcome(original, args), outcome(helper, args)])));
"""


def polarity(rows: list[list[list[Any]]], exact: bool = False) -> bool | None:
    """True: helper == expression on every input; False: helper == not expression; None: neither, or
    the inputs never made the expression both true and false (nothing proves which way round).
    Where the expression is only ever a condition its truth is compared; elsewhere (`exact`) its value
    must be equal on every input (a number or a string has no other way round)."""
    same = flipped = True
    results = set()
    for original, helper in rows:
        if original[0] == "raises" or helper[0] == "raises":
            if original[:2] != helper[:2]:
                return None
            continue
        if exact:
            results.add(original[2])
            same &= original[2] == helper[2]
            flipped = False
            continue
        results.add(original[1])
        same &= original[1] == helper[1]
        flipped &= original[1] != helper[1]
    if (len(results) < 2) if exact else (results != {True, False}):
        return None
    return True if same else False if flipped else None


async def extract_function(workspace: StagedWorkspace, name: str, files: list[str], target: str | None,
                           write_helper: WriteHelper, run_script: RunScript) -> list[str]:
    """Extract the expression repeated in `files` into `name` (in `target`, else the first file), call it
    at every occurrence and import it where needed; the files changed. The helper must agree with the
    expression (or its negation) on every test input, else nothing is staged."""
    if not name.isidentifier():
        raise RefactorRefused(f"'{name}' is not a function name.")
    if definitions(workspace, name):
        raise RefactorRefused(f"'{name}' is already defined here.")
    duplicate = find_duplicate(workspace, files)
    python = duplicate.language == "python"
    target = target or files[0]
    if target not in workspace.files():
        raise RefactorRefused(f"{target} is not a file of the workspace; create it first.")
    if not python and any(_is_es_module(workspace, path) for path in {target, *files}):
        raise RefactorRefused("Extracting into ES modules (import/export) is not supported yet; only CommonJS.")
    condition = all(o.condition for o in duplicate.occurrences)
    source = await write_helper(HelperRequest(name, duplicate.parameters, duplicate.text, duplicate.usage, target,
                                              condition, duplicate.language))
    helper = _python_helper(source, name, len(duplicate.parameters)) if python else \
        _js_helper(workspace, target, source, name, len(duplicate.parameters))
    staged_target = _with_helper(workspace.read(target), helper, name, python)
    parameters = ", ".join(duplicate.parameters)
    if python:
        module = ".".join(PurePosixPath(target).with_suffix("").parts)
        script = ("_codeassist_compare.py", _COMPARE.format(module=module, name=name, parameters=parameters,
                                                             expression=duplicate.text))
        argv = [sys.executable, script[0]]
    else:
        script = ("_codeassist_compare.js", _JS_COMPARE.format(module=target, name=name, parameters=parameters,
                                                                expression=duplicate.text))
        node = shutil.which("node")
        if node is None:
            raise RefactorRefused("Checking a JavaScript helper needs node, which is not installed.")
        argv = [node, script[0]]
    inputs = probe_inputs(duplicate.parameters, duplicate.literals)
    try:
        rows = json.loads(run_script({target: staged_target, script[0]: script[1]},
                                     [*argv, json.dumps(inputs)]).strip().splitlines()[-1])
    except (ValueError, IndexError) as error:
        raise RefactorRefused(f"The helper could not be compared with the original expression ({error}).") from error
    same = polarity(rows, exact=not condition)
    if same is None:
        raise RefactorRefused(f"The model's {name} does not compute the repeated expression (or its negation) "
                              f"on {len(inputs)} test inputs; nothing changed.")
    plans: dict[str, list[tuple[int, int, str]]] = {}
    for place in duplicate.occurrences:
        call = f"{name}({', '.join(place.arguments)})"
        if same:
            text = call
        elif not python:
            text = f"!{call}"
        else:
            text = f"not {call}" if place.parent_type in BARE_SLOTS else f"(not {call})"
        plans.setdefault(place.path, []).append((place.start, place.end, text))
    changed = []
    for path, spans in plans.items():
        text = _replace_spans(workspace.read(path), spans)
        if path == target:
            text = _with_helper(text, helper, name, python)
        elif python:
            text = _add_import(text, _import_line(path, target, name))
        else:
            text = _add_require(text, path, target, name)
        workspace.stage(path, text)
        changed.append(path)
    if target not in plans:
        workspace.stage(target, staged_target)
        changed.append(target)
    return changed


def _with_helper(text: str, helper: str, name: str, python: bool) -> str:
    """The target file with the helper appended (and, in CommonJS, exported)."""
    if python:
        return (text.rstrip("\n") + "\n\n\n" if text.strip() else "") + helper + "\n"
    return (text.rstrip("\n") + "\n\n" if text.strip() else "") + f"{helper}\n\nmodule.exports.{name} = {name};\n"


def _python_helper(answer: str, name: str, arity: int) -> str:
    """The helper's definition from the model's answer (imports it needs kept), checked to parse."""
    code = strip_fences(answer)
    try:
        module = ast.parse(code)
    except SyntaxError as error:
        raise RefactorRefused(f"The model's {name} does not parse ({error.msg}).") from error
    functions = [n for n in module.body if isinstance(n, ast.FunctionDef) and n.name == name]
    if not functions:
        raise RefactorRefused(f"The model did not write a function {name}.")
    function = functions[0]
    if len(function.args.args) != arity:
        raise RefactorRefused(f"The model's {name} takes {len(function.args.args)} arguments; the expression "
                              f"needs {arity}.")
    kept = [n for n in module.body if isinstance(n, (ast.Import, ast.ImportFrom))] + [function]
    lines = code.splitlines()
    return "\n".join("\n".join(lines[n.lineno - 1 - len(getattr(n, "decorator_list", []) or []):n.end_lineno])
                     for n in kept)


def _js_helper(workspace: StagedWorkspace, target: str, answer: str, name: str, arity: int) -> str:
    """The function declaration `name` from the model's answer, checked to parse (on its own)."""
    code = strip_fences(answer)
    tree = parse(workspace.language(target), code.encode("utf-8"))  # type: ignore[arg-type]
    if tree is None:
        raise RefactorRefused(f"The model's {name} does not parse.")
    found = [n for n in tree.root_node.children if n.type == "function_declaration"
             and n.child_by_field_name("name") is not None and n.child_by_field_name("name").text.decode() == name]
    if not found or found[0].has_error:
        raise RefactorRefused(f"The model did not write a function {name} that parses.")
    parameters = found[0].child_by_field_name("parameters")
    count = len(parameters.named_children) if parameters is not None else 0
    if count != arity:
        raise RefactorRefused(f"The model's {name} takes {count} arguments; the expression needs {arity}.")
    return found[0].text.decode("utf-8")


def _is_es_module(workspace: StagedWorkspace, path: str) -> bool:
    tree = _tree(workspace, path)
    return path.endswith(".mjs") or (tree is not None and any(
        child.type in ("import_statement", "export_statement") for child in tree.root_node.children))


def _add_require(text: str, path: str, target: str, name: str) -> str:
    """`const { name } = require('./target');` after the file's requires (or its 'use strict'), else first."""
    relative = posixpath.relpath(str(PurePosixPath(target).with_suffix("")), str(PurePosixPath(path).parent))
    line = f"const {{ {name} }} = require('{relative if relative.startswith('.') else './' + relative}');"
    lines = text.splitlines(keepends=True)
    after = 0
    for index, current in enumerate(lines):
        stripped = current.strip()
        if "require(" in stripped and stripped.startswith(("const ", "let ", "var ")) or stripped in (
                "'use strict';", '"use strict";'):
            after = index + 1
        elif stripped and not stripped.startswith("//"):
            break
    if after == 0:
        return f"{line}\n\n{text}"
    return "".join(lines[:after]) + line + "\n" + "".join(lines[after:])


def _import_line(path: str, target: str, name: str) -> str:
    """How `path` imports `name` from `target`: relative inside a package, else from the workspace root."""
    here, there = PurePosixPath(path), PurePosixPath(target)
    if here.parent == there.parent and here.parent != PurePosixPath("."):
        return f"from .{there.stem} import {name}"
    return f"from {'.'.join(there.with_suffix('').parts)} import {name}"


def _add_import(text: str, line: str) -> str:
    """Add an import after the module's docstring and imports."""
    try:
        body = ast.parse(text).body
    except SyntaxError:
        body = []
    after = 0
    for node in body:
        docstring = isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant) and node is body[0]
        if docstring or isinstance(node, (ast.Import, ast.ImportFrom)):
            after = node.end_lineno or after
        else:
            break
    lines = text.splitlines(keepends=True)
    head, tail = "".join(lines[:after]), "".join(lines[after:])
    if not head:
        return f"{line}\n\n\n{tail.lstrip(chr(10))}"
    return f"{head}{line}\n{tail}"


def sandbox_runner(workspace: StagedWorkspace) -> RunScript:
    """Run a command in the sandbox, on a copy of the workspace with the staged files and `files`."""
    from codeassist_lsp.verify.sandbox import SandboxLimits, default_sandbox

    def run(files: dict[str, str], argv: list[str]) -> str:
        sandbox = default_sandbox()
        staged = {path: after for path, (_before, after) in workspace.changed().items()}
        staged.update(files)
        with sandbox.scratch(files=staged, copy_from=str(workspace.root)) as scratch:
            outcome = sandbox.run(argv, scratch, limits=SandboxLimits(cpu_s=20, wall_s=30.0, memory_mb=1024))
        if not outcome.ok:
            raise RefactorRefused(f"Comparing the helper with the expression failed: {outcome.stderr[-300:]}")
        return outcome.stdout

    return run
