"""Open documents with their tree-sitter trees, kept current incrementally on every edit."""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from typing import Any

import attrs

from codeassist_lsp.context.languages import PARSE_TIMEOUT_MICROS, Language, all_languages, language_for, parse
from codeassist_lsp.context.positions import LineIndex

log = logging.getLogger(__name__)

# Above this size a document is served as plain text: a parse would cost more than it helps.
MAX_PARSE_CHARS = 2_000_000
# How many recent edit locations are remembered across all documents.
RECENT_EDITS_KEPT = 32


@attrs.define
class Document:
    """One open document: its text, language, version and (when parsable) its tree."""

    uri: str
    text: str
    language: Language | None
    version: int = 0
    tree: Any = None  # tree_sitter.Tree; None for plain text or a failed parse
    parse_ms: float = 0.0
    parse_timed_out: bool = False  # the last parse hit tree-sitter's time limit (tree is None)
    _source: bytes | None = None
    _lines: LineIndex | None = None

    @property
    def source(self) -> bytes:
        """The UTF-8 bytes tree-sitter parsed (computed once per version)."""
        if self._source is None:
            self._source = self.text.encode("utf-8")
        return self._source

    @property
    def lines(self) -> LineIndex:
        """Line index of the current text (computed once per version)."""
        if self._lines is None:
            self._lines = LineIndex(self.text)
        return self._lines

    def _replace_text(self, text: str) -> None:
        self.text = text
        self._source = None
        self._lines = None


@attrs.frozen
class RecentEdit:
    """Where an edit landed, for the assembler's 'recently edited regions'."""

    uri: str
    offset: int
    at: float


def _resolve_language(language: Language | str | None, uri: str) -> Language | None:
    if isinstance(language, Language):
        return language
    if isinstance(language, str) and language in all_languages():
        return all_languages()[language]
    return language_for(language, uri)


class DocumentTrees:
    """Per-document tree cache; unknown languages and failed parses leave `tree` as None."""

    def __init__(self) -> None:
        self._documents: dict[str, Document] = {}
        self._lock = threading.RLock()
        self.recent_edits: deque[RecentEdit] = deque(maxlen=RECENT_EDITS_KEPT)

    def open(self, uri: str, text: str, language: Language | str | None, version: int = 0) -> Document:
        """Start tracking a document (language: a Language, our name, or an LSP languageId)."""
        document = Document(uri, text, _resolve_language(language, uri), version)
        self._parse(document, old_tree=None)
        with self._lock:
            self._documents[uri] = document
        return document

    def close(self, uri: str) -> None:
        """Forget a document."""
        with self._lock:
            self._documents.pop(uri, None)

    def get(self, uri: str) -> Document | None:
        """The document, or None when it is not open."""
        with self._lock:
            return self._documents.get(uri)

    def tree(self, uri: str) -> Any:
        """The document's current tree-sitter tree, or None."""
        document = self.get(uri)
        return document.tree if document else None

    def text(self, uri: str) -> str | None:
        """The document's current text, or None when it is not open."""
        document = self.get(uri)
        return document.text if document else None

    def documents(self) -> list[Document]:
        """All open documents."""
        with self._lock:
            return list(self._documents.values())

    def apply_change(
        self, uri: str, start_offset: int, old_end_offset: int, new_text: str, version: int | None = None
    ) -> Document | None:
        """Replace text[start_offset:old_end_offset] (str offsets) and reparse incrementally."""
        with self._lock:
            document = self._documents.get(uri)
            if document is None:
                log.debug("change for a document that is not open: %s", uri)
                return None
            old_text = document.text
            start_offset = max(0, min(start_offset, len(old_text)))
            old_end_offset = max(start_offset, min(old_end_offset, len(old_text)))
            tree = document.tree
            if tree is not None:
                old_lines = document.lines
                start_byte = len(old_text[:start_offset].encode("utf-8"))
                old_end_byte = start_byte + len(old_text[start_offset:old_end_offset].encode("utf-8"))
                new_end_byte = start_byte + len(new_text.encode("utf-8"))
                start_point = old_lines.point_of(start_offset)
                old_end_point = old_lines.point_of(old_end_offset)
                new_end_point = _point_after(start_point, new_text)
                tree.edit(start_byte, old_end_byte, new_end_byte, start_point, old_end_point, new_end_point)
            document._replace_text(old_text[:start_offset] + new_text + old_text[old_end_offset:])
            document.version = version if version is not None else document.version + 1
            self.recent_edits.append(RecentEdit(uri, start_offset + len(new_text), time.monotonic()))
            self._parse(document, old_tree=tree)
            return document

    def apply_utf16_change(
        self,
        uri: str,
        start: tuple[int, int],
        end: tuple[int, int],
        new_text: str,
        version: int | None = None,
    ) -> Document | None:
        """Apply an LSP range edit whose (line, character) positions count UTF-16 code units."""
        document = self.get(uri)
        if document is None:
            return None
        lines = document.lines
        return self.apply_change(uri, lines.offset_at(*start), lines.offset_at(*end), new_text, version)

    def update(self, uri: str, new_text: str, version: int | None = None) -> Document | None:
        """Replace the whole text (LSP full sync); the smallest covering edit is computed and applied."""
        document = self.get(uri)
        if document is None:
            return None
        old_text = document.text
        if old_text == new_text:
            if version is not None:
                document.version = version
            return document
        prefix = _common_prefix_length(old_text, new_text)
        limit = min(len(old_text), len(new_text)) - prefix
        suffix = _common_suffix_length(old_text, new_text, limit)
        return self.apply_change(uri, prefix, len(old_text) - suffix, new_text[prefix : len(new_text) - suffix], version)

    def _parse(self, document: Document, old_tree: Any) -> None:
        language = document.language
        if language is None or len(document.text) > MAX_PARSE_CHARS:
            document.tree = None
            return
        started = time.perf_counter()
        document.tree = parse(language, document.source, old_tree)
        document.parse_ms = (time.perf_counter() - started) * 1000
        document.parse_timed_out = document.tree is None and document.parse_ms * 1000 >= PARSE_TIMEOUT_MICROS
        if document.tree is None:
            log.info("no tree for %s (%s): parse %s", document.uri, language.name,
                     "timed out" if document.parse_timed_out else "failed")


def _point_after(start: tuple[int, int], inserted: str) -> tuple[int, int]:
    """The tree-sitter point reached after inserting `inserted` at `start`."""
    newlines = inserted.count("\n")
    if newlines == 0:
        return start[0], start[1] + len(inserted.encode("utf-8"))
    tail = inserted[inserted.rfind("\n") + 1 :]
    return start[0] + newlines, len(tail.encode("utf-8"))


def _common_prefix_length(a: str, b: str) -> int:
    """Length of the common prefix, found by halving (fast on long equal heads)."""
    low, high = 0, min(len(a), len(b))
    while low < high:
        middle = (low + high + 1) // 2
        if a[:middle] == b[:middle]:
            low = middle
        else:
            high = middle - 1
    return low


def _common_suffix_length(a: str, b: str, limit: int) -> int:
    """Length of the common suffix, at most `limit` characters."""
    low, high = 0, max(0, limit)
    while low < high:
        middle = (low + high + 1) // 2
        if a[len(a) - middle :] == b[len(b) - middle :]:
            low = middle
        else:
            high = middle - 1
    return low
