"""`codeassist stats`: acceptance by language, mode and confidence from the store, and the page."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from codeassist_lsp.cli import main
from codeassist_lsp.feedback.outcomes import Outcome, SuggestionFeatures
from codeassist_lsp.feedback.store import FeedbackStore


def test_stats_by_language_mode_and_confidence(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    store = FeedbackStore(tmp_path)
    cases = [("python", "line", -0.1, "accepted"), ("python", "line", -0.1, "typed"), ("python", "block", -1.2, "rejected"),
             ("go", "line", -0.5, "partial"), ("go", "line", -1.5, "rejected")]
    for n, (language, mode, mean, outcome) in enumerate(cases):
        store.record(Outcome(id=str(n), outcome=outcome, reason="x", shown_chars=10,
                             accepted_chars=10 if outcome in ("accepted", "typed") else 0,
                             features=SuggestionFeatures(language=language, mode=mode, mean_logprob=mean,
                                                         min_logprob=2 * mean, generated_tokens=4),
                             shown_at=time.time() - 86400 * (n % 2), decided_after_s=1.0))
    store.close()
    page = tmp_path / "page.html"
    assert main(["stats", "--directory", str(tmp_path), "--json", "--html", str(page)]) == 0
    stats = json.loads(capsys.readouterr().out)
    assert stats["total"]["shown"] == 5 and stats["total"]["accepted"] == 2
    assert stats["byLanguage"]["python"] == {"shown": 3, "accepted": 2, "partial": 0, "rejected": 1, "rate": 0.667,
                                             "acceptedChars": 20}
    assert stats["byMode"]["block"]["rate"] == 0.0
    assert stats["byConfidence"]["high (> -0.25)"]["accepted"] == 2
    assert len(stats["overTime"]) == 2
    assert "<svg" in page.read_text()
    assert main(["stats", "--directory", str(tmp_path)]) == 0
    assert "by language:" in capsys.readouterr().out


def test_stats_without_a_store_says_so(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["stats", "--directory", str(tmp_path / "none")]) == 1
    assert "no feedback recorded yet" in capsys.readouterr().err
