"""Security findings of a document as LSP diagnostics (source "codeassist"); pure, no server state."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

from lsprotocol import types

from codeassist_lsp.features import open_document
from codeassist_lsp.verify import Finding, scan_document

if TYPE_CHECKING:
    from codeassist_lsp.server import CodeassistServer

log = logging.getLogger(__name__)

# At most one scan per document in this many seconds; scans run off the request path.
SCAN_INTERVAL_SECONDS = 2.0
# Whole-document scans of larger files take seconds of CPU: they are skipped (and logged).
MAX_SCAN_CHARS = 200_000
# Scans of documents opened while the model loads wait for it, and this long after it.
MODEL_LOAD_WAIT_SECONDS = 30.0
AFTER_LOAD_DELAY_SECONDS = 1.0
UnitCounter = Callable[[str], int]


def _utf16_units(text: str) -> int:
    return len(text.encode("utf-16-le")) // 2

_SEVERITY = {
    "high": types.DiagnosticSeverity.Error,
    "medium": types.DiagnosticSeverity.Warning,
    "low": types.DiagnosticSeverity.Information,
}


def _position(text: str, index: int, units: UnitCounter = _utf16_units) -> types.Position:
    """LSP position of a str index, in the negotiated units (UTF-16 by default)."""
    index = max(0, min(index, len(text)))
    line = text.count("\n", 0, index)
    line_start = text.rfind("\n", 0, index) + 1
    return types.Position(line=line, character=units(text[line_start:index]))


def findings_to_diagnostics(text: str, findings: list[Finding] | tuple[Finding, ...],
                            units: UnitCounter = _utf16_units) -> list[types.Diagnostic]:
    """One diagnostic per finding, ranged on the matched code, with its rule id and CWE."""
    diagnostics = []
    for finding in findings:
        message = finding.message + (f" ({finding.cwe})" if finding.cwe else "")
        diagnostics.append(types.Diagnostic(
            range=types.Range(start=_position(text, finding.start, units),
                              end=_position(text, max(finding.end, finding.start), units)),
            message=message,
            severity=_SEVERITY.get(finding.severity, types.DiagnosticSeverity.Warning),
            code=finding.rule_id,
            source="codeassist",
            data={"tool": finding.tool, "category": finding.category},
        ))
    return diagnostics


class DiagnosticsPublisher:
    """Scans documents on open/save in a worker thread, throttled per document, and publishes."""

    def __init__(self, server: CodeassistServer) -> None:
        self.server = server
        self._last_scan: dict[str, float] = {}
        self._scheduled: dict[str, asyncio.TimerHandle] = {}

    def schedule(self, uri: str) -> None:
        """Scan `uri` soon; repeated requests within the interval collapse into one scan."""
        if uri in self._scheduled:
            return
        wait = max(0.0, self._last_scan.get(uri, 0.0) + SCAN_INTERVAL_SECONDS - time.monotonic())
        loop = asyncio.get_running_loop()
        self._scheduled[uri] = loop.call_later(wait, lambda: asyncio.ensure_future(self._scan(uri)))

    def forget(self, uri: str) -> None:
        """Stop scanning a closed document and clear its diagnostics."""
        handle = self._scheduled.pop(uri, None)
        if handle is not None:
            handle.cancel()
        self._last_scan.pop(uri, None)
        self.server.text_document_publish_diagnostics(types.PublishDiagnosticsParams(uri=uri, diagnostics=[]))

    async def _after_model_load(self) -> None:
        # On a 2-core machine a scan at start-up (semgrep-core's process, bandit's first import)
        # takes a core from the model load and from the first completion, which the user waits for.
        service = self.server.service
        if service is None or service.worker.loaded.is_set():
            return
        await service.until_loaded(MODEL_LOAD_WAIT_SECONDS)
        await asyncio.sleep(AFTER_LOAD_DELAY_SECONDS)

    async def _scan(self, uri: str) -> None:
        await self._after_model_load()
        self._scheduled.pop(uri, None)
        self._last_scan[uri] = time.monotonic()
        document = open_document(self.server, uri)
        if document is None:  # closed meanwhile
            return
        text, version, language_id = document.source, document.version, document.language_id
        if len(text) > MAX_SCAN_CHARS:
            log.info("security scan skipped for %s: %d characters is over %d", uri, len(text), MAX_SCAN_CHARS)
            return
        findings = await asyncio.get_running_loop().run_in_executor(None, scan_document, text, language_id)
        current = open_document(self.server, uri)
        if current is None:  # closed while we scanned
            return
        if current.version != version:
            self.schedule(uri)  # it changed while we scanned: the positions are stale
            return
        units = current.position_codec.client_num_units
        self.server.text_document_publish_diagnostics(types.PublishDiagnosticsParams(
            uri=uri, version=version, diagnostics=findings_to_diagnostics(text, findings, units)))
