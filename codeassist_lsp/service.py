"""The completion pipeline shared by the LSP server and the one-shot CLI.

document + cursor -> gate -> context -> prompt tokens -> model worker -> shaped suggestion.
"""

from __future__ import annotations

import array
import asyncio
import hashlib
import logging
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future

import attrs

from codeassist_lsp.cache import CachedCompletion, CompletionCache, completion_key
from codeassist_lsp.config import Settings
from codeassist_lsp.context.assembler import (
    PREFIX_SHARE, AssembledContext, ContextAssembler, Snippet, assemble_context, render_snippet,
)
from codeassist_lsp.context.gating import Gate, decide_mode
from codeassist_lsp.context.languages import language_for
from codeassist_lsp.context.tokens import LineTokenCounter
from codeassist_lsp.context.unbound import definition_start
from codeassist_lsp.engine.base import DecodeBackend, GenerationRequest, GenerationResult
from codeassist_lsp.engine.postprocess import (
    block_guard, block_stop, combine_stops, complete_lines, cycle_stop, line_stop, shape_suggestion, whole_words,
)
from codeassist_lsp.engine.prompts import completion_prompt_text, healing_prefix, tokenize_prompt
from codeassist_lsp.engine.tiers import make_completion_backend, make_quality_backend, probe_exactness
from codeassist_lsp.engine.worker import Job, ModelWorker
from codeassist_lsp.errors import CodeassistError, ModelNotAvailable
from codeassist_lsp.feedback import FeedbackRecorder, SuggestionFeatures
from codeassist_lsp.feedback.gating import shipped_prior
from codeassist_lsp.verify import SecurityPolicy, Verdict, verify_suggestion
from codeassist_lsp.verify import reset_stats as reset_verification_stats

log = logging.getLogger(__name__)

# When the code before the cursor outgrows the budget, the window start jumps ahead by this share
# of the budget, so that it stays put (and the KV cache stays valid) for many keystrokes after.
WINDOW_HEADROOM = 0.25
# How far past its budget the window may grow while typing before a keystroke moves it.
WINDOW_SLACK = 0.25
MAX_CHARS_PER_TOKEN = 8
MAX_LINE_CHARS = 2000
# Share of the prompt budget for related definitions and open-file snippets.
SNIPPET_SHARE = 0.4
# Part of every cache key: cached answers made under other stop rules are not reused.
STOP_RULES_VERSION = 2


@attrs.define
class Suggestion:
    """What the pipeline produced for one cursor, and what it cost."""

    text: str
    mode: str
    offset: int
    result: GenerationResult | None = None
    timings: dict[str, float] = attrs.Factory(dict)
    context: AssembledContext | None = None
    verdict: Verdict | None = None
    raw_text: str = ""
    """The shaped model text before verification cut or withheld it."""
    start: str = ""
    """Text the pipeline began the suggestion with (the model wrote the rest)."""
    id: str = ""
    """Names the suggestion for acceptance tracking (a typed-ahead answer keeps its suggestion's id)."""


@attrs.define
class PreparedCompletion:
    """Everything decided before the model runs."""

    gate: Gate
    offset: int
    context: AssembledContext | None = None
    request: GenerationRequest | None = None
    line_before: str = ""
    line_after: str = ""
    following: str = ""
    prepare_ms: float = 0.0
    path: str = ""
    document: str = ""
    cache_key: str | None = None
    cached: CachedCompletion | None = None
    """A cache hit: the model output for this exact prompt, model and parameters."""
    cache_tier: str = ""
    typed_ahead: str | None = None
    """The rest of the suggestion being shown, when the user typed its start (no model call)."""
    start: str = ""
    """Text the suggestion is made to begin with (appended to the prompt; the model continues it)."""
    heal: str = ""
    """Spaces before the cursor left off the prompt; the model's first token starts with them (token healing)."""
    window_start: int = 0
    """Where the prompt's window of the document starts."""
    job: Job | None = None
    """The model's job for this request (submit); `finish` tells it the answer has been handled."""


@attrs.frozen
class ShownSuggestion:
    """The last suggestion shown in a document, where it was shown and over which text."""

    document: str
    offset: int
    text: str
    mode: str = "line"


def _warm_up_verifier() -> None:
    try:
        verify_suggestion("import os\n", 10, "x = 1", language=language_for("python"), mode="inline")
        reset_verification_stats()  # the warm-up is not a suggestion
    except Exception:  # warm-up is an optimisation only
        log.debug("verifier warm-up failed", exc_info=True)


class CompletionService:
    """Owns the model worker and turns (text, cursor) into suggestions."""

    def __init__(self, settings: Settings,
                 backend_factory: Callable[[], DecodeBackend] | None = None,
                 assembler: ContextAssembler | None = None,
                 policy: SecurityPolicy | None = None) -> None:
        self.settings = settings
        self.worker = ModelWorker(backend_factory or (lambda: make_completion_backend(settings)),
                                  None if backend_factory is not None else self._load_quality)
        self.assembler = assembler
        self.policy = policy or SecurityPolicy()
        self._window_starts: dict[str, int] = {}
        # Related snippets per document, refreshed only off the keystroke path (prewarm, one-shot):
        # a changed prompt head would make the model re-read the whole window.
        self._pinned_snippets: dict[str, tuple[Snippet, ...]] = {}
        self._cache: CompletionCache | None = None  # opened on first use (the disk tier touches files)
        self._cache_lock = threading.Lock()
        self._shown: dict[str, ShownSuggestion] = {}
        self._counter: LineTokenCounter | None = None
        # Set by the server; one-shot runs and benchmarks have no user whose outcomes could be tracked.
        self.feedback: FeedbackRecorder | None = None
        # Import bandit and compile the rule pack now, not on the first keystroke.
        threading.Thread(target=_warm_up_verifier, name="codeassist-verify-warmup", daemon=True).start()

    # -- model state ----------------------------------------------------------------------

    def wait_until_loaded(self, timeout: float | None = None) -> DecodeBackend:
        """Block until the model is loaded; raise its load error if it failed."""
        self.worker.loaded.wait(timeout)
        if self.worker.backend is None:
            error = self.worker.load_error
            if isinstance(error, CodeassistError):
                raise error
            raise ModelNotAvailable(f"The model failed to load: {error}")
        return self.worker.backend

    async def until_loaded(self, timeout: float) -> None:
        """Wait (without blocking the event loop) until the model loaded or failed, at most `timeout` s."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while not self.worker.loaded.is_set() and loop.time() < deadline:
            await asyncio.sleep(0.005)

    @property
    def backend(self) -> DecodeBackend | None:
        """The completion tier's backend, or None while loading or after a failed load."""
        return self.worker.backend

    @property
    def quality_backend(self) -> DecodeBackend | None:
        """The quality tier's backend (actions, hover): the code model, else the completion model."""
        return self.worker.backend_for("quality")

    def _load_quality(self, completion: DecodeBackend | None) -> DecodeBackend | None:
        """Load the quality tier (model thread); its speculation probe runs later, in the background."""
        backend = make_quality_backend(self.settings, completion)
        if (backend is not None and backend is not completion and self.settings.speculation.mode == "auto"
                and self.settings.actions.model.engine == "local"):
            backend.probe_in_background = True  # type: ignore[attr-defined]
            model = self.settings.actions.model
            self.worker.submit_task(lambda b, cancel: probe_exactness(b, model, cancel))  # type: ignore[arg-type]
        return backend

    def close(self) -> None:
        """Stop the model thread and free the model (its measured speeds are recorded first)."""
        from codeassist_lsp.engine.tiers import remember_speed

        for backend in {self.worker.backend, self.worker.quality} - {None}:  # one model may serve both tiers
            remember_speed(backend)
        self.worker.close()
        if self._cache is not None:
            self._cache.close()

    def _line_counter(self, backend: DecodeBackend) -> LineTokenCounter:
        """Budget token counts, remembered per line across keystrokes (a service loads one backend)."""
        if self._counter is None:
            self._counter = LineTokenCounter(backend.count_tokens)
        return self._counter

    # -- the pipeline ---------------------------------------------------------------------

    def _sticky_window(self, key: str, text: str, offset: int, budget: int,
                       count_tokens: Callable[[str], int], *, keystroke: bool = False) -> int:
        """Where the prompt window starts; it moves rarely so the KV cache stays valid.

        On a keystroke the window moves only when it must (the cursor left it, or it outgrew the
        budget by WINDOW_SLACK): moving it re-evaluates the whole prompt, which a typing pause
        (prewarm) does instead, where nobody waits.
        """
        # No token is longer than this many characters in practice: text before this floor can
        # never fit, so huge files cost no more than small ones.
        floor = max(0, offset - budget * MAX_CHARS_PER_TOKEN)
        if floor:
            next_line = text.find("\n", floor, offset)
            floor = next_line + 1 if next_line >= 0 else text.rfind("\n", 0, offset) + 1
        start = self._window_starts.get(key, 0)
        if start > offset or start < floor:
            start = floor
        used = count_tokens(text[start:offset])
        if keystroke and start >= floor and used <= budget * (1 + WINDOW_SLACK):
            pass  # keep the head the KV cache holds; the next pause moves the window if it should
        elif used > budget or (start > floor and used < budget * (1 - 2 * WINDOW_HEADROOM)):
            target = budget * (1 - WINDOW_HEADROOM)
            start = floor
            total = count_tokens(text[floor:offset])
            # Walk line starts forward until the rest fits with headroom.
            while total > target:
                next_line = text.find("\n", start, offset)
                if next_line < 0:
                    break
                total -= count_tokens(text[start:next_line + 1])
                start = next_line + 1
        if keystroke or key not in self._window_starts:
            self._window_starts[key] = start  # a prewarm's window is adopted once its prompt is evaluated
        return start

    def related_snippets(self, text: str, offset: int, *, path: str, language_id: str | None,
                         budget: int, version: int | None = None) -> tuple[Snippet, ...]:
        """Definitions and open-file regions relevant at the cursor (the slower part of context)."""
        backend = self.backend
        language = language_for(language_id, path)
        if self.assembler is None or backend is None or language is None or budget <= 0:
            return ()
        # The assembler spends its immediate share on text we already show; ask for the rest.
        context = self.assembler.assemble(text, offset, path=path, language=language,
                                          budget_tokens=int(budget / (1 - self.assembler.immediate_share)),
                                          count_tokens=self._line_counter(backend), version=version)
        return context.snippets

    def forget(self, path: str) -> None:
        """Drop per-document state when a document closes."""
        self._pinned_snippets.pop(path, None)
        self._window_starts.pop(path, None)
        self._shown.pop(path, None)
        if self.feedback is not None:
            self.feedback.tracker.closed(path)

    def prepare(self, text: str, offset: int, *, path: str, language_id: str | None,
                kind: str = "completion", refresh_context: bool = False,
                version: int | None = None) -> PreparedCompletion:
        """Gate, assemble and tokenise; no model work. `offset` is a str index into text."""
        started = time.perf_counter()
        if kind == "completion":
            self.cursor_at(path, text, offset)
            ahead = self._typed_ahead(text, offset, path)
            if ahead is not None:
                ahead.prepare_ms = (time.perf_counter() - started) * 1000
                return ahead
        backend = self.wait_until_loaded(0) if self.worker.loaded.is_set() else None
        if backend is None:
            raise ModelNotAvailable("The model is still loading.")
        language = language_for(language_id, path)
        gate = decide_mode(text, offset, language)
        before_line_start = text.rfind("\n", 0, offset) + 1
        line_end = text.find("\n", offset)
        prepared = PreparedCompletion(
            gate=gate, offset=offset, line_before=text[before_line_start:offset],
            line_after=text[offset:] if line_end < 0 else text[offset:line_end],
            following="" if line_end < 0 else text[line_end + 1:line_end + 400],
            path=path, document=text,
        )
        if len(prepared.line_before) > MAX_LINE_CHARS or "\x00" in prepared.line_before:
            # Minified or binary content: nothing sensible to suggest, and costly to tokenise.
            prepared.gate = gate = Gate("none", reason="line too long or binary")
        if gate.mode == "none" and kind == "completion":
            prepared.prepare_ms = (time.perf_counter() - started) * 1000
            return prepared
        options = self.settings.completion
        budget = options.context_tokens
        count_tokens = self._line_counter(backend)
        snippets = self._pinned_snippets.get(path, ())
        if refresh_context:
            snippets = self.related_snippets(text, offset, path=path, language_id=language_id,
                                             budget=int(budget * SNIPPET_SHARE), version=version)
        immediate_budget = budget - sum(count_tokens(s.text) + 8 for s in snippets)
        window_start = self._sticky_window(path, text, offset, int(immediate_budget * PREFIX_SHARE), count_tokens,
                                           keystroke=kind == "completion" and not refresh_context)
        prepared.window_start = window_start
        # The window may run past its budget while typing (WINDOW_SLACK): the assembler must keep all of it.
        kept = int(count_tokens(text[window_start:offset]) / PREFIX_SHARE) + 2
        context = assemble_context(text[window_start:], offset - window_start, path=path,
                                   language=language, budget_tokens=max(immediate_budget, kept),
                                   count_tokens=count_tokens, snippets=snippets)
        block = gate.mode == "block"
        max_tokens = options.max_block_tokens if block else options.max_tokens
        # Degenerate output stops early: a loop on a short cycle, a block that writes the code
        # below the cursor again or prose outside a comment (measured in the pause replay: README).
        stop_check = (combine_stops(block_stop(gate.indent, options.max_block_lines), cycle_stop,
                                    block_guard(prepared.following, language.line_comment if language else None))
                      if block else combine_stops(line_stop, cycle_stop))
        if kind == "prewarm":
            max_tokens, stop_check = 0, None
        prepared.context = context
        request = GenerationRequest(
            prompt_tokens=(),
            max_tokens=max_tokens,
            kind="prewarm" if kind == "prewarm" else "completion",
            stop_check=stop_check,
            not_before=time.monotonic() + options.debounce_ms / 1000,
            budget_ms=float(options.block_budget_ms if block else options.line_budget_ms),
            partial_cut=complete_lines if block else whole_words,
            guess_below=options.guess_below,
        )
        if getattr(backend, "remote", False) and context.snippets:
            # Only llama-server's /infill uses them (as input_extra); a local keystroke skips the work.
            request = attrs.evolve(request, related=tuple((s.path, s.text) for s in context.snippets),
                                   header_chars=sum(len(render_snippet(s, language)) + 1 for s in context.snippets))
        prepared.request = request
        prompt_text = completion_prompt_text(backend, context)
        if kind == "completion" and gate.mode == "line" and not prepared.line_before.strip() \
                and prompt_text[1] is None:
            # A new line, and the model cannot see the code below: when that code reads a name
            # nothing defines, start the line with its definition (HumanEval infilling: README).
            prepared.start = definition_start(text, offset, language) or ""
            prompt_text = (prompt_text[0] + prepared.start, None)
        heal = healing_prefix(prepared.line_before) if getattr(backend, "heals_tokens", False) else ""
        if heal and prompt_text[0].endswith(heal):
            # Token healing: "return " ends the prompt with a lone space token, which in training text
            # comes before digits (Gemma wrote "1"; in the acceptance replay none of 146 suggestions
            # after such a space was taken); the space goes back onto the model's first token instead.
            prepared.heal = heal
            prompt_text = (prompt_text[0][:-len(heal)], prompt_text[1])
            request = prepared.request = attrs.evolve(request, first_token_prefix=heal.encode())
        if kind == "completion":
            # Looked up by the prompt's text: a hit costs no tokenising and no model work.
            self._look_up_cache(prepared, backend, prompt_text)
        if prepared.cached is None:
            prepared.request = attrs.evolve(request, prompt_tokens=tuple(tokenize_prompt(backend, prompt_text)))
        prepared.prepare_ms = (time.perf_counter() - started) * 1000
        return prepared

    def submit(self, prepared: PreparedCompletion) -> Job | None:
        """Hand the prepared request to the model thread (None when gating said no)."""
        if prepared.request is None or prepared.cached is not None or prepared.typed_ahead is not None:
            return None
        prepared.job = self.worker.submit(prepared.request)
        return prepared.job

    def _shaped_and_verified(self, prepared: PreparedCompletion, result: GenerationResult | None) -> Suggestion:
        """The model's text cut to the gate's shape, then verified (text '' when nothing may be shown)."""
        raw = ""
        if result is not None:
            written = result.text
            if prepared.heal:  # the healed characters are already in the document
                written = written[len(prepared.heal):] if written.startswith(prepared.heal) else ""
            raw = shape_suggestion(prepared.start + written, prepared.gate, line_before=prepared.line_before,
                                   line_after=prepared.line_after, following=prepared.following)
        verdict = None
        text = raw
        if raw:
            language = prepared.context.language if prepared.context else None
            verdict = verify_suggestion(prepared.document, prepared.offset, raw, language=language,
                                        mode="inline", policy=self.policy)
            text = verdict.text if verdict.text.strip() else ""
        return Suggestion(text=text, mode=prepared.gate.mode, offset=prepared.offset, result=result,
                          verdict=verdict, raw_text=raw, start=prepared.start)

    def finish(self, prepared: PreparedCompletion, result: GenerationResult | None) -> Suggestion:
        """Shape the model's text and verify it; what fails verification is never shown."""
        try:
            return self._finish(prepared, result)
        finally:
            if prepared.job is not None:  # the model thread waits for this before it takes the cores back
                prepared.job.answer_taken()

    def _finish(self, prepared: PreparedCompletion, result: GenerationResult | None) -> Suggestion:
        started = time.perf_counter()
        if prepared.typed_ahead is not None:
            return self._typed_ahead_suggestion(prepared)
        if result is None and prepared.cached is not None:
            result = self._cached_result(prepared)
        elif result is not None:
            self._store_in_cache(prepared, result)
        shaped = self._shaped_and_verified(prepared, result)
        raw, verdict, text = shaped.raw_text, shaped.verdict, shaped.text
        timings = {"prepare_ms": round(prepared.prepare_ms, 2)}
        if result is not None:
            timings.update(queue_ms=round(result.queue_ms, 2), prompt_ms=round(result.prompt_ms, 2),
                           generate_ms=round(result.generate_ms, 2))
        timings["verify_ms"] = round(verdict.elapsed_ms, 2) if verdict else 0.0
        timings["postprocess_ms"] = round((time.perf_counter() - started) * 1000, 2)
        if prepared.cache_tier:
            timings["cache"] = prepared.cache_tier  # type: ignore[assignment]
        suggestion = Suggestion(text=text, mode=prepared.gate.mode, offset=prepared.offset, result=result,
                                timings=timings, context=prepared.context, verdict=verdict, raw_text=raw,
                                start=prepared.start)
        if text:
            gate_started, gate_cpu = time.perf_counter(), time.thread_time()
            if self._below_acceptance_threshold(prepared, suggestion):
                suggestion.text = ""
            suggestion.timings["gate_us"] = round((time.perf_counter() - gate_started) * 1e6, 1)
            # This thread's CPU time: the step's own work, without waits for the GIL (the model thread).
            suggestion.timings["gate_cpu_us"] = round((time.thread_time() - gate_cpu) * 1e6, 1)
        self._remember_shown(prepared, suggestion)
        return suggestion

    def finish_rest(self, prepared: PreparedCompletion, result: GenerationResult) -> Suggestion | None:
        """The whole generation behind an early (time budget) suggestion: cached, and shown on typed-ahead.

        When the suggestion still shows (the user paused, or typed its start), the rest becomes part
        of it, so the next typed-ahead answer carries it; the next identical prompt gets it from the cache.
        """
        self._store_in_cache(prepared, result)
        shown = self._shown.get(prepared.path)
        if shown is None or not prepared.path:
            return None
        whole = self._shaped_and_verified(prepared, result)
        typed = shown.document[prepared.offset:shown.offset] if shown.offset >= prepared.offset else None
        if (typed is None or len(shown.document) != len(prepared.document) + len(typed)
                or not shown.document.startswith(prepared.document[:prepared.offset])
                or not shown.document.endswith(prepared.document[prepared.offset:])
                or not whole.text.startswith(typed + shown.text)):
            return None  # the user moved on, or the whole answer does not extend what shows
        self._shown[prepared.path] = attrs.evolve(shown, text=whole.text[len(typed):])
        return whole

    def complete(self, text: str, offset: int, *, path: str, language_id: str | None = None) -> Suggestion:
        """The whole pipeline with fresh context, blocking (the one-shot CLI and benchmarks)."""
        self.wait_until_loaded()
        prepared = self.prepare(text, offset, path=path, language_id=language_id, refresh_context=True)
        job = self.submit(prepared)
        if job is not None:
            job.answer_taken()  # this caller waits for the whole answer, not an early part
        result = job.final.result() if job is not None else None  # the whole answer, not a budget's part
        return self.finish(prepared, result)

    def prewarm(self, text: str, offset: int, *, path: str, language_id: str | None = None,
                version: int | None = None) -> Future | None:
        """Refresh related context and evaluate the prompt now, so the next keystroke pays only the tail."""
        if not self.settings.completion.prewarm or not self.worker.loaded.is_set() or self.backend is None:
            return None
        if self.worker.busy_with_completion():
            return None  # the user is waiting for a suggestion: the next pause prewarms
        prepared = self.prepare(text, offset, path=path, language_id=language_id, kind="prewarm",
                                refresh_context=True, version=version)
        job = self.submit(prepared)
        if job is None:
            return None
        snippets = prepared.context.snippets if prepared.context else ()

        def pin(future: Future) -> None:
            # Only a fully evaluated prompt becomes the keystroke path's prompt head.
            if not future.cancelled() and future.exception() is None:
                self._pinned_snippets[path] = snippets
                self._window_starts[path] = prepared.window_start

        job.future.add_done_callback(pin)
        return job.future

    # -- cache and typed-ahead reuse (issue 6) ----------------------------------------------

    @property
    def cache(self) -> CompletionCache | None:
        """The completion cache, opened on first use; None when disabled or for the fake engine."""
        # The fake engine exists for protocol tests, which must see every request reach the engine.
        if not self.settings.cache.enabled or self.settings.engine == "fake":
            return None
        if self._cache is None:
            with self._cache_lock:
                if self._cache is None:
                    self._cache = CompletionCache.from_settings(self.settings.cache)
        return self._cache

    def _cache_params(self, prepared: PreparedCompletion) -> dict[str, object]:
        """Every setting that changes the model's output for a prompt (beyond the model itself)."""
        request = prepared.request
        assert request is not None
        return {
            "max_tokens": request.max_tokens, "stop": list(request.stop),
            "sampling": attrs.asdict(request.sampling), "mode": prepared.gate.mode,
            "indent": prepared.gate.indent, "max_block_lines": self.settings.completion.max_block_lines,
            "context_size": self.settings.model.context_size, "stop_rules": STOP_RULES_VERSION,
            # A block stops where it would repeat the code below the cursor, which the prompt may not show.
            "following": prepared.following[:400] if prepared.gate.mode == "block" else "",
            "heal": prepared.heal,  # the same prompt text without the cursor's trailing space
        }

    def _look_up_cache(self, prepared: PreparedCompletion, backend: DecodeBackend,
                       prompt: tuple[str, str | None]) -> None:
        """Fill prepared.cached from the cache when this exact prompt was answered before."""
        cache = self.cache
        if cache is None or prepared.request is None or prepared.request.max_tokens <= 0:
            return
        prepared.cache_key = completion_key(backend.model_id, self._cache_params(prepared), prompt)
        hit = cache.get(prepared.cache_key)
        if hit is not None:
            prepared.cached, prepared.cache_tier = hit

    def _store_in_cache(self, prepared: PreparedCompletion, result: GenerationResult) -> None:
        """Keep a finished (not cancelled) model answer for the next identical prompt."""
        cache = self.cache
        if cache is None or prepared.cache_key is None or result.finish_reason not in ("stop", "length", "eog"):
            return
        cache.set(prepared.cache_key, CachedCompletion(text=result.text, finish_reason=result.finish_reason,
                                                       generated_tokens=result.generated_tokens))

    @staticmethod
    def _cached_result(prepared: PreparedCompletion) -> GenerationResult:
        cached = prepared.cached
        assert cached is not None and prepared.request is not None
        return GenerationResult(text=cached.text, finish_reason=cached.finish_reason,  # type: ignore[arg-type]
                                prompt_tokens=len(prepared.request.prompt_tokens),
                                generated_tokens=cached.generated_tokens)

    def _typed_ahead(self, text: str, offset: int, path: str) -> PreparedCompletion | None:
        """When the user typed the start of the suggestion being shown, the rest of it (else None)."""
        if not self.settings.cache.typed_ahead or self.cache is None:
            return None
        shown = self._shown.get(path)
        if shown is None or offset <= shown.offset:
            return None
        typed = text[shown.offset:offset]
        if (len(typed) >= len(shown.text) or not shown.text.startswith(typed)
                or len(text) != len(shown.document) + len(typed)
                or not text.startswith(shown.document[:shown.offset])
                or not text.endswith(shown.document[shown.offset:])):
            return None
        return PreparedCompletion(gate=Gate(mode=shown.mode),  # type: ignore[arg-type]
                                  offset=offset, path=path, document=text,
                                  typed_ahead=shown.text[len(typed):])

    def _typed_ahead_suggestion(self, prepared: PreparedCompletion) -> Suggestion:
        """The rest of the shown suggestion; verification already passed on the same final text."""
        assert prepared.typed_ahead is not None
        suggestion = Suggestion(text=prepared.typed_ahead, mode=prepared.gate.mode, offset=prepared.offset,
                                timings={"prepare_ms": round(prepared.prepare_ms, 2),
                                         "cache": "typed-ahead"},  # type: ignore[dict-item]
                                raw_text=prepared.typed_ahead)
        self._remember_shown(prepared, suggestion)
        return suggestion

    def _remember_shown(self, prepared: PreparedCompletion, suggestion: Suggestion) -> None:
        """Per document: the suggestion now showing (or none), for typed-ahead reuse."""
        if not prepared.path:
            return
        if suggestion.text:
            self._shown[prepared.path] = ShownSuggestion(document=prepared.document, offset=prepared.offset,
                                                         text=suggestion.text, mode=suggestion.mode)
            if self.feedback is not None:
                suggestion.id = self.feedback.tracker.shown(prepared.path, prepared.document, prepared.offset,
                                                            suggestion.text, self._feedback_features(prepared, suggestion))
        else:
            self._shown.pop(prepared.path, None)

    # -- acceptance tracking (issue 16; the logic lives in feedback/) ------------------------

    def document_changed(self, path: str, text: str) -> None:
        """The document's text after an edit: advances or decides the suggestion shown in it."""
        if self.feedback is not None:
            self.feedback.tracker.changed(path, text)

    def cursor_at(self, path: str, text: str, offset: int) -> None:
        """Where the client says the cursor is; away from a shown suggestion means it was left."""
        if self.feedback is not None and path:
            self.feedback.tracker.cursor_at(path, text, offset)

    def suggestion_accepted(self, suggestion_id: str) -> bool:
        """The client's explicit accept of a suggestion (the inline item's command)."""
        return self.feedback is not None and self.feedback.tracker.accepted_explicitly(suggestion_id)

    def suggestion_shown(self, suggestion_id: str) -> bool:
        """The client's report that a suggestion is on screen (VS Code's show callback)."""
        return self.feedback is not None and self.feedback.tracker.shown_by_client(suggestion_id)

    def suggestion_partially_accepted(self, suggestion_id: str, kind: str) -> bool:
        """The client's report of a partial accept (kind: word or line)."""
        return self.feedback is not None and self.feedback.tracker.partially_accepted(suggestion_id, kind)

    def _below_acceptance_threshold(self, prepared: PreparedCompletion, suggestion: Suggestion) -> bool:
        """Whether gating withholds the suggestion: P(accept) under `completion.acceptanceThreshold`."""
        threshold = self.settings.completion.acceptance_threshold
        # Only model answers carry the confidence the gate reads (a cache hit has no log-probabilities).
        if threshold <= 0 or suggestion.result is None or not suggestion.result.token_logprobs:
            return False
        model = self.feedback.model if self.feedback is not None else shipped_prior()
        if model is None:
            return False
        chance = model.probability(self._feedback_features(prepared, suggestion, hashed=False), len(suggestion.text))
        suggestion.timings["p_accept"] = round(chance, 3)
        if chance < threshold and self.feedback is not None:
            self.feedback.withheld += 1
        return chance < threshold

    def _feedback_features(self, prepared: PreparedCompletion, suggestion: Suggestion,
                           hashed: bool = True) -> SuggestionFeatures:
        """What the feedback store keeps about a suggestion: numbers and names, never its text."""
        gate = prepared.gate
        context = prepared.context
        result = suggestion.result
        logprobs = result.shown_logprobs() if result is not None else []
        request = prepared.request
        if not hashed:
            prompt_hash = ""
        elif prepared.cache_key:  # the cache already hashed this prompt: no second hash per suggestion
            prompt_hash = prepared.cache_key[:16]
        elif request is not None and request.prompt_tokens:
            prompt_hash = hashlib.blake2b(array.array("q", request.prompt_tokens).tobytes(), digest_size=8).hexdigest()
        else:
            prompt_hash = ""
        backend = self.backend
        return SuggestionFeatures(
            language=context.language.name if context is not None and context.language is not None else "",
            mode="new-line" if gate.insert_line else gate.mode,
            context_kind="block-body" if gate.mode == "block" else "line-end" if prepared.line_before.strip()
            else "empty-line",
            snippets=len(context.snippets) if context is not None else 0,
            model_id=backend.model_id if backend is not None else "",
            source="typed-ahead" if prepared.typed_ahead is not None else "cache" if prepared.cached else "model",
            mean_logprob=round(sum(logprobs) / len(logprobs), 4) if logprobs else None,
            min_logprob=round(min(logprobs), 4) if logprobs else None,
            first_logprob=round(logprobs[0], 4) if logprobs else None,
            shown_tokens=len(logprobs),
            generated_tokens=result.generated_tokens if result is not None else 0,
            finish_reason=result.finish_reason if result is not None else "",
            prompt_hash=prompt_hash)
