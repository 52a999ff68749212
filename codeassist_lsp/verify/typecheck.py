"""Stage 3 of the verifier: the type check of action edits and generations (never the keystroke path).

Python is checked by mypy in a warm worker process (verify/mypy_worker.py), TypeScript by tsserver
from the workspace's node_modules, the `tsc` on PATH or $CODEASSIST_TYPESCRIPT, when Node is found.
The text is handed to the checker in memory, under the file's module name (mypy) or path
(tsserver), with the workspace's config (mypy.ini, .mypy.ini, pyproject.toml [tool.mypy], setup.cfg
[mypy]; tsconfig.json): nothing is written into the user's workspace, only into our cache folder.

Only errors the edit introduces count: the file is checked before and after the edit, and an error
after it is old when the same message stands on the corresponding line before it (lines shifted
across the edit; inside the edited lines, anywhere in the lines it replaced). A checker that is
missing, crashes or times out makes the check "not run", which never blocks an edit.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import selectors
import shutil
import subprocess
import sys
import threading
import time
from collections import Counter, OrderedDict
from pathlib import Path
from typing import Protocol

import attrs

log = logging.getLogger(__name__)

# Error codes that say something about the environment, not about the code: our Python has not
# the user's packages installed, a workspace may have no node_modules; a variable that needs an
# annotation is a style demand, not a defect; and mypy's "Missing return statement" also flags
# loops that always return (2 of the 164 HumanEval canonical solutions).
IGNORED_CODES = frozenset({
    "import-not-found", "import-untyped", "import", "var-annotated", "unused-ignore", "annotation-unchecked",
    "return",
    "2307", "2792", "7016",  # TS: cannot find module / its declarations
})
PYTHON_LANGUAGES = frozenset({"python"})
TS_LANGUAGES = {"typescript": "TS", "typescriptreact": "TSX", "tsx": "TSX"}
# A check that takes longer than this is abandoned (the worker is restarted) and counts as not run.
DEFAULT_TIMEOUT_S = 20.0
# Results kept per (checker, config, path, text): the text before an edit is checked once for all
# the candidates of a best-of-N.
RESULT_CACHE_ENTRIES = 128


@attrs.frozen
class TypeProblem:
    """One error a checker reported (0-based line and column)."""

    line: int
    column: int
    code: str
    message: str

    def describe(self) -> str:
        """The error as a user reads it: line (1-based), message, code."""
        code = f" [{self.code}]" if self.code else ""
        return f"line {self.line + 1}: {self.message}{code}"


@attrs.frozen
class TypeCheck:
    """What the type check of one edit found."""

    ran: bool
    checker: str = ""
    new_errors: tuple[TypeProblem, ...] = ()
    ms: float = 0.0
    reason: str = ""
    """Why it did not run; empty when it ran."""
    before: tuple[TypeProblem, ...] = ()
    after: tuple[TypeProblem, ...] = ()

    @property
    def ok(self) -> bool:
        """The edit may be offered: the check found no new error, or could not run."""
        return not self.ran or not self.new_errors

    def summary(self, limit: int = 2) -> str:
        """A short sentence for titles and messages."""
        if not self.ran:
            return f"type check not run ({self.reason})"
        if not self.new_errors:
            return f"{self.checker}: no new errors"
        shown = "; ".join(problem.describe() for problem in self.new_errors[:limit])
        more = f" (+{len(self.new_errors) - limit} more)" if len(self.new_errors) > limit else ""
        return f"{self.checker}: {shown}{more}"


class CheckerUnavailable(Exception):
    """The checker is not installed, crashed or timed out; the message says which."""


class Checker(Protocol):
    """One type checker behind the stage."""

    name: str

    def errors(self, text: str, *, path: str | None, workspace: Path | None, language_id: str,
               timeout: float) -> list[TypeProblem]:
        """The errors of `text` as the file at `path`; raises CheckerUnavailable."""
        ...

    def config_key(self, path: str | None, workspace: Path | None) -> str:
        """What, beside the text, decides the result (the config file in effect)."""
        ...


# -- where things are -----------------------------------------------------------------------------

def state_dir() -> Path:
    """Our folder for checker caches and scratch files (never inside a workspace)."""
    from codeassist_lsp.engine.models import cache_dir

    return cache_dir() / "typecheck"


def _folders_up(path: str | None, workspace: Path | None) -> list[Path]:
    """The file's folder and those above it, up to the workspace (or a repository root)."""
    if not path:
        return [workspace] if workspace is not None else []
    folder = Path(path).resolve().parent
    stop = workspace.resolve() if workspace is not None else None
    found = []
    while True:
        found.append(folder)
        if folder == stop or folder.parent == folder or (stop is None and (folder / ".git").exists()):
            break
        if stop is not None and stop not in folder.parents:
            break  # the file is outside the workspace: its own folders only up to a repository root
        folder = folder.parent
    return found


# Files whose folder is taken for the workspace of a file (its config and its imports).
WORKSPACE_MARKERS = ("pyproject.toml", "mypy.ini", ".mypy.ini", "setup.cfg", "tsconfig.json", "package.json", ".git")


def find_workspace(path: str | None) -> Path | None:
    """The nearest folder above a file that holds a project marker (a config, package.json, .git)."""
    if not path:
        return None
    folder = Path(path).resolve().parent
    while True:
        if any((folder / marker).exists() for marker in WORKSPACE_MARKERS):
            return folder
        if folder.parent == folder:
            return None
        folder = folder.parent


def _has_section(file: Path, header: str) -> bool:
    try:
        return header in file.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return False


def mypy_config(path: str | None, workspace: Path | None) -> Path | None:
    """The mypy config in effect for a file: the nearest folder with one, as mypy itself looks."""
    for folder in _folders_up(path, workspace):
        for name in ("mypy.ini", ".mypy.ini"):
            if (folder / name).is_file():
                return folder / name
        if (folder / "pyproject.toml").is_file() and _has_section(folder / "pyproject.toml", "[tool.mypy"):
            return folder / "pyproject.toml"
        if (folder / "setup.cfg").is_file() and _has_section(folder / "setup.cfg", "[mypy"):
            return folder / "setup.cfg"
    return None


def python_module(path: str | None) -> tuple[str, Path | None]:
    """The module name mypy gives a file (packages by __init__.py) and the folder above its top package."""
    if not path:
        return "codeassist_candidate", None
    file = Path(path).resolve()
    name = file.stem if file.suffix in (".py", ".pyi") else re.sub(r"\W", "_", file.name) or "candidate"
    parts = [] if name == "__init__" else [name]
    folder = file.parent
    while (folder / "__init__.py").is_file() and folder.parent != folder:
        parts.insert(0, folder.name)
        folder = folder.parent
    module = ".".join(parts) or "codeassist_candidate"
    return (module if all(p.isidentifier() for p in parts) else "codeassist_candidate"), folder


def workspace_python(workspace: Path | None, path: str | None) -> str | None:
    """The workspace's own virtual environment's Python (its site-packages), when it has one."""
    for folder in _folders_up(path, workspace):
        for venv in (".venv", "venv"):
            python = folder / venv / "bin" / "python"
            if python.is_file():
                return str(python)
    return None


# -- a pipe read with a deadline ---------------------------------------------------------------------

class _Process:
    """A child process read with deadlines: a check that hangs is abandoned, not waited for."""

    def __init__(self, args: list[str], cwd: str | None = None, env: dict[str, str] | None = None) -> None:
        self.process = subprocess.Popen(args, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                        stderr=subprocess.DEVNULL, cwd=cwd, env=env)
        assert self.process.stdout is not None
        self._fd = self.process.stdout.fileno()
        os.set_blocking(self._fd, False)
        self._buffer = b""
        self._selector = selectors.DefaultSelector()
        self._selector.register(self._fd, selectors.EVENT_READ)

    def alive(self) -> bool:
        return self.process.poll() is None

    def send(self, data: bytes) -> None:
        assert self.process.stdin is not None
        try:
            self.process.stdin.write(data)
            self.process.stdin.flush()
        except OSError as error:
            raise CheckerUnavailable(f"the checker process ended ({error})") from error

    def _fill(self, deadline: float) -> None:
        remaining = deadline - time.monotonic()
        if remaining <= 0 or not self._selector.select(remaining):
            raise CheckerUnavailable("timed out")
        try:
            chunk = os.read(self._fd, 1 << 16)
        except BlockingIOError:
            return
        if not chunk:
            raise CheckerUnavailable("the checker process ended")
        self._buffer += chunk

    def readline(self, deadline: float) -> bytes:
        while b"\n" not in self._buffer:
            self._fill(deadline)
        line, self._buffer = self._buffer.split(b"\n", 1)
        return line

    def read(self, size: int, deadline: float) -> bytes:
        while len(self._buffer) < size:
            self._fill(deadline)
        data, self._buffer = self._buffer[:size], self._buffer[size:]
        return data

    def close(self) -> None:
        try:
            self._selector.close()
            self.process.kill()
            self.process.wait(timeout=5)
        except Exception:  # already gone
            pass


# Without a config of the workspace's (code nobody type-checks), errors that come from what mypy
# inferred for an unannotated variable rather than from a declared type are not held against an
# edit: `tri = [1, 3]` then `tri.append(n / 2)` ("float", expected "int"), `best = None` then a tuple
# returned where a tuple is declared ("tuple[float, ...] | None"). Working code does both.
_NUMERIC_ONLY = re.compile(r'"(float|int|complex)"')
_QUOTED = re.compile(r'"([^"]*)"')


def imprecise_inference(problem: TypeProblem) -> bool:
    """Whether a mypy error is about None-ness, int/float mixing or tuple lengths only."""
    if problem.code not in ("arg-type", "return-value", "assignment", "union-attr"):
        return False
    types = [t for t in _QUOTED.findall(problem.message)]
    if problem.code == "union-attr" or any("| None" in t or "Optional[" in t for t in types):
        return True
    if len(types) >= 2 and all(_NUMERIC_ONLY.fullmatch(f'"{t}"') for t in types[-2:]):
        return True
    return any("tuple[" in t and ", ...]" in t for t in types)


# -- mypy --------------------------------------------------------------------------------------------

class MypyChecker:
    """mypy in one warm worker process (restarted after a crash or a time-out)."""

    name = "mypy"

    def __init__(self, python: str | None = None) -> None:
        self.python = python or sys.executable
        self._lock = threading.Lock()
        self._process: _Process | None = None
        self._missing: str | None = None

    def config_key(self, path: str | None, workspace: Path | None) -> str:
        config = mypy_config(path, workspace)
        if config is None:
            return ""
        try:
            return f"{config}:{config.stat().st_mtime_ns}"
        except OSError:
            return str(config)

    def _start(self, deadline: float) -> _Process:
        if self._missing is not None:
            raise CheckerUnavailable(self._missing)
        if self._process is not None and self._process.alive():
            return self._process
        folder = state_dir() / "mypy"
        folder.mkdir(parents=True, exist_ok=True)
        env = {k: v for k, v in os.environ.items() if not k.startswith("MYPY")}
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(Path(__file__).resolve().parents[2]),
                                                          env.get("PYTHONPATH", "")]))
        try:
            process = _Process([self.python, "-m", "codeassist_lsp.verify.mypy_worker", str(folder)],
                               cwd=str(folder), env=env)
        except OSError as error:
            self._missing = f"the mypy worker could not start ({error})"
            raise CheckerUnavailable(self._missing) from error
        try:
            hello = json.loads(process.readline(deadline))
        except (CheckerUnavailable, ValueError) as error:
            process.close()
            raise CheckerUnavailable(f"the mypy worker did not start ({error})") from error
        if not hello.get("ready"):
            process.close()
            self._missing = str(hello.get("error") or "mypy is not available")
            raise CheckerUnavailable(self._missing)
        self._process = process
        return process

    def errors(self, text: str, *, path: str | None, workspace: Path | None, language_id: str = "python",
               timeout: float = DEFAULT_TIMEOUT_S) -> list[TypeProblem]:
        module, package_root = python_module(path)
        config = mypy_config(path, workspace)
        search = [str(p) for p in (package_root, workspace) if p is not None]
        if workspace is not None and (workspace / "src").is_dir():
            search.append(str(workspace / "src"))
        # A scratch path named like the module: errors are reported against it, and the real file
        # (which mypy may also find through the search path) is never read as this module.
        root_key = hashlib.sha256(str(package_root or workspace or "").encode()).hexdigest()[:12]
        scratch = state_dir() / "mypy" / "scratch" / root_key / (module.replace(".", "/") + ".py")
        request = {"text": text, "module": module, "path": str(scratch), "base": str(scratch.parents[module.count(".")]),
                   "config": str(config) if config else None, "search": list(dict.fromkeys(search)),
                   "python": workspace_python(workspace, path), "defaults": config is None}
        deadline = time.monotonic() + timeout
        with self._lock:
            process = self._start(deadline)
            try:
                process.send(json.dumps(request).encode() + b"\n")
                answer = json.loads(process.readline(deadline))
            except (CheckerUnavailable, ValueError) as error:
                process.close()
                self._process = None
                raise CheckerUnavailable(f"mypy {error}") from error
        if "error" in answer:
            raise CheckerUnavailable(f"mypy failed: {answer['error']}")
        problems = [TypeProblem(line - 1, max(col - 1, 0), code, message) for line, col, code, message in answer["errors"]]
        return problems if config is not None else [p for p in problems if not imprecise_inference(p)]

    def close(self) -> None:
        """End the worker."""
        with self._lock:
            if self._process is not None:
                self._process.close()
                self._process = None


# -- TypeScript ----------------------------------------------------------------------------------------

def find_tsserver(path: str | None, workspace: Path | None) -> Path | None:
    """tsserver.js: $CODEASSIST_TYPESCRIPT (a typescript package folder), the workspace's
    node_modules, or the TypeScript of a `tsc`/`tsserver` on PATH."""
    candidates: list[Path] = []
    configured = os.environ.get("CODEASSIST_TYPESCRIPT")
    if configured:
        candidates.append(Path(configured) / "lib" / "tsserver.js")
    for folder in _folders_up(path, workspace):
        candidates.append(folder / "node_modules" / "typescript" / "lib" / "tsserver.js")
    for command in ("tsserver", "tsc"):
        found = shutil.which(command)
        if found:
            candidates.append(Path(found).resolve().parent.parent / "lib" / "tsserver.js")
    return next((c for c in candidates if c.is_file()), None)


def _utf16_length(text: str) -> int:
    return len(text.encode("utf-16-le")) // 2


class TsServerChecker:
    """tsserver (one warm process per TypeScript install): the text is opened in memory at the
    file's path, so the workspace's tsconfig.json and imports apply and nothing is written."""

    name = "tsc"

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._servers: dict[Path, _Process] = {}
        self._open: dict[tuple[Path, str], str] = {}
        self._seq = 0

    def config_key(self, path: str | None, workspace: Path | None) -> str:
        for folder in _folders_up(path, workspace):
            config = folder / "tsconfig.json"
            if config.is_file():
                try:
                    return f"{config}:{config.stat().st_mtime_ns}"
                except OSError:
                    return str(config)
        return ""

    def _server(self, tsserver: Path) -> _Process:
        process = self._servers.get(tsserver)
        if process is not None and process.alive():
            return process
        node = shutil.which("node")
        if node is None:
            raise CheckerUnavailable("Node.js is not on PATH")
        state_dir().mkdir(parents=True, exist_ok=True)
        try:
            process = _Process([node, str(tsserver), "--disableAutomaticTypingAcquisition", "--suppressDiagnosticEvents"],
                               cwd=str(state_dir()))
        except OSError as error:
            raise CheckerUnavailable(f"tsserver could not start ({error})") from error
        self._servers[tsserver] = process
        self._open = {key: value for key, value in self._open.items() if key[0] != tsserver}
        return process

    def _request(self, process: _Process, command: str, arguments: dict[str, object], deadline: float,
                 *, response: bool = True) -> object:
        self._seq += 1
        seq = self._seq
        process.send(json.dumps({"seq": seq, "type": "request", "command": command, "arguments": arguments}).encode() + b"\n")
        if not response:
            return None
        while True:
            header = process.readline(deadline).strip()
            if not header.lower().startswith(b"content-length:"):
                continue
            size = int(header.split(b":", 1)[1])
            process.readline(deadline)  # the blank line
            message = json.loads(process.read(size, deadline))
            if message.get("type") == "response" and message.get("request_seq") == seq:
                if not message.get("success", False):
                    raise CheckerUnavailable(f"tsserver: {message.get('message', 'request failed')}")
                return message.get("body")

    def errors(self, text: str, *, path: str | None, workspace: Path | None, language_id: str = "typescript",
               timeout: float = DEFAULT_TIMEOUT_S) -> list[TypeProblem]:
        tsserver = find_tsserver(path, workspace)
        if tsserver is None:
            raise CheckerUnavailable("TypeScript was not found (no node_modules/typescript, no tsc on PATH)")
        kind = TS_LANGUAGES.get(language_id, "TS")
        if path:
            file = str(Path(path).resolve())
        else:  # an unsaved buffer: a scratch file name in our folder (never created)
            file = str(state_dir() / "ts-scratch" / ("untitled.tsx" if kind == "TSX" else "untitled.ts"))
        deadline = time.monotonic() + timeout
        with self._lock:
            process = self._server(tsserver)
            try:
                key = (tsserver, file)
                previous = self._open.get(key)
                if previous is None:
                    root = str(workspace) if workspace is not None else str(Path(file).parent)
                    self._request(process, "open", {"file": file, "fileContent": text, "scriptKindName": kind,
                                                    "projectRootPath": root}, deadline, response=False)
                elif previous != text:
                    lines = previous.split("\n")
                    self._request(process, "change", {"file": file, "line": 1, "offset": 1, "endLine": len(lines),
                                                      "endOffset": _utf16_length(lines[-1]) + 1, "insertString": text},
                                  deadline, response=False)
                self._open[key] = text
                found = []
                for command in ("syntacticDiagnosticsSync", "semanticDiagnosticsSync"):
                    body = self._request(process, command, {"file": file}, deadline)
                    found += list(body) if isinstance(body, list) else []
            except (CheckerUnavailable, ValueError) as error:
                process.close()
                self._servers.pop(tsserver, None)
                raise CheckerUnavailable(f"tsserver {error}") from error
        problems = []
        for diagnostic in found:
            if not isinstance(diagnostic, dict) or diagnostic.get("category", "error") != "error":
                continue
            start = diagnostic.get("start") or {}
            problems.append(TypeProblem(int(start.get("line", 1)) - 1, int(start.get("offset", 1)) - 1,
                                        str(diagnostic.get("code", "")), str(diagnostic.get("text", ""))))
        return problems

    def close(self) -> None:
        """End every tsserver."""
        with self._lock:
            for process in self._servers.values():
                process.close()
            self._servers.clear()
            self._open.clear()


# -- the stage ---------------------------------------------------------------------------------------

_checkers: dict[str, Checker] = {}
_checkers_lock = threading.Lock()
_results: OrderedDict[str, list[TypeProblem]] = OrderedDict()
_results_lock = threading.Lock()


def checker_for(language_id: str | None) -> Checker | None:
    """The checker of a language (one shared instance), None when the stage does not apply to it."""
    if language_id in PYTHON_LANGUAGES:
        name = "mypy"
    elif language_id in TS_LANGUAGES:
        name = "tsc"
    else:
        return None
    with _checkers_lock:
        if name not in _checkers:
            _checkers[name] = MypyChecker() if name == "mypy" else TsServerChecker()
        return _checkers[name]


def applies_to(language_id: str | None) -> bool:
    """Whether the type-check stage has a checker for this language."""
    return language_id in PYTHON_LANGUAGES or language_id in TS_LANGUAGES


def shutdown() -> None:
    """End the checker processes (server exit, tests)."""
    with _checkers_lock:
        for checker in _checkers.values():
            close = getattr(checker, "close", None)
            if close is not None:
                close()
        _checkers.clear()
    with _results_lock:
        _results.clear()


def check_text(text: str, *, language_id: str, path: str | None = None, workspace: Path | None = None,
               timeout: float = DEFAULT_TIMEOUT_S) -> list[TypeProblem]:
    """The errors of a whole text (cached by content); raises CheckerUnavailable."""
    checker = checker_for(language_id)
    if checker is None:
        raise CheckerUnavailable(f"no type checker for {language_id}")
    workspace = workspace if workspace is not None else find_workspace(path)
    key = hashlib.sha256("\0".join([checker.name, language_id, checker.config_key(path, workspace), path or "",
                                    str(workspace or ""), text]).encode("utf-8", "surrogatepass")).hexdigest()
    with _results_lock:
        if key in _results:
            _results.move_to_end(key)
            return list(_results[key])
    problems = [p for p in checker.errors(text, path=path, workspace=workspace, language_id=language_id, timeout=timeout)
                if p.code not in IGNORED_CODES]
    with _results_lock:
        _results[key] = problems
        while len(_results) > RESULT_CACHE_ENTRIES:
            _results.popitem(last=False)
    return list(problems)


def _normalized(message: str) -> str:
    """A message with what an edit shifts (line numbers) taken out."""
    return re.sub(r"\bline \d+", "line N", message.strip())


def changed_lines(before: str, after: str) -> tuple[int, int, int]:
    """(first changed line, end of the changed lines before, end after): lines outside are equal."""
    old, new = before.split("\n"), after.split("\n")
    head = 0
    while head < min(len(old), len(new)) and old[head] == new[head]:
        head += 1
    tail = 0
    while tail < min(len(old), len(new)) - head and old[len(old) - 1 - tail] == new[len(new) - 1 - tail]:
        tail += 1
    return head, len(old) - tail, len(new) - tail


def introduced(before_text: str, after_text: str, before: list[TypeProblem],
               after: list[TypeProblem]) -> list[TypeProblem]:
    """The errors of `after` that `before` did not have, matched by message and a shifted line."""
    head, old_end, new_end = changed_lines(before_text, after_text)
    shift = new_end - old_end
    outside: Counter[tuple[int, str, str]] = Counter()
    inside: Counter[tuple[str, str]] = Counter()
    for problem in before:
        if head <= problem.line < old_end:
            inside[(problem.code, _normalized(problem.message))] += 1
        else:
            outside[(problem.line, problem.code, _normalized(problem.message))] += 1
    new = []
    for problem in after:
        message = _normalized(problem.message)
        if head <= problem.line < new_end:
            key2 = (problem.code, message)
            if inside[key2] > 0:
                inside[key2] -= 1
                continue
        else:
            line = problem.line if problem.line < head else problem.line - shift
            key = (line, problem.code, message)
            if outside[key] > 0:
                outside[key] -= 1
                continue
        new.append(problem)
    return new


def check_edit(before: str, after: str, *, language_id: str | None, path: str | None = None,
               workspace: Path | None = None, timeout: float = DEFAULT_TIMEOUT_S) -> TypeCheck:
    """Type-check the file before and after an edit: the errors the edit introduces (stage 3)."""
    started = time.perf_counter()
    checker = checker_for(language_id)
    if checker is None or language_id is None:
        return TypeCheck(False, reason=f"no type checker for {language_id or 'this language'}")
    try:
        old = check_text(before, language_id=language_id, path=path, workspace=workspace, timeout=timeout)
        new = check_text(after, language_id=language_id, path=path, workspace=workspace, timeout=timeout)
    except CheckerUnavailable as error:
        log.info("type check not run: %s", error)
        return TypeCheck(False, checker.name, reason=str(error), ms=(time.perf_counter() - started) * 1000)
    return TypeCheck(True, checker.name, tuple(introduced(before, after, old, new)),
                     (time.perf_counter() - started) * 1000, before=tuple(old), after=tuple(new))


_warming: set[tuple[str, str]] = set()


def warm(language_id: str | None, *, path: str | None = None, workspace: Path | None = None) -> bool:
    """Start the checker of a language in the background, once per checker and folder (cheap to call
    on every code-action request); False when the language has none."""
    if not applies_to(language_id) or language_id is None:
        return False
    checker = checker_for(language_id)
    assert checker is not None
    key = (checker.name, os.path.dirname(path) if path else "")
    if key in _warming:
        return True
    _warming.add(key)
    sample = "x: int = 1\n" if checker.name == "mypy" else "const x: number = 1;\n"

    def run() -> None:
        try:
            check_text(sample, language_id=language_id, path=path, workspace=workspace, timeout=120.0)
        except CheckerUnavailable as error:
            log.info("type checker not warmed: %s", error)

    threading.Thread(target=run, name=f"warm-{checker.name}", daemon=True).start()
    return True
