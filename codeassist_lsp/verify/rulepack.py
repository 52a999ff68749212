"""The project's own rule pack (rules/*.yaml): loading, and the in-process regex pass of the fast path."""

from __future__ import annotations

import functools
import logging
import re
import tempfile
from dataclasses import dataclass
from pathlib import Path

import yaml

from codeassist_lsp.verify.model import Finding

log = logging.getLogger(__name__)

RULES_DIR = Path(__file__).resolve().parent / "rules"
SEVERITY_OF = {"ERROR": "high", "WARNING": "medium", "INFO": "low"}
# Our language names (grammars/languages.toml) to semgrep's.
SEMGREP_LANGUAGE = {
    "c": "c", "cpp": "cpp", "c_sharp": "csharp", "java": "java", "kotlin": "kotlin",
    "javascript": "javascript", "typescript": "typescript", "tsx": "typescript", "go": "go",
    "rust": "rust", "ruby": "ruby", "php": "php", "python": "python", "scala": "scala",
    "lua": "lua", "bash": "bash",
}


@dataclass(frozen=True)
class RegexRule:
    """A pack rule made only of regexes, so it can run in-process as well as in semgrep-core."""

    rule_id: str
    message: str
    severity: str
    cwe: str
    category: str
    include: tuple[re.Pattern[str], ...]
    exclude: tuple[re.Pattern[str], ...]

    def scan(self, text: str, lo: int, hi: int) -> list[Finding]:
        """Matches that start inside [lo, hi) of text; text may carry context around the span."""
        found = []
        excluded: list[tuple[int, int]] | None = None
        for pattern in self.include:
            for match in pattern.finditer(text):
                if not lo <= match.start() < hi:
                    continue
                if excluded is None:
                    excluded = [m.span() for p in self.exclude for m in p.finditer(text)]
                if any(s <= match.start() and match.end() <= e for s, e in excluded):
                    continue
                found.append(
                    Finding(self.rule_id, self.message, self.severity, "rules", match.start(),
                            match.end(), text.count("\n", 0, match.start()), self.cwe, self.category)
                )
        return found


def _rule_files() -> list[Path]:
    return sorted(RULES_DIR.glob("*.yaml"))


@functools.cache
def raw_rules() -> tuple[dict, ...]:  # type: ignore[type-arg]
    """Every rule of the pack as its YAML dict."""
    rules: list[dict] = []  # type: ignore[type-arg]
    for path in _rule_files():
        with open(path, encoding="utf-8") as handle:
            rules.extend(yaml.safe_load(handle)["rules"])
    return tuple(rules)


def _to_regex_rule(rule: dict) -> RegexRule | None:  # type: ignore[type-arg]
    include: list[str] = []
    exclude: list[str] = []
    if "pattern-regex" in rule:
        include.append(rule["pattern-regex"])
    for clause in rule.get("patterns", []):
        if "pattern-regex" in clause:
            include.append(clause["pattern-regex"])
        elif "pattern-not-regex" in clause:
            exclude.append(clause["pattern-not-regex"])
        else:
            return None  # structural: semgrep-core only
    for clause in rule.get("pattern-either", []):
        if "pattern-regex" not in clause:
            return None
        include.append(clause["pattern-regex"])
    if not include or len(include) > 1 and "patterns" in rule:
        # "patterns" means AND; the fast pass supports one positive regex there.
        if len(include) != 1:
            return None
    metadata = rule.get("metadata", {})
    return RegexRule(
        rule_id=rule["id"],
        message=rule["message"].strip(),
        severity=SEVERITY_OF.get(rule["severity"], "medium"),
        cwe=str(metadata.get("cwe", "")),
        category=str(metadata.get("category", "")),
        include=tuple(re.compile(p, re.MULTILINE) for p in include),
        exclude=tuple(re.compile(p, re.MULTILINE) for p in exclude),
    )


@functools.cache
def regex_rules(language: str) -> tuple[RegexRule, ...]:
    """The pack's regex rules for one of our language names (compiled once)."""
    target = SEMGREP_LANGUAGE.get(language)
    if target is None:
        return ()
    compiled = []
    for rule in raw_rules():
        if target in rule.get("languages", ()):
            regex_rule = _to_regex_rule(rule)
            if regex_rule is not None:
                compiled.append(regex_rule)
    return tuple(compiled)


def rule_info(rule_id: str) -> dict:  # type: ignore[type-arg]
    """The YAML dict of one rule (for semgrep-core results, which carry only the id)."""
    for rule in raw_rules():
        if rule["id"] == rule_id:
            return rule
    return {}


@functools.cache
def pack_file(language: str) -> Path | None:
    """One YAML file with the pack's rules for a language, written once per process for semgrep-core."""
    target = SEMGREP_LANGUAGE.get(language)
    if target is None:
        return None
    rules = [rule for rule in raw_rules() if target in rule.get("languages", ())]
    if not rules:
        return None
    folder = Path(tempfile.mkdtemp(prefix="codeassist-rules-"))
    path = folder / f"{target}.yaml"
    path.write_text(yaml.safe_dump({"rules": rules}, sort_keys=False), encoding="utf-8")
    return path


def scan_regex(language: str, text: str, lo: int = 0, hi: int | None = None) -> list[Finding]:
    """Run the pack's regex rules for language on text, keeping matches that start in [lo, hi)."""
    hi = len(text) if hi is None else hi
    found: list[Finding] = []
    for rule in regex_rules(language):
        found.extend(rule.scan(text, lo, hi))
    return found
