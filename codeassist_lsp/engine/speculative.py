"""Speculative decoding: cheap guesses of the next tokens that the target model verifies in one batch.

Two drafters speak the same small interface (`draft(history, k, cancel) -> tokens`):
- `PromptLookupDrafter` copies what followed the latest earlier occurrence of the last n tokens
  (code repeats identifiers, argument lists and whole lines); it needs no second model.
- `DraftModelDrafter` runs a smaller GGUF with the same vocabulary greedily for k tokens.

The decode loop in `engine/llama.py` verifies the guesses; with greedy sampling the output is
token-for-token what the target alone would produce, only fewer target decodes are paid for it.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

import attrs

from codeassist_lsp.engine.base import CancelFlag
from codeassist_lsp.errors import CodeassistError, ModelNotAvailable

if TYPE_CHECKING:
    from codeassist_lsp.config import Settings
    from codeassist_lsp.engine.llama import LlamaBackend

log = logging.getLogger(__name__)


class VocabularyMismatch(CodeassistError):
    """A draft model whose tokens do not mean what the target's tokens mean."""


class Drafter(Protocol):
    """Proposes up to k tokens that may follow `history` (prompt + generated so far)."""

    name: str

    def draft(self, history: Sequence[int], k: int, cancel: CancelFlag) -> list[int]:
        """Up to k guessed tokens; [] when there is no good guess (the loop then decodes one token)."""
        ...


@attrs.define
class SpeculationStats:
    """What speculation did: batches verified, tokens guessed and how many the target kept."""

    batches: int = 0
    drafted: int = 0
    accepted: int = 0

    @property
    def acceptance(self) -> float:
        """Share of drafted tokens the target accepted (0.0 before any)."""
        return self.accepted / self.drafted if self.drafted else 0.0

    def add(self, drafted: int, accepted: int) -> None:
        """Record one verification batch."""
        self.batches += 1
        self.drafted += drafted
        self.accepted += accepted


class AdaptiveDraftLength:
    """How many tokens to guess for the next batch, and whether to speculate at all, from what
    batches really cost.

    k, the most guesses wanted, grows while guesses are all accepted and shrinks when most are
    rejected: a rejected guess costs a slot in the verification batch (and a draft-model decode);
    a long accepted run saves a whole target decode per token.

    What a batch costs is measured, per number of guesses: it is not proportional to its size and
    not even monotonic (2 CPU cores, 400 cached tokens: Gemma 3 verifies 6 tokens in 48 ms and 5 in
    55 ms; one token takes 15 ms). Each count up to k is tried once; then the count with the most
    expected tokens per millisecond (from the recent acceptance rate) is used.

    Whether speculation pays at all depends on the hardware, so the time of every verification
    batch (drafting included) per emitted token is compared with the time of a plain one-token
    decode (moving averages); while batches lose, speculation pauses for a number of tokens that
    doubles each time it still loses (up to `MAX_PAUSE`), then tries again. Output is unaffected:
    this only decides how fast.
    """

    MAX_PAUSE = 64

    def __init__(self, minimum: int = 1, maximum: int = 8, start: int = 4) -> None:
        self.minimum = max(1, minimum)
        self.maximum = max(self.minimum, maximum)
        self.k = min(max(start, self.minimum), self.maximum)
        self._recent = 0.5  # exponential moving average of the acceptance rate
        self.plain_ms: float | None = None  # moving average of one plain one-token decode
        self.batch_ms_per_token: float | None = None  # moving average over verification batches
        self.batch_ms: dict[int, float] = {}  # moving average of a whole batch's time, by guesses in it
        self.pause = 1  # plain decodes before the next speculation (the first one measures plain_ms)
        self._backoff = 4

    def guesses(self, limit: int) -> int:
        """How many tokens to guess next (at most `limit` and k): untried counts first, then the best."""
        top = min(self.k, limit)
        if top < self.minimum:
            return max(0, top)
        untried = [k for k in range(top, self.minimum - 1, -1) if k not in self.batch_ms]
        if untried:
            return untried[0]
        accept = min(self._recent, 0.99)

        def tokens_per_ms(k: int) -> float:  # expected tokens a batch emits (geometric) over its cost
            return (1 - accept ** (k + 1)) / (1 - accept) / self.batch_ms[k]

        return max(range(self.minimum, top + 1), key=tokens_per_ms)

    def update(self, drafted: int, accepted: int) -> None:
        """Adjust k after a verification batch."""
        if drafted <= 0:
            return
        rate = accepted / drafted
        self._recent = 0.7 * self._recent + 0.3 * rate
        if accepted == drafted:
            self.k = min(self.maximum, self.k + 2)
        elif self._recent < 0.4:
            self.k = max(self.minimum, self.k - 1)

    @property
    def speculate(self) -> bool:
        """Whether the next token should be guessed for (False while paused)."""
        return self.pause <= 0

    def record_plain(self, ms: float) -> None:
        """A plain one-token decode took `ms`."""
        self.plain_ms = ms if self.plain_ms is None else 0.8 * self.plain_ms + 0.2 * ms
        self.pause = max(0, self.pause - 1)

    def record_batch(self, ms: float, emitted: int, drafted: int = 0) -> None:
        """A verification batch of `drafted` guesses (drafting included) took `ms` and gave `emitted` tokens."""
        if drafted > 0:
            previous = self.batch_ms.get(drafted)
            self.batch_ms[drafted] = ms if previous is None else 0.7 * previous + 0.3 * ms
        per_token = ms / max(1, emitted)
        self.batch_ms_per_token = (per_token if self.batch_ms_per_token is None
                                   else 0.5 * self.batch_ms_per_token + 0.5 * per_token)
        if self.plain_ms is not None and self.batch_ms_per_token > self.plain_ms:
            self.pause = self._backoff
            self.batch_ms_per_token = None  # the first batch after the pause is judged on its own
            self._backoff = min(self.MAX_PAUSE, self._backoff * 2)
        elif self.plain_ms is not None:
            self._backoff = max(4, self._backoff // 2)

    @property
    def recent_acceptance(self) -> float:
        """The moving average acceptance rate that drives k."""
        return self._recent


class PromptLookupDrafter:
    """Guesses by n-gram lookup in the prompt and the text generated so far (no model).

    The last `ngram_max` tokens are looked up among their earlier occurrences; of those, the one
    whose preceding tokens match the current context longest wins (code repeats short n-grams such
    as `    if` everywhere; the occurrence inside the same statement or copied block is the one
    whose continuation is right). Shorter n-grams are the fallback, with shorter guesses: a guess
    from a weak match is mostly rejected, and each rejected token still costs a batch slot.
    """

    name = "prompt-lookup"
    CANDIDATES = 8  # latest occurrences of an n-gram compared by context
    CONTEXT = 32  # tokens compared backwards to rank them

    def __init__(self, ngram_max: int = 3, ngram_min: int = 1, window: int = 4096) -> None:
        self.ngram_max = max(1, ngram_max)
        self.ngram_min = max(1, min(ngram_min, self.ngram_max))
        self.window = window
        self._history: list[int] = []
        self._offset = 0  # position of _history[0] in the caller's history
        self._indexed_to = 0  # n-grams ending before this position are in the index
        # n-gram -> positions just after its latest occurrences (oldest first, at most CANDIDATES)
        self._index: dict[tuple[int, ...], list[int]] = {}

    def _sync(self, history: list[int]) -> None:
        """Index every n-gram of history except those ending at its last position."""
        known = self._history
        offset = self._offset
        if len(history) < offset + len(known) or history[offset:offset + len(known)] != known:
            # A different sequence (a new request): start over on the recent window.
            self._offset = max(0, len(history) - self.window)
            self._history = list(history[self._offset:])
            self._index = {}
            self._indexed_to = 0
        else:
            self._history.extend(history[offset + len(known):])
        tokens = self._history
        end = len(tokens) - 1  # the n-grams ending at the last token are the ones looked up
        index = self._index
        for stop in range(max(self._indexed_to, 1), end + 1):
            for n in range(self.ngram_min, min(self.ngram_max, stop) + 1):
                positions = index.setdefault(tuple(tokens[stop - n:stop]), [])
                positions.append(stop)
                if len(positions) > self.CANDIDATES:
                    del positions[0]
        self._indexed_to = max(self._indexed_to, end + 1)

    def _context_match(self, follows: int, n: int) -> int:
        """How many tokens before the n-gram ending at `follows` equal those before the history's end."""
        tokens = self._history
        size = len(tokens)
        length = n
        while (length < self.CONTEXT and follows - length - 1 >= 0
               and tokens[follows - length - 1] == tokens[size - length - 1]):
            length += 1
        return length

    def draft(self, history: Sequence[int], k: int, cancel: CancelFlag) -> list[int]:
        """The tokens that followed the best-matching earlier occurrence of the history's last n-gram."""
        if k <= 0 or len(history) < 2:
            return []
        self._sync(history if isinstance(history, list) else list(history))
        tokens = self._history
        size = len(tokens)
        for n in range(self.ngram_max, self.ngram_min - 1, -1):
            if size < n + 1:
                continue
            positions = self._index.get(tuple(tokens[size - n:]))
            if not positions:
                continue
            best, best_length = -1, -1
            for follows in reversed(positions):  # latest first: it wins ties
                if follows < size:
                    length = self._context_match(follows, n)
                    if length > best_length:
                        best, best_length = follows, length
            if best < 0:
                continue
            if n < self.ngram_max:
                k = min(k, 2 * n)  # a weak match: guess little
            return tokens[best:best + k]
        return []


class DraftModelDrafter:
    """Guesses with a smaller model of the same vocabulary, greedily, reusing its KV cache."""

    name = "draft-model"

    def __init__(self, model: LlamaBackend) -> None:
        self.model = model

    def prefill(self, prompt: Sequence[int], cancel: CancelFlag) -> None:
        """Evaluate the prompt in the draft's KV cache now, as part of prompt processing.

        Otherwise the first guess pays for the whole prompt (measured: 2.4 s of a 4.8 s generation
        of 64 tokens after a 480-token prompt with a SmolLM2 Q4_0 draft on one CPU core).
        """
        self.model._sync_cache(list(prompt[:-1]), cancel)

    def draft(self, history: Sequence[int], k: int, cancel: CancelFlag) -> list[int]:
        """k greedy tokens of the draft model after history ([] when cancelled meanwhile)."""
        return self.model.greedy_continuation(list(history), k, cancel)


def check_same_vocabulary(target: LlamaBackend, draft: LlamaBackend) -> None:
    """Refuse a draft whose vocabulary differs from the target's (size, special tokens, token texts)."""
    problem = ""
    if target.n_vocab != draft.n_vocab:
        problem = f"vocabulary sizes differ ({target.n_vocab} vs {draft.n_vocab} tokens)"
    elif target.bos() != draft.bos() or target.adds_bos() != draft.adds_bos():
        problem = "their BOS tokens differ"
    else:
        for token in range(target.n_vocab):
            if target.token_text(token) != draft.token_text(token):
                problem = (f"token {token} is {target.token_text(token)!r} for the target "
                           f"but {draft.token_text(token)!r} for the draft")
                break
    if problem:
        raise VocabularyMismatch(
            f"The draft model {draft.model_id} cannot draft for {target.model_id}: {problem}.",
            hint="Use a draft model of the same family (same tokenizer), or clear codeassist.draft.path "
                 "to use prompt-lookup speculation.",
        )


def attach_draft_model(target: LlamaBackend, settings: Settings) -> LlamaBackend:
    """Load `settings.draft.path` as the draft of `target` (same context size and threads)."""
    from codeassist_lsp.engine.llama import LlamaBackend

    path = Path(settings.draft.path or "").expanduser()
    if not path.is_file():
        raise ModelNotAvailable(f"Draft model file {path} does not exist.",
                                hint="Set codeassist.draft.path to a GGUF file, or clear it.")
    model = attrs.evolve(settings.model, gpu_layers=settings.draft.gpu_layers)
    draft = LlamaBackend(path, model, speculation=attrs.evolve(settings.speculation, mode="off"))
    try:
        target.attach_draft(draft)
    except CodeassistError:
        draft.close()
        raise
    return draft


def requantize(source: Path, target: Path, ftype: int, *, threads: int = 2) -> Path:
    """Write `source` re-quantized to llama.cpp file type `ftype` (an LLAMA_FTYPE_* value).

    Used to make a same-vocabulary draft/target pair from one model, e.g. an F16 target
    (dequantized, so no better than its source) and its original 4-bit file as the draft.
    """
    import llama_cpp

    if target.is_file():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    params = llama_cpp.llama_model_quantize_default_params()
    params.ftype = ftype
    params.allow_requantize = True
    params.nthread = threads
    partial = target.with_name(target.name + ".partial")
    status = llama_cpp.llama_model_quantize(str(source).encode(), str(partial).encode(), params)
    if status != 0:
        partial.unlink(missing_ok=True)
        raise ModelNotAvailable(f"llama.cpp could not re-quantize {source} (status {status}).")
    partial.replace(target)
    return target


def derived_model_path(source: Path, suffix: str) -> Path:
    """Where a model derived from `source` lives in the user cache dir (never in the repository)."""
    from codeassist_lsp.engine.models import cache_dir

    stat = source.stat()
    tag = hashlib.sha256(f"{source.resolve()}:{stat.st_size}".encode()).hexdigest()[:8]
    return cache_dir() / "derived" / f"{source.stem}.{tag}.{suffix}.gguf"
