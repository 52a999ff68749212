"""verify_suggestion: syntax check, then SAST of what the suggestion introduces, then the policy."""

from __future__ import annotations

import logging
import time
from collections import Counter

from codeassist_lsp.context.languages import Language, language_for
from codeassist_lsp.errors import report_unavailable
from codeassist_lsp.verify import stats as _stats
from codeassist_lsp.verify.bandit_scan import BanditUnavailable, scan_python_lines
from codeassist_lsp.verify.model import Finding, SecurityPolicy, Verdict
from codeassist_lsp.verify.rulepack import SEMGREP_LANGUAGE, scan_regex
from codeassist_lsp.verify.semgrep_core import SemgrepUnavailable, run_semgrep_core
from codeassist_lsp.verify.syntax import check_syntax

log = logging.getLogger(__name__)

# Lines of context either side of the suggestion given to the regex pass: rules such as
# "[HttpPost] without [ValidateAntiForgeryToken]" look at the neighbouring lines.
CONTEXT_LINES = 4


def _line_bounds(text: str, lo: int, hi: int) -> tuple[int, int]:
    """Start of the line holding lo and end of the line holding hi (exclusive of its newline)."""
    start = text.rfind("\n", 0, lo) + 1
    end = text.find("\n", hi)
    return start, len(text) if end < 0 else end


def _context_window(text: str, lo: int, hi: int, lines: int) -> tuple[int, int]:
    start, end = _line_bounds(text, lo, hi)
    for _ in range(lines):
        if start > 0:
            start = text.rfind("\n", 0, start - 1) + 1
        if end < len(text):
            nxt = text.find("\n", end + 1)
            end = len(text) if nxt < 0 else nxt
    return start, end


def _is_comment_line(text: str, offset: int, language: Language) -> bool:
    start = text.rfind("\n", 0, offset) + 1
    head = text[start:offset + 1].lstrip()
    markers = tuple(m for m in (language.line_comment, "/*", "*") if m)
    if language.line_comment is None and language.block_comment is None:
        return False
    return head.startswith(markers) and not head.startswith("*/")


def _regex_findings(language: Language, text: str, lo: int, hi: int) -> list[Finding]:
    """Pack regex rules on the lines of [lo, hi), with some context lines for look-arounds."""
    line_lo, line_hi = _line_bounds(text, lo, hi)
    win_lo, win_hi = _context_window(text, lo, hi, CONTEXT_LINES)
    window = text[win_lo:win_hi]
    found = []
    for finding in scan_regex(language.name, window, line_lo - win_lo, line_hi - win_lo + 1):
        start = finding.start + win_lo
        if _is_comment_line(text, start, language):
            continue  # a rule name in a comment is not code
        found.append(Finding(finding.rule_id, finding.message, finding.severity, finding.tool, start,
                             finding.end + win_lo, text.count("\n", 0, start), finding.cwe, finding.category))
    return found


def _introduced(after: list[Finding], before: list[Finding]) -> list[Finding]:
    """Findings of after beyond those of before, counted per rule (the suggestion's own)."""
    budget = Counter(finding.rule_id for finding in before)
    out = []
    for finding in after:
        if budget[finding.rule_id] > 0:
            budget[finding.rule_id] -= 1
        else:
            out.append(finding)
    return out


def _dedupe(findings: list[Finding]) -> list[Finding]:
    """One finding per (line, CWE): bandit and the pack often agree on Python."""
    seen: set[tuple[int, str]] = set()
    out = []
    for finding in sorted(findings, key=lambda f: (f.tool != "bandit", f.start)):
        key = (finding.line, finding.cwe or finding.rule_id)
        if key in seen:
            continue
        seen.add(key)
        out.append(finding)
    return sorted(out, key=lambda f: f.start)


def security_findings(
    language: Language, before: str, after: str, offset: int, inserted: int, mode: str, policy: SecurityPolicy
) -> tuple[list[Finding], list[str], list[str]]:
    """Findings the insertion of `inserted` chars at offset introduces, the checks run and those that failed."""
    checks: list[str] = []
    failed: list[str] = []
    lo, hi = offset, offset + inserted
    found: list[Finding] = []
    if SEMGREP_LANGUAGE.get(language.name):
        found += _introduced(_regex_findings(language, after, lo, hi), _regex_findings(language, before, offset, offset))
        checks.append("rules")
    if language.name == "python":
        try:
            first = after.count("\n", 0, _line_bounds(after, lo, hi)[0])
            last = after.count("\n", 0, hi)
            after_hits, complete = scan_python_lines(after, first, last)
            b_first = before.count("\n", 0, offset)
            before_hits, _ = scan_python_lines(before, b_first, b_first)
            found += _introduced(after_hits, before_hits)
            checks.append("bandit" if complete else "bandit-partial")
        except Exception as error:  # missing, or a plugin crash on odd code: never fails the request
            report_unavailable(_bandit_problem(error))
            failed.append("bandit")
    if mode == "full" and policy.use_semgrep and SEMGREP_LANGUAGE.get(language.name):
        try:
            after_hits = [f for f in run_semgrep_core(after, language.name) if f.end > lo and f.start < max(hi, lo + 1)]
            if after_hits:
                # Only pay for the second run when the suggestion's region has findings at all.
                line_lo, line_hi = _line_bounds(before, offset, offset)
                before_hits = [f for f in run_semgrep_core(before, language.name) if f.end >= line_lo and f.start <= line_hi]
                found += _introduced(after_hits, before_hits)
            checks.append("semgrep")
        except SemgrepUnavailable as error:
            report_unavailable(error)
            failed.append("semgrep")
    return _dedupe(found), checks, failed


def verify_suggestion(
    document_text: str,
    offset: int,
    suggestion: str,
    *,
    language: Language | None,
    mode: str = "inline",
    policy: SecurityPolicy = SecurityPolicy(),
) -> Verdict:
    """Check a suggestion inserted at offset: cut it to what parses, then withhold or flag what SAST finds."""
    began = time.perf_counter()
    if isinstance(language, str):  # tolerate a languageId from callers that did not resolve it
        language = language_for(language)
    checks: list[str] = []
    not_checked: list[str] = []
    reasons: list[str] = []
    syntax = check_syntax(language, document_text, offset, suggestion)
    if syntax.status == "unchecked":
        not_checked.append("syntax")
        reasons.append(syntax.reason)
    else:
        checks.append("syntax")
        if syntax.reason:
            reasons.append(syntax.reason)
    text = syntax.text
    status = {"dropped": "dropped", "cut": "cut"}.get(syntax.status, "ok")
    findings: list[Finding] = []
    if text and policy.enabled:
        if language is None:
            not_checked.append("security")
            reasons.append("security not checked: unknown language")
        else:
            after = document_text[:offset] + text + document_text[offset:]
            findings, ran, failed = security_findings(language, document_text, after, offset, len(text), mode, policy)
            checks += ran
            if failed:
                not_checked += failed
                reasons.append("security not checked: " + ", ".join(failed) + " failed")
            if not ran:
                not_checked.append("security")
                reasons.append(f"security not checked: no rules for {language.name}")
    high = [f for f in findings if f.severity == "high"]
    if high and policy.on_high == "withhold":
        status = "withheld"
        reasons.append("withheld: " + "; ".join(sorted({f.rule_id for f in high})))
        text = ""
    elif findings:
        status = "flagged"
        reasons.append("flagged: " + "; ".join(sorted({f.rule_id for f in findings})))
    elapsed = (time.perf_counter() - began) * 1000
    verdict = Verdict(
        text=text, status=status, findings=tuple(findings), checks=tuple(checks), elapsed_ms=elapsed,
        reason="; ".join(reasons), cut=syntax.status == "cut", not_checked=tuple(not_checked),
    )
    _stats.record(status, verdict.checks, verdict.not_checked, [f.severity for f in findings], elapsed)
    if status != "ok":
        log.info("suggestion %s (%s) in %.1f ms: %s", status, ",".join(checks), elapsed, verdict.reason)
    return verdict


def scan_document(text: str, language: Language | str | None) -> list[Finding]:
    """All findings of a whole document (for diagnostics): semgrep-core's full pack, plus bandit for Python."""
    if isinstance(language, str):
        language = language_for(language)
    if language is None or not text.strip():
        return []
    findings: list[Finding] = []
    if SEMGREP_LANGUAGE.get(language.name):
        try:
            findings += run_semgrep_core(text, language.name)
        except SemgrepUnavailable as error:  # the in-process pass of the pack's regex rules instead
            report_unavailable(error)
            findings += [f for f in scan_regex(language.name, text) if not _is_comment_line(text, f.start, language)]
    if language.name == "python":
        try:
            last = text.count("\n")
            hits, _ = scan_python_lines(text, 0, last)
            findings += hits
        except Exception as error:  # see security_findings
            report_unavailable(_bandit_problem(error))
    return _dedupe(findings)


def _bandit_problem(error: Exception) -> BanditUnavailable:
    """A bandit failure as the error the user is told about."""
    if isinstance(error, BanditUnavailable):
        return error
    return BanditUnavailable(f"bandit crashed ({type(error).__name__}: {error}).")
