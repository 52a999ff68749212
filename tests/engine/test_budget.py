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
