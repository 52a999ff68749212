"""Verification of every suggestion before the user sees it: tree-sitter syntax check and SAST."""

from codeassist_lsp.verify.core import scan_document, security_findings, verify_suggestion
from codeassist_lsp.verify.model import Finding, SecurityPolicy, Verdict
from codeassist_lsp.verify.stats import reset as reset_stats
from codeassist_lsp.verify.stats import stats

__all__ = [
    "Finding", "SecurityPolicy", "Verdict", "reset_stats", "scan_document", "security_findings", "stats",
    "verify_suggestion",
]
