"""Best-of-N samples generated side by side on the real embedded model: one batch per step, exact
greedy, reproducible samples, and a preempted batch that resumes where it stopped."""

from __future__ import annotations

import pytest

from codeassist_lsp.engine.base import CancelFlag, GenerationRequest, Sampling
from codeassist_lsp.engine.llama import LlamaBackend

pytestmark = pytest.mark.model

PROMPT = "def fibonacci(n):\n    \"\"\"Return the n-th Fibonacci number.\"\"\"\n"
SAMPLES = (Sampling(), Sampling(temperature=0.8, seed=1), Sampling(temperature=0.8, seed=2))


def _request(backend: LlamaBackend, **kwargs) -> GenerationRequest:  # type: ignore[no-untyped-def]
    fields = {"max_tokens": 24, "kind": "generation", "want_logprobs": True, **kwargs}
    return GenerationRequest(prompt_tokens=tuple(backend.tokenize(PROMPT, add_bos=True)), **fields)


def test_side_by_side_greedy_equals_alone_and_samples_repeat(backend: LlamaBackend) -> None:
    backend.run(_request(backend), CancelFlag())
    # Now the prompt is cached and its last token is decoded alone, as in the side-by-side batch (a
    # prompt evaluated in one batch gives its last token slightly different logits).
    alone = backend.run(_request(backend), CancelFlag())
    first = backend.run(_request(backend, samples=SAMPLES), CancelFlag())
    again = backend.run(_request(backend, samples=SAMPLES), CancelFlag())
    assert len(first.samples) == 3
    assert first.samples[0].text == alone.text  # batch-invariant attention: a batch of samples changes no logits
    assert [s.text for s in first.samples] == [s.text for s in again.samples]  # seeded samplers
    assert len({s.text for s in first.samples}) > 1  # the samples are samples
    for sample in first.samples:
        assert sample.finish_reason in ("stop", "length", "eog")
        assert 0 < len(sample.token_ids) <= 24
        assert len(sample.token_logprobs) >= len(sample.token_ids)
    assert first.generated_tokens == sum(s.generated_tokens for s in first.samples)
    assert backend._sample_cached == {}  # the samples' KV sequences are freed once all are done


def test_a_preempted_batch_resumes_where_it_stopped(backend: LlamaBackend) -> None:
    whole = backend.run(_request(backend, samples=SAMPLES, max_tokens=32), CancelFlag())
    flag = CancelFlag()
    calls = {"n": 0}

    def preempt_after_a_few_tokens(text: str) -> int | None:
        calls["n"] += 1
        if calls["n"] == 15:  # five steps of three samples
            flag.cancel("preempted")
        return None

    request = _request(backend, samples=SAMPLES, max_tokens=32, stop_check=preempt_after_a_few_tokens)
    stopped = backend.run(request, flag)
    assert stopped.finish_reason == "cancelled"
    assert all(s.finish_reason == "cancelled" and len(s.token_ids) == 5 for s in stopped.samples)
    assert backend._sample_cached  # kept for the resume
    resumed = backend.run(attrs_evolve(request, resume=tuple(stopped.samples)), CancelFlag())
    assert [s.text for s in resumed.samples] == [s.text for s in whole.samples]
    assert [s.token_ids for s in resumed.samples] == [s.token_ids for s in whole.samples]


def test_a_request_between_preemption_and_resume_costs_a_rebuild_not_the_answers(backend: LlamaBackend) -> None:
    flag = CancelFlag()
    calls = {"n": 0}

    def preempt(text: str) -> int | None:
        calls["n"] += 1
        if calls["n"] == 9:
            flag.cancel("preempted")
        return None

    request = _request(backend, samples=SAMPLES, max_tokens=20, stop_check=preempt)
    stopped = backend.run(request, flag)
    assert stopped.finish_reason == "cancelled"
    backend.run(GenerationRequest(prompt_tokens=tuple(backend.tokenize("x = 1\n", add_bos=True)), max_tokens=4),
                CancelFlag())  # e.g. a keystroke on the same model: frees the samples' cells
    assert backend._sample_cached == {}
    resumed = backend.run(attrs_evolve(request, resume=tuple(stopped.samples)), CancelFlag())
    for before, after in zip(stopped.samples, resumed.samples):
        assert after.token_ids[:len(before.token_ids)] == before.token_ids  # nothing written is lost
        assert after.finish_reason in ("stop", "length", "eog")
        assert len(after.token_ids) <= 20


def attrs_evolve(request: GenerationRequest, **changes) -> GenerationRequest:  # type: ignore[no-untyped-def]
    import attrs

    return attrs.evolve(request, **changes)
