"""Gating at the cursor: none, one line, block, and a new line above the code at the cursor."""

from __future__ import annotations

from codeassist_lsp.context.gating import decide_mode
from codeassist_lsp.context.languages import language_for
from codeassist_lsp.verify.syntax import check_syntax

PYTHON = language_for("python")
SOURCE = "def total(items):\n    result = 0\n    for item in items:\n        result += item\n    return result\n"


def test_mid_line_with_code_after_the_cursor_is_none() -> None:
    offset = SOURCE.index("= 0")
    assert decide_mode(SOURCE, offset, PYTHON).mode == "none"


def test_column_zero_before_code_suggests_a_line_above() -> None:
    offset = SOURCE.index("    return")
    gate = decide_mode(SOURCE, offset, PYTHON)
    assert (gate.mode, gate.insert_line) == ("line", True)


def test_after_the_indentation_before_code_suggests_a_line_above() -> None:
    offset = SOURCE.index("return")
    gate = decide_mode(SOURCE, offset, PYTHON)
    assert (gate.mode, gate.insert_line) == ("line", True)


def test_inside_the_indentation_is_none() -> None:
    offset = SOURCE.index("    return") + 2
    assert decide_mode(SOURCE, offset, PYTHON).mode == "none"


def test_end_of_line_is_a_plain_line() -> None:
    offset = SOURCE.index(" = 0") + 4
    gate = decide_mode(SOURCE, offset, PYTHON)
    assert (gate.mode, gate.insert_line) == ("line", False)


def test_inserted_line_parses_in_place() -> None:
    """The shaped insertion (line + newline) splices into the document without a syntax error."""
    from codeassist_lsp.engine.postprocess import shape_suggestion

    offset = SOURCE.index("    return")
    gate = decide_mode(SOURCE, offset, PYTHON)
    text = shape_suggestion("    result = round(result, 2)\n", gate, line_before="",
                            line_after="    return result", following="")
    assert text == "    result = round(result, 2)\n"
    assert check_syntax(PYTHON, SOURCE, offset, text).status == "ok"
