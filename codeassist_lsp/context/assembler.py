"""Build what the model sees around the cursor, within a token budget."""

from __future__ import annotations

import functools
import logging
import re
import threading
import time
from collections import OrderedDict
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import attrs

from codeassist_lsp.context.documents import Document, DocumentTrees
from codeassist_lsp.context.languages import Language, language_for, parse
from codeassist_lsp.context.resolve import bound_names, implicit_neighbours, resolve_import
from codeassist_lsp.context.symbols import Definition, SymbolTable, extract_symbols, references_in, symbols_of_text
from codeassist_lsp.context.tokens import TokenCounter
from codeassist_lsp.context.workspace import WorkspaceIndex

log = logging.getLogger(__name__)

# The design's split of the immediate-context budget: most of it before the cursor.
PREFIX_SHARE = 0.7
# Below this many characters per budget token, a text is counted whole before cutting it.
_WHOLE_COUNT_CHARS_PER_TOKEN = 8
# No token of a code model's vocabulary is longer than this (runs of spaces are the longest): a
# line longer than this many characters per budget token cannot fit, so a minified megabyte line
# is cut without being counted (tokenising it took seconds).
_MAX_TOKEN_CHARS = 64


@attrs.frozen
class Snippet:
    """A piece of related code shown to the model ahead of the file (a definition, an open file)."""

    path: str
    text: str
    kind: str  # "definition" | "open_file" | "recent_edit"
    name: str = ""  # the symbol a definition snippet defines
    line: int = 0  # 0-based first line of the snippet in its file


@attrs.frozen
class AssembledContext:
    """The prompt material for one cursor: what comes before, after, and related snippets."""

    path: str
    language: Language | None
    prefix: str
    suffix: str
    snippets: tuple[Snippet, ...] = ()
    report: dict[str, float | int | str] = attrs.field(factory=dict)


def _take_lines_backward(text: str, budget: int, count_tokens: TokenCounter) -> str:
    """The longest tail of whole lines of text (plus the cursor's partial line) within budget."""
    # Counting a whole long file costs more than walking back the few lines that fit.
    if len(text) <= _WHOLE_COUNT_CHARS_PER_TOKEN * budget and count_tokens(text) <= budget:
        return text
    cursor_line_start = text.rfind("\n") + 1
    kept = text[cursor_line_start:]
    if len(kept) > _MAX_TOKEN_CHARS * budget:
        return kept[-_WHOLE_COUNT_CHARS_PER_TOKEN * budget:]  # a minified line's tail, about the budget's worth
    used = count_tokens(kept)
    end = cursor_line_start
    while end > 0:
        start = text.rfind("\n", 0, end - 1) + 1
        if end - start > _MAX_TOKEN_CHARS * (budget - used):
            break
        cost = count_tokens(text[start:end])
        if used + cost > budget:
            break
        used += cost
        end = start
    return text[end:]


def _take_lines_forward(text: str, budget: int, count_tokens: TokenCounter) -> str:
    """The longest head of whole lines of text within budget."""
    if len(text) <= _WHOLE_COUNT_CHARS_PER_TOKEN * budget and count_tokens(text) <= budget:
        return text
    used = 0
    end = 0
    while end < len(text):
        next_end = text.find("\n", end)
        next_end = len(text) if next_end < 0 else next_end + 1
        if next_end - end > _MAX_TOKEN_CHARS * (budget - used):
            break
        cost = count_tokens(text[end:next_end])
        if used + cost > budget:
            break
        used += cost
        end = next_end
    return text[:end]


def assemble_context(
    text: str,
    offset: int,
    *,
    path: str,
    language: Language | None,
    budget_tokens: int,
    count_tokens: TokenCounter,
    snippets: Sequence[Snippet] = (),
) -> AssembledContext:
    """Cut the document around `offset` (a str index) at line boundaries, ~70/30 before/after."""
    started = time.perf_counter()
    prefix_budget = int(budget_tokens * PREFIX_SHARE)
    prefix = _take_lines_backward(text[:offset], prefix_budget, count_tokens)
    suffix_budget = budget_tokens - count_tokens(prefix)
    suffix = _take_lines_forward(text[offset:], max(0, suffix_budget), count_tokens)
    report: dict[str, float | int | str] = {
        "prefix_chars": len(prefix),
        "suffix_chars": len(suffix),
        "immediate_ms": round((time.perf_counter() - started) * 1000, 3),
    }
    return AssembledContext(path, language, prefix, suffix, tuple(snippets), report)


# ---------------------------------------------------------------------------------------------
# Related definitions and open files (the design's priorities 2 and 3).
# ---------------------------------------------------------------------------------------------

# Share of the whole budget the immediate context may take; the rest goes to related code.
IMMEDIATE_SHARE = 0.6
# Of what is left after the immediate context, what stays reserved for other open files.
OPEN_FILES_SHARE = 0.25
# How far around the cursor identifiers count as "used near the cursor".
NEAR_LINES_BEFORE = 40
NEAR_LINES_AFTER = 6
MAX_NAMES_CONSIDERED = 80
# How much a definition's origin says about it being the one meant (times the name's score).
BOUND_BONUS = 1.0
SAME_FILE_WEIGHT = 3.0
WORKSPACE_SAME_DIR_WEIGHT = 1.5
WORKSPACE_WEIGHT = 0.6
IMPLICIT_WEIGHT = 3.5
IMPORTED_WEIGHT = 4.0
OUTLINE_SCORE = 0.25
IMPORTED_UNUSED_WEIGHT = 1.5
IMPORTED_USED_WEIGHT = 0.5
MAX_DEFINITION_SNIPPETS = 12
MAX_OUTLINE_LINES = 24
OPEN_FILE_CHUNK_LINES = 20
MIN_SIMILARITY = 0.05

_NEWLINE = re.compile("\n")
_IDENTIFIER = re.compile(r"[A-Za-z_$][A-Za-z0-9_$]*")
# Words that are keywords or builtins in most of our languages: never worth a lookup.
_COMMON_WORDS = frozenset(
    """
    if else elif for while do return def class function fn func let const var val import from as
    in is not and or new this self super true false True False None null nil undefined void int
    float double char bool boolean string str long short unsigned signed static public private
    protected final abstract async await yield try except catch finally throw throws raise with
    pass break continue switch case default struct enum interface type typeof instanceof package
    module use mod pub impl trait where match end then begin local require include extends
    implements export go defer chan map range select lambda print len list dict set tuple object
    auto register extern sizeof typedef goto inline volatile override virtual template typename
    namespace using operator friend delete elif unless until loop crate ref mut move dyn
    """.split()
)


def _IDENTIFIER_BOUNDARY(name: str) -> re.Pattern[str]:
    return _word_pattern(name)


@functools.lru_cache(maxsize=4096)
def _word_pattern(name: str) -> re.Pattern[str]:
    return re.compile(r"(?<![A-Za-z0-9_$])" + re.escape(name) + r"(?![A-Za-z0-9_$])")


def _line_end_offset(text: str, line: int) -> int:
    """The str offset of the end of 0-based `line` (len(text) past the end)."""
    if line < 0:
        return 0
    match = None
    for match in _NEWLINE.finditer(text):
        line -= 1
        if line < 0:
            return match.end()
    return len(text)


_PROSE_NODE_WORDS = ("comment", "string", "heredoc")


def _without_prose(text: str, start: int, end: int, tree: Any) -> str:
    """text[start:end] with comments and string literals blanked: their words are not code uses."""
    if tree is None or start >= end:
        return text[start:end]
    start_byte = len(text[:start].encode("utf-8"))
    end_byte = start_byte + len(text[start:end].encode("utf-8"))
    window = bytearray(text[start:end].encode("utf-8"))
    stack = [tree.root_node]
    while stack:
        node = stack.pop()
        if node.end_byte <= start_byte or node.start_byte >= end_byte:
            continue
        if any(word in node.type for word in _PROSE_NODE_WORDS):
            low = max(node.start_byte, start_byte) - start_byte
            high = min(node.end_byte, end_byte) - start_byte
            window[low:high] = b" " * (high - low)
            continue
        stack.extend(node.children)
    return window.decode("utf-8", errors="replace")


def identifiers(text: str) -> list[str]:
    """Identifier-like words of text, in order (language-agnostic, tolerant of broken code)."""
    return _IDENTIFIER.findall(text)


def jaccard(a: set[str], b: set[str]) -> float:
    """|a ∩ b| / |a ∪ b|, 0 for two empty sets."""
    if not a or not b:
        return 0.0
    return len(a & b) / len(a | b)


def render_snippet(snippet: Snippet, language: Language | None) -> str:
    """A snippet as shown to the model: a comment naming its file, then the code."""
    marker = "#"
    if language is not None:
        if language.line_comment:
            marker = language.line_comment
        elif language.block_comment:
            return f"{language.block_comment[0]} {snippet.path} {language.block_comment[1]}\n{snippet.text}\n"
    return f"{marker} {snippet.path}\n{snippet.text}\n"


def render_prompt_prefix(context: AssembledContext) -> str:
    """Snippets (definitions first, then open files) followed by the code before the cursor."""
    parts = [render_snippet(snippet, context.language) for snippet in context.snippets]
    return "".join(part + "\n" for part in parts) + context.prefix


@attrs.frozen
class _Candidate:
    definition: Definition
    score: float


class ContextAssembler:
    """Assembles immediate context, related definitions and similar open-file regions in budget."""

    def __init__(
        self,
        workspace_index: WorkspaceIndex | None = None,
        open_documents: DocumentTrees | None = None,
        *,
        root: str | Path | None = None,
        include_dirs: Sequence[str | Path] = (),
        immediate_share: float = IMMEDIATE_SHARE,
        open_files_share: float = OPEN_FILES_SHARE,
    ) -> None:
        self.workspace_index = workspace_index
        self.open_documents = open_documents
        self.root = Path(root) if root else (workspace_index.root if workspace_index else None)
        self.include_dirs = tuple(Path(d) for d in include_dirs)
        self.immediate_share = immediate_share
        self.open_files_share = open_files_share
        self._lock = threading.Lock()
        # Symbol tables of the edited documents, keyed by (path, version or text hash).
        self._document_symbols: OrderedDict[tuple[str, object], SymbolTable] = OrderedDict()
        # Symbol tables of imported files not in the index, keyed by (path, mtime, size).
        self._file_symbols: OrderedDict[tuple[str, int, int], SymbolTable] = OrderedDict()
        self._resolved: OrderedDict[tuple[str, str, tuple[str, ...]], tuple[Path, ...]] = OrderedDict()
        self._chunk_words: OrderedDict[tuple[str, int], list[tuple[int, int, set[str]]]] = OrderedDict()

    # ----- public entry point ------------------------------------------------------------------
    def assemble(
        self,
        text: str,
        offset: int,
        *,
        path: str,
        language: Language | None,
        budget_tokens: int,
        count_tokens: TokenCounter,
        version: int | None = None,
        tree: Any = None,
    ) -> AssembledContext:
        """Context for a cursor at str offset `offset` of `text`, within `budget_tokens`."""
        started = time.perf_counter()
        if tree is None and self.open_documents is not None and language is not None:
            # The server keeps the edited document's tree current on didChange: reuse it.
            document = self.open_documents.get(path)
            if document is not None and (document.version == version if version is not None else document.text == text):
                tree = document.tree
                version = document.version
        immediate = assemble_context(
            text, offset, path=path, language=language,
            budget_tokens=int(budget_tokens * self.immediate_share), count_tokens=count_tokens,
        )
        report: dict[str, float | int | str] = dict(immediate.report)
        used = count_tokens(immediate.prefix) + count_tokens(immediate.suffix)
        report["immediate_tokens"] = used
        remaining = budget_tokens - used
        other_documents = self._other_documents(path)
        definitions_budget = remaining - (int(remaining * self.open_files_share) if other_documents else 0)
        snippets: list[Snippet] = []

        step = time.perf_counter()
        definition_snippets: list[Snippet] = []
        if language is not None and definitions_budget > 0:
            try:
                definition_snippets = self._related_definitions(
                    text, offset, path, language, immediate, definitions_budget, count_tokens, version, tree
                )
            except Exception:  # context is best effort: a bug here must not cost the completion
                log.exception("related definitions failed for %s", path)
        definitions_tokens = sum(count_tokens(render_snippet(s, language)) for s in definition_snippets)
        snippets += definition_snippets
        report["definitions"] = ",".join(s.name for s in definition_snippets)
        report["definitions_tokens"] = definitions_tokens
        report["definitions_ms"] = round((time.perf_counter() - step) * 1000, 3)

        step = time.perf_counter()
        open_budget = budget_tokens - used - definitions_tokens
        open_snippets: list[Snippet] = []
        if other_documents and open_budget > 0:
            open_snippets = self._similar_regions(text, offset, other_documents, open_budget, count_tokens, language)
        snippets += open_snippets
        report["open_files"] = ",".join(f"{s.path}:{s.line}" for s in open_snippets)
        report["open_files_tokens"] = sum(count_tokens(render_snippet(s, language)) for s in open_snippets)
        report["open_files_ms"] = round((time.perf_counter() - step) * 1000, 3)
        report["total_ms"] = round((time.perf_counter() - started) * 1000, 3)
        log.debug("assembled context for %s: %s", path, report)
        return AssembledContext(path, language, immediate.prefix, immediate.suffix, tuple(snippets), report)

    # ----- definitions ---------------------------------------------------------------------------
    def _wanted_names(self, text: str, offset: int, language: Language, table: SymbolTable,
                      tree: Any, source: bytes | None) -> list[tuple[str, float]]:
        """Names used near the cursor and in the enclosing scope, most relevant first."""
        window_start = offset
        for _ in range(NEAR_LINES_BEFORE):
            window_start = text.rfind("\n", 0, max(0, window_start - 1)) + 1
            if window_start == 0:
                break
        window_end = offset
        for _ in range(NEAR_LINES_AFTER):
            next_newline = text.find("\n", window_end + 1)
            if next_newline < 0:
                window_end = len(text)
                break
            window_end = next_newline
        scores: dict[str, float] = {}
        before = identifiers(_without_prose(text, window_start, offset, tree))
        count = len(before)
        for index, word in enumerate(before):
            # Closer to the cursor weighs more; repeated use adds up.
            scores[word] = scores.get(word, 0.0) + 1.0 + 2.0 * (index + 1) / max(1, count)
        for word in identifiers(_without_prose(text, offset, window_end, tree)):
            scores[word] = scores.get(word, 0.0) + 0.5
        if tree is not None and source is not None:
            scope = _enclosing_scope(tree, len(text[:offset].encode("utf-8")), language)
            if scope is not None and scope.end_byte - scope.start_byte < 40_000:
                for name, kind in references_in(language, scope, source):
                    scores[name] = scores.get(name, 0.0) + (1.0 if kind in ("call", "type") else 0.3)
        # Names a file imports but has not used yet are what the next lines are likely to use.
        last_import_line = max((item.line for item in table.imports), default=-1)
        used_after_imports = set(identifiers(text[_line_end_offset(text, last_import_line):])) if table.imports else set()
        for item in table.imports:
            for name in bound_names(language, item):
                unused = name not in used_after_imports
                scores[name] = scores.get(name, 0.0) + (IMPORTED_UNUSED_WEIGHT if unused else IMPORTED_USED_WEIGHT)
        for word in list(scores):
            if word in _COMMON_WORDS or len(word) < 2:
                del scores[word]
        ranked = sorted(scores, key=lambda word: -scores[word])[:MAX_NAMES_CONSIDERED]
        return [(word, scores[word]) for word in ranked]

    def _symbols_for_document(self, text: str, path: str, language: Language, version: int | None,
                              tree: Any) -> tuple[SymbolTable, Any, bytes]:
        source = text.encode("utf-8")
        key: tuple[str, object] = (path, version if version is not None else hash(text))
        with self._lock:
            cached = self._document_symbols.get(key)
        if tree is None:
            tree = parse(language, source)
        if cached is not None:
            return cached, tree, source
        table = extract_symbols(language, tree, source, path) if tree is not None else SymbolTable(path=path)
        with self._lock:
            self._document_symbols[key] = table
            while len(self._document_symbols) > 256:
                self._document_symbols.popitem(last=False)
        return table, tree, source

    def _symbols_for_file(self, file_path: Path) -> SymbolTable | None:
        if self.workspace_index is not None:
            indexed = self.workspace_index.table(str(file_path))
            if indexed is not None:
                return indexed
        try:
            stat = file_path.stat()
        except OSError:
            return None
        if stat.st_size > 1_000_000:
            return None
        key = (str(file_path), stat.st_mtime_ns, stat.st_size)
        with self._lock:
            cached = self._file_symbols.get(key)
        if cached is not None:
            return cached
        file_language = language_for(None, file_path.name)
        if file_language is None:
            return None
        table = symbols_of_text(file_language, file_path.read_text(encoding="utf-8", errors="replace"), str(file_path))
        with self._lock:
            self._file_symbols[key] = table
            while len(self._file_symbols) > 512:
                self._file_symbols.popitem(last=False)
        return table

    def _imported_tables(self, table: SymbolTable, path: str, language: Language) -> list[tuple[SymbolTable, set[str], float, bool]]:
        """(symbols, names the import binds, weight, whole module in scope) for every file imported."""
        found: list[tuple[SymbolTable, set[str], float, bool]] = []
        seen: set[str] = set()
        for item in table.imports:
            key = (path, item.source, item.names)
            with self._lock:
                files = self._resolved.get(key)
            if files is None:
                files = tuple(resolve_import(language, item, path, self.root, table.package, self.include_dirs))
                with self._lock:
                    self._resolved[key] = files
                    while len(self._resolved) > 4096:
                        self._resolved.popitem(last=False)
            names = set(bound_names(language, item))
            for file_path in files:
                if str(file_path) in seen or str(file_path) == path:
                    continue
                seen.add(str(file_path))
                imported = self._symbols_for_file(file_path)
                if imported is not None:
                    # `import "pkg"`, `#include "x.h"`, `mod x;`: everything the file defines is in scope.
                    found.append((imported, names, IMPORTED_WEIGHT, not item.names))
        for neighbour in implicit_neighbours(language, path):
            if str(neighbour) not in seen:
                seen.add(str(neighbour))
                imported = self._symbols_for_file(neighbour)
                if imported is not None:
                    found.append((imported, set(), IMPLICIT_WEIGHT, True))
        return found

    def _related_definitions(self, text: str, offset: int, path: str, language: Language,
                             immediate: AssembledContext, budget: int, count_tokens: TokenCounter,
                             version: int | None, tree: Any) -> list[Snippet]:
        table, tree, source = self._symbols_for_document(text, path, language, version, tree)
        wanted = self._wanted_names(text, offset, language, table, tree, source)
        if not wanted:
            return []
        visible = immediate.prefix + immediate.suffix
        imported = self._imported_tables(table, path, language)
        cursor_line = text.count("\n", 0, offset)
        directory = str(Path(path).parent)
        chosen: list[Snippet] = []
        chosen_keys: set[tuple[str, int]] = set()
        used = 0
        ranked: list[tuple[float, Definition]] = []
        for name, name_score in wanted:
            candidates: list[_Candidate] = []
            for definition in table.named(name):
                if definition.line <= cursor_line <= definition.end_line:
                    continue  # the scope being edited is already in front of the model
                candidates.append(_Candidate(definition, SAME_FILE_WEIGHT))
            for imported_table, names, weight, _ in imported:
                for definition in imported_table.named(name):
                    candidates.append(_Candidate(definition, weight + (BOUND_BONUS if name in names else 0.0)))
            if self.workspace_index is not None and not candidates:
                for definition in self.workspace_index.lookup(name)[:64]:
                    if definition.path == path:
                        continue
                    same_dir = str(Path(definition.path).parent) == directory
                    candidates.append(_Candidate(definition, WORKSPACE_SAME_DIR_WEIGHT if same_dir else WORKSPACE_WEIGHT))
            if not candidates:
                continue
            best = max(candidates, key=lambda c: (c.score, -abs(len(c.definition.path) - len(path))))
            ranked.append((name_score * best.score, best.definition))
        # Same-package files (Go, JVM, C#) and whole-module imports put every top-level name in
        # scope: their signatures are a cheap outline of what the next line may call.
        outlined = {id(definition) for _, definition in ranked}
        for imported_table, _, _, whole_module in imported:
            if not whole_module:
                continue
            for definition in imported_table.definitions:
                if id(definition) not in outlined and definition.kind != "method" and not definition.snippet.startswith((" ", "\t")):
                    ranked.append((OUTLINE_SCORE, definition))
        ranked.sort(key=lambda item: -item[0])
        for priority, definition in ranked:
            key = (definition.path, definition.line)
            if key in chosen_keys or definition.signature in visible:
                continue
            choices = (definition.signature,) if priority == OUTLINE_SCORE else (definition.snippet, definition.signature)
            for text_choice in choices:
                snippet = Snippet(_display_path(definition.path, self.root), text_choice, "definition", definition.name, definition.line)
                cost = count_tokens(render_snippet(snippet, language))
                if used + cost <= budget:
                    chosen.append(snippet)
                    chosen_keys.add(key)
                    used += cost
                    break
            if len(chosen) >= MAX_DEFINITION_SNIPPETS + MAX_OUTLINE_LINES or budget - used < 8:
                break
        return chosen

    # ----- open files ----------------------------------------------------------------------------
    def _other_documents(self, path: str) -> list[Document]:
        if self.open_documents is None:
            return []
        return [
            document for document in self.open_documents.documents()
            if document.uri != path and _uri_path(document.uri) != path
        ]

    def _chunks(self, document: Document) -> list[tuple[int, int, set[str]]]:
        key = (document.uri, document.version)
        with self._lock:
            cached = self._chunk_words.get(key)
        if cached is not None:
            return cached
        lines = document.text.split("\n")
        chunks = []
        step = OPEN_FILE_CHUNK_LINES // 2
        for start in range(0, max(1, len(lines)), step):
            end = min(len(lines), start + OPEN_FILE_CHUNK_LINES)
            chunks.append((start, end, set(identifiers("\n".join(lines[start:end]))) - _COMMON_WORDS))
            if end == len(lines):
                break
        with self._lock:
            self._chunk_words[key] = chunks
            while len(self._chunk_words) > 128:
                self._chunk_words.popitem(last=False)
        return chunks

    def _similar_regions(self, text: str, offset: int, documents: list[Document], budget: int,
                         count_tokens: TokenCounter, language: Language | None) -> list[Snippet]:
        """Chunks of other open documents most similar (Jaccard of identifiers) to the cursor's surroundings."""
        start = offset
        for _ in range(OPEN_FILE_CHUNK_LINES):
            start = text.rfind("\n", 0, max(0, start - 1)) + 1
            if start == 0:
                break
        here = set(identifiers(text[start:offset])) - _COMMON_WORDS
        recent: dict[str, list[int]] = {}
        if self.open_documents is not None:
            for edit in self.open_documents.recent_edits:
                recent.setdefault(edit.uri, []).append(edit.offset)
        scored: list[tuple[float, Document, int, int]] = []
        for document in documents:
            edited_lines = [document.lines.line_of(min(o, len(document.text))) for o in recent.get(document.uri, [])]
            for chunk_start, chunk_end, words in self._chunks(document):
                score = jaccard(here, words)
                if any(chunk_start <= line < chunk_end for line in edited_lines):
                    score += 0.1  # recently edited regions are likely relevant to what comes next
                if score >= MIN_SIMILARITY:
                    scored.append((score, document, chunk_start, chunk_end))
        scored.sort(key=lambda item: -item[0])
        chosen: list[Snippet] = []
        taken: dict[str, list[tuple[int, int]]] = {}
        used = 0
        for score, document, chunk_start, chunk_end in scored:
            if any(s < chunk_end and chunk_start < e for s, e in taken.get(document.uri, [])):
                continue
            chunk_text = "\n".join(document.text.split("\n")[chunk_start:chunk_end])
            snippet = Snippet(_display_path(_uri_path(document.uri), self.root), chunk_text, "open_file", "", chunk_start)
            cost = count_tokens(render_snippet(snippet, language))
            if used + cost > budget:
                continue
            chosen.append(snippet)
            taken.setdefault(document.uri, []).append((chunk_start, chunk_end))
            used += cost
        return chosen


def _uri_path(uri: str) -> str:
    if uri.startswith("file://"):
        from urllib.parse import unquote, urlparse

        return unquote(urlparse(uri).path)
    return uri


def _display_path(path: str, root: Path | None) -> str:
    if root is not None:
        try:
            return Path(path).relative_to(root).as_posix()
        except ValueError:
            pass
    return path


_SCOPE_KINDS = ("function", "method", "class", "struct", "impl", "module", "object", "trait")


def _enclosing_scope(tree: Any, byte_offset: int, language: Language) -> Any:
    """The innermost function/class-like node around byte_offset, or None at top level."""
    node = tree.root_node.descendant_for_byte_range(byte_offset, byte_offset)
    while node is not None:
        if any(kind in node.type for kind in _SCOPE_KINDS) and node.parent is not None:
            return node
        node = node.parent
    return None
