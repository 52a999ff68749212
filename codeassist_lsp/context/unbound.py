"""Names the code below the cursor reads but nothing in the document binds (Python).

A model without fill-in-the-middle tokens never sees the code after the cursor. When that code reads
a name no line of the document defines, the line being written is very likely its definition:
the suggestion is then started with that name (see `definition_start`).
"""

from __future__ import annotations

import builtins
import keyword
import re

from codeassist_lsp.context.languages import Language, load_query, parse

_BUILTINS = frozenset(dir(builtins)) | frozenset(keyword.kwlist) | {"self", "cls", "__name__", "__file__"}
# Lines below the cursor looked at, within its function.
_LOOKAHEAD_LINES = 40


def _identifiers(node):  # type: ignore[no-untyped-def]
    """Every identifier under node (pattern lists, tuples, parameters, ...)."""
    if node.type == "identifier":
        yield node
        return
    for child in node.children:
        yield from _identifiers(child)


def _bound_names(language: Language, root) -> set[str]:  # type: ignore[no-untyped-def]
    """Every name the tree binds (grammars/queries/python/bindings.scm: assignments, parameters,
    loop and comprehension targets, imports, aliases, ...)."""
    query = load_query(language, "bindings")
    if query is None:
        return set()
    return {name.text.decode() for node, _capture in query.captures(root) for name in _identifiers(node)}


def _is_read(node) -> bool:  # type: ignore[no-untyped-def]
    parent = node.parent
    if parent is None:
        return False
    if parent.type == "attribute" and parent.child_by_field_name("attribute") == node:
        return False  # obj.name
    if parent.type == "keyword_argument" and parent.child_by_field_name("name") == node:
        return False  # f(name=...)
    return True


def _indent_width(line: str) -> int:
    return len(line) - len(line.lstrip())


def _new_line_indent(lines: list[str], row: int) -> str:
    """The indentation of a new line written at `row`: the line above's, one level deeper after ':'."""
    for above in reversed(lines[:row]):
        if above.strip():
            indent = above[: _indent_width(above)]
            return indent + "    " if above.rstrip().endswith(":") else indent
    return ""


def _bound_anywhere(name: str, text: str) -> bool:
    """Whether the document binds `name` outside the parsed function (a definition, an import, an
    alias, an assignment at the start of a line, a loop target, a global): only the lines that
    mention the name are looked at, instead of parsing the whole document."""
    word = re.escape(name)
    binding = re.compile(
        rf"^[ \t]*(?:(?:async[ \t]+)?def|class)[ \t]+{word}\b|\bimport\b.*\b{word}\b|\bas[ \t]+{word}\b"
        rf"|^[ \t]*{word}[ \t]*(?::[^=]*)?=(?!=)|\bfor\b.*\b{word}\b.*\bin\b|\bglobal\b.*\b{word}\b")
    for mention in re.finditer(rf"\b{word}\b", text):
        start = text.rfind("\n", 0, mention.start()) + 1
        end = text.find("\n", mention.end())
        if binding.search(text[start:end if end >= 0 else len(text)]):
            return True
    return False


# How far above the cursor its function's header may be; that function is parsed for the precise
# bindings (parameters, loop targets, tuples, ...).
_LOOKBEHIND_LINES = 300
_MAX_CHECKED = 4
_FUNCTION_HEADER = re.compile(r"[ \t]*(?:async[ \t]+)?def[ \t]")


def first_unbound_name_below(text: str, offset: int, language: Language | None) -> str | None:
    """The first name read after `offset` (to the end of the cursor's block) that no part of the
    document binds, or None."""
    if language is None or language.name != "python":
        return None
    lines = text.split("\n")
    row = text.count("\n", 0, offset)
    return _first_unbound(text, offset, lines, row, _new_line_indent(lines, row), language)


def _first_unbound(text: str, offset: int, lines: list[str], row: int, new_indent: str,
                   language: Language) -> str | None:
    indent = len(new_indent)
    last = row
    for number in range(row + 1, min(len(lines), row + 1 + _LOOKAHEAD_LINES)):
        if lines[number].strip() and _indent_width(lines[number]) < indent:
            break  # the block the cursor is in ends here
        last = number
    # Parse the enclosing function only: the whole of a long file costs tens of milliseconds.
    first, level = None, indent
    for number in range(row - 1, max(-1, row - _LOOKBEHIND_LINES), -1):
        # The outermost enclosing function within reach: closures read their outer parameters.
        if _FUNCTION_HEADER.match(lines[number]) and _indent_width(lines[number]) < level:
            first, level = number, _indent_width(lines[number])
    if first is None:
        return None  # not inside a function (module level, or a function too long to look through)
    window = "\n".join(lines[first:last + 1])
    tree = parse(language, window.encode("utf-8"))
    if tree is None:
        return None
    bound = _bound_names(language, tree.root_node)
    cursor = (row - first, len(text[text.rfind("\n", 0, offset) + 1:offset].encode("utf-8")))
    names: list[str] = []
    stack = [tree.root_node]
    while stack:
        node = stack.pop()
        if node.end_point < cursor:
            continue
        if node.type == "identifier" and node.start_point >= cursor:
            name = node.text.decode()
            if name not in bound and name not in _BUILTINS and name not in names and _is_read(node):
                names.append(name)
        stack.extend(reversed(node.children))
    # Checked in order, at most a few: only the first one is used, and each check scans the document.
    return next((name for name in names[:_MAX_CHECKED] if not _bound_anywhere(name, text)), None)


# How the code below uses a name tells what the definition starts with: a list it appends to, a set
# it adds to. Anything else is left to the model after `NAME =`.
_LIST_METHODS = ("append", "extend", "insert")


def _initial_value(name: str, below: str) -> str:
    word = re.escape(name)
    if re.search(rf"\b{word}\.(?:{'|'.join(_LIST_METHODS)})\(", below):
        return "[]"
    if re.search(rf"\b{word}\.add\(", below):
        return "set()"
    return ""


def definition_start(text: str, offset: int, language: Language | None) -> str | None:
    """How a new line at the cursor that defines the first unbound name below should start, or None.

    `for NAME in` when the code after the cursor is indented deeper than the new line (the new
    line opens its block), else `NAME =`, or `NAME = []` / `NAME = set()` when the code below
    appends or adds to it (an open bracket let the model run past the line); the model writes the
    rest. `NAME =` and not `NAME`: the model would otherwise extend the identifier
    (`squared` -> `squared_lst`).
    """
    if language is None or language.name != "python":
        return None
    lines = text.split("\n")
    row = text.count("\n", 0, offset)
    new_indent = _new_line_indent(lines, row)
    name = _first_unbound(text, offset, lines, row, new_indent, language)
    if name is None:
        return None
    rest_of_line = text[offset:].split("\n", 1)[0]
    following = lines[row] if rest_of_line.strip() else next((line for line in lines[row + 1:] if line.strip()), "")
    if _indent_width(following) > len(new_indent):
        start = f"for {name} in"
    else:
        below = "\n".join(lines[row:row + 1 + _LOOKAHEAD_LINES])
        start = f"{name} = {_initial_value(name, below)}".rstrip()
    # At column 0 the new line needs its indentation; after typed indentation it has it.
    return start if text[text.rfind("\n", 0, offset) + 1:offset] else new_indent + start
