"""LSP spec conformance: position encodings, CRLF, positions past a line's end, incremental sync,
$/cancelRequest for every request kind, shutdown/exit codes, and versioned edits.

The deterministic engine answers where the model's words do not matter; one test uses the real models.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest

from codeassist_lsp.actions.edits import Replacement, with_document_line_endings
from tests.hardening.support import (
    RESOLVE_CAPABILITIES, RawServer, fake_server, open_document, units,
)

URI = "file:///tmp/codeassist-spec/spec.py"
DOCUMENT = {"uri": URI}
REQUEST_CANCELLED = -32800
CONTENT_MODIFIED = -32801


def inline(server: RawServer, position: dict[str, int]) -> dict[str, Any]:
    """An automatic inline completion request's response."""
    return server.request("textDocument/inlineCompletion", {
        "textDocument": DOCUMENT, "position": position, "context": {"triggerKind": 2}})


def completion(server: RawServer, position: dict[str, int]) -> dict[str, Any]:
    """A completion request's response."""
    return server.request("textDocument/completion", {"textDocument": DOCUMENT, "position": position})


def code_actions(server: RawServer, line: int) -> list[dict[str, Any]]:
    """The code actions offered with the cursor at the start of `line`."""
    cursor = {"line": line, "character": 0}
    response = server.request("textDocument/codeAction", {
        "textDocument": DOCUMENT, "range": {"start": cursor, "end": cursor}, "context": {"diagnostics": []}})
    return response["result"] or []


def docstring_action(server: RawServer, line: int) -> dict[str, Any]:
    """The 'Generate doc comment' action for the definition on `line`."""
    actions = [a for a in code_actions(server, line) if a["kind"].endswith(".docstring")]
    assert actions, code_actions(server, line)
    return actions[0]


def change(server: RawServer, version: int, *changes: dict[str, Any]) -> None:
    """didChange with these content changes."""
    server.notify("textDocument/didChange", {"textDocument": {"uri": URI, "version": version},
                                             "contentChanges": list(changes)})


def span(start: tuple[int, int], end: tuple[int, int]) -> dict[str, Any]:
    """An LSP range from (line, character) pairs."""
    return {"start": {"line": start[0], "character": start[1]}, "end": {"line": end[0], "character": end[1]}}


# -- position encodings --------------------------------------------------------------------------

@pytest.mark.parametrize("offered", [["utf-8"], ["utf-16"], ["utf-32"], ["utf-32", "utf-8"], None, ["utf-7"]])
def test_position_encoding_is_negotiated_and_used(tmp_path: Path, offered: list[str] | None) -> None:
    server, result = fake_server(tmp_path, offered)
    try:
        # The spec: one of the offered encodings, else (nothing offered, or nothing we know) UTF-16.
        chosen = result["capabilities"].get("positionEncoding", "utf-16")
        known = [e for e in offered or [] if e in ("utf-8", "utf-16", "utf-32")]
        assert chosen in known if known else chosen == "utf-16", (offered, chosen)

        call = "print(\"🎉é\", add(1, 2))"
        typed = "label = \"🎉é\" + wor"  # an astral character and an accent before the cursor
        open_document(server, URI, f"def add(a, b):\n    return a + b\n\n\n{call}\n{typed}")
        end = {"line": 5, "character": units(typed, chosen)}
        item = inline(server, end)["result"]["items"][0]
        assert item["range"] == {"start": end, "end": end}
        edit = completion(server, end)["result"]["items"][0]["textEdit"]
        assert edit["range"] == {"start": {"line": 5, "character": end["character"] - len("wor")}, "end": end}
        # Past the line's end means the line's end, in the same units.
        item = inline(server, {"line": 5, "character": end["character"] + 1000})["result"]["items"][0]
        assert item["range"] == {"start": end, "end": end}
        # A range the server computes (the call under the mouse) comes back in the same units.
        before = call[:call.index("add")]
        hover = server.request("textDocument/hover", {"textDocument": DOCUMENT, "position": {
            "line": 4, "character": units(before, chosen) + 1}})["result"]
        assert hover["range"] == span((4, units(before, chosen)), (4, units(before + "add(1, 2)", chosen)))
        assert server.shutdown_and_exit() == 0
    finally:
        server.close()


# -- CRLF and positions past a line's end --------------------------------------------------------

def test_crlf_document(tmp_path: Path) -> None:
    server, _ = fake_server(tmp_path)
    try:
        text = "def add(a, b):\r\n    return a + b\r\n\r\n\r\ndef is_even(number):\r\n    \r\ntotal = ad"
        open_document(server, URI, text)
        # A block suggestion in an empty body: its lines end as the document's do.
        block = inline(server, {"line": 5, "character": 4})["result"]["items"][0]["insertText"]
        assert "\n" in block and "\n" not in block.replace("\r\n", ""), repr(block)
        # A character past the end of a CRLF line means before its "\r".
        edit = completion(server, {"line": 6, "character": 99})["result"]["items"][0]["textEdit"]
        assert edit["range"] == span((6, len("total = ")), (6, len("total = ad")))
        item = inline(server, {"line": 6, "character": 99})["result"]["items"][0]
        assert item["range"] == span((6, 10), (6, 10))
        # An action's edit: CRLF only, inserted after the definition line.
        resolved = server.request("codeAction/resolve", docstring_action(server, 0))["result"]
        (text_edit,) = resolved["edit"]["documentChanges"][0]["edits"]
        assert text_edit["range"] == span((1, 0), (1, 0))
        assert "\n" not in text_edit["newText"].replace("\r\n", ""), repr(text_edit["newText"])
        assert server.shutdown_and_exit() == 0
    finally:
        server.close()


def test_replacements_keep_crlf_pairs_whole() -> None:
    text = "a\r\nb\r\nc"
    # minimal() trimmed the LF the model's text shares with the document: "b\r" -> "x" would leave a bare LF.
    assert with_document_line_endings(text, Replacement(3, 5, "x")).apply(text) == "a\r\nx\r\nc"
    inserted = with_document_line_endings(text, Replacement(3, 3, "one\ntwo\n"))
    assert inserted.apply(text) == "a\r\none\r\ntwo\r\nb\r\nc"
    assert with_document_line_endings("a\nb", Replacement(1, 1, "\nx")) == Replacement(1, 1, "\nx")


def test_positions_past_the_end(tmp_path: Path) -> None:
    server, _ = fake_server(tmp_path)
    try:
        open_document(server, URI, "x = 1\nvalue = ")
        for character in (9, 10**6, 2**31 - 1):
            item = inline(server, {"line": 1, "character": character})["result"]["items"][0]
            assert item["range"] == span((1, 8), (1, 8))
        # A line past the document: nothing to suggest, and no error.
        assert inline(server, {"line": 40, "character": 0})["result"] is None
        assert "result" in completion(server, {"line": 2**31 - 1, "character": 2**31 - 1})
        # Beyond LSP's uinteger: the params are invalid, and the answer says so.
        assert completion(server, {"line": 2**31, "character": 0})["error"]["code"] == -32602
        assert completion(server, {"line": -1, "character": 0})["error"]["code"] == -32602
        assert server.shutdown_and_exit() == 0
    finally:
        server.close()


# -- incremental sync ------------------------------------------------------------------------------

def test_incremental_changes_spanning_lines(tmp_path: Path) -> None:
    server, _ = fake_server(tmp_path)  # UTF-16
    try:
        open_document(server, URI, "def one():\n    return 1\n\n\ndef two():\n    return 2\n")
        # One change from inside line 0 to inside line 4, then one after an astral character
        # that the first change inserted (UTF-16: it counts two).
        first_line = "def gamma(s=\"🎉\""
        change(server, 2,
               {"range": span((0, 4), (4, 7)), "text": "gamma(s=\"🎉\"):\n    return 3\n\n\ndef delta"},
               {"range": span((0, units(first_line, "utf-16")), (0, units(first_line, "utf-16"))), "text": ", t=2"})
        titles = [a["title"] for a in code_actions(server, 0)] + [a["title"] for a in code_actions(server, 4)]
        assert any("`gamma`" in t for t in titles) and any("`delta`" in t for t in titles), titles
        hover = server.request("textDocument/hover", {"textDocument": DOCUMENT,
                                                      "position": {"line": 0, "character": 5}})["result"]
        assert "def gamma(s=\"🎉\", t=2):" in hover["contents"]["value"], hover
        assert hover["range"] == span((0, 0), (1, len("    return 3")))
        # Replacing the blank lines between the definitions with one line break moves delta up.
        change(server, 3, {"range": span((1, 12), (4, 0)), "text": "\n"})
        titles = [a["title"] for a in code_actions(server, 2)]
        assert any("`delta`" in t for t in titles), titles
        assert server.shutdown_and_exit() == 0
    finally:
        server.close()


# -- $/cancelRequest ---------------------------------------------------------------------------------

def test_cancel_request_for_every_request_kind(tmp_path: Path) -> None:
    # 40 ms per generated byte: every model request is still running when its cancel arrives.
    server, _ = fake_server(tmp_path, step_ms=40)
    try:
        open_document(server, URI, "def add(a, b):\n    return a + b\n\n\ndef is_even(number):\n    ")
        body = {"line": 5, "character": 4}
        action = docstring_action(server, 0)
        requests: list[tuple[str, dict[str, Any], bool]] = [
            # (method, params, whether it must end as cancelled: it waits for the model)
            ("textDocument/inlineCompletion", {"textDocument": DOCUMENT, "position": body,
                                               "context": {"triggerKind": 2}}, True),
            ("textDocument/completion", {"textDocument": DOCUMENT, "position": body}, True),
            ("codeAction/resolve", action, True),
            ("workspace/executeCommand", {"command": "codeassist.applyAction", "arguments": [action["data"]]}, True),
            ("textDocument/hover", {"textDocument": DOCUMENT, "position": {"line": 0, "character": 5}}, False),
            ("textDocument/codeAction", {"textDocument": DOCUMENT, "range": span((0, 0), (0, 0)),
                                         "context": {"diagnostics": []}}, False),
            ("workspace/executeCommand", {"command": "codeassist.status"}, False),
        ]
        for method, params, must_cancel in requests:
            msg_id = server.send_request(method, params)
            server.notify("$/cancelRequest", {"id": msg_id})
            response = server.wait_for(msg_id)
            # Every request is answered: with its result, or with RequestCancelled.
            assert "result" in response or response["error"]["code"] == REQUEST_CANCELLED, (method, response)
            if must_cancel:
                assert response.get("error", {}).get("code") == REQUEST_CANCELLED, (method, response)
        # A cancel for an id that was never sent, or already answered, is harmless.
        server.notify("$/cancelRequest", {"id": 987654})
        server.notify("$/cancelRequest", {"id": "never-sent"})
        # The model thread is free again: the next request gets its suggestion.
        assert inline(server, body)["result"]["items"], "no suggestion after the cancels"
        assert server.shutdown_and_exit() == 0
    finally:
        server.close()


# -- lifecycle ---------------------------------------------------------------------------------------

def test_shutdown_then_exit_ends_with_code_0_and_refuses_requests_between(tmp_path: Path) -> None:
    server, _ = fake_server(tmp_path)
    try:
        assert server.request("shutdown")["result"] is None
        # "If a server receives requests after a shutdown request those requests should error with InvalidRequest."
        assert server.request("workspace/executeCommand", {"command": "codeassist.status"})["error"]["code"] == -32600
        server.notify("exit")
        assert server.wait_exit() == 0
    finally:
        server.close()


@pytest.mark.model
def test_shutdown_right_after_typing_frees_the_models_cleanly(tmp_path: Path) -> None:
    # A prewarm timer (0.3 s after an edit) or the rest of a suggestion still generating at shutdown
    # once reached the freed model: the process died of SIGSEGV or SIGABRT instead of exiting 0.
    from tests.hardening.stress import start_real_server

    server = start_real_server(tmp_path)
    try:
        open_document(server, URI, "import os\n\n\ndef add(a, b):\n    return ")
        end = {"line": 4, "character": 11}
        for _ in range(2):
            assert "result" in inline(server, end)
        assert server.shutdown_and_exit() == 0
    finally:
        server.close()


def test_exit_without_shutdown_ends_with_code_1(tmp_path: Path) -> None:
    server, _ = fake_server(tmp_path)
    try:
        server.notify("exit")
        assert server.wait_exit() == 1
    finally:
        server.close()


def test_requests_before_initialize_are_refused(tmp_path: Path) -> None:
    server = RawServer(tmp_path / "server.log")
    try:
        # "...the server should respond with an error with code -32002" (and drop notifications).
        open_document(server, URI, "x = 1\n")
        response = server.request("textDocument/completion", {"textDocument": DOCUMENT,
                                                              "position": {"line": 0, "character": 0}})
        assert response["error"]["code"] == -32002, response
        server.initialize({"engine": "fake"})
        assert completion(server, {"line": 0, "character": 0})["result"] == {"isIncomplete": True, "items": []}
        assert server.shutdown_and_exit() == 0
    finally:
        server.close()


# -- versioned edits -----------------------------------------------------------------------------------

def test_code_action_edits_carry_the_version_they_were_computed_on(tmp_path: Path) -> None:
    server, _ = fake_server(tmp_path, step_ms=20)
    try:
        open_document(server, URI, "x = 1\n", version=1)
        change(server, 2, {"text": "def add(a, b):\n    return a + b\n"})
        change(server, 7, {"range": span((0, 0), (0, 0)), "text": "import math\n\n\n"})  # versions may skip
        resolved = server.request("codeAction/resolve", docstring_action(server, 3))["result"]
        (document_edit,) = resolved["edit"]["documentChanges"]
        assert document_edit["textDocument"] == {"uri": URI, "version": 7}
        assert document_edit["edits"][0]["range"] == span((4, 0), (4, 0))
        # An edit while the model works: the stale edit is refused with ContentModified, never sent.
        msg_id = server.send_request("codeAction/resolve", docstring_action(server, 3))
        time.sleep(0.1)
        change(server, 8, {"range": span((0, 0), (0, 0)), "text": "# edited\n"})
        response = server.wait_for(msg_id)
        assert response.get("error", {}).get("code") == CONTENT_MODIFIED, response
        assert server.shutdown_and_exit() == 0
    finally:
        server.close()


@pytest.mark.model
def test_code_model_edit_in_a_crlf_document_is_versioned_and_crlf(tmp_path: Path) -> None:
    # The real code model writes the docstring: its own line breaks must arrive as the document's.
    server = RawServer(tmp_path / "server.log", extra_args=())
    try:
        server.initialize({"actions": {"bestOfN": 1, "maxTokens": 48}, "security": {"diagnostics": False}},
                          {"textDocument": RESOLVE_CAPABILITIES})
        open_document(server, URI, "def area(width, height):\r\n    return width * height\r\n", version=3)
        deadline = time.monotonic() + 60
        while True:
            report = server.request("workspace/executeCommand", {"command": "codeassist.status"})["result"]
            if report["qualityModel"]["state"] != "loading" or time.monotonic() > deadline:
                break
            time.sleep(0.2)
        assert report["qualityModel"]["state"] == "ready", report["qualityModel"]
        resolved = server.request("codeAction/resolve", docstring_action(server, 0), timeout=90)["result"]
        (document_edit,) = resolved["edit"]["documentChanges"]
        assert document_edit["textDocument"]["version"] == 3
        (text_edit,) = document_edit["edits"]
        assert "\n" not in text_edit["newText"].replace("\r\n", ""), repr(text_edit["newText"])
        assert text_edit["range"]["start"]["line"] == 1
        assert server.shutdown_and_exit() == 0
    finally:
        server.close()


