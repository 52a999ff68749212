"""textDocument/hover: a short explanation of the function, class or call under the mouse.

Debounced (editors send a hover per mouse rest), superseded by the next hover, cancellable
($/cancelRequest or the work-done token), cached by content, and switched off by a setting.
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING

from lsprotocol import types

from codeassist_lsp.actions.runner import ActionRunner, HoverCache
from codeassist_lsp.actions.targets import hover_target
from codeassist_lsp.errors import Cancelled, CodeassistError
from codeassist_lsp.features import offset_in, open_document
from codeassist_lsp.features.code_actions import WorkDone, document_view, position_of

if TYPE_CHECKING:
    from codeassist_lsp.server import CodeassistServer

log = logging.getLogger(__name__)

# A hover that arrives while the models load waits this long for them, then gives up.
HOVER_LOAD_WAIT_S = 10.0


def register(server: CodeassistServer) -> None:
    """Advertise hover; every request checks the setting (it can change at run time)."""
    cache = HoverCache()
    latest: dict[str, asyncio.Task[object] | None] = {"task": None}

    @server.feature(types.TEXT_DOCUMENT_HOVER)
    async def hover(params: types.HoverParams) -> types.Hover | None:
        settings = server.settings.actions
        if not settings.hover or server.service is None or open_document(server, params.text_document.uri) is None:
            return None
        server.stats["hover_requests"] = server.stats.get("hover_requests", 0) + 1
        document, view = document_view(server, params.text_document.uri)
        if not server.policy.allows("hover", document.language_id, document.path):
            return None
        offset = min(offset_in(document, params.position), len(view.text))
        target = hover_target(view, offset)
        if target is None:
            return None
        hover_range = types.Range(start=position_of(server, view.text, target.start),
                                  end=position_of(server, view.text, target.end))
        runner = ActionRunner(server.service, settings, server.stats)
        # A newer hover supersedes this one: the mouse moved on.
        previous, latest["task"] = latest["task"], asyncio.current_task()
        if previous is not None and not previous.done():
            previous.cancel()
        try:
            worker = runner.service.worker
            if not worker.quality_loaded.is_set():
                await runner.until_ready(HOVER_LOAD_WAIT_S)  # superseded by the next hover meanwhile
            if not (worker.loaded.is_set() and worker.quality_loaded.is_set()) or runner.service.backend is None:
                return None
            key = HoverCache.key(runner.backend.model_id, view.language.name if view.language else "", target)
            markdown = cache.get(key)
            if markdown is None:
                await asyncio.sleep(settings.hover_debounce_ms / 1000)
                current = open_document(server, params.text_document.uri)
                if current is None or current.version != view.version:
                    return None
                async with WorkDone(server, "Explaining", params.work_done_token, server_created=False) as work:
                    runner.progress = work.report
                    markdown = await runner.hover(target, view, cache)
            else:
                server.stats["hover_cache_hits"] = server.stats.get("hover_cache_hits", 0) + 1
        except Cancelled:
            return None
        except CodeassistError as error:
            server.report_error(error)
            return None
        finally:
            if latest["task"] is asyncio.current_task():
                latest["task"] = None
        if not markdown:
            return None
        return types.Hover(contents=types.MarkupContent(kind=types.MarkupKind.Markdown, value=markdown),
                           range=hover_range)
