"""Shaping raw model text into the gate's shape."""

from __future__ import annotations

from codeassist_lsp.context.gating import Gate
from codeassist_lsp.engine.postprocess import shape_suggestion

INSERT = Gate("line", insert_line=True)


def test_line_keeps_the_first_line_only() -> None:
    assert shape_suggestion("x = 1\ny = 2", Gate("line"), line_before="    ", line_after="", following="") == "x = 1"


def test_insert_at_column_zero_keeps_the_model_indentation_and_ends_the_line() -> None:
    shaped = shape_suggestion("    x = 1\n    y = 2", INSERT, line_before="", line_after="    return x", following="")
    assert shaped == "    x = 1\n"


def test_insert_after_the_indentation_moves_the_code_down_with_its_indentation() -> None:
    shaped = shape_suggestion("x = 1", INSERT, line_before="    ", line_after="return x", following="")
    assert shaped == "x = 1\n    "


def test_insert_that_repeats_the_code_at_the_cursor_is_dropped() -> None:
    assert shape_suggestion("    return x\n", INSERT, line_before="", line_after="    return x", following="") == ""


def test_insert_of_nothing_is_dropped() -> None:
    assert shape_suggestion("\n    return x", INSERT, line_before="", line_after="    return x", following="") == ""


def test_line_on_an_empty_line_that_repeats_the_line_below_is_dropped() -> None:
    following = "\n    return total\n"
    assert shape_suggestion("    return total", Gate("line"), line_before="    ", line_after="",
                            following=following) == ""
    assert shape_suggestion("total += x", Gate("line"), line_before="    ", line_after="",
                            following=following) == "total += x"
