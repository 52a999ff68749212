"""A block past its time budget: the complete lines show at once, the rest joins them for typed-ahead."""

from __future__ import annotations

from pathlib import Path

import pytest

from codeassist_lsp.config import Settings
from codeassist_lsp.service import CompletionService

pytestmark = pytest.mark.model

SOURCE = "class Point:\n    def __init__(self, x, y, z):\n        "


def test_block_shows_its_complete_lines_early_and_typed_ahead_gets_the_rest(model_path: Path) -> None:
    from codeassist_lsp.config import parse_settings

    settings: Settings = parse_settings({"model": {"path": str(model_path)}, "cache": {"disk": False},
                                         "completion": {"debounceMs": 0, "blockBudgetMs": 1, "maxBlockLines": 3}})
    service = CompletionService(settings)
    try:
        service.wait_until_loaded()
        prepared = service.prepare(SOURCE, len(SOURCE), path="point.py", language_id="python")
        assert prepared.gate.mode == "block"
        job = service.submit(prepared)
        assert job is not None
        early = job.future.result(120)
        assert early.finish_reason == "budget" and "\n" not in early.text.rstrip("\n"), early.text
        shown = service.finish(prepared, early)
        whole = service.finish_rest(prepared, job.final.result(120))
        assert shown.text and whole is not None, (shown.text, whole)
        assert whole.text.startswith(shown.text) and len(whole.text) > len(shown.text), (shown.text, whole.text)
        # The user types the first character of what shows: the answer is the rest of the whole block.
        typed = SOURCE + whole.text[0]
        ahead = service.prepare(typed, len(typed), path="point.py", language_id="python")
        assert ahead.typed_ahead == whole.text[1:]
    finally:
        service.close()
