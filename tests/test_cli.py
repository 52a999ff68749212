"""The one-shot CLI, the newcomer's first command: real model, real files, clean stdout."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
CLI = [sys.executable, "-c", "import sys; from codeassist_lsp.cli import main; sys.exit(main())"]


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*CLI, *args], cwd=REPO, capture_output=True, text=True, timeout=180)


@pytest.mark.model
def test_complete_prints_a_verified_model_suggestion_as_json() -> None:
    run = _run("complete", "examples/stats.py", "--line", "15", "--col", "5", "--json", "--no-cache")
    assert run.returncode == 0, run.stderr[-2000:]
    report = json.loads(run.stdout)  # stdout is the report alone: no llama.cpp or library output
    assert report["mode"] == "line" and report["suggestion"].strip(), report
    assert report["verification"]["status"] in ("ok", "cut") and "syntax" in report["verification"]["checks"]
    assert report["tokens"]["generated"] > 0 and report["tokens"]["evaluated"] > 0  # the model ran
    assert report["model"].startswith("gemma-3-270m") and "cache" not in report["timings_ms"]


@pytest.mark.model
def test_complete_human_output_with_context() -> None:
    run = _run("complete", "examples/stats.py", "--line", "15", "--col", "5", "--show-context")
    assert run.returncode == 0, run.stderr[-2000:]
    assert "----- context shown to the model -----" in run.stdout and "def median" in run.stdout
    assert "examples/stats.py:15:5 (line)" in run.stdout
    assert "-- verified:" in run.stderr and " ms" in run.stderr
    assert "gate_us" not in run.stderr and " us," in run.stderr and "p_accept" not in run.stderr  # units named
    assert "ERROR" not in run.stderr and "WARNING" not in run.stderr, run.stderr  # nothing alarming


@pytest.mark.parametrize(("args", "message"), [
    (("complete", "examples/stats.py", "--line", "999"), "--line must be between 1 and"),
    (("complete", "examples/no-such-file.py"), "cannot read examples/no-such-file.py"),
])
def test_complete_bad_input_gets_a_clear_error(args: tuple[str, ...], message: str) -> None:
    run = _run(*args)
    assert run.returncode == 2 and message in run.stderr and run.stdout == "", (run.stdout, run.stderr)


def test_models_list_shows_the_embedded_default() -> None:
    run = _run("models", "list")
    assert run.returncode == 0 and "gemma-3-270m" in run.stdout, run.stdout + run.stderr


@pytest.mark.model
def test_a_new_line_above_code_that_reads_an_undefined_name_defines_it(tmp_path: Path) -> None:
    # The embedded model cannot see the code below the cursor (no FIM): the pipeline starts the
    # line with the name that code reads and nothing defines, and the model writes the rest.
    source = ("def squares(values):\n"
              "    \"\"\"The squares of the even values.\"\"\"\n"
              "    \n"
              "    for v in values:\n"
              "        if v % 2 == 0:\n"
              "            found.append(v * v)\n"
              "    return found\n")
    path = tmp_path / "squares.py"
    path.write_text(source)
    run = _run("complete", str(path), "--line", "3", "--col", "5", "--json", "--no-cache")
    assert run.returncode == 0, run.stderr[-2000:]
    report = json.loads(run.stdout)
    assert report["suggestion"].startswith("found"), report
    assert report["tokens"]["generated"] > 0  # the model wrote what follows the name


def test_models_list_shows_both_tiers_with_size_license_and_features() -> None:
    run = _run("models", "list")
    coder = next(line for line in run.stdout.splitlines() if line.startswith("qwen2.5-coder-1.5b"))
    assert "quality" in coder and "1,117 MB" in coder and "FIM, chat" in coder and "Apache-2.0" in coder, coder


@pytest.mark.model
def test_action_documents_a_function_with_the_code_model() -> None:
    run = _run("action", "docstring", "examples/shapes.py", "--line", "6")
    assert run.returncode == 0, run.stderr[-2000:]
    added = [line for line in run.stdout.splitlines() if line.startswith("+") and not line.startswith("+++")]
    assert added and added[0].startswith('+    """'), run.stdout  # a unified diff adding the docstring
    assert "qwen2.5-coder" in run.stderr, run.stderr
    assert "use the small completion model" not in run.stderr, run.stderr  # the code model is installed


def test_action_bad_input_gets_a_clear_error() -> None:
    run = _run("action", "docstring", "examples/shapes.py", "--line", "999")
    assert run.returncode == 2 and "--line/--end-line must be between 1 and" in run.stderr and run.stdout == ""
