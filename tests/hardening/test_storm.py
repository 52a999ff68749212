"""Typing storm (issue 19): keys at 30 a second across five open documents in five languages, with a
suggestion request after every key, cancels, saves, closes, reopens and a settings change midway.

Correctness only: every request answered, no internal error, no suggestion for a version the server
already knew to be old, memory flat after warm-up, the model thread still answering at the end.
The long run with timings is benchmarks/stress_bench.py.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.hardening.stress import SentRequest, Storm, StormReport, TimedServer, find_stale, start_real_server
from tests.hardening.support import FAKE_OPTIONS, RESOLVE_CAPABILITIES

SEED = 19
RATE_PER_S = 30
RSS_GROWTH_LIMIT_MB = 50


def check(report: StormReport) -> None:
    """What every storm must show, whatever the engine."""
    assert report.unanswered == [], f"requests never answered: {report.unanswered[:10]}"
    assert report.errors == [], report.errors[:5]
    assert report.error_messages == [], report.error_messages[:5]
    assert report.stale == [], report.stale[:3]
    assert report.misplaced == [], report.misplaced[:3]
    assert report.last_request_answered, "the request after the storm got no answer: the model thread is stuck"
    assert report.completed > 0
    assert (report.saves, report.closes, report.reopens, report.configuration_changes) >= (1, 1, 1, 1)


@pytest.mark.model
def test_typing_storm_on_the_real_model(tmp_path: Path) -> None:
    server = start_real_server(tmp_path)
    try:
        report = Storm(server, edits=300, rate=RATE_PER_S, seed=SEED, warmup_edits=100).run()
        check(report)
        assert report.rss_growth_mb <= RSS_GROWTH_LIMIT_MB, report.as_dict()
        assert server.shutdown_and_exit() == 0
        assert server.violations == []
    finally:
        server.close()


def test_typing_storm_races_many_answers(tmp_path: Path) -> None:
    # The deterministic engine answers in ~100 ms (5 ms a character), so hundreds of suggestions are
    # in flight while the next keys arrive: the stale check is exercised, not just passed.
    server = TimedServer(tmp_path / "server.log", env={"CODEASSIST_FAKE_STEP_MS": "5"})
    try:
        server.initialize(FAKE_OPTIONS, {"textDocument": RESOLVE_CAPABILITIES})
        report = Storm(server, edits=600, rate=RATE_PER_S, seed=SEED, warmup_edits=200, settings=FAKE_OPTIONS).run()
        check(report)
        assert report.stale_checked >= 20, report.as_dict()
        assert server.shutdown_and_exit() == 0
        assert server.violations == []
    finally:
        server.close()


def test_stale_answers_are_told_by_the_order_of_responses() -> None:
    # seq 1: a request on x; seq 2: an edit of x; seq 3: a request on y.
    on_x = SentRequest(1, "textDocument/inlineCompletion", "x", 1, seq=1, sent_at=0.0, position={})
    on_y = SentRequest(2, "textDocument/inlineCompletion", "y", 1, seq=3, sent_at=0.0, position={})
    edits = {"x": [2], "y": []}
    # y's answer came first: the server had read x's edit when it wrote x's suggestion.
    assert find_stale([on_x, on_y], [on_x], edits, {2: 0, 1: 1}) == ([on_x], 1)
    # x's answer came first: it may have been written before the edit was read.
    assert find_stale([on_x, on_y], [on_x], edits, {1: 0, 2: 1}) == ([], 1)
    # y has no newer version: nothing to tell.
    assert find_stale([on_x, on_y], [on_y], edits, {2: 0, 1: 1}) == ([], 0)
