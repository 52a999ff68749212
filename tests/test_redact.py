"""Secret redaction: every corpus secret masked, real code untouched, the code around a secret kept."""

from __future__ import annotations

import gzip
import json
import sysconfig
from pathlib import Path

import pytest
from detect_secrets.plugins.keyword import DENYLIST

from codeassist_lsp import redact as redact_module
from codeassist_lsp.redact import PLACEHOLDER, Redaction, contains_secret, redact

CORPUS = Path(__file__).parent / "data" / "secrets"
MANIFEST = json.loads((CORPUS / "manifest.json").read_text())["files"]
HUMANEVAL = Path("/work/shared/data/humaneval/HumanEval.jsonl.gz")
if not HUMANEVAL.exists():
    HUMANEVAL = Path(__file__).resolve().parents[2] / "shared" / "data" / "humaneval" / "HumanEval.jsonl.gz"


def stdlib_sample(count: int = 30) -> list[Path]:
    """Every n-th top-level module of this Python's standard library, in name order (deterministic)."""
    modules = sorted(Path(sysconfig.get_paths()["stdlib"]).glob("*.py"))
    step = max(1, len(modules) // count)
    return modules[::step][:count]


def expected_redaction(text: str, values: list[str]) -> str:
    """The text with exactly the manifest's values masked: nothing more, nothing less."""
    for value in sorted(values, key=len, reverse=True):
        text = text.replace(value, PLACEHOLDER)
    return text


def test_corpus_is_large_and_varied() -> None:
    """At least 50 secrets in at least 5 languages."""
    assert sum(len(items) for items in MANIFEST.values()) >= 50
    assert len({Path(name).suffix for name in MANIFEST}) >= 5


@pytest.mark.parametrize("name", sorted(MANIFEST))
def test_every_corpus_secret_is_masked(name: str) -> None:
    """No manifest value survives, and only the values are replaced (names, quotes, URLs kept)."""
    text = (CORPUS / name).read_text()
    values = [item["value"] for item in MANIFEST[name]]
    result = redact(text)
    left = [item["kind"] for item in MANIFEST[name] if item["value"] in result.text]
    assert not left, f"{name}: not masked: {left}"
    assert result.text == expected_redaction(text, values)
    assert result.count >= len(values)
    assert all(value not in kind for kind in result.kinds for value in values)


@pytest.mark.parametrize("name", sorted(MANIFEST))
def test_redaction_is_idempotent(name: str) -> None:
    """Redacting redacted text changes nothing and finds nothing."""
    once = redact((CORPUS / name).read_text())
    twice = redact(once.text)
    assert twice == Redaction(text=once.text, count=0, kinds=())
    assert not contains_secret(once.text)


def test_humaneval_is_untouched() -> None:
    """Every HumanEval prompt with its canonical solution comes back unchanged."""
    with gzip.open(HUMANEVAL, "rt") as handle:
        rows = [json.loads(line) for line in handle]
    assert len(rows) == 164
    changed = [row["task_id"] for row in rows if redact(row["prompt"] + row["canonical_solution"]).count]
    assert changed == []


@pytest.mark.parametrize("path", stdlib_sample(), ids=lambda path: path.name)
def test_stdlib_module_is_untouched(path: Path) -> None:
    """Real, secret-free code is not masked."""
    text = path.read_text(encoding="utf-8")
    result = redact(text)
    assert result.text == text, [k for k in result.kinds]


def test_code_shape_is_kept() -> None:
    """Only the value goes: the name, the quotes and the rest of the line stay."""
    cases = {
        'API_KEY = "sk_live_4eC39HqLyjWDarjtT1zdp7dc"\n': 'API_KEY = "<redacted:secret>"\n',
        "    password = 'Tr0ub4dor&3xample'  # admin\n": "    password = '<redacted:secret>'  # admin\n",
        'const apiKey = "AKIAIOSFODNN7EXAMPLE";\n': 'const apiKey = "<redacted:secret>";\n',
        'token := "ghp_1234567890abcdefghijklmnopqrstuvwxyZ"\n': 'token := "<redacted:secret>"\n',
        "DB_PASSWORD=Xk9#mQ2vL8\n": "DB_PASSWORD=<redacted:secret>\n",
        "  db_password: hunter2-prod\n": "  db_password: <redacted:secret>\n",
        'url = "postgres://app:pa55word@db:5432/app"\n': 'url = "postgres://app:<redacted:secret>@db:5432/app"\n',
    }
    for line, expected in cases.items():
        assert redact(line).text == expected


def test_same_secret_gets_the_same_mask_everywhere() -> None:
    """A value found once is masked where it appears again, e.g. in a comment with no telling name."""
    token = "ghp_" + "aB3" * 12
    secret = "Zq8vR2mN5xT1"
    text = (f'password = "{secret}"\n# rotated: old value {secret} still on staging\n'
            f'GITHUB = "{token}"\nprint("{token}")\n')
    result = redact(text)
    assert secret not in result.text and token not in result.text
    assert result.text.count(PLACEHOLDER) == 4
    assert result.count == 4


def test_private_key_block_is_masked_whole() -> None:
    """A PEM block goes as one piece, also when the prompt cuts it off before its END line."""
    body = "MIIEowIBAAKCAQEAu1SU1LfVLPHCozMxH2Mo4lgOEePzNm0tRgeLezV6ffAt0gun\n" * 3
    whole = f"key = '''-----BEGIN RSA PRIVATE KEY-----\n{body}-----END RSA PRIVATE KEY-----\n'''\nx = 1\n"
    assert redact(whole).text == f"key = '''{PLACEHOLDER}\n'''\nx = 1\n"
    cut = f"KEY = '''-----BEGIN OPENSSH PRIVATE KEY-----\n{body}"
    result = redact(cut)
    assert result.text == f"KEY = '''{PLACEHOLDER}\n" and result.kinds == ("Private Key",)
    public = "-----BEGIN CERTIFICATE-----\nMIIDdzCCAl+gAwIBAgIEAgAAuTANBgkqhkiG9w0BAQUFADBa\n"
    assert redact(public).text == public


def test_contains_secret() -> None:
    """True for each corpus file and a single token, False for ordinary code and masked text."""
    for name in MANIFEST:
        assert contains_secret((CORPUS / name).read_text()), name
    assert contains_secret("x = 'AKIAIOSFODNN7EXAMPLE'")
    assert contains_secret("-----BEGIN EC PRIVATE KEY-----\nMHcCAQEEIBkg\n-----END EC PRIVATE KEY-----")
    assert not contains_secret("def add(a, b):\n    return a + b\n")
    assert not contains_secret('password = get_password()\ntoken = next_token(stream)\n')
    assert not contains_secret(f'password = "{PLACEHOLDER}"\n')


def test_kinds_name_what_was_found() -> None:
    """Kinds are detector names in order of first appearance, never secret values."""
    result = redact('a = "AKIAIOSFODNN7EXAMPLE"\nb = "ghp_' + "x1" * 18 + '"\nc = "AKIAJ7Q2EXAMPLE3KEYZ"\n')
    assert result.kinds == ("AWS Access Key", "GitHub Token")
    assert result.count == 3


def test_keyword_prefilter_covers_the_detector_words() -> None:
    """The cheap substring pre-check lets through every word detect-secrets' keyword patterns look for."""
    for word in DENYLIST:
        plain = word.replace("_?", "_")
        assert any(hint in plain for hint in redact_module._KEYWORD_HINTS), word


def test_line_memo_is_bounded() -> None:
    """The per-line memo cannot grow without limit in a long session."""
    assert redact_module._scan_line.cache_info().maxsize is not None


def test_cut_off_encrypted_key_loses_its_headers_and_body_only() -> None:
    """An encrypted PEM cut off mid-body: its headers, blank line and base64 go; the code after stays."""
    text = ('KEY = """-----BEGIN RSA PRIVATE KEY-----\nProc-Type: 4,ENCRYPTED\nDEK-Info: AES-128-CBC,3F17F5316E2BAC89\n'
            "\nMIIEowIBAAKCAQEAu1SU1LfVLPHCozMxH2Mo4lgOEePzNm0tRgeLezV6ffAt0gun\n    def connect(self, host):\n")
    assert redact(text).text == f'KEY = """{PLACEHOLDER}\n    def connect(self, host):\n'
