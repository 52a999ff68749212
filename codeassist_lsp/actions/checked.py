"""Checked edits: the type-check stage applied to action edits, and quick fixes that are re-checked.

Every edit an action offers for Python or TypeScript is type-checked against the file before it
(verify/typecheck.py); one that adds errors is not offered. A quick fix is also checked against its
diagnostic: the checker that reproduces the diagnostic on the file before the edit (tree-sitter for
syntax errors, our security scan for our findings, the function's doctests in the sandbox for a
failing doctest, mypy/tsserver for type errors, undefined names and wrong arity) runs again on the file
after it, and the fix is offered only when the diagnostic is gone. A diagnostic none of these
reproduces (another linter's rule, a runtime error) cannot be checked: its fix is offered when it
passes everything else, marked "not verified".
"""

from __future__ import annotations

import asyncio
import re
from typing import Any

import attrs

from codeassist_lsp.actions.edits import Replacement
from codeassist_lsp.context.languages import Language, parse
from codeassist_lsp.verify import typecheck
from codeassist_lsp.verify.typecheck import TypeCheck, TypeProblem, changed_lines, find_workspace, introduced

@attrs.frozen
class FixCheck:
    """Whether a fix removes its diagnostic and adds no error."""

    verdict: str  # "fixed" | "not-fixed" | "new-errors" | "unverified"
    checker: str = ""
    """The checker that reproduced the diagnostic ("syntax", "security", "mypy", "tsc"; "" when none)."""
    reason: str = ""
    type_check: TypeCheck | None = None

    @property
    def offered(self) -> bool:
        """Whether the fix may be offered."""
        return self.verdict in ("fixed", "unverified")


def path_of(uri: str) -> str | None:
    """The file path of a document URI (None for an unsaved buffer)."""
    if not uri.startswith("file:"):
        return None
    from pygls.uris import to_fs_path

    return to_fs_path(uri)


def language_id(language: Language | None) -> str | None:
    """The checker's language id of a tree-sitter language."""
    return language.name if language is not None else None


def type_check_edit(text: str, replacement: Replacement, language: Language | None, *, uri: str = "",
                    path: str | None = None) -> TypeCheck:
    """The type-check stage for one edit of a document (blocking: call it off the event loop).

    This is what best-of-N calls per candidate: drop a candidate whose check has `new_errors`.
    """
    path = path if path is not None else path_of(uri)
    return typecheck.check_edit(text, replacement.apply(text), language_id=language_id(language), path=path,
                                workspace=find_workspace(path))


def candidate_filter(before: str, after: str, language_id: str | None, path: str | None) -> str | None:
    """Best-of-N's filter (blocking): why a candidate is rejected ("type error: ..."), None to keep it.

    A check that could not run keeps the candidate: "not run" never blocks.
    """
    if not typecheck.applies_to(language_id):
        return None
    typed = typecheck.check_edit(before, after, language_id=language_id, path=path or None,
                                 workspace=find_workspace(path or None))
    return f"type error: {typed.summary()}" if typed.ran and typed.new_errors else None


# -- the diagnostic, before and after ---------------------------------------------------------------

def _lines(text: str, start: int, end: int) -> tuple[int, int]:
    """The 0-based lines [first, last] that [start, end) touches."""
    first = text.count("\n", 0, start)
    last = text.count("\n", 0, max(start, end - 1)) if end > start else first
    return first, last


def _mapped(before: str, after: str, first: int, last: int) -> tuple[int, int]:
    """Lines [first, last] of `before` as lines of `after`: shifted, or widened to the edited lines."""
    head, old_end, new_end = changed_lines(before, after)
    shift = new_end - old_end

    def one(line: int) -> tuple[int, int]:
        if line < head:
            return line, line
        if line >= old_end:
            return line + shift, line + shift
        return head, max(head, new_end - 1)

    lo, hi = one(first), one(last)
    return min(lo[0], hi[0]), max(lo[1], hi[1])


def _syntax_error_lines(language: Language, text: str) -> list[int] | None:
    """The lines of tree-sitter's ERROR and missing nodes."""
    tree = parse(language, text.encode("utf-8"))
    if tree is None:
        return None
    lines = []
    stack = [tree.root_node]
    while stack:
        node = stack.pop()
        if node.type == "ERROR" or node.is_missing:
            lines.append(node.start_point[0])
        elif node.has_error:
            stack.extend(node.children)
    return lines


_QUOTED = re.compile(r"[\"'`\u2018\u2019\u201c\u201d]([^\"'`\u2018\u2019\u201c\u201d]{1,80})[\"'`\u2018\u2019\u201c\u201d]")


def _words(message: str) -> str:
    return re.sub(r"[\"'`\u2018\u2019\u201c\u201d]", '"', re.sub(r"\s+", " ", message.strip().lower()))


def same_problem(diagnostic: str, problem: TypeProblem) -> bool:
    """Whether a checker's error is the diagnostic (another tool may word it differently): the same
    words, or a name both quote (pyflakes' "undefined name 'totl'" and mypy's 'Name "totl" is not defined')."""
    if _words(diagnostic) == _words(problem.message) or (problem.code and f"[{problem.code}]" in diagnostic):
        return True
    theirs = {q.strip() for q in _QUOTED.findall(diagnostic)}
    ours = {q.strip() for q in _QUOTED.findall(problem.message)}
    return bool(theirs & ours)


# How a failing doctest is reported (pytest --doctest-modules, doctest's own "Failed example:" output).
_DOCTEST = re.compile(r"doctest|Failed example|\bExpected:\s.*\bGot:", re.IGNORECASE | re.DOTALL)


def _doctest_results(before: str, after: str, line: int) -> tuple[tuple[int, int], tuple[int, int]] | None:
    """(passed, run) of the doctests of the function around `line`, before and after the edit (the
    examples as they were written before it: a fix must not pass by changing them); None without any."""
    import ast

    from codeassist_lsp.verify import execution

    try:
        module = ast.parse(before)
    except (SyntaxError, ValueError):
        return None
    functions = [n for n in ast.walk(module) if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))
                 and n.lineno - 1 <= line <= (n.end_lineno or n.lineno) - 1]
    if not functions:
        return None
    function = max(functions, key=lambda n: n.lineno)  # the innermost
    docstring = ast.get_docstring(function, clean=False) or ""
    examples = tuple(e for e in execution.find_examples(docstring, function.name) if e.kind == "doctest")
    if not examples:
        return None
    plan = execution.TestPlan(function.name, examples)
    old, new = execution.run_tests(plan, before), execution.run_tests(plan, after)
    return (old.passed, old.run), (new.passed, new.run)


def check_fix(text: str, replacement: Replacement, *, message: str, start: int, end: int,
              language: Language | None, path: str | None) -> FixCheck:
    """Re-run the checker that reproduces the diagnostic [start, end) `message` after the edit."""
    after = replacement.apply(text)
    first, last = _lines(text, start, end)
    lo, hi = _mapped(text, after, first, last)
    workspace = find_workspace(path)
    typed = typecheck.check_edit(text, after, language_id=language_id(language), path=path, workspace=workspace) \
        if typecheck.applies_to(language_id(language)) else None
    if typed is not None and typed.ran and typed.new_errors:
        return FixCheck("new-errors", typed.checker, f"the fix adds errors ({typed.summary()})", typed)
    # Syntax errors: tree-sitter on the diagnostic's lines.
    if language is not None:
        old_lines = _syntax_error_lines(language, text)
        if old_lines and any(first <= line <= last for line in old_lines):
            new_lines = _syntax_error_lines(language, after) or []
            if any(lo <= line <= hi for line in new_lines) or len(new_lines) >= len(old_lines):
                return FixCheck("not-fixed", "syntax", "the syntax error is still there", typed)
            return FixCheck("fixed", "syntax", "the syntax error is gone", typed)
    # Our security findings.
    if language is not None:
        from codeassist_lsp.verify import scan_document

        found = [f for f in scan_document(text, language) if first <= f.line <= last
                 and (message.startswith(f.message) or f.rule_id in message)]
        if found:
            rules = {f.rule_id for f in found}
            still = [f for f in scan_document(after, language) if lo <= f.line <= hi and f.rule_id in rules]
            if still:
                return FixCheck("not-fixed", "security", f"{still[0].rule_id} is still reported", typed)
            return FixCheck("fixed", "security", f"{', '.join(sorted(rules))} no longer reported", typed)
    # A failing doctest: the function's doctests, run in the sandbox before and after.
    if language is not None and language.name == "python" and _DOCTEST.search(message):
        doctests = _doctest_results(text, after, first)
        if doctests is not None:
            (old_passed, old_run), (new_passed, new_run) = doctests
            if old_passed < old_run:
                if new_passed < new_run:
                    return FixCheck("not-fixed", "doctest", f"{new_run - new_passed} of {new_run} doctests still fail",
                                    typed)
                return FixCheck("fixed", "doctest", f"{new_run}/{new_run} doctests pass", typed)
    # Type errors, undefined names, wrong arity: mypy / tsserver.
    if typed is not None and typed.ran:
        matched = [p for p in typed.before if first <= p.line <= last and same_problem(message, p)]
        if matched:
            # The matched errors of before that are still in after (by message and shifted line).
            gone = introduced(after, text, list(typed.after), matched)
            if len(gone) < len(matched):
                kept = [p for p in matched if p not in gone]
                return FixCheck("not-fixed", typed.checker, f"{typed.checker} still reports: {kept[0].describe()}", typed)
            return FixCheck("fixed", typed.checker, f"{typed.checker} no longer reports it", typed)
    checked = ["syntax", "security"] + ([typed.checker] if typed is not None and typed.ran else [])
    if language is not None and language.name == "python" and _DOCTEST.search(message):
        checked.append("doctest")
    return FixCheck("unverified", "", f"none of codeassist's checkers ({', '.join(checked)}) reproduces this "
                    "diagnostic, so its fix is not verified", typed)


@attrs.frozen
class Gate:
    """What the checks decided about an action's edit."""

    offered: bool
    reason: str = ""
    notice: str = ""
    """Said to the user with an offered edit (a fix that could not be verified)."""
    type_check: TypeCheck | None = None
    fix: FixCheck | None = None


def gate_edit(target: Any, text: str, replacement: Replacement, language: Language | None, *,
              path: str | None) -> Gate:
    """The checks of one action edit (blocking): the type check, and for a fix its diagnostic."""
    if target.action == "fix":
        fix = check_fix(text, replacement, message=target.message, start=target.start, end=target.end,
                        language=language, path=path)
        if fix.verdict == "new-errors":
            return Gate(False, f"the model's fix did not type-check: {fix.reason}", type_check=fix.type_check, fix=fix)
        if fix.verdict == "not-fixed":
            return Gate(False, f"the model's fix does not remove the problem ({fix.reason})", type_check=fix.type_check,
                        fix=fix)
        notice = f"fix not verified: {fix.reason}" if fix.verdict == "unverified" else ""
        return Gate(True, fix.reason, notice, fix.type_check, fix)
    if not typecheck.applies_to(language_id(language)):
        return Gate(True)
    typed = type_check_edit(text, replacement, language, path=path)
    if typed.ran and typed.new_errors:
        return Gate(False, f"the model's edit did not type-check ({typed.summary()})", type_check=typed)
    return Gate(True, "" if typed.ran else typed.summary(), type_check=typed)


async def gate_outcome(target: Any, view: Any, replacement: Replacement, *, path: str | None) -> Gate:
    """gate_edit off the event loop (mypy answers in tens of ms warm, a cold start takes a second)."""
    path = path or path_of(view.uri)
    return await asyncio.to_thread(gate_edit, target, view.text, replacement, view.language, path=path)
