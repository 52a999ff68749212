"""Inference servers for the remote-engine tests: the real llama_cpp.server, and a scripted one for faults.

The scripted server exists only for faults a real server cannot produce on demand (HTTP 500,
malformed JSON, a stream that never ends or stalls) and to see exactly what left the machine.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any


def free_port() -> int:
    """A loopback port nobody listens on now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def wait_until_up(url: str, timeout: float = 90.0) -> None:
    """Poll GET url until it answers 200."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:
            pass
        if time.monotonic() > deadline:
            raise TimeoutError(f"{url} did not come up within {timeout:.0f} s")
        time.sleep(0.2)


class LlamaCppServer:
    """llama-cpp-python's own OpenAI-compatible server on one GGUF, on loopback."""

    def __init__(self, model: Path, port: int | None = None, log: Path | None = None) -> None:
        self.model = model
        self.port = port or free_port()
        self.log = log
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        """The base URL."""
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> LlamaCppServer:
        """Start it and wait until it serves /v1/models."""
        out = open(self.log, "ab") if self.log else subprocess.DEVNULL
        self.process = subprocess.Popen(
            [sys.executable, "-m", "llama_cpp.server", "--model", str(self.model), "--host", "127.0.0.1",
             "--port", str(self.port), "--n_ctx", "4096", "--n_threads", "2", "--verbose", "False"],
            stdout=out, stderr=out, start_new_session=True)
        try:
            wait_until_up(self.url + "/v1/models")
        except TimeoutError:
            self.kill()
            raise
        return self

    def kill(self) -> None:
        """SIGKILL: the way a crashed or unplugged server goes."""
        if self.process is not None and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=10)


class ScriptedServer:
    """An HTTP server answering /v1/completions the way `mode` says, recording what it received."""

    def __init__(self, mode: str = "ok", tls: tuple[Path, Path] | None = None) -> None:
        """`tls`: (certificate, key) PEM files to serve https."""
        self.mode = mode
        self.scheme = "https" if tls else "http"
        self.bodies: list[dict[str, Any]] = []
        self.headers: list[dict[str, str]] = []
        self.disconnects = threading.Event()
        self.arrivals: list[float] = []  # time.monotonic() of each POST
        self.first_events: list[float] = []  # when each answer's first event was written
        scripted = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:  # quiet
                return

            def do_GET(self) -> None:  # noqa: N802 - http.server's naming
                body = json.dumps({"object": "list", "data": [{"id": "scripted"}]}).encode()
                if scripted.mode == "down":
                    self.send_response(503)
                else:
                    self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def do_POST(self) -> None:  # noqa: N802
                length = int(self.headers.get("Content-Length", "0"))
                scripted.arrivals.append(time.monotonic())
                scripted.bodies.append(json.loads(self.rfile.read(length) or b"{}"))
                scripted.headers.append(dict(self.headers))
                scripted.serve(self)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        if tls is not None:
            import ssl

            context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            context.load_cert_chain(str(tls[0]), str(tls[1]))
            self.httpd.socket = context.wrap_socket(self.httpd.socket, server_side=True)
        self.port = self.httpd.server_address[1]
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        """The base URL."""
        return f"{self.scheme}://127.0.0.1:{self.port}"

    def __enter__(self) -> ScriptedServer:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()

    def serve(self, handler: BaseHTTPRequestHandler) -> None:
        """Answer one POST as the mode says."""
        mode = self.mode
        if mode == "http500":
            body = b'{"error": "out of memory"}'
            handler.send_response(500)
            handler.send_header("Content-Type", "application/json")
            handler.send_header("Content-Length", str(len(body)))
            handler.end_headers()
            handler.wfile.write(body)
            return
        handler.send_response(200)
        handler.send_header("Content-Type", "text/event-stream")
        handler.send_header("Connection", "close")
        handler.end_headers()
        try:
            if mode == "malformed":
                handler.wfile.write(b"data: {not json\n\n")
            elif mode == "stall":
                handler.wfile.write(_event(" a"))
                handler.wfile.flush()
                time.sleep(30)  # then nothing: a server that hangs mid-stream
            elif mode == "prompt":
                # A long prompt: the first token comes after a second, then tokens slowly.
                time.sleep(1.0)
                for _ in range(200):
                    handler.wfile.write(_event(" a"))
                    handler.wfile.flush()
                    if len(self.first_events) < len(self.arrivals):
                        self.first_events.append(time.monotonic())
                    time.sleep(0.05)
            elif mode in ("endless", "slow"):
                # Tokens forever (endless), or slowly until the client leaves (slow).
                for _ in range(100_000):
                    handler.wfile.write(_event(" a"))
                    handler.wfile.flush()
                    time.sleep(0.001 if mode == "endless" else 0.05)
            elif mode == "chat":  # /v1/chat/completions deltas
                for piece in ("Adds", " two numbers."):
                    data = {"choices": [{"index": 0, "delta": {"content": piece}, "finish_reason": None}]}
                    handler.wfile.write(f"data: {json.dumps(data)}\n\n".encode())
                handler.wfile.write(b"data: [DONE]\n\n")
            else:  # ok: a short answer
                for piece in ("x", " = ", "1\n"):
                    handler.wfile.write(_event(piece))
                handler.wfile.write(_event("", "stop") + b"data: [DONE]\n\n")
            handler.wfile.flush()
        except (BrokenPipeError, ConnectionResetError):
            self.disconnects.set()


def _event(text: str, finish: str | None = None) -> bytes:
    data = {"choices": [{"text": text, "index": 0, "finish_reason": finish}]}
    return f"data: {json.dumps(data)}\n\n".encode()
