"""Security findings of a document as LSP diagnostics (source "codeassist"); pure, no server state."""

from __future__ import annotations

from lsprotocol import types

from codeassist_lsp.verify import Finding

_SEVERITY = {
    "high": types.DiagnosticSeverity.Error,
    "medium": types.DiagnosticSeverity.Warning,
    "low": types.DiagnosticSeverity.Information,
}


def _position(text: str, index: int) -> types.Position:
    """LSP position (UTF-16 code units, the protocol's default) of a str index."""
    index = max(0, min(index, len(text)))
    line = text.count("\n", 0, index)
    line_start = text.rfind("\n", 0, index) + 1
    character = len(text[line_start:index].encode("utf-16-le")) // 2
    return types.Position(line=line, character=character)


def findings_to_diagnostics(text: str, findings: list[Finding] | tuple[Finding, ...]) -> list[types.Diagnostic]:
    """One diagnostic per finding, ranged on the matched code, with its rule id and CWE."""
    diagnostics = []
    for finding in findings:
        message = finding.message + (f" ({finding.cwe})" if finding.cwe else "")
        diagnostics.append(types.Diagnostic(
            range=types.Range(start=_position(text, finding.start), end=_position(text, max(finding.end, finding.start))),
            message=message,
            severity=_SEVERITY.get(finding.severity, types.DiagnosticSeverity.Warning),
            code=finding.rule_id,
            source="codeassist",
            data={"tool": finding.tool, "category": finding.category},
        ))
    return diagnostics
