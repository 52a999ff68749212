"""Secret redaction: mask credentials in text before it leaves the machine (remote engine, team cache)."""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Iterator
from functools import lru_cache

import attrs
from detect_secrets.filters.heuristic import (
    is_indirect_reference,
    is_likely_id_string,
    is_not_alphanumeric_string,
    is_potential_uuid,
    is_sequential_string,
    is_templated_secret,
)
from detect_secrets.plugins.artifactory import ArtifactoryDetector
from detect_secrets.plugins.aws import AWSKeyDetector
from detect_secrets.plugins.azure_storage_key import AzureStorageKeyDetector
from detect_secrets.plugins.base import RegexBasedDetector
from detect_secrets.plugins.basic_auth import BasicAuthDetector
from detect_secrets.plugins.cloudant import CloudantDetector
from detect_secrets.plugins.discord import DiscordBotTokenDetector
from detect_secrets.plugins.github_token import GitHubTokenDetector
from detect_secrets.plugins.gitlab_token import GitLabTokenDetector
from detect_secrets.plugins.high_entropy_strings import (
    Base64HighEntropyString,
    HexHighEntropyString,
    HighEntropyStringsPlugin,
)
from detect_secrets.plugins.ibm_cloud_iam import IbmCloudIamDetector
from detect_secrets.plugins.ibm_cos_hmac import IbmCosHmacDetector
from detect_secrets.plugins.jwt import JwtTokenDetector
from detect_secrets.plugins.keyword import (
    FOLLOWED_BY_COLON_EQUAL_SIGNS_REGEX,
    QUOTES_REQUIRED_DENYLIST_REGEX_TO_GROUP,
)
from detect_secrets.plugins.mailchimp import MailchimpDetector
from detect_secrets.plugins.npm import NpmDetector
from detect_secrets.plugins.openai import OpenAIDetector
from detect_secrets.plugins.private_key import PrivateKeyDetector
from detect_secrets.plugins.pypi_token import PypiTokenDetector
from detect_secrets.plugins.sendgrid import SendGridDetector
from detect_secrets.plugins.slack import SlackDetector
from detect_secrets.plugins.softlayer import SoftlayerDetector
from detect_secrets.plugins.square_oauth import SquareOAuthDetector
from detect_secrets.plugins.stripe import StripeDetector
from detect_secrets.plugins.telegram_token import TelegramBotTokenDetector
from detect_secrets.plugins.twilio import TwilioKeyDetector

PLACEHOLDER = "<redacted:secret>"
"""What every secret value becomes; the quotes and the name around it stay."""


@attrs.frozen
class Redaction:
    """Text with its secrets masked, and what was masked (never the values)."""

    text: str
    """The text with every secret replaced by PLACEHOLDER."""
    count: int
    """Secrets masked (each masked occurrence counts once)."""
    kinds: tuple[str, ...]
    """What was found, in order of first appearance, e.g. ("AWS Access Key", "Private Key")."""


# (start, end, kind) of one secret value within a line.
_Finding = tuple[int, int, str]

# detect-secrets' regex detectors, most specific first: on overlapping finds the first one names the kind.
# Left out: IPPublicDetector (an address is not a credential) and PrivateKeyDetector (a whole-text pass below).
_TOKEN_DETECTORS: tuple[RegexBasedDetector, ...] = (
    AWSKeyDetector(), GitHubTokenDetector(), GitLabTokenDetector(), SlackDetector(), StripeDetector(),
    TwilioKeyDetector(), JwtTokenDetector(), OpenAIDetector(), SendGridDetector(), PypiTokenDetector(),
    NpmDetector(), AzureStorageKeyDetector(), DiscordBotTokenDetector(), TelegramBotTokenDetector(),
    MailchimpDetector(), SquareOAuthDetector(), ArtifactoryDetector(), CloudantDetector(),
    IbmCloudIamDetector(), IbmCosHmacDetector(), SoftlayerDetector(),
)
_PRIVATE_KEY = PrivateKeyDetector()
_BASIC_AUTH = BasicAuthDetector()
_HIGH_ENTROPY: tuple[HighEntropyStringsPlugin, ...] = (Base64HighEntropyString(), HexHighEntropyString())
# The keyword detector's quoted-value patterns (`password = "..."`, `api_key: '...'`, `:pwd => "..."`),
# plus Go's `password := "..."`; unquoted values are left to the stricter env/YAML patterns below.
_KEYWORD_PATTERNS: tuple[tuple[re.Pattern[str], int], ...] = (
    *QUOTES_REQUIRED_DENYLIST_REGEX_TO_GROUP.items(), (FOLLOWED_BY_COLON_EQUAL_SIGNS_REGEX, 4))

# Our own patterns, for what detect-secrets 1.5 does not cover.
_OWN_TOKENS: tuple[tuple[re.Pattern[str], str], ...] = (
    (re.compile(r"github_pat_[A-Za-z0-9_]{60,}"), "GitHub Token"),
    (re.compile(r"\b[sr]k_(?:test|live)_[0-9a-zA-Z]{20,}"), "Stripe Access Key"),
    (re.compile(r"\bAIza[0-9A-Za-z_\-]{35}"), "Google API Key"),
    (re.compile(r"\bsk-(?:proj|ant-api\d\d|svcacct|admin)-[A-Za-z0-9_\-]{20,}"), "AI API Key"),
    (re.compile(r"\bxapp-\d-[A-Z0-9]+-\d+-[a-z0-9]+"), "Slack Token"),
    (re.compile(r"\bnpm_[A-Za-z0-9]{36}\b"), "NPM tokens"),
)
# A password in a URL's user info that may hold sub-delimiters (`p@ss` is not, `pa$$!` is):
# detect-secrets' basic-auth pattern stops at them.
_URL_PASSWORD = re.compile(r"\b[a-zA-Z][a-zA-Z0-9+.\-]*://[^\s:/@'\"`<>]*:([^\s/@'\"`<>]+)@")
# Go's MySQL DSN, which has no scheme: `user:password@tcp(host:3306)/db`.
_DSN_PASSWORD = re.compile(r"\b[\w.\-]+:([^\s:/@'\"`<>]+)@(?:tcp|udp|unix)\(")
# `...;Password=...;` (ADO.NET, ODBC) and `?user=x&password=...` (JDBC, DSN query strings).
_PARAM_PASSWORD = re.compile(r"(?i)[;?&](?:password|passwd|pwd|pass|secret|token|access_?token)=([^;&\s'\"`]+)")
_SECRET_NAME = (r"(?:secret|token|passw(?:or)?d|pwd|api[_\-.]?key|access[_\-.]?key|auth[_\-.]?key|"
                r"private[_\-.]?key|signing[_\-.]?key|encryption[_\-.]?key|session[_\-.]?key|master[_\-.]?key|"
                r"hmac|credential|bearer|salt|webhook[_\-.]?url|dsn|connection[_\-.]?string)")
_SECRET_NAME_RE = re.compile(_SECRET_NAME, re.IGNORECASE)
# Substrings that every match of the keyword patterns (detect-secrets' DENYLIST) and of _SECRET_NAME holds.
_KEYWORD_HINTS = ("key", "pass", "pwd", "secret", "contrase")
_SECRET_NAME_HINTS = ("secret", "token", "pass", "pwd", "key", "hmac", "credential", "bearer", "salt",
                      "webhook", "dsn", "connection")
# `.env`, shell and `.properties`: `[export ]NAME=value` filling the whole line, no spaces around `=`;
# NAME upper case or dotted, so a keyword argument on its own line (`password=password`) is not one.
_ENV_ASSIGNMENT = re.compile(
    r"^\s*(?:export\s+)?(?P<name>[A-Z][A-Z0-9_]*|[A-Za-z][\w\-]*(?:\.[\w\-]+)+)="
    r"(?P<quote>[\"']?)(?P<value>[^\s\"'`]+)(?P=quote)(?:\s+#.*)?\s*$")
# YAML and friends: `name: value` filling the whole line, the value unquoted.
_YAML_ASSIGNMENT = re.compile(
    r"^\s*(?:-\s+)?[\"']?(?P<name>[\w\-.]+)[\"']?:\s+(?P<value>[^\s\"'#`][^\s\"'`]*)(?:\s+#.*)?\s*$")
# Unquoted values that are code or types rather than credentials (`password: str`, `token: Token`).
_NOT_A_VALUE = re.compile(
    r"^(?:[A-Za-z_$][\w$]*(?:\.[A-Za-z_$][\w$]*)+|[A-Za-z_]+|~|.*[(){}\[\],;<>].*|[$%].*|\*+)$")
_IDENTIFIER_CHARS = re.compile(r"[A-Za-z0-9_\-]*")
_PEM_BLOCK = re.compile(
    r"-----BEGIN (?P<label>[A-Z0-9 ]*PRIVATE KEY(?: BLOCK)?)-----.*?-----END (?P=label)-----", re.DOTALL)
_PEM_HEADER = re.compile(r"-----BEGIN [A-Z0-9 ]*PRIVATE KEY(?: BLOCK)?-----[^\n]*")
# After a header whose END line is cut off: base64 lines, and the headers of an encrypted key.
_PEM_BODY_LINE = re.compile(r"[ \t]*(?:[\"']?[A-Za-z0-9+/=]{16,}[\"']?|(?:Proc-Type|DEK-Info|Comment):[^\n]*"
                            r"|(?=\n[ \t]*[A-Za-z0-9+/=]{16,}))[ \t]*\n?")
_PUTTY = re.compile(r"PuTTY-User-Key-File-\d:.*?Private-MAC: *[0-9a-f]+", re.DOTALL)
_LINE_CACHE_SIZE = 8192


def redact(text: str) -> Redaction:
    """Mask every secret value in text with PLACEHOLDER, keeping the code around it."""
    counts: list[str] = []
    if "-----BEGIN" in text or "PuTTY-User-Key-File" in text:
        text = _mask_private_keys(text, counts)
    pieces: list[str] = []
    values: set[str] = set()
    changed = False
    for line in text.splitlines(keepends=True):
        findings = _scan_line(line)
        if not findings:
            pieces.append(line)
            continue
        changed = True
        pieces.append(_mask(line, findings, counts, values))
    if changed:
        text = "".join(pieces)
        # The same value elsewhere (a comment, a second use without a telling name) gets the same mask.
        for value in sorted(values, key=len, reverse=True):
            if _distinctive(value) and value in text:
                text, extra = re.subn(rf"(?<![\w]){re.escape(value)}(?![\w])", PLACEHOLDER, text)
                counts.extend(["repeat"] * extra)
    kinds = tuple(dict.fromkeys(kind for kind in counts if kind != "repeat"))
    return Redaction(text=text, count=len(counts), kinds=kinds)


def _distinctive(value: str) -> bool:
    """Whether a masked value is unlike any word of code, so its other occurrences are the secret too.

    A keyword find such as `password` (from `http://joe:password@host`) must not mask the variable
    `password` everywhere else.
    """
    return len(value) >= 8 and any(c.isdigit() for c in value) and any(c.isalpha() for c in value)


def contains_secret(text: str) -> bool:
    """Whether redact(text) would mask anything."""
    if ("-----BEGIN" in text or "PuTTY-User-Key-File" in text) and _has_private_key(text):
        return True
    return any(_scan_line(line) for line in text.splitlines(keepends=True))


def _has_private_key(text: str) -> bool:
    """Whether detect-secrets' private-key detector fires on any line of text."""
    return any(any(True for _ in _PRIVATE_KEY.analyze_string(line))
               for line in text.splitlines() if "PRIVATE" in line or "PuTTY" in line)


def _mask_private_keys(text: str, counts: list[str]) -> str:
    """Replace whole private-key blocks (PEM, PuTTY); a block cut off before its END line loses its body."""
    if not _has_private_key(text):
        return text
    masked: list[str] = []
    position = 0
    while True:
        blocks = [m for m in (_PEM_BLOCK.search(text, position), _PUTTY.search(text, position)) if m]
        block = min(blocks, key=lambda m: m.start(), default=None)
        header = _PEM_HEADER.search(text, position)
        if header is not None and (block is None or header.start() < block.start()):
            end = header.end()
            if end < len(text) and text[end] == "\n":
                end += 1
            while (body := _PEM_BODY_LINE.match(text, end)) is not None and body.end() > end:
                end = body.end()
            start, stop = header.start(), end
            tail = "\n" if text[start:stop].endswith("\n") else ""
        elif block is not None:
            start, stop, tail = block.start(), block.end(), ""
        else:
            break
        masked.append(text[position:start] + PLACEHOLDER + tail)
        counts.append("Private Key")
        position = stop
    masked.append(text[position:])
    return "".join(masked)


def _mask(line: str, findings: Iterable[_Finding], counts: list[str], values: set[str]) -> str:
    """The line with each (already merged) finding's span replaced by PLACEHOLDER."""
    out: list[str] = []
    position = 0
    for start, end, kind in findings:
        out.append(line[position:start])
        out.append(PLACEHOLDER)
        values.add(line[start:end])
        counts.append(kind)
        position = end
    out.append(line[position:])
    return "".join(out)


@lru_cache(maxsize=_LINE_CACHE_SIZE)
def _scan_line(line: str) -> tuple[_Finding, ...]:
    """Secret spans in one line, memoized: between keystrokes almost every line of a prompt repeats."""
    findings = list(_merge(_find_all(line)))
    masks = [m.span() for m in re.finditer(re.escape(PLACEHOLDER), line)] if "<redacted:" in line else []
    return tuple(f for f in findings if not any(f[0] < e and s < f[1] for s, e in masks))


def _merge(findings: Iterable[_Finding]) -> Iterator[_Finding]:
    """Union of overlapping spans; the kind of the earliest-listed detector wins."""
    ordered = sorted(enumerate(findings), key=lambda item: (item[1][0], item[0]))
    current: list[int | str] | None = None
    for _, (start, end, kind) in ordered:
        if current is not None and start < int(current[1]):
            current[1] = max(int(current[1]), end)
            continue
        if current is not None:
            yield int(current[0]), int(current[1]), str(current[2])
        current = [start, end, kind]
    if current is not None:
        yield int(current[0]), int(current[1]), str(current[2])


def _find_all(line: str) -> Iterator[_Finding]:
    """Every detector's finds in one line, specific ones first."""
    yield from _find_tokens(line)
    yield from _find_urls(line)
    yield from _find_keyword_values(line)
    yield from _find_assignments(line)
    yield from _find_high_entropy(line)


def _find_tokens(line: str) -> Iterator[_Finding]:
    """Provider tokens (AWS, GitHub, Slack, Stripe, JWT ...) by detect-secrets' patterns and ours."""
    for detector in _TOKEN_DETECTORS:
        for pattern in detector.denylist:
            for match in pattern.finditer(line):
                for start, end in _match_spans(match):
                    if isinstance(detector, JwtTokenDetector) and not detector.is_formally_valid(line[start:end]):
                        continue
                    # A pattern of fixed length (Stripe's 24) must not leave the rest of a longer token.
                    end = _IDENTIFIER_CHARS.match(line, end).end()  # type: ignore[union-attr]
                    yield start, end, str(detector.secret_type)
    for pattern, kind in _OWN_TOKENS:
        for match in pattern.finditer(line):
            yield match.start(), match.end(), kind


def _find_urls(line: str) -> Iterator[_Finding]:
    """Passwords in URLs and connection strings."""
    if "://" in line:
        for pattern in (*_BASIC_AUTH.denylist, _URL_PASSWORD):
            for match in pattern.finditer(line):
                start, end = match.span(1)
                if not is_templated_secret(line[start:end]) and not line[start:end].startswith("$"):
                    yield start, end, "Basic Auth Credentials"
    if "@tcp(" in line or "@unix(" in line or "@udp(" in line:
        for match in _DSN_PASSWORD.finditer(line):
            yield *match.span(1), "Connection String Password"
    if "=" in line:
        for match in _PARAM_PASSWORD.finditer(line):
            start, end = match.span(1)
            if not is_templated_secret(line[start:end]) and not line[start:end].startswith(("$", "%", "{")):
                yield start, end, "Connection String Password"


def _find_keyword_values(line: str) -> Iterator[_Finding]:
    """Quoted values of secret-sounding names, by detect-secrets' keyword patterns."""
    # The patterns cost ~10 us each and the indirect-reference check ~80 us: only on a line that names
    # one of the keyword detector's words (every one contains one of these).
    lowered = line.lower()
    if not any(word in lowered for word in _KEYWORD_HINTS) or is_indirect_reference(line):
        return
    for pattern, group in _KEYWORD_PATTERNS:
        for match in pattern.finditer(line):
            start, end = match.span(group)
            if pattern is FOLLOWED_BY_COLON_EQUAL_SIGNS_REGEX and not match.group(3):
                continue  # Go's `password := value` unquoted is code, not a literal
            value = line[start:end]
            if _plausible_literal(value, line):
                yield start, end, "Secret Keyword"


def _find_assignments(line: str) -> Iterator[_Finding]:
    """Unquoted `.env`/shell/properties and YAML values of secret-sounding names."""
    if ":" not in line and "=" not in line:
        return
    lowered = line.lower()
    if not any(word in lowered for word in _SECRET_NAME_HINTS):
        return
    for pattern in (_ENV_ASSIGNMENT, _YAML_ASSIGNMENT):
        match = pattern.match(line)
        if match is None or not _SECRET_NAME_RE.search(match["name"]):
            continue
        value = match["value"]
        if len(value) < 6 or _NOT_A_VALUE.match(value) or is_templated_secret(value):
            continue
        if pattern is _YAML_ASSIGNMENT and not (re.search(r"[\d\W_]", value) or len(value) >= 12):
            continue
        start, end = match.span("value")
        yield start, end, "Secret Assignment"


def _find_high_entropy(line: str) -> Iterator[_Finding]:
    """Random-looking quoted literals, only on a line that names a secret (token, api_key ...)."""
    lowered = line.lower()
    if not any(word in lowered for word in _SECRET_NAME_HINTS) or not _SECRET_NAME_RE.search(line):
        return
    for plugin in _HIGH_ENTROPY:
        for match in plugin.regex.finditer(line):
            start, end = match.span(2)
            value = line[start:end]
            if len(value) < 16 or not _random_looking(plugin, value):
                continue
            if is_sequential_string(value) or is_potential_uuid(value) or is_likely_id_string(value, line, plugin):
                continue
            yield start, end, "High Entropy String"


def _random_looking(plugin: HighEntropyStringsPlugin, value: str) -> bool:
    """Whether a literal looks generated: letters and digits mixed, and near the entropy of random text.

    detect-secrets' fixed limits (4.5 bits base64, 3.0 hex) miss most tokens of 16-32 characters, whose
    entropy cannot reach them; next to a secret-like name we accept 80% of the most a string of that
    length can have (log2 of its length, or of the charset when smaller).
    """
    if not (any(c.isdigit() for c in value) and any(c.isalpha() for c in value)):
        return False
    ceiling = min(math.log2(len(value)), math.log2(len(plugin.charset)))
    limit = min(plugin.entropy_limit, 0.8 * ceiling)
    return plugin.calculate_shannon_entropy(value) > limit


def _plausible_literal(value: str, line: str) -> bool:
    """Whether a keyword-detected value could be a credential rather than a label or template."""
    return (len(value) >= 4 and not any(c.isspace() for c in value) and not is_templated_secret(value)
            and not value.startswith(("$", "%(", "{")) and not is_not_alphanumeric_string(value)
            and not is_likely_id_string(value, line))


def _match_spans(match: re.Match[str]) -> list[tuple[int, int]]:
    """The secret's span(s) in a detector match: its non-empty groups, else the match less delimiters."""
    spans = [match.span(i) for i in range(1, (match.re.groups or 0) + 1) if match.group(i)]
    if spans:
        return spans
    start, end = match.span()
    while start < end and match.string[start] in " \t=:\"'":
        start += 1
    while end > start and match.string[end - 1] in " \t\"'\r\n":
        end -= 1
    return [(start, end)]
