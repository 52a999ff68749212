"""Per-language data (grammars/languages.toml) and safe tree-sitter parsing."""

from __future__ import annotations

import functools
import logging
import tomllib
import warnings
from pathlib import Path

import attrs

log = logging.getLogger(__name__)

GRAMMARS_DIR = Path(__file__).resolve().parents[2] / "grammars"
# A parse of user text is bounded: one grammar of the bundle is known to loop on tiny inputs.
PARSE_TIMEOUT_MICROS = 200_000


@attrs.frozen
class Language:
    """What we know about one language: how to recognise it, parse it and comment in it."""

    name: str
    grammar: str
    language_ids: tuple[str, ...]
    extensions: tuple[str, ...]
    line_comment: str | None = None
    block_comment: tuple[str, str] | None = None
    doc_style: str = "none"
    block_openers: tuple[str, ...] = ()
    block_nodes: tuple[str, ...] = ()


@functools.cache
def all_languages() -> dict[str, Language]:
    """Load every language of grammars/languages.toml, keyed by our own name."""
    with open(GRAMMARS_DIR / "languages.toml", "rb") as handle:
        table = tomllib.load(handle)
    languages = {}
    for name, entry in table.items():
        block_comment = entry.get("block_comment")
        languages[name] = Language(
            name=name,
            grammar=entry["grammar"],
            language_ids=tuple(entry["language_ids"]),
            extensions=tuple(entry["extensions"]),
            line_comment=entry.get("line_comment"),
            block_comment=tuple(block_comment) if block_comment else None,
            doc_style=entry.get("doc_style", "none"),
            block_openers=tuple(entry.get("block_openers", ())),
            block_nodes=tuple(entry.get("block_nodes", ())),
        )
    return languages


def language_for(language_id: str | None = None, path: str | None = None) -> Language | None:
    """Find the language of a document by its LSP languageId, else by its file name."""
    languages = all_languages().values()
    if language_id:
        for language in languages:
            if language_id in language.language_ids:
                return language
    if path:
        file_name = Path(path).name
        for language in languages:
            for ext in language.extensions:
                if file_name == ext or (ext.startswith(".") and file_name.endswith(ext)):
                    return language
    return None


@functools.cache
def _parser_factory(grammar: str):  # type: ignore[no-untyped-def]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        import tree_sitter_languages

        return tree_sitter_languages.get_language(grammar)


def new_parser(language: Language):  # type: ignore[no-untyped-def]
    """A tree-sitter parser for the language with a time limit; parsers are not thread-safe."""
    import tree_sitter

    parser = tree_sitter.Parser()
    parser.set_language(_parser_factory(language.grammar))
    parser.set_timeout_micros(PARSE_TIMEOUT_MICROS)
    return parser


def parse(language: Language, source: bytes, old_tree=None):  # type: ignore[no-untyped-def]
    """Parse source (optionally reusing an edited old tree); None when the parse timed out."""
    try:
        tree = new_parser(language).parse(source, old_tree) if old_tree else new_parser(language).parse(source)
    except Exception as error:  # a grammar bug must never take the server down
        log.warning("tree-sitter parse failed for %s: %s", language.name, error)
        return None
    if tree is None or tree.root_node is None:
        return None
    return tree


QUERY_KINDS = ("definitions", "imports", "calls")


def query_path(language: Language, kind: str) -> Path:
    """Where the tree-sitter query of one kind lives for a language (it may not exist)."""
    return GRAMMARS_DIR / "queries" / language.name / f"{kind}.scm"


@functools.cache
def load_query(language: Language, kind: str):  # type: ignore[no-untyped-def]
    """The compiled query of `kind` (definitions | imports | calls), or None if there is none."""
    path = query_path(language, kind)
    if not path.exists():
        return None
    try:
        return _parser_factory(language.grammar).query(path.read_text(encoding="utf-8"))
    except Exception as error:  # a broken query file must cost that feature only
        log.error("query %s does not compile: %s", path, error)
        return None


@functools.cache
def queries_fingerprint() -> str:
    """A hash of every query file, so caches of extracted symbols expire when queries change."""
    import hashlib

    digest = hashlib.sha256()
    for path in sorted((GRAMMARS_DIR / "queries").glob("*/*.scm")):
        digest.update(path.as_posix().encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()[:16]
