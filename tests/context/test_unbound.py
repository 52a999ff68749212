"""Names read below the cursor that nothing binds, and the start of the line that defines them."""

from __future__ import annotations

from codeassist_lsp.context.languages import language_for
from codeassist_lsp.context.unbound import definition_start, first_unbound_name_below

PY = language_for("python")

ACCUMULATOR = '''import os


def words(text, sep=None):
    """Split text into words."""
    parts = text.split(sep)
    <CURSOR>
    for part in parts:
        result.append(part.strip())
    return [os.path.basename(w) for w in result if w]
'''

LOOP = '''def count(items, wanted):
    n = 0
<CURSOR>
        if item == wanted:
            n += 1
    return n
'''


def cut(source: str) -> tuple[str, int]:
    offset = source.index("<CURSOR>")
    return source.replace("<CURSOR>", ""), offset


def test_an_accumulator_read_below_and_never_bound_starts_the_line() -> None:
    text, offset = cut(ACCUMULATOR)
    # part (loop target), w (comprehension), os (import), sep/text (parameters), builtins: bound.
    assert first_unbound_name_below(text, offset, PY) == "result"
    assert definition_start(text, offset, PY) == "result = []"  # after the typed indentation; appended to below


def test_a_name_used_in_a_deeper_block_below_starts_a_for_loop_with_indentation() -> None:
    text, offset = cut(LOOP)
    assert definition_start(text, offset, PY) == "    for item in"  # column 0: indentation included


def test_nothing_to_define_when_every_name_is_bound_or_the_language_is_not_python() -> None:
    text, offset = cut(LOOP.replace("<CURSOR>", "    for item in items:\n<CURSOR>"))
    assert definition_start(text, offset, PY) is None
    text, offset = cut(ACCUMULATOR)
    assert definition_start(text, offset, language_for("javascript")) is None
    # Module level (no enclosing function): nothing is proposed.
    assert definition_start("x = 1\n\nprint(y)\n", 6, PY) is None
    # Bound elsewhere in the document (a later top-level function) counts as bound.
    source = "def f():\n    \n    return helper()\n\n\ndef helper():\n    return 1\n"
    assert definition_start(source, source.index("    \n") + 4, PY) is None
