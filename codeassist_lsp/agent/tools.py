"""The agent's tools: what the model may do to a workspace, each bounded, each answering short text.

Every tool works on a `StagedWorkspace`: the files it lists and reads are the workspace's source files
(gitignore and the policy applied), an edit is staged in memory and never written, and the tests run on
a sandboxed scratch copy with the staged edits applied. A tool the model calls wrongly answers with
what was wrong (a `ToolError`), so the model can try again within its step budget.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import attrs

from codeassist_lsp.actions.edits import Replacement, minimal, verify_replacement
from codeassist_lsp.agent.workspace import StagedWorkspace
from codeassist_lsp.context.symbols import Definition, symbols_of_text
from codeassist_lsp.errors import CodeassistError
from codeassist_lsp.verify import SecurityPolicy

# Runs the workspace's tests with the staged edits: (workspace) -> (passed, summary, output tail).
TestRunner = Callable[[StagedWorkspace], tuple[bool, str, str]]
# Whether the policy lets the agent see and change a workspace-relative path.
PathFilter = Callable[[str], bool]


class ToolError(CodeassistError):
    """A tool call the model got wrong (unknown file, text not found, bad arguments); the model is told."""


@attrs.frozen
class ToolLimits:
    """How much one tool call may show or do (a small model's context is a few thousand tokens)."""

    max_list_files: int = 60
    max_read_bytes: int = 4000
    max_search_hits: int = 20
    max_symbol_files: int = 300
    """Files parsed for a symbol search when there is no workspace index."""
    max_edit_bytes: int = 16000
    """Longest text one edit may write (old and new text together)."""
    max_edited_files: int = 5
    max_test_runs: int = 3
    max_output_chars: int = 1500
    """Test output shown to the model (its tail: the failures and the summary)."""


@attrs.frozen
class ToolResult:
    """What a tool answers the model; `finished` ends the loop."""

    text: str
    ok: bool = True
    finished: bool = False


@attrs.frozen
class ToolSpec:
    """A tool as the chat template's `tools` describe it (JSON schema of its arguments)."""

    name: str
    description: str
    parameters: dict[str, Any]

    def schema(self) -> dict[str, Any]:
        """The OpenAI-style function description chat templates render."""
        return {"type": "function", "function": {"name": self.name, "description": self.description,
                                                 "parameters": self.parameters}}


def _object(properties: dict[str, Any], required: tuple[str, ...] = ()) -> dict[str, Any]:
    return {"type": "object", "properties": properties, "required": list(required)}


TOOLS: dict[str, ToolSpec] = {spec.name: spec for spec in (
    ToolSpec("list_files", "List the workspace's source files (with their line counts), optionally only under a folder.",
             _object({"folder": {"type": "string", "description": "A folder relative to the workspace root; empty for all."}})),
    ToolSpec("read_file", "Read a file, or a range of its lines, with line numbers.",
             _object({"path": {"type": "string", "description": "The file, relative to the workspace root."},
                      "start_line": {"type": "integer", "description": "First line to read (1-based)."},
                      "end_line": {"type": "integer", "description": "Last line to read (inclusive)."}}, ("path",))),
    ToolSpec("search", "Find text in the workspace's files, or where a function, class or variable is defined.",
             _object({"query": {"type": "string", "description": "The text, or the name of the definition."},
                      "kind": {"type": "string", "enum": ["text", "symbol"],
                               "description": "text: lines that contain the query; symbol: definitions named so."}},
                     ("query",))),
    ToolSpec("propose_edit", "Change a file: replace old_text (copied exactly from the file, a few whole lines, "
             "unique in the file) with new_text. The edit is kept for review, not written.",
             _object({"path": {"type": "string", "description": "The file, relative to the workspace root."},
                      "old_text": {"type": "string", "description": "The exact lines to replace."},
                      "new_text": {"type": "string", "description": "The lines that replace them."}},
                     ("path", "old_text", "new_text"))),
    ToolSpec("run_tests", "Run the workspace's tests with the proposed edits applied; answers the summary and failures.",
             _object({})),
    ToolSpec("finish", "End the task: the proposed edits are done (or nothing should change).",
             _object({"summary": {"type": "string", "description": "One sentence: what was changed and why."}},
                     ("summary",))),
)}


def tool_schemas() -> list[dict[str, Any]]:
    """Every tool in the form a chat template's `tools` variable takes."""
    return [spec.schema() for spec in TOOLS.values()]


def check_arguments(spec: ToolSpec, arguments: dict[str, Any]) -> dict[str, Any]:
    """The arguments the schema knows, with numbers given as text made numbers; ToolError when one is missing."""
    properties = spec.parameters["properties"]
    checked: dict[str, Any] = {}
    for key, value in arguments.items():
        if key not in properties or value is None:
            continue  # small models add keys of their own; ignoring them is safe
        kind = properties[key]["type"]
        if kind == "integer":
            try:
                value = int(str(value).strip())
            except ValueError:
                raise ToolError(f"{spec.name}: {key} must be a whole number, not {value!r}.") from None
        elif kind == "string" and not isinstance(value, str):
            value = str(value)
        allowed = properties[key].get("enum")
        if allowed and value not in allowed:
            raise ToolError(f"{spec.name}: {key} must be one of {', '.join(allowed)}, not {value!r}.")
        checked[key] = value
    missing = [key for key in spec.parameters["required"] if key not in checked]
    if missing:
        raise ToolError(f"{spec.name} needs {', '.join(missing)}.")
    return checked


def may_edit_tests(instruction: str) -> bool:
    """Whether the instruction asks for the tests themselves to change (else the tests judge the change)."""
    return bool(re.search(r"\btests?\b.*\b(update|change|rewrite|fix the test code)\b", instruction, re.I))


def is_test_file(path: str) -> bool:
    """Test files by name: test_*.py, *_test.py, *.test.js/ts, anything under a tests/ folder."""
    return bool(re.search(r"(^|/)(test_[^/]*|[^/]*_test)\.py$|\.test\.m?[jt]s$|(^|/)tests?/", path))


class Toolbox:
    """The tools over one staged workspace, with their limits."""

    def __init__(self, workspace: StagedWorkspace, *, limits: ToolLimits | None = None,
                 policy: SecurityPolicy | None = None, allows: PathFilter | None = None,
                 index: Any = None, tests: TestRunner | None = None, edit_tests: bool = False) -> None:
        """`index`: a WorkspaceIndex for symbol search (else the files are parsed); `tests`: None when the
        workspace has none; `edit_tests`: whether test files may be changed."""
        self.workspace = workspace
        self.limits = limits or ToolLimits()
        self.policy = policy or SecurityPolicy()
        self._allows = allows or (lambda path: True)
        self.index = index
        self._tests = tests
        self.edit_tests = edit_tests
        self.test_runs = 0
        self.last_tests_passed: bool | None = None
        """The last run_tests result, None when the edits changed after it (or it never ran)."""
        self.summary = ""
        self._visible: list[str] | None = None

    def call(self, name: str, arguments: dict[str, Any]) -> ToolResult:
        """Run one tool; a mistake of the model's is answered as an error text, not raised."""
        spec = TOOLS.get(name)
        if spec is None:
            return ToolResult(f"error: there is no tool {name!r}; the tools are {', '.join(TOOLS)}.", ok=False)
        try:
            checked = check_arguments(spec, arguments)
            result: ToolResult = getattr(self, name)(**checked)
        except ToolError as error:
            return ToolResult(f"error: {error.message}", ok=False)
        except (OSError, UnicodeDecodeError) as error:  # a file that vanished or is not UTF-8: the model can go on
            return ToolResult(f"error: {name} could not read a file ({error}).", ok=False)
        return result

    # -- what the model sees --------------------------------------------------------------------

    def files(self) -> list[str]:
        """The files the model may see: the workspace's source files the policy allows."""
        if self._visible is None:  # the agent never adds or removes files, so once per run
            self._visible = [path for path in self.workspace.files() if self._allows(path)]
        return list(self._visible)

    def _known(self, path: str) -> str:
        path = path.strip().removeprefix("./").replace("\\", "/")
        files = self.files()
        if path in files:
            return path
        root = self.workspace.root.as_posix() + "/"
        if path.startswith(root) and path[len(root):] in files:  # an absolute path the model copied
            return path[len(root):]
        close = difflib.get_close_matches(path, files, n=3, cutoff=0.6)
        hint = f" Did you mean {', '.join(close)}?" if close else " Call list_files to see them."
        raise ToolError(f"{path!r} is not a source file of the workspace.{hint}")

    def signatures(self, path: str, limit: int = 12) -> list[str]:
        """The file's top-level and member signatures, for summaries instead of whole files."""
        language = self.workspace.language(path)
        if language is None:
            return []
        table = symbols_of_text(language, self.workspace.read(path), path)
        return [f"{d.line + 1}: {d.signature.strip()}" for d in table.definitions[:limit]]

    # -- the tools ------------------------------------------------------------------------------

    def list_files(self, folder: str = "") -> ToolResult:
        """Source files (with line counts), at most `max_list_files`."""
        prefix = folder.strip().strip("/").removeprefix("./")
        files = [f for f in self.files() if not prefix or prefix in (".", "") or f.startswith(prefix + "/")]
        if not files:
            return ToolResult(f"no source files under {folder!r}." if prefix else "the workspace has no source files.")
        shown = files[:self.limits.max_list_files]
        lines = [f"{path} ({self.workspace.read(path).count(chr(10))} lines)" for path in shown]
        more = f"\n... and {len(files) - len(shown)} more (give a folder)" if len(files) > len(shown) else ""
        return ToolResult("\n".join(lines) + more)

    def read_file(self, path: str, start_line: int = 1, end_line: int | None = None) -> ToolResult:
        """Numbered lines of a file (its staged text), cut at `max_read_bytes`."""
        path = self._known(path)
        lines = self.workspace.read(path).splitlines()
        start = max(1, start_line)
        end = min(len(lines), end_line if end_line is not None and end_line >= start else len(lines))
        if start > len(lines):
            return ToolResult(f"{path} has only {len(lines)} lines.", ok=False)
        out: list[str] = []
        size, last = 0, start - 1
        for number in range(start, end + 1):
            line = f"{number}| {lines[number - 1]}"
            if size + len(line) + 1 > self.limits.max_read_bytes and out:
                break
            out.append(line)
            size += len(line) + 1
            last = number
        note = (f"\n[cut at line {last} of {len(lines)}; read on with start_line={last + 1}]"
                if last < end else "")
        return ToolResult(f"{path} lines {start}-{last} of {len(lines)}:\n" + "\n".join(out) + note)

    def search(self, query: str, kind: str = "text") -> ToolResult:
        """Lines containing `query`, or the definitions named `query` (at most `max_search_hits`)."""
        query = query.strip()
        if not query:
            raise ToolError("search needs a query.")
        if kind == "symbol":
            return self._symbols(query.split("(")[0].split(".")[-1].strip())
        hits: list[str] = []
        total = 0
        for path in self.files():
            for number, line in enumerate(self.workspace.read(path).splitlines(), 1):
                if query in line:
                    total += 1
                    if len(hits) < self.limits.max_search_hits:
                        hits.append(f"{path}:{number}: {line.strip()[:160]}")
        if not hits:
            return ToolResult(f"no line contains {query!r}.")
        more = f"\n... {total - len(hits)} more hits not shown" if total > len(hits) else ""
        return ToolResult("\n".join(hits) + more)

    def _symbols(self, name: str) -> ToolResult:
        found = self._definitions(name)
        if not found:
            return ToolResult(f"no definition named {name!r}; try kind=text.")
        lines = [f"{path}:{d.line + 1}: {d.signature.strip()}"
                 for path, d in found[:self.limits.max_search_hits]]
        return ToolResult("\n".join(lines))

    def _definitions(self, name: str) -> list[tuple[str, Definition]]:
        visible = self.files()
        # The index knows the files on disk; a file with a staged edit is parsed again as staged.
        staged = set(self.workspace.changed())
        found: list[tuple[str, Definition]] = []
        if self.index is not None:
            for definition in self.index.lookup(name):
                try:
                    relative = Path(definition.path).resolve().relative_to(self.workspace.root).as_posix()
                except ValueError:
                    continue
                if relative in visible and relative not in staged:
                    found.append((relative, definition))
            parse = sorted(staged & set(visible))
        else:
            parse = visible[:self.limits.max_symbol_files]
        for path in parse:
            language = self.workspace.language(path)
            if language is not None:
                found.extend((path, d) for d in symbols_of_text(language, self.workspace.read(path), path).named(name))
        return found

    def propose_edit(self, path: str, old_text: str, new_text: str) -> ToolResult:
        """Stage old_text -> new_text in `path` when the result passes the syntax and security checks."""
        path = self._known(path)
        if is_test_file(path) and not self.edit_tests:
            raise ToolError(f"{path} is a test file: the tests judge the change, so they stay as they are.")
        if len(old_text) + len(new_text) > self.limits.max_edit_bytes:
            raise ToolError(f"the edit is too long ({len(old_text) + len(new_text)} characters, at most "
                            f"{self.limits.max_edit_bytes}); change a smaller part at a time.")
        edited = set(self.workspace.changed())
        if path not in edited and len(edited) >= self.limits.max_edited_files:
            raise ToolError(f"at most {self.limits.max_edited_files} files may change in one task.")
        current = self.workspace.read(path)
        start, end, replacement = locate(current, old_text, new_text)
        updated = current[:start] + replacement + current[end:]
        if updated == current:
            raise ToolError("new_text is the same as old_text; nothing changed.")
        change = minimal(current, Replacement(0, len(current), updated))
        checked = verify_replacement(current, change, self.workspace.language(path), self.policy)
        if not checked.accepted:
            raise ToolError(f"edit refused, {path} is unchanged: it does not pass the checks ({checked.reason}).")
        self.workspace.stage(path, updated)
        self.last_tests_passed = None
        first = current.count("\n", 0, start) + 1
        shown = updated[start:start + len(replacement)].splitlines()[:12]
        preview = "\n".join(f"{first + i}| {line}" for i, line in enumerate(shown))
        return ToolResult(f"edit to {path} staged (not written; checks passed). Lines now:\n{preview}")

    def run_tests(self) -> ToolResult:
        """The workspace's tests on a scratch copy with the staged edits, at most `max_test_runs` times."""
        if self._tests is None:
            return ToolResult("the workspace has no tests to run.", ok=False)
        if self.test_runs >= self.limits.max_test_runs:
            raise ToolError(f"the tests already ran {self.test_runs} times (the most for one task).")
        self.test_runs += 1
        passed, summary, output = self._tests(self.workspace)
        self.last_tests_passed = passed
        if passed:
            return ToolResult(f"tests passed: {summary}")
        tail = output[-self.limits.max_output_chars:]
        return ToolResult(f"tests FAILED: {summary}\n{tail}", ok=False)

    def finish(self, summary: str) -> ToolResult:
        """End the task with the model's one-sentence summary."""
        self.summary = summary.strip()[:300]
        staged = sorted(self.workspace.changed())
        return ToolResult(f"finished; staged files: {', '.join(staged) or 'none'}", finished=True)


def locate(text: str, old: str, new: str) -> tuple[int, int, str]:
    """(start, end, replacement) for replacing `old` in `text`: exact and unique, else the same lines
    ignoring indentation and trailing spaces (small models re-indent what they copy); ToolError otherwise."""
    if not old.strip():
        raise ToolError("old_text is empty: copy the lines to replace from read_file (without the line numbers).")
    if _numbered(old):  # copied from read_file's output, numbers and all
        old, new = _without_line_numbers(old), _without_line_numbers(new)
    count = text.count(old)
    if count == 1:
        start = text.index(old)
        return start, start + len(old), new
    if count > 1:
        raise ToolError(f"old_text occurs {count} times; include more lines around it so it is unique.")
    wanted = [line.strip() for line in old.strip("\n").splitlines()]
    lines = text.splitlines(keepends=True)
    matches = [i for i in range(len(lines) - len(wanted) + 1)
               if [line.strip() for line in lines[i:i + len(wanted)]] == wanted]
    if len(matches) != 1:
        close = difflib.get_close_matches(wanted[0], [line.strip() for line in lines], n=1, cutoff=0.6) if wanted else []
        hint = f" The closest line is {close[0]!r}." if close else ""
        problem = "not found" if not matches else f"found {len(matches)} times"
        raise ToolError(f"old_text {problem} in the file; copy it exactly (read_file shows it).{hint}")
    first = matches[0]
    start = sum(len(line) for line in lines[:first])
    end = start + sum(len(line) for line in lines[first:first + len(wanted)])
    # Re-indent the new text by what the model's copy lost or added on its first line.
    have = _indent(lines[first])
    gave = _indent(old.strip("\n").splitlines()[0])
    body = [have + line[len(gave):] if line.strip() and line.startswith(gave) else line
            for line in new.strip("\n").splitlines()]
    ending = "\n" if lines[first + len(wanted) - 1].endswith("\n") else ""
    return start, end, "\n".join(body) + ending


_NUMBERED = re.compile(r"^\s*\d+\| ?", re.M)


def _numbered(text: str) -> bool:
    lines = [line for line in text.splitlines() if line.strip()]
    return bool(lines) and all(_NUMBERED.match(line) for line in lines)


def _without_line_numbers(text: str) -> str:
    """Text copied from read_file with its "12| " prefixes removed (when every line has one)."""
    return _NUMBERED.sub("", text) if _numbered(text) else text


def _indent(line: str) -> str:
    return line[:len(line) - len(line.lstrip())]
