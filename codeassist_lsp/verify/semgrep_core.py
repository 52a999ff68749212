"""semgrep-core (semgrep's native engine, shipped in the semgrep wheel) running the project's pack."""

from __future__ import annotations

import functools
import json
import logging
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from codeassist_lsp.errors import ScannerUnavailable
from codeassist_lsp.verify.model import Finding
from codeassist_lsp.verify.rulepack import SEMGREP_LANGUAGE, SEVERITY_OF, pack_file

log = logging.getLogger(__name__)

TIMEOUT_S = 15.0
_EXTENSION = {
    "c": ".c", "cpp": ".cpp", "csharp": ".cs", "java": ".java", "kotlin": ".kt", "javascript": ".js",
    "typescript": ".ts", "go": ".go", "rust": ".rs", "ruby": ".rb", "php": ".php", "python": ".py",
    "scala": ".scala", "lua": ".lua", "bash": ".sh",
}


# semgrep-core runs beside the model thread (an action's check, a document's scan): at a lower CPU
# priority, so that a keystroke's completion does not wait behind it on a small machine.
_NICE = ("nice", "-n", "10") if shutil.which("nice") else ()


class SemgrepUnavailable(ScannerUnavailable):
    """semgrep-core is missing or failed; the message says what happened, the hint how to fix it."""

    component = "semgrep-core"

    def __init__(self, message: str) -> None:
        super().__init__(message, hint=_semgrep_fix())


def _semgrep_fix() -> str:
    """What the user loses meanwhile and how to get semgrep-core back."""
    override = os.environ.get("CODEASSIST_SEMGREP_CORE")
    fix = (f"Point CODEASSIST_SEMGREP_CORE (now {override}) at a working semgrep-core, or unset it." if override
           else f"Reinstall semgrep: `{sys.executable} -m pip install --force-reinstall semgrep`.")
    return f"Code actions and security diagnostics are checked with the built-in rules only meanwhile. {fix}"


@functools.cache
def semgrep_core_path() -> Path:
    """Where the semgrep wheel keeps its native engine; never the slow Python wrapper."""
    override = os.environ.get("CODEASSIST_SEMGREP_CORE")
    if override:
        return Path(override)
    try:
        import semgrep  # only to locate the package; nothing of the wrapper runs
    except ImportError as error:
        raise SemgrepUnavailable(f"semgrep is not installed: {error}") from error
    path = Path(semgrep.__file__).resolve().parent / "bin" / "semgrep-core"
    if not path.exists():
        raise SemgrepUnavailable(f"semgrep-core not found at {path}")
    return path


def _how_it_ended(returncode: int) -> str:
    """'exited 2' or 'was killed by SIGSEGV'."""
    if returncode < 0:
        import signal

        try:
            return f"was killed by {signal.Signals(-returncode).name}"
        except ValueError:
            return f"was killed by signal {-returncode}"
    return f"exited {returncode}"


def _char_offset(data: bytes, byte_offset: int) -> int:
    return len(data[:byte_offset].decode("utf-8", "replace"))


def run_semgrep_core(text: str, language: str, timeout: float = TIMEOUT_S) -> list[Finding]:
    """All findings of the pack on text (our language name); raises SemgrepUnavailable."""
    target = SEMGREP_LANGUAGE.get(language)
    rules = pack_file(language)
    if target is None or rules is None:
        return []  # the pack has nothing for this language: nothing to find, nothing failed
    binary = semgrep_core_path()
    if not os.access(binary, os.X_OK):  # else `nice` would report it, as its own exit 127
        raise SemgrepUnavailable(f"semgrep-core not found at {binary} (or not executable).")
    data = text.encode("utf-8")
    with tempfile.NamedTemporaryFile("wb", suffix=_EXTENSION.get(target, ".txt"), delete=False) as handle:
        handle.write(data)
        source = handle.name
    try:
        completed = subprocess.run(
            [*_NICE, str(binary), "-rules", str(rules), "-lang", target, "-json", "-fast", source],
            capture_output=True, timeout=timeout, check=False, stdin=subprocess.DEVNULL,
        )
    except (OSError, subprocess.TimeoutExpired) as error:
        raise SemgrepUnavailable(f"semgrep-core could not run: {error}") from error
    finally:
        os.unlink(source)
    output = completed.stdout.decode("utf-8", "replace")
    start = output.find("{")  # semgrep-core prints progress dots before the JSON
    if start < 0:
        raise SemgrepUnavailable(f"semgrep-core {_how_it_ended(completed.returncode)} without a report "
                                 f"({completed.stderr[-200:].decode('utf-8', 'replace').strip() or 'no output'}).")
    try:
        report = json.loads(output[start:])
    except json.JSONDecodeError as error:
        raise SemgrepUnavailable(f"semgrep-core output unreadable: {error}") from error
    for problem in report.get("errors", []):
        log.debug("semgrep-core: %s", problem.get("message", problem))
    findings = []
    for result in report.get("results", []):
        extra = result.get("extra", {})
        metadata = extra.get("metadata", {})
        begin = _char_offset(data, result["start"]["offset"])
        end = _char_offset(data, result["end"]["offset"])
        findings.append(Finding(
            rule_id=result["check_id"], message=extra.get("message", "").strip(),
            severity=SEVERITY_OF.get(extra.get("severity", "WARNING"), "medium"), tool="semgrep",
            start=begin, end=end, line=result["start"]["line"] - 1,
            cwe=str(metadata.get("cwe", "")), category=str(metadata.get("category", "")),
        ))
    return findings
