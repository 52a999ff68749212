"""Refactorings deterministic code does better than a small model: rename a definition everywhere,
add a parameter with a default (and pass a value from its callers).

They work on tree-sitter syntax trees, so names in strings and comments are left alone and a
name is changed only where it is that identifier. Each refuses (raises RefactorRefused, with the
reason) rather than guess: a name defined more than once, a new name already in use.
"""

from __future__ import annotations

import ast
import json
import re
from collections.abc import Iterator
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
