"""Shaping raw model text into the gate's shape."""

from __future__ import annotations

from codeassist_lsp.context.gating import Gate
from codeassist_lsp.engine.postprocess import block_guard, complete_lines, cycle_stop, shape_suggestion, whole_words

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


# -- early stops for degenerate output, and where a budget may cut -------------------------------

def test_a_short_loop_is_cut_after_its_first_turn() -> None:
    text = "self.wrap_ping-up-up-up-up-up"
    assert text[:cycle_stop(text)] == "self.wrap_ping-up"


def test_real_code_that_repeats_is_not_a_loop() -> None:
    for text in ("x = [0, 0, 0, 0]", "# " + "=" * 40, "    " * 6, "a, b, c = 1, 1, 1"):
        assert cycle_stop(text) is None, text


def test_a_block_that_writes_the_code_below_the_cursor_again_stops_before_it() -> None:
    guard = block_guard("    return total\n\n\ndef mean(values):\n", "#")
    text = "    total = sum(values)\n    return total\n"
    assert text[:guard(text)] == "    total = sum(values)"


def test_prose_stops_a_block_but_not_inside_a_docstring_or_a_comment() -> None:
    guard = block_guard("", "#")
    prose = "    x = 1\n    This function returns the sum of all the values it is given\n"
    assert prose[:guard(prose)] == "    x = 1"
    docstring = '    """Return the sum.\n\n    This function returns the sum of all the values it is given\n    """\n'
    assert guard(docstring) is None
    comment = "    # This function returns the sum of all the values it is given\n    x = 1\n"
    assert guard(comment) is None


def test_early_delivery_cuts_at_complete_lines_and_whole_words() -> None:
    assert complete_lines("    a = 1\n    b = 2\n    c =") == len("    a = 1\n    b = 2")
    assert complete_lines("    a = 1") is None
    assert whole_words("return self.wid") == len("return self.")
    assert whole_words("re") is None
