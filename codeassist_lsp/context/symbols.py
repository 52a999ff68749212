"""Definitions, imports and references of one file, from the per-language tree-sitter queries."""

from __future__ import annotations

import functools
import logging
from collections.abc import Iterable
from typing import Any

import attrs

from codeassist_lsp.context.languages import Language, load_query, parse

log = logging.getLogger(__name__)

# A definition is shown as its signature and a short body, never whole: this many lines at most.
SNIPPET_MAX_LINES = 14
SNIPPET_MAX_CHARS = 900
# Containers (classes, modules, ...) longer than the snippet limit are shown as a skeleton.
CONTAINER_KINDS = frozenset({"class", "struct", "interface", "trait", "module", "object", "enum", "type"})
SKELETON_MAX_MEMBERS = 16


@attrs.frozen
class Definition:
    """A named definition: where it is, its signature, and a short snippet to show the model."""

    name: str
    kind: str
    path: str
    line: int
    end_line: int
    signature: str
    snippet: str


@attrs.frozen
class Import:
    """One import statement: the module/file as written and the names it binds."""

    source: str
    names: tuple[str, ...]
    line: int


@attrs.frozen(slots=False)
class SymbolTable:
    """What one file defines and imports."""

    path: str
    definitions: tuple[Definition, ...] = ()
    imports: tuple[Import, ...] = ()
    package: str | None = None

    @functools.cached_property
    def _by_name(self) -> dict[str, list[Definition]]:
        by_name: dict[str, list[Definition]] = {}
        for definition in self.definitions:
            by_name.setdefault(definition.name, []).append(definition)
        return by_name

    def named(self, name: str) -> list[Definition]:
        """Definitions of `name` in this file."""
        return self._by_name.get(name, [])

    def __getstate__(self) -> dict[str, object]:
        # The by-name index is derived: keep it out of the on-disk cache.
        return {key: value for key, value in self.__dict__.items() if key != "_by_name"}


def _text(source: bytes, node: Any) -> str:
    return source[node.start_byte : node.end_byte].decode("utf-8", errors="replace")


def _first(capture: Any) -> Any:
    # Quantified captures come back as lists.
    return capture[0] if isinstance(capture, list) else capture


def _strip_quotes(text: str) -> str:
    text = text.strip()
    if len(text) >= 2 and text[0] in "\"'`<" and text[-1] in "\"'`>":
        return text[1:-1]
    return text


def _signature(lines: list[str]) -> str:
    """The header of a definition: its first line, continued while brackets are still open."""
    depth = 0
    taken: list[str] = []
    for line in lines[:6]:
        taken.append(line)
        depth += sum(line.count(c) for c in "([") - sum(line.count(c) for c in ")]")
        if depth <= 0:
            break
    return "\n".join(taken).rstrip()


def _ellipsis(language: Language, indent: str) -> str:
    if language.name == "python":
        return f"{indent}..."
    marker = language.line_comment or (language.block_comment[0] if language.block_comment else "")
    closer = f" {language.block_comment[1]}" if not language.line_comment and language.block_comment else ""
    return f"{indent}{marker} ...{closer}".rstrip()


def _indent_of(line: str) -> str:
    return line[: len(line) - len(line.lstrip(" \t"))]


def _shorten(language: Language, lines: list[str], members: list[tuple[int, str]]) -> str:
    """Signature plus a short body; long containers become a skeleton of member signatures."""
    body_indent = _indent_of(lines[1]) if len(lines) > 1 else "    "
    if len(lines) <= SNIPPET_MAX_LINES and sum(map(len, lines)) <= SNIPPET_MAX_CHARS:
        return "\n".join(lines)
    if members:
        header = _signature(lines).splitlines()
        kept = list(header)
        for _, member_line in members[:SKELETON_MAX_MEMBERS]:
            kept.append(member_line.rstrip())
        kept.append(_ellipsis(language, body_indent))
        return "\n".join(kept)
    kept = []
    used = 0
    for line in lines[: SNIPPET_MAX_LINES - 1]:
        if used + len(line) > SNIPPET_MAX_CHARS and kept:
            break
        kept.append(line)
        used += len(line) + 1
    kept.append(_ellipsis(language, body_indent))
    return "\n".join(kept)


def extract_symbols(language: Language, tree: Any, source: bytes, path: str) -> SymbolTable:
    """Run the definitions and imports queries of `language` over a parsed file."""
    imports: dict[int, tuple[str, list[str], int]] = {}
    import_ranges: list[tuple[int, int]] = []
    package: str | None = None
    import_query = load_query(language, "imports")
    if import_query is not None:
        for _, captures in import_query.matches(tree.root_node):
            if "package" in captures:
                package = _text(source, _first(captures["package"])).strip()
                continue
            statement = captures.get("import")
            if statement is None:
                continue  # a failed predicate leaves an empty match behind
            statement = _first(statement)
            source_node = captures.get("source")
            module = _strip_quotes(_text(source, _first(source_node))) if source_node is not None else ""
            entry = imports.setdefault(statement.id, (module, [], statement.start_point[0]))
            for key in ("alias", "name"):
                if key in captures:
                    entry[1].append(_text(source, _first(captures[key])))
                    break
            if module and not entry[0]:
                imports[statement.id] = (module, entry[1], entry[2])
            import_ranges.append((statement.start_byte, statement.end_byte))

    definitions: list[Definition] = []
    definition_query = load_query(language, "definitions")
    if definition_query is not None:
        text_lines: list[str] | None = None
        found: list[tuple[Any, Any, str]] = []
        seen: set[tuple[int, str]] = set()
        for _, captures in definition_query.matches(tree.root_node):
            kind_key = next((key for key in captures if key.startswith("definition.")), None)
            if kind_key is None or "name" not in captures:
                continue
            node = _first(captures[kind_key])
            name_node = _first(captures["name"])
            # `const x = require("y")` is an import, not a definition worth showing.
            if any(start <= node.start_byte and node.end_byte <= end for start, end in import_ranges):
                continue
            key = (node.id, _text(source, name_node))
            if key in seen:
                continue
            seen.add(key)
            found.append((node, name_node, kind_key.split(".", 1)[1]))
        if found:
            text_lines = source.decode("utf-8", errors="replace").split("\n")
        for node, name_node, kind in found:
            first, last = node.start_point[0], node.end_point[0]
            assert text_lines is not None
            lines = text_lines[first : last + 1]
            if lines:
                # The first line starts at the node, not at the line's start: keep the line's indentation.
                lines = [lines[0]] + lines[1:]
            members: list[tuple[int, str]] = []
            if kind in CONTAINER_KINDS and last - first + 1 > SNIPPET_MAX_LINES:
                members = sorted(
                    {
                        (other.start_point[0], text_lines[other.start_point[0]])
                        for other, _, _ in found
                        if other is not node
                        and first < other.start_point[0] <= last
                        and other.end_byte <= node.end_byte
                    }
                )
                members = _direct_members(members)
            snippet = _shorten(language, lines, members)
            definitions.append(
                Definition(
                    name=_text(source, name_node),
                    kind=kind,
                    path=path,
                    line=first,
                    end_line=last,
                    signature=_signature(lines).strip(),
                    snippet=snippet,
                )
            )
    return SymbolTable(
        path=path,
        definitions=tuple(definitions),
        imports=tuple(Import(module, tuple(names), line) for module, names, line in imports.values()),
        package=package,
    )


def _direct_members(members: list[tuple[int, str]]) -> list[tuple[int, str]]:
    """Keep only the least-indented members (a class's methods, not their nested helpers)."""
    if not members:
        return members
    depth = min(len(_indent_of(line)) for _, line in members)
    return [(line_no, line) for line_no, line in members if len(_indent_of(line)) == depth]


def symbols_of_text(language: Language, text: str, path: str) -> SymbolTable:
    """Parse text and extract its symbols; an unparsable text has none."""
    source = text.encode("utf-8")
    tree = parse(language, source)
    if tree is None:
        return SymbolTable(path=path)
    return extract_symbols(language, tree, source, path)


def references_in(language: Language, node: Any, source: bytes) -> list[tuple[str, str]]:
    """(name, kind) of every call/reference capture under `node`, in source order."""
    query = load_query(language, "calls")
    if query is None:
        return []
    found = []
    for captured, capture_name in query.captures(node):
        if capture_name.startswith("reference."):
            found.append((captured.start_byte, _text(source, captured), capture_name.split(".", 1)[1]))
    found.sort()
    return [(name, kind) for _, name, kind in found]


def unique_names(definitions: Iterable[Definition]) -> set[str]:
    """The set of names defined."""
    return {definition.name for definition in definitions}
