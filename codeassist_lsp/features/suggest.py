"""The async bridge from an LSP request to the completion service, shared by both completion surfaces."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from concurrent.futures import Future
from typing import TYPE_CHECKING

from lsprotocol import types

from codeassist_lsp.errors import Cancelled, CodeassistError
from codeassist_lsp.features import offset_in, open_document
from codeassist_lsp.engine.base import GenerationResult
from codeassist_lsp.engine.worker import Job
from codeassist_lsp.service import PreparedCompletion, Suggestion

if TYPE_CHECKING:
    from codeassist_lsp.server import CodeassistServer

log = logging.getLogger(__name__)


def _inside(text: str, lines: Sequence[str], position: types.Position) -> bool:
    """Whether the position names a line of the document (clients sometimes race edits)."""
    if position.line < len(lines):
        return True
    return position.line == len(lines) and (not text or text.endswith("\n"))


# A request that arrives while the model loads waits for it (up to this long) instead of coming back
# empty: the user is waiting for exactly this suggestion, and an editor asks again only on the next
# keystroke. A newer request or a client's cancel ends the wait.
MODEL_WAIT_S = 5.0


def _when_whole(server: CodeassistServer, job: Job, prepared: PreparedCompletion) -> None:
    """Past its time budget a suggestion shows early; the rest, when generated, joins it for typed-ahead."""
    loop = asyncio.get_running_loop()
    service = server.service

    def done(final: Future[GenerationResult]) -> None:
        if final.cancelled() or final.exception() is not None or service is None:
            return  # superseded by the next keystroke: nobody needs the rest
        loop.call_soon_threadsafe(service.finish_rest, prepared, final.result())

    job.final.add_done_callback(done)


async def suggest_at(server: CodeassistServer, uri: str, position: types.Position) -> Suggestion | None:
    """Run the pipeline for a cursor; None for nothing to show (never raises for expected cases)."""
    server.stats["requests"] += 1
    service = server.service
    options = server.settings.completion
    document = open_document(server, uri)
    if (document is None or service is None or not options.enabled
            or document.language_id in options.disabled_languages
            or not server.policy.allows("completion", document.language_id, document.path)):
        return None
    if not service.worker.loaded.is_set():
        await service.until_loaded(MODEL_WAIT_S)
    if not service.worker.loaded.is_set() or service.backend is None:
        server.stats["unavailable"] += 1
        if service.worker.load_error is not None and isinstance(service.worker.load_error, CodeassistError):
            server.report_error(service.worker.load_error)
        return None
    version = document.version
    text = document.source
    if not _inside(text, document.lines, position):
        return None
    offset = offset_in(document, position)
    job: Job | None = None
    try:
        try:
            prepared = service.prepare(text, offset, path=document.path, language_id=document.language_id)
            job = service.submit(prepared)
            result = None
            if job is not None:
                answer = asyncio.wrap_future(job.future)
                answer.add_done_callback(lambda f: f.cancelled() or f.exception())  # retrieved if abandoned
                try:
                    limit = options.answer_within_ms / 1000 if options.answer_within_ms > 0 else None
                    result = await asyncio.wait_for(asyncio.shield(answer), limit)
                except asyncio.CancelledError:
                    job.cancel("client cancelled the request")
                    server.stats["cancelled"] += 1
                    raise
                except TimeoutError:
                    # Answer now rather than late; the job goes on (a newer key supersedes it as usual) and
                    # its evaluated prompt and answer serve the next request.
                    server.stats["over_limit"] = server.stats.get("over_limit", 0) + 1
                    _when_whole(server, job, prepared)
                    return None
                if result.finish_reason == "budget":
                    _when_whole(server, job, prepared)
        except Cancelled:
            server.stats["cancelled"] += 1
            return None
        except CodeassistError as error:
            server.report_error(error)
            return None
        current = open_document(server, uri)
        if current is None or current.version != version:  # edited or closed meanwhile
            server.stats["stale"] += 1
            return None
        # Where each answer came from (benchmarks tell model work from typed-ahead and cache hits by it).
        source = ("typed-ahead" if prepared.typed_ahead is not None else "cache" if prepared.cached is not None
                  else "gated" if result is None else "model")
        record: dict[str, object] = {"version": version, "source": source}
        if prepared.cached is not None:
            record["tier"] = prepared.cache_tier
        if result is not None and result.server_ms:
            record["server_ms"] = round(result.server_ms, 2)
        if result is not None:
            record.update(prompt_tokens=result.prompt_tokens, reused_tokens=result.reused_tokens,
                          evaluated_tokens=result.evaluated_tokens, generated_tokens=result.generated_tokens,
                          queue_ms=round(result.queue_ms, 2), prompt_ms=round(result.prompt_ms, 2),
                          generate_ms=round(result.generate_ms, 2), finish=result.finish_reason)
        server.recent_requests.append(record)  # type: ignore[arg-type]
        suggestion = service.finish(prepared, result)
        if "gate_us" in suggestion.timings:  # what acceptance gating cost this answer, and its verdict
            # Gating judges shown text only, so text emptied after it was withheld by it.
            record.update(gate_us=suggestion.timings["gate_us"], gate_cpu_us=suggestion.timings["gate_cpu_us"],
                          withheld=not suggestion.text)
        server.stats["shown" if suggestion.text else "empty"] += 1
        log.debug("suggestion at %s:%d:%d (%s) %r %s", uri, position.line, position.character,
                  suggestion.mode, suggestion.text, suggestion.timings)
        return suggestion
    finally:
        if job is not None:  # an answer not handed to finish() (stale, late): the model thread may go on
            job.answer_taken()
