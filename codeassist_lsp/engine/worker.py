"""One model thread for both tiers: the newest completion preempts older work; a cancel stops a decode.

The completion tier (the fast model) and the quality tier (the code model for actions and hover)
run on this one thread, so on a small CPU they never decode at the same time, and typing always
goes first: a completion preempts a running action (it re-runs afterwards, its prompt still cached).
"""

from __future__ import annotations

import concurrent.futures
import itertools
import logging
import threading
import time
from collections.abc import Callable

import attrs

from codeassist_lsp.engine.base import CancelFlag, DecodeBackend, GenerationRequest, GenerationResult, Tier
from codeassist_lsp.errors import Cancelled

log = logging.getLogger(__name__)

# Lower runs first: typing never waits behind a prewarm or a docstring; background work (the
# quality model's speculation probe) runs only when nothing else waits.
# A prewarm is the next keystroke's prompt (the first in a file, or after the window moved): it goes
# before an action, which it preempts, or with actions running back to back it never ran and those
# keystrokes evaluated their whole prompt (1.3-1.5 s in the pause replay with actions).
PRIORITY = {"completion": 0, "prewarm": 1, "generation": 2, "background": 3}
# Kinds that a completion stops and re-runs afterwards (rather than drops).
PREEMPTIBLE = ("generation", "background")

# After a completion's answer (early or whole) the model thread waits, at most this long, until the
# event loop has shaped, verified and gated it before it decodes again (the rest, or the next job).
# On a 2-core machine the decode threads would otherwise take both cores and preempt the loop
# mid-answer: a 2-5 ms stall in about 1 answer of 10 in the pause replay.
HANDOFF_WAIT_S = 0.05

# Work run on the model thread that is not a generation: fn(backend, cancel) -> result.
BackgroundTask = Callable[[DecodeBackend, CancelFlag], object]


class Job:
    """A request on its way through the worker, with the future its caller awaits."""

    _ids = itertools.count()

    def __init__(self, request: GenerationRequest, task: BackgroundTask | None = None) -> None:
        self.id = next(self._ids)
        self.request = request
        self.task = task
        self.cancel_flag = CancelFlag()
        self.future: concurrent.futures.Future[GenerationResult] = concurrent.futures.Future()
        # The whole generation; `future` resolves earlier with the part ready at a time budget.
        self.final: concurrent.futures.Future[GenerationResult] = concurrent.futures.Future()
        self.submitted = time.monotonic()
        self.preemptions = 0
        # What a preempted generation had written: it resumes after it instead of starting over.
        self.done_part: GenerationResult | None = None
        # Set when the caller has handled the answer: the model thread may take the cores again.
        self.answer_handled = threading.Event()

    def cancel(self, reason: str = "cancelled") -> None:
        """Stop this job at its next token (or before it starts)."""
        self.cancel_flag.cancel(reason)
        self.answer_handled.set()  # nobody handles an answer the model thread should wait for

    def answer_taken(self) -> None:
        """The caller has handled the answer (or will not): the model thread may decode again."""
        self.answer_handled.set()

    def fail(self, error: BaseException) -> None:
        """Resolve the futures with an error unless the caller already gave up on them."""
        for future in (self.future, self.final):
            if not future.done():
                future.set_exception(error)

    def deliver_early(self, partial: GenerationResult) -> None:
        """The part of the result ready at the time budget: the caller stops waiting; generation goes on."""
        if not self.future.done():
            self.future.set_result(partial)

    def finish(self, result: GenerationResult) -> None:
        """The whole result."""
        if not self.future.done():
            self.future.set_result(result)
        if not self.final.done():
            self.final.set_result(result)

    @property
    def continuing(self) -> bool:
        """Whether the caller has its early part and this job only completes the rest for later."""
        return self.future.done() and not self.final.done()

    @property
    def sort_key(self) -> tuple[int, int]:
        """Priority first, then newest first among completions (older ones are stale)."""
        kind = self.request.kind
        return PRIORITY[kind], (-self.id if kind == "completion" else self.id)


def _remaining(job: Job) -> GenerationRequest | None:
    """The request to run now: all of it, or (after a preemption) the rest after what was written.

    The written tokens join the prompt (their keys and values are still cached, so they cost one
    decode), the token limit shrinks by them, and stop checks see the whole text. None: nothing is left.
    """
    done, request = job.done_part, job.request
    if done is not None and done.samples:
        return attrs.evolve(request, resume=tuple(done.samples))  # side-by-side samples go on where they were
    if done is None or not done.token_ids:
        return request
    left = request.max_tokens - len(done.token_ids)
    if left <= 0:
        return None
    check, before = request.stop_check, done.text

    def shifted(text: str) -> int | None:
        cut = check(before + text) if check is not None else None
        return None if cut is None else max(0, cut - len(before))

    return attrs.evolve(request, prompt_tokens=request.prompt_tokens + tuple(done.token_ids), max_tokens=left,
                        stop_check=shifted if check is not None else None, not_before=0.0,
                        first_token_prefix=b"")  # the first token was written before the preemption


def _joined(done: GenerationResult | None, rest: GenerationResult) -> GenerationResult:
    """A resumed generation's result: what was written before the preemption, then the rest."""
    if done is None or not done.token_ids:
        return rest
    return attrs.evolve(rest, text=done.text + rest.text, prompt_tokens=done.prompt_tokens,
                        generated_tokens=len(done.token_ids) + rest.generated_tokens,
                        token_logprobs=done.token_logprobs[:len(done.token_ids)] + rest.token_logprobs,
                        token_sizes=done.token_sizes[:len(done.token_ids)] + rest.token_sizes,
                        token_ids=done.token_ids + rest.token_ids, prompt_ms=done.prompt_ms + rest.prompt_ms,
                        generate_ms=done.generate_ms + rest.generate_ms)


def _is_remote(backend: DecodeBackend | None) -> bool:
    """Whether a backend's work happens on an inference server (not this process's model thread)."""
    return bool(getattr(backend, "remote", False))


class ModelWorker:
    """Owns the backends of both tiers; runs one job at a time on its own thread."""

    def __init__(self, backend_factory: Callable[[], DecodeBackend],
                 quality_factory: Callable[[DecodeBackend | None], DecodeBackend | None] | None = None) -> None:
        self._backend_factory = backend_factory
        # Given the completion backend, the quality tier's (itself when one model serves both;
        # None: the quality tier falls back to the completion model). Loaded when the thread is idle.
        self._quality_factory = quality_factory
        self.backend: DecodeBackend | None = None
        self.load_error: BaseException | None = None
        self.loaded = threading.Event()
        self.quality: DecodeBackend | None = None
        self.quality_error: BaseException | None = None
        self.quality_loaded = threading.Event()
        if quality_factory is None:
            self.quality_loaded.set()
        self._lock = threading.Condition()
        self._pending: list[Job] = []
        self._running: Job | None = None
        # Jobs an inference server works on (their own threads; never preempted by local work).
        self._remote_running: set[Job] = set()
        # A completion whose answer the caller is handling: the model thread waits for it (_hand_over).
        self._held: Job | None = None
        self._closed = False
        self._thread = threading.Thread(target=self._loop, name="codeassist-model", daemon=True)
        self._thread.start()

    def backend_for(self, tier: Tier) -> DecodeBackend | None:
        """The backend that serves a tier: the quality model, or the completion model in its place."""
        if tier == "quality" and self.quality is not None:
            return self.quality
        return self.backend

    def busy_with_completion(self) -> bool:
        """Whether a completion someone waits for is queued or running."""
        with self._lock:
            jobs = [*self._pending, *self._remote_running, *([self._running] if self._running is not None else [])]
            return any(j.request.kind == "completion" and not j.future.done() for j in jobs)

    def submit_task(self, task: BackgroundTask, tier: Tier = "quality") -> Job:
        """Run `task(backend, cancel)` on the model thread when nothing else waits (preemptible)."""
        return self.submit(GenerationRequest(prompt_tokens=(), max_tokens=0, kind="background", tier=tier), task)

    def submit(self, request: GenerationRequest, task: BackgroundTask | None = None) -> Job:
        """Queue a request; a completion supersedes every older completion and prewarm, and it and a
        prewarm preempt a local action."""
        job = Job(request, task)
        with self._lock:
            if self._closed:
                job.fail(Cancelled("The model worker is shut down."))
                return job
            running = self._running
            if request.kind == "completion":
                if self._held is not None:
                    self._held.answer_taken()
                self._supersede_locked(("completion", "prewarm"))
                self._preempt_locked(running)
            elif request.kind == "generation" and running is not None and running.request.kind == "background":
                running.cancel("preempted")
            if running is not None and running.continuing and request.kind != "background":
                running.cancel("superseded")  # nobody waits for it: the rest of a suggestion already shown
            elif request.kind == "prewarm":
                if any(j.request.kind == "completion" for j in self._pending) or (
                    self._running is not None and self._running.request.kind == "completion"
                ):
                    job.fail(Cancelled("prewarm skipped: a completion is queued"))
                    return job
                self._supersede_locked(("prewarm",))
                self._preempt_locked(running)
            self._pending.append(job)
            self._lock.notify()
        return job

    def _preempt_locked(self, running: Job | None) -> None:
        """Typing never waits for a docstring: stop the local action now, run it again afterwards."""
        if (running is not None and running.request.kind in PREEMPTIBLE
                and not _is_remote(self.backend_for("completion"))):
            running.cancel("preempted")

    def _supersede_locked(self, kinds: tuple[str, ...]) -> None:
        running = self._running
        if running is not None and running.request.kind in kinds:
            running.cancel("superseded")
        for remote in self._remote_running:
            if remote.request.kind in kinds:
                remote.cancel("superseded")  # closes its stream: the server stops generating
        for old in [j for j in self._pending if j.request.kind in kinds]:
            self._pending.remove(old)
            old.cancel("superseded")
            old.fail(Cancelled("superseded by a newer request"))

    def _yield_to_waiting_action(self, job: Job) -> None:
        """Stop generating the rest of a shown suggestion when an action waits: while the user types,
        those rests would fill every pause between keys and the action would never run."""
        with self._lock:
            if any(j.request.kind == "generation" for j in self._pending):
                job.cancel("superseded")

    def _requeue(self, job: Job) -> None:
        """Put a preempted generation back in the queue with a fresh cancel flag (same future)."""
        job.cancel_flag = CancelFlag()
        job.preemptions += 1
        with self._lock:
            self._running = None
            if self._closed:
                job.fail(Cancelled("shutdown"))
                return
            self._pending.append(job)
            self._lock.notify()

    def _next_job(self) -> Job | None:
        with self._lock:
            while not self._pending and not self._closed:
                if not self.quality_loaded.is_set():
                    break  # idle: load the quality tier now
                self._lock.wait()
            if self._closed:
                return None
            if not self._pending:
                return None
            self._pending.sort(key=lambda j: j.sort_key)
            if self._pending[0].request.tier == "quality" and not self.quality_loaded.is_set():
                return None  # load the quality model first: the job is for it
            job = self._pending.pop(0)
            self._running = job
            return job

    def _loop(self) -> None:
        try:
            self.backend = self._backend_factory()
        except BaseException as error:  # reported to every caller, the server keeps running
            self.load_error = error
            log.error("model failed to load: %s", error)
        finally:
            self.loaded.set()
        while True:
            job = self._next_job()
            if job is None:
                if self._closed:
                    return
                self._load_quality()
                continue
            if job.preemptions == 0 and not job.future.set_running_or_notify_cancel():
                with self._lock:  # the caller gave up before the job started
                    self._running = None
                continue
            if _is_remote(self.backend_for(job.request.tier)):
                # An inference server does the work: this thread goes on with local jobs meanwhile.
                with self._lock:
                    self._running = None
                    self._remote_running.add(job)
                threading.Thread(target=self._execute, args=(job,), name="codeassist-remote", daemon=True).start()
                continue
            self._execute(job)

    def _execute(self, job: Job) -> None:
        """Run one job to its end (or its preemption) on the calling thread."""
        answered = False
        try:
            backend = self.backend_for(job.request.tier)
            if backend is None:
                raise self.load_error or RuntimeError("no model")
            if job.cancel_flag.is_set:
                raise Cancelled(job.cancel_flag.reason or "cancelled")
            if job.task is not None:
                outcome = job.task(backend, job.cancel_flag)
                if job.cancel_flag.is_set and job.cancel_flag.reason == "preempted":
                    self._requeue(job)
                    return
                job.finish(outcome)  # type: ignore[arg-type]
                return
            started = time.monotonic()
            queue_ms = (started - job.submitted) * 1000

            def early(partial: GenerationResult, job: Job = job) -> None:
                partial.queue_ms = queue_ms
                job.deliver_early(partial)
                self._hand_over(job, backend)
                self._yield_to_waiting_action(job)

            request = _remaining(job)
            if request is None:
                job.finish(attrs.evolve(job.done_part, finish_reason="length"))  # type: ignore[arg-type]
                return
            result = backend.run(request, job.cancel_flag, early if request.budget_ms > 0 else None)
            result.queue_ms = queue_ms
            result = _joined(job.done_part, result)
            if result.finish_reason == "cancelled":
                if job.cancel_flag.reason == "preempted":
                    if request.kind == "generation" and (result.token_ids or result.samples):
                        job.done_part = result  # keep what it wrote
                    self._requeue(job)
                    return
                raise Cancelled(job.cancel_flag.reason or "cancelled")
            job.finish(result)
            answered = True
        except BaseException as error:
            job.fail(error)
        finally:
            with self._lock:
                if self._running is job:
                    self._running = None
                self._remote_running.discard(job)
        if answered:
            self._hand_over(job, backend)

    def _hand_over(self, job: Job, backend: DecodeBackend | None) -> None:
        """Decode nothing more until the caller has handled a completion's answer (a bounded wait).

        A newer completion ends the wait at once (submit): no keystroke waits for an older answer.
        """
        if job.request.kind != "completion" or backend is None or _is_remote(backend):
            return
        with self._lock:
            self._held = job
        job.answer_handled.wait(HANDOFF_WAIT_S)
        with self._lock:
            self._held = None

    def _load_quality(self) -> None:
        """Load the quality tier (on this thread, once, when it first has nothing else to do)."""
        assert self._quality_factory is not None
        try:
            self.quality = self._quality_factory(self.backend)
        except BaseException as error:  # the quality tier falls back to the completion model
            self.quality_error = error
            log.warning("quality model not loaded: %s", error)
        finally:
            self.quality_loaded.set()

    def close(self) -> None:
        """Stop the thread after the running job and free the model."""
        with self._lock:
            self._closed = True
            if self._running is not None:
                self._running.cancel("shutdown")
            for remote in self._remote_running:
                remote.cancel("shutdown")
            for job in self._pending:
                job.fail(Cancelled("shutdown"))
            self._pending.clear()
            self._lock.notify_all()
        self._thread.join(timeout=5)
        # Freeing the model under a still-running decode would crash the process: leave it to exit.
        if not self._thread.is_alive():
            backend, quality = self.backend, self.quality
            # Unreachable before freed: a prewarm timer or a late request on the event loop would
            # otherwise tokenize with a freed model (SIGSEGV/SIGABRT at shutdown).
            self.backend = self.quality = None
            if quality is not None and quality is not backend:
                quality.close()
            if backend is not None:
                backend.close()
