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


LINE = ("import os\n\n\ndef python_files(folder):\n    \"\"\"Names of the .py files in folder.\"\"\"\n"
        "    return [name for name in os.listdir(folder) if")


def test_a_line_shows_at_once_up_to_the_first_guess_and_the_rest_is_generated_on(model_path: Path) -> None:
    import math

    from codeassist_lsp.config import ModelSettings
    from codeassist_lsp.engine.base import CancelFlag, GenerationRequest, GenerationResult
    from codeassist_lsp.engine.llama import LlamaBackend
    from codeassist_lsp.engine.postprocess import line_stop, whole_words

    backend = LlamaBackend(model_path, ModelSettings())
    try:
        prompt = tuple(backend.tokenize(LINE, add_bos=True))

        def run(guess_below: float) -> tuple[list[GenerationResult], GenerationResult]:
            early: list[GenerationResult] = []
            request = GenerationRequest(prompt_tokens=prompt, max_tokens=24, stop_check=line_stop,
                                        budget_ms=60_000, partial_cut=whole_words, guess_below=guess_below)
            return early, backend.run(request, CancelFlag(), early.append)

        early, whole = run(0.9)
        # The rule, replayed on the whole generation: at the first token chosen with p < 0.9 after
        # which whole words are complete, the text before it shows.
        expected = None
        for index, (token, logprob) in enumerate(zip(whole.token_ids, whole.token_logprobs)):
            if math.exp(logprob) >= 0.9:
                continue
            before = b"".join(backend.token_bytes(t) for t in whole.token_ids[:index]).decode("utf-8", "ignore")
            at_word_end = not backend.token_bytes(token)[:1].decode("latin-1").isalnum()
            cut = whole_words(before + " " if at_word_end else before)
            if cut:
                expected = before[:min(cut, len(before))]
                break
        assert expected, ("the model was sure of every token here", whole.text, whole.token_logprobs)
        assert len(early) == 1 and early[0].finish_reason == "budget" and early[0].text == expected, (early, expected)
        assert whole.finish_reason == "stop" and whole.text.startswith(expected) and len(whole.text) > len(expected)
        # Gating reads the confidence of the tokens shown: not the guess the early part stops before,
        # nor the token holding the stop string after the whole line.
        for result in (early[0], whole):
            sizes = result.token_sizes
            assert sizes == [len(backend.token_bytes(t)) for t in whole.token_ids][:len(sizes)]
            assert len(sizes) == len(result.token_logprobs)
            shown = len(result.shown_logprobs())
            assert result.shown_logprobs() == result.token_logprobs[:shown] and shown < len(sizes)
            assert sum(sizes[:shown]) <= len(result.text.encode()) < sum(sizes[:shown + 1])

        unhurried, same = run(0.0)
        assert unhurried == [] and same.text == whole.text  # off: no early part, the same suggestion
    finally:
        backend.close()


def test_the_model_thread_decodes_nothing_until_the_caller_has_handled_an_answer(model_path: Path,
                                                                                 monkeypatch) -> None:
    """While the event loop shapes, verifies and gates an answer, the model thread leaves the cores to it."""
    import time

    from codeassist_lsp.config import parse_settings
    from codeassist_lsp.engine import worker
    from codeassist_lsp.errors import Cancelled

    monkeypatch.setattr(worker, "HANDOFF_WAIT_S", 600.0)  # only the caller (or a cancel) lets it go on
    settings: Settings = parse_settings({"model": {"path": str(model_path)}, "cache": {"enabled": False},
                                         "completion": {"debounceMs": 0, "blockBudgetMs": 1, "lineBudgetMs": 0,
                                                        "maxBlockLines": 3, "acceptanceThreshold": 0}})
    service = CompletionService(settings)
    try:
        service.wait_until_loaded()

        def answer(source: str, path: str):
            prepared = service.prepare(source, len(source), path=path, language_id="python")
            job = service.submit(prepared)
            assert job is not None
            return prepared, job, job.future.result(120)

        # How long the rest of a block takes when nothing holds it (complete() takes the whole answer).
        started = time.monotonic()
        service.complete(SOURCE, len(SOURCE), path="unheld.py", language_id="python")
        hold_s = max(1.0, 3 * (time.monotonic() - started))

        # An early answer: its rest waits until finish() has handled the early part.
        prepared, job, early = answer(SOURCE, "held.py")
        assert early.finish_reason == "budget", early
        time.sleep(hold_s)
        assert not job.final.done(), "the rest was generated while the caller still handled the early answer"
        service.finish(prepared, early)
        whole = job.final.result(120)
        assert whole.text.startswith(early.text) and whole.generated_tokens > early.generated_tokens

        # A whole answer: the next job (a prewarm) waits until finish() has handled it.
        prepared, job, result = answer(LINE, "line.py")
        assert result.finish_reason != "budget", result
        prewarm = service.prewarm(LINE + " name", len(LINE) + 5, path="line.py", language_id="python")
        assert prewarm is not None
        time.sleep(hold_s)
        assert not prewarm.done(), ("the model decoded the next job while the caller still handled an answer",
                                    prewarm.exception() if prewarm.done() else None)
        service.finish(prepared, result)
        prewarm.result(120)

        # A newer keystroke cancels a held rest at once, rather than after the wait.
        _, job, _ = answer(SOURCE, "cancelled.py")
        job.cancel("superseded")
        assert isinstance(job.final.exception(60), Cancelled)
    finally:
        service.close()
