"""Document trees: incremental parsing equals a fresh parse; UTF-16 positions; plain-text fallback."""

from __future__ import annotations

import random

import pytest

from codeassist_lsp.context.documents import DocumentTrees
from codeassist_lsp.context.languages import all_languages, parse
from codeassist_lsp.context.positions import LineIndex, byte_to_offset, offset_to_byte, offset_to_utf16, utf16_to_offset

from .conftest import SAMPLES

INSERTIONS = ["x", "\n", "😀", "é𝄞", "    ", "def f(a):\n    return a\n", "{", "}", ""]


@pytest.mark.parametrize("language, sample", [("python", "sample.py"), ("javascript", "sample.js"), ("rust", "sample.rs")])
def test_incremental_edits_equal_a_fresh_parse(language: str, sample: str) -> None:
    documents = DocumentTrees()
    uri = f"file:///work/{sample}"
    documents.open(uri, (SAMPLES / sample).read_text(), language)
    rng = random.Random(7)
    for _ in range(120):
        text = documents.text(uri)
        assert text is not None
        start = rng.randint(0, len(text))
        end = min(len(text), start + rng.randint(0, 6))
        document = documents.apply_change(uri, start, end, rng.choice(INSERTIONS))
        assert document is not None and document.tree is not None
        fresh = parse(all_languages()[language], document.text.encode())
        assert document.tree.root_node.sexp() == fresh.root_node.sexp()


def test_full_sync_update_equals_a_fresh_parse() -> None:
    documents = DocumentTrees()
    text = (SAMPLES / "sample.py").read_text()
    documents.open("a.py", text, "python", version=1)
    edited = text.replace("def get(self, key):", "def get(self, key, default=None):  # 𝄞")
    document = documents.update("a.py", edited, version=2)
    assert document is not None and document.version == 2 and document.text == edited
    assert document.tree.root_node.sexp() == parse(all_languages()["python"], edited.encode()).root_node.sexp()


def test_utf16_positions_with_astral_characters() -> None:
    text = "a = '😀'  # 𝄞\nb = 'é'\n"
    index = LineIndex(text)
    # '😀' is one str character but two UTF-16 code units: the closing quote is at character 7.
    quote = text.index("'", 5)
    assert index.position_of(quote) == (0, 7)
    assert utf16_to_offset(text, 0, 7) == quote
    assert offset_to_utf16(text, text.index("b")) == (1, 0)
    assert utf16_to_offset(text, 1, 99) == text.index("\n", text.index("b"))  # past the end clamps
    assert index.point_of(quote) == (0, 9)  # UTF-8: the emoji is four bytes
    assert offset_to_byte(text, quote) == 9 and byte_to_offset(text.encode(), 9) == quote


def test_lsp_range_edit_after_an_astral_character() -> None:
    documents = DocumentTrees()
    documents.open("b.py", "s = '😀'\nx = 1\n", "python")
    # Replace the closing quote (UTF-16 character 6) by '!' + quote.
    document = documents.apply_utf16_change("b.py", (0, 7), (0, 7), "!")
    assert document is not None and document.text == "s = '😀!'\nx = 1\n"
    assert document.tree.root_node.sexp() == parse(all_languages()["python"], document.text.encode()).root_node.sexp()


def test_unknown_language_is_plain_text() -> None:
    documents = DocumentTrees()
    document = documents.open("file:///notes.unknownext", "just words\n", "plaintext")
    assert document.language is None and document.tree is None
    assert documents.apply_change("file:///notes.unknownext", 0, 4, "only") is not None
    assert documents.text("file:///notes.unknownext") == "only words\n"
    documents.close("file:///notes.unknownext")
    assert documents.get("file:///notes.unknownext") is None
