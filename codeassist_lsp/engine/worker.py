"""One model thread: the newest completion preempts older work; a cancel is seen every token."""

from __future__ import annotations

import concurrent.futures
import itertools
import logging
import threading
import time
from collections.abc import Callable

from codeassist_lsp.engine.base import CancelFlag, DecodeBackend, GenerationRequest, GenerationResult
from codeassist_lsp.errors import Cancelled

log = logging.getLogger(__name__)

# Lower runs first: typing never waits behind a prewarm or a docstring.
PRIORITY = {"completion": 0, "generation": 1, "prewarm": 2}


class Job:
    """A request on its way through the worker, with the future its caller awaits."""

    _ids = itertools.count()

    def __init__(self, request: GenerationRequest) -> None:
        self.id = next(self._ids)
        self.request = request
        self.cancel_flag = CancelFlag()
        self.future: concurrent.futures.Future[GenerationResult] = concurrent.futures.Future()
        self.submitted = time.monotonic()
        self.preemptions = 0

    def cancel(self, reason: str = "cancelled") -> None:
        """Stop this job at its next token (or before it starts)."""
        self.cancel_flag.cancel(reason)

    def fail(self, error: BaseException) -> None:
        """Resolve the future with an error unless the caller already gave up on it."""
        if not self.future.done():
            self.future.set_exception(error)

    @property
    def sort_key(self) -> tuple[int, int]:
        """Priority first, then newest first among completions (older ones are stale)."""
        kind = self.request.kind
        return PRIORITY[kind], (-self.id if kind == "completion" else self.id)


class ModelWorker:
    """Owns the backend; runs one job at a time on its own thread."""

    def __init__(self, backend_factory: Callable[[], DecodeBackend]) -> None:
        self._backend_factory = backend_factory
        self.backend: DecodeBackend | None = None
        self.load_error: BaseException | None = None
        self.loaded = threading.Event()
        self._lock = threading.Condition()
        self._pending: list[Job] = []
        self._running: Job | None = None
        self._closed = False
        self._thread = threading.Thread(target=self._loop, name="codeassist-model", daemon=True)
        self._thread.start()

    def submit(self, request: GenerationRequest) -> Job:
        """Queue a request; a completion supersedes every older completion and prewarm."""
        job = Job(request)
        with self._lock:
            if self._closed:
                job.fail(Cancelled("The model worker is shut down."))
                return job
            if request.kind == "completion":
                self._supersede_locked(("completion", "prewarm"))
                running = self._running
                if running is not None and running.request.kind == "generation":
                    # Typing never waits for a docstring: stop it now, run it again afterwards.
                    running.cancel("preempted")
            elif request.kind == "prewarm":
                if any(j.request.kind == "completion" for j in self._pending) or (
                    self._running is not None and self._running.request.kind == "completion"
                ):
                    job.fail(Cancelled("prewarm skipped: a completion is queued"))
                    return job
                self._supersede_locked(("prewarm",))
            self._pending.append(job)
            self._lock.notify()
        return job

    def _supersede_locked(self, kinds: tuple[str, ...]) -> None:
        running = self._running
        if running is not None and running.request.kind in kinds:
            running.cancel("superseded")
        for old in [j for j in self._pending if j.request.kind in kinds]:
            self._pending.remove(old)
            old.cancel("superseded")
            old.fail(Cancelled("superseded by a newer request"))

    def _requeue(self, job: Job) -> None:
        """Put a preempted generation back in the queue with a fresh cancel flag (same future)."""
        job.cancel_flag = CancelFlag()
        job.preemptions += 1
        with self._lock:
            self._running = None
            self._pending.append(job)
            self._lock.notify()

    def _next_job(self) -> Job | None:
        with self._lock:
            while not self._pending and not self._closed:
                self._lock.wait()
            if self._closed:
                return None
            self._pending.sort(key=lambda j: j.sort_key)
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
        while (job := self._next_job()) is not None:
            if job.preemptions == 0 and not job.future.set_running_or_notify_cancel():
                with self._lock:  # the caller gave up before the job started
                    self._running = None
                continue
            try:
                if self.backend is None:
                    raise self.load_error or RuntimeError("no model")
                if job.cancel_flag.is_set:
                    raise Cancelled(job.cancel_flag.reason or "cancelled")
                started = time.monotonic()
                result = self.backend.run(job.request, job.cancel_flag)
                result.queue_ms = (started - job.submitted) * 1000
                if result.finish_reason == "cancelled":
                    if job.cancel_flag.reason == "preempted":
                        self._requeue(job)
                        continue
                    raise Cancelled(job.cancel_flag.reason or "cancelled")
                job.future.set_result(result)
            except BaseException as error:
                job.fail(error)
            finally:
                with self._lock:
                    self._running = None

    def close(self) -> None:
        """Stop the thread after the running job and free the model."""
        with self._lock:
            self._closed = True
            if self._running is not None:
                self._running.cancel("shutdown")
            for job in self._pending:
                job.fail(Cancelled("shutdown"))
            self._pending.clear()
            self._lock.notify_all()
        self._thread.join(timeout=5)
        # Freeing the model under a still-running decode would crash the process: leave it to exit.
        if self.backend is not None and not self._thread.is_alive():
            self.backend.close()
