"""Map between LSP positions (UTF-16 code units), str offsets and tree-sitter byte offsets."""

from __future__ import annotations

import bisect


def _utf16_len(text: str) -> int:
    """Number of UTF-16 code units of text (astral characters count twice)."""
    # Encoding is the fast path in CPython; a per-character loop is ~50x slower.
    return len(text.encode("utf-16-le")) // 2


class LineIndex:
    """Line starts of one text, for O(log n) conversions between offsets and positions."""

    def __init__(self, text: str) -> None:
        self.text = text
        starts = [0]
        index = text.find("\n")
        while index >= 0:
            starts.append(index + 1)
            index = text.find("\n", index + 1)
        self.line_starts = starts

    def line_of(self, offset: int) -> int:
        """The 0-based line holding str offset `offset`."""
        return bisect.bisect_right(self.line_starts, offset) - 1

    def offset_at(self, line: int, utf16_character: int) -> int:
        """The str offset of an LSP position; positions past a line end clamp to it."""
        if line < 0:
            return 0
        if line >= len(self.line_starts):
            return len(self.text)
        start = self.line_starts[line]
        end = self.line_starts[line + 1] - 1 if line + 1 < len(self.line_starts) else len(self.text)
        units = 0
        offset = start
        while offset < end and units < utf16_character:
            units += 2 if ord(self.text[offset]) > 0xFFFF else 1
            offset += 1
        return offset

    def position_of(self, offset: int) -> tuple[int, int]:
        """The LSP position (line, UTF-16 character) of str offset `offset`."""
        offset = max(0, min(offset, len(self.text)))
        line = self.line_of(offset)
        return line, _utf16_len(self.text[self.line_starts[line] : offset])

    def point_of(self, offset: int) -> tuple[int, int]:
        """The tree-sitter point (row, UTF-8 byte column) of str offset `offset`."""
        offset = max(0, min(offset, len(self.text)))
        line = self.line_of(offset)
        return line, len(self.text[self.line_starts[line] : offset].encode("utf-8"))


def line_ending(text: str) -> str:
    """The line ending an editor's document uses: CRLF when its first line break is one, else LF."""
    index = text.find("\n")
    return "\r\n" if index > 0 and text[index - 1] == "\r" else "\n"


def with_line_ending(new_text: str, ending: str) -> str:
    """new_text (model output: LF, perhaps mixed with CRLF) with every line break written as `ending`."""
    text = new_text.replace("\r\n", "\n")
    return text if ending == "\n" else text.replace("\n", ending)


def utf16_to_offset(text: str, line: int, character: int) -> int:
    """The str offset of an LSP (line, UTF-16 character) position in text."""
    return LineIndex(text).offset_at(line, character)


def offset_to_utf16(text: str, offset: int) -> tuple[int, int]:
    """The LSP (line, UTF-16 character) position of a str offset in text."""
    return LineIndex(text).position_of(offset)


def offset_to_byte(text: str, offset: int) -> int:
    """The UTF-8 byte offset of a str offset in text."""
    return len(text[:offset].encode("utf-8"))


def byte_to_offset(source: bytes, byte_offset: int) -> int:
    """The str offset of a UTF-8 byte offset in source (bytes cut inside a character round down)."""
    return len(source[:byte_offset].decode("utf-8", errors="ignore"))
