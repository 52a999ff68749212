"""Every language's queries compile and find what its real sample defines, imports and calls."""

from __future__ import annotations

import pytest

from codeassist_lsp.context.languages import all_languages, language_for, load_query, parse, query_path
from codeassist_lsp.context.symbols import symbols_of_text

from .conftest import SAMPLE_FILES, SAMPLES

# SQL has no import statement to capture.
NO_IMPORTS = {"sql"}

# Per language: a definition, an import source and a call the sample is known to contain.
EXPECTED = {
    "python": ("LRUCache", "collections", "join"),
    "javascript": ("parseConfig", "./fs-utils.js", "readFile"),
    "typescript": ("Options", "./logger", "existsSync"),
    "tsx": ("Toolbar", "./button", "formatYear"),
    "java": ("Inventory", "com.example.store.model.Item", "mapToInt"),
    "go": ("NewInventory", "example.com/store/model", "Println"),
    "rust": ("Priced", "crate::model::Item", "collect"),
    "c": ("buffer_append", "buffer.h", "memcpy"),
    "cpp": ("total_area", "shape.hpp", "area"),
    "c_sharp": ("IPriced", "System.Collections.Generic", "WriteLine"),
    "ruby": ("Inventory", "model/item", "parse"),
    "php": ("format_total", "Store\\Model\\Item", "array_map"),
    "kotlin": ("emptyInventory", "com.example.store.model.Item", "sumOf"),
    "scala": ("Priced", "import store.model.Item", "filter"),
    "lua": ("encode", "store.utils", "setmetatable"),
    "bash": ("build_project", "./lib/common.sh", "make"),
    "haskell": ("emptyInventory", "Store.Model", "fromList"),
    "elixir": ("log_total", "Store.Model.Item", "info"),
    "ocaml": ("print_total", "Printf", "fold_left"),
    "r": ("total_price", "helpers.R", "group_by"),
    "julia": ("scaled", "model.jl", "sum"),
    "sql": ("expensive_items", None, "count"),
    "html": ("toolbar", "app.js", "button"),
    "css": (".toolbar", "theme.css", "rgb"),
}


def test_the_issue_languages_are_all_there() -> None:
    assert set(EXPECTED) <= set(all_languages())
    assert len(EXPECTED) >= 24


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_queries_compile(name: str) -> None:
    language = all_languages()[name]
    for kind in ("definitions", "imports", "calls"):
        if kind == "imports" and name in NO_IMPORTS:
            assert not query_path(language, kind).exists()
            continue
        assert load_query(language, kind) is not None, f"{name}/{kind}.scm missing or broken"


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_queries_capture_the_real_sample(name: str) -> None:
    path = SAMPLES / SAMPLE_FILES[name]
    language = language_for(None, path.name)
    assert language is not None and language.name == name
    text = path.read_text(encoding="utf-8")
    table = symbols_of_text(language, text, str(path))
    definition, import_source, call = EXPECTED[name]
    assert definition in {d.name for d in table.definitions}
    if import_source is not None:
        assert import_source in {item.source for item in table.imports}
    source = text.encode()
    tree = parse(language, source)
    calls = load_query(language, "calls")
    captured = {node.text.decode() for node, capture in calls.captures(tree.root_node) if capture.startswith("reference")}
    assert call in captured


def test_definition_snippets_are_short_and_start_with_the_signature() -> None:
    path = "/root/.pyenv/versions/3.11.7/lib/python3.11/json/decoder.py"
    language = language_for(None, path)
    text = open(path, encoding="utf-8").read()
    decoder = next(d for d in symbols_of_text(language, text, path).definitions if d.name == "JSONDecoder")
    assert decoder.snippet.startswith("class JSONDecoder(object):")
    # A long class is shown as a skeleton of its methods, not whole.
    assert "def raw_decode(self, s, idx=0):" in decoder.snippet
    assert len(decoder.snippet.splitlines()) < 20 < decoder.end_line - decoder.line
