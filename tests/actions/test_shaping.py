"""Model-free checks of how model text is judged: static defects of generated Python, hover sentences."""

from __future__ import annotations

from codeassist_lsp.actions.edits import prose_stop, python_defects
from codeassist_lsp.actions.runner import clean_sentence, structural_summary
from codeassist_lsp.actions.targets import HoverTarget


def test_python_defects_count_undefined_names_and_missing_returns() -> None:
    assert python_defects('def f(x):\n    """Doc."""\n    return x + 1\n', "f") == 0
    assert python_defects("def f(x):\n    return y + x\n", "f") == 1  # y is never defined
    assert python_defects("def f(x):\n    total = x\n", "f") == 1  # computes, returns nothing
    assert python_defects('def f(x):\n    """Doc."""\n    pass\n', "f") == 1
    assert python_defects("import os\n\ndef f(xs):\n    for i in xs:\n        pass\n    return os.sep\n", "f") == 0
    assert python_defects("def f(x:\n", "f") is None


def test_hover_sentences_are_prose_or_nothing() -> None:
    assert clean_sentence("This function", " <code>sum</code> adds the numbers.", cut=False) == \
        "This function `sum` adds the numbers."
    assert clean_sentence("This function", "\n", cut=False) == ""
    assert clean_sentence("This function", " x = [1, 2]; y = 3; z = 4;", cut=False) == ""
    # Cut by the token limit: whole sentences only.
    assert clean_sentence("This function", " returns the sum. It is used to", cut=True) == "This function returns the sum."


def test_structural_summary_is_labelled_and_has_signature_and_docstring() -> None:
    target = HoverTarget("definition", "f", 0, 10, 'def f(x):\n    """Add one to x."""\n    return x + 1')
    summary = structural_summary(target, "python")
    assert summary.startswith("*Structural summary") and "def f(x):" in summary and "Add one to x." in summary


def test_prose_stops_at_a_repeated_line_or_after_two_blank_lines() -> None:
    assert prose_stop("It adds.\nIt sums.\nIt adds.\n") == len("It adds.\nIt sums.")
    # Whitespace-only lines are blank: the explanation ends after its text.
    looping = "\n    returns the sequence.\n    \n    \n    \n"
    assert looping[:prose_stop(looping)] == "\n    returns the sequence."
    assert prose_stop("\n\nIt adds.\n\nIt also sums.\n") is None  # one blank line between paragraphs
