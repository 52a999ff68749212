"""Decide before generating: no suggestion, one line, or a block (llm-ls style gating)."""

from __future__ import annotations

import re
from typing import Literal

import attrs

from codeassist_lsp.context.languages import Language, parse

CompletionMode = Literal["none", "line", "block"]

# After the cursor on its line, only closers may follow for a suggestion to make sense.
_CLOSERS_ONLY = re.compile(r"""^[\s)\]}>"'`;,:]*$""")
_COMMENT_OR_STRING = ("comment", "string", "string_content", "heredoc", "template_string")


@attrs.frozen
class Gate:
    """The decision and the indentation a block body would have."""

    mode: CompletionMode
    indent: str = ""
    reason: str = ""
    insert_line: bool = False
    """The cursor sits before a line's code: the suggestion becomes a new line above that code."""


def _indent_of(line: str) -> str:
    return line[: len(line) - len(line.lstrip(" \t"))]


def _previous_content_line(lines: list[str], index: int) -> str | None:
    for line in reversed(lines[:index]):
        if line.strip():
            return line
    return None


def _next_content_line(lines: list[str]) -> str | None:
    for line in lines:
        if line.strip():
            return line
    return None


def _opens_block(line: str, language: Language | None) -> bool:
    code = line.rstrip()
    if language is not None and language.line_comment and language.line_comment in code:
        # A trailing comment hides the opener: "if x:  # note"
        code = code.split(language.line_comment, 1)[0].rstrip()
    openers = language.block_openers if language is not None else ("{", ":")
    return any(code.endswith(opener) for opener in openers) or code.endswith(("{", "(", "["))


def _node_at(tree, row: int, column: int):  # type: ignore[no-untyped-def]
    return tree.root_node.descendant_for_point_range((row, column), (row, column))


def _inside_comment_or_string(text: str, row: int, column: int, language: Language) -> bool:
    tree = parse(language, text.encode("utf-8"))
    if tree is None:
        return False
    node = _node_at(tree, row, column)
    while node is not None:
        if node.type in _COMMENT_OR_STRING and node.start_point < (row, column):
            return True
        node = node.parent
    return False


def decide_mode(text: str, offset: int, language: Language | None) -> Gate:
    """Choose what to generate at `offset` (a str index into text)."""
    before = text[:offset]
    after = text[offset:]
    line_start = before.rfind("\n") + 1
    line_end = after.find("\n")
    line_before = before[line_start:]
    line_after = after if line_end < 0 else after[:line_end]
    if not _CLOSERS_ONLY.match(line_after):
        if line_before in ("", _indent_of(line_before + line_after)):
            # At the start of a line (column 0 or right after its indentation) the code after the
            # cursor is the next statement, not text to complete: suggest the line that goes above it.
            return Gate("line", reason="new line above the code at the cursor", insert_line=True)
        return Gate("none", reason="cursor is in the middle of a line")
    if line_before.strip():
        return Gate("line", reason="completing the current line")

    # An empty line: a block when it is the (still empty) body of what the previous line opened.
    lines_before = before.split("\n")
    previous = _previous_content_line(lines_before, len(lines_before) - 1)
    if previous is None or not _opens_block(previous, language):
        return Gate("line", reason="empty line outside a new block")
    next_line = _next_content_line(after.split("\n")[1:] if line_end >= 0 else [])
    body_indent = line_before if line_before else _indent_of(previous) + "    "
    if next_line is not None and len(_indent_of(next_line)) > len(_indent_of(previous)) and (
        next_line.strip()[:1] not in (")", "]", "}")
    ):
        return Gate("line", reason="the block already has a body")
    if language is not None:
        # Confirm with the syntax tree that the opener is code, not text in a comment or string.
        row = previous_row = len(lines_before) - 2
        while previous_row >= 0 and not lines_before[previous_row].strip():
            previous_row -= 1
        row = previous_row
        column = len(lines_before[row].rstrip()) - 1 if row >= 0 else 0
        if row >= 0 and _inside_comment_or_string(text, row, max(column, 0), language):
            return Gate("line", reason="opener is inside a comment or string")
    return Gate("block", indent=body_indent, reason="empty body of a new block")
