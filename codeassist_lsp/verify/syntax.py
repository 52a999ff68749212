"""Syntax check of a suggestion in place: splice, reparse with tree-sitter, compare errors, cut back."""

from __future__ import annotations

import logging
import re
import time
from collections import Counter
from dataclasses import dataclass

from codeassist_lsp.context.languages import Language, new_parser

log = logging.getLogger(__name__)

# Documents larger than this are checked on a window around the cursor: a full parse of a
# 100 kB Python file costs ~28 ms here, over the whole inline budget.
WINDOW_BYTES = 16_000
# Parses spent cutting one candidate back; each incremental reparse costs well under 1 ms.
MAX_CUT_ATTEMPTS = 16
# Time for cutting back; past it the candidate is dropped (never shown unverified).
CUT_BUDGET_S = 0.025
# This many ERROR nodes near the cursor before the splice means the code there is too broken (or
# parsed with the wrong grammar, e.g. a C++ header taken for C) for a comparison to mean anything.
# Only errors near the cursor count: a broken macro 100 lines away says nothing about this spot.
TOO_BROKEN_ERRORS = 6
TOO_BROKEN_LINES = 30
_TOKEN = re.compile(r"\w+|\s+|.", re.DOTALL)
# What closes a block opened at the end of a suggestion, so "incomplete but valid" can be told
# from "broken": a suggestion may end with `{` whose body the user writes next.
_CLOSERS = {"{": "}", "(": ")", "[": "]"}
_CLOSING_MISSING = {"MISSING }", "MISSING )", "MISSING ]", "MISSING end", "MISSING ;"}


@dataclass(frozen=True)
class SyntaxResult:
    """Outcome of the syntax check: the (possibly cut) text, and what happened."""

    text: str
    status: str  # "ok" | "cut" | "dropped" | "unchecked"
    reason: str = ""
    attempts: int = 0


@dataclass(frozen=True)
class _Error:
    kind: str  # "ERROR" or the type of a MISSING node
    start: int
    end: int


def _collect_errors(tree) -> list[_Error]:  # type: ignore[no-untyped-def]
    """Every ERROR and MISSING node of a tree; subtrees without errors are skipped."""
    found: list[_Error] = []
    stack = [tree.root_node]
    while stack:
        node = stack.pop()
        if node.is_missing:
            found.append(_Error("MISSING " + node.type, node.start_byte, node.end_byte))
        elif node.type == "ERROR":
            found.append(_Error("ERROR", node.start_byte, node.end_byte))
        if node.has_error:
            stack.extend(node.children)
    return found


def _window(document: bytes, offset: int) -> tuple[int, int]:
    """A byte window [start, end) around offset, cut at top-level line starts when the file is big."""
    if len(document) <= WINDOW_BYTES:
        return 0, len(document)
    # Edges go to lines that start at column 0 with a word character: declarations begin there
    # in every language we support, so the window rarely cuts a construct (a huge literal may
    # push the edge further out; that costs parse time, not correctness).
    top_level = re.compile(rb"\n(?=[A-Za-z_@#])")
    want_start = max(0, offset - WINDOW_BYTES * 2 // 3)
    start = 0
    for match in top_level.finditer(document, max(0, want_start - 2 * WINDOW_BYTES), want_start + 1):
        start = match.end()
    want_end = min(len(document), offset + WINDOW_BYTES // 3)
    match = top_level.search(document, want_end, want_end + 2 * WINDOW_BYTES)
    end = match.start() + 1 if match else len(document)
    return start, end


class SpliceChecker:
    """Checks candidate insertions at one offset against the document without them."""

    def __init__(self, language: Language, document: bytes, offset: int) -> None:
        self.language = language
        self.parser = new_parser(language)
        lo, hi = _window(document, offset)
        self.before = document[lo:hi]
        self.offset = offset - lo
        self.tree = self.parser.parse(self.before)
        self.before_errors = _collect_errors(self.tree) if self.tree is not None else []
        self.inserted = 0  # bytes of candidate currently spliced into self.tree
        self.current = b""
        self.parses = 1
        # An error that touches the cursor means the user is mid-construct: the document is
        # already incomplete there, and a candidate that leaves it no worse is acceptable.
        # Where the code ends: errors from here on are "not written yet", not "written wrong".
        self.end_of_code = len(self.before.rstrip())
        self.incomplete_at_end = any(e.end >= self.end_of_code for e in self.before_errors)
        floor = len(self.before[: self.offset].rstrip())
        self.broken_at_cursor = any(
            e.kind == "ERROR" and e.start <= self.offset and e.end >= floor for e in self.before_errors
        )

    def errors_near_cursor(self, lines: int) -> int:
        """ERROR nodes before the splice that overlap the `lines` lines either side of the cursor."""
        lo = self.offset
        for _ in range(lines + 1):
            lo = self.before.rfind(b"\n", 0, lo)
            if lo < 0:
                break
        hi = self.offset
        for _ in range(lines):
            hi = self.before.find(b"\n", hi + 1)
            if hi < 0:
                hi = len(self.before)
                break
        return sum(e.kind == "ERROR" and e.end >= lo and e.start <= hi for e in self.before_errors)

    def _reparse(self, candidate: bytes) -> list[_Error] | None:
        """Reparse incrementally with candidate spliced in; None when the parse failed."""
        if self.tree is None:
            return None
        old_end = self.offset + self.inserted
        new_end = self.offset + len(candidate)
        old_text = self.before[: self.offset] + self.current + self.before[self.offset :]
        text = self.before[: self.offset] + candidate + self.before[self.offset :]
        self.tree.edit(
            start_byte=self.offset,
            old_end_byte=old_end,
            new_end_byte=new_end,
            start_point=_point(text, self.offset),
            old_end_point=_point(old_text, old_end),
            new_end_point=_point(text, new_end),
        )
        try:
            tree = self.parser.parse(text, self.tree)
        except Exception as error:  # a grammar bug or the time limit: report, do not crash
            log.warning("tree-sitter reparse failed for %s: %s", self.language.name, error)
            self.tree = None
            return None
        self.parses += 1
        self.tree = tree
        self.inserted = len(candidate)
        self.current = candidate
        return _collect_errors(tree) if tree is not None else None

    def introduces_errors(self, candidate: bytes) -> bool | None:
        """True when candidate adds syntax errors to the document; None when it cannot be told."""
        after = self._reparse(candidate)
        if after is None:
            return None
        return self._worse(after, len(candidate))

    def _worse(self, after: list[_Error], inserted: int) -> bool:
        # MISSING nodes sit right after the last real token, wherever trailing whitespace ends,
        # so they are matched by kind alone; ERROR nodes by kind and (shifted) start.
        pool: Counter[tuple[str, int]] = Counter()
        for error in self.before_errors:
            if error.kind != "ERROR":
                pool[(error.kind, -1)] += 1
            elif error.start >= self.offset:
                pool[(error.kind, error.start + inserted)] += 1
            else:
                pool[(error.kind, error.start)] += 1
        end_of_code = self.end_of_code + inserted
        for error in after:
            key = (error.kind, -1 if error.kind != "ERROR" else error.start)
            if pool[key] > 0:
                pool[key] -= 1
            elif error.kind == "ERROR" and error.start == self.offset + inserted and pool[("ERROR", self.offset)] > 0:
                pool[("ERROR", self.offset)] -= 1
            elif error.kind == "ERROR" and error.start < self.offset and self.broken_at_cursor:
                continue  # the construct the user is typing was already broken; it only grew
            elif error.kind in _CLOSING_MISSING and error.start >= end_of_code and self.incomplete_at_end:
                continue  # a block still open at the end of a document that was already open there
            else:
                return True
        return False

    def accepts(self, candidate: str) -> bool | None:
        """True when candidate, or candidate with its last opened block closed, adds no error."""
        data = candidate.encode("utf-8")
        worse = self.introduces_errors(data)
        if worse is None or not worse:
            return None if worse is None else True
        closer = self._closer(candidate)
        if closer is None:
            return False
        worse = self.introduces_errors(data + closer.encode("utf-8"))
        return None if worse is None else not worse

    def _closer(self, candidate: str) -> str | None:
        stripped = candidate.rstrip()
        if not stripped:
            return None
        last = stripped[-1]
        if last == ":" and ":" in self.language.block_openers:
            line = stripped.rsplit("\n", 1)[-1]
            prefix_line = self.before[: self.offset].rsplit(b"\n", 1)[-1].decode("utf-8", "replace")
            if "\n" not in stripped:
                line = prefix_line + line
            indent = line[: len(line) - len(line.lstrip())]
            return "\n" + indent + "    pass\n"
        if last in _CLOSERS and last in self.language.block_openers:
            return "\n" + _CLOSERS[last]
        return None


def _point(data: bytes, offset: int) -> tuple[int, int]:
    row = data.count(b"\n", 0, offset)
    column = offset - (data.rfind(b"\n", 0, offset) + 1)
    return row, column


def _line_prefixes(text: str) -> list[str]:
    """Prefixes of text that end at a line end, longest first (excluding text itself)."""
    cuts = [index for index, char in enumerate(text) if char == "\n"]
    return [text[:index] for index in reversed(cuts)]


def _token_prefixes(text: str, start: int) -> list[str]:
    """Prefixes of text that end at a token boundary after start, longest first."""
    bounds = [match.end() for match in _TOKEN.finditer(text, start)]
    return [text[:end] for end in reversed(bounds[:-1])]


def check_syntax(language: Language | None, document: str, offset: int, suggestion: str) -> SyntaxResult:
    """Splice suggestion at offset and cut it back to its longest prefix that adds no syntax error."""
    if language is None:
        return SyntaxResult(suggestion, "unchecked", "syntax not checked: unknown language")
    try:
        checker = SpliceChecker(language, document.encode("utf-8"), len(document[:offset].encode("utf-8")))
    except Exception as error:  # grammar missing from the bundle, parser failure
        log.warning("syntax check unavailable for %s: %s", language.name, error)
        return SyntaxResult(suggestion, "unchecked", f"syntax not checked: {error}")
    if checker.tree is None:
        return SyntaxResult(suggestion, "unchecked", "syntax not checked: parse failed")
    if checker.errors_near_cursor(TOO_BROKEN_LINES) >= TOO_BROKEN_ERRORS:
        return SyntaxResult(suggestion, "unchecked", "syntax not checked: document does not parse around the cursor")
    deadline = time.perf_counter() + CUT_BUDGET_S
    verdict = checker.accepts(suggestion)
    if verdict is None:
        return SyntaxResult(suggestion, "unchecked", "syntax not checked: reparse failed", checker.parses)
    if verdict:
        return SyntaxResult(suggestion, "ok", "", checker.parses)
    # Line-wise: keep whole lines while they parse; then token-wise inside the first bad line.
    good_lines = ""
    for prefix in _line_prefixes(suggestion):
        if checker.parses > MAX_CUT_ATTEMPTS or time.perf_counter() > deadline:
            break
        if prefix.strip() and checker.accepts(prefix):
            good_lines = prefix
            break
    first_bad_end = suggestion.find("\n", len(good_lines) + 1)
    bad_line_text = suggestion if first_bad_end < 0 else suggestion[:first_bad_end]
    best = good_lines
    for prefix in _token_prefixes(bad_line_text, len(good_lines)):
        if checker.parses > MAX_CUT_ATTEMPTS or len(prefix) <= len(good_lines) or time.perf_counter() > deadline:
            break
        if prefix.strip() and prefix.rstrip() != good_lines.rstrip() and checker.accepts(prefix):
            best = prefix
            break
    if best.rstrip() != best and checker.accepts(best.rstrip()):
        best = best.rstrip()
    if not best.strip():
        return SyntaxResult("", "dropped", "introduces syntax errors; no valid prefix", checker.parses)
    return SyntaxResult(best, "cut", f"cut from {len(suggestion)} to {len(best)} chars: rest broke the parse", checker.parses)
