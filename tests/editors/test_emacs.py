"""Emacs + eglot (Debian) with editors/emacs/codeassist-eglot.el and the real embedded model."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import pytest

from .support import REPO, SAMPLE_LINE, require_executable, server_command, tail

pytestmark = pytest.mark.model
DRIVER = Path(__file__).with_name("emacs_driver.el")


@pytest.fixture(scope="module")
def emacs_run(editor_home: dict[str, str], workspace: Path, artifacts: Path) -> dict[str, Any]:
    """One batch Emacs session: eglot attaches, the model loads, completion-at-point completes."""
    emacs = require_executable("Emacs (Debian emacs-nox + elpa-eglot)", "emacs")
    result = artifacts / "emacs-result.json"
    log = artifacts / "emacs-server.log"
    for stale in (result, log):
        stale.unlink(missing_ok=True)
    env = dict(editor_home, CODEASSIST_RESULT=str(result), CODEASSIST_SERVER_LOG=str(log),
               CODEASSIST_REPO=str(REPO), CODEASSIST_LSP=server_command()[0],
               CODEASSIST_SAMPLE=str(workspace / "sample.py"))
    try:
        run = subprocess.run([emacs, "--batch", "-l", str(DRIVER)], cwd=workspace, env=env,
                             stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=300)
    except subprocess.TimeoutExpired:
        pytest.fail(f"Emacs did not finish in 300 s; server log:\n{tail(log)}")
    if not result.exists():
        pytest.fail(f"Emacs wrote no result:\n{run.stderr[-3000:]}\nserver log:\n{tail(log)}")
    report: dict[str, Any] = json.loads(result.read_text())
    if "error" in report:
        if "eglot" in report["error"] and "Cannot open load file" in report["error"]:
            pytest.fail(f"eglot is not installed (Debian elpa-eglot): {report['error']}")
        pytest.fail(f"Emacs driver: {report['error']}\n{run.stderr[-3000:]}\nserver log:\n{tail(log)}")
    return report


def test_eglot_attaches(emacs_run: dict[str, Any]) -> None:
    assert emacs_run["mode"] == "python-mode"
    assert emacs_run["server"] == "codeassist"
    assert emacs_run["completionProvider"] and emacs_run["capf"]
    assert emacs_run["model"] == "ready"
    assert emacs_run["maxTokens"] == 20  # eglot-workspace-configuration reached the server


def test_model_completion_through_completion_at_point(emacs_run: dict[str, Any]) -> None:
    assert emacs_run["before"] == SAMPLE_LINE
    after = emacs_run["after"]
    assert after.startswith(SAMPLE_LINE) and after[len(SAMPLE_LINE):].strip(), emacs_run
