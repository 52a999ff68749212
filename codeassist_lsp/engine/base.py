"""The Engine protocol and the request/result types every backend speaks."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any, Literal, Protocol

import attrs

JobKind = Literal["completion", "prewarm", "generation", "background"]
# Which model serves a request: the fast completion tier (typing) or the quality tier (actions, hover).
Tier = Literal["completion", "quality"]
FinishReason = Literal["stop", "length", "eog", "cancelled", "empty", "budget"]

# Decides from the text generated so far whether to stop; returns where to cut it, or None.
StopCheck = Callable[[str], "int | None"]
# Receives the early part of a generation that ran past its time budget (on the model thread).
PartialCallback = Callable[["GenerationResult"], None]


@attrs.frozen
class Sampling:
    """Decoding parameters; temperature 0 means greedy."""

    temperature: float = 0.0
    top_p: float = 0.95
    top_k: int = 40
    seed: int = 0


@attrs.frozen
class GenerationRequest:
    """One call on the model: a tokenised prompt and when to stop."""

    prompt_tokens: tuple[int, ...]
    max_tokens: int
    kind: JobKind = "completion"
    tier: Tier = "completion"
    stop: tuple[str, ...] = ()
    stop_check: StopCheck | None = attrs.field(default=None, eq=False)
    sampling: Sampling = Sampling()
    not_before: float = 0.0
    """time.monotonic() before which generation does not start (debounce; prompt eval may)."""
    want_logprobs: bool = False
    """Record each generated token's log-probability (for best-of-N scoring; costs ~1 ms/token)."""
    score_tokens: int = 0
    """Score instead of generating: the log-probabilities of the last `score_tokens` prompt tokens
    (each given the tokens before it) in token_logprobs; prompt evaluation only (best-of-N reviewer)."""
    budget_ms: float = 0.0
    """Generation time after which what is complete is delivered early (`on_partial`) while the rest is
    generated on; 0 = no budget. The user waits for the early part; the rest is for typed-ahead."""
    partial_cut: StopCheck | None = attrs.field(default=None, eq=False)
    """Where text generated so far may be cut for early delivery (complete lines, whole words); None
    from it means nothing is worth showing yet."""
    related: tuple[tuple[str, str], ...] = ()
    """(path, text) of the related snippets rendered at the head of the prompt; a remote llama-server
    `/infill` gets them as `input_extra` instead (`header_chars`: how long that rendered head is)."""
    header_chars: int = 0
    guess_below: float = 0.0
    """With a budget: deliver early, as at the budget, before the first token the model chooses with
    less than this probability (what follows a guess is rarely what the user types); 0 = off."""
    samples: tuple[Sampling, ...] = ()
    """Generate one answer per Sampling side by side (KV sequences sharing the evaluated prompt, one
    decode per step for all of them) instead of one with `sampling`; results in `GenerationResult.samples`.
    Backends that cannot (`parallel_samples` 0) are never sent such a request."""
    resume: tuple["GenerationResult", ...] = attrs.field(default=(), eq=False)
    """With `samples`, after a preemption: what each sample had written; generation goes on from there."""
    first_token_prefix: bytes = b""
    """Token healing: characters left off the end of the prompt that the first generated token must
    start with (the token then carries them, as it would in the training text); b"" = none."""


@attrs.define
class GenerationResult:
    """What a request produced and what it cost."""

    text: str = ""
    finish_reason: FinishReason = "stop"
    prompt_tokens: int = 0
    reused_tokens: int = 0
    evaluated_tokens: int = 0
    generated_tokens: int = 0
    queue_ms: float = 0.0
    prompt_ms: float = 0.0
    generate_ms: float = 0.0
    server_ms: float = 0.0
    """For a remote engine: the time the server says it computed (its prompt + generation timings)."""
    token_logprobs: list[float] = attrs.Factory(list)
    token_sizes: list[int] = attrs.Factory(list)
    """UTF-8 bytes of each token in token_logprobs (inline generation only; empty elsewhere)."""
    token_ids: list[int] = attrs.Factory(list)
    """The generated tokens up to the last one after which `text` is complete (no character split
    between tokens): where a preempted generation resumes."""
    samples: list["GenerationResult"] = attrs.Factory(list)
    """For a request with `samples`: each sample's result, in order (finish_reason 'cancelled' on the
    ones a preemption interrupted)."""

    @property
    def mean_logprob(self) -> float:
        """Mean log-probability of the generated tokens (0.0 when not recorded)."""
        return sum(self.token_logprobs) / len(self.token_logprobs) if self.token_logprobs else 0.0

    def shown_logprobs(self) -> list[float]:
        """Log-probabilities of the tokens wholly inside `text`; all of them when sizes are not recorded.

        An early delivery also scored the guess that ended it, and a stop the token holding the stop
        string: neither is in the text the user sees, so neither says how sure the model was of it.
        """
        if len(self.token_sizes) != len(self.token_logprobs):
            return list(self.token_logprobs)
        limit = len(self.text.encode("utf-8"))
        shown: list[float] = []
        end = 0
        for logprob, size in zip(self.token_logprobs, self.token_sizes):
            end += size
            if end > limit:
                break
            shown.append(logprob)
        return shown


class CancelFlag:
    """Set by whoever no longer wants the result; read by the decode loop every token."""

    def __init__(self) -> None:
        self._event = threading.Event()
        self.reason = ""
        # A C byte the running llama_decode polls (the backend's abort callback): cancel sets it,
        # so a preempted decode stops between graph nodes instead of after the whole batch.
        self.abort_byte: Any = None

    def cancel(self, reason: str = "cancelled") -> None:
        """Ask the running work to stop at its next token (or inside a decode, see `abort_byte`)."""
        # A real cancellation outranks a scheduling preemption (which would re-run the work).
        if not self.reason or self.reason == "preempted":
            self.reason = reason
        self._event.set()
        abort = self.abort_byte
        if abort is not None:
            abort[0] = 1

    @property
    def is_set(self) -> bool:
        """Whether cancellation was asked for."""
        return self._event.is_set()

    def wait(self, timeout: float) -> bool:
        """Sleep up to `timeout` seconds, waking early on cancellation; True when cancelled."""
        return self._event.wait(timeout)


class DecodeBackend(Protocol):
    """A loaded model that runs one request at a time on the calling thread."""

    model_id: str
    prompt_format: str
    stop: tuple[str, ...]

    def tokenize(self, text: str, *, add_bos: bool = False, special: bool = False) -> list[int]:
        """Text to tokens."""
        ...

    def count_tokens(self, text: str) -> int:
        """Number of tokens in text."""
        ...

    def fim_tokens(self) -> tuple[int, int, int] | None:
        """(prefix, suffix, middle) FIM token ids when the model has them."""
        ...

    def adds_bos(self) -> bool:
        """Whether prompts start with a BOS token."""
        ...

    def bos(self) -> int:
        """The BOS token id."""
        ...

    def run(self, request: GenerationRequest, cancel: CancelFlag,
            on_partial: PartialCallback | None = None) -> GenerationResult:
        """Evaluate the prompt (reusing the KV cache) and generate; honour `cancel` every token.

        With `request.budget_ms`, what is complete at the budget goes to `on_partial` (once) and
        generation goes on; the returned result is the whole generation.
        """
        ...

    def close(self) -> None:
        """Free the model."""
        ...
