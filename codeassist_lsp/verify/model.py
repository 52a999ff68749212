"""Value types of verification: findings, verdicts and the security policy."""

from __future__ import annotations

from dataclasses import dataclass, field

SEVERITIES = ("low", "medium", "high")


@dataclass(frozen=True)
class Finding:
    """One security finding; offsets are str indices into the text that was scanned."""

    rule_id: str
    message: str
    severity: str  # "high" | "medium" | "low"
    tool: str  # "bandit" | "rules" (in-process pack) | "semgrep" (semgrep-core, full pack)
    start: int
    end: int
    line: int  # 0-based line of start
    cwe: str = ""
    category: str = ""


@dataclass(frozen=True)
class SecurityPolicy:
    """What to do with findings a suggestion introduces."""

    # "withhold": drop a suggestion with a high-severity finding; "warn": show it with the finding.
    on_high: str = "withhold"
    enabled: bool = True
    # Full mode (generations, code actions) adds semgrep-core's run of the whole pack.
    use_semgrep: bool = True


@dataclass(frozen=True)
class Verdict:
    """What verification decided about one suggestion, and what it checked."""

    text: str
    status: str  # "ok" | "cut" | "dropped" | "withheld" | "flagged"
    findings: tuple[Finding, ...] = ()
    checks: tuple[str, ...] = ()
    elapsed_ms: float = 0.0
    reason: str = ""
    cut: bool = False
    not_checked: tuple[str, ...] = field(default=())  # e.g. ("syntax",) for an unknown language

    @property
    def shown(self) -> bool:
        """Whether the suggestion may be shown to the user."""
        return self.status in ("ok", "cut", "flagged") and bool(self.text)
