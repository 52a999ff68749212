"""Run an action on the model worker: prompt, generate (best-of-N for code from comments), shape, verify.

Model work is submitted as kind "generation": typing (a completion) preempts it and the worker
re-runs it afterwards. Awaiting callers that are cancelled cancel their job at the next token.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import re
import textwrap
import time
from collections import OrderedDict
from collections.abc import Callable
from typing import Any

import attrs

from codeassist_lsp.actions import checked as edit_checks
from codeassist_lsp.actions import edits
from codeassist_lsp.actions.edits import FENCE, CheckedEdit, Replacement
from codeassist_lsp.actions.prompts import (
    ActionPrompt, chat_template_of, doc_style, docstring_prompt, edit_prompt, explain_prompt, fence_name,
    fix_instruction, generate_prompt, hover_prompt, prompt_tokens, refactor_instruction, review_texts,
    rewrite_prompt,
)
from codeassist_lsp.actions.targets import (
    DEFINITION_TYPES, ActionTarget, DocumentView, HoverTarget, indentation, line_end, line_start,
)
from codeassist_lsp.config import ActionsSettings
from codeassist_lsp.context.assembler import render_snippet
from codeassist_lsp.engine.base import GenerationRequest, GenerationResult, Sampling
from codeassist_lsp.engine.postprocess import block_stop, combine_stops
from codeassist_lsp.errors import ModelNotAvailable
from codeassist_lsp.verify import SecurityPolicy
from codeassist_lsp.verify import execution as execution_stage
from codeassist_lsp.verify.sandbox import Sandbox

log = logging.getLogger(__name__)

# Penalty on the score of a candidate that ran out of tokens (likely cut mid-thought).
LENGTH_PENALTY = 0.5
# Penalty per (non-blocking) security finding a candidate introduces.
FINDING_PENALTY = 0.25
# Bonus per other candidate that produced the same code (agreement between samples).
AGREEMENT_BONUS = 0.05
# Penalty per static defect of generated Python (an undefined name, no return): larger than the
# typical spread of mean log-probabilities, so a closed function beats a fluent but broken one.
DEFECT_PENALTY = 0.6
# Reviewer (Coder-Reviewer reranking): weight of the mean log-probability of the comment/docstring
# given the candidate's code, added to the coder's mean log-probability of the code (both per token).
REVIEW_WEIGHT = 1.0
# The greedy candidate wins unless another scores at least this much higher: samples of a small
# model at a high temperature are usually worse, so a sample must be clearly better to be chosen.
GREEDY_MARGIN = 0.1
# Tokens of the comment/docstring the reviewer scores (prompt evaluation only).
REVIEW_MAX_TOKENS = 256
DOC_MAX_TOKENS = 96
HOVER_CACHE_ENTRIES = 256
# A hover says what the code does (and what it raises) in this many sentences at most.
HOVER_SENTENCES = 2
# Tokens such an answer takes, typically (Qwen2.5-Coder on the benchmark's functions: 30-50).
HOVER_EXPECTED_TOKENS = 40
# An action asked for while the models load waits this long for them (the user asked for it).
QUALITY_LOAD_WAIT_S = 30.0

ProgressCallback = Callable[[str, int | None], None]
# A candidate filter: (document before, document after the candidate's edit, language id, path) -> why the
# candidate is rejected, or None to keep it. Runs off the event loop, after syntax and SAST, before the test
# stage; ActionRunner.candidate_filters starts as a copy of this list (the type-check stage adds itself here).
CandidateFilter = Callable[[str, str, str | None, str], str | None]
CANDIDATE_FILTERS: list[CandidateFilter] = []


@attrs.define
class Candidate:
    """One sampled answer, its edit, what verification said and its score."""

    result: GenerationResult
    checked: CheckedEdit | None
    score: float = float("-inf")
    index: int = 0
    defects: int = 0
    reviewer: float | None = None
    """Mean log-probability of the comment/docstring given this candidate's code (None: not scored)."""
    rejected: str = ""
    """Why a candidate filter (e.g. the type check) rejected it after verification ('' = not rejected)."""
    execution: execution_stage.ExecutionReport | None = None
    """What the test stage ran for it and what passed (None: not run)."""
    agreement: float = 0.0
    """How much its outputs agree with the other candidates' on the same inputs (CodeT / MBR-exec)."""

    @property
    def accepted(self) -> bool:
        """Whether it passed verification (and every candidate filter)."""
        return self.checked is not None and self.checked.accepted and not self.rejected

    @property
    def tests_passed(self) -> int:
        """Doctests, asserts and workspace tests it passed (0 when none ran)."""
        return self.execution.passed if self.execution is not None else 0

    @property
    def rank(self) -> tuple[int, float, float]:
        """Best-of-N order: tests passed, then agreement with the other candidates, then the score."""
        return (self.tests_passed, self.agreement, self.score)


@attrs.define
class ActionOutcome:
    """What resolving an action produced."""

    replacement: Replacement | None = None
    explanation: str | None = None
    candidates: list[Candidate] = attrs.Factory(list)
    reason: str = ""
    elapsed_ms: float = 0.0
    notice: str = ""
    """Said to the user with the edit (a fix whose diagnostic none of our checkers reproduces)."""
    gate: edit_checks.Gate | None = None
    """What the type check and the fix check decided about the edit (None: not checked)."""
    summary: str = ""
    """What the test stage found for the chosen edit, e.g. "3/3 doctests pass" ('' when nothing ran)."""

    @property
    def best(self) -> Candidate | None:
        """The chosen candidate: the accepted one that ranks highest (see Candidate.rank)."""
        accepted = [c for c in self.candidates if c.accepted]
        return max(accepted, key=lambda c: c.rank) if accepted else None


class HoverCache:
    """Hover explanations by content hash (model, language, code): the same code is explained once."""

    def __init__(self, entries: int = HOVER_CACHE_ENTRIES) -> None:
        self._entries: OrderedDict[str, str] = OrderedDict()
        self._limit = entries

    @staticmethod
    def key(model_id: str, language: str, target: HoverTarget) -> str:
        """The content hash a hover is cached under."""
        digest = hashlib.sha256()
        for part in (model_id, language, target.kind, target.name, target.code):
            digest.update(part.encode("utf-8", "replace"))
            digest.update(b"\0")
        return digest.hexdigest()

    def get(self, key: str) -> str | None:
        """A cached explanation."""
        value = self._entries.get(key)
        if value is not None:
            self._entries.move_to_end(key)
        return value

    def put(self, key: str, value: str) -> None:
        """Remember an explanation."""
        self._entries[key] = value
        self._entries.move_to_end(key)
        while len(self._entries) > self._limit:
            self._entries.popitem(last=False)


def score_candidates(candidates: list[Candidate]) -> None:
    """Coder + reviewer mean log-probabilities, minus penalties (ran out of tokens, findings, defects),
    plus agreement; the greedy candidate (index 0) gets GREEDY_MARGIN.

    The reviewer term counts only when every accepted candidate was reviewed (comparable scores).
    """
    accepted = [c for c in candidates if c.accepted]
    reviewed = bool(accepted) and all(c.reviewer is not None for c in accepted)
    texts: dict[str, int] = {}
    for candidate in candidates:
        if candidate.accepted and candidate.checked is not None:
            text = candidate.checked.replacement.new_text.strip()
            texts[text] = texts.get(text, 0) + 1
    for candidate in candidates:
        if not candidate.accepted or candidate.checked is None:
            candidate.score = float("-inf")
            continue
        score = candidate.result.mean_logprob
        if candidate.result.finish_reason == "length":
            score -= LENGTH_PENALTY
        score -= FINDING_PENALTY * len(candidate.checked.verdict.findings)
        score -= DEFECT_PENALTY * candidate.defects
        score += AGREEMENT_BONUS * (texts[candidate.checked.replacement.new_text.strip()] - 1)
        if reviewed and candidate.reviewer is not None:
            score += REVIEW_WEIGHT * candidate.reviewer
        if candidate.index == 0:
            score += GREEDY_MARGIN
        candidate.score = score


def rank_candidates(candidates: list[Candidate]) -> Candidate | None:
    """Score the candidates, set each accepted one's agreement with the others, return the best (or None)."""
    score_candidates(candidates)
    accepted = [c for c in candidates if c.accepted]
    for candidate, agreement in zip(accepted, execution_stage.agreement([c.execution for c in accepted])):
        candidate.agreement = agreement
    return max(accepted, key=lambda c: c.rank) if accepted else None


def comment_above(text: str, offset: int, marker: str = "#") -> str:
    """The block of comment lines right above the line holding offset (where `# assert ...` examples are)."""
    lines = text[:line_start(text, offset)].split("\n")[:-1]
    block: list[str] = []
    while lines and lines[-1].strip().startswith(marker):
        block.insert(0, lines.pop())
    return "\n".join(block) + ("\n" if block else "")


def _reporting_progress(stop_check: Any, max_tokens: int, report: ProgressCallback,
                        loop: asyncio.AbstractEventLoop) -> Any:
    """The stop check, also reporting progress: it runs once per generated token (on the model thread)."""
    produced = [0, -1]

    def check(text: str) -> int | None:
        produced[0] += 1
        percentage = min(99, 100 * produced[0] // max(1, max_tokens))
        if percentage >= produced[1] + 10:  # a report per tenth: the editor need not redraw per token
            produced[1] = percentage
            loop.call_soon_threadsafe(report, f"{produced[0]} tokens", percentage)
        return stop_check(text) if stop_check is not None else None

    return check


class ActionRunner:
    """Resolves actions and hovers against one completion service (its worker, assembler and policy)."""

    def __init__(self, service: Any, settings: ActionsSettings, stats: dict[str, int] | None = None,
                 progress: ProgressCallback | None = None) -> None:
        self.service = service
        self.settings = settings
        self.stats = stats if stats is not None else {}
        self.progress = progress
        self.candidate_filters: list[CandidateFilter] = list(CANDIDATE_FILTERS)
        self._sandbox: Sandbox | None = None

    # -- model calls ----------------------------------------------------------------------------

    @property
    def backend(self) -> Any:
        """The quality tier's backend; raises ModelNotAvailable while loading or after a failed load."""
        service = self.service
        if service is None or not service.worker.loaded.is_set() or service.backend is None:
            error = service.worker.load_error if service is not None else None
            if isinstance(error, ModelNotAvailable):
                raise error
            raise ModelNotAvailable("The model is not loaded yet.", hint="Try again in a moment.")
        if not service.worker.quality_loaded.is_set():
            raise ModelNotAvailable("The code model is still loading.", hint="Try again in a moment.")
        return service.quality_backend

    async def until_ready(self, timeout: float = QUALITY_LOAD_WAIT_S) -> None:
        """Wait (without blocking the loop) until both tiers loaded or failed, at most `timeout` s."""
        worker = getattr(self.service, "worker", None)
        if worker is None:
            return
        deadline = asyncio.get_running_loop().time() + timeout
        while not (worker.loaded.is_set() and worker.quality_loaded.is_set()):
            if asyncio.get_running_loop().time() > deadline:
                return
            await asyncio.sleep(0.02)

    @property
    def policy(self) -> SecurityPolicy:
        """The verifier's policy."""
        return getattr(self.service, "policy", None) or SecurityPolicy()

    async def generate(self, prompt: ActionPrompt, *, max_tokens: int, sampling: Sampling = Sampling(),
                       stop_check: Any = None) -> GenerationResult:
        """One generation on the worker; cancelling the awaiting task cancels the job."""
        backend = self.backend
        tokens = prompt_tokens(backend, prompt)
        if self.progress is not None:
            stop_check = _reporting_progress(stop_check, max_tokens, self._report, asyncio.get_running_loop())
        request = GenerationRequest(prompt_tokens=tuple(tokens), max_tokens=max_tokens, kind="generation",
                                    tier="quality", stop=prompt.stop, stop_check=stop_check, sampling=sampling,
                                    want_logprobs=True)
        return await self._run(request)

    async def sample(self, prompt: ActionPrompt, *, max_tokens: int, count: int) -> list[GenerationResult]:
        """`count` sampled answers (the settings' temperature, seeds 1..count): side by side in one batch
        where the model can, else one after another."""
        samplings = self._samplings(count)
        capacity = self._side_by_side_capacity()
        results = await self._batch(prompt, samplings[:capacity], max_tokens) if capacity > 1 else []
        for sampling in samplings[len(results):]:
            results.append(await self.generate(prompt, max_tokens=max_tokens, sampling=sampling))
        return results

    def _samplings(self, count: int) -> list[Sampling]:
        """The sampling of candidates 2.. (the settings' temperature, seeds 1..count: repeatable)."""
        return [Sampling(temperature=self.settings.temperature, seed=seed) for seed in range(1, count + 1)]

    async def _batch(self, prompt: ActionPrompt, samplings: list[Sampling], max_tokens: int,
                     stop_check: Any = None, want_logprobs: bool = False) -> list[GenerationResult]:
        """One answer per sampling, side by side in one batch; those a preemption left unfinished dropped."""
        request = GenerationRequest(prompt_tokens=tuple(prompt_tokens(self.backend, prompt)), max_tokens=max_tokens,
                                    kind="generation", tier="quality", stop=prompt.stop, stop_check=stop_check,
                                    want_logprobs=want_logprobs, samples=tuple(samplings))
        return [sample for sample in (await self._run(request)).samples if sample.finish_reason != "cancelled"]

    async def _run(self, request: GenerationRequest) -> GenerationResult:
        """One job on the model worker; cancelling the awaiting task cancels the job."""
        job = self.service.worker.submit(request)
        self.stats["action_model_jobs"] = self.stats.get("action_model_jobs", 0) + 1
        try:
            return await asyncio.wrap_future(job.future)
        except asyncio.CancelledError:
            job.cancel("client cancelled the request")
            raise

    async def review(self, context: str, scored: str) -> float | None:
        """Mean log-probability of `scored` after `context` (prompt evaluation only); None if unavailable."""
        backend = self.backend
        context_tokens = prompt_tokens(backend, ActionPrompt(context, False, ""))
        scored_tokens = backend.tokenize(scored, add_bos=False)[:REVIEW_MAX_TOKENS]
        if not scored_tokens:
            return None
        result = await self._run(GenerationRequest(prompt_tokens=tuple(context_tokens + scored_tokens), max_tokens=0,
                                                   kind="generation", tier="quality",
                                                   score_tokens=len(scored_tokens)))
        logprobs = result.token_logprobs
        return sum(logprobs) / len(logprobs) if logprobs and result.finish_reason != "cancelled" else None

    async def _verify(self, text: str, replacement: Replacement, language: Any) -> CheckedEdit:
        """edits.verify_replacement off the event loop: bandit and semgrep-core take ~200 ms, and the
        keystrokes that arrive meanwhile must not wait for them."""
        return await asyncio.to_thread(edits.verify_replacement, text, replacement, language, self.policy)

    def _report(self, message: str, percentage: int | None = None) -> None:
        if self.progress is not None:
            self.progress(message, percentage)

    # -- actions ----------------------------------------------------------------------------------

    async def resolve(self, target: ActionTarget, view: DocumentView, *, path: str = "") -> ActionOutcome:
        """Do the work of one action on the document version it was listed for."""
        started = time.perf_counter()
        await self.until_ready()
        handler = {"generate": self._generate_code, "docstring": self._docstring, "fix": self._rewrite,
                   "refactor": self._rewrite, "explain": self._explain}.get(target.action)
        if handler is None:
            return ActionOutcome(reason=f"unknown action {target.action!r}")
        outcome = await handler(target, view, path)
        if outcome.replacement is not None and outcome.gate is None:
            self._apply_gate(outcome, await self._gate(target, view, outcome.replacement, path))
        if outcome.replacement is not None:  # verified on the text as the model wrote it; shown as the editor's
            outcome.replacement = edits.with_document_line_endings(view.text, outcome.replacement)
        outcome.elapsed_ms = (time.perf_counter() - started) * 1000
        self.stats["actions_resolved"] = self.stats.get("actions_resolved", 0) + 1
        return outcome

    async def _gate(self, target: ActionTarget, view: DocumentView, replacement: Replacement,
                    path: str) -> edit_checks.Gate:
        """Stage 3 and the checked fix (actions/checked.py): does the edit add type errors, does a fix
        remove its diagnostic. Off the event loop; `actions.typeCheck` false skips both."""
        if not self.settings.type_check:
            return edit_checks.Gate(True)
        gate = await edit_checks.gate_outcome(target, view, replacement, path=path or None)
        counter = "typecheck_refused" if not gate.offered else ("fix_unverified" if gate.notice else "typecheck_passed")
        self.stats[counter] = self.stats.get(counter, 0) + 1
        return gate

    @staticmethod
    def _apply_gate(outcome: ActionOutcome, gate: edit_checks.Gate) -> None:
        """An edit the checks refused is not offered: the outcome says why instead."""
        outcome.gate = gate
        if not gate.offered:
            outcome.replacement, outcome.reason = None, gate.reason
        else:
            outcome.notice = gate.notice

    def _related(self, view: DocumentView, offset: int, path: str, budget: int) -> str:
        """Related definitions from the context assembler, rendered (best effort)."""
        assembler = getattr(self.service, "assembler", None)
        if assembler is None or view.language is None or budget <= 0:
            return ""
        try:
            context = assembler.assemble(view.text, offset, path=path or view.uri, language=view.language,
                                         budget_tokens=budget, count_tokens=self.backend.count_tokens,
                                         version=view.version)
        except Exception:  # context is best effort
            log.debug("assembler failed", exc_info=True)
            return ""
        return "\n".join(render_snippet(s, view.language) for s in context.snippets if s.kind == "definition")

    def _before(self, view: DocumentView, offset: int, budget: int) -> str:
        """The document before offset, whole lines, within a token budget."""
        from codeassist_lsp.context.assembler import _take_lines_backward

        return _take_lines_backward(view.text[:offset], budget, self.backend.count_tokens)

    async def _generate_code(self, target: ActionTarget, view: DocumentView, path: str) -> ActionOutcome:
        """Best-of-N: greedy first, then samples while the time budget allows; the best verified one wins."""
        settings = self.settings
        budget = settings.context_tokens
        related = self._related(view, target.start, path, budget // 4)
        before = self._before(view, target.start, budget - (self.backend.count_tokens(related) if related else 0))
        anchor = target.anchor if target.anchor >= 0 else line_start(view.text, target.start)
        header = view.text[anchor:target.start]
        prompt = generate_prompt(self.backend, view.language, before=before, header=header, related=related)
        docstring_body = target.end > target.start or (view.language is not None and view.language.name == "python"
                                                       and target.anchor >= 0)
        stop = combine_stops(block_stop(target.indent, 80) if docstring_body else edits.code_stop(target.indent, 40),
                                   edits.repetition_stop)
        count = max(1, settings.best_of_n)
        outcome = ActionOutcome()
        started = time.perf_counter()
        side_by_side = self._side_by_side_capacity()
        for index in range(count):
            elapsed_ms = (time.perf_counter() - started) * 1000
            if index > 0 and side_by_side:
                # The samples in one batch: as many as the measured cost of a step that wide allows.
                results = await self._samples_side_by_side(prompt, stop, min(count - 1, side_by_side), elapsed_ms,
                                                            started)
                for offset, result in enumerate(results, start=1):
                    outcome.candidates.append(await self._check_generated(target, view, prompt, result, offset))
                break
            if index > 0 and elapsed_ms * (index + 1) / index > settings.best_of_n_budget_ms:
                break  # the next candidate would not finish within the budget
            self._report(f"candidate {index + 1}/{count}", int(100 * index / count))
            sampling = Sampling() if index == 0 else Sampling(temperature=settings.temperature, seed=index)
            result = await self.generate(prompt, max_tokens=settings.max_tokens, sampling=sampling, stop_check=stop)
            outcome.candidates.append(await self._check_generated(target, view, prompt, result, index))
        await self._filter_candidates(view, path, outcome.candidates)
        if (time.perf_counter() - started) * 1000 < settings.best_of_n_budget_ms:
            await self._review_candidates(header, view, outcome.candidates)  # prompt evaluation only
        await self._execute_candidates(target, view, path, comment_above(view.text, anchor) + header,
                                       outcome.candidates)
        best = rank_candidates(outcome.candidates)
        if best is None or best.checked is None:
            reasons = ({c.checked.reason for c in outcome.candidates if c.checked is not None}
                       | {c.rejected for c in outcome.candidates}) - {""}
            outcome.reason = "no candidate passed verification" + (f" ({'; '.join(sorted(reasons))})" if reasons else "")
            return outcome
        outcome.replacement = best.checked.replacement
        if best.execution is not None:
            outcome.summary = best.execution.summary()
        return outcome

    def _side_by_side_capacity(self) -> int:
        """How many samples the quality tier's model can generate side by side in one batch (0: one at a time)."""
        backend = self.backend
        if not self.settings.side_by_side or getattr(backend, "remote", False):
            return 0  # (an inference server batches concurrent requests itself)
        return int(getattr(backend, "parallel_samples", 0) or 0)

    async def _samples_side_by_side(self, prompt: ActionPrompt, stop: Any, wanted: int, greedy_ms: float,
                                    started: float) -> list[GenerationResult]:
        """Up to `wanted` sampled candidates generated in one batch, as many as fit in the time budget:
        a step of k sequences costs what the model measured (`parallel_cost`), relative to the greedy one."""
        settings = self.settings
        backend = self.backend
        left_ms = settings.best_of_n_budget_ms - (time.perf_counter() - started) * 1000
        cost = getattr(backend, "parallel_cost", lambda k: float(k))
        while wanted > 0 and greedy_ms * cost(wanted) > left_ms:
            wanted -= 1
        if wanted <= 0:
            return []
        self._report(f"candidates 2-{wanted + 1} side by side", int(100 / (wanted + 1)))
        return await self._batch(prompt, self._samplings(wanted), settings.max_tokens, stop, want_logprobs=True)

    async def _filter_candidates(self, view: DocumentView, path: str, candidates: list[Candidate]) -> None:
        """Run the candidate filters (e.g. the type check) on the accepted candidates, off the event loop."""
        if not self.candidate_filters:
            return
        language_id = view.language.name if view.language is not None else None
        for candidate in candidates:
            if not candidate.accepted or candidate.checked is None:
                continue
            after = candidate.checked.replacement.apply(view.text)
            for check in self.candidate_filters:
                reason = await asyncio.to_thread(check, view.text, after, language_id, path)
                if reason:
                    candidate.rejected = reason
                    break

    @property
    def sandbox(self) -> Sandbox:
        """The sandbox the test stage runs candidates in (isolation probed on first use)."""
        if self._sandbox is None or self._sandbox.preferred != self.settings.sandbox:
            self._sandbox = Sandbox(self.settings.sandbox, execution_stage.sandbox_limits())
        return self._sandbox

    async def _execute_candidates(self, target: ActionTarget, view: DocumentView, path: str, header: str,
                                  candidates: list[Candidate]) -> None:
        """Test stage (Python): each distinct accepted candidate runs the docstring's examples, the comment's
        asserts and the workspace tests that import the function, in the sandbox; reports go on the candidates."""
        language = view.language
        accepted = [c for c in candidates if c.accepted and c.checked is not None]
        if not self.settings.run_tests or language is None or not accepted \
                or language.name not in execution_stage.TESTED_LANGUAGES:
            return
        function = target.name
        if not function and accepted[0].checked is not None:  # a comment above new code: the function it wrote
            written = accepted[0].checked.replacement.new_text
            match = re.search(r"^\s*(?:async\s+)?(?:def|function\*?|func)\s+(\w+)", written, re.MULTILINE)
            function = match.group(1) if match else ""
        if not function:
            return
        file_path = path if path and not path.startswith("file:") else ""
        plan = await asyncio.to_thread(execution_stage.plan_tests, document=view.text, header=header, function=function,
                                       path=file_path or None, language=language.name)
        if plan.empty:
            return
        programs: dict[str, str] = {}
        for candidate in accepted:
            assert candidate.checked is not None
            programs.setdefault(candidate.checked.replacement.new_text, candidate.checked.replacement.apply(view.text))
        self._report(f"testing {len(programs)} candidate{'s' if len(programs) > 1 else ''}", None)
        sandbox = self.sandbox

        def run_all() -> dict[str, execution_stage.ExecutionReport]:
            return {code: execution_stage.run_tests(plan, program, sandbox) for code, program in programs.items()}

        reports = await asyncio.to_thread(run_all)
        for candidate in accepted:
            assert candidate.checked is not None
            candidate.execution = reports[candidate.checked.replacement.new_text]
        self.stats["action_test_runs"] = self.stats.get("action_test_runs", 0) + len(programs)

    async def _review_candidates(self, header: str, view: DocumentView, candidates: list[Candidate]) -> None:
        """The reviewer score of each distinct accepted candidate, when there is a choice to make."""
        distinct: dict[str, list[Candidate]] = {}
        for candidate in candidates:
            if candidate.accepted and candidate.checked is not None:
                distinct.setdefault(candidate.checked.replacement.new_text, []).append(candidate)
        if len(distinct) < 2:
            return
        for code, same in distinct.items():
            texts = review_texts(header, code, view.language)
            reviewer = await self.review(*texts) if texts is not None else None
            for candidate in same:
                candidate.reviewer = reviewer

    async def _check_generated(self, target: ActionTarget, view: DocumentView, prompt: ActionPrompt,
                         result: GenerationResult, index: int) -> Candidate:
        body = edits.cut_at_fence(result.text).rstrip()
        lines = [line for line in body.split("\n")]
        while lines and not lines[0].strip():
            lines.pop(0)
        if not lines:
            return Candidate(result, None, index=index)
        code = "\n".join(lines)
        first_indent = indentation(lines[0])
        if len(first_indent) < len(target.indent):
            code = edits.reindent(code, target.indent)  # the model forgot the body's indentation
        replacement = Replacement(target.start, target.end, "\n" + code)
        checked = await self._verify(view.text, replacement, view.language)
        defects = 0
        if checked.accepted and view.language is not None and view.language.name == "python" and target.name:
            defects = edits.python_defects(replacement.apply(view.text), target.name) or 0
        return Candidate(result, checked, index=index, defects=defects)

    async def _docstring(self, target: ActionTarget, view: DocumentView, path: str) -> ActionOutcome:
        language = view.language
        if language is None:
            return ActionOutcome(reason="unknown language")
        anchor = target.anchor if target.anchor >= 0 else target.start
        anchor_end = target.anchor_end if target.anchor_end >= 0 else target.start
        definition = view.text[anchor:anchor_end]
        header = view.text[anchor:target.start] if target.start > anchor else definition.split("\n", 1)[0]
        prompt = docstring_prompt(self.backend, language, definition=definition[:4000], header=header,
                                  indent=target.indent, name=target.name)
        style = doc_style(language)
        line_marker = style.prefix.strip() if not style.opener else ""

        def stop(text: str) -> int | None:
            lines = text.split("\n")
            offset = 0
            for number, line in enumerate(lines[:-1]):
                if number >= 10:
                    return max(offset - 1, 0)
                if number > 0 and line_marker and not line.lstrip().startswith(line_marker):
                    return max(offset - 1, 0)
                if number > 0 and not line.strip() and not line_marker and number > 3:
                    return max(offset - 1, 0)
                offset += len(line) + 1
            return None

        result = await self.generate(prompt, max_tokens=DOC_MAX_TOKENS, stop_check=stop)
        raw = edits.cut_at_fence(result.text)
        lines = edits.doc_text(raw)
        if not lines:
            return ActionOutcome(reason="the model wrote no documentation")
        new_text = edits.format_doc(lines, style, target.indent, language, target.name)
        replacement = Replacement(target.start, target.start, new_text)
        checked = await self._verify(view.text, replacement, language)
        candidate = Candidate(result, checked, score=result.mean_logprob)
        if not checked.accepted:
            return ActionOutcome(candidates=[candidate], reason=checked.reason)
        return ActionOutcome(replacement=replacement, candidates=[candidate])

    async def _rewrite(self, target: ActionTarget, view: DocumentView, path: str) -> ActionOutcome:
        """Fix or refactor: rewrite whole lines of the range, then trim to the minimal change."""
        if chat_template_of(self.backend) is not None:
            return await self._rewrite_in_context(target, view)
        if target.action == "fix":
            return await self._fix_by_completion(target, view)
        text = view.text
        start, end = target.start, target.end
        lead = text[line_start(text, start):start]
        if not lead.strip():
            start = line_start(text, start)  # whole lines make the indentation unambiguous
        region = text[start:end]
        base_indent = indentation(region.split("\n", 1)[0])
        code = textwrap.dedent(region)
        instruction = (fix_instruction(target.message, view.language) if target.action == "fix"
                       else refactor_instruction(target.preset, view.language))
        prompt = rewrite_prompt(self.backend, view.language, code=code, instruction=instruction)
        limit = min(4 * self.settings.max_tokens, 2 * self.backend.count_tokens(code) + 64)
        result = await self.generate(prompt, max_tokens=max(self.settings.max_tokens, limit))
        new_code = edits.cut_at_fence(result.text)
        new_code = new_code.rstrip() if not region.endswith("\n") else new_code.rstrip() + "\n"
        if not new_code.strip():
            return ActionOutcome(candidates=[Candidate(result, None)], reason="the model wrote no code")
        new_text = edits.reindent(new_code, base_indent) if base_indent or code != region else new_code
        if region.endswith("\n") and not new_text.endswith("\n"):
            new_text += "\n"
        replacement = Replacement(start, end, new_text)
        if start < target.start and new_text.startswith(lead):
            replacement = Replacement(target.start, end, new_text[len(lead):])  # never edit outside the range
        replacement = edits.minimal(text, replacement)
        if replacement.start == replacement.end and not replacement.new_text:
            return ActionOutcome(candidates=[Candidate(result, None)], reason="the model suggested no change")
        checked = await self._verify(text, replacement, view.language)
        candidate = Candidate(result, checked, score=result.mean_logprob)
        if not checked.accepted:
            return ActionOutcome(candidates=[candidate], reason=checked.reason)
        return ActionOutcome(replacement=replacement, candidates=[candidate])

    async def _rewrite_in_context(self, target: ActionTarget, view: DocumentView) -> ActionOutcome:
        """Fix or refactor with an instruct model: the enclosing definition is shown, and the model
        writes it again from the first line to change (the primer holds the lines before it)."""
        text, language = view.text, view.language
        first = line_start(text, target.start)
        last_offset = max(target.start, target.end - 1) if target.end > target.start else target.start
        last = line_end(text, last_offset)
        context_start, context_end = first, last
        definition = view.definition_at(target.start)
        while definition is not None and view.offset(definition.end_byte) < last:
            definition = definition.parent  # the selection runs past it: the definition around both
            while definition is not None and definition.type not in DEFINITION_TYPES:
                definition = definition.parent
        if definition is not None:
            context_start = min(first, line_start(text, view.offset(definition.start_byte)))
            context_end = max(last, line_end(text, view.offset(definition.end_byte)))
        if target.action == "refactor":
            first = context_start  # the model rewrites the whole definition; the diff finds the change
        lead, region = text[context_start:first], text[first:context_end]
        if target.action == "fix":
            problem_line = text[first:line_end(text, target.start)].strip()
            instruction = (f"{fix_instruction(target.message, language)}\n(The problem is on the line "
                           f"`{problem_line}`.)")
            reply = "Reply with the whole code above, changed as little as possible, in one code block."
        else:
            selected = text[first:last]
            instruction = (f"{refactor_instruction(target.preset, language)}\nThe code to rewrite:\n"
                           f"{edits.FENCE}\n{selected}\n{edits.FENCE}")
            reply = "Reply with the whole code above, with that part rewritten, in one code block."
        prompt = edit_prompt(self.backend, language, context=text[context_start:context_end], lead=lead,
                             instruction=instruction, reply=reply)
        limit = 2 * self.backend.count_tokens(region) + 64
        # Counted from where the model starts writing: the lead (if any) is already in the primer.
        base_indent = indentation(text[context_start:line_end(text, context_start)])
        result = await self.generate(prompt, max_tokens=max(self.settings.max_tokens, limit),
                                     stop_check=edits.definition_stop(base_indent) if not lead else None)
        new_region = edits.cut_at_fence(result.text)
        new_region = new_region.rstrip() + ("\n" if region.endswith("\n") else "")
        if not new_region.strip():
            return ActionOutcome(candidates=[Candidate(result, None)], reason="the model wrote no code")
        replacement = edits.minimal(text, Replacement(first, context_end, new_region))
        if replacement.start == replacement.end and not replacement.new_text:
            return ActionOutcome(candidates=[Candidate(result, None)], reason="the model suggested no change")
        if target.action == "refactor" and target.preset not in ("async", "extract") and (
                replacement.start < line_start(text, target.start) or replacement.end > last):
            # A refactoring of a selection changes the selection only.
            return ActionOutcome(candidates=[Candidate(result, None)],
                                 reason="the model changed code outside the selection")
        checked = await self._verify(text, replacement, language)
        candidate = Candidate(result, checked, score=result.mean_logprob)
        if not checked.accepted:
            return ActionOutcome(candidates=[candidate], reason=checked.reason)
        return ActionOutcome(replacement=replacement, candidates=[candidate])

    async def _fix_by_completion(self, target: ActionTarget, view: DocumentView) -> ActionOutcome:
        """Fix for a base model: the code with the problem marked, then a fixed copy the model continues."""
        # A base model cannot follow "fix this"; copying text with one change is what it does well, and
        # marking the line in the first copy tells it which line to change. Greedy first, then samples.
        text, language = view.text, view.language
        comment = (language.line_comment if language is not None else None) or "#"
        first = line_start(text, target.start)
        last = line_end(text, max(target.start, target.end - 1) if target.end > target.start else target.start)
        region = text[first:last]
        definition = view.definition_at(target.start)
        context_start = view.offset(definition.start_byte) if definition is not None else first
        if text.count("\n", context_start, first) > 40:
            context_start = first
        for _ in range(15 if context_start == first else 0):  # no definition: a few lines of context
            if context_start == 0:
                break
            context_start = line_start(text, context_start - 1)
        context_start = line_start(text, context_start)
        lead = text[context_start:first]
        marker = f"  {comment} error: {target.message.strip().splitlines()[0] if target.message.strip() else 'problem'}"
        document = (f"{lead}{region}{marker}\n\n\n{comment} The same code with the error fixed:\n{lead}")
        prompt = ActionPrompt(document, False, "")
        wanted_lines = region.count("\n") + 1
        quoted = re.findall(r"['\u2018\u201c\"`]([A-Za-z_][A-Za-z0-9_]*)['\u2019\u201d\"`]", target.message)

        def stop(generated: str) -> int | None:
            lines = generated.split("\n")
            if len(lines) > wanted_lines:
                return len("\n".join(lines[:wanted_lines]))
            return None

        outcome = ActionOutcome()
        limit = min(4 * self.settings.max_tokens, 2 * self.backend.count_tokens(region) + 32)
        for index in range(3):
            sampling = Sampling() if index == 0 else Sampling(temperature=self.settings.temperature, seed=index)
            result = await self.generate(prompt, max_tokens=limit, sampling=sampling, stop_check=stop)
            lines = result.text.split("\n")[:wanted_lines]
            new_region = "\n".join(line.split(f"  {comment} error:", 1)[0].rstrip() for line in lines)
            if not new_region.strip() or new_region.strip() == region.strip():
                outcome.candidates.append(Candidate(result, None, index=index))
                continue
            if any(re.search(rf"\b{re.escape(name)}\b", region) and re.search(rf"\b{re.escape(name)}\b", new_region)
                   for name in quoted):
                outcome.candidates.append(Candidate(result, None, index=index))
                continue  # the name the diagnostic is about is still there: not a fix
            replacement = edits.minimal(text, Replacement(first, last, new_region))
            checked = await self._verify(text, replacement, language)
            candidate = Candidate(result, checked, score=result.mean_logprob, index=index)
            outcome.candidates.append(candidate)
            if checked.accepted:
                gate = await self._gate(target, view, replacement, "")
                if gate.offered:  # else the next sample may fix it
                    outcome.replacement = replacement
                    self._apply_gate(outcome, gate)
                    return outcome
                candidate.checked = attrs.evolve(checked, accepted=False, reason=gate.reason)
        reasons = {c.checked.reason for c in outcome.candidates if c.checked is not None} - {""}
        outcome.reason = "the model suggested no change" if not reasons else "; ".join(sorted(reasons))
        return outcome

    async def _explain(self, target: ActionTarget, view: DocumentView, path: str) -> ActionOutcome:
        code = view.text[target.start:target.end]
        explanation = await self.explain(code, view, name="", brief=False)
        if not explanation:
            return ActionOutcome(reason="the model wrote no explanation")
        markdown = f"# Explanation\n\n{explanation}\n\n{edits.FENCE}{fence_name(view.language)}\n{code.rstrip()}\n{edits.FENCE}\n"
        return ActionOutcome(explanation=markdown)

    async def explain(self, code: str, view: DocumentView, *, name: str, brief: bool) -> str:
        """Prose about code (markdown), '' when the model said nothing useful."""
        prompt = explain_prompt(self.backend, view.language, code=code, name=name, brief=brief)
        max_tokens = self.settings.hover_max_tokens if brief else self.settings.explain_max_tokens
        stop = edits.first_line_stop if brief else (edits.paragraph_stop if prompt.chat else edits.prose_stop)
        result = await self.generate(prompt, max_tokens=max_tokens, stop_check=stop)
        body = edits.cut_at_fence(result.text).strip()
        if brief and "\n\n" in body:
            body = body.split("\n\n", 1)[0]
        if not body:
            return ""
        return (prompt.primer + body).strip()

    async def hover(self, target: HoverTarget, view: DocumentView, cache: HoverCache) -> str:
        """A short markdown explanation of a definition or call, cached by content."""
        language = view.language.name if view.language else ""
        key = HoverCache.key(getattr(self.backend, "model_id", ""), language, target)
        cached = cache.get(key)
        if cached is not None:
            self.stats["hover_cache_hits"] = self.stats.get("hover_cache_hits", 0) + 1
            return cached
        estimate = self.hover_estimate_ms(target, view)
        if estimate is not None and estimate > self.settings.hover_budget_ms:
            # Too slow here to wait for: what tree-sitter knows, and where the model's answer is.
            self.stats["hover_over_budget"] = self.stats.get("hover_over_budget", 0) + 1
            summary = structural_summary(target, language)
            return (f"{summary}\n\n*The code model needs about {estimate / 1000:.0f} s here (over "
                    f"actions.hoverBudgetMs): use the code action \u201cExplain selection\u201d.*").strip()
        text = await self.hover_sentence(target, view)
        if text:
            markdown = f"**codeassist** \u2014 {text}"
        else:
            markdown = structural_summary(target, language)
        if markdown:
            cache.put(key, markdown)
        return markdown

    def hover_estimate_ms(self, target: HoverTarget, view: DocumentView) -> float | None:
        """How long the quality model would take for this hover, from its measured speed (None: unmeasured)."""
        backend = self.backend
        prompt_ms = getattr(backend, "prompt_ms_per_token", None)
        decode_ms = getattr(backend, "decode_ms_per_token", None)
        if prompt_ms is None or decode_ms is None:
            return None
        prompt = hover_prompt(backend, view.language, code=target.code, kind=target.kind)
        tokens = len(prompt_tokens(backend, prompt))
        return tokens * prompt_ms + HOVER_EXPECTED_TOKENS * decode_ms

    async def hover_sentence(self, target: HoverTarget, view: DocumentView) -> str:
        """One clean sentence from the model (greedy, then one sample when the first was junk); '' if none."""
        prompt = hover_prompt(self.backend, view.language, code=target.code, kind=target.kind)
        for attempt in range(2):
            sampling = Sampling() if attempt == 0 else Sampling(temperature=0.5, seed=7)
            result = await self.generate(prompt, max_tokens=self.settings.hover_max_tokens, sampling=sampling,
                                         stop_check=edits.sentences_stop(HOVER_SENTENCES))
            sentence = clean_sentence(prompt.primer, result.text, cut=result.finish_reason == "length")
            if sentence:
                return sentence
        return ""


# Shortest acceptable hover sentence, in words after the forced opening ("This function ...").
MIN_HOVER_WORDS = 3


def clean_sentence(primer: str, generated: str, *, cut: bool) -> str:
    """The primer plus the model's first line as markdown prose; '' when it is junk (code, too short, no words)."""
    line = generated.strip().split("\n", 1)[0].strip() if generated.strip() else ""
    line = re.sub(r"</?code>", "`", line)
    line = re.sub(r"<[^>]{1,20}>", "", line).strip()
    if cut and "." in line:
        line = line[:line.rindex(".") + 1]  # ran out of tokens: keep whole sentences
    words = re.findall(r"[A-Za-z]{2,}", line)
    if len(words) < MIN_HOVER_WORDS or "```" in line or line.count(";") > 1 or line.rstrip().endswith(("{", ":")):
        return ""
    if sum(c.isalpha() or c.isspace() for c in line) < 0.6 * len(line):
        return ""  # mostly symbols: code, not prose
    sentence = re.sub(r"\s+", " ", f"{primer} {line}").strip()
    if not sentence.endswith((".", "!", "?", "`", ")")):
        sentence += "."
    return sentence


def structural_summary(target: HoverTarget, language: str) -> str:
    """What tree-sitter alone can say (signature, first docstring line), labelled as not from the model."""
    code = target.code.strip()
    if not code:
        return ""
    lines = code.split("\n")
    signature = lines[0].rstrip().rstrip("{").rstrip()
    doc = ""
    match = re.search(r'^[ \t]*(?:[rRuUbB]{0,2})("""|\'\'\')\s*(.*?)(?:\1|$)', "\n".join(lines[1:8]), re.MULTILINE | re.DOTALL)
    if match and match.group(2).strip():
        doc = match.group(2).strip().split("\n", 1)[0].strip()
    parts = ["*Structural summary (the model gave no explanation):*", "", f"{FENCE}{language}\n{signature}\n{FENCE}"]
    if doc:
        parts += ["", doc]
    return "\n".join(parts)
