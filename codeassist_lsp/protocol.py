"""The JSON-RPC edge: every request gets an answer, and text from the wire is valid Unicode."""

from __future__ import annotations

import logging
import re
from typing import Any
from urllib.parse import unquote

import attrs
from lsprotocol.types import (
    CANCEL_REQUEST, EXIT, INITIALIZE, TEXT_DOCUMENT_DID_CHANGE, WINDOW_WORK_DONE_PROGRESS_CANCEL, Position,
)
from pygls.exceptions import (
    JsonRpcException, JsonRpcInternalError, JsonRpcInvalidParams, JsonRpcInvalidRequest,
    JsonRpcServerNotInitialized,
)
from pygls.protocol import LanguageServerProtocol
from pygls.workspace import Workspace
from pygls.workspace.position_codec import PositionCodec, ServerTextPosition, Utf8, Utf32

log = logging.getLogger(__name__)

# JSON may escape a lone UTF-16 surrogate ("\ud800"); Python keeps it, UTF-8 (tree-sitter, the
# tokenizer, the disk cache) cannot encode it. U+FFFD is one UTF-16 unit too, so positions hold.
_LONE_SURROGATE = re.compile("[\ud800-\udfff]")


# Cancel notifications and the field naming what they cancel (an integer or a string).
_CANCELS = {CANCEL_REQUEST: "id", WINDOW_WORK_DONE_PROGRESS_CANCEL: "token"}


@attrs.frozen
class _Unreadable:
    """A message that could not be structured: answered with `error` (when it has an id) if it stands alone."""

    msg_id: int | str | None
    error: JsonRpcException | None
    is_response: bool = False  # an answer to one of our requests, not a request


def valid_unicode(value: Any) -> Any:
    """`value` with every lone surrogate in its strings replaced by U+FFFD (containers in place)."""
    if isinstance(value, str):
        return _LONE_SURROGATE.sub("\ufffd", value) if _LONE_SURROGATE.search(value) else value
    if isinstance(value, dict):
        for key, item in value.items():
            value[key] = valid_unicode(item)
    elif isinstance(value, list):
        for index, item in enumerate(value):
            value[index] = valid_unicode(item)
    return value


def _valid_id(msg_id: Any) -> bool:
    """Whether `msg_id` is an LSP request id: an integer or a string."""
    return isinstance(msg_id, (int, str)) and not isinstance(msg_id, bool)


class CodeassistProtocol(LanguageServerProtocol):
    """pygls' protocol, except that every request is answered (pygls drops or fails on some) as the specs say."""

    def structure_message(self, data: dict[str, Any]) -> Any:
        """Structure one decoded JSON object; what pygls cannot structure becomes an `_Unreadable`."""
        if "jsonrpc" not in data:
            return data  # a nested object, structured with its message (or not a message at all)
        msg_id = data.get("id")
        if "id" in data and not _valid_id(msg_id) and (msg_id is not None or "method" in data):
            # No answer could name it (pygls would answer under the same invalid id, or fail on it).
            log.warning("dropped a message with an invalid id: %.200r", data)
            return _Unreadable(None, None)
        request_id = msg_id if "method" in data else None
        if data["jsonrpc"] != self.VERSION or ("method" in data and not isinstance(data["method"], str)):
            log.warning("not a JSON-RPC 2.0 message: %.200r", data)
            return _Unreadable(request_id, JsonRpcInvalidRequest())
        for part in ("params", "result"):  # not the id: an answer must carry the id as it came
            if part in data:
                data[part] = valid_unicode(data[part])
        try:
            return super().structure_message(data)
        except JsonRpcException as error:
            if "method" not in data:
                # The client's answer to one of our requests: fail that request rather than wait forever.
                log.warning("unreadable response %r: %s", msg_id, error.__cause__)
                return _Unreadable(msg_id, JsonRpcInternalError(
                    message=f"The client's answer could not be read: {error.__cause__}"), is_response=True)
            log.warning("unreadable params for %s: %s", data["method"], error.__cause__)
            # A notification is never answered; pygls would drop a request too, and the client
            # would wait for that answer forever.
            return _Unreadable(request_id, JsonRpcInvalidParams(
                message=f"Invalid params for {data['method']}: {error.__cause__}"))

    def handle_message(self, message: Any) -> None:
        """Dispatch one message; requests pygls would drop get the error the specs name."""
        if isinstance(message, _Unreadable):
            # Answered only here, where it is known to stand alone (not inside params or a batch).
            if message.msg_id is not None and message.error is not None:
                if message.is_response:
                    self._handle_response(message.msg_id, None, message.error.to_response_error())
                else:
                    self._send_response(message.msg_id, error=message.error.to_response_error())
            return
        if not hasattr(message, "jsonrpc"):
            # JSON that is no message at all: an object without "jsonrpc", a batch array, a scalar.
            log.warning("not a JSON-RPC 2.0 message: %.200r", message)
            if isinstance(message, dict) and "method" in message and _valid_id(message.get("id")):
                self._send_response(message["id"], error=JsonRpcInvalidRequest().to_response_error())
            return
        method = getattr(message, "method", None)
        if method is not None:  # not a response to one of our requests
            refusal = self._refusal(method)
            if refusal is not None:
                if hasattr(message, "id"):
                    self._send_response(message.id, error=refusal.to_response_error())
                return
            if not hasattr(message, "id") and self._ignored(method, message.params):
                return
        super().handle_message(message)

    def _refusal(self, method: str) -> JsonRpcException | None:
        """The error the LSP spec names for a message that arrives before initialize or after shutdown."""
        if self._shutdown and method != EXIT:
            # "Requests after shutdown should error with InvalidRequest" (pygls drops them).
            return JsonRpcInvalidRequest(message="The server is shutting down")
        if self._workspace is None and method not in (INITIALIZE, EXIT):
            # Before initialize, requests "should error with code -32002" and notifications are dropped
            # (pygls would run them and fail on the missing workspace).
            return JsonRpcServerNotInitialized()
        return None

    def _ignored(self, method: str, params: Any) -> bool:
        """Whether a notification is one pygls would fail on (and tell the user a bare KeyError): log it instead."""
        if method in _CANCELS and not _valid_id(getattr(params, _CANCELS[method], None)):
            log.warning("ignored a cancel without a valid id: %.200r", params)
            return True
        if method == TEXT_DOCUMENT_DID_CHANGE and self._workspace is not None and (
                unquote(params.text_document.uri) not in self._workspace.text_documents):
            log.warning("ignored a change to a document that is not open: %s", params.text_document.uri)
            return True
        return False


class FastPositionCodec(PositionCodec):
    """pygls' position conversions, the same results at C speed: its loop over every character of a
    line took seconds per request on a 5 MB minified line."""

    def __init__(self, encoding: Any) -> None:
        super().__init__(encoding)
        self._codec, self._unit_bytes = (("utf-8", 1) if isinstance(self.impl, Utf8)
                                         else ("utf-32-le", 4) if isinstance(self.impl, Utf32) else ("utf-16-le", 2))

    def client_num_units(self, string: str) -> int:
        """The length of `string` in the client's code units."""
        if string.isascii():
            return len(string)
        # A lone surrogate counts as one UTF-16/UTF-32 unit and three UTF-8 bytes, as in pygls.
        return len(string.encode(self._codec, "surrogatepass")) // self._unit_bytes

    def position_from_client_units(self, lines: Any, position: Any) -> ServerTextPosition:
        """A client position as a str index in its line (pygls' rules, including its clamping)."""
        if not 0 <= position.line < len(lines) or _LONE_SURROGATE.search(lines[position.line]):
            return super().position_from_client_units(lines, position)
        line = lines[position.line].replace("\r\n", "\n")
        length = self.client_num_units(line)
        if length == 0:
            return ServerTextPosition(position.line, 0)
        if position.character > length:
            position.character = length - 1  # pygls' rule: past the end means before the line break
        return ServerTextPosition(position.line, self._index_at_units(line, position.character))

    def _index_at_units(self, line: str, units: int) -> int:
        """The first str index whose prefix is at least `units` code units long, else len(line)."""
        if line.isascii():
            return min(units, len(line))
        # The whole characters within `units`; one more when the position falls inside a character.
        index = len(line.encode(self._codec)[:units * self._unit_bytes].decode(self._codec, "ignore"))
        if index < len(line) and self.client_num_units(line[:index]) < units:
            index += 1
        return index

    def position_to_client_units(self, lines: Any, position: Any) -> Position:
        """A str index in its line as a client position."""
        if not 0 <= position.line < len(lines):
            return super().position_to_client_units(lines, position)
        return Position(line=position.line, character=self.client_num_units(lines[position.line][:position.character]))


def use_fast_positions(workspace: Workspace) -> None:
    """Convert every position of this workspace's documents with FastPositionCodec."""
    # pygls builds the codec inside Workspace and hands it to each document it opens.
    workspace._position_codec = FastPositionCodec(workspace.position_codec.encoding)
