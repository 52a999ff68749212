"""In-process llama.cpp: our own decode loop on llama-cpp-python's low-level API.

The high-level `Llama.create_completion` spends most of its time in Python per token; this loop
keeps per-token work to one sample, one detokenise and one single-token decode, samples in C,
and keeps the KV cache across requests so a keystroke only evaluates the tokens that changed.
"""

from __future__ import annotations

import contextlib
import ctypes
import logging
import math
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import attrs

from codeassist_lsp.config import ModelSettings, SpeculationSettings, effective_threads
from codeassist_lsp.engine.base import (
    CancelFlag,
    FinishReason,
    GenerationRequest,
    GenerationResult,
    PartialCallback,
    Sampling,
)
from codeassist_lsp.engine.speculative import (
    AdaptiveDraftLength,
    Drafter,
    DraftModelDrafter,
    PromptLookupDrafter,
    SpeculationStats,
    check_same_vocabulary,
)
from codeassist_lsp.errors import EngineError, ModelNotAvailable

log = logging.getLogger(__name__)
llama_log = logging.getLogger("llama.cpp")

# Prompt tokens per llama_decode call while a request runs when a decode cannot be aborted from
# inside (no abort callback): small enough that cancellation is noticed quickly. With the abort
# callback a chunk is a whole batch (model.batchSize): Qwen2.5-Coder 1.5B evaluates prompts ~15%
# faster in 512-token batches than in 64-token ones here.
PROMPT_CHUNK = 64
# Smallest prompt chunk while preemptions keep aborting chunks. One token: on 2 cores Qwen2.5-Coder
# 1.5B takes 61 ms for 1 token, 87 for 2, 124 for 4 but ~300 for 8 (its batch kernels switch at 8),
# and keys 120 ms apart leave gaps shorter than that: with 8 an action never advanced while typing.
MIN_PROMPT_CHUNK = 1
# The KV cache sequence a prewarm's prompt is staged in (0 holds the keystrokes' prompt).
STAGE_SEQ = 1
# Best-of-N samples generated side by side use KV sequences PARALLEL_SEQ .. PARALLEL_SEQ + MAX_PARALLEL - 1.
PARALLEL_SEQ = 2
MAX_PARALLEL = 8
# Token healing looks for its first token among this many of the likeliest (then 64 times as many).
HEALING_CANDIDATES = 64
# The exactness probe: tokens cached before it (beyond 512 keys, where llama.cpp's CPU attention
# would change kernels) and the largest verification batch it tries.
PROBE_CONTEXT = 520
PROBE_BATCH = 8
# ggml log levels: 1 debug, 2 info, 3 warn, 4 error, 5 continuation of the previous line.
# llama.cpp's info lines (hundreds per model load) are debug detail for us.
_LEVELS = {1: logging.DEBUG, 2: logging.DEBUG, 3: logging.WARNING, 4: logging.ERROR}
# Warnings llama.cpp prints on every load of the embedded models that need no action: the full-size
# sliding-window cache is what we ask for (rollback), and Gemma 3's GGUF marks `</s>` oddly.
_EXPECTED_WARNINGS = ("using full-size SWA cache", "control-looking token")
# What llama.cpp logs (as warnings and errors) when our abort callback stops a decode: a cancel.
_ABORT_LINES = ("removing memory module entries", "failed to decode, ret = 2", "compute status: 1",
                "compute_async failed with error 1")


def _import_llama_cpp():  # type: ignore[no-untyped-def]
    import llama_cpp

    return llama_cpp


_log_callback_ref = None  # ctypes callbacks must outlive the C side's use of them


def route_llama_logs_to_python() -> None:
    """Send llama.cpp's log lines to Python logging (stderr/log file), never to stdout."""
    global _log_callback_ref
    if _log_callback_ref is not None:
        return
    lib = _import_llama_cpp()

    @lib.llama_log_callback
    def _forward(level: int, text: bytes, _user: ctypes.c_void_p) -> None:
        message = text.decode("utf-8", "replace").rstrip()
        if message:
            severity = _LEVELS.get(level, logging.DEBUG)
            if severity == logging.WARNING and any(known in message for known in _EXPECTED_WARNINGS):
                severity = logging.DEBUG
            elif severity >= logging.WARNING and any(line in message for line in _ABORT_LINES):
                severity = logging.DEBUG
            llama_log.log(severity, "%s", message)

    _log_callback_ref = _forward
    lib.llama_log_set(_forward, ctypes.c_void_p(0))


_abort_callback_ref = None


def _abort_callback(lib):  # type: ignore[no-untyped-def]
    """llama.cpp's abort callback as a C function that reads one byte: libc's strlen.

    llama.cpp's CPU backend calls the abort callback between graph nodes (hundreds per decode);
    a Python callback would need the GIL each time. strlen(data) on our two-byte buffer returns
    its first byte's truth (0 for "\\0\\0", 1 for "\\1\\0"), which the caller reads as the bool
    "abort now": no Python, no GIL, a few nanoseconds. None where libc's symbols are not visible.
    """
    global _abort_callback_ref
    if _abort_callback_ref is None:
        try:
            strlen = ctypes.CDLL(None).strlen
            _abort_callback_ref = ctypes.cast(strlen, lib.ggml_abort_callback)
        except (OSError, AttributeError, TypeError):
            log.debug("no libc strlen: decodes stop at token boundaries only", exc_info=True)
            _abort_callback_ref = False
    return _abort_callback_ref or None


def gpu_offload_supported() -> bool:
    """Whether this llama.cpp build has a GPU backend."""
    return bool(_import_llama_cpp().llama_supports_gpu_offload())


def resolve_gpu_layers(requested: int) -> int:
    """-1 means every layer when the build can offload, else none; other values are taken as given."""
    if requested < 0:
        return 999 if gpu_offload_supported() else 0
    return requested


def _installed_model(path: Path) -> bool:
    """Whether the model file is one `codeassist models install` put in the model cache."""
    try:
        from codeassist_lsp.engine.models import models_dir

        return path.resolve().is_relative_to(models_dir().resolve())
    except OSError:
        return False


def _model_params(lib, settings: ModelSettings, path: Path):  # type: ignore[no-untyped-def]
    """llama.cpp model parameters for these model settings and this model file."""
    params = lib.llama_model_default_params()
    params.n_gpu_layers = resolve_gpu_layers(settings.gpu_layers)
    if not _installed_model(path):
        # A model file of the user's own may be copied over in place (cp), and a mapped file cut short
        # ends the process (SIGBUS) on its next decode: read it into memory instead. Installed models
        # stay mapped, one copy in the page cache for every editor window's server (1.4 GB for both
        # tiers, and the code model loads in ~0.6 s instead of ~1.7 s); `codeassist models install`
        # replaces them by renaming, which a mapping survives.
        params.load_mode = lib.LLAMA_LOAD_MODE_NONE
    if params.n_gpu_layers == 0:
        # Weights repacked for the CPU's matrix kernels are multiplied in another order for a
        # batch than for one token (Gemma 3's Q4_K: logits differ by ~0.7 at 4 tokens), which would
        # make speculative decoding inexact; measured without repacking: prompt speed unchanged.
        params.use_extra_bufts = False
    return params


def _use_batch_invariant_attention(lib, params) -> None:  # type: ignore[no-untyped-def]
    """Make a token's logits the same whether it is decoded alone or in a small batch (CPU only).

    With K and V cached in the same float type, llama.cpp's CPU attention picks its kernel by
    shape: one query over >= 512 keys splits the keys across threads, batches of >= 8 queries are
    tiled, and each sums in its own order. With K in Q8_0 and V in F16 every decode takes the
    one per-query kernel, so verification batches reproduce one-token decoding bit for bit
    (measured: batches of up to 7 tokens for Gemma 3, every size tried (up to 64) for SmolLM2, at
    40 to 3,000 cached tokens); that is what lets speculative decoding run by default. Measured
    cost: prompt evaluation 7% slower for Gemma 3, 23% for SmolLM2; one-token decoding unchanged;
    the K cache half the size.
    """
    params.flash_attn_type = lib.LLAMA_FLASH_ATTN_TYPE_ENABLED
    params.type_k = lib.GGML_TYPE_Q8_0
    params.type_v = lib.GGML_TYPE_F16


def _context_params(lib, settings: ModelSettings, *, batch_invariant: bool = True):  # type: ignore[no-untyped-def]
    """llama.cpp context parameters for these model settings."""
    params = lib.llama_context_default_params()
    params.n_ctx = settings.context_size
    params.n_batch = settings.batch_size
    params.n_ubatch = settings.batch_size
    params.n_threads = effective_threads(settings)
    params.n_threads_batch = effective_threads(settings)
    params.no_perf = True
    # Sliding-window models (Gemma 3) can only roll the cache back with a full-size SWA cache.
    params.swa_full = True
    # Sequence 1 stages a prewarm's prompt beside the one the keystrokes use (see LlamaBackend.stage),
    # sequences 2-9 hold best-of-N samples generated side by side (LlamaBackend._run_samples); one
    # unified buffer of n_ctx cells, so all see the whole context and share their common head.
    params.n_seq_max = PARALLEL_SEQ + MAX_PARALLEL
    params.kv_unified = True
    if batch_invariant and resolve_gpu_layers(settings.gpu_layers) == 0:
        _use_batch_invariant_attention(lib, params)
    return params


def _create_context(lib, model, settings: ModelSettings):  # type: ignore[no-untyped-def]
    """A llama.cpp context; llama.cpp's default attention layout when the batch-invariant one fails."""
    ctx = lib.llama_init_from_model(model, _context_params(lib, settings))
    if not ctx and resolve_gpu_layers(settings.gpu_layers) == 0:
        # e.g. a model whose attention llama.cpp cannot run with flash attention on this CPU
        log.warning("llama.cpp refused the batch-invariant cache layout (K Q8_0, V F16, flash attention); "
                    "using its default layout: speculation in mode 'auto' will measure itself off")
        ctx = lib.llama_init_from_model(model, _context_params(lib, settings, batch_invariant=False))
    return ctx


def _preload_key(path: Path, settings: ModelSettings) -> tuple[object, ...]:
    """What must match for a preloaded model and context to serve these settings."""
    return (str(path), settings.gpu_layers, settings.context_size, settings.batch_size,
            effective_threads(settings))


class _Preload:
    """One GGUF (weights and a context) loading on a background thread before the settings arrive."""

    def __init__(self, path: Path, settings: ModelSettings) -> None:
        self.key = _preload_key(path, settings)
        self.path, self.settings = path, settings
        self.model = self.ctx = None
        self.abandoned = False
        self._lock = threading.Lock()  # the load finishing and a discard may race
        # Import on the caller's thread: a thread importing beside the LSP stack's imports
        # would be starved of the GIL and start loading only after them.
        self._lib = _import_llama_cpp()
        route_llama_logs_to_python()
        self.thread = threading.Thread(target=self._load, name="codeassist-preload", daemon=True)
        self.thread.start()

    def _load(self) -> None:
        lib = self._lib
        started = time.perf_counter()
        # Each llama.cpp log line calls back into Python; with the GIL handed over every 5 ms
        # those callbacks, not the loading, would set the pace while the main thread imports.
        switch_interval = sys.getswitchinterval()
        sys.setswitchinterval(min(switch_interval, 0.0001))
        model = ctx = None
        try:
            lib.llama_backend_init()
            model = lib.llama_model_load_from_file(str(self.path).encode(), _model_params(lib, self.settings, self.path))
            if model:
                ctx = _create_context(lib, model, self.settings)
            if ctx:
                # One decode allocates the compute buffers the first completion would wait for.
                bos = lib.llama_vocab_bos(lib.llama_model_get_vocab(model))
                token = (lib.llama_token * 1)(bos if bos >= 0 else 0)
                lib.llama_decode(ctx, lib.llama_batch_get_one(token, 1))
                lib.llama_memory_clear(lib.llama_get_memory(ctx), True)
        finally:
            sys.setswitchinterval(switch_interval)
        log.info("preloaded %s in %.0f ms", self.path.name, (time.perf_counter() - started) * 1000)
        with self._lock:
            if self.abandoned:
                self._free(model, ctx)
            else:
                self.model, self.ctx = model or None, ctx or None

    def _free(self, model, ctx) -> None:  # type: ignore[no-untyped-def]
        if ctx:
            self._lib.llama_free(ctx)
        if model:
            self._lib.llama_model_free(model)

    def abandon(self) -> None:
        """Free the model now, or as soon as its load finishes."""
        with self._lock:
            self.abandoned = True
            self._free(self.model, self.ctx)
            self.model = self.ctx = None


_preload: _Preload | None = None
_preload_lock = threading.Lock()


def preload_model(path: Path, settings: ModelSettings | None = None) -> None:
    """Start loading a model now, so the engine created after `initialize` finds it ready."""
    global _preload
    with _preload_lock:
        if _preload is None:
            _preload = _Preload(path, settings or ModelSettings())


def _pop_preload() -> _Preload | None:
    global _preload
    with _preload_lock:
        preload, _preload = _preload, None
    return preload


def _take_preloaded(path: Path, settings: ModelSettings):  # type: ignore[no-untyped-def]
    """(model, context) preloaded for exactly these settings (waiting for them), else None."""
    preload = _pop_preload()
    if preload is None:
        return None
    if preload.key != _preload_key(path, settings):
        preload.abandon()
        return None
    preload.thread.join()
    if preload.model is None or preload.ctx is None:
        preload.abandon()
        return None
    return preload.model, preload.ctx


def discard_preloaded_model() -> None:
    """Free a preloaded model nobody will use (e.g. the settings chose the fake engine)."""
    preload = _pop_preload()
    if preload is not None:
        preload.abandon()


class LlamaBackend:
    """One GGUF model and one context, driven by a single thread at a time."""

    heals_tokens = True
    """Honours GenerationRequest.first_token_prefix (token healing)."""

    def __init__(self, path: Path, settings: ModelSettings, *, prompt_format: str = "prefix",
                 stop: tuple[str, ...] = (), speculation: SpeculationSettings | None = None) -> None:
        lib = _import_llama_cpp()
        self._lib = lib
        route_llama_logs_to_python()
        lib.llama_backend_init()
        if not path.is_file():
            raise ModelNotAvailable(f"Model file {path} does not exist.")
        started = time.perf_counter()
        model_params = _model_params(lib, settings, path)
        self.gpu_layers = model_params.n_gpu_layers
        model, ctx = _take_preloaded(path, settings) or (None, None)
        model = model or lib.llama_model_load_from_file(str(path).encode(), model_params)
        if not model:
            raise ModelNotAvailable(
                f"llama.cpp could not load {path}: not a valid GGUF model (see the log for details).",
                hint="Reinstall the model or point codeassist.model.path at another GGUF file.",
            )
        self._model = model
        self._vocab = lib.llama_model_get_vocab(model)
        self.n_vocab = lib.llama_vocab_n_tokens(self._vocab)
        self.n_layers = lib.llama_model_n_layer(model) if hasattr(lib, "llama_model_n_layer") else -1

        if not ctx:
            ctx = _create_context(lib, model, settings)
        if not ctx:
            lib.llama_model_free(model)
            raise EngineError(f"llama.cpp could not create a context of {settings.context_size} tokens.")
        self._ctx = ctx
        self._memory = lib.llama_get_memory(ctx)
        # Cancelling a request sets this byte; llama_decode polls it (see _abort_callback).
        self._abort = (ctypes.c_ubyte * 2)()
        self._cancel: CancelFlag | None = None
        self._prompt_chunk = PROMPT_CHUNK
        callback = _abort_callback(lib)
        if callback is not None:
            lib.llama_set_abort_callback(ctx, callback, ctypes.cast(self._abort, ctypes.c_void_p))
            self._prompt_chunk = max(PROMPT_CHUNK, min(settings.batch_size, lib.llama_n_batch(ctx)))
        self._chunk_now = self._prompt_chunk
        self.n_ctx = lib.llama_n_ctx(ctx)
        self.model_id = f"{path.name}:{path.stat().st_size}"
        self.prompt_format = prompt_format
        self.stop = stop
        self._cached: list[int] = []  # tokens whose keys/values are in the KV cache, in order
        # Tokens held by each side-by-side sample's KV sequence (kept across a preemption to resume).
        self._sample_cached: dict[int, list[int]] = {}
        self.parallel_samples = MAX_PARALLEL
        # Measured ms per decode step by number of sequences decoded together (moving averages).
        self.parallel_step_ms: dict[int, float] = {}
        self._samplers: dict[Sampling, object] = {}
        self._piece_buffer = ctypes.create_string_buffer(256)
        self._token_array = (lib.llama_token * max(PROMPT_CHUNK, 1))()
        # Speculative decoding: a drafter guesses, one batch with logits at every position verifies.
        self.speculation = speculation if speculation is not None else SpeculationSettings()
        self.speculation_stats = SpeculationStats()  # cumulative over requests
        self.last_speculation = SpeculationStats()  # of the latest request
        self._draft_model: LlamaBackend | None = None
        self._draft_length = AdaptiveDraftLength(self.speculation.min_draft_tokens,
                                                 self.speculation.max_draft_tokens)
        self._batch_capacity = 0
        self._batch = None
        self._exact_limit: int | None = None  # measured on first use (see exact_batch_limit)
        # True: requests never wait for the exactness probe (the quality model's takes ~8 s on a
        # CPU); a background job runs it and 'auto' speculates once it is known.
        self.probe_in_background = False
        # Measured speed on this machine (moving averages over requests; None until measured):
        # what tier choices and time estimates are based on.
        self.prompt_ms_per_token: float | None = None
        self.decode_ms_per_token: float | None = None
        self.measured_phases: set[str] = set()
        """Phases (prompt, decode) this session measured; until then a speed is an earlier session's record."""
        self.speed_record_key = ""
        """Where tiers.py records this model's speeds (set by its probe)."""
        self.load_ms = (time.perf_counter() - started) * 1000
        self._log_offload(path.name, effective_threads(settings))

    def _log_offload(self, name: str, threads: int) -> None:
        """One clear line of where the model runs."""
        if not gpu_offload_supported():
            where = "CPU only (this llama.cpp build has no GPU backend; see benchmarks/gpu.sh)"
        elif self.gpu_layers <= 0:
            where = "CPU only (GPU backend present, gpu_layers=0)"
        else:
            total = self.n_layers if self.n_layers > 0 else "?"
            offloaded = min(self.gpu_layers, self.n_layers) if self.n_layers > 0 else self.gpu_layers
            where = f"GPU: {offloaded}/{total} layers offloaded"
        log.info("loaded %s in %.0f ms: %s; n_ctx %d; %d threads", name, self.load_ms, where, self.n_ctx,
                 threads)
        self.offload_summary = where

    # -- tokens ---------------------------------------------------------------------------

    def tokenize(self, text: str, *, add_bos: bool = False, special: bool = False) -> list[int]:
        """Text to tokens with the model's own tokenizer."""
        data = text.encode("utf-8")
        capacity = len(data) + 8
        buffer = (self._lib.llama_token * capacity)()
        count = self._lib.llama_tokenize(self._vocab, data, len(data), buffer, capacity, add_bos, special)
        if count < 0:
            buffer = (self._lib.llama_token * -count)()
            count = self._lib.llama_tokenize(self._vocab, data, len(data), buffer, -count, add_bos, special)
        return list(buffer[:count])

    def count_tokens(self, text: str) -> int:
        """Number of tokens the model sees for text."""
        return len(self.tokenize(text))

    def token_bytes(self, token: int) -> bytes:
        """The raw bytes of one token (special tokens render as nothing)."""
        count = self._lib.llama_token_to_piece(self._vocab, token, self._piece_buffer, 256, 0, False)
        if count < 0:
            bigger = ctypes.create_string_buffer(-count)
            count = self._lib.llama_token_to_piece(self._vocab, token, bigger, -count, 0, False)
            return bigger.raw[:count]
        return self._piece_buffer.raw[:count]

    def token_text(self, token: int) -> bytes:
        """The vocabulary's stored text of a token (special tokens included), for vocabulary checks."""
        return bytes(self._lib.llama_vocab_get_text(self._vocab, token) or b"")

    def fim_tokens(self) -> tuple[int, int, int] | None:
        """(prefix, suffix, middle) fill-in-the-middle token ids when the vocabulary has them."""
        ids = (self._lib.llama_vocab_fim_pre(self._vocab), self._lib.llama_vocab_fim_suf(self._vocab),
               self._lib.llama_vocab_fim_mid(self._vocab))
        return ids if all(i >= 0 for i in ids) else None

    def adds_bos(self) -> bool:
        """Whether prompts for this model start with a BOS token."""
        return bool(self._lib.llama_vocab_get_add_bos(self._vocab))

    def bos(self) -> int:
        """The BOS token id."""
        return int(self._lib.llama_vocab_bos(self._vocab))

    def chat_template(self) -> str | None:
        """The chat template stored in the GGUF, if any."""
        raw = self._lib.llama_model_chat_template(self._model, None)
        return raw.decode("utf-8", "replace") if raw else None

    # -- KV cache -------------------------------------------------------------------------

    @property
    def cached_tokens(self) -> tuple[int, ...]:
        """The tokens currently held in the KV cache."""
        return tuple(self._cached)

    def _cached_prefix(self, tokens: list[int]) -> int:
        """How many leading tokens of `tokens` the KV cache already holds."""
        common = 0
        for cached, wanted in zip(self._cached, tokens):
            if cached != wanted:
                break
            common += 1
        return common

    def _truncate_cache(self, keep: int) -> int:
        """Drop cached positions >= keep; fall back to clearing when the cache cannot roll back."""
        if keep >= len(self._cached):
            return len(self._cached)
        if self._lib.llama_memory_seq_rm(self._memory, 0, keep, -1):
            del self._cached[keep:]
            return keep
        log.debug("KV cache could not be truncated at %d; clearing it", keep)
        self._lib.llama_memory_clear(self._memory, True)
        self._cached.clear()
        self._sample_cached.clear()
        return 0

    def _decode(self, tokens: list[int]) -> bool:
        """Evaluate tokens at the end of the cache (one llama_decode call); False when cancelled inside it."""
        count = len(tokens)
        if count > len(self._token_array):
            self._token_array = (self._lib.llama_token * count)()
        for i, token in enumerate(tokens):
            self._token_array[i] = token
        batch = self._lib.llama_batch_get_one(self._token_array, count)
        if not self._checked_decode(batch):
            return False
        self._cached.extend(tokens)
        return True

    def _checked_decode(self, batch) -> bool:  # type: ignore[no-untyped-def]
        """llama_decode; False when aborted by a cancel, EngineError on failure."""
        status = self._lib.llama_decode(self._ctx, batch)
        while status == 2 and not (self._cancel is not None and self._cancel.is_set):
            # Aborted by a stale cancel of an earlier request that raced this one's start: again.
            self._abort[0] = 0
            status = self._lib.llama_decode(self._ctx, batch)
        if status == 2:
            # llama.cpp removed the aborted batch's positions itself: the cache holds self._cached.
            return False
        if status != 0:
            # A failed decode leaves the cache in an unknown state: start clean next time.
            self._lib.llama_memory_clear(self._memory, True)
            self._cached.clear()
            self._sample_cached.clear()
            raise EngineError(f"llama_decode failed with status {status}")
        return True

    def _decode_items(self, items: list[tuple[int, int, int, bool]]) -> bool:
        """One llama_decode of (token, position, KV sequence, wants logits) items; False when cancelled."""
        lib = self._lib
        if len(items) > self._batch_capacity:
            if self._batch is not None:
                lib.llama_batch_free(self._batch)
            self._batch_capacity = max(len(items), 16)
            self._batch = lib.llama_batch_init(self._batch_capacity, 0, 1)
        batch = self._batch
        for i, (token, position, seq, logits) in enumerate(items):
            batch.token[i] = token
            batch.pos[i] = position
            batch.n_seq_id[i] = 1
            batch.seq_id[i][0] = seq
            batch.logits[i] = 1 if logits else 0
        batch.n_tokens = len(items)
        return self._checked_decode(batch)

    def _decode_all_logits(self, tokens: list[int]) -> bool:
        """Evaluate tokens at the end of the cache with logits at every position; False when cancelled."""
        start = len(self._cached)
        if not self._decode_items([(token, start + i, 0, True) for i, token in enumerate(tokens)]):
            return False
        self._cached.extend(tokens)
        return True

    def _sync_cache(self, tokens: list[int], cancel: CancelFlag) -> bool:
        """Make the KV cache hold exactly `tokens` (prefix reuse); False when cancelled meanwhile."""
        common = self._cached_prefix(tokens)
        keep = self._truncate_cache(common)
        pending = tokens[keep:]
        while pending:
            if cancel.is_set:
                return False
            chunk, pending = pending[:self._prompt_chunk], pending[self._prompt_chunk:]
            if not self._decode(chunk):
                return False
        return True

    def greedy_continuation(self, history: list[int], k: int, cancel: CancelFlag) -> list[int]:
        """k greedy tokens after history, reusing the KV cache (this model acting as a draft)."""
        if not history or k <= 0 or len(history) + k >= self.n_ctx:
            return []
        # Tokens the cache lacks (the target's correction, the last accepted guess) go in one
        # decode; the last history token is evaluated again when fully cached: its logits are needed.
        common = self._cached_prefix(history)
        pending = history[self._truncate_cache(min(common, len(history) - 1)):]
        while len(pending) > self._prompt_chunk:
            if cancel.is_set or not self._decode(pending[:self._prompt_chunk]):
                return []
            pending = pending[self._prompt_chunk:]
        if not self._decode(pending):
            return []
        drafted: list[int] = []
        while True:
            token = self._greedy_tokens(1)[0]
            if self._lib.llama_vocab_is_eog(self._vocab, token):
                break
            drafted.append(token)
            if len(drafted) >= k or cancel.is_set or not self._decode([token]):
                break
        return drafted

    # -- speculation --------------------------------------------------------------------

    def _greedy_tokens(self, count: int) -> list[int]:
        """argmax of the logits of the last `count` outputs of the latest decode, in batch order.

        What the greedy sampler picks (the first maximum), read through one numpy view of the
        logits instead of one sampler call per position: the sampler copies the whole vocabulary
        into a candidate array each time (0.1 ms for SmolLM2, 0.6 ms for Gemma's 262k tokens).
        """
        import numpy as np

        pointer = self._lib.llama_get_logits_ith(self._ctx, -count)
        return np.ctypeslib.as_array(pointer, shape=(count, self.n_vocab)).argmax(axis=1).tolist()

    def attach_draft(self, draft: LlamaBackend) -> None:
        """Use `draft` to guess tokens; refuses a model whose vocabulary differs (VocabularyMismatch)."""
        check_same_vocabulary(self, draft)
        self._draft_model = draft
        log.info("speculative decoding with draft model %s (up to %d tokens per batch)", draft.model_id,
                 self.speculation.max_draft_tokens)

    def exact_batch_limit(self, cancel: CancelFlag | None = None) -> int:
        """The most tokens a verification batch may hold with logits bit-identical to one-token decoding.

        Verification reads logits from a batch; only where they equal one-token decoding is
        speculative greedy output token-for-token identical. Whether they do depends on the
        build, the hardware and the attention layout (see _use_batch_invariant_attention): measured
        once per model and build, beyond 512 cached keys (where llama.cpp's CPU attention changes
        kernels), for batches of 2 to PROBE_BATCH tokens. 1 means no batch is exact: 'auto' does
        not speculate then.
        """
        if self._exact_limit is None:
            import numpy as np

            snippet = "def area(width, height):\n    return width * height\n\n"
            probe = self.tokenize(snippet * 60, add_bos=self.adds_bos())
            head, tail = probe[:PROBE_CONTEXT], probe[PROBE_CONTEXT:PROBE_CONTEXT + PROBE_BATCH]
            cancel = cancel or CancelFlag()

            def logits(index: int):  # type: ignore[no-untyped-def]
                pointer = self._lib.llama_get_logits_ith(self._ctx, index)
                return np.ctypeslib.as_array(pointer, shape=(self.n_vocab,)).copy()

            with self._attached(cancel):
                probe_started = time.perf_counter()
                reused = self._cached_prefix(head)

                def evaluated(tokens: list[int]) -> int:
                    return len(tokens) - reused

                # The head is reused from the cache when an earlier, preempted probe evaluated it.
                if not self._sync_cache(head, cancel):
                    return 1  # cancelled (preempted, shutdown): measure again next time
                single = []
                started = time.perf_counter()
                self._note_speed("prompt", (started - probe_started) * 1000, evaluated(head))
                for token in tail:
                    if not self._decode([token]):
                        return 1
                    single.append(logits(-1))
                self._note_speed("decode", (time.perf_counter() - started) * 1000, len(tail))
                limit, worst = 1, 0.0
                for size in range(2, len(tail) + 1):
                    self._truncate_cache(len(head))
                    if not self._decode_all_logits(tail[:size]):
                        return 1
                    worst = max(float(np.abs(logits(i) - single[i]).max()) for i in range(size))
                    if worst > 0:
                        break
                    limit = size
            self._truncate_cache(0)
            self._exact_limit = limit
            if limit < 2:
                log.info("%s: batched logits differ from one-token decoding by up to %.3f; speculative "
                         "decoding in mode 'auto' is off for it (greedy output would not be exact)",
                         self.model_id, worst)
            else:
                log.info("%s: verification batches of up to %d tokens are exact; 'auto' speculates "
                         "within that", self.model_id, limit)
        return self._exact_limit

    @contextlib.contextmanager
    def _attached(self, cancel: CancelFlag) -> Iterator[None]:
        """While the block runs, cancelling `cancel` also aborts a llama_decode in progress."""
        if self._cancel is cancel:  # nested (the probe inside a request): already attached
            yield
            return
        self._abort[0] = 0
        self._cancel = cancel
        cancel.abort_byte = self._abort
        if cancel.is_set:  # cancelled before it was attached
            self._abort[0] = 1
        try:
            yield
        finally:
            cancel.abort_byte = None
            self._cancel = None
            self._abort[0] = 0

    def set_exact_batch_limit(self, limit: int) -> None:
        """Adopt an exactness probe result recorded earlier for this model, build and hardware."""
        self._exact_limit = max(1, int(limit))

    def warm_up(self) -> None:
        """One decode: touches every weight page and allocates compute buffers before the first request."""
        token = self.bos() if self.bos() >= 0 else 0
        cancel = CancelFlag()
        with self._attached(cancel):
            self._truncate_cache(0)
            self._decode([token])
            self._truncate_cache(0)

    def _drafter(self, request: GenerationRequest, cancel: CancelFlag | None = None) -> Drafter | None:
        """The drafter for this request; None when speculation is off or sampling is not greedy."""
        mode = self.speculation.mode
        # Greedy acceptance is exact only for greedy sampling; sampled requests decode plainly.
        if mode == "off" or request.sampling.temperature > 0:
            return None
        # 'auto' speculates only where it cannot change the output; explicit modes always do.
        if mode == "auto" and self._exact_limit is None and self.probe_in_background:
            return None  # not measured yet (a background job does it): no speculation meanwhile
        if mode == "auto" and self.exact_batch_limit(cancel) < 2:
            return None
        if self._draft_model is not None and mode in ("auto", "draft-model"):
            drafter = DraftModelDrafter(self._draft_model)
            prompt = request.prompt_tokens
            if len(prompt) + request.max_tokens >= self.n_ctx:
                prompt = prompt[-(self.n_ctx - request.max_tokens - 1):]  # as run() truncates it
            drafter.prefill(prompt, cancel or CancelFlag())  # counted as prompt time
            return drafter
        if mode in ("auto", "prompt-lookup"):
            return PromptLookupDrafter(self.speculation.ngram_max, self.speculation.ngram_min)
        return None

    def _sampler(self, sampling: Sampling):  # type: ignore[no-untyped-def]
        sampler = self._samplers.get(sampling)
        if sampler is None:
            lib = self._lib
            sampler = lib.llama_sampler_chain_init(lib.llama_sampler_chain_default_params())
            if sampling.temperature <= 0:
                lib.llama_sampler_chain_add(sampler, lib.llama_sampler_init_greedy())
            else:
                lib.llama_sampler_chain_add(sampler, lib.llama_sampler_init_top_k(sampling.top_k))
                lib.llama_sampler_chain_add(sampler, lib.llama_sampler_init_top_p(sampling.top_p, 1))
                lib.llama_sampler_chain_add(sampler, lib.llama_sampler_init_temp(sampling.temperature))
                lib.llama_sampler_chain_add(sampler, lib.llama_sampler_init_dist(sampling.seed))
            self._samplers[sampling] = sampler
        return sampler

    # -- the decode loop ------------------------------------------------------------------

    def run(self, request: GenerationRequest, cancel: CancelFlag,
            on_partial: PartialCallback | None = None) -> GenerationResult:
        """Evaluate the prompt reusing the KV cache, then generate until a stop condition."""
        with self._attached(cancel):
            return self._run(request, cancel, on_partial)

    def _run(self, request: GenerationRequest, cancel: CancelFlag,
             on_partial: PartialCallback | None = None) -> GenerationResult:
        result = GenerationResult(prompt_tokens=len(request.prompt_tokens))
        prompt = list(request.prompt_tokens)
        if request.samples:
            return self._run_samples(request, cancel, result)
        # Samples kept for a preempted best-of-N hold KV cells this request may need: they are rebuilt
        # when it resumes.
        self._drop_samples()
        if len(prompt) + request.max_tokens >= self.n_ctx:
            # Keep the end of the prompt: the cursor is there.
            prompt = prompt[-(self.n_ctx - request.max_tokens - 1):]
        if request.score_tokens > 0:
            return self._score_prompt(prompt, request.score_tokens, cancel, result)
        started = time.perf_counter()
        # Chosen before the prompt is evaluated: the first 'auto' request runs the exactness probe,
        # which uses (and clears) the KV cache.
        drafter = self._drafter(request, cancel) if request.max_tokens > 0 else None

        if request.kind == "prewarm" and request.max_tokens <= 0:
            return self._stage(prompt, cancel, result, started)

        common = self._cached_prefix(prompt)
        if request.max_tokens > 0 and common == len(prompt):
            common -= 1  # the last prompt token must be evaluated again to get its logits
        keep = self._truncate_cache(common)
        result.reused_tokens = keep
        pending = prompt[keep:]
        while pending:
            if cancel.is_set:
                result.finish_reason = "cancelled"
                result.prompt_ms = (time.perf_counter() - started) * 1000
                return result
            chunk, pending = pending[:self._chunk_now], pending[self._chunk_now:]
            if not self._decode(chunk):
                # Preempted inside a chunk, whose work is lost: smaller chunks while preemptions keep
                # coming, larger ones while chunks get through, so work that typing keeps interrupting
                # still advances between keystrokes and runs at full speed once typing pauses.
                self._chunk_now = max(MIN_PROMPT_CHUNK, self._chunk_now // 2)
                result.finish_reason = "cancelled"
                result.prompt_ms = (time.perf_counter() - started) * 1000
                return result
            result.evaluated_tokens += len(chunk)
            self._chunk_now = min(self._prompt_chunk, self._chunk_now * 2)
        result.prompt_ms = (time.perf_counter() - started) * 1000
        if request.max_tokens <= 0:
            return result

        # Debounce: generation waits for the typing pause; a newer keystroke cancels us meanwhile.
        delay = request.not_before - time.monotonic()
        if delay > 0 and cancel.wait(delay):
            result.finish_reason = "cancelled"
            return result

        generate_started = time.perf_counter()
        budget = _Budget(request, on_partial, result, generate_started) if request.budget_ms > 0 and on_partial \
            else None
        result.finish_reason = self._generate(request, cancel, result, prompt, drafter, budget)
        result.generate_ms = (time.perf_counter() - generate_started) * 1000
        self._note_speed("prompt", result.prompt_ms, result.evaluated_tokens)
        self._note_speed("decode", result.generate_ms, result.generated_tokens - 1)
        return result

    def _stage(self, prompt: list[int], cancel: CancelFlag, result: GenerationResult,
               started: float) -> GenerationResult:
        """Evaluate a prewarm's prompt in KV sequence 1; adopt it as the cache only once complete.

        A prewarm (a typing pause) may change the prompt's head (refreshed snippets, a moved window);
        evaluating it in place would destroy the cache the keystrokes use, and the user often resumes
        typing before it ends (a 1,000-token prompt takes ~2 s on 2 cores). Staged beside it, a
        cancelled prewarm costs nothing: sequence 0 is untouched.
        """
        lib, memory = self._lib, self._memory
        common = self._cached_prefix(prompt)
        result.reused_tokens = common
        if common == len(prompt):
            self._truncate_cache(common)
            result.prompt_ms = (time.perf_counter() - started) * 1000
            return result
        lib.llama_memory_seq_rm(memory, STAGE_SEQ, -1, -1)
        if common:
            lib.llama_memory_seq_cp(memory, 0, STAGE_SEQ, 0, common)  # shared cells, no copy
        position = common
        pending = prompt[common:]
        while pending:
            chunk, pending = pending[:self._prompt_chunk], pending[self._prompt_chunk:]
            if cancel.is_set or not self._decode_in(STAGE_SEQ, chunk, position):
                lib.llama_memory_seq_rm(memory, STAGE_SEQ, -1, -1)
                result.finish_reason = "cancelled"
                result.prompt_ms = (time.perf_counter() - started) * 1000
                return result
            position += len(chunk)
            result.evaluated_tokens += len(chunk)
        # Adopt: sequence 0 becomes the staged prompt.
        lib.llama_memory_seq_rm(memory, 0, -1, -1)
        lib.llama_memory_seq_cp(memory, STAGE_SEQ, 0, -1, -1)
        lib.llama_memory_seq_rm(memory, STAGE_SEQ, -1, -1)
        self._cached = list(prompt)
        result.prompt_ms = (time.perf_counter() - started) * 1000
        self._note_speed("prompt", result.prompt_ms, result.evaluated_tokens)
        return result

    def _decode_in(self, seq: int, tokens: list[int], position: int) -> bool:
        """Evaluate tokens into KV sequence `seq` from `position` (logits at the last); False when cancelled."""
        last = len(tokens) - 1
        return self._decode_items([(token, position + i, seq, i == last) for i, token in enumerate(tokens)])

    def _note_speed(self, phase: str, elapsed_ms: float, tokens: int) -> None:
        """Fold one measurement into the moving average of ms per token (enough tokens only)."""
        if tokens < (16 if phase == "prompt" else 4) or elapsed_ms <= 0:
            return
        attribute = f"{phase}_ms_per_token"
        sample = elapsed_ms / tokens
        # An earlier session's record only seeds estimates: the first measurement replaces it (one
        # taken on a busy machine must not outweigh this session's for long).
        current = getattr(self, attribute) if phase in self.measured_phases else None
        self.measured_phases.add(phase)
        setattr(self, attribute, sample if current is None else 0.8 * current + 0.2 * sample)

    def _generate(self, request: GenerationRequest, cancel: CancelFlag, result: GenerationResult,
                  prompt: list[int], drafter: Drafter | None, budget: _Budget | None = None) -> str:
        lib = self._lib
        sampler = self._sampler(request.sampling)
        lib.llama_sampler_reset(sampler)
        self.last_speculation = SpeculationStats()
        history = list(prompt)  # what the drafters see: prompt and every emitted token
        # 'auto' keeps verification batches within the size measured to be exact; forced modes do not.
        max_guesses = (self.exact_batch_limit() - 1 if drafter is not None and self.speculation.mode == "auto"
                       else request.max_tokens)
        raw = bytearray()
        text = ""
        stops = request.stop + self.stop
        # Tokens the target model chose, with their log-probabilities; every entry but the last is
        # already in the KV cache (accepted drafts), the last one is decoded after it is emitted.
        unsure = math.log(request.guess_below) if budget is not None and request.guess_below > 0 else None
        want = request.want_logprobs or unsure is not None
        queue = [self._choose_starting_with(request.first_token_prefix, want) if request.first_token_prefix
                 else self._choose(sampler, -1, want)]
        produced = 0
        while queue:
            if cancel.is_set:
                return "cancelled"
            if produced >= request.max_tokens:
                return "length"
            token, logprob = queue.pop(0)
            produced += 1
            piece = self.token_bytes(token)
            if logprob is not None:
                result.token_logprobs.append(logprob)
                result.token_sizes.append(len(piece))
                if unsure is not None and logprob < unsure and budget is not None:  # budget: for mypy
                    # The confident part now; the guess and what follows it are generated on.
                    budget.deliver(text, at_word_end=not piece[:1].decode("latin-1").isalnum())
            if lib.llama_vocab_is_eog(self._vocab, token):
                return "eog"
            result.generated_tokens += 1
            history.append(token)
            raw.extend(piece)
            # Decode lazily so a multi-byte character split across tokens is never mangled.
            text = raw.decode("utf-8", "ignore")
            result.text = text
            if len(text.encode("utf-8")) == len(raw):  # no character split here: a place to resume
                result.token_ids = history[len(prompt):]
            cut = _first_stop(text, stops)
            if cut is None and request.stop_check is not None:
                cut = request.stop_check(text)
            if cut is not None:
                result.text = text[:cut]
                return "stop"
            if budget is not None:
                budget.check(text)
            if queue:
                continue
            if produced >= request.max_tokens:
                return "length"
            if len(self._cached) + 1 >= self.n_ctx:
                return "length"
            queue = self._advance(token, history, drafter, sampler, request, cancel,
                                  min(request.max_tokens - produced - 1, max_guesses), want)
        return "cancelled" if cancel.is_set else "length"

    def _choose(self, sampler, index: int, want_logprob: bool) -> tuple[int, float | None]:  # type: ignore[no-untyped-def]
        token = self._lib.llama_sampler_sample(sampler, self._ctx, index)
        return token, (self._logprob(token, index) if want_logprob else None)

    def _choose_starting_with(self, prefix: bytes, want_logprob: bool) -> tuple[int, float | None]:
        """Token healing: the likeliest next token whose text starts with `prefix`, and its
        log-probability given that it does (the likeliest token when none of the top ones does)."""
        import numpy as np

        logits = np.ctypeslib.as_array(self._lib.llama_get_logits_ith(self._ctx, -1), shape=(self.n_vocab,))
        # The vocabulary is never scanned: the candidates are the top logits (their mass is
        # nearly all of it), widened once when none of them starts with the prefix.
        for width in (HEALING_CANDIDATES, HEALING_CANDIDATES * 64):
            top = np.argpartition(logits, -width)[-width:]
            top = top[np.argsort(logits[top])[::-1]]
            allowed = [int(token) for token in top if self.token_bytes(int(token)).startswith(prefix)]
            if allowed:
                break
        else:  # the model will not write the prefix next: its own choice, which the caller drops
            token = int(top[0])
            return token, (self._logprob(token) if want_logprob else None)
        token = allowed[0]
        return token, (self._logprob(token, among=allowed) if want_logprob else None)

    def _advance(self, token: int, history: list[int], drafter: Drafter | None, sampler,  # type: ignore[no-untyped-def]
                 request: GenerationRequest, cancel: CancelFlag, guesses: int,
                 want: bool) -> list[tuple[int, float | None]]:
        """Decode `token` (with up to `guesses` drafted tokens after it) and return the target's next choices."""
        drafts: list[int] = []
        pacer = self._draft_length  # also decides whether guessing pays on this hardware
        started = time.perf_counter()
        if drafter is not None and guesses > 0 and pacer.speculate:
            room = self.n_ctx - len(self._cached) - 2
            k = pacer.guesses(min(guesses, room))
            if k > 0:
                drafts = drafter.draft(history, k, cancel)[:k]
        if not drafts:
            plain_started = time.perf_counter()
            if not self._decode([token]):
                return []  # cancelled inside the decode
            if drafter is not None:
                pacer.record_plain((time.perf_counter() - plain_started) * 1000)
            return [self._choose(sampler, -1, want)]
        base = len(self._cached)
        if not self._decode_all_logits([token, *drafts]):
            return []
        # Greedy only (sampled requests never speculate): the target's choice at every position.
        choices = self._greedy_tokens(len(drafts) + 1)
        accepted = 0
        while accepted < len(drafts) and choices[accepted] == drafts[accepted]:
            accepted += 1
        chosen = [(choice, self._logprob(choice, index) if want else None)
                  for index, choice in enumerate(choices[:accepted + 1])]
        pacer.update(len(drafts), accepted)
        pacer.record_batch((time.perf_counter() - started) * 1000, accepted + 1, len(drafts))
        self.last_speculation.add(len(drafts), accepted)
        self.speculation_stats.add(len(drafts), accepted)
        keep = base + 1 + accepted
        if self._truncate_cache(keep) != keep:
            # This cache could not roll back (it was cleared): rebuild it, then stop speculating.
            log.warning("KV cache cannot roll back; speculative decoding disabled for %s", self.model_id)
            self.speculation = attrs.evolve(self.speculation, mode="off")
            if not self._sync_cache(history + drafts[:accepted], cancel):
                return []
        return chosen

    # -- best-of-N samples side by side -----------------------------------------------------

    def _drop_samples(self) -> None:
        """Free the KV sequences of side-by-side samples."""
        for seq in self._sample_cached:
            self._lib.llama_memory_seq_rm(self._memory, seq, -1, -1)
        self._sample_cached.clear()

    def _run_samples(self, request: GenerationRequest, cancel: CancelFlag,
                     result: GenerationResult) -> GenerationResult:
        """Generate one answer per `request.samples` side by side: the prompt is evaluated once (sequence
        0), each sample's KV sequence shares its cells, and every step decodes one token of each unfinished
        sample in a single batch. Preempted, each sample's progress is returned and its KV sequence kept,
        so the resumed request (`request.resume`) goes on where it stopped."""
        started = time.perf_counter()
        prompt = list(request.prompt_tokens)
        room = self.n_ctx - len(prompt) - 2
        count = min(len(request.samples), MAX_PARALLEL, room // max(1, request.max_tokens))
        if count <= 0:
            result.finish_reason = "length"
            return result
        samplings = request.samples[:count]
        samples = [attrs.evolve(done, token_logprobs=list(done.token_logprobs), token_ids=list(done.token_ids))
                   for done in request.resume[:count]]
        fresh = len(samples)
        # 'cancelled' until finished: what a preemption returns for the ones still running
        samples += [GenerationResult(prompt_tokens=len(prompt), finish_reason="cancelled")
                    for _ in range(count - fresh)]
        result.samples = samples
        for index, sampling in enumerate(samplings):
            if index >= fresh:
                self._lib.llama_sampler_reset(self._sampler(sampling))
        # Sequence 0 holds the prompt but its last token, which each sample decodes in its own sequence.
        head = prompt[:-1]
        result.reused_tokens = self._cached_prefix(head)
        if not self._sync_cache(head, cancel):
            result.finish_reason = "cancelled"
            return result
        result.evaluated_tokens = len(head) - result.reused_tokens
        # Bring each unfinished sample's sequence to its history but the last token (the one to decode).
        catch_up: list[tuple[int, int, int, bool]] = []
        pending: dict[int, int] = {}  # sample index -> token to decode next
        for index, sample in enumerate(samples):
            if sample.finish_reason != "cancelled":
                continue  # finished before the preemption
            seq = PARALLEL_SEQ + index
            history = prompt + sample.token_ids
            held = self._sample_cached.get(seq, [])
            common = 0
            for have, want in zip(held, history[:-1]):
                if have != want:
                    break
                common += 1
            if common < len(head):
                self._lib.llama_memory_seq_rm(self._memory, seq, -1, -1)
                self._lib.llama_memory_seq_cp(self._memory, 0, seq, 0, len(head))
                common = len(head)
            else:
                self._lib.llama_memory_seq_rm(self._memory, seq, common, -1)
            self._sample_cached[seq] = history[:common]
            catch_up += [(token, position, seq, False) for position, token in
                         enumerate(history[common:-1], start=common)]
            pending[index] = history[-1]
        for begin in range(0, len(catch_up), self._prompt_chunk):
            chunk = catch_up[begin:begin + self._prompt_chunk]
            if cancel.is_set or not self._decode_items(chunk):
                # llama.cpp removed an aborted batch's cells: each sequence holds what _sample_cached says.
                result.finish_reason = "cancelled"
                return result
            for token, _position, seq, _logits in chunk:
                self._sample_cached[seq].append(token)
        result.prompt_ms = (time.perf_counter() - started) * 1000
        generate_started = time.perf_counter()
        earlier_ms = [sample.generate_ms for sample in samples]  # before a preemption
        stops = request.stop + self.stop
        raw = {index: bytearray(b"".join(self.token_bytes(t) for t in samples[index].token_ids)) for index in pending}
        while pending:
            if cancel.is_set:
                break
            order = sorted(pending)
            items = [(pending[index], len(self._sample_cached[PARALLEL_SEQ + index]), PARALLEL_SEQ + index, True)
                     for index in order]
            step_started = time.perf_counter()
            if not self._decode_items(items):
                break
            self._note_step(len(items), (time.perf_counter() - step_started) * 1000)
            for row, index in enumerate(order):
                sample = samples[index]
                self._sample_cached[PARALLEL_SEQ + index].append(pending.pop(index))
                token, logprob = self._choose(self._sampler(samplings[index]), row, request.want_logprobs)
                reason = self._sample_step(sample, token, logprob, raw[index], request, stops)
                sample.generate_ms = earlier_ms[index] + (time.perf_counter() - generate_started) * 1000
                if reason is None:
                    pending[index] = token
                else:
                    sample.finish_reason = reason
        result.generate_ms = (time.perf_counter() - generate_started) * 1000
        if pending:
            result.finish_reason = "cancelled"  # preempted or cancelled: the sequences stay for a resume
        else:
            self._drop_samples()
        result.generated_tokens = sum(sample.generated_tokens for sample in samples)
        return result

    def _sample_step(self, sample: GenerationResult, token: int, logprob: float | None, raw: bytearray,
                     request: GenerationRequest, stops: tuple[str, ...]) -> FinishReason | None:
        """Add one chosen token to a side-by-side sample; the finish reason when it is done, else None."""
        if logprob is not None:
            sample.token_logprobs.append(logprob)
        if self._lib.llama_vocab_is_eog(self._vocab, token):
            return "eog"
        sample.generated_tokens += 1
        raw.extend(self.token_bytes(token))
        text = raw.decode("utf-8", "ignore")
        sample.text = text
        sample.token_ids.append(token)
        cut = _first_stop(text, stops)
        if cut is None and request.stop_check is not None:
            cut = request.stop_check(text)
        if cut is not None:
            sample.text = text[:cut]
            return "stop"
        if len(sample.token_ids) >= request.max_tokens:
            return "length"
        return None

    def _note_step(self, sequences: int, elapsed_ms: float) -> None:
        """Fold one side-by-side decode step into the moving average for that many sequences."""
        current = self.parallel_step_ms.get(sequences)
        self.parallel_step_ms[sequences] = elapsed_ms if current is None else 0.8 * current + 0.2 * elapsed_ms

    def parallel_cost(self, sequences: int) -> float:
        """How many one-token decodes a step of `sequences` side by side costs (measured; else `sequences`)."""
        single = self.parallel_step_ms.get(1) or self.decode_ms_per_token
        step = self.parallel_step_ms.get(sequences)
        if single is None or step is None:
            return float(sequences)
        return step / single

    def _score_prompt(self, prompt: list[int], count: int, cancel: CancelFlag,
                      result: GenerationResult) -> GenerationResult:
        """Log-probabilities of the last `count` prompt tokens (KV prefix reuse, logits in small batches)."""
        started = time.perf_counter()
        count = min(count, len(prompt) - 1)
        if count <= 0:
            result.finish_reason = "empty"
            return result
        head, tail = prompt[:-count - 1], prompt[-count - 1:]
        result.reused_tokens = self._cached_prefix(head)
        if not self._sync_cache(head, cancel):
            result.finish_reason = "cancelled"
            return result
        for begin in range(0, len(tail), 32):  # 32 positions of logits at a time: bounded memory
            if cancel.is_set:
                result.finish_reason = "cancelled"
                return result
            chunk = tail[begin:begin + 32]
            if not self._decode_all_logits(chunk):
                result.finish_reason = "cancelled"
                return result
            result.evaluated_tokens += len(chunk)
            result.token_logprobs.extend(self._logprob(tail[begin + i + 1], i) for i in range(len(chunk))
                                         if begin + i + 1 < len(tail))
        result.prompt_ms = (time.perf_counter() - started) * 1000
        return result

    def _logprob(self, token: int, index: int = -1, among: list[int] | None = None) -> float:
        """log softmax of the logits at batch position `index` for `token` (numpy over the vocabulary,
        or over the tokens `among`: the log-probability given that one of them comes)."""
        import numpy as np

        pointer = self._lib.llama_get_logits_ith(self._ctx, index)
        logits = np.ctypeslib.as_array(pointer, shape=(self.n_vocab,))
        values = logits if among is None else logits[among].astype(np.float64)
        peak = float(values.max())
        return float(logits[token]) - peak - float(np.log(np.exp(values - peak).sum()))

    def close(self) -> None:
        """Free the context, samplers and model."""
        lib = self._lib
        for sampler in self._samplers.values():
            lib.llama_sampler_free(sampler)
        self._samplers.clear()
        if getattr(self, "_batch", None) is not None:
            lib.llama_batch_free(self._batch)
            self._batch = None
        if getattr(self, "_draft_model", None) is not None:
            self._draft_model.close()
            self._draft_model = None
        if getattr(self, "_ctx", None):
            lib.llama_free(self._ctx)
            self._ctx = None
        if getattr(self, "_model", None):
            lib.llama_model_free(self._model)
            self._model = None


class _Budget:
    """Delivers the complete part of a generation once it runs past its time budget (once)."""

    def __init__(self, request: GenerationRequest, on_partial: PartialCallback, result: GenerationResult,
                 started: float) -> None:
        self.started = started
        self.deadline = started + request.budget_ms / 1000
        self.cut = request.partial_cut
        self.on_partial = on_partial
        self.result = result
        self.delivered = False

    def check(self, text: str) -> None:
        """Past the deadline: hand over what is complete (if anything is yet) and keep generating."""
        if not self.delivered and time.perf_counter() >= self.deadline:
            self.deliver(text)

    def deliver(self, text: str, at_word_end: bool = False) -> None:
        """Hand over what is complete of `text` now (once, when anything is) and keep generating.

        at_word_end: the next token starts a new word, so the last word of `text` is complete.
        """
        if self.delivered:
            return
        cut = self.cut(text + " " if at_word_end else text) if self.cut is not None else len(text)
        cut = None if cut is None else min(cut, len(text))
        if cut is None or cut <= 0:
            return  # nothing complete yet: deliver as soon as something is
        self.delivered = True
        partial = attrs.evolve(self.result, text=text[:cut], finish_reason="budget",
                               token_logprobs=list(self.result.token_logprobs),
                               token_sizes=list(self.result.token_sizes))
        partial.generate_ms = (time.perf_counter() - self.started) * 1000
        self.on_partial(partial)


def _first_stop(text: str, stops: tuple[str, ...]) -> int | None:
    positions = [i for i in (text.find(s) for s in stops if s) if i >= 0]
    return min(positions) if positions else None
