"""Refactorings deterministic code does better than a small model: rename a definition everywhere,
add a parameter with a default (and pass a value from its callers), make a function async (and await it).

They work on tree-sitter syntax trees, so names in strings and comments are left alone and a
name is changed only where it is that identifier. Each refuses (raises RefactorRefused, with the
reason) rather than guess: a name defined more than once, a new name already in use, a call that cannot await.
"""

from __future__ import annotations

import ast
import json
import re
from collections.abc import Iterator
from itertools import pairwise
from typing import Any

from codeassist_lsp.agent.workspace import StagedWorkspace
from codeassist_lsp.context.languages import parse
from codeassist_lsp.errors import CodeassistError

IDENTIFIERS = frozenset({"identifier", "property_identifier", "shorthand_property_identifier",
                         "shorthand_property_identifier_pattern", "type_identifier"})
# Definition nodes whose `name` field names what they define.
DEFINITIONS = frozenset({"function_definition", "class_definition", "function_declaration", "class_declaration",
                         "method_definition", "generator_function_declaration"})
FUNCTIONS = frozenset({"function_definition", "function_declaration", "method_definition",
                       "generator_function_declaration"})


class RefactorRefused(CodeassistError):
    """A deterministic refactoring that would not be safe here; nothing was staged."""


def _tree(workspace: StagedWorkspace, path: str) -> Any:
    language = workspace.language(path)
    if language is None:
        return None
    return parse(language, workspace.read(path).encode("utf-8"))


def _nodes(node: Any) -> Iterator[Any]:
    stack = [node]
    while stack:
        current = stack.pop()
        yield current
        stack.extend(reversed(current.children))


def definitions(workspace: StagedWorkspace, name: str) -> list[tuple[str, Any]]:
    """(path, node) of every definition of `name` in the workspace."""
    found = []
    for path in workspace.files():
        tree = _tree(workspace, path)
        if tree is None:
            continue
        for node in _nodes(tree.root_node):
            named = _defined_name(node)
            if named is not None and named.text.decode("utf-8") == name:
                found.append((path, node))
    return found


def _defined_name(node: Any) -> Any:
    """The name node a definition defines: functions, classes, and module-level constants/variables."""
    if node.type in DEFINITIONS:
        return node.child_by_field_name("name")
    parent = node.parent
    if node.type == "assignment" and parent is not None and parent.type == "expression_statement" \
            and parent.parent is not None and parent.parent.type == "module":
        left = node.child_by_field_name("left")
        return left if left is not None and left.type == "identifier" else None
    if node.type == "variable_declarator" and parent is not None and parent.parent is not None \
            and parent.parent.type == "program":
        named = node.child_by_field_name("name")
        return named if named is not None and named.type == "identifier" else None
    return None


def _replace_spans(text: str, spans: list[tuple[int, int, str]]) -> str:
    """Replace byte spans of the UTF-8 text (non-overlapping), last first."""
    data = text.encode("utf-8")
    for start, end, new in sorted(spans, reverse=True):
        data = data[:start] + new.encode("utf-8") + data[end:]
    return data.decode("utf-8")


def rename(workspace: StagedWorkspace, old: str, new: str) -> list[str]:
    """Rename the one definition called `old` and every reference to it; the files changed."""
    if not new.isidentifier() or not old.isidentifier():
        raise RefactorRefused(f"'{old}' -> '{new}' is not a rename of one identifier to another.")
    defined = definitions(workspace, old)
    if len(defined) != 1:
        raise RefactorRefused(f"'{old}' is defined {len(defined)} times here; a rename needs exactly one definition.")
    changed = []
    plans: dict[str, list[tuple[int, int, str]]] = {}
    for path in workspace.files():
        tree = _tree(workspace, path)
        if tree is None:
            continue
        spans = []
        for node in _nodes(tree.root_node):
            if node.type in IDENTIFIERS:
                text = node.text.decode("utf-8")
                if text == new:
                    raise RefactorRefused(f"'{new}' is already used in {path}:{node.start_point[0] + 1}.")
                if text == old:
                    spans.append((node.start_byte, node.end_byte, new))
        if spans:
            plans[path] = spans
    for path, spans in plans.items():
        workspace.stage(path, _replace_spans(workspace.read(path), spans))
        changed.append(path)
    return changed


def add_parameter(workspace: StagedWorkspace, function: str, parameter: str, default: str,
                  passed: str | None = None) -> list[str]:
    """Add `parameter` with `default` to the function; with `passed`, callers pass it as a keyword
    argument (Python) or as the last argument (JavaScript); the files changed."""
    if not parameter.isidentifier():
        raise RefactorRefused(f"'{parameter}' is not a parameter name.")
    defined = [(p, n) for p, n in definitions(workspace, function) if n.type in FUNCTIONS]
    if len(defined) != 1:
        raise RefactorRefused(f"'{function}' is defined {len(defined)} times here; adding a parameter needs one.")
    path, node = defined[0]
    parameters = node.child_by_field_name("parameters")
    if parameters is None:
        raise RefactorRefused(f"'{function}' has no parameter list to extend.")
    python = workspace.language(path).name == "python"  # type: ignore[union-attr]
    names = [c.text.decode("utf-8") for c in _nodes(parameters) if c.type == "identifier"]
    if parameter in names:
        raise RefactorRefused(f"'{function}' already has a parameter '{parameter}'.")
    default = _literal(default, python)
    inner = [c for c in parameters.children if c.type not in ("(", ")", ",", "comment")]
    close = parameters.end_byte - 1
    addition = f"{parameter}={default}" if python else f"{parameter} = {default}"
    plans: dict[str, list[tuple[int, int, str]]] = {path: [(close, close, (", " if inner else "") + addition)]}
    if passed is not None:
        for caller_path in workspace.files():
            tree = _tree(workspace, caller_path)
            if tree is None:
                continue
            for call in _nodes(tree.root_node):
                if call.type not in ("call", "call_expression"):
                    continue
                callee = call.child_by_field_name("function")
                callee_name = callee.text.decode("utf-8").rsplit(".", 1)[-1] if callee is not None else ""
                arguments = call.child_by_field_name("arguments")
                if callee_name != function or arguments is None:
                    continue
                given = [c for c in arguments.children if c.type not in ("(", ")", ",", "comment")]
                end = arguments.end_byte - 1
                value = _literal(passed, python)
                argument = f"{parameter}={value}" if python else value
                plans.setdefault(caller_path, []).append((end, end, (", " if given else "") + argument))
    changed = []
    for file, spans in plans.items():
        workspace.stage(file, _replace_spans(workspace.read(file), spans))
        changed.append(file)
    return changed


_JS_VALUE = re.compile(r"""^(-?\d+(\.\d+)?|true|false|null|undefined|'[^']*'|"[^"]*"|`[^`]*`|[A-Za-z_$][\w$.]*|\[.*\]|\{.*\})$""")


def _literal(value: str, python: bool) -> str:
    """A default or argument as code: an expression stays, anything else (a model's bare ` `) is quoted."""
    if python:
        try:
            ast.parse(value, mode="eval")
            return value
        except SyntaxError:
            return repr(value)
    return value if _JS_VALUE.match(value) else json.dumps(value)


# Functions of JavaScript that can be made async (the grammar names a function expression `function`).
JS_FUNCTIONS = frozenset({"function_declaration", "generator_function_declaration", "method_definition",
                          "function", "function_expression", "generator_function", "arrow_function"})
# Calls whose callback may return a promise: test runners await it, a promise chain flattens it.
ASYNC_CALLBACKS = frozenset({"test", "it", "before", "after", "beforeEach", "afterEach", "beforeAll", "afterAll",
                             "then", "catch", "finally"})
MAX_ASYNC_FUNCTIONS = 20


def make_async(workspace: StagedWorkspace, function: str) -> list[str]:
    """Make `function` async and await its calls, their functions turning async in turn; the files changed."""
    defined = [(p, n) for p, n in definitions(workspace, function) if n.type in FUNCTIONS]
    if len(defined) != 1:
        raise RefactorRefused(f"'{function}' is defined {len(defined)} times here; making it async needs one.")
    path = defined[0][0]
    language = workspace.language(path)
    if language is None or language.name not in ("python", "javascript"):
        raise RefactorRefused(f"make_async handles Python and JavaScript, not {path}.")
    # One parse per file: every span is computed on it and nothing is staged until all are known,
    # so a refusal found late in the walk leaves the workspace as it was.
    trees = {}
    for file in workspace.files():
        if workspace.language(file) == language:
            tree = _tree(workspace, file)
            if tree is not None:
                trees[file] = tree
    conversion = _AsyncConversion(trees, language.name == "python")
    conversion.convert(path, conversion.only_function(function), sleeps=True)
    while conversion.pending:
        conversion.await_calls(conversion.pending.pop(0))
    texts = {}
    for file, tree in trees.items():
        spans = conversion.spans.get(file)
        if spans is None:
            continue
        if file in conversion.asyncio_needed:
            addition = _asyncio_import(tree.root_node)
            if addition is not None:
                spans.insert(0, addition)  # first: at a shared position the import goes before a call's wrapper
        texts[file] = _apply_insertions(workspace.read(file), spans, file)
        after = parse(language, texts[file].encode("utf-8"))
        if after is None or (after.root_node.has_error and not tree.root_node.has_error):
            raise RefactorRefused(f"Making '{function}' async would leave {file} unparsable.")
    for file, text in texts.items():
        workspace.stage(file, text)
    return list(texts)


# Calls that block the thread (and so the event loop of an async caller): what makes a function "blocking".
BLOCKING_CALL = re.compile(r"^(time\.sleep|requests\.\w+|urllib\.request\.urlopen|urlopen|subprocess\.\w+|"
                           r"socket\.\w+|sqlite3\.connect|execSync|readFileSync|writeFileSync|spawnSync)$")


def make_module_async(workspace: StagedWorkspace, path: str) -> list[str]:
    """Make every top-level function of `path` that makes a blocking call async, with their callers (as
    make_async); all or nothing. The files changed."""
    tree = _tree(workspace, path)
    if tree is None:
        raise RefactorRefused(f"{path} is not a Python or JavaScript file of the workspace.")
    blocking = []
    for child in tree.root_node.children:
        node = child.child_by_field_name("definition") if child.type == "decorated_definition" else child
        if node is None or node.type not in ("function_definition", "function_declaration") or _is_async(node):
            continue
        calls = [n.child_by_field_name("function") for n in _own_nodes(node.child_by_field_name("body"))
                 if n.type in ("call", "call_expression")]
        if any(callee is not None and BLOCKING_CALL.match(callee.text.decode("utf-8")) for callee in calls):
            blocking.append(node.child_by_field_name("name").text.decode("utf-8"))
    if not blocking:
        raise RefactorRefused(f"No function in {path} makes a blocking call (sleep, HTTP, subprocess, socket); "
                              "name the function to make async.")
    before = {file: text for file, (_original, text) in workspace.changed().items()}
    changed: list[str] = []
    try:
        for name in blocking:
            tree = _tree(workspace, path)
            # An earlier conversion may have made it async already (it called another blocking function).
            done = [n for n in _nodes(tree.root_node) if n.type in FUNCTIONS and _function_name(n) == name
                    and _is_async(n)] if tree is not None else []
            if not done:
                changed += make_async(workspace, name)
    except RefactorRefused:
        for file in set(changed):  # all or nothing: what the earlier functions staged is undone
            workspace.stage(file, before.get(file, workspace.original(file)))
        raise
    return list(dict.fromkeys(changed))


class _AsyncConversion:
    """The edits of one make_async, collected over the whole walk of callers before anything is staged."""

    def __init__(self, trees: dict[str, Any], python: bool) -> None:
        self.trees = trees
        self.python = python
        self.spans: dict[str, list[tuple[int, int, str]]] = {}
        self.asyncio_needed: set[str] = set()
        self.converted: set[tuple[str, int]] = set()
        self.pending: list[str] = []  # names of converted functions whose calls are still to be awaited
        self.queued: set[str] = set()

    def only_function(self, name: str) -> Any:
        """The one function called `name`; refused when there are several (their calls can't be told apart)."""
        found = [node for tree in self.trees.values() for node in _nodes(tree.root_node)
                 if self._is_function(node) and _function_name(node) == name]
        if len(found) != 1:
            raise RefactorRefused(f"'{name}' is defined {len(found)} times here; cannot tell which calls to await.")
        return found[0]

    def convert(self, path: str, node: Any, sleeps: bool = False) -> None:
        """Make one function async and queue its name, if it has one, so that its calls are awaited."""
        key = (path, node.start_byte)
        if key in self.converted:
            return
        name = _function_name(node)
        line = f"{path}:{node.start_point[0] + 1}"
        where = f"'{name}' at {line}" if name else f"the function at {line}"
        if _is_async(node):
            raise RefactorRefused(f"{where} is already async.")
        self._check_convertible(node, where)
        if name is None and _callback_of(node) not in ASYNC_CALLBACKS:
            raise RefactorRefused(f"{where} is an anonymous function whose caller would not await it.")
        self.converted.add(key)
        if len(self.converted) > MAX_ASYNC_FUNCTIONS:
            raise RefactorRefused(f"Making it async would change more than {MAX_ASYNC_FUNCTIONS} functions.")
        # A method's `async` goes after `static`, right before its name.
        position = node.child_by_field_name("name").start_byte if node.type == "method_definition" else node.start_byte
        self._add(path, position, position, "async ")
        if sleeps and self.python:
            self._await_sleeps(path, node)
        if name is not None and name not in self.queued:
            self.only_function(name)
            self.queued.add(name)
            self.pending.append(name)

    def _check_convertible(self, node: Any, where: str) -> None:
        """Refuse functions that async would break: generators, constructors, properties, dunders."""
        if self.python:
            if any(n.type == "yield" for n in _own_nodes(node.child_by_field_name("body"))):
                raise RefactorRefused(f"{where} is a generator; async would make it an async generator.")
            name = _function_name(node) or ""
            if name.startswith("__") and name.endswith("__"):
                raise RefactorRefused(f"{where} is a special method Python calls without awaiting.")
            decorated = node.parent if node.parent is not None and node.parent.type == "decorated_definition" else None
            for decorator in decorated.children if decorated is not None else []:
                text = decorator.text.decode("utf-8") if decorator.type == "decorator" else ""
                if text.endswith(("property", ".setter", ".getter", ".deleter")):
                    raise RefactorRefused(f"{where} is a property, read without a call to await.")
            return
        kinds = {c.type for c in node.children}
        if node.type.startswith("generator") or "*" in kinds:
            raise RefactorRefused(f"{where} is a generator; async would make it an async generator.")
        if kinds & {"get", "set"} or _function_name(node) == "constructor":
            raise RefactorRefused(f"{where} is a constructor or accessor, which cannot be async.")

    def await_calls(self, name: str) -> None:
        """Await every call of `name`, making the function around each call async in turn."""
        for path, tree in self.trees.items():
            for node in _nodes(tree.root_node):
                if node.type in ("identifier", "shorthand_property_identifier") and node.text.decode("utf-8") == name:
                    if not _bound_locally(node, name, self.python):
                        _check_reference(path, node)
                elif node.type in ("aliased_import", "import_specifier", "pair_pattern"):
                    _check_alias(path, node, name)
                elif node.type in ("call", "call_expression") and _callee_name(node) == name:
                    callee = node.child_by_field_name("function")
                    if callee.type != "identifier" or not _bound_locally(callee, name, self.python):
                        self._await_call(path, node)

    def _await_call(self, path: str, call: Any) -> None:
        line = f"{path}:{call.start_point[0] + 1}"
        scope, in_generator = _enclosing_scope(call, self.python)
        if scope is not None and scope.type == "lambda":
            raise RefactorRefused(f"The call at {line} is inside a lambda, which cannot await.")
        if scope is None and not self.python:
            raise RefactorRefused(f"The call at {line} is outside any function, where CommonJS cannot await.")
        # Module level, and Python test files: pytest and unittest without plugins do not await a test,
        # a fixture or setUp, so that code stays synchronous and runs the coroutine itself.
        if self.python and (scope is None or (_is_test_file(path) and not _is_async(scope))):
            self._add(path, call.start_byte, call.start_byte, "asyncio.run(")
            self._add(path, call.end_byte, call.end_byte, ")")
            self.asyncio_needed.add(path)
            return
        if in_generator:
            raise RefactorRefused(f"The call at {line} is in a generator expression; awaiting there makes it async.")
        if not _is_async(scope):
            self.convert(path, scope)
        if call.parent.type not in ("await", "await_expression"):  # JavaScript may await a plain value already
            self._await(path, call)

    def _await_sleeps(self, path: str, function: Any) -> None:
        """time.sleep would block the event loop: the converted function awaits asyncio.sleep instead."""
        for node in _own_nodes(function.child_by_field_name("body")):
            callee = node.child_by_field_name("function") if node.type == "call" else None
            if callee is not None and callee.text == b"time.sleep":
                self._await(path, node, replace_callee="asyncio.sleep")
                self.asyncio_needed.add(path)

    def _await(self, path: str, call: Any, replace_callee: str = "") -> None:
        """`await call`, parenthesised where a following `.x`, `[i]` or `(...)` would otherwise be awaited."""
        wrap = _needs_parentheses(call)
        # The callee's replacement is part of the opening span: an insertion and a replacement starting
        # at the same byte would be applied in an order _replace_spans does not promise.
        opening_end = call.child_by_field_name("function").end_byte if replace_callee else call.start_byte
        self._add(path, call.start_byte, opening_end, ("(await " if wrap else "await ") + replace_callee)
        if wrap:
            self._add(path, call.end_byte, call.end_byte, ")")

    def _is_function(self, node: Any) -> bool:
        return node.type == "function_definition" if self.python else node.is_named and node.type in JS_FUNCTIONS

    def _add(self, path: str, start: int, end: int, text: str) -> None:
        self.spans.setdefault(path, []).append((start, end, text))


def _function_name(node: Any) -> str | None:
    """The name a function is called by: its own, or (JavaScript) the variable, key or property it is assigned to."""
    if node.type in FUNCTIONS:
        name = node.child_by_field_name("name")
        return name.text.decode("utf-8") if name is not None else None
    parent = node.parent
    if node.type == "lambda" or parent is None:
        return None
    bound = {"variable_declarator": "name", "pair": "key", "assignment_expression": "left"}.get(parent.type)
    target = parent.child_by_field_name(bound) if bound else None
    if target is None or target.type not in ("identifier", "property_identifier", "member_expression"):
        return None
    return target.text.decode("utf-8").rsplit(".", 1)[-1]


def _is_async(node: Any) -> bool:
    return any(child.type == "async" for child in node.children)


def _callee_name(call: Any) -> str | None:
    """The called name: `f(...)`, or the last part of `a.b.f(...)`."""
    callee = call.child_by_field_name("function")
    if callee is None:
        return None
    if callee.type in ("attribute", "member_expression"):
        callee = callee.child_by_field_name("attribute" if callee.type == "attribute" else "property")
    return callee.text.decode("utf-8") if callee is not None and callee.type in IDENTIFIERS else None


def _callback_of(node: Any) -> str | None:
    """The called name when the function is passed as an argument: `test` in `test('t', () => ...)`."""
    parent = node.parent
    if parent is None or parent.type != "arguments" or parent.parent is None:
        return None
    return _callee_name(parent.parent)


def _enclosing_scope(call: Any, python: bool) -> tuple[Any, bool]:
    """The function or lambda whose body runs the call (None at module or class level), and whether a
    generator expression lies in between."""
    in_generator = False
    child, node = call, call.parent
    while node is not None:
        if node.type == "generator_expression":
            in_generator = True
        if node.type in ("class_definition", "class_body"):
            return None, in_generator  # a class body runs once, synchronously, where the class is defined
        functional = node.type in ("function_definition", "lambda") if python else \
            node.is_named and node.type in JS_FUNCTIONS
        body = node.child_by_field_name("body") if functional else None
        if body is not None and body.start_byte <= child.start_byte and child.end_byte <= body.end_byte:
            return node, in_generator
        child, node = node, node.parent
    return None, in_generator


def _bound_locally(node: Any, name: str, python: bool) -> bool:
    """Whether `name` at `node` is a parameter or variable of a function around it: another thing of that name."""
    functions = {"function_definition", "lambda"} if python else JS_FUNCTIONS
    scope = node.parent
    while scope is not None:
        if not (scope.is_named and scope.type in functions):
            scope = scope.parent
            continue
        targets = [scope.child_by_field_name("parameters") or scope.child_by_field_name("parameter")]
        for inner in _own_nodes(scope.child_by_field_name("body")):
            if inner.type in ("assignment", "augmented_assignment", "for_statement", "for_in_clause",
                              "for_in_statement"):
                targets.append(inner.child_by_field_name("left"))
            elif inner.type == "variable_declarator":
                value = inner.child_by_field_name("value")
                if value is None or not value.text.startswith(b"require("):  # a local require() binds the function
                    targets.append(inner.child_by_field_name("name"))
        if any(name in _bound_names(target) for target in targets if target is not None):
            return True
        scope = scope.parent
    return False


def _bound_names(target: Any) -> set[str]:
    """The names a parameter list or an assignment target binds (not those in defaults, types, `a.b` or `a[i]`)."""
    names = set()
    stack = [target]
    while stack:
        node = stack.pop()
        if node.type in ("identifier", "shorthand_property_identifier_pattern"):
            names.add(node.text.decode("utf-8"))
        elif node.type not in ("attribute", "subscript", "member_expression", "subscript_expression", "type"):
            skipped = [node.child_by_field_name(field) for field in ("value", "right")] \
                if node.type in ("default_parameter", "typed_default_parameter", "assignment_pattern") else []
            stack.extend(child for child in node.children if child not in skipped)
    return names


def _own_nodes(body: Any) -> Iterator[Any]:
    """The nodes of a function body, without nested functions, classes and generator expressions."""
    nested = {"function_definition", "lambda", "class_definition", "generator_expression"} | JS_FUNCTIONS
    stack = list(reversed(body.children)) if body is not None else []
    while stack:
        node = stack.pop()
        yield node
        if not (node.is_named and node.type in nested):
            stack.extend(reversed(node.children))


def _needs_parentheses(call: Any) -> bool:
    """Whether the call is the object of `.x`, `[i]`, a further call, or the base of `**` (JavaScript)."""
    parent = call.parent
    field = {"attribute": "object", "subscript": "value", "call": "function", "member_expression": "object",
             "subscript_expression": "object", "call_expression": "function"}.get(parent.type)
    if field is not None:
        return parent.child_by_field_name(field) == call
    operator = parent.child_by_field_name("operator") if parent.type == "binary_expression" else None
    return operator is not None and operator.type == "**" and parent.child_by_field_name("left") == call


def _check_reference(path: str, node: Any) -> None:
    """Refuse a use of the function's name other than a call, its definition, an import or an export:
    whoever receives the function as a value would get a coroutine or a promise without awaiting it."""
    parent = node.parent
    field = {"call": "function", "call_expression": "function", "attribute": "attribute",
             "keyword_argument": "name", "variable_declarator": "name"}.get(parent.type)
    if field is not None and parent.child_by_field_name(field) == node:
        return
    if parent.type in FUNCTIONS and parent.child_by_field_name("name") == node:
        return
    ancestor = parent
    while ancestor is not None:
        if ancestor.type in ("import_statement", "import_from_statement", "export_statement"):
            return
        left = ancestor.child_by_field_name("left") if ancestor.type == "assignment_expression" else None
        if left is not None and left.text.decode("utf-8").startswith(("module.exports", "exports.")):
            return
        ancestor = ancestor.parent
    raise RefactorRefused(f"'{node.text.decode('utf-8')}' is used without being called at "
                          f"{path}:{node.start_point[0] + 1}; that code would not await it.")


def _check_alias(path: str, node: Any, name: str) -> None:
    """Refuse an import or destructuring under another name: calls by that name would not be found."""
    original = node.child_by_field_name("key" if node.type == "pair_pattern" else "name")
    renamed = node.child_by_field_name("value" if node.type == "pair_pattern" else "alias")
    if original is None or renamed is None or original.text.decode("utf-8") != name:
        return
    if renamed.text.decode("utf-8") != name:
        raise RefactorRefused(f"'{name}' is imported as '{renamed.text.decode('utf-8')}' at "
                              f"{path}:{node.start_point[0] + 1}; calls by that name would not be awaited.")


def _is_test_file(path: str) -> bool:
    name = path.rsplit("/", 1)[-1]
    return name.startswith("test_") or name.endswith("_test.py") or name == "conftest.py"


def _asyncio_import(module: Any) -> tuple[int, int, str] | None:
    """Where `import asyncio` goes (None when the module has it): before the first import that follows
    the docstring and __future__ imports, else after them."""
    for child in module.children:
        if child.type == "import_statement" and any(n.text == b"asyncio" for n in child.named_children):
            return None
    after = None
    statements = 0
    for child in module.children:
        if child.type in ("import_statement", "import_from_statement"):
            return (child.start_byte, child.start_byte, "import asyncio\n")
        docstring = statements == 0 and child.type == "expression_statement" \
            and child.named_children[0].type == "string"
        if child.type not in ("comment", "future_import_statement") and not docstring:
            break
        statements += child.type != "comment"
        after = child
    if after is None:
        return (0, 0, "import asyncio\n\n")
    return (after.end_byte, after.end_byte, "\nimport asyncio" if after.type == "comment" else "\n\nimport asyncio")


def _apply_insertions(text: str, spans: list[tuple[int, int, str]], path: str) -> str:
    """_replace_spans, with insertions at one position joined in the order they were made (`(await ` after
    an import) and overlapping spans refused rather than applied."""
    merged: dict[tuple[int, int], str] = {}
    for start, end, new in spans:
        merged[(start, end)] = merged.get((start, end), "") + new
    ordered = sorted(merged)
    for (start, end), (next_start, _) in pairwise(ordered):
        if next_start < end or (start == end == next_start):
            raise RefactorRefused(f"The edits of {path} overlap at byte {next_start}; nothing was changed.")
    return _replace_spans(text, [(start, end, new) for (start, end), new in merged.items()])
