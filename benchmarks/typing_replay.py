"""Typing replay: real source files typed character by character through the real LSP server.

Part 1 (end to end): the server runs as a subprocess on stdio; after each keystroke the client
sends didChange and an inline completion request, and cancels the previous request if it is still
pending, as an editor does. Latency is measured for every delivered (not cancelled) response.

Part 2 (same prompts, in process, same run): the prompts the server built are replayed through
(a) a bare decode loop written here against llama-cpp-python's low-level API (the physical limit),
(b) our engine (LlamaBackend.run) and (c) llama-cpp-python's `Llama.create_completion`.

Part 3: cold start, process start to the first completion.

Prints a table and writes benchmarks/results/typing_replay.json.
"""

from __future__ import annotations

import argparse
import asyncio
import atexit
import ctypes
import json
import os
import random
import shutil
import statistics
import sys
import sysconfig
import tempfile
import time
from pathlib import Path
from typing import Any

from lsprotocol import types
from pygls.lsp.client import LanguageClient

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

STDLIB = Path(sysconfig.get_paths()["stdlib"])
# (path, languageId, line where typing starts); real code that nobody here wrote.
CANDIDATE_FILES = [
    (STDLIB / "textwrap.py", "python", 120),
    (STDLIB / "json" / "encoder.py", "python", 200),
    (Path("/usr/lib/node_modules/npm/lib/utils/display.js"), "javascript", 60),
    (Path("/usr/lib/node_modules/npm/lib/commands/install.js"), "javascript", 40),
]
SERVER = [sys.executable, "-m", "codeassist_lsp"] + (
    ["-vv", "--log-file", os.environ["CODEASSIST_REPLAY_LOG"]] if os.environ.get("CODEASSIST_REPLAY_LOG") else [])
# The pause replay (a user who stops after every key and waits for the suggestion): three languages.
PAUSE_FILES = [
    (STDLIB / "textwrap.py", "python", 140),
    (Path("/usr/lib/node_modules/npm/lib/utils/display.js"), "javascript", 60),
    (Path("/usr/share/doc/git/contrib/persistent-https/client.go"), "go", 90),
]
PAUSE_WAIT_S = 3.0


def percentile(values: list[float], share: float) -> float:
    """The share-th percentile (nearest rank) of values; nan when empty."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, int(round(share * len(ordered) + 0.5)) - 1))]


def pick_files(count: int) -> list[tuple[Path, str, int]]:
    """The replay files present on this machine."""
    return [entry for entry in CANDIDATE_FILES if entry[0].is_file()][:count]


def position_of(text: str, offset: int) -> types.Position:
    """UTF-16 position of a str offset."""
    before = text[:offset]
    line = before.count("\n")
    column_text = before[before.rfind("\n") + 1:]
    return types.Position(line=line, character=len(column_text.encode("utf-16-le")) // 2)


async def replay_file(client: LanguageClient, path: Path, language_id: str, start_line: int,
                      chars: int, rng: random.Random, interval_ms: tuple[int, int]) -> dict[str, Any]:
    """Type `chars` characters of the file from `start_line`; return per-request records."""
    text, start, typed, _source = _typing_script(path, start_line, chars)
    uri = path.resolve().as_uri()
    version = 1
    client.text_document_did_open(types.DidOpenTextDocumentParams(text_document=types.TextDocumentItem(
        uri=uri, language_id=language_id, version=version, text=text)))
    await asyncio.sleep(1.0)  # the user looks at the file before typing
    records: list[dict[str, Any]] = []
    pending: tuple[str, Any, dict[str, Any]] | None = None
    offset = start
    for index, char in enumerate(typed):
        position = position_of(text, offset)
        text = text[:offset] + char + text[offset:]
        offset += 1
        version += 1
        client.text_document_did_change(types.DidChangeTextDocumentParams(
            text_document=types.VersionedTextDocumentIdentifier(uri=uri, version=version),
            content_changes=[types.TextDocumentContentChangePartial(
                range=types.Range(start=position, end=position), text=char)]))
        if pending is not None and not pending[1].done():
            client.protocol.notify(types.CANCEL_REQUEST, types.CancelParams(id=pending[0]))
            pending[2]["cancelled_by_client"] = True
        msg_id = f"{path.name}-{index}"
        record: dict[str, Any] = {"file": path.name, "index": index, "sent": time.perf_counter(),
                                  "text": text, "offset": offset}
        future = client.protocol.send_request(
            types.TEXT_DOCUMENT_INLINE_COMPLETION,
            types.InlineCompletionParams(
                text_document=types.TextDocumentIdentifier(uri=uri), position=position_of(text, offset),
                context=types.InlineCompletionContext(trigger_kind=types.InlineCompletionTriggerKind.Automatic)),
            msg_id=msg_id)

        def done(fut: Any, record: dict[str, Any] = record) -> None:
            record["latency_ms"] = (time.perf_counter() - record["sent"]) * 1000
            try:
                result = fut.result()
            except BaseException as error:  # cancelled requests answer with an error
                record["error"] = type(error).__name__
                return
            items = result.items if result is not None else []
            record["suggestion"] = items[0].insert_text if items else ""

        future.add_done_callback(done)
        records.append(record)
        pending = (msg_id, future, record)
        await asyncio.sleep(rng.uniform(*interval_ms) / 1000)
    await asyncio.sleep(1.5)  # let the last request finish
    client.text_document_did_close(types.DidCloseTextDocumentParams(
        text_document=types.TextDocumentIdentifier(uri=uri)))
    return {"records": records}


def _typing_script(path: Path, start_line: int, chars: int) -> tuple[str, int, str, str]:
    """(document before typing, where typing starts, the characters typed, the file as it really is)."""
    source = path.read_text(encoding="utf-8")
    start = sum(len(line) for line in source.splitlines(keepends=True)[: start_line - 1])
    # The typed characters end a line: after the cursor there is only what the file has below it.
    end = source.find("\n", start + chars)
    end = len(source) if end < 0 else end
    return source[:start] + source[end:], start, source[start:start + chars], source


async def replay_file_paused(client: LanguageClient, path: Path, language_id: str, start_line: int, chars: int,
                             interval_ms: int, open_wait_s: float = 4.0) -> list[dict[str, Any]]:
    """Type the file, and after every key wait for the answer (at most PAUSE_WAIT_S) before the next key.

    Before typing, the cursor is put where typing starts the way VS Code reports a cursor move to a
    language server: a codeAction request for the empty selection at the cursor (lightbulb).
    """
    text, offset, typed, source = _typing_script(path, start_line, chars)
    bare_start = text.rfind("\n", 0, max(0, offset - 4000)) + 1
    uri = path.resolve().as_uri()
    version = 1
    client.text_document_did_open(types.DidOpenTextDocumentParams(text_document=types.TextDocumentItem(
        uri=uri, language_id=language_id, version=version, text=text)))
    cursor = position_of(text, offset)
    await client.text_document_code_action_async(types.CodeActionParams(
        text_document=types.TextDocumentIdentifier(uri=uri), range=types.Range(start=cursor, end=cursor),
        context=types.CodeActionContext(diagnostics=[], trigger_kind=types.CodeActionTriggerKind.Automatic)))
    await asyncio.sleep(open_wait_s)  # the user looks at the file before typing
    records: list[dict[str, Any]] = []
    for index, char in enumerate(typed):
        position = position_of(text, offset)
        text = text[:offset] + char + text[offset:]
        offset += 1
        version += 1
        client.text_document_did_change(types.DidChangeTextDocumentParams(
            text_document=types.VersionedTextDocumentIdentifier(uri=uri, version=version),
            content_changes=[types.TextDocumentContentChangePartial(
                range=types.Range(start=position, end=position), text=char)]))
        msg_id = f"pause-{path.name}-{index}"
        sent = time.perf_counter()
        future = client.protocol.send_request(
            types.TEXT_DOCUMENT_INLINE_COMPLETION,
            types.InlineCompletionParams(
                text_document=types.TextDocumentIdentifier(uri=uri), position=position_of(text, offset),
                context=types.InlineCompletionContext(trigger_kind=types.InlineCompletionTriggerKind.Automatic)),
            msg_id=msg_id)
        record: dict[str, Any] = {"file": path.name, "index": index, "version": version, "offset": offset,
                                  "text": text, "bare_start": bare_start}
        # asyncio.wait, not wait_for: the request's future must stay alive for the server's late answer.
        answer = asyncio.wrap_future(future)
        finished, _ = await asyncio.wait({answer}, timeout=PAUSE_WAIT_S)
        if finished:
            result = answer.result()
            items = result.items if result is not None else []
            record["suggestion"] = items[0].insert_text if items else ""
            record["latency_ms"] = (time.perf_counter() - sent) * 1000
        else:
            client.protocol.notify(types.CANCEL_REQUEST, types.CancelParams(id=msg_id))
            record["latency_ms"] = PAUSE_WAIT_S * 1000
            record["timeout"] = True
        records.append(record)
        await asyncio.sleep(interval_ms / 1000)
    client.text_document_did_close(types.DidCloseTextDocumentParams(
        text_document=types.TextDocumentIdentifier(uri=uri)))
    # What the user typed next after each key: the file's real text (did a suggestion get typed?).
    start = offset - len(typed)
    for record in records:
        typed_so_far = record["index"] + 1
        record["real_next"] = source[start + typed_so_far:start + typed_so_far + 400]
    return records


# What the background actions resolve while the user types (--with-actions): a docstring, again and again.
# Typing starts this long after the actions were listed (the listing prewarms their document's prompt).
ACTIONS_HEAD_START_S = 1.0
ACTION_SOURCE = ("def word_counts(text):\n    counts = {}\n    for word in text.split():\n"
                 "        counts[word] = counts.get(word, 0) + 1\n    return counts\n")


async def _actions_forever(client: LanguageClient, done: list[int], listed: asyncio.Event) -> None:
    """Resolve a docstring action on another document back to back (the quality tier always busy)."""
    uri = "file:///tmp/typing-replay-actions/actions.py"
    client.text_document_did_open(types.DidOpenTextDocumentParams(text_document=types.TextDocumentItem(
        uri=uri, language_id="python", version=1, text=ACTION_SOURCE)))
    cursor = position_of(ACTION_SOURCE, ACTION_SOURCE.index("counts = {}"))
    # Listed once (a code action request is the editor's cursor being there: the server prewarms that
    # document's completion prompt), then resolved again and again while the user types elsewhere.
    actions = await client.text_document_code_action_async(types.CodeActionParams(
        text_document=types.TextDocumentIdentifier(uri=uri), range=types.Range(start=cursor, end=cursor),
        context=types.CodeActionContext(diagnostics=[], trigger_kind=types.CodeActionTriggerKind.Invoked)))
    docstring = next((a for a in actions or [] if isinstance(a, types.CodeAction)
                      and isinstance(a.data, dict) and a.data["codeassist"]["action"] == "docstring"), None)
    if docstring is None:  # never silently: a background task that dies would measure nothing
        raise RuntimeError(f"no docstring action offered: {actions!r:.300}")
    listed.set()
    while True:
        resolved = await client.code_action_resolve_async(docstring)
        if resolved.edit is None:
            raise RuntimeError(f"the docstring action resolved to no edit: {resolved!r:.300}")
        done[0] += 1


async def run_pause_replay(files: list[tuple[Path, str, int]], chars: int, interval_ms: int,
                           settings: dict[str, Any], with_actions: bool = False
                           ) -> tuple[list[dict[str, Any]], list[dict[str, Any]], int]:
    """The pause replay over LSP; each keystroke's record joined with the server's own record of it.

    with_actions: a docstring action is resolved back to back on another document the whole time
    (the quality model always busy); returns how many finished.
    """
    client, _ = await _start_client(settings)
    records: list[dict[str, Any]] = []
    done = [0]
    background = None
    if with_actions:
        listed = asyncio.Event()
        background = asyncio.ensure_future(_actions_forever(client, done, listed))
        await listed.wait()
        await asyncio.sleep(ACTIONS_HEAD_START_S)  # the user asked there, then went to the file they type in
    try:
        for path, language_id, start_line in files:
            records.extend(await replay_file_paused(client, path, language_id, start_line, chars, interval_ms))
    finally:
        if background is not None:
            if background.done() and background.exception() is not None:
                raise RuntimeError("the background actions failed") from background.exception()
            background.cancel()
    report = await client.workspace_execute_command_async(
        types.ExecuteCommandParams(command="codeassist.status", arguments=[{"recent": True}]))
    await _stop_client(client)
    return records, report.get("recent_requests", []), done[0]


# The server under test: this checkout, or (--baseline) another checkout's codeassist_lsp package.
SERVER_ENV: dict[str, str] | None = None
SERVER_CWD: str | None = None  # `python -m` puts the working directory first on sys.path


async def _start_client(settings: dict[str, Any]) -> tuple[LanguageClient, dict[str, Any]]:
    client = LanguageClient("typing-replay", "1")
    # Each server starts with its own empty feedback store, as a new user: gating then reads the shipped
    # prior, not a model refitted on an earlier replay's outcomes (or on the developer's own).
    feedback_dir = tempfile.mkdtemp(prefix="codeassist-replay-feedback-")
    atexit.register(shutil.rmtree, feedback_dir, ignore_errors=True)
    env = {**(SERVER_ENV or os.environ), "CODEASSIST_FEEDBACK_DIR": feedback_dir}
    await client.start_io(*SERVER, env=env, cwd=SERVER_CWD)
    # Inline completion, and code actions resolved lazily as VS Code does (else the server answers with
    # commands, and --with-actions would find no action to resolve).
    caps = types.ClientCapabilities(text_document=types.TextDocumentClientCapabilities(
        inline_completion=types.InlineCompletionClientCapabilities(),
        code_action=types.CodeActionClientCapabilities(
            data_support=True, resolve_support=types.ClientCodeActionResolveOptions(properties=["edit"]))))
    await client.initialize_async(types.InitializeParams(capabilities=caps, initialization_options=settings))
    client.initialized(types.InitializedParams())
    while True:
        report = await client.workspace_execute_command_async(
            types.ExecuteCommandParams(command="codeassist.status"))
        if report["model"]["state"] != "loading":
            return client, report
        await asyncio.sleep(0.1)


async def _stop_client(client: LanguageClient) -> None:
    await client.shutdown_async(None)
    client.exit(None)
    await client.stop()


def went_on_to_type(suggestion: str, real_next: str) -> bool:
    """Whether the text the user typed next starts with the suggestion (a suggestion worth showing)."""
    return bool(suggestion.strip()) and real_next.startswith(suggestion)


def summarize_pause(records: list[dict[str, Any]], server_records: list[dict[str, Any]]) -> dict[str, Any]:
    """p50/p90/p99 over every keystroke, and over those that needed the model; tokens evaluated."""
    files = sorted({r["file"] for r in records})
    # The server keeps one record per answered request, in order, with the document version (which
    # restarts with each file): a sequential match pairs them.
    position = 0
    for record in records:
        if position < len(server_records) and server_records[position].get("version") == record["version"]:
            record["server"] = server_records[position]
            position += 1
    model = [r for r in records if r.get("server", {}).get("source") == "model"]
    latencies = [r["latency_ms"] for r in records]
    evaluated = [r["server"]["evaluated_tokens"] for r in model]
    gate_us = [r["server"]["gate_us"] for r in records if "gate_us" in r.get("server", {})]
    gate_cpu_us = [r["server"]["gate_cpu_us"] for r in records if r.get("server", {}).get("gate_cpu_us") is not None]
    return {
        "keystrokes": len(records), "files": files,
        "timeouts": sum(1 for r in records if r.get("timeout")),
        "p50_ms": percentile(latencies, 0.5), "p90_ms": percentile(latencies, 0.9),
        "p99_ms": percentile(latencies, 0.99),
        "model_keystrokes": len(model),
        "model_p50_ms": percentile([r["latency_ms"] for r in model], 0.5),
        "model_p90_ms": percentile([r["latency_ms"] for r in model], 0.9),
        "model_p99_ms": percentile([r["latency_ms"] for r in model], 0.99),
        "sources": {source: sum(1 for r in records if r.get("server", {}).get("source") == source)
                    for source in ("model", "typed-ahead", "cache", "gated")},
        "evaluated_tokens_p50": percentile(evaluated, 0.5), "evaluated_tokens_p90": percentile(evaluated, 0.9),
        "evaluated_tokens_p99": percentile(evaluated, 0.99),
        "generated_tokens": sum(r["server"].get("generated_tokens", 0) for r in model),
        "shown": sum(1 for r in records if r.get("suggestion")),
        # Acceptance gating's own step in the completion path (features + P(accept)), per answer it judged.
        "gated_answers": len(gate_us), "gate_us_p50": percentile(gate_us, 0.5), "gate_us_p99": percentile(gate_us, 0.99),
        "gate_cpu_us_p50": percentile(gate_cpu_us, 0.5), "gate_cpu_us_p99": percentile(gate_cpu_us, 0.99),
        "withheld": sum(1 for r in records if r.get("server", {}).get("withheld")),
        "typed_later": sum(1 for r in records if went_on_to_type(r.get("suggestion") or "", r["real_next"])),
        # Shorter suggestions are typed later more often: count the characters too.
        "typed_later_chars": sum(len(r["suggestion"]) for r in records
                                 if went_on_to_type(r.get("suggestion") or "", r["real_next"])),
    }


async def run_replay(files: list[tuple[Path, str, int]], chars: int, interval_ms: tuple[int, int],
                     settings: dict[str, Any]) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Part 1: the end-to-end replay over LSP."""
    client, _ = await _start_client(settings)
    rng = random.Random(1234)
    records: list[dict[str, Any]] = []
    for path, language_id, start_line in files:
        replay = await replay_file(client, path, language_id, start_line, chars, rng, interval_ms)
        records.extend(replay["records"])
    report = await client.workspace_execute_command_async(
        types.ExecuteCommandParams(command="codeassist.status", arguments=[{"recent": True}]))
    await _stop_client(client)
    return records, report.get("recent_requests", [])


def summarize_replay(records: list[dict[str, Any]]) -> dict[str, Any]:
    """p50/p99 of delivered responses and how many requests ended which way."""
    delivered = [r for r in records if "error" not in r and "latency_ms" in r]
    shown = [r for r in delivered if r.get("suggestion")]
    return {
        "requests": len(records),
        "delivered": len(delivered),
        "shown": len(shown),
        "cancelled": sum(1 for r in records if "error" in r),
        "p50_ms": percentile([r["latency_ms"] for r in delivered], 0.5),
        "p99_ms": percentile([r["latency_ms"] for r in delivered], 0.99),
        "shown_p50_ms": percentile([r["latency_ms"] for r in shown], 0.5),
        "shown_p99_ms": percentile([r["latency_ms"] for r in shown], 0.99),
    }


# -- the peer: llama.cpp's own server on the same model, same keystrokes ---------------------------

def peer_binary() -> Path:
    """Where benchmarks/build_peer.sh puts llama-server (a cache dir, never the repository)."""
    from codeassist_lsp.engine.models import cache_dir

    return cache_dir() / "peer" / "bin" / "llama-server"


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def run_peer(records: list[dict[str, Any]], prompts: list[list[int] | None], interval_ms: int,
             max_tokens: int) -> dict[str, Any]:
    """llama-server on the same keystrokes, one awaited request each: our pipeline's prompt, and the bare prefix."""
    import http.client
    import subprocess

    from codeassist_lsp.engine.models import resolve_model_path

    binary = peer_binary()
    if not binary.is_file():
        return {"skipped": f"llama-server not built ({binary} missing): run benchmarks/build_peer.sh (~25 min)"}
    model, _ = resolve_model_path(None, None)
    port = _free_port()
    server = subprocess.Popen([str(binary), "-m", str(model), "--host", "127.0.0.1", "--port", str(port),
                               "-t", str(os.cpu_count() or 2), "-c", "4096", "--cache-reuse", "256", "-np", "1"],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        deadline = time.monotonic() + 60
        while True:
            try:
                connection.request("GET", "/health")
                response = connection.getresponse()
                response.read()
                if response.status == 200:
                    break
            except OSError:
                connection.close()
                connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
            if time.monotonic() > deadline:
                return {"skipped": "llama-server did not become healthy in 60 s"}
            time.sleep(0.2)

        def complete(prompt: Any) -> float:
            body = json.dumps({"prompt": prompt, "n_predict": max_tokens, "stop": ["\n"], "cache_prompt": True,
                               "temperature": 0.0, "top_k": 1, "samplers": ["top_k"]})
            started = time.perf_counter()
            connection.request("POST", "/completion", body, {"Content-Type": "application/json"})
            response = connection.getresponse()
            response.read()
            return (time.perf_counter() - started) * 1000

        results: dict[str, Any] = {"binary": str(binary)}
        for name in ("pipeline_prompt", "bare_prefix"):
            latencies = []
            for record, prompt in zip(records, prompts):
                if name == "pipeline_prompt":
                    if prompt is None:
                        continue
                    latencies.append(complete(prompt))
                else:
                    # The text before the cursor from a fixed line of the file (a stable head the peer
                    # can cache), the last ~4,000 characters when the typing starts.
                    latencies.append(complete(record["text"][record["bare_start"]:record["offset"]]))
                time.sleep(interval_ms / 1000)
            results[name] = {"requests": len(latencies), "p50_ms": percentile(latencies, 0.5),
                             "p90_ms": percentile(latencies, 0.9), "p99_ms": percentile(latencies, 0.99)}
        return results
    finally:
        server.terminate()
        server.wait(10)


def pipeline_prompts(records: list[dict[str, Any]], languages: dict[str, str]) -> list[list[int] | None]:
    """The prompt tokens our pipeline builds for each keystroke (in process, same order), None when gated."""
    from codeassist_lsp.config import Settings
    from codeassist_lsp.service import CompletionService

    settings = Settings()
    settings.cache.enabled = False
    service = CompletionService(settings)
    service.wait_until_loaded()
    prompts: list[list[int] | None] = []
    try:
        for record in records:
            prepared = service.prepare(record["text"], record["offset"], path=record["file"],
                                       language_id=languages.get(record["file"]))
            prompts.append(list(prepared.request.prompt_tokens) if prepared.request is not None
                           and prepared.request.max_tokens > 0 else None)
    finally:
        service.close()
    return prompts


# -- part 2: the same prompts in process ------------------------------------------------------

def bare_decode_loop(lib: Any, ctx: Any, vocab: Any, memory: Any, state: dict[str, Any],
                     prompt: list[int], max_tokens: int) -> tuple[int, float, float]:
    """The physical limit: prefix reuse, batch decode, C greedy sampler, newline stop; nothing else."""
    started = time.perf_counter()
    cached: list[int] = state.setdefault("cached", [])
    common = 0
    for a, b in zip(cached, prompt):
        if a != b:
            break
        common += 1
    common = min(common, len(prompt) - 1)
    lib.llama_memory_seq_rm(memory, 0, common, -1)
    del cached[common:]
    tail = prompt[common:]
    for start in range(0, len(tail), 512):  # n_batch
        chunk = tail[start:start + 512]
        array = (lib.llama_token * len(chunk))(*chunk)
        lib.llama_decode(ctx, lib.llama_batch_get_one(array, len(chunk)))
    cached.extend(tail)
    prompt_done = time.perf_counter()
    sampler = state["sampler"]
    generated = 0
    one = (lib.llama_token * 1)()
    buffer = ctypes.create_string_buffer(64)
    for _ in range(max_tokens):
        token = lib.llama_sampler_sample(sampler, ctx, -1)
        if lib.llama_vocab_is_eog(vocab, token):
            break
        generated += 1
        count = lib.llama_token_to_piece(vocab, token, buffer, 64, 0, False)
        if b"\n" in buffer.raw[:max(count, 0)]:
            break
        one[0] = token
        lib.llama_decode(ctx, lib.llama_batch_get_one(one, 1))
        cached.append(token)
    finished = time.perf_counter()
    return generated, (prompt_done - started) * 1000, (finished - prompt_done) * 1000


def run_in_process(records: list[dict[str, Any]], files: list[tuple[Path, str, int]],
                   create_completion_every: int) -> dict[str, Any]:
    """Part 2: replay the prompts through the bare loop, our engine and create_completion."""
    import llama_cpp

    from codeassist_lsp.config import ModelSettings, Settings
    from codeassist_lsp.engine.base import CancelFlag, GenerationRequest
    from codeassist_lsp.engine.llama import LlamaBackend
    from codeassist_lsp.engine.models import resolve_model_path
    from codeassist_lsp.service import CompletionService

    path, spec = resolve_model_path(None, None)
    settings = Settings()
    settings.completion.debounce_ms = 0
    backend = LlamaBackend(path, settings.model, stop=spec.stop if spec else ())
    service = CompletionService(settings, backend_factory=lambda: backend)
    service.wait_until_loaded()
    languages = {p.name: lang for p, lang, _ in files}
    prompts: list[list[int]] = []
    for record in records:
        prepared = service.prepare(record["text"], record["offset"], path=record["file"],
                                   language_id=languages.get(record["file"]))
        if prepared.request is not None and prepared.gate.mode == "line":
            prompts.append(list(prepared.request.prompt_tokens))
    max_tokens = settings.completion.max_tokens

    results: dict[str, Any] = {"prompts": len(prompts)}

    def summarize(name: str, rows: list[tuple[int, float, float]]) -> None:
        # rows: (tokens, prompt ms, generation ms). Generation tok/s counts the tokens after the
        # first one over the time after it (the first token's time is in the prompt part for
        # create_completion's stream, whose prompt work cannot be timed apart otherwise);
        # end-to-end tok/s is all tokens over all time.
        total = [p + g for _, p, g in rows]
        tokens = sum(n for n, _, _ in rows)
        later = sum(max(n - 1, 0) for n, _, _ in rows)
        gen_ms = sum(g for _, _, g in rows)
        results[name] = {"requests": len(rows), "p50_ms": percentile(total, 0.5),
                         "p99_ms": percentile(total, 0.99),
                         "generated_tokens": tokens,
                         "gen_tokens_per_s": later / (gen_ms / 1000) if gen_ms else float("nan"),
                         "end_to_end_tokens_per_s": tokens / (sum(total) / 1000) if sum(total) else float("nan")}

    # (b) our engine; stop at newline like the others.
    backend._truncate_cache(0)
    rows = []
    for prompt in prompts:
        first_token: list[float] = []
        # The time to the first token goes with the prompt, as it must for create_completion.
        request = GenerationRequest(prompt_tokens=tuple(prompt), max_tokens=max_tokens, stop=("\n",),
                                    stop_check=lambda text: first_token.append(time.perf_counter()) and None)
        started = time.perf_counter()
        result = backend.run(request, CancelFlag())
        finished = time.perf_counter()
        split = first_token[0] if first_token else finished
        rows.append((result.generated_tokens, (split - started) * 1000, (finished - split) * 1000))
    summarize("engine", rows)
    summarize("engine_on_create_completion_prompts", rows[::create_completion_every])

    # (a) the bare loop on the same context.
    backend._truncate_cache(0)
    lib = llama_cpp
    sampler = lib.llama_sampler_chain_init(lib.llama_sampler_chain_default_params())
    lib.llama_sampler_chain_add(sampler, lib.llama_sampler_init_greedy())
    state = {"sampler": sampler, "cached": []}
    rows = [bare_decode_loop(lib, backend._ctx, backend._vocab, backend._memory, state, prompt, max_tokens)
            for prompt in prompts]
    summarize("bare_loop", rows)
    lib.llama_sampler_free(sampler)
    service.close()

    # (c) llama-cpp-python's high-level API, on every Nth prompt (it is slow).
    llm = llama_cpp.Llama(model_path=str(path), n_ctx=settings.model.context_size,
                          n_threads=os.cpu_count(), verbose=False)
    rows = []
    for prompt in prompts[::create_completion_every]:
        started = time.perf_counter()
        texts, finish = [], None
        for chunk in llm.create_completion(prompt, max_tokens=max_tokens, temperature=0.0, stop=["\n"], stream=True):
            choice = chunk["choices"][0]
            if choice["text"]:
                texts.append(time.perf_counter())
            finish = choice["finish_reason"] or finish
        finished = time.perf_counter()
        split = texts[0] if texts else finished
        # A text chunk per token, plus the newline token that stopped it (generated, not streamed),
        # as the engine counts it.
        tokens = len(texts) + (1 if finish == "stop" else 0)
        rows.append((tokens, (split - started) * 1000, (finished - split) * 1000))
    summarize("create_completion", rows)
    del llm
    return results


async def cold_start(sample: str, runs: int) -> list[float]:
    """Part 3: seconds from process start to the first non-empty inline completion."""
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        client = LanguageClient("cold-start", "1")
        await client.start_io(*SERVER)
        caps = types.ClientCapabilities(text_document=types.TextDocumentClientCapabilities(
            inline_completion=types.InlineCompletionClientCapabilities()))
        # The completion cache off: a cold start must run the model, not replay the previous run.
        await client.initialize_async(types.InitializeParams(
            capabilities=caps, initialization_options={"cache": {"enabled": False}}))
        client.initialized(types.InitializedParams())
        uri = "file:///tmp/cold_start.py"
        client.text_document_did_open(types.DidOpenTextDocumentParams(text_document=types.TextDocumentItem(
            uri=uri, language_id="python", version=1, text=sample)))
        while True:
            result = await client.text_document_inline_completion_async(types.InlineCompletionParams(
                text_document=types.TextDocumentIdentifier(uri=uri), position=position_of(sample, len(sample)),
                context=types.InlineCompletionContext(trigger_kind=types.InlineCompletionTriggerKind.Automatic)))
            if result is not None and result.items:
                break
            await asyncio.sleep(0.02)
        times.append(time.perf_counter() - started)
        await client.shutdown_async(None)
        client.exit(None)
        await client.stop()
    return times


def pause_part(args: argparse.Namespace, settings: dict[str, Any]) -> dict[str, Any]:
    """The pause replay (every keystroke awaited) and, on the same keystrokes, the peer server."""
    files = [entry for entry in PAUSE_FILES if entry[0].is_file()]
    records, server_records, _ = asyncio.run(run_pause_replay(files, args.pause_chars, args.pause_interval_ms,
                                                              settings))
    summary = summarize_pause(records, server_records)
    if args.with_actions:
        busy, busy_server, finished = asyncio.run(run_pause_replay(files, args.pause_chars, args.pause_interval_ms,
                                                                    settings, with_actions=True))
        loaded = summarize_pause(busy, busy_server)
        summary["with_actions"] = {key: loaded[key] for key in ("p50_ms", "p90_ms", "p99_ms", "model_p50_ms",
                                                                "model_p99_ms", "keystrokes", "timeouts")}
        summary["with_actions"]["actions_finished"] = finished
        # The slowest keys and where their time went (queue: waiting for the model thread).
        summary["with_actions"]["slowest"] = [
            {key: record.get(key) for key in ("file", "index", "latency_ms", "server")}
            for record in sorted(busy, key=lambda r: -r["latency_ms"])[:8]]
        summary["with_actions"]["p99_ratio"] = loaded["p99_ms"] / summary["p99_ms"]
    languages = {p.name: lang for p, lang, _ in files}
    if args.no_peer:
        summary["peer"] = {"skipped": "--no-peer"}
    else:
        prompts = pipeline_prompts(records, languages)
        summary["peer"] = run_peer(records, prompts, args.pause_interval_ms, 24)
    summary["interval_ms"] = args.pause_interval_ms
    summary["chars_per_file"] = args.pause_chars
    summary["records"] = [{k: v for k, v in r.items() if k not in ("text", "real_next")} for r in records]
    return summary


def print_pause(pause: dict[str, Any]) -> None:
    """The pause replay's table."""
    print(f"Pause replay: {', '.join(pause['files'])}, {pause['chars_per_file']} chars each, "
          f"{pause['interval_ms']} ms between keys, every answer awaited (<= {PAUSE_WAIT_S:.0f} s)")
    print("| measure | p50 ms | p90 ms | p99 ms | n |")
    print("|---|---|---|---|---|")
    print(f"| codeassist, every keystroke | {pause['p50_ms']:.0f} | {pause['p90_ms']:.0f} | {pause['p99_ms']:.0f} | "
          f"{pause['keystrokes']} ({pause['timeouts']} without an answer in {PAUSE_WAIT_S:.0f} s) |")
    print(f"| codeassist, keystrokes that needed the model | {pause['model_p50_ms']:.0f} | {pause['model_p90_ms']:.0f} "
          f"| {pause['model_p99_ms']:.0f} | {pause['model_keystrokes']} |")
    peer = pause["peer"]
    if "skipped" in peer:
        print(f"| llama-server (peer) | skipped: {peer['skipped']} | | | |")
    else:
        for name in ("pipeline_prompt", "bare_prefix"):
            row = peer[name]
            print(f"| llama-server, {name.replace('_', ' ')} | {row['p50_ms']:.0f} | {row['p90_ms']:.0f} | "
                  f"{row['p99_ms']:.0f} | {row['requests']} |")
    if "with_actions" in pause:
        busy = pause["with_actions"]
        print(f"| codeassist, every keystroke, while actions run back to back | {busy['p50_ms']:.0f} | "
              f"{busy['p90_ms']:.0f} | {busy['p99_ms']:.0f} | {busy['keystrokes']} ({busy['actions_finished']} "
              f"actions finished; p99 {busy['p99_ratio']:.2f}x) |")
    print(f"sources {pause['sources']}; new tokens evaluated per model keystroke p50 {pause['evaluated_tokens_p50']} "
          f"/ p90 {pause['evaluated_tokens_p90']} / p99 {pause['evaluated_tokens_p99']}; generated tokens "
          f"{pause['generated_tokens']}; shown {pause['shown']}, typed by the user later {pause['typed_later']} "
          f"({pause.get('typed_later_chars', '?')} characters)")
    if pause.get("gated_answers"):
        print(f"acceptance gating: {pause['gated_answers']} answers judged, {pause['withheld']} withheld; its step "
              f"p50 {pause['gate_us_p50']:.0f} us, p99 {pause['gate_us_p99']:.0f} us (its thread's CPU time p50 "
              f"{pause['gate_cpu_us_p50']:.0f} us, p99 {pause['gate_cpu_us_p99']:.0f} us)")


def main() -> int:
    """Run all parts, print the table, write the JSON."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=4)
    parser.add_argument("--chars", type=int, default=150)
    parser.add_argument("--min-interval-ms", type=int, default=80)
    parser.add_argument("--max-interval-ms", type=int, default=220)
    parser.add_argument("--create-completion-every", type=int, default=1)
    parser.add_argument("--cold-runs", type=int, default=3)
    parser.add_argument("--out", default=None, help="the JSON report (default results/typing_replay.json, "
                        "with --pause results/typing_replay_pause.json)")
    parser.add_argument("--pause", action="store_true", help="only the pause replay (and the peer)")
    parser.add_argument("--pause-chars", type=int, default=150)
    parser.add_argument("--pause-interval-ms", type=int, default=120)
    parser.add_argument("--no-peer", action="store_true", help="skip llama-server")
    parser.add_argument("--no-pause", action="store_true", help="skip the pause replay (run it with --pause)")
    parser.add_argument("--with-actions", action="store_true",
                        help="with --pause: replay again while code actions run back to back (completions preempt)")
    parser.add_argument("--settings", default="{}", help="extra server settings (JSON) for both replays")
    parser.add_argument("--baseline", type=Path, default=None,
                        help="with --pause: also replay with the server of this checkout (e.g. a git worktree of "
                             "an earlier commit), in the same run")
    parser.add_argument("--baseline-settings", default=None,
                        help="with --pause: also replay with these extra settings (JSON; with --baseline, that "
                             "checkout's server), in the same run: an A/B of a setting")
    args = parser.parse_args()
    if args.out is None:
        args.out = str(ROOT / "benchmarks" / "results" / ("typing_replay_pause.json" if args.pause
                                                           else "typing_replay.json"))
    # No disk tier: a second run would otherwise be answered from the first one's completions.
    # The memory tier and typed-ahead reuse stay on, as in a fresh editor session.
    settings = {"cache": {"disk": False}, **json.loads(args.settings)}
    if args.pause:
        report: dict[str, Any] = {"machine": {"cpus": os.cpu_count()}, "settings": settings}
        if args.baseline is not None or args.baseline_settings is not None:
            global SERVER_ENV, SERVER_CWD
            if args.baseline is not None:
                SERVER_ENV = {**os.environ, "PYTHONPATH": str(args.baseline.resolve())}
                SERVER_CWD = str(args.baseline.resolve())
            baseline_settings = {**settings, **json.loads(args.baseline_settings or "{}")}
            no_peer, args.no_peer = args.no_peer, True
            report["baseline"] = {"checkout": str(args.baseline or "this one"), "settings": baseline_settings,
                                  **pause_part(args, baseline_settings)}
            SERVER_ENV, SERVER_CWD, args.no_peer = None, None, no_peer
        report["pause"] = pause_part(args, settings)
        out = Path(args.out)
        out.write_text(json.dumps(report, indent=2) + "\n")
        if "baseline" in report:
            print(f"-- baseline server: {report['baseline']['checkout']}, settings {report['baseline']['settings']}")
            print_pause(report["baseline"])
            print("-- this checkout")
        print_pause(report["pause"])
        print(f"wrote {out}")
        return 0

    files = pick_files(args.files)
    records, model_work = asyncio.run(run_replay(files, args.chars, (args.min_interval_ms, args.max_interval_ms),
                                                 settings))
    model_work = [w for w in model_work if w.get("source") == "model"]
    replay = summarize_replay(records)
    # KV reuse while typing: new prompt tokens evaluated per request, for prompts of 1,000+ tokens.
    long_prompts = [w for w in model_work if w["prompt_tokens"] >= 1000]
    evaluated = [w["evaluated_tokens"] for w in model_work]
    replay["kv_reuse"] = {
        "requests": len(model_work),
        "evaluated_tokens_p50": percentile(evaluated, 0.5),
        "evaluated_tokens_p90": percentile(evaluated, 0.9),
        "long_prompt_requests": len(long_prompts),
        "long_prompt_evaluated_p50": percentile([w["evaluated_tokens"] for w in long_prompts], 0.5),
        "long_prompt_evaluated_p90": percentile([w["evaluated_tokens"] for w in long_prompts], 0.9),
        "prompt_tokens_p50": percentile([w["prompt_tokens"] for w in model_work], 0.5),
    }
    pause = {"skipped": "--no-pause"} if args.no_pause else pause_part(args, settings)
    in_process = run_in_process(records, files, args.create_completion_every)
    cold = asyncio.run(cold_start("def add(a, b):\n    return ", args.cold_runs))

    engine, bare, high = in_process["engine"], in_process["bare_loop"], in_process["create_completion"]
    report = {
        "machine": {"cpus": os.cpu_count(), "python": sys.version.split()[0]},
        "files": [f"{p.name} ({lang})" for p, lang, _ in files],
        "chars_per_file": args.chars,
        "interval_ms": [args.min_interval_ms, args.max_interval_ms],
        "lsp_replay": replay,
        "pause_replay": pause,
        "in_process": in_process,
        "ratios": {
            "engine_vs_bare_tokens_per_s": engine["gen_tokens_per_s"] / bare["gen_tokens_per_s"],
            "engine_vs_create_completion_tokens_per_s": engine["gen_tokens_per_s"] / high["gen_tokens_per_s"],
            # Same prompts, prompt work included: what a caller of either waits for per token.
            "engine_vs_create_completion_end_to_end_tokens_per_s":
                in_process["engine_on_create_completion_prompts"]["end_to_end_tokens_per_s"]
                / high["end_to_end_tokens_per_s"],
        },
        "cold_start_s": {"runs": cold, "median": statistics.median(cold)},
        "peer_llama_server_documented": {"p50_ms": 78, "p99_ms": 307,
                                         "source": "shared/docs/ENVIRONMENT.md, same machine kind"},
    }
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(report, indent=2) + "\n")

    print(f"Typing replay: {len(files)} files x {args.chars} chars, "
          f"{args.min_interval_ms}-{args.max_interval_ms} ms between keys")
    print(f"| measure | p50 ms | p99 ms | gen tok/s | n |")
    print(f"|---|---|---|---|---|")
    print(f"| LSP inline completion, delivered | {replay['p50_ms']:.0f} | {replay['p99_ms']:.0f} | | "
          f"{replay['delivered']}/{replay['requests']} |")
    print(f"| LSP inline completion, non-empty | {replay['shown_p50_ms']:.0f} | {replay['shown_p99_ms']:.0f} | | "
          f"{replay['shown']} |")
    for name in ("bare_loop", "engine", "engine_on_create_completion_prompts", "create_completion"):
        row = in_process[name]
        print(f"| same prompts: {name} | {row['p50_ms']:.0f} | {row['p99_ms']:.0f} | "
              f"{row['gen_tokens_per_s']:.1f} (end to end {row['end_to_end_tokens_per_s']:.1f}) | {row['requests']} |")
    print(f"| llama-server (documented peer) | 78 | 307 | | |")
    ratios = report["ratios"]
    print(f"engine/bare tok/s = {ratios['engine_vs_bare_tokens_per_s']:.2f}; "
          f"engine/create_completion tok/s = {ratios['engine_vs_create_completion_tokens_per_s']:.2f}x generating, "
          f"{ratios['engine_vs_create_completion_end_to_end_tokens_per_s']:.2f}x end to end; "
          f"cold start median {report['cold_start_s']['median']:.2f} s")
    kv = replay["kv_reuse"]
    print(f"KV reuse: prompt p50 {kv['prompt_tokens_p50']} tokens; new tokens evaluated per request "
          f"p50 {kv['evaluated_tokens_p50']} / p90 {kv['evaluated_tokens_p90']}; with 1,000+ token prompts "
          f"p50 {kv['long_prompt_evaluated_p50']} / p90 {kv['long_prompt_evaluated_p90']} "
          f"({kv['long_prompt_requests']} requests)")
    if "skipped" not in pause:
        print_pause(pause)
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
