"""The assembled prompt holds definitions from other files, within budget, in priority order."""

from __future__ import annotations

from pathlib import Path

import pytest

from codeassist_lsp.context.assembler import ContextAssembler, assemble_context, render_prompt_prefix
from codeassist_lsp.context.documents import DocumentTrees
from codeassist_lsp.context.languages import language_for
from codeassist_lsp.context.tokens import char_counter, tiktoken_counter
from codeassist_lsp.context.workspace import WorkspaceIndex

from .conftest import WORKSPACES

# (workspace, file, text the cursor is placed before, text of the definition in another file)
CROSS_FILE = [
    ("python", "shop/cart.py", "apply_discount(sum", "def apply_discount(price: float, percent: float) -> float:"),
    ("js", "src/cart.js", "applyDiscount(this", "export function applyDiscount(price, percent) {"),
    ("ts", "src/cart.ts", "applyDiscount(this", "export function applyDiscount(price: number, discount: Discount): number {"),
    ("go", "cart.go", "pricing.ApplyDiscount", "func ApplyDiscount(price float64, percent float64) float64 {"),
    ("rust", "src/cart.rs", "apply_discount(self", "pub fn apply_discount(price: f64, percent: f64) -> f64 {"),
    ("java", "src/main/java/com/acme/store/Cart.java", "Pricing.applyDiscount",
     "public static double applyDiscount(double price, double percent) {"),
    ("c", "src/cart.c", "apply_discount(sum", "double apply_discount(double price, double percent);"),
]


def _prompt_at(assembler: ContextAssembler, path: Path, marker: str, budget: int = 1500) -> str:
    text = path.read_text()
    offset = text.index(marker)
    # The file as typed so far: cut at the cursor, as when the name is about to be written.
    context = assembler.assemble(text[:offset], offset, path=str(path), language=language_for(None, path.name),
                                 budget_tokens=budget, count_tokens=char_counter)
    return render_prompt_prefix(context) + context.suffix


@pytest.mark.parametrize("workspace, file, marker, definition", CROSS_FILE, ids=[c[0] for c in CROSS_FILE])
def test_definition_from_an_imported_file_is_in_the_prompt(workspace: str, file: str, marker: str, definition: str) -> None:
    root = WORKSPACES / workspace
    path = root / file
    baseline = assemble_context(path.read_text()[: path.read_text().index(marker)], 0, path=str(path),
                                language=None, budget_tokens=1500, count_tokens=char_counter)
    assert definition not in baseline.prefix + baseline.suffix  # it really lives in another file
    # Resolution through the file's imports alone (no workspace index).
    assert definition in _prompt_at(ContextAssembler(root=root), path, marker)


@pytest.mark.parametrize("workspace, file, marker, definition", CROSS_FILE, ids=[c[0] for c in CROSS_FILE])
def test_definition_found_through_the_workspace_index(tmp_path: Path, workspace: str, file: str, marker: str,
                                                     definition: str) -> None:
    root = WORKSPACES / workspace
    index = WorkspaceIndex(root, cache_dir=tmp_path / "cache")
    index.build()
    assert definition in _prompt_at(ContextAssembler(index), root / file, marker)


def test_budget_is_respected_and_immediate_context_comes_first() -> None:
    root = WORKSPACES / "python"
    path = root / "shop" / "cart.py"
    text = path.read_text()
    offset = text.index("apply_discount(sum")
    counter = tiktoken_counter()
    for budget in (20, 60, 200, 1500):
        context = ContextAssembler(root=root).assemble(text, offset, path=str(path), language=language_for(None, path.name),
                                                       budget_tokens=budget, count_tokens=counter)
        report = context.report
        total = int(report["immediate_tokens"]) + int(report["definitions_tokens"]) + int(report["open_files_tokens"])
        assert total <= budget
        assert context.prefix.endswith("return ")  # the cursor's own line is always kept
    assert context.snippets and context.snippets[0].kind == "definition"


def test_unknown_language_gets_plain_text_context() -> None:
    text = "line one\nline two\nline three\n"
    context = ContextAssembler().assemble(text, text.index("two"), path="notes.txt-unknown", language=None,
                                          budget_tokens=100, count_tokens=char_counter)
    assert context.prefix == "line one\nline " and context.suffix == "two\nline three\n"
    assert context.snippets == ()


def test_similar_open_file_region_is_included() -> None:
    documents = DocumentTrees()
    unrelated = "\n".join(f"def helper_{i}(value):\n    return value * {i}\n" for i in range(40))
    related = "def parse_invoice(invoice_lines, tax_rate):\n    subtotal = sum(line.amount for line in invoice_lines)\n    return subtotal * (1 + tax_rate)\n"
    documents.open("file:///ws/unrelated.py", unrelated, "python")
    documents.open("file:///ws/invoice.py", related, "python")
    text = "def report(invoice_lines, tax_rate):\n    subtotal = "
    context = ContextAssembler(open_documents=documents).assemble(
        text, len(text), path="/ws/report.py", language=language_for("python"), budget_tokens=400,
        count_tokens=char_counter)
    open_files = [s for s in context.snippets if s.kind == "open_file"]
    assert open_files and open_files[0].path == "/ws/invoice.py"
    assert "parse_invoice" in open_files[0].text


def test_tiktoken_counter_is_the_offline_cl100k() -> None:
    count = tiktoken_counter()
    assert count("def apply_discount(price, percent):") == 7  # chars/4 would say 9
    assert count is not char_counter
