"""Helpers of the editor tests: where the editors and the server are, failure messages."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import pytest


REPO = Path(__file__).resolve().parents[2]
EDITORS = REPO / "editors"
VENV_BIN = Path(sys.executable).parent
INSTALL_HINT = "run ./dev.sh test (it calls editors/install-test-deps.sh), or that script directly"

# Where a completion is likely non-empty: the server answers a single line after `return `.
SAMPLE_PY = "def add(a, b):\n    return \n"
SAMPLE_LINE = "    return "


def require_executable(name: str, *candidates: Path | str) -> str:
    """The editor's executable; FAIL (never skip) with a clear message when it is missing."""
    for candidate in candidates:
        found = shutil.which(str(candidate))
        if found:
            return found
    pytest.fail(f"{name} not found (looked for {', '.join(map(str, candidates))}): {INSTALL_HINT}.")


def server_command() -> list[str]:
    """The language server as an editor starts it: the console script from this venv."""
    script = VENV_BIN / "codeassist-lsp"
    if not script.exists():
        pytest.fail(f"{script} is missing: install the project (pip install -e .) first.")
    return [str(script)]


def tail(path: Path, lines: int = 40) -> str:
    """The end of a log file, for failure messages."""
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return f"({path} not written)"
