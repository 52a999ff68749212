"""Typing storms and pathological documents against the real server process and the real models.

The drivers shared by tests/hardening/test_storm.py, tests/hardening/test_pathological.py and
benchmarks/stress_bench.py: each returns a report of plain numbers; the callers decide what passes.
"""

from __future__ import annotations

import bisect
import os
import random
import shutil
import sys
import sysconfig
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from codeassist_lsp.engine.models import cache_dir
from tests.hardening.support import RESOLVE_CAPABILITIES, RawServer, open_document, units

REPO = Path(__file__).resolve().parents[2]
STDLIB = Path(sysconfig.get_paths()["stdlib"])
REQUEST_CANCELLED = -32800
CONTENT_MODIFIED = -32801
# Answers an editor expects while it types: anything else is an internal error.
EXPECTED_ERRORS = (REQUEST_CANCELLED, CONTENT_MODIFIED)
COMPLETION_METHODS = ("textDocument/inlineCompletion", "textDocument/completion")
MODEL_LOAD_TIMEOUT_S = 120


class TimedServer(RawServer):
    """A RawServer that also notes when each response arrived (monotonic seconds)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self.arrived_at: dict[Any, float] = {}  # before the reader thread starts
        super().__init__(*args, **kwargs)

    def _dispatch(self, message: dict[str, Any]) -> None:
        if "method" not in message:
            self.arrived_at[message["id"]] = time.monotonic()
        super()._dispatch(message)

    def rss_mb(self) -> float:
        """The server process's resident memory (VmRSS) in MB."""
        for line in Path(f"/proc/{self.process.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
        raise AssertionError("no VmRSS in /proc/<pid>/status")

    def status(self) -> dict[str, Any]:
        """The codeassist.status report."""
        response = self.request("workspace/executeCommand", {"command": "codeassist.status"})
        assert "result" in response, response
        result: dict[str, Any] = response["result"]
        return result


def isolated_cache(root: Path) -> dict[str, str]:
    """Environment for a server whose caches start empty (the installed models are linked in)."""
    cache = root / "codeassist-cache"
    cache.mkdir(parents=True, exist_ok=True)
    if not (cache / "models").exists():
        (cache / "models").symlink_to(cache_dir() / "models", target_is_directory=True)
    probes = cache_dir() / "exactness-probes.json"  # measured once per model and build: reuse it
    if probes.is_file():
        shutil.copy(probes, cache / probes.name)
    return {"CODEASSIST_CACHE_DIR": str(cache)}


def start_real_server(work_dir: Path, options: dict[str, Any] | None = None) -> TimedServer:
    """The server with the real models and default settings, initialized, both models loaded."""
    server = TimedServer(work_dir / "server.log", extra_args=(), env=isolated_cache(work_dir))
    try:
        server.initialize(options or {}, {"textDocument": RESOLVE_CAPABILITIES})
        deadline = time.monotonic() + MODEL_LOAD_TIMEOUT_S
        while True:
            report = server.status()
            if "loading" not in (report["model"]["state"], report["qualityModel"]["state"]):
                break
            assert time.monotonic() < deadline, f"models still loading: {report['model']} {report['qualityModel']}"
            time.sleep(0.25)
        assert report["model"]["state"] == "ready", report["model"]
        return server
    except BaseException:
        server.close()
        raise


def position_of(text: str, offset: int) -> dict[str, int]:
    """The UTF-16 LSP position of a str offset."""
    line = text.count("\n", 0, offset)
    start = text.rfind("\n", 0, offset) + 1
    return {"line": line, "character": units(text[start:offset], "utf-16")}


def percentile(values: list[float], share: float) -> float:
    """The share-th percentile (nearest rank) of values; nan when empty."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, int(round(share * len(ordered) + 0.5)) - 1))]


# -- the typing storm ------------------------------------------------------------------------------

# Real code in five languages that ships with the repository or Python: (path, languageId, where typing starts).
STORM_FILES = [
    (STDLIB / "textwrap.py", "python", 0.3),
    (REPO / "editors" / "vscode" / "src" / "server.ts", "typescript", 0.4),
    (REPO / "tests" / "data" / "context" / "samples" / "sample.go", "go", 0.3),
    (REPO / "tests" / "data" / "context" / "samples" / "sample.rs", "rust", 0.3),
    (REPO / "editors" / "neovim" / "lsp" / "codeassist.lua", "lua", 0.3),
]
# How much of a file is cut out at the cursor and typed back, key by key.
HOLE_CHARS = 400
# The share of keys after which the user pauses (0.1-0.5 s) before typing on.
PAUSE_SHARE = 0.08


@dataclass
class StormDocument:
    """One open document of the storm and the real file the user is retyping into it."""

    uri: str
    language_id: str
    original: str
    text: str = ""
    cursor: int = 0
    typed_from: int = 0  # offset in `original` of the next character to type
    hole_end: int = 0
    version: int = 1
    is_open: bool = True

    @classmethod
    def from_file(cls, path: Path, language_id: str, start_share: float, uri: str) -> StormDocument:
        """The file with a hole cut out after `start_share` of its text; the cursor at the hole."""
        original = path.read_text(encoding="utf-8")
        start = original.find("\n", int(len(original) * start_share)) + 1
        document = cls(uri, language_id, original)
        document.cut_hole(start)
        return document

    def cut_hole(self, start: int) -> None:
        """The text without about HOLE_CHARS from `start` up to a line's end; typing puts them back
        (at the end of a line, where suggestions appear)."""
        end = self.original.find("\n", start + HOLE_CHARS)
        self.typed_from, self.hole_end = start, len(self.original) if end < 0 else end
        self.text = self.original[:start] + self.original[self.hole_end:]
        self.cursor = start

    def next_edit(self, rng: random.Random) -> dict[str, Any]:
        """The next keystroke as an LSP content change: a typed character, sometimes a backspace."""
        if self.typed_from >= self.hole_end:
            # The hole is filled: select the next stretch of the file and delete it, to type it again.
            start = self.cursor if self.hole_end < len(self.original) else 0
            self.original = self.text
            self.cut_hole(start)
            return {"range": {"start": position_of(self.original, start),
                              "end": position_of(self.original, self.hole_end)}, "text": ""}
        if self.cursor > 0 and self.typed_from > 0 and rng.random() < 0.06:
            # A backspace over the last typed character: it is typed again next.
            at = position_of(self.text, self.cursor - 1)
            change = {"range": {"start": at, "end": position_of(self.text, self.cursor)}, "text": ""}
            self.text = self.text[:self.cursor - 1] + self.text[self.cursor:]
            self.cursor -= 1
            self.typed_from -= 1
            return change
        char = self.original[self.typed_from]
        at = position_of(self.text, self.cursor)
        self.text = self.text[:self.cursor] + char + self.text[self.cursor:]
        self.cursor += 1
        self.typed_from += 1
        return {"range": {"start": at, "end": at}, "text": char}


@dataclass
class SentRequest:
    """A request the storm sent, and what the document looked like then."""

    msg_id: int
    method: str
    uri: str
    version: int
    seq: int  # its place among everything the client wrote
    sent_at: float
    position: dict[str, int]


@dataclass
class StormReport:
    """What a storm measured; the callers decide what passes."""

    edits: int = 0
    rate_per_s: float = 0.0
    duration_s: float = 0.0
    requests: dict[str, int] = field(default_factory=dict)
    completed: int = 0  # completion requests answered with a result
    suggestions: int = 0  # ... with a non-empty one
    cancelled: int = 0
    content_modified: int = 0
    unanswered: list[int] = field(default_factory=list)
    errors: list[dict[str, Any]] = field(default_factory=list)
    error_messages: list[str] = field(default_factory=list)  # window/showMessage of type Error
    stale: list[dict[str, Any]] = field(default_factory=list)
    stale_checked: int = 0  # non-empty results whose staleness the client could decide
    misplaced: list[dict[str, Any]] = field(default_factory=list)
    latency_p50_ms: float = float("nan")
    latency_p90_ms: float = float("nan")
    latency_p99_ms: float = float("nan")
    latency_max_ms: float = float("nan")
    rss_start_mb: float = 0.0
    rss_baseline_mb: float = 0.0  # after warm-up
    rss_peak_mb: float = 0.0
    rss_final_mb: float = 0.0
    rss_growth_mb: float = 0.0  # final - baseline
    last_request_ms: float = float("nan")
    last_request_answered: bool = False
    slowest: dict[str, Any] = field(default_factory=dict)  # the completion request that waited longest
    saves: int = 0
    closes: int = 0
    reopens: int = 0
    configuration_changes: int = 0

    def as_dict(self) -> dict[str, Any]:
        """The report as JSON-ready data (lists of problems cut to their first 20)."""
        data = dict(self.__dict__)
        for key in ("unanswered", "errors", "error_messages", "stale", "misplaced"):
            data[f"{key}_count"] = len(data[key])
            data[key] = data[key][:20]
        return data


class Storm:
    """Types into several documents at a fixed rate, asking for suggestions after every key as an
    editor does (cancelling the previous one), with saves, closes, reopens and a settings change."""

    def __init__(self, server: TimedServer, edits: int, rate: float, seed: int, warmup_edits: int,
                 settings: dict[str, Any] | None = None, files: list[tuple[Path, str, float]] | None = None,
                 progress: Callable[[str], None] | None = None) -> None:
        self.server = server
        self.settings = settings or {}  # what the server was initialized with
        self.edits = edits
        self.rate = rate
        self.rng = random.Random(seed)
        self.warmup_edits = warmup_edits
        self.progress = progress
        self.documents = [
            StormDocument.from_file(path, language_id, share, f"file:///tmp/codeassist-storm/{i}-{path.name}")
            for i, (path, language_id, share) in enumerate(files or STORM_FILES) if path.is_file()]
        assert len(self.documents) >= 2, "the storm needs at least two documents"
        self.seq = 0
        self.sent: list[SentRequest] = []
        # Per document: the client's sequence numbers at which its text changed or it closed.
        self.invalidations: dict[str, list[int]] = {d.uri: [] for d in self.documents}
        self.closes: dict[str, list[int]] = {d.uri: [] for d in self.documents}
        self.pending_inline: dict[str, int] = {}
        self.report = StormReport(edits=edits, rate_per_s=rate)

    # -- what the client writes --------------------------------------------------------------------

    def _tick(self) -> int:
        self.seq += 1
        return self.seq

    def _request(self, method: str, document: StormDocument, params: dict[str, Any]) -> int:
        msg_id = self.server.send_request(method, params)
        self.sent.append(SentRequest(msg_id, method, document.uri, document.version, self._tick(), time.monotonic(),
                                     params.get("position") or params.get("range", {}).get("start", {})))
        self.report.requests[method] = self.report.requests.get(method, 0) + 1
        return msg_id

    def _open(self, document: StormDocument) -> None:
        open_document(self.server, document.uri, document.text, document.version, document.language_id)
        document.is_open = True
        self._tick()

    def _close(self, document: StormDocument) -> None:
        self.server.notify("textDocument/didClose", {"textDocument": {"uri": document.uri}})
        document.is_open = False
        self.invalidations[document.uri].append(self._tick())
        self.closes[document.uri].append(self.seq)
        self.pending_inline.pop(document.uri, None)

    def _type(self, document: StormDocument) -> None:
        change = document.next_edit(self.rng)
        document.version += 1
        self.server.notify("textDocument/didChange", {
            "textDocument": {"uri": document.uri, "version": document.version}, "contentChanges": [change]})
        self.invalidations[document.uri].append(self._tick())

    def _ask(self, document: StormDocument, edit: int) -> None:
        """After a key: cancel the previous suggestion request, ask for a new one; sometimes a lightbulb."""
        previous = self.pending_inline.pop(document.uri, None)
        if previous is not None and previous not in self.server.responses:
            self.server.notify("$/cancelRequest", {"id": previous})
            self._tick()
        position = position_of(document.text, document.cursor)
        text_document = {"uri": document.uri}
        if self.rng.random() < 0.1:  # a client with the completion menu instead of ghost text
            self.pending_inline[document.uri] = self._request(
                "textDocument/completion", document, {"textDocument": text_document, "position": position})
        else:
            self.pending_inline[document.uri] = self._request(
                "textDocument/inlineCompletion", document,
                {"textDocument": text_document, "position": position, "context": {"triggerKind": 2}})
        if edit % 7 == 0:  # editors ask for code actions when the cursor rests
            self._request("textDocument/codeAction", document, {
                "textDocument": text_document, "range": {"start": position, "end": position},
                "context": {"diagnostics": []}})

    # -- the run -----------------------------------------------------------------------------------

    def run(self) -> StormReport:
        """Type `edits` keys at `rate` per second; then check every answer."""
        server, report = self.server, self.report
        report.rss_start_mb = report.rss_peak_mb = server.rss_mb()
        for document in self.documents:
            self._open(document)
        current = self.documents[0]
        closed_at: dict[str, int] = {}
        schedule = self._schedule()
        started = time.monotonic()
        next_rss = started
        for edit in range(self.edits):
            wait = started + schedule[edit] - time.monotonic()
            if wait > 0:
                time.sleep(wait)
            # Reopen a document closed 40 keys ago; close another every 300 keys.
            for uri, when in list(closed_at.items()):
                if edit - when >= 40:
                    document = next(d for d in self.documents if d.uri == uri)
                    document.version += 1
                    self._open(document)
                    report.reopens += 1
                    del closed_at[uri]
            if edit % 300 == 150:
                candidates = [d for d in self.documents if d.is_open and d is not current]
                if candidates:
                    victim = self.rng.choice(candidates)
                    self._close(victim)
                    closed_at[victim.uri] = edit
                    report.closes += 1
            if self.rng.random() < 0.04 or not current.is_open:  # the user switches files
                current = self.rng.choice([d for d in self.documents if d.is_open])
            self._type(current)
            self._ask(current, edit)
            if edit % 150 == 149:
                server.notify("textDocument/didSave", {"textDocument": {"uri": current.uri}})
                self._tick()
                report.saves += 1
            if edit == self.edits // 2:
                # A settings change in the middle that keeps the models: shorter suggestions. Clients
                # send the whole section, and the server takes it whole.
                completion = {**self.settings.get("completion", {}), "maxTokens": 16}
                server.notify("workspace/didChangeConfiguration",
                              {"settings": {"codeassist": {**self.settings, "completion": completion}}})
                self._tick()
                report.configuration_changes += 1
            if edit + 1 == self.warmup_edits:
                report.rss_baseline_mb = server.rss_mb()
            if time.monotonic() >= next_rss:
                report.rss_peak_mb = max(report.rss_peak_mb, server.rss_mb())
                next_rss += 0.5
            if self.progress is not None and edit % 250 == 249:
                self.progress(f"{edit + 1} edits, RSS {server.rss_mb():.0f} MB")
        report.duration_s = time.monotonic() - started
        report.unanswered = server.wait_for_all([r.msg_id for r in self.sent], timeout=120)
        self._ask_last(current)
        report.rss_final_mb = server.rss_mb()
        report.rss_peak_mb = max(report.rss_peak_mb, report.rss_final_mb)
        report.rss_growth_mb = report.rss_final_mb - (report.rss_baseline_mb or report.rss_start_mb)
        self._check_answers()
        report.error_messages = [n["params"]["message"] for n in server.notifications
                                 if n.get("method") == "window/showMessage" and n["params"].get("type") == 1]
        return report

    def _schedule(self) -> list[float]:
        """When each key is typed (seconds from the start): bursts with short pauses, `rate` keys a
        second on average; in a pause the model may answer, and the next burst races that answer."""
        gaps = [self.rng.uniform(0.1, 0.5) if self.rng.random() < PAUSE_SHARE else 1.0 for _ in range(self.edits)]
        pauses = sum(g for g in gaps if g != 1.0)
        keys = sum(1 for g in gaps if g == 1.0)
        key_gap = max(0.0, (self.edits / self.rate - pauses) / max(1, keys))
        times, now = [], 0.0
        for gap in gaps:
            times.append(now)
            now += key_gap if gap == 1.0 else gap
        return times

    def _ask_last(self, document: StormDocument) -> None:
        """After the storm the model thread must still answer: one more request, awaited."""
        if not document.is_open:
            document.version += 1
            self._open(document)
        position = position_of(document.text, document.cursor)
        sent = time.monotonic()
        response = self.server.request("textDocument/inlineCompletion", {
            "textDocument": {"uri": document.uri}, "position": position, "context": {"triggerKind": 1}}, timeout=60)
        self.report.last_request_answered = "result" in response
        self.report.last_request_ms = (time.monotonic() - sent) * 1000
        if "error" in response:
            self.report.errors.append({"method": "textDocument/inlineCompletion (last)", "error": response["error"]})

    def _check_answers(self) -> None:
        """Errors, latencies and stale results, from every response and the order they came in."""
        server, report = self.server, self.report
        latencies = []
        suggested = []
        for request in self.sent:
            response = server.responses.get(request.msg_id)
            if response is None:
                continue
            if "error" in response:
                code = response["error"].get("code")
                if code == REQUEST_CANCELLED:
                    report.cancelled += 1
                elif code == CONTENT_MODIFIED:
                    report.content_modified += 1
                else:
                    report.errors.append({"method": request.method, "error": response["error"]})
                continue
            if request.method not in COMPLETION_METHODS:
                continue
            report.completed += 1
            latencies.append((server.arrived_at[request.msg_id] - request.sent_at) * 1000)
            if latencies[-1] >= max(latencies):
                report.slowest = {"id": request.msg_id, "method": request.method, "uri": request.uri,
                                  "version": request.version, "ms": round(latencies[-1], 1),
                                  "closed_after": any(s > request.seq for s in self.closes[request.uri])}
            items = (response["result"] or {}).get("items") or []
            if items:
                report.suggestions += 1
                suggested.append(request)
                self._check_placement(request, items)
        arrival = {msg_id: index for index, msg_id in enumerate(list(server.responses))}
        stale, report.stale_checked = find_stale(self.sent, suggested, self.invalidations, arrival)
        report.stale = [{"id": r.msg_id, "method": r.method, "uri": r.uri, "version": r.version,
                         "result": server.responses[r.msg_id]["result"]} for r in stale]
        report.latency_p50_ms = percentile(latencies, 0.5)
        report.latency_p90_ms = percentile(latencies, 0.9)
        report.latency_p99_ms = percentile(latencies, 0.99)
        report.latency_max_ms = max(latencies, default=float("nan"))

    def _check_placement(self, request: SentRequest, items: list[dict[str, Any]]) -> None:
        """A suggestion sits at the cursor the request named (ghost text), or ends there (menu)."""
        for item in items:
            edit_range = item.get("range") or (item.get("textEdit") or {}).get("range")
            if edit_range is None or edit_range["end"] != request.position or (
                    request.method.endswith("inlineCompletion") and edit_range["start"] != request.position):
                self.report.misplaced.append({"id": request.msg_id, "position": request.position, "item": item})


def find_stale(sent: list[SentRequest], suggested: list[SentRequest], invalidations: dict[str, list[int]],
               arrival: dict[Any, int]) -> tuple[list[SentRequest], int]:
    """The suggestions the server wrote after it had read a newer version of their document (or its
    close), and how many suggestions could be told either way.

    The server reads messages in order. A response that arrived after the response to a request the
    client wrote after an edit was written after the server had read that edit: it knew the newer text.
    `arrival` numbers the responses in the order they came; `invalidations` holds, per document, the
    client's sequence numbers of its edits and closes.
    """
    by_seq = sorted(sent, key=lambda r: r.seq)
    seqs = [r.seq for r in by_seq]
    never = len(arrival) + 1
    # first_arrival_from[i]: the earliest arrival among the requests written from the i-th on.
    first_arrival_from = [never] * (len(by_seq) + 1)
    for index in range(len(by_seq) - 1, -1, -1):
        first_arrival_from[index] = min(arrival.get(by_seq[index].msg_id, never), first_arrival_from[index + 1])
    stale, checked = [], 0
    for request in suggested:
        invalidated = next((s for s in invalidations[request.uri] if s > request.seq), None)
        if invalidated is None:
            continue  # the last version of its document: nothing newer to be stale against
        checked += 1
        if arrival[request.msg_id] > first_arrival_from[bisect.bisect_right(seqs, invalidated)]:
            stale.append(request)
    return stale, checked


# -- pathological documents ------------------------------------------------------------------------

MB = 1 << 20


def _minified_line() -> tuple[str, int]:
    """5 MB of minified JavaScript on one line, the cursor at its end."""
    records, size, index = [], 0, 0
    while size < 5 * MB:
        record = f'{{"id":{index},"name":"item{index}","tags":["a","b"],"v":{index * 7 % 1000}}}'
        records.append(record)
        size += len(record) + 1
        index += 1
    text = "var data=[" + ",".join(records) + "];function pick(a){return data.filter(function(x){return x."
    return text, len(text)


def _hundred_thousand_lines() -> tuple[str, int]:
    """100,000 lines of real Python (the standard library's textwrap, repeated); the cursor mid-file."""
    lines = (STDLIB / "textwrap.py").read_text(encoding="utf-8").splitlines(keepends=True)
    text = "".join(lines[i % len(lines)] for i in range(100_000))
    cursor = -1
    for _ in range(50_000):
        cursor = text.index("\n", cursor + 1)
    return text, cursor


def _nested_brackets() -> tuple[str, int]:
    """10,000 nested brackets; the cursor at the innermost."""
    text = "value = " + "[" * 10_000 + "]" * 10_000 + "\n"
    return text, len("value = ") + 10_000


def _binary_as_text() -> tuple[str, int]:
    """llama.cpp's largest shared library (its first MB) as a client shows a binary file: NULs, and
    invalid UTF-8 as U+FFFD."""
    import llama_cpp

    libraries = sorted((Path(llama_cpp.__file__).parent / "lib").glob("*.so*"), key=lambda p: p.stat().st_size)
    data = (libraries[-1] if libraries else Path(os.path.realpath(sys.executable))).read_bytes()[:MB]
    text = data.decode("utf-8", errors="replace")
    return text, len(text)


def _parse_timeout_lua() -> tuple[str, int]:
    """Lua that the bundled Lua grammar cannot parse within the time limit (it would never finish)."""
    text = "x = " + "(" * 10_000
    return text, len(text)


@dataclass(frozen=True)
class PathologicalCase:
    """A document no one should open, and how to build it (text, cursor offset)."""

    name: str
    language_id: str
    file_name: str
    build: Callable[[], tuple[str, int]]


PATHOLOGICAL_CASES = [
    PathologicalCase("minified 5 MB line", "javascript", "bundle.min.js", _minified_line),
    PathologicalCase("100,000 lines", "python", "huge.py", _hundred_thousand_lines),
    PathologicalCase("10,000 nested brackets", "python", "nested.py", _nested_brackets),
    PathologicalCase("binary opened as text", "python", "libllama.py", _binary_as_text),
    PathologicalCase("Lua parse past its time limit", "lua", "blowup.lua", _parse_timeout_lua),
]


def _ordinary_file() -> tuple[str, int]:
    """The standard library's textwrap, the cursor at the end of a line midway: what a normal file costs."""
    text = (STDLIB / "textwrap.py").read_text(encoding="utf-8")
    return text, text.index("\n", len(text) // 2)


# Not pathological: the benchmark's yardstick (the first request in a freshly opened file evaluates
# its whole prompt on the model, pathological or not).
ORDINARY_CASE = PathologicalCase("ordinary file (yardstick)", "python", "textwrap.py", _ordinary_file)
# What each pathological case asks, with the cursor where the case puts it.
PATHOLOGICAL_REQUESTS = ("textDocument/inlineCompletion", "textDocument/completion", "textDocument/hover",
                         "textDocument/codeAction", "textDocument/inlineCompletion (after a key)")


def _request_params(method: str, uri: str, position: dict[str, int]) -> dict[str, Any]:
    """What an editor sends for `method` with the cursor at `position`."""
    if method == "textDocument/codeAction":
        return {"textDocument": {"uri": uri}, "range": {"start": position, "end": position},
                "context": {"diagnostics": []}}
    params: dict[str, Any] = {"textDocument": {"uri": uri}, "position": position}
    if method == "textDocument/inlineCompletion":
        params["context"] = {"triggerKind": 1}
    return params


def run_pathological(server: TimedServer, case: PathologicalCase, timeout: float = 60) -> dict[str, Any]:
    """Open the case's document and ask what an editor asks there; per request: time and outcome."""
    text, cursor = case.build()
    uri = f"file:///tmp/codeassist-pathological/{case.file_name}"
    outcome: dict[str, Any] = {"case": case.name, "chars": len(text), "lines": text.count("\n") + 1,
                               "requests": {}}
    opened = time.monotonic()
    open_document(server, uri, text, 1, case.language_id)
    position = position_of(text, cursor)
    for name in PATHOLOGICAL_REQUESTS:
        method = name.split(" ")[0]
        if name.endswith("(after a key)"):
            server.notify("textDocument/didChange", {"textDocument": {"uri": uri, "version": 2}, "contentChanges": [
                {"range": {"start": position, "end": position}, "text": "a"}]})
            position = {"line": position["line"], "character": position["character"] + 1}
        sent = time.monotonic()
        response = server.request(method, _request_params(method, uri, position), timeout=timeout)
        elapsed_ms = (time.monotonic() - sent) * 1000
        if "error" in response:
            answer = f"error {response['error'].get('code')}: {response['error'].get('message', '')[:80]}"
        else:
            result = response["result"]
            answer = "empty" if not result or (isinstance(result, dict) and result.get("items") == []) else "result"
        outcome["requests"][name] = {
            "ms": round(elapsed_ms, 1), "answer": answer,
            "internal_error": "error" in response and response["error"].get("code") not in EXPECTED_ERRORS}
    outcome["open_to_last_answer_ms"] = round((time.monotonic() - opened) * 1000, 1)
    outcome["max_request_ms"] = max(r["ms"] for r in outcome["requests"].values())
    outcome["rss_mb"] = round(server.rss_mb(), 1)
    server.notify("textDocument/didClose", {"textDocument": {"uri": uri}})
    outcome["alive"] = server.process.poll() is None and "result" in server.request(
        "workspace/executeCommand", {"command": "codeassist.status"}, timeout=timeout)
    return outcome
