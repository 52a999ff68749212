"""Protocol fuzzing: >= 10,000 generated messages, many of them wrong, against the real server process.

The deterministic engine answers, so the model never runs per message: this targets the protocol
layer (framing, decoding, params, document sync, positions), not suggestions.
"""

from __future__ import annotations

import json
import random
from collections.abc import Callable
from pathlib import Path
from typing import Any

from tests.hardening.support import RawServer, encode, frame

SEED = 19
MESSAGES = 10_000
# Wait for the answers every this many messages: the pipe stays bounded and a hang shows early.
BATCH = 250
BATCH_TIMEOUT_S = 60

OPTIONS = {
    "engine": "fake",
    "completion": {"prewarm": False},
    "security": {"diagnostics": False},  # the scanners would cost seconds per document
    "actions": {"bestOfN": 1, "hoverDebounceMs": 0},
    "cache": {"enabled": False},
}

# Requests and notifications the fuzzer may name. Lifecycle methods are left out: a second
# initialize, a shutdown or an exit would end the session on purpose, not by a bug.
REQUESTS = ["textDocument/completion", "textDocument/inlineCompletion", "textDocument/hover",
            "textDocument/codeAction", "codeAction/resolve", "workspace/executeCommand"]
NOTIFICATIONS = ["textDocument/didOpen", "textDocument/didChange", "textDocument/didClose",
                 "textDocument/didSave", "$/cancelRequest", "$/setTrace", "window/workDoneProgress/cancel",
                 "workspace/didChangeWatchedFiles"]

SNIPPETS = [
    "def add(a, b):\n    return a + b\n",
    "class Point:\n    def __init__(self, x, y):\n        self.x = x\n        ",
    "import os\n\n\ndef home():\n    return os.path.expand",
    "greeting = \"héllo wörld 🌍\"\nname = \"🌍 \" + greeting.up",
    "𝔘𝔫𝔦𝔠𝔬𝔡𝔢 = '👩‍👩‍👧‍👦 e\u0301 ﷽ 漢字'\n",
    "function f(x) {\n  return x * 2;\n}\n",
    "fn main() {\n    let v: Vec<i32> = Vec::new();\n    \n}\n",
    "x = '\ud800 lone' + '\udfff'\n",
    "\x00\x01\x02 binary \x7f\x1b[0m\n",
    "# comment only\n",
    "\t\t  \n\n\n",
    "if x:\r\n    y = 1\r\n    ",
    "a\rb\rc",
    "(" * 500 + ")" * 499,
    "s = \"" + "ab" * 2000 + "\"\n",
    "\u2028\u2029\u0085 line separators\n",
    "",
]
LANGUAGES = ["python", "javascript", "typescript", "rust", "go", "plaintext", "", "totally-unknown", "PYTHON"]
SUFFIXES = [".py", ".js", ".ts", ".rs", ".go", ".txt", "", ".unknownlang"]
WEIRD_VALUES: list[Any] = [None, 0, -1, 1.5, 2**31, 2**63, -(2**31) - 1, "", "x", "\ud800", True, [], {}, [1, "a"],
                           {"line": "a"}, float("1e308")]


class Fuzzer:
    """Generates messages from one seed; remembers which ones must be answered."""

    def __init__(self, seed: int) -> None:
        self.rng = random.Random(seed)
        self.documents: dict[str, tuple[int, str]] = {}  # uri -> (version, text) as we believe it
        self.expected: list[Any] = []
        self.request_ids: list[Any] = []
        self.actions: list[dict[str, Any]] = []  # code actions the server offered, for resolve
        self._next_id = 1000
        self.kinds: dict[str, int] = {}

    # -- values --------------------------------------------------------------------------------

    def text(self) -> str:
        """A document: usually a few snippets, sometimes empty, rarely huge."""
        roll = self.rng.random()
        if roll < 0.05:
            return ""
        if roll < 0.055:  # about a megabyte
            return "".join(f"def function_{i}(value):\n    return value * {i}\n\n" for i in range(25_000))
        parts = self.rng.choices(SNIPPETS, k=self.rng.randint(1, 4))
        text = "".join(parts)
        if self.rng.random() < 0.2:
            text = text.replace("\n", "\r\n")
        return text

    def uri(self, opened: bool | None = None) -> str:
        """A document uri: one we opened, or one the server never saw."""
        if opened is None:
            opened = self.rng.random() < 0.8
        if opened and self.documents:
            return self.rng.choice(sorted(self.documents))
        roll = self.rng.random()
        if roll < 0.1:
            return self.rng.choice(["untitled:Untitled-1", "file:///tmp/fuzz/with%20space.py", "not a uri", "",
                                    "file:///tmp/fuzz/%ZZ.py", "file:///tmp/fuzz/ünï.py", "file:///etc/passwd"])
        return f"file:///tmp/codeassist-fuzz/doc{self.rng.randint(0, 40)}{self.rng.choice(SUFFIXES)}"

    def position(self, uri: str) -> Any:
        """A position: usually inside the document, else past a line's end or the document, or absurd."""
        text = self.documents.get(uri, (0, ""))[1]
        lines = text.split("\n")
        roll = self.rng.random()
        if roll < 0.6:
            line = self.rng.randrange(len(lines))
            return {"line": line, "character": self.rng.randint(0, len(lines[line]) + 2)}
        if roll < 0.75:
            return {"line": self.rng.randint(0, len(lines) + 5), "character": self.rng.randint(0, 10_000)}
        if roll < 0.9:
            return {"line": self.rng.choice([0, 2**31 - 1, len(lines)]), "character": 2**31 - 1}
        return {"line": self.rng.choice(WEIRD_VALUES), "character": self.rng.choice(WEIRD_VALUES)}

    def range(self, uri: str) -> dict[str, Any]:
        """A range, possibly reversed or absurd."""
        return {"start": self.position(uri), "end": self.position(uri)}

    def new_id(self) -> Any:
        """A fresh id: an integer (sometimes large or negative) or a string, never reused."""
        self._next_id += 1
        roll = self.rng.random()
        if roll < 0.7:
            return self._next_id
        if roll < 0.8:
            return -self._next_id
        if roll < 0.85:
            return 2**53 + self._next_id
        return self.rng.choice(["req-", "ü-", "🎉-", " ", "\\\"-"]) + str(self._next_id)

    # -- messages ------------------------------------------------------------------------------

    def params_for(self, method: str) -> Any:
        """Plausible params for a method (each field may still be wrong)."""
        uri = self.uri()
        document = {"uri": uri}
        if method in ("textDocument/completion", "textDocument/hover"):
            return {"textDocument": document, "position": self.position(uri)}
        if method == "textDocument/inlineCompletion":
            return {"textDocument": document, "position": self.position(uri),
                    "context": {"triggerKind": self.rng.choice([1, 2, 3, 0])}}
        if method == "textDocument/codeAction":
            return {"textDocument": document, "range": self.range(uri),
                    "context": {"diagnostics": [{"range": self.range(uri), "message": "boom"}]
                                if self.rng.random() < 0.3 else [],
                                **({"only": ["refactor"]} if self.rng.random() < 0.2 else {})}}
        if method == "codeAction/resolve":
            if self.actions and self.rng.random() < 0.7:
                return json.loads(json.dumps(self.rng.choice(self.actions)))
            return {"title": "x", "data": self.rng.choice([None, {}, {"codeassist": {}}, {"codeassist": {"uri": uri}}])}
        if method == "workspace/executeCommand":
            command = self.rng.choice(["codeassist.status", "codeassist.applyAction", "codeassist.explain", "nope"])
            arguments = self.rng.choice([[], [{}], [{"recent": True}], [None], ["x"],
                                         [self.rng.choice(self.actions)["data"]] if self.actions else []])
            return {"command": command, "arguments": arguments}
        if method == "textDocument/didOpen":
            text = self.text()
            version = self.rng.randint(0, 5)
            self.documents[uri] = (version, text)
            return {"textDocument": {"uri": uri, "languageId": self.rng.choice(LANGUAGES),
                                     "version": version, "text": text}}
        if method == "textDocument/didChange":
            version, text = self.documents.get(uri, (0, ""))
            # Mostly the next version; sometimes the same, an older or a far newer one.
            version = self.rng.choice([version + 1] * 6 + [version, version - 3, version + 1000])
            if self.rng.random() < 0.15:
                change: dict[str, Any] = {"text": self.text()}
            else:
                change = {"range": self.range(uri), "text": self.rng.choice(["", "x", "\n", "\r\n", "é🎉", "ab\ncd\n"])}
            if uri in self.documents:
                self.documents[uri] = (version, text)  # the exact text is the server's business
            return {"textDocument": {"uri": uri, "version": version}, "contentChanges": [change]}
        if method == "textDocument/didClose":
            self.documents.pop(uri, None)
            return {"textDocument": document}
        if method == "textDocument/didSave":
            return {"textDocument": document}
        if method == "$/cancelRequest":
            return {"id": self.rng.choice(self.request_ids[-20:] or [0])}
        if method == "$/setTrace":
            return {"value": self.rng.choice(["off", "messages", "verbose", "bogus"])}
        if method == "window/workDoneProgress/cancel":
            return {"token": self.rng.choice(["codeassist-x", 5, None])}
        return {"changes": [{"uri": uri, "type": self.rng.choice([1, 2, 3, 9])}]}

    def mutate(self, value: Any) -> Any:
        """Replace one random leaf (or the whole value) with a value of a random type."""
        if not isinstance(value, (dict, list)) or not value or self.rng.random() < 0.2:
            return self.rng.choice(WEIRD_VALUES)
        key = self.rng.choice(sorted(value) if isinstance(value, dict) else range(len(value)))
        value[key] = self.mutate(value[key])
        return value

    def message(self) -> tuple[str, dict[str, Any]]:
        """A well-framed JSON message: a request or notification, its params sometimes mutated."""
        roll = self.rng.random()
        if roll < 0.45:
            method = self.rng.choice(REQUESTS)
            message: dict[str, Any] = {"jsonrpc": "2.0", "id": self.new_id(), "method": method,
                                       "params": self.params_for(method)}
            kind = "request"
        elif roll < 0.85:
            method = self.rng.choices(NOTIFICATIONS, weights=[4, 6, 1, 1, 2, 1, 1, 1])[0]
            message = {"jsonrpc": "2.0", "method": method, "params": self.params_for(method)}
            kind = "notification"
        elif roll < 0.92:
            method = self.rng.choice(["codeassist/unknown", "$/unknownNotification", "textDocument/definition",
                                      "", "💥", "textDocument/completion/extra"])
            message = {"jsonrpc": "2.0", "method": method, "params": {}}
            if self.rng.random() < 0.6:
                message["id"] = self.new_id()
            kind = "unknown method"
        else:
            # The envelope itself is wrong: its jsonrpc, method, id or params.
            method = self.rng.choice(REQUESTS)
            message = {"jsonrpc": "2.0", "id": self.new_id(), "method": method, "params": self.params_for(method)}
            field = self.rng.choice(["jsonrpc", "method", "id", "params"])
            # Never a valid id: the fuzzer's own ids are unique, so every answer names one request.
            message[field] = self.rng.choice([None, [], {}, 1.5, True] + ([] if field == "id" else [1, "1.0"]))
            kind = "wrong envelope"
        if kind != "wrong envelope" and "params" in message and self.rng.random() < 0.15:
            message["params"] = self.mutate(message["params"])
            kind += " (mutated)"
        return kind, message

    def malformed(self) -> tuple[str, bytes]:
        """Bytes that break the framing or the encoding; each ends on a line break so the stream resyncs."""
        body = encode({"jsonrpc": "2.0", "id": self.new_id(), "method": "textDocument/hover",
                       "params": self.params_for("textDocument/hover")})
        choices: list[tuple[str, Callable[[], bytes]]] = [
            ("garbage line", lambda: b"hello there\r\n"),
            ("no content-length", lambda: b"Content-Type: application/json\r\n\r\n" + body + b"\r\n"),
            ("non-numeric length", lambda: b"Content-Length: twelve\r\n\r\n" + body + b"\r\n"),
            ("negative length", lambda: b"Content-Length: -5\r\n\r\n" + body + b"\r\n"),
            ("lowercase header", lambda: b"content-length: %d\r\n\r\n" % len(body) + body + b"\r\n"),
            ("LF-only header", lambda: b"Content-Length: %d\n\n" % len(body) + body + b"\r\n"),
            ("short length", lambda: b"Content-Length: %d\r\n\r\n" % (len(body) // 2) + body + b"\r\n"),
            ("long length", lambda: b"Content-Length: %d\r\n\r\n" % (len(body) + 7) + body + b"#######\r\n"),
            ("zero length", lambda: b"Content-Length: 0\r\n\r\n\r\n"),
            ("invalid JSON", lambda: frame(b"{\"jsonrpc\": \"2.0\", \"id\": 1, ") + b"\r\n"),
            ("invalid UTF-8", lambda: frame(body.replace(b"\"uri\": \"", b"\"uri\": \"\xff\xfe\xc3", 1)) + b"\r\n"),
            ("truncated UTF-8", lambda: frame(b"{\"jsonrpc\": \"2.0\", \"method\": \"x\", \"params\": \"\xe2\x82\"}")
             + b"\r\n"),
            ("JSON array", lambda: frame(b"[" + body + b"," + body + b"]") + b"\r\n"),
            ("JSON scalar", lambda: frame(self.rng.choice([b"null", b"42", b"\"str\"", b"true"])) + b"\r\n"),
            ("empty object", lambda: frame(b"{}") + b"\r\n"),
            ("response to nothing", lambda: frame(encode({"jsonrpc": "2.0", "id": 987654321, "result": 1})) + b"\r\n"),
            ("NUL bytes", lambda: b"\x00\x00\x00\r\n"),
        ]
        kind, make = self.rng.choice(choices)
        return kind, make()

    def next(self) -> tuple[str, bytes, Any]:
        """The next bytes to write, what they are, and the id that must be answered (or None)."""
        if self.rng.random() < 0.08:
            kind, data = self.malformed()
            return "malformed: " + kind, data, None
        kind, message = self.message()
        raw = encode(message)
        if self.rng.random() < 0.03:
            # A JSON escape for a lone surrogate or UTF-8 bytes of one (json.loads takes both).
            raw = raw.replace(b"\"text\": \"", self.rng.choice([b"\"text\": \"\\udc80", b"\"text\": \"\xed\xa0\x80"]), 1)
        return kind, frame(raw), answer_expected(raw)


def answer_expected(body: bytes) -> Any:
    """The id a well-framed body must be answered under, or None (not a request we can answer)."""
    try:
        message = json.loads(body)  # the server's decoding: UTF-8, and surrogates passed through
    except ValueError:
        return None
    if not isinstance(message, dict) or message.get("method") is None:
        return None
    msg_id = message.get("id")
    if isinstance(msg_id, bool) or not isinstance(msg_id, (int, str)):
        return None
    return msg_id


def test_fuzzed_protocol_never_breaks_the_server(tmp_path: Path) -> None:
    server = RawServer(tmp_path / "server.log", env={"CODEASSIST_FAKE_STEP_MS": "0"})
    fuzzer = Fuzzer(SEED)
    # The client's own answers are fuzzed too: an edit applied, refused, or answered with nonsense.
    answers = random.Random(SEED)
    server.answer = lambda method: answers.choice(  # type: ignore[method-assign]
        [{"applied": True}, {"applied": False, "failureReason": "fuzz"}, None, "nonsense", {"applied": "yes"}])
    internal_errors: list[dict[str, Any]] = []
    try:
        result = server.initialize(OPTIONS, {"window": {"workDoneProgress": True}})
        assert "capabilities" in result
        sent = 0
        while sent < MESSAGES:
            batch: dict[Any, bytes] = {}
            for _ in range(BATCH):
                kind, data, msg_id = fuzzer.next()
                fuzzer.kinds[kind] = fuzzer.kinds.get(kind, 0) + 1
                server.write(data)
                sent += 1
                if msg_id is not None:
                    batch[msg_id] = data
                    fuzzer.request_ids.append(msg_id)
            # The server is alive and answers: every request of the batch, then a fresh one.
            missing = server.wait_for_all(list(batch), BATCH_TIMEOUT_S)
            assert server.process.poll() is None, f"server exited after {sent} messages: {server.log_tail()}"
            assert not missing, f"unanswered after {sent} messages: {[batch[i][:300] for i in missing[:5]]}"
            assert not server.violations, server.violations
            for msg_id in batch:
                response = server.responses[msg_id]
                if response.get("error", {}).get("code") == -32603:
                    internal_errors.append(response)
                elif isinstance(response.get("result"), list):
                    fuzzer.actions += [a for a in response["result"]
                                       if isinstance(a, dict) and "codeassist" in str(a.get("data"))][:3]
            fuzzer.actions = fuzzer.actions[-50:]
            status = server.request("workspace/executeCommand", {"command": "codeassist.status"})
            assert status["result"]["model"]["state"] == "ready", status
        assert sent >= MESSAGES and len(fuzzer.request_ids) > 2000, fuzzer.kinds
        # A request that fails inside the server is a bug, not "a proper error".
        assert not internal_errors, [e["error"]["message"] for e in internal_errors[:5]]
        # pygls tells the user about bytes it cannot decode; a well-formed message never makes it complain.
        complaints = [n["params"]["message"] for n in server.notifications
                      if n["method"] == "window/showMessage" and "Error in server" in n["params"]["message"]]
        malformed = sum(count for kind, count in fuzzer.kinds.items() if kind.startswith("malformed"))
        assert len(complaints) <= malformed, complaints[:10]
        assert server.shutdown_and_exit() == 0
        assert not server.violations, server.violations
    finally:
        server.close()
