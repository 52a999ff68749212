"""A raw JSON-RPC client over the real server's stdio: we write the bytes, so we can also write bad ones."""

from __future__ import annotations

import json
import os
import queue
import select
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

SERVER_COMMAND = [sys.executable, "-m", "codeassist_lsp"]
# A server that reads nothing for this long is stuck (it reads its stdin on a thread of its own).
WRITE_TIMEOUT_S = 60


def frame(body: bytes) -> bytes:
    """One LSP frame: the Content-Length header and the body."""
    return b"Content-Length: %d\r\n\r\n" % len(body) + body


def encode(message: dict[str, Any]) -> bytes:
    """A message as JSON bytes (lone surrogates travel as JSON escapes, as a real client writes them)."""
    return json.dumps(message).encode("ascii")


class ProtocolViolation(AssertionError):
    """The server wrote something on stdout that is not framed JSON-RPC."""


class RawServer:
    """The server process on stdio with a strict reader of everything it writes to stdout."""

    def __init__(self, log_path: Path, extra_args: Sequence[str] = ("--no-preload",),
                 env: dict[str, str] | None = None, command: Sequence[str] | None = None) -> None:
        self.log_path = log_path
        # Logs go to log_path; stderr (anything else the process prints) to a file beside it.
        self._stderr = open(log_path.with_suffix(".stderr"), "wb")
        self.process = subprocess.Popen(
            [*(command or SERVER_COMMAND), *extra_args, "--log-file", str(log_path)],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self._stderr,
            env={**os.environ, **(env or {})})
        assert self.process.stdin is not None
        self._stdin = self.process.stdin.fileno()
        os.set_blocking(self._stdin, False)
        self.responses: dict[Any, dict[str, Any]] = {}
        self.notifications: list[dict[str, Any]] = []
        self.violations: list[str] = []
        self.frames_read = 0
        self._arrived = threading.Condition()
        self._next_id = 0
        self._lock = threading.Lock()
        # Answers to the server's own requests are written by another thread: the reader must never
        # block on stdin, or a server blocked writing stdout would wait for it forever.
        self._replies: queue.Queue[bytes | None] = queue.Queue()
        self._reader = threading.Thread(target=self._read_stdout, daemon=True)
        self._reader.start()
        self._replier = threading.Thread(target=self._write_replies, daemon=True)
        self._replier.start()

    # -- writing -----------------------------------------------------------------------------------

    def write(self, data: bytes, timeout: float = WRITE_TIMEOUT_S) -> None:
        """Raw bytes to the server's stdin; fails (never hangs) when the server stops reading."""
        view = memoryview(data)
        deadline = time.monotonic() + timeout
        with self._lock:
            while view:
                _, writable, _ = select.select([], [self._stdin], [], max(0.0, deadline - time.monotonic()))
                if not writable:
                    raise AssertionError(f"the server has not read its stdin for {timeout} s; log: {self.log_tail()}")
                view = view[os.write(self._stdin, view[:65536]):]

    def answer(self, method: str) -> Any:
        """What this client answers to a request from the server (tests may replace it)."""
        return {"applied": True} if method == "workspace/applyEdit" else None

    def new_id(self) -> int:
        """A fresh request id."""
        self._next_id += 1
        return self._next_id

    def notify(self, method: str, params: Any = None) -> None:
        """A well-formed notification."""
        message: dict[str, Any] = {"jsonrpc": "2.0", "method": method}
        if params is not None:
            message["params"] = params
        self.write(frame(encode(message)))

    def send_request(self, method: str, params: Any = None, msg_id: Any = None) -> Any:
        """A well-formed request; its id."""
        msg_id = self.new_id() if msg_id is None else msg_id
        message: dict[str, Any] = {"jsonrpc": "2.0", "id": msg_id, "method": method}
        if params is not None:
            message["params"] = params
        self.write(frame(encode(message)))
        return msg_id

    def request(self, method: str, params: Any = None, timeout: float = 30) -> dict[str, Any]:
        """Send a request and wait for its response message."""
        return self.wait_for(self.send_request(method, params), timeout)

    def wait_for(self, msg_id: Any, timeout: float = 30) -> dict[str, Any]:
        """The response to `msg_id`; fails after `timeout` seconds."""
        deadline = time.monotonic() + timeout
        with self._arrived:
            while msg_id not in self.responses:
                left = deadline - time.monotonic()
                if left <= 0 or self.process.poll() is not None:
                    raise AssertionError(f"no response to request {msg_id!r} (server exit code "
                                         f"{self.process.poll()}); log: {self.log_tail()}")
                self._arrived.wait(min(left, 0.5))
            return self.responses[msg_id]

    def wait_for_all(self, ids: Sequence[Any], timeout: float) -> list[Any]:
        """Wait until every id has a response or the time is up; the ids still unanswered."""
        deadline = time.monotonic() + timeout
        with self._arrived:
            while True:
                missing = [i for i in ids if i not in self.responses]
                if not missing or time.monotonic() > deadline or self.process.poll() is not None:
                    return missing
                self._arrived.wait(0.5)

    def initialize(self, options: dict[str, Any] | None = None,
                   capabilities: dict[str, Any] | None = None) -> dict[str, Any]:
        """initialize + initialized; the initialize result."""
        response = self.request("initialize", {
            "processId": os.getpid(), "rootUri": None, "capabilities": capabilities or {},
            "initializationOptions": options or {}})
        assert "result" in response, response
        self.notify("initialized", {})
        return response["result"]

    def shutdown_and_exit(self, timeout: float = 30) -> int:
        """shutdown, exit, and the process's exit code."""
        response = self.request("shutdown", None, timeout)
        assert "error" not in response, response
        self.notify("exit")
        return self.wait_exit(timeout)

    def wait_exit(self, timeout: float = 30) -> int:
        """Wait for the process to end; its exit code."""
        code = self.process.wait(timeout)
        self._reader.join(5)
        return code

    def close(self) -> None:
        """End the process if it still runs (a failed test never said exit)."""
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait(10)
        for stream in (self.process.stdin, self.process.stdout):
            try:
                if stream is not None:
                    stream.close()
            except OSError:
                pass
        self._stderr.close()

    def log_tail(self, chars: int = 3000) -> str:
        """The end of the server's log (for assertion messages)."""
        try:
            return self.log_path.read_text(errors="replace")[-chars:]
        except OSError:
            return ""

    # -- reading -----------------------------------------------------------------------------------

    def _read_stdout(self) -> None:
        stream = self.process.stdout
        assert stream is not None
        while True:
            try:
                message = self._read_frame(stream)
            except (ProtocolViolation, ValueError) as error:
                self.violations.append(str(error))
                # Out of sync: nothing after this can be trusted, but keep the pipe drained so a
                # server blocked on stdout does not hang the test.
                while stream.read(65536):
                    pass
                break
            if message is None:
                break
            self.frames_read += 1
            self._dispatch(message)
        self._replies.put(None)
        with self._arrived:
            self._arrived.notify_all()

    def _write_replies(self) -> None:
        while (reply := self._replies.get()) is not None:
            try:
                self.write(reply)
            except OSError:  # the server has gone; the test notices that itself
                return

    def _read_frame(self, stream: Any) -> dict[str, Any] | None:
        """One frame, checked strictly: headers, Content-Length, UTF-8 JSON, a JSON-RPC 2.0 message."""
        length = None
        while True:
            line = stream.readline()
            if not line:
                if length is not None:
                    raise ProtocolViolation("stdout ended inside a header")
                return None
            if not line.endswith(b"\r\n"):
                raise ProtocolViolation(f"header line without CRLF: {line[:200]!r}")
            if line == b"\r\n":
                break
            name, sep, value = line[:-2].partition(b":")
            if not sep:
                raise ProtocolViolation(f"not a header: {line[:200]!r}")
            if name.strip().lower() == b"content-length":
                if not value.strip().isdigit():
                    raise ProtocolViolation(f"bad Content-Length: {line[:200]!r}")
                length = int(value.strip())
            elif name.strip().lower() != b"content-type":
                raise ProtocolViolation(f"unknown header: {line[:200]!r}")
        if length is None:
            raise ProtocolViolation("a frame without Content-Length")
        body = stream.read(length)
        if len(body) != length:
            raise ProtocolViolation(f"stdout ended inside a body ({len(body)} of {length} bytes)")
        try:
            message = json.loads(body.decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError) as error:
            raise ProtocolViolation(f"body is not UTF-8 JSON ({error}): {body[:200]!r}") from error
        problem = _jsonrpc_problem(message)
        if problem:
            raise ProtocolViolation(f"{problem}: {body[:300]!r}")
        return message

    def _dispatch(self, message: dict[str, Any]) -> None:
        if "method" in message and "id" in message:
            # A server-to-client request (progress tokens, registrations, edits): answer as an editor would.
            result = self.answer(message["method"])
            self._replies.put(frame(encode({"jsonrpc": "2.0", "id": message["id"], "result": result})))
            self.notifications.append(message)
        elif "method" in message:
            self.notifications.append(message)
        else:
            with self._arrived:
                if message["id"] in self.responses:
                    self.violations.append(f"a second response to id {message['id']!r}: {self.responses[message['id']]} then {message}")
                self.responses[message["id"]] = message
                self._arrived.notify_all()


def _jsonrpc_problem(message: Any) -> str | None:
    """Why `message` is not a JSON-RPC 2.0 message, or None."""
    if not isinstance(message, dict) or message.get("jsonrpc") != "2.0":
        return "not a JSON-RPC 2.0 object"
    if "method" in message:
        if not isinstance(message["method"], str):
            return "method is not a string"
        if "id" in message and not isinstance(message["id"], (int, str)):
            return "a request id that is neither integer nor string"
        return None
    if "id" not in message or not (message["id"] is None or isinstance(message["id"], (int, str))):
        return "a response without a valid id"
    if ("result" in message) == ("error" in message):
        return "a response needs exactly one of result and error"
    if "error" in message:
        error = message["error"]
        if not (isinstance(error, dict) and isinstance(error.get("code"), int)
                and isinstance(error.get("message"), str)):
            return "an error without an integer code and a string message"
    return None


FAKE_OPTIONS = {"engine": "fake", "security": {"diagnostics": False}, "cache": {"enabled": False},
                "completion": {"prewarm": False}, "actions": {"bestOfN": 1, "hoverDebounceMs": 0}}
RESOLVE_CAPABILITIES = {"codeAction": {"dataSupport": True, "resolveSupport": {"properties": ["edit"]}}}
# What an editor declares for the features under test: lazily resolved code actions, inline completion, hover.
EDITOR_CAPABILITIES = {
    "textDocument": {
        "codeAction": {"dataSupport": True, "resolveSupport": {"properties": ["edit"]},
                       "codeActionLiteralSupport": {"codeActionKind": {"valueSet": ["", "quickfix", "refactor",
                                                                                     "source"]}}},
        "inlineCompletion": {},
        "hover": {"contentFormat": ["markdown", "plaintext"]},
    },
}


def fake_server(log_dir: Path, encodings: list[str] | None = None, step_ms: int = 0,
                options: dict[str, Any] | None = None) -> tuple[RawServer, dict[str, Any]]:
    """An initialized server on the deterministic engine (protocol tests); the initialize result."""
    server = RawServer(log_dir / "server.log", env={"CODEASSIST_FAKE_STEP_MS": str(step_ms)})
    capabilities: dict[str, Any] = {"textDocument": RESOLVE_CAPABILITIES}
    if encodings is not None:
        capabilities["general"] = {"positionEncodings": encodings}
    try:
        return server, server.initialize({**FAKE_OPTIONS, **(options or {})}, capabilities)
    except BaseException:
        server.close()
        raise


def open_document(server: RawServer, uri: str, text: str, version: int = 1, language_id: str = "python") -> None:
    """didOpen a document."""
    server.notify("textDocument/didOpen", {"textDocument": {
        "uri": uri, "languageId": language_id, "version": version, "text": text}})


def units(text: str, encoding: str) -> int:
    """The length of text in an LSP position encoding's code units."""
    if encoding == "utf-8":
        return len(text.encode("utf-8"))
    if encoding == "utf-32":
        return len(text)
    return len(text.encode("utf-16-le")) // 2
