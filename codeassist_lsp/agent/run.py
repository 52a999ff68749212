"""The agent: an instruction and a scope in, one checked multi-file edit (or nothing) out.

Planning fits a small model: deterministic code first (rename, add a parameter, make a function or a
module's blocking functions async, extract a repeated expression, "fix the bug in x.js" while the tests
fail are parsed from the instruction and done on syntax trees), the model only for what needs judgment
(a JSON plan when the instruction is phrased otherwise; an extracted function's body, checked against
the expression it replaces; whole-file rewrites of a few small files, with sampled rewrites run against
the tests when the greedy one fails them; or with `agent.toolLoop` the model driving tools in loop.py).
Every staged file must pass the syntax and security checks, and the workspace's tests run in the
sandbox before (baseline) and after; the edit is offered only when they pass after it.
Nothing is written: the caller turns `AgentResult.changes` into one WorkspaceEdit.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
import shutil
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import attrs

from codeassist_lsp.actions.edits import CheckedEdit, Replacement, minimal, strip_fences, verify_replacement
from codeassist_lsp.actions.prompts import ActionPrompt, build_prompt
from codeassist_lsp.agent.loop import MAX_ANSWER_TOKENS, Generate, LoopBudget, ToolLoop
from codeassist_lsp.agent.extract import HelperRequest, extract_function, sandbox_runner
from codeassist_lsp.agent.refactor import (
    RefactorRefused, add_parameter, definitions, make_async, make_module_async, rename,
)
from codeassist_lsp.agent.tools import PathFilter, Toolbox, is_test_file, may_edit_tests
from codeassist_lsp.agent.workspace import StagedWorkspace
from codeassist_lsp.config import AgentSettings
from codeassist_lsp.verify import SecurityPolicy

log = logging.getLogger(__name__)

# Budgets: a small model on a CPU takes seconds per call.
MAX_MODEL_CALLS = 6
MAX_REWRITE_FILES = 3
MAX_REWRITE_LINES = 200
TIME_BUDGET_S = 600.0
TEST_OUTPUT_CHARS = 4000
SHOWN_FILE_LINES = 60  # a file the instruction names is shown whole to the tool loop up to this size
CONTEXT_LINES = 150  # other files shown whole to a rewrite, in lines (the rest as signatures)

# Sampled rewrites tried when the greedy one fails the workspace's tests (executed best-of-N).
REWRITE_SAMPLES = 4

Report = Callable[[str, int | None], None]
Sample = Callable[[ActionPrompt, int, int], Awaitable[list[str]]]
"""(prompt, max tokens, count) -> that many sampled answers (side by side where the engine can)."""

_RENAME = re.compile(r"\brename\s+(?:the\s+)?(?:function|class|method|constant|variable|helper)?\s*`?(\w+)`?"
                     r"(?:\s*\(\))?\s+(?:to|as|into)\s+`?(\w+)`?", re.I)
_ADD_PARAMETER = re.compile(
    r"\badd\s+(?:a|an|the)?\s*(?:new\s+)?(?:keyword\s+)?(?:parameter|argument|param)\s+`?(\w+)`?"
    r"(?:\s+with\s+(?:a\s+)?default(?:\s+value)?(?:\s+of)?\s+`?('[^']*'|\"[^\"]*\"|[^`\s,]+)`?)?"
    r"\s*,?\s*(?:to|in)\s+(?:the\s+)?(?:function\s+)?`?(\w+)`?", re.I)
_ASYNC = re.compile(
    r"\b(?:convert|make|turn|change|rewrite)\b[^.\n]*?\b(?:function|method|coroutine)?\s*`?(\w+)(?:\(\))?`?"
    r"(?:\s+in\s+[\w./-]+)?\s+(?:(?:to|into)\s+)?(?:an?\s+|use\s+)?async\b", re.I)
_EXTRACT = re.compile(r"\b(?:extract|pull|move|factor)\b[^\n]*?\binto\s+(?:a\s+|an\s+|the\s+)?(?:new\s+)?"
                      r"(?:function|helper)\s+`?(\w+)`?(?:\(\))?(?:\s+in\s+`?([\w./-]+\.(?:py|js|cjs))`?)?", re.I)
_ASYNC_MODULE = re.compile(r"\b(?:convert|make|turn|change|rewrite)\b[^\n]*?"
                           r"(?:\b(?:module|file|functions)\s+(?:in\s+)?)`?([\w/-]+\.(?:py|js|mjs|cjs))`?[^\n]*?\basync",
                           re.I)
_FILE = re.compile(r"`?([\w./-]+\.(?:py|js|mjs|cjs|ts|tsx|jsx))`?")
_FIX = re.compile(r"\b(fix|bug|broken|fails?|failing)\b", re.I)
_PASSED = re.compile(r"\bpass(?:es|ing)?\s+`?([^`\s]+?)`?\s+(?:for it\s+)?from\s+(?:its\s+|the\s+|all\s+|every\s+)?caller", re.I)


@attrs.define
class TestRun:
    """The workspace's tests, run once in the sandbox."""

    command: str
    passed: bool
    summary: str
    ms: float
    output: str = ""
    """The tail of what the tests printed (the failures and the summary)."""


@attrs.define
class AgentResult:
    """What the agent proposes (nothing when `changes` is empty) and why."""

    changes: dict[str, Replacement] = attrs.Factory(dict)
    """path -> the minimal replacement of the file's original text."""
    summary: str = ""
    plan: dict[str, Any] = attrs.Factory(dict)
    tests_before: TestRun | None = None
    tests_after: TestRun | None = None
    model_calls: int = 0
    seconds: float = 0.0
    transcript: list[str] = attrs.Factory(list)


def plan_from_instruction(instruction: str) -> dict[str, Any] | None:
    """A plan read from the instruction's words without a model (rename, add a parameter), or None."""
    match = _ADD_PARAMETER.search(instruction)
    if match and match.group(2):
        passed = _PASSED.search(instruction)
        return {"operation": "add_parameter", "parameter": match.group(1), "default": match.group(2),
                "function": match.group(3), "passed": passed.group(1) if passed else None}
    match = _RENAME.search(instruction)
    if match:
        return {"operation": "rename", "old": match.group(1), "new": match.group(2)}
    match = _EXTRACT.search(instruction)
    if match:
        named = [f for f in dict.fromkeys(_FILE.findall(instruction)) if f != match.group(2)]
        return {"operation": "extract_function", "function": match.group(1), "target": match.group(2),
                "files": named}
    match = _ASYNC_MODULE.search(instruction)
    if match:
        return {"operation": "make_async", "module": match.group(1)}
    match = _ASYNC.search(instruction)
    if match:
        return {"operation": "make_async", "function": match.group(1)}
    return None


def parse_plan(text: str) -> dict[str, Any] | None:
    """The first JSON object in a model answer, repaired where small models break it; None if none."""
    start = text.find("{")
    if start < 0:
        return None
    depth, end = 0, -1
    for index, char in enumerate(text[start:], start):
        depth += char == "{"
        depth -= char == "}"
        if depth == 0:
            end = index + 1
            break
    raw = text[start:end] if end > 0 else text[start:] + "}" * max(depth, 1)
    for candidate in (raw, raw.replace("'", '"'), re.sub(r",\s*([}\]])", r"\1", raw.replace("'", '"'))):
        try:
            plan = json.loads(candidate)
        except ValueError:
            continue
        return plan if isinstance(plan, dict) and isinstance(plan.get("operation"), str) else None
    return None


class Agent:
    """One run of the agent on a workspace."""

    def __init__(self, workspace: StagedWorkspace, generate: Generate | None, *,
                 report: Report | None = None, policy: SecurityPolicy | None = None,
                 time_budget_s: float = TIME_BUDGET_S, settings: AgentSettings | None = None,
                 index: Any = None, allows: PathFilter | None = None, context_size: int = 4096,
                 sample: Sample | None = None) -> None:
        """`index`: the workspace index (symbol search); `allows`: the paths the policy lets the agent
        see; `context_size`: the quality model's context, which the tool loop's prompt must fit;
        `sample`: sampled answers, for the retries of a rewrite the tests reject."""
        self.workspace = workspace
        self.settings = settings or AgentSettings()
        self._index = index
        self._allows = allows
        self._context_size = context_size
        self._generate = generate
        self._sample = sample
        self._tests: list[str] | None = None  # the command that runs the workspace's tests (found once)
        self._tested: tuple[dict[str, str], TestRun] | None = None  # the last test run and what it ran on
        self._report = report or (lambda message, percentage: None)
        self.policy = policy or SecurityPolicy()
        self.deadline = time.monotonic() + time_budget_s
        self.result = AgentResult()

    def _say(self, message: str, percentage: int | None = None) -> None:
        self.result.transcript.append(message)
        log.info("agent: %s", message)
        self._report(message, percentage)

    async def _ask(self, prompt: ActionPrompt, max_tokens: int) -> str:
        if self._generate is None:
            raise RefactorRefused("This change needs the code model, which is not available.")
        if self.result.model_calls >= MAX_MODEL_CALLS or time.monotonic() > self.deadline:
            raise RefactorRefused("The agent's budget (model calls or time) is spent.")
        self.result.model_calls += 1
        return await self._generate(prompt, max_tokens)

    async def run(self, instruction: str) -> AgentResult:
        """Plan, stage, check and test; `result.changes` is empty unless everything passed."""
        started = time.perf_counter()
        try:
            await self._run(instruction)
        except RefactorRefused as error:
            self.result.changes = {}
            self.result.summary = error.message
            self._say(f"stopped: {error.message}")
        self.result.seconds = time.perf_counter() - started
        return self.result

    async def _run(self, instruction: str) -> None:
        self._say(f"instruction: {instruction}", 0)
        tests = self._tests = await asyncio.to_thread(find_tests, self.workspace)
        if tests is not None:
            self._say("running the tests before any change (baseline)", 5)
            self.result.tests_before = await asyncio.to_thread(run_tests, self.workspace, tests, staged=False)
            self._say(f"baseline: {self.result.tests_before.summary}")
        plan = plan_from_instruction(instruction) or self._fix_plan(instruction)
        if plan is None:
            plan = await self._model_plan(instruction)
            try:
                _check_model_plan(plan, instruction, has_tests=tests is not None)
            except RefactorRefused as error:
                if not (self.settings.tool_loop and tests is not None):
                    raise
                self._say(f"{error.message.rstrip('.')}: the tool loop decides")
                plan = {"operation": "edit", "files": []}
        self.result.plan = plan
        self._say(f"plan: {json.dumps(plan)}", 30)
        changed = await self._apply(plan, instruction)
        if not changed:
            raise RefactorRefused("The plan changed no file.")
        self._say(f"staged: {', '.join(changed)}", 70)
        await asyncio.to_thread(self._check)
        if tests is not None:
            self._say("running the tests with the staged changes", 80)
            after = await self._run_staged_tests(tests)
            self.result.tests_after = after
            self._say(f"after: {after.summary}")
            if not after.passed:
                raise RefactorRefused(f"The workspace's tests fail with the change ({after.summary}); nothing offered.")
        self.result.changes = {path: minimal(before, Replacement(0, len(before), after))
                               for path, (before, after) in self.workspace.changed().items()}
        tested = (f"; tests: {self.result.tests_before.summary if self.result.tests_before else '?'} before, "
                  f"{self.result.tests_after.summary} after") if self.result.tests_after else "; no tests found"
        self.result.summary = f"{_describe(self.result.plan, sorted(self.result.changes))} in {len(self.result.changes)} file(s){tested}"
        self._say(self.result.summary, 100)

    def _fix_plan(self, instruction: str) -> dict[str, Any] | None:
        """"Fix the bug in x.js" while the tests fail: rewrite the files it names (no model plan needed)."""
        before = self.result.tests_before
        if before is None or before.passed or not _FIX.search(instruction):
            return None
        files = self.workspace.files()
        named = [f for name in _FILE.findall(instruction) for f in files
                 if (f == name or Path(f).name == name) and not is_test_file(f)]
        return {"operation": "edit", "files": list(dict.fromkeys(named))} if named else None

    async def _run_staged_tests(self, tests: list[str]) -> TestRun:
        """The tests on the staged files (a run on exactly these staged files is not repeated)."""
        staged = {path: after for path, (_before, after) in self.workspace.changed().items()}
        if self._tested is None or self._tested[0] != staged:
            self._tested = (staged, await asyncio.to_thread(run_tests, self.workspace, tests, staged=True))
        return self._tested[1]

    async def _model_plan(self, instruction: str) -> dict[str, Any]:
        """Ask the model to map the instruction onto one of our operations (strict JSON)."""
        files = self.workspace.files()[:60]
        user = (f"Instruction: {instruction}\nFiles: {', '.join(files)}\n"
                "Answer with one JSON object and nothing else, one of:\n"
                '{"operation": "rename", "old": "<name>", "new": "<name>"}\n'
                '{"operation": "add_parameter", "function": "<name>", "parameter": "<name>", "default": "<value>", '
                '"passed": "<value callers pass, or null>"}\n'
                '{"operation": "edit", "files": ["<path>", ...]}  (files to rewrite, at most 3)\n'
                '{"operation": "make_async", "function": "<name>"}  (the function and its callers use async/await)')
        prompt = build_prompt(self._generate_backend(), language=None, user=user, primer="{", plain=user + "\n{")
        answer = "{" + await self._ask(prompt, 96)
        plan = parse_plan(answer)
        if plan is None and self.settings.tool_loop:
            self._say(f"no operation in the model's plan ({answer[:80]!r}): the tool loop decides")
            return {"operation": "edit", "files": []}
        if plan is None:
            raise RefactorRefused(f"The model's plan was not one of the operations: {answer[:120]!r}")
        return plan

    def _generate_backend(self) -> Any:
        return getattr(self._generate, "backend", None)

    async def _apply(self, plan: dict[str, Any], instruction: str) -> list[str]:
        operation = plan.get("operation")
        if operation == "rename":
            return rename(self.workspace, str(plan.get("old", "")), str(plan.get("new", "")))
        if operation == "add_parameter":
            passed = plan.get("passed")
            return add_parameter(self.workspace, str(plan.get("function", "")), str(plan.get("parameter", "")),
                                 str(plan.get("default", "None")), None if passed in (None, "", "null") else str(passed))
        if operation == "make_async" and plan.get("module"):
            module = str(plan["module"])
            found = [f for f in self.workspace.files() if f == module or Path(f).name == module]
            if len(found) != 1:
                raise RefactorRefused(f"{module} is {'not' if not found else 'more than once'} in the workspace.")
            return make_module_async(self.workspace, found[0])
        if operation == "make_async":
            return make_async(self.workspace, str(plan.get("function", "")))
        if operation == "extract_function":
            files = [f for f in plan.get("files", []) if isinstance(f, str) and f in self.workspace.files()]
            target = plan.get("target") if isinstance(plan.get("target"), str) else None
            if len(files) < 1:
                raise RefactorRefused("Name the files that repeat the code (e.g. 'in a.py and b.py').")
            return await extract_function(self.workspace, str(plan.get("function", "")), files, target,
                                          self._write_helper, sandbox_runner(self.workspace))
        if operation == "edit":
            if self.settings.tool_loop:
                return await self._tool_loop(instruction)
            return await self._rewrite(plan, instruction)
        raise RefactorRefused(f"Unknown operation {operation!r} in the plan.")

    async def _rewrite(self, plan: dict[str, Any], instruction: str) -> list[str]:
        """Whole-file rewrites by the model, of at most a few small files, with the others summarised;
        when the tests fail before and the greedy rewrite of one file does not fix them, sampled
        rewrites are run against the tests too and the first that passes is kept (best-of-N, executed)."""
        known = set(self.workspace.files())
        chosen = [f for f in plan.get("files", []) if isinstance(f, str) and f in known]
        if not chosen:
            chosen = self._files_named_in(instruction)
        # The tests judge the change: the agent does not rewrite them to pass (unless told to).
        if not may_edit_tests(instruction):
            chosen = [f for f in chosen if not is_test_file(f)]
        chosen = chosen[:MAX_REWRITE_FILES]
        if not chosen:
            raise RefactorRefused("The plan names no file of the workspace to change.")
        failure = self._failure_lines()
        context = self._context_files(chosen, failure != "")
        bug = bool(failure) and _FIX.search(instruction) is not None
        changed = []
        for index, path in enumerate(chosen):
            text = self.workspace.read(path)
            if text.count("\n") > MAX_REWRITE_LINES:
                raise RefactorRefused(f"{path} is too long for the model to rewrite whole.")
            language = self.workspace.language(path)
            name = language.name if language else ""
            if bug:
                # The framing a 1.5B model fixes with: the failing test and the code it runs, the broken
                # file last; asked to carry out "the instruction" it copied the file unchanged.
                user = (f"{path} has a bug that makes the tests fail. {instruction}\n\n{context}"
                        f"The tests fail:\n{failure}\n\n{path}:\n```{name}\n{text}```\n"
                        f"Find the bug in {path} and answer with the fixed {path}, complete, in one fenced code block.")
            else:
                user = (f"Instruction for the whole project: {instruction}\n\n{context}"
                        + (f"The tests fail now:\n{failure}\n\n" if failure else "") +
                        f"Rewrite {path} to carry out the instruction. Keep everything else unchanged. "
                        f"Answer with the complete file in one fenced code block.\n```{name}\n{text}```")
            prompt = build_prompt(self._generate_backend(), language=language, user=user, primer=f"```{name}\n",
                                  plain=user + f"\n```{name}\n")
            self._say(f"rewriting {path}", 40 + 25 * index // len(chosen))
            max_tokens = min(2048, 2 * len(text) // 3 + 128)
            new = _file_from(await self._ask(prompt, max_tokens), name)
            if not new.strip():
                raise RefactorRefused(f"The model wrote nothing for {path}.")
            self.workspace.stage(path, new)
            if len(chosen) == 1 and failure:
                await self._retry_with_samples(path, prompt, max_tokens, name)
            if path in self.workspace.changed():
                changed.append(path)
            else:
                self._say(f"the model left {path} unchanged")
        return changed

    async def _retry_with_samples(self, path: str, prompt: ActionPrompt, max_tokens: int, fence: str) -> None:
        """When the greedy rewrite leaves the tests failing, try sampled rewrites; keep the first that passes."""
        tests = self._tests
        if tests is None or self._sample is None:
            return
        greedy = self.workspace.read(path)
        if path in self.workspace.changed() and self._syntax_ok(path) and (await self._run_staged_tests(tests)).passed:
            return
        if self.result.model_calls >= MAX_MODEL_CALLS or time.monotonic() > self.deadline:
            return
        self._say(f"the greedy rewrite of {path} does not pass the tests: {REWRITE_SAMPLES} sampled rewrites", 60)
        self.result.model_calls += 1
        answers = await self._sample(prompt, max_tokens, REWRITE_SAMPLES)
        tried = {greedy}
        for number, answer in enumerate(answers, start=1):
            new = _file_from(answer, fence)
            if new in tried or not new.strip():
                continue
            tried.add(new)
            self.workspace.stage(path, new)
            if not self._syntax_ok(path):
                continue
            run = await self._run_staged_tests(tests)
            self._say(f"sample {number}: {run.summary}")
            if run.passed:
                return
        self.workspace.stage(path, greedy)  # none passed: the greedy rewrite is judged (and refused) as before

    def _syntax_ok(self, path: str) -> bool:
        return path in self.workspace.changed() and self._checked(path).accepted

    def _context_files(self, chosen: list[str], tests_first: bool) -> str:
        """The other files the model sees: whole while small (the failing tests first), then signatures."""
        others = sorted(set(self.workspace.files()) - set(chosen), key=lambda f: (not (tests_first and is_test_file(f)), f))
        budget = CONTEXT_LINES
        parts = []
        for path in others[:20]:
            text = self.workspace.read(path)
            language = self.workspace.language(path)
            if text.count("\n") <= budget:
                budget -= text.count("\n")
                parts.append(f"{path}{' (a test; do not change it)' if is_test_file(path) else ''}:\n"
                             f"```{language.name if language else ''}\n{text}```\n")
            else:
                parts.append(self._signatures(path) + "\n")
        return "".join(parts) + ("\n" if parts else "")

    def _failure_lines(self) -> str:
        """What the failing baseline said, cut to the lines that explain it (assertions, errors, values)."""
        before = self.result.tests_before
        if before is None or before.passed:
            return ""
        keep = re.compile(r"^E\s|Error|assert|expected|actual|!==|===|FAILED|not ok", re.I)
        lines = [line.strip() for line in before.output.splitlines()
                 if keep.search(line) and "node:internal" not in line and "async_hooks" not in line]
        return "\n".join(list(dict.fromkeys(lines))[:12])

    async def _tool_loop(self, instruction: str) -> list[str]:
        """The model changes the workspace through tools (loop.py); the staged files it leaves are the change."""
        if self._generate is None:
            raise RefactorRefused("This change needs the code model, which is not available.")
        tests = self._tests

        def tests_with_edits(workspace: StagedWorkspace) -> tuple[bool, str, str]:
            run = run_tests(workspace, tests or [], staged=True)
            return run.passed, run.summary, run.output

        toolbox = Toolbox(self.workspace, policy=self.policy, allows=self._allows, index=self._index,
                          tests=tests_with_edits if tests else None, edit_tests=may_edit_tests(instruction))
        answer_tokens = min(MAX_ANSWER_TOKENS, self._context_size // 4)
        budget = LoopBudget(max_steps=self.settings.max_steps, max_tokens=self.settings.token_budget,
                            deadline=self.deadline, max_answer_tokens=answer_tokens,
                            max_prompt_tokens=self._context_size - answer_tokens - 64)
        loop = ToolLoop(toolbox, self._generate, backend=self._generate_backend(), budget=budget,
                        say=lambda message: self._say(message, 30 + 40 * min(loop.outcome.steps, budget.max_steps)
                                                      // budget.max_steps),
                        has_tests=tests is not None, failure=self._failure_lines(),
                        shown=[f for f in self._files_named_in(instruction)
                               if self.workspace.read(f).count("\n") <= SHOWN_FILE_LINES][:2])
        calls = "the chat template's tool calls" if loop.format.kind == "tools" else "JSON calls"
        self._say(f"tool loop ({calls}): at most {budget.max_steps} steps, {budget.max_tokens} tokens", 30)
        outcome = await loop.run(instruction)
        self.result.model_calls += outcome.steps
        self.result.plan = {"operation": "tool_loop", "finished": outcome.finished, "stopped": outcome.stopped,
                            "steps": outcome.steps, "tokens": outcome.tokens, "malformed": outcome.malformed,
                            "repaired": outcome.repaired, "summary": outcome.summary}
        changed = sorted(self.workspace.changed())
        # A loop cut off by its budget is offered only when the model's own last test run passed with
        # exactly these edits (the tests then run again below); otherwise its edits may be half done.
        if not outcome.finished and not (changed and toolbox.last_tests_passed):
            raise RefactorRefused(f"The model did not finish ({outcome.stopped}); nothing offered.")
        self._say(f"tool loop {'finished' if outcome.finished else 'stopped'} after {outcome.steps} steps, "
                  f"{outcome.tokens} tokens: {outcome.summary or outcome.stopped}")
        return changed

    async def _write_helper(self, request: HelperRequest) -> str:
        """The model writes the extracted function's return expression (its name says which way round)."""
        python = request.language == "python"
        parameters = ", ".join(request.parameters)
        signature = f"def {request.name}({parameters}):" if python else f"function {request.name}({parameters})"
        returns = ("It returns a bool, true or false as its name says." if request.condition
                   else "It returns what the repeated expression computes.")
        user = (f"Write the {'Python' if python else 'JavaScript'} function `{signature}` for {request.target}, "
                f"to replace this repeated code:\n```{request.language}\n{request.usage}\n```\n{returns} "
                "Answer with the function only, in one fenced code block.")
        primer = f"```python\n{signature}\n    return " if python else f"```javascript\n{signature} {{\n  return "
        prompt = build_prompt(self._generate_backend(), language=None, user=user, primer=primer,
                              plain=user + "\n" + primer)
        self._say(f"writing {request.name}", 50)
        return primer + (await self._ask(prompt, 160)).lstrip(" ")

    def _files_named_in(self, instruction: str) -> list[str]:
        words = set(re.findall(r"\w+", instruction))
        hits = [p for p in self.workspace.files() if Path(p).stem in words]
        for name in words:
            hits.extend(p for p, _node in definitions(self.workspace, name))
        return list(dict.fromkeys(hits))[:MAX_REWRITE_FILES]

    def _signatures(self, path: str) -> str:
        lines = [line for line in self.workspace.read(path).splitlines()
                 if line.lstrip().startswith(("def ", "class ", "async def ", "function ", "export ", "import ", "from "))]
        return f"# {path}\n" + "\n".join(lines[:15])

    def _checked(self, path: str) -> CheckedEdit:
        """The syntax and security checks on a staged file's change."""
        before, after = self.workspace.changed()[path]
        replacement = minimal(before, Replacement(0, len(before), after))
        return verify_replacement(before, replacement, self.workspace.language(path), self.policy)

    def _check(self) -> None:
        """Every staged file passes the syntax and security checks (else nothing is offered)."""
        for path in self.workspace.changed():
            checked = self._checked(path)
            if not checked.accepted:
                raise RefactorRefused(f"The change to {path} does not pass the checks: {checked.reason}.")


def _check_model_plan(plan: dict[str, Any], instruction: str, *, has_tests: bool) -> None:
    """A small model's plan must be grounded in the instruction: the names it uses are the user's words,
    and a change it writes itself must be checked by the workspace's tests (else nothing is offered)."""
    words = set(re.findall(r"\w+", instruction))
    named = {"rename": ("old", "new"), "add_parameter": ("function", "parameter"), "make_async": ("function",),
             "extract_function": ("function",)}.get(str(plan.get("operation")))
    if named is not None:
        missing = [str(plan.get(key)) for key in named if str(plan.get(key)) not in words]
        if missing:
            raise RefactorRefused(f"The model's plan ({plan.get('operation')}) uses names the instruction does not "
                                  f"mention ({', '.join(missing)}); nothing changed.")
    elif plan.get("operation") == "edit" and not has_tests:
        raise RefactorRefused("This change needs the model to write code, and the workspace has no tests that "
                              "could check it; add a test that shows what you want, then ask again.")


def _describe(plan: dict[str, Any], changed: list[str]) -> str:
    operation = plan.get("operation")
    if operation == "rename":
        return f"Renamed {plan.get('old')} to {plan.get('new')}"
    if operation == "add_parameter":
        default = str(plan.get("default"))
        shown = default if default.strip() == default and default else repr(default)  # code as written; ' ' quoted
        return f"Added parameter {plan.get('parameter')} (default {shown}) to {plan.get('function')}"
    if operation == "make_async":
        if plan.get("module"):
            return f"Made the blocking functions of {plan['module']} async (and awaited them in their callers)"
        return f"Made {plan.get('function')} async (and awaited it in its callers)"
    if operation == "extract_function":
        return f"Extracted {plan.get('function')}" + (f" into {plan['target']}" if plan.get("target") else "")
    if operation == "tool_loop" and plan.get("summary"):
        return f"Changed {', '.join(changed)} ({str(plan['summary']).rstrip('.')})"
    return "Rewrote " + ", ".join(changed)


def _file_from(answer: str, fence: str) -> str:
    """The whole file from a rewrite answer (the fence was primed), ending in a newline."""
    new = strip_fences(f"```{fence}\n" + answer)
    return new if new.endswith("\n") or not new else new + "\n"


# -- the workspace's tests, in the sandbox ---------------------------------------------------------

def find_tests(workspace: StagedWorkspace) -> list[str] | None:
    """The command that runs the workspace's tests (pytest, or node --test), or None."""
    files = workspace.files()
    python_tests = [f for f in files if f.endswith(".py") and is_test_file(f)]
    if python_tests:
        return [sys.executable, "-m", "pytest", "-q", "-x", "-p", "no:cacheprovider", *python_tests]
    js_tests = [f for f in files if f.endswith((".test.js", ".test.mjs"))]
    node = shutil.which("node")
    if js_tests and node:
        return [node, "--test", *js_tests]
    return None


def run_tests(workspace: StagedWorkspace, command: list[str], *, staged: bool) -> TestRun:
    """Run the tests in a scratch copy of the workspace (with the staged files when `staged`)."""
    from codeassist_lsp.verify.sandbox import SandboxLimits, default_sandbox

    sandbox = default_sandbox()
    # Open files as the editor has them (maybe unsaved), then the staged edits.
    files = {path: workspace.original(path) for path in workspace.files() if workspace.is_open(path)}
    if staged:
        files.update({path: after for path, (_before, after) in workspace.changed().items()})
    limits = SandboxLimits(cpu_s=60, wall_s=90.0, memory_mb=2048)
    skip = shutil.ignore_patterns(".git", "node_modules", "__pycache__", ".venv", "venv")
    with sandbox.scratch(files=files, copy_from=str(workspace.root), copy_filter=skip) as scratch:
        outcome = sandbox.run(command, scratch, limits=limits)
    summary = "timed out" if outcome.timed_out else _test_summary(outcome.stdout) or f"exit {outcome.returncode}"
    return TestRun(" ".join(Path(command[0]).name if i == 0 else part for i, part in enumerate(command[:4])),
                   outcome.ok, summary, outcome.elapsed_ms,
                   # stderr first: the tail kept is stdout's failures and counts, not a plugin's warnings
                   (outcome.stderr[-1000:] + outcome.stdout)[-TEST_OUTPUT_CHARS:])


def _test_summary(output: str) -> str:
    """pytest's last line ("2 passed in 0.1s"), or node --test's counts ("3 passed, 1 failed")."""
    counts = dict(re.findall(r"^# (pass|fail) (\d+)$", output, re.M))
    if counts:
        return f"{counts.get('pass', '0')} passed, {counts.get('fail', '0')} failed"
    lines = [line.strip("= ") for line in output.strip().splitlines() if re.search(r"\b(passed|failed|error)", line)]
    return lines[-1][:160] if lines else ""
