"""The warm mypy process behind the Python type-check stage: one JSON request per line on stdin, one
JSON answer per line on stdout.

It runs as `python -m codeassist_lsp.verify.mypy_worker CACHE_DIR` and keeps mypy imported and its
incremental cache (typeshed, the workspace's modules) warm, so one check of a changed file costs
tens of milliseconds instead of a second. The candidate's text is handed to mypy in memory: nothing
is written but mypy's cache, under CACHE_DIR, never into the user's workspace.

Request:  {"text": str, "module": str, "path": str, "config": str | null, "search": [str],
           "python": str | null, "defaults": bool}
Answer:   {"errors": [[line, column, code, message], ...]} (1-based line and column) or {"error": str}
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import re
import sys
import time
from typing import Any

# path:line:col: error: message  [code]
_LINE = re.compile(r"^(?P<path>.*?):(?P<line>\d+):(?P<col>\d+): (?P<severity>error|note|warning): "
                   r"(?P<message>.*?)(?:  \[(?P<code>[a-z0-9-]+)\])?$")


def _options(request: dict[str, Any], cache_root: str) -> Any:
    """mypy's options as its command line would make them from the workspace's config file."""
    from mypy.main import process_options

    config = request.get("config")
    if not config:
        config = os.path.join(cache_root, "empty-mypy.ini")
        if not os.path.exists(config):
            with open(config, "w", encoding="utf-8") as handle:
                handle.write("[mypy]\n")
    args = ["--config-file", config, "--show-column-numbers", "--show-error-codes", "--no-error-summary",
            "--ignore-missing-imports", "--follow-imports", "silent", "--no-pretty", "--hide-error-context",
            "--no-color-output"]
    if request.get("defaults"):
        # No config of the workspace's: also check the bodies of unannotated functions (most code),
        # where wrong arity and attribute errors of a candidate would otherwise go unseen; and let a
        # variable take a new type (`best = None` ... `best = (a, b)`), as working dynamic code does.
        args += ["--check-untyped-defs", "--allow-redefinition"]
    if request.get("python"):
        args += ["--python-executable", request["python"]]
    # The key of the cache folder: options differ per workspace config, and mixing them would make
    # mypy rebuild typeshed on every switch.
    key = hashlib.sha256("\0".join([*args, *request.get("search", [])]).encode()).hexdigest()[:16]
    args += ["--cache-dir", os.path.join(cache_root, key), "-c", "pass"]
    stderr = io.StringIO()
    _sources, options = process_options(args, stdout=io.StringIO(), stderr=stderr)
    options.mypy_path = [*options.mypy_path, *request.get("search", [])]
    options.incremental = True
    options.error_summary = False
    return options


def check(request: dict[str, Any], cache_root: str) -> dict[str, Any]:
    """Type-check one text as module `module` at `path`; the errors mypy reports in it."""
    from mypy import build
    from mypy.errors import CompileError
    from mypy.modulefinder import BuildSource

    options = _options(request, cache_root)
    path = request["path"]
    source = BuildSource(path, request["module"], text=request["text"], base_dir=request.get("base"))
    try:
        result = build.build([source], options, stdout=io.StringIO(), stderr=io.StringIO())
        messages = result.errors
    except CompileError as error:  # a blocking error (e.g. syntax): mypy stops there
        messages = error.messages
    errors = []
    wanted = os.path.abspath(path)
    for message in messages:
        match = _LINE.match(message)
        if match is None or match["severity"] != "error":
            continue
        if os.path.abspath(match["path"]) != wanted:
            continue  # errors of other modules: not this file's
        errors.append([int(match["line"]), int(match["col"]), match["code"] or "", match["message"]])
    return {"errors": errors}


def main() -> None:
    """Serve requests until stdin closes."""
    cache_root = sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.getcwd(), ".codeassist-mypy")
    os.makedirs(cache_root, exist_ok=True)
    try:
        import mypy.build  # noqa: F401  (import once, up front: that is the warm part)
    except ImportError as error:
        sys.stdout.write(json.dumps({"ready": False, "error": f"mypy is not installed ({error})"}) + "\n")
        sys.stdout.flush()
        return
    sys.stdout.write(json.dumps({"ready": True}) + "\n")
    sys.stdout.flush()
    for line in sys.stdin:
        if not line.strip():
            continue
        started = time.perf_counter()
        try:
            answer = check(json.loads(line), cache_root)
        except (Exception, SystemExit) as error:  # one bad request (or config) must not end the worker
            answer = {"error": f"{type(error).__name__}: {error}"}
        answer["ms"] = (time.perf_counter() - started) * 1000
        sys.stdout.write(json.dumps(answer) + "\n")
        sys.stdout.flush()


if __name__ == "__main__":
    main()
