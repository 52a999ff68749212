"""Serving LSP on a TCP socket safely: loopback by default, and a token only the user can read.

pygls' own `start_tcp` hands every new connection the one protocol's writer, so anyone who can
connect could drive the server (or take over its answers). Here each connection first proves it
knows the token: its first message must be `initialize` carrying `initializationOptions.token`
(or `initializationOptions.codeassist.token`). A connection that does not is answered with an
error and closed before it ever touches the protocol; one session is served at a time, and the
server ends with it, as with stdio.
"""

from __future__ import annotations

import asyncio
import hmac
import json
import logging
import os
import secrets
from pathlib import Path
from threading import Event
from typing import TYPE_CHECKING, Any

from pygls.io_ import run_async

if TYPE_CHECKING:
    from pygls.lsp.server import LanguageServer

log = logging.getLogger(__name__)

# A client has this long to send its initialize, and it may be at most this large.
HANDSHAKE_TIMEOUT_S = 10.0
MAX_HANDSHAKE_BYTES = 8 * 1024 * 1024
# JSON-RPC "Invalid Request": the answer to an initialize without the right token.
REFUSED_CODE = -32600


def default_token_file() -> Path:
    """<user cache dir>/codeassist/tcp-token (honours $CODEASSIST_CACHE_DIR)."""
    from codeassist_lsp.engine.models import cache_dir

    return cache_dir() / "tcp-token"


def write_token_file(path: Path) -> str:
    """A fresh random token, written to `path` readable by this user only (0600); the token."""
    token = secrets.token_urlsafe(32)
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    # Created 0600 from the start (never briefly readable), then renamed over any older token.
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0), 0o600)
    try:
        with os.fdopen(fd, "w", encoding="ascii") as file:
            file.write(token)
        os.replace(temporary, path)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise
    return token


def pop_token(options: Any) -> Any:
    """initializationOptions without the handshake token (it is no setting); returns what was there."""
    token = None
    if isinstance(options, dict):
        token = options.pop("token", None)
        nested = options.get("codeassist")
        if isinstance(nested, dict):
            inner = nested.pop("token", None)
            token = token if token is not None else inner
    return token


def handshake_refusal(message: Any, token: str) -> str | None:
    """Why a connection's first message does not open a session, or None when it does (token removed)."""
    if not isinstance(message, dict) or message.get("method") != "initialize":
        return "the first message must be initialize"
    params = message.get("params")
    options = params.get("initializationOptions") if isinstance(params, dict) else None
    given = pop_token(options)
    if not isinstance(given, str) or not given:
        return "initializationOptions.token is missing"
    if not hmac.compare_digest(given.encode(), token.encode()):
        return "initializationOptions.token is wrong"
    return None


async def read_message(reader: asyncio.StreamReader) -> Any:
    """One Content-Length framed JSON message (raises ValueError on bad framing or size)."""
    length = None
    while True:
        line = await reader.readline()
        if not line:
            raise ConnectionError("closed before a message")
        if not line.strip():
            break
        name, _, value = line.decode("ascii", "replace").partition(":")
        if name.strip().lower() == "content-length":
            length = int(value.strip())
    if length is None or not 0 < length <= MAX_HANDSHAKE_BYTES:
        raise ValueError(f"bad Content-Length {length}")
    return json.loads(await reader.readexactly(length))


def frame(message: Any) -> bytes:
    """A JSON message with its Content-Length header."""
    body = json.dumps(message).encode("utf-8")
    return b"Content-Length: %d\r\n\r\n" % len(body) + body


class _Replay:
    """A reader that first yields `prefix` (the checked initialize), then the connection."""

    def __init__(self, prefix: bytes, reader: asyncio.StreamReader) -> None:
        self._buffer = prefix
        self._reader = reader

    async def readline(self) -> bytes:
        if not self._buffer:
            return await self._reader.readline()
        end = self._buffer.find(b"\n") + 1
        if end == 0:
            line, self._buffer = self._buffer, b""
            return line + await self._reader.readline()
        line, self._buffer = self._buffer[:end], self._buffer[end:]
        return line

    async def readexactly(self, n: int) -> bytes:
        taken, self._buffer = self._buffer[:n], self._buffer[n:]
        if len(taken) < n:
            taken += await self._reader.readexactly(n - len(taken))
        return taken


def serve_tcp(server: LanguageServer, host: str, port: int, token: str, token_file: Path | None = None) -> None:
    """Serve one token-holding client on host:port until its session ends (replaces `start_tcp`)."""
    server._stop_event = stop_event = Event()
    session = {"open": False}
    where = f" (read it from {token_file})" if token_file else ""

    async def connection(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        peer = writer.get_extra_info("peername")
        try:
            first = await asyncio.wait_for(read_message(reader), HANDSHAKE_TIMEOUT_S)
        except (TimeoutError, ValueError, ConnectionError, asyncio.IncompleteReadError) as error:
            log.warning("dropped TCP connection from %s before initialize: %s", peer, error or type(error).__name__)
            writer.close()
            return
        reason = handshake_refusal(first, token)
        if reason is None and session["open"]:
            reason = "another client is connected"
        if reason is not None:
            log.warning("refused TCP client %s: %s", peer, reason)
            msg_id = first.get("id") if isinstance(first, dict) else None
            if isinstance(msg_id, (int, str)) and not isinstance(msg_id, bool):
                writer.write(frame({"jsonrpc": "2.0", "id": msg_id, "error": {
                    "code": REFUSED_CODE,
                    "message": f"codeassist: connection refused: {reason}. This server needs the token from its "
                               f"token file{where} in initializationOptions.token."}}))
            try:
                await writer.drain()
            except ConnectionError:
                pass
            writer.close()
            return
        session["open"] = True
        log.info("TCP client %s connected", peer)
        server.protocol.set_writer(writer)  # type: ignore[arg-type]
        await run_async(stop_event=stop_event, reader=_Replay(frame(first), reader), protocol=server.protocol,
                        logger=log, error_handler=server.report_server_error)
        log.debug("TCP session ended")
        server.shutdown()

    async def listen() -> None:
        listener = await asyncio.start_server(connection, host, port)
        server._server = listener  # what `shutdown` closes
        log.info("serving on %s", ", ".join(str(s.getsockname()) for s in listener.sockets))
        async with listener:
            await listener.serve_forever()

    try:
        asyncio.run(listen())
    except asyncio.CancelledError:
        log.debug("TCP server stopped")
