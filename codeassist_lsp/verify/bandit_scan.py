"""Bandit, in-process through its manager, on the Python code around a suggestion."""

from __future__ import annotations

import ast
import functools
import io
import logging
import sys
import textwrap
import threading

from codeassist_lsp.errors import ScannerUnavailable
from codeassist_lsp.verify.model import Finding

log = logging.getLogger(__name__)
# Before bandit is first imported (anywhere): bandit logs its own setup, and stevedore logs an
# ERROR for bandit's optional SARIF formatter, which users would take for a failure of ours.
logging.getLogger("bandit").setLevel(logging.ERROR)
logging.getLogger("stevedore.extension").setLevel(logging.CRITICAL)

# Tests that flag an import alone, code quality or test idioms rather than a vulnerability a
# suggestion introduces (assert, try/except/pass, `import pickle`, subprocess without a shell).
SKIPPED_TESTS = (
    "B101", "B110", "B112", "B603", "B404", "B401", "B402", "B403", "B405", "B406", "B407",
    "B408", "B409", "B410", "B411", "B412", "B413", "B415",
)
_SEVERITY = {"HIGH": "high", "MEDIUM": "medium", "LOW": "low"}
_lock = threading.Lock()  # bandit's manager keeps per-run state


class BanditUnavailable(ScannerUnavailable):
    """Bandit could not be imported, or it crashed; the message says which, the hint how to fix it."""

    component = "bandit"

    def __init__(self, message: str) -> None:
        super().__init__(message, hint=(
            "Python suggestions and code actions are checked with the built-in rules only meanwhile. "
            f"Reinstall bandit: `{sys.executable} -m pip install --force-reinstall bandit`."))


@functools.cache
def _manager():  # type: ignore[no-untyped-def]
    try:
        from bandit.core import config as bandit_config
        from bandit.core import manager as bandit_manager
    except ImportError as error:
        raise BanditUnavailable(f"bandit could not be imported ({error}).") from error
    conf = bandit_config.BanditConfig()
    return bandit_manager.BanditManager(conf, "file", quiet=True, profile={"exclude": list(SKIPPED_TESTS)})


def run_bandit(code: str, name: str = "<suggestion>") -> list[tuple[str, str, str, int, int, int, str]]:
    """Bandit issues of code as (test_id, text, severity, line, col, end_col, cwe); raises SyntaxError."""
    from bandit.core import node_visitor

    manager = _manager()
    data = code.encode("utf-8")
    ast.parse(code)  # raise SyntaxError here, before bandit logs it as a scan failure
    with _lock:
        visitor = node_visitor.BanditNodeVisitor(
            name, io.BytesIO(data), manager.b_ma, manager.b_ts, False, {}, manager.metrics
        )
        visitor.process(data)
        issues = list(visitor.tester.results)
    out = []
    for issue in issues:
        if issue.confidence == "LOW":
            continue  # low-confidence bandit hits are mostly noise on partial code
        cwe = f"CWE-{issue.cwe.id}" if getattr(issue, "cwe", None) and issue.cwe.id else ""
        out.append((issue.test_id, issue.text, _SEVERITY.get(issue.severity, "medium"), issue.lineno,
                    issue.col_offset, getattr(issue, "end_col_offset", issue.col_offset), cwe))
    return out


def _parseable(snippet: str) -> str | None:
    """snippet, or snippet with an opened block closed, when it parses as Python; else None."""
    for candidate in (snippet, snippet.rstrip() + "\n" + _indent_of_last(snippet) + "    pass\n"):
        try:
            ast.parse(candidate)
            return candidate
        except SyntaxError:
            continue
        except ValueError:  # null bytes
            return None
    return None


def _indent_of_last(snippet: str) -> str:
    last = snippet.rstrip().rsplit("\n", 1)[-1]
    return last[: len(last) - len(last.lstrip())]


def _imports(document: str) -> list[str]:
    """Top-level import lines: bandit resolves call names (e.g. `call` -> subprocess.call) through them."""
    return [line for line in document.splitlines()
            if line.startswith("import ") or (line.startswith("from ") and " import " in line)]


def scan_python_lines(document: str, first_line: int, last_line: int) -> tuple[list[Finding], bool]:
    """Bandit findings on lines [first_line, last_line] of document; the bool says whether all parsed."""
    lines = document.splitlines(keepends=True)
    chunk = lines[first_line : last_line + 1]
    imports = [line if line.endswith("\n") else line + "\n" for line in _imports(document)]
    pieces: list[tuple[int, str]] = []  # (first document line, dedented code)
    whole = _parseable(textwrap.dedent("".join(chunk)))
    complete = True
    if whole is not None:
        pieces.append((first_line, whole))
    else:
        # Partial code (a statement cut by the window): check line by line what stands alone.
        for index, line in enumerate(chunk):
            code = _parseable(line.strip() + "\n")
            if code is None:
                complete = complete and not line.strip()
                continue
            pieces.append((first_line + index, code))
    findings: list[Finding] = []
    for start_line, code in pieces:
        header = "".join(imports)
        with_header = bool(header) and _parseable(header + code) is not None
        shift = len(imports) if with_header else 0
        try:
            issues = run_bandit(header + code if with_header else code)
        except SyntaxError:
            complete = False
            continue
        for test_id, text, severity, lineno, col, end_col, cwe in issues:
            line = start_line + lineno - 1 - shift
            if lineno - 1 < shift or line >= len(lines):
                continue  # a finding on our import header is context, not the suggestion
            offset = sum(len(item) for item in lines[:line])
            findings.append(Finding(f"bandit.{test_id}", text, severity, "bandit", offset, offset + len(lines[line].rstrip("\n")), line, cwe, "bandit"))
    return findings, complete
