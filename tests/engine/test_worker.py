"""The model thread: newest completion preempts older work; prewarm never delays typing."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from codeassist_lsp.config import ModelSettings
from codeassist_lsp.engine.base import GenerationRequest, GenerationResult
from codeassist_lsp.engine.worker import Job, ModelWorker
from codeassist_lsp.errors import Cancelled

pytestmark = pytest.mark.model


@pytest.fixture(scope="module")
def worker(model_path: Path):  # type: ignore[no-untyped-def]
    from codeassist_lsp.engine.llama import LlamaBackend

    running = ModelWorker(lambda: LlamaBackend(model_path, ModelSettings()))
    running.loaded.wait()
    assert running.backend is not None, running.load_error
    yield running
    running.close()


def _completion(worker: ModelWorker, text: str, max_tokens: int, **kwargs) -> GenerationRequest:  # type: ignore[no-untyped-def]
    assert worker.backend is not None
    return GenerationRequest(prompt_tokens=tuple(worker.backend.tokenize(text, add_bos=True)),
                             max_tokens=max_tokens, **kwargs)


def test_newer_completion_preempts_a_running_one(worker: ModelWorker) -> None:
    started = threading.Event()

    def note_start(_text: str) -> None:
        started.set()
        return None

    old = worker.submit(_completion(worker, "# A long story about code\n", 200, stop_check=note_start))
    assert started.wait(120)
    new = worker.submit(_completion(worker, "def add(a, b):\n    return", 8))
    with pytest.raises(Cancelled):
        old.future.result(120)
    result = new.future.result(120)
    assert result.generated_tokens > 0


def test_queued_completions_are_superseded_and_only_the_newest_runs(worker: ModelWorker) -> None:
    blocker_started = threading.Event()
    release = threading.Event()

    def hold(_text: str) -> None:
        blocker_started.set()
        release.wait(10)
        return None

    blocker = worker.submit(_completion(worker, "x = 1\n", 4, kind="generation", stop_check=hold))
    assert blocker_started.wait(120)
    first = worker.submit(_completion(worker, "y = ", 2))
    second = worker.submit(_completion(worker, "z = ", 2))
    release.set()
    with pytest.raises(Cancelled):
        first.future.result(120)
    assert second.future.result(120).generated_tokens >= 1
    blocker.future.result(120)


def test_prewarm_is_skipped_while_a_completion_waits(worker: ModelWorker) -> None:
    release = threading.Event()
    blocker = worker.submit(_completion(worker, "a = 1\n", 2, stop_check=lambda _t: release.wait(10) and None))
    prewarm = worker.submit(_completion(worker, "b = 2\n", 0, kind="prewarm"))
    # A prewarm is refused while a completion runs; the newer completion supersedes the running one.
    completion = worker.submit(_completion(worker, "c = ", 2))
    release.set()
    with pytest.raises(Cancelled):
        prewarm.future.result(120)
    completion.future.result(120)
    with pytest.raises(Cancelled):
        blocker.future.result(120)


def test_completion_preempts_a_generation_which_then_runs_again(worker: ModelWorker) -> None:
    started = threading.Event()

    def note_start(_text: str) -> None:
        started.set()
        return None

    generation = worker.submit(_completion(worker, "def parse_config(path):\n", 40, kind="generation",
                                           stop_check=note_start, want_logprobs=True))
    assert started.wait(120)
    completion = worker.submit(_completion(worker, "total = ", 4))
    assert completion.future.result(120).generated_tokens >= 1
    result = generation.future.result(60)  # restarted after the completion, not lost
    assert generation.preemptions == 1
    assert result.generated_tokens > 0
    assert len(result.token_logprobs) == result.generated_tokens + (result.finish_reason == "eog")
    assert all(lp <= 0.0 for lp in result.token_logprobs)


def test_cancelling_a_preempted_generation_really_cancels_it(worker: ModelWorker) -> None:
    started = threading.Event()
    generation = worker.submit(_completion(worker, "class Cache:\n", 60, kind="generation",
                                           stop_check=lambda _t: started.set() or None))
    assert started.wait(120)
    completion = worker.submit(_completion(worker, "name = ", 30))
    generation.cancel("user cancelled")
    completion.future.result(120)
    with pytest.raises(Cancelled):
        generation.future.result(120)


def test_a_budget_answers_early_and_the_rest_continues_until_superseded(worker: ModelWorker) -> None:
    from codeassist_lsp.engine.postprocess import whole_words

    job = worker.submit(_completion(worker, "# A long story about code\n", 120, budget_ms=1, partial_cut=whole_words))
    early = job.future.result(120)
    assert early.finish_reason == "budget" and early.text.strip()
    assert not job.final.done()  # still generating the rest
    worker.submit(_completion(worker, "def add(a, b):\n    return", 4)).future.result(120)
    with pytest.raises(Cancelled):  # nobody waited for the rest: the next keystroke took the model
        job.final.result(120)
    whole = worker.submit(_completion(worker, "x = 1\n", 6, budget_ms=60_000, partial_cut=whole_words))
    assert whole.future.result(120) is whole.final.result(120)  # within budget: one answer


def _action_under_way(worker: ModelWorker) -> tuple[GenerationResult, Job]:
    """An action's answer when run alone, and the same action submitted again, returned once it has
    written 20 characters (so whatever is submitted next meets it mid-generation)."""
    prompt = "# A long story about code\n"
    plain = worker.submit(_completion(worker, prompt, 40, kind="generation")).future.result(120)
    written = threading.Event()

    def note(text: str) -> None:
        if len(text) > 20:
            written.set()
        return None

    job = worker.submit(_completion(worker, prompt, 40, kind="generation", stop_check=note))
    assert written.wait(120)
    return plain, job


def test_a_preempted_generation_resumes_after_what_it_wrote(worker: ModelWorker) -> None:
    plain, job = _action_under_way(worker)
    worker.submit(_completion(worker, "x = 1\n", 4)).future.result(120)  # typing preempts it
    resumed = job.future.result(120)
    assert job.preemptions >= 1 and job.done_part is not None and job.done_part.token_ids
    assert resumed.text == plain.text and resumed.generated_tokens == plain.generated_tokens


def test_a_prewarm_goes_before_a_running_action_and_the_action_resumes(worker: ModelWorker) -> None:
    # The first keystroke in a file opened while an action runs must find its prompt evaluated:
    # ranked below actions, a prewarm never ran while they came back to back.
    plain, action = _action_under_way(worker)
    prewarm = worker.submit(_completion(worker, "def area(width, height):\n    return", 0, kind="prewarm"))
    prewarmed = prewarm.future.result(120)
    assert not action.future.done()  # the prewarm ran first
    resumed = action.future.result(120)
    assert prewarmed.prompt_tokens > 0 and action.preemptions >= 1
    assert resumed.text == plain.text


def test_the_rest_of_a_shown_suggestion_yields_to_a_waiting_action(worker: ModelWorker) -> None:
    from codeassist_lsp.engine.postprocess import whole_words

    # Typing leaves the model only the pauses between keys; the rest of each shown suggestion must
    # not fill them while an action waits, or the action never runs.
    shown = worker.submit(_completion(worker, "# A long story about code\n", 120, budget_ms=1, partial_cut=whole_words))
    action = worker.submit(_completion(worker, "def add(a, b):\n    return", 6, kind="generation"))
    assert shown.future.result(120).finish_reason == "budget"
    with pytest.raises(Cancelled):
        shown.final.result(120)
    assert action.future.result(120).generated_tokens > 0


def test_an_action_advances_in_prompt_chunks_as_small_as_one_token(worker: ModelWorker) -> None:
    from codeassist_lsp.engine import llama

    # Keys 120 ms apart: the code model needs ~300 ms for 8 prompt tokens on 2 cores, 61 ms for one.
    assert llama.MIN_PROMPT_CHUNK == 1
    backend = worker.backend
    assert backend is not None
    backend._chunk_now = 1  # as after repeated preemptions
    result = worker.submit(_completion(worker, "# " + "word " * 40 + "\n", 2, kind="generation")).future.result(120)
    assert result.evaluated_tokens > 8 and backend._chunk_now > 8  # chunks grow again as they get through


def test_side_by_side_samples_preempted_by_typing_resume_and_lose_nothing(worker: ModelWorker) -> None:
    from codeassist_lsp.engine.base import Sampling

    samples = (Sampling(), Sampling(temperature=0.8, seed=1), Sampling(temperature=0.8, seed=2))
    written = threading.Event()
    seen: list[str] = []

    def note(text: str) -> None:
        seen.append(text)
        if len(seen) > 12:
            written.set()
        return None

    job = worker.submit(_completion(worker, "# A long story about code\n", 40, kind="generation", samples=samples,
                                    stop_check=note, want_logprobs=True))
    assert written.wait(120)
    worker.submit(_completion(worker, "x = 1\n", 4)).future.result(120)  # typing preempts it (same model)
    result = job.future.result(120)
    assert job.preemptions >= 1 and job.done_part is not None and job.done_part.samples
    assert len(result.samples) == 3
    for before, after in zip(job.done_part.samples, result.samples):
        assert after.token_ids[:len(before.token_ids)] == before.token_ids  # what was written stays
        assert after.finish_reason in ("stop", "length", "eog") and len(after.token_ids) <= 40
