"""textDocument/codeAction (cheap list) and codeAction/resolve (the model), with progress and cancellation.

Clients that cannot resolve `edit` get a command instead; it computes the edit and applies it with
workspace/applyEdit. Explanations are shown with window/showDocument (a temp .md file) or showMessage.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import tempfile
import time
import uuid
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lsprotocol import types
from pygls.exceptions import JsonRpcContentModified, JsonRpcException, JsonRpcRequestCancelled
from pygls.uris import from_fs_path

from codeassist_lsp.actions.checked import candidate_filter
from codeassist_lsp.actions.edits import Replacement
from codeassist_lsp.actions.runner import ActionOutcome, ActionRunner
from codeassist_lsp.actions.targets import (
    KIND_DOCSTRING, KIND_EXPLAIN, KIND_EXTRACT, KIND_FIX, KIND_GENERATE, KIND_REFACTOR, ActionTarget,
    DocumentView, list_actions,
)
from codeassist_lsp.errors import Cancelled, CodeassistError
from codeassist_lsp.features import offset_in, open_document
from codeassist_lsp.features.documents import schedule_prewarm
from codeassist_lsp.verify import typecheck

if TYPE_CHECKING:
    from codeassist_lsp.server import CodeassistServer

log = logging.getLogger(__name__)

COMMAND_APPLY = "codeassist.applyAction"
COMMAND_EXPLAIN = "codeassist.explain"
# Work shorter than this shows no progress at all (a flash of a progress bar is noise).
PROGRESS_AFTER_SECONDS = 0.3
ADVERTISED_KINDS = [KIND_FIX, KIND_GENERATE, KIND_DOCSTRING, KIND_REFACTOR, KIND_EXTRACT, KIND_EXPLAIN]
# The agent's entry in the code-action menu runs a command of the client's own, which asks for the
# instruction (LSP has no request for free text) and then calls the server's codeassist.agent.
CHANGE_WORKSPACE = "codeassist.changeWorkspace"
KIND_AGENT = f"{KIND_REFACTOR}.agent"


# -- client capabilities ---------------------------------------------------------------------------

def supports_resolve_edit(server: CodeassistServer) -> bool:
    """Whether the client resolves a code action's `edit` lazily (else it gets a command)."""
    caps = server.client_capabilities
    code_action = caps.text_document.code_action if caps and caps.text_document else None
    support = code_action.resolve_support if code_action else None
    return bool(support and "edit" in support.properties and code_action.data_support)


def supports_show_document(server: CodeassistServer) -> bool:
    """Whether the client can open a document we name (window/showDocument)."""
    caps = server.client_capabilities
    window = caps.window if caps else None
    return bool(window and window.show_document and window.show_document.support)


def supports_change_workspace(server: CodeassistServer) -> bool:
    """Whether the client has the command that asks for the agent's instruction (VS Code's extension and
    our Neovim config declare `experimental.codeassist.changeWorkspace`)."""
    caps = server.client_capabilities
    experimental = caps.experimental if caps else None
    ours = experimental.get("codeassist") if isinstance(experimental, dict) else None
    return bool(isinstance(ours, dict) and ours.get("changeWorkspace"))


def agent_action(server: CodeassistServer, document: Any, only: list[str] | None) -> types.CodeAction | None:
    """"codeassist: Change the workspace…" (the agent), for clients that can ask for the instruction."""
    if not supports_change_workspace(server) or server.policy_root is None:
        return None
    if only and not any(KIND_AGENT == kind or KIND_AGENT.startswith(kind + ".") for kind in only):
        return None
    folder = from_fs_path(str(Path(document.path).parent)) if document.path else None
    return types.CodeAction(title="codeassist: Change the workspace…", kind=KIND_AGENT,
                            command=types.Command(title="codeassist: Change the workspace…", command=CHANGE_WORKSPACE,
                                                  arguments=[{"folder": folder}]))


# -- progress --------------------------------------------------------------------------------------

class WorkDone:
    """$/progress for work that runs longer than PROGRESS_AFTER_SECONDS, cancellable from the client.

    Uses the client's workDoneToken when the request carried one, else creates a token (when the
    client supports window/workDoneProgress). A client cancel cancels the awaiting task, which
    cancels the model job at its next token.
    """

    def __init__(self, server: CodeassistServer, title: str, token: types.ProgressToken | None = None,
                 *, server_created: bool = True) -> None:
        self.server = server
        self.server_created = server_created
        self.title = title
        self.token = token
        self._client_token = token is not None
        self._begun = False
        self._timer: asyncio.TimerHandle | None = None
        self._task: asyncio.Task[Any] | None = None
        self._starting: asyncio.Future[Any] | None = None
        self._last_message = ""

    async def __aenter__(self) -> WorkDone:
        self._task = asyncio.current_task()
        loop = asyncio.get_running_loop()
        self._timer = loop.call_later(PROGRESS_AFTER_SECONDS,
                                      lambda: setattr(self, "_starting", asyncio.ensure_future(self._begin())))
        return self

    async def _begin(self) -> None:
        progress = self.server.work_done_progress
        if self.token is None:
            if not self.server_created or not self.server.client_supports_progress():
                return
            token = f"codeassist-{uuid.uuid4()}"
            try:
                await progress.create_async(token)
            except Exception:  # a client that refuses progress still gets its result
                return
            self.token = token
        if self._task is None or self._task.done():
            return
        # percentage 0: this progress reports percentages (the share of the token limit generated).
        progress.begin(self.token, types.WorkDoneProgressBegin(
            title=self.title, message=self._last_message or None, cancellable=True, percentage=0))
        self._begun = True
        future = progress.tokens.get(self.token)
        if future is not None:
            future.add_done_callback(self._on_client_cancel)

    def _on_client_cancel(self, future: Any) -> None:
        if future.cancelled() and self._task is not None and not self._task.done():
            log.info("work done progress %s cancelled by the client", self.token)
            self._task.cancel()

    def report(self, message: str, percentage: int | None = None) -> None:
        """A progress message (shown only once the progress began)."""
        self._last_message = message
        if self._begun and self.token is not None:
            self.server.work_done_progress.report(self.token, types.WorkDoneProgressReport(
                message=message, percentage=percentage, cancellable=True))

    async def __aexit__(self, *exc: Any) -> None:
        if self._timer is not None:
            self._timer.cancel()
        if self._starting is not None and not self._starting.done():
            self._starting.cancel()
        if self._begun and self.token is not None:
            self.server.work_done_progress.end(self.token, types.WorkDoneProgressEnd(
                message="cancelled" if exc and exc[0] is asyncio.CancelledError else "done"))
            self.server.work_done_progress.tokens.pop(self.token, None)
        self._task = None  # a cancel arriving after the work is done has nothing to stop


# -- positions -----------------------------------------------------------------------------------

def position_of(server: CodeassistServer, text: str, offset: int) -> types.Position:
    """LSP position of a str offset, in the negotiated position encoding."""
    offset = max(0, min(offset, len(text)))
    line = text.count("\n", 0, offset)
    start = text.rfind("\n", 0, offset) + 1
    units = server.workspace.position_codec.client_num_units(text[start:offset])
    return types.Position(line=line, character=units)


def _offset(document: Any, position: types.Position) -> int:
    return offset_in(document, position)


def document_view(server: CodeassistServer, uri: str) -> tuple[Any, DocumentView]:
    """The open document and a view of it (reusing the server's current tree)."""
    document = server.workspace.get_text_document(uri)
    tracked = server.documents.get(document.path) or server.documents.get(uri)
    tree = tracked.tree if tracked is not None and tracked.version == document.version else None
    view = DocumentView.of(uri, document.source, document.version, document.language_id, document.path, tree)
    return document, view


def workspace_edit(server: CodeassistServer, view: DocumentView, replacement: Replacement) -> types.WorkspaceEdit:
    """A versioned, minimal edit: the client rejects it when the document changed since."""
    edit = types.TextEdit(range=types.Range(start=position_of(server, view.text, replacement.start),
                                            end=position_of(server, view.text, replacement.end)),
                          new_text=replacement.new_text)
    return types.WorkspaceEdit(document_changes=[types.TextDocumentEdit(
        text_document=types.OptionalVersionedTextDocumentIdentifier(uri=view.uri, version=view.version),
        edits=[edit])])


# -- the work ------------------------------------------------------------------------------------

def _check_version(server: CodeassistServer, target: ActionTarget) -> None:
    try:
        version = server.workspace.get_text_document(target.uri).version
    except Exception:
        version = None
    if version != target.version:
        raise JsonRpcContentModified(
            message=f"The document changed since the action was offered (version {target.version}, now {version}).")


async def run_action(server: CodeassistServer, target: ActionTarget, title: str,
                     token: types.ProgressToken | None = None) -> tuple[DocumentView, ActionOutcome]:
    """Resolve one action with progress; raises ContentModified when the document changed."""
    _check_version(server, target)
    document, view = document_view(server, target.uri)
    if not server.policy.allows("actions", document.language_id, document.path):
        # An action listed before the policy changed (or forged data): the model never sees the file.
        raise CodeassistError("Code actions are disabled here by the codeassist policy.")
    started = time.perf_counter()
    async with WorkDone(server, title.removeprefix("codeassist: "), token) as work:
        runner = ActionRunner(server.service, server.settings.actions, server.stats, progress=work.report)
        if server.settings.actions.type_check:  # best-of-N drops candidates that add type errors
            runner.candidate_filters.append(candidate_filter)
        try:
            outcome = await runner.resolve(target, view, path=document.path)
        except Cancelled as error:
            raise JsonRpcRequestCancelled(message=error.message) from error
    _check_version(server, target)
    log.info("%s resolved in %.0f ms: %s%s", target.action, (time.perf_counter() - started) * 1000,
             "ok" if outcome.replacement or outcome.explanation else outcome.reason,
             f" ({outcome.summary})" if outcome.summary else "")
    return view, outcome


def _notice(server: CodeassistServer, title: str, notice: str) -> None:
    """What the user should know about an offered edit (a fix that could not be verified)."""
    if notice:
        server.window_show_message(types.ShowMessageParams(
            type=types.MessageType.Info, message=f"codeassist: {title.removeprefix('codeassist: ')}: {notice}"))


def _nothing(server: CodeassistServer, title: str, reason: str) -> None:
    server.window_show_message(types.ShowMessageParams(
        type=types.MessageType.Warning, message=f"codeassist: {title.removeprefix('codeassist: ')}: {reason}"))


async def show_explanation(server: CodeassistServer, markdown: str) -> None:
    """A temp markdown file shown with window/showDocument, else the text in window/showMessage."""
    if supports_show_document(server):
        folder = Path(tempfile.gettempdir()) / "codeassist-explanations"
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / f"explanation-{hashlib.sha256(markdown.encode()).hexdigest()[:12]}.md"
        path.write_text(markdown, encoding="utf-8")
        try:
            result = await server.window_show_document_async(types.ShowDocumentParams(
                uri=from_fs_path(str(path)) or path.as_uri(), take_focus=False))
            if result is not None and result.success:
                return
        except Exception:
            log.debug("showDocument failed", exc_info=True)
    server.window_show_message(types.ShowMessageParams(type=types.MessageType.Info, message=markdown))


def register(server: CodeassistServer) -> None:
    """The code-action list, resolve, and the two commands."""

    @server.feature(types.TEXT_DOCUMENT_CODE_ACTION,
                    types.CodeActionOptions(code_action_kinds=ADVERTISED_KINDS, resolve_provider=True))
    def code_action(params: types.CodeActionParams) -> list[types.CodeAction] | None:
        if not server.settings.actions.enabled or open_document(server, params.text_document.uri) is None:
            return None
        document, view = document_view(server, params.text_document.uri)
        if not server.policy.allows("actions", document.language_id, document.path):
            return None
        if server.settings.actions.type_check:  # start mypy/tsserver now: the first edit is checked warm
            typecheck.warm(document.language_id, path=document.path)
        start, end = _offset(document, params.range.start), _offset(document, params.range.end)
        if start == end:
            # Editors ask for code actions when the cursor moves (VS Code's lightbulb): the only
            # word of where the user is before they type. Evaluate the prompt there while idle.
            schedule_prewarm(server, params.text_document.uri, params.range.start)
            if server.service is not None:  # and the cursor leaving a shown suggestion is a rejection
                server.service.cursor_at(document.path, document.source, start)
        diagnostics = params.context.diagnostics or []
        spans = [(_offset(document, d.range.start), _offset(document, d.range.end), d.message) for d in diagnostics]
        listed = list_actions(view, min(start, end), max(start, end), spans, only=params.context.only)
        server.stats["actions_listed"] = server.stats.get("actions_listed", 0) + len(listed)
        resolve_edit = supports_resolve_edit(server)
        actions = []
        for item in listed:
            data = item.target.to_data()
            action = types.CodeAction(title=item.title, kind=item.kind, data=data)
            if item.diagnostic_index is not None:
                action.diagnostics = [diagnostics[item.diagnostic_index]]
                action.is_preferred = False
            if item.target.action == "explain":
                action.command = types.Command(title=item.title, command=COMMAND_EXPLAIN, arguments=[data])
            elif not resolve_edit:
                action.command = types.Command(title=item.title, command=COMMAND_APPLY, arguments=[data])
            actions.append(action)
        agent = agent_action(server, document, params.context.only)
        if agent is not None:
            actions.append(agent)  # last: the actions on the code at hand come first
        return actions or None

    @server.feature(types.CODE_ACTION_RESOLVE)
    async def resolve(action: types.CodeAction) -> types.CodeAction:
        target = ActionTarget.from_data(action.data)
        if target is None or target.action == "explain":
            return action  # explanations run in their command
        try:
            view, outcome = await run_action(server, target, action.title)
        except CodeassistError as error:
            server.report_error(error)
            return action
        if outcome.replacement is None:
            _nothing(server, action.title, outcome.reason or "no suggestion")
            return action
        action.edit = workspace_edit(server, view, outcome.replacement)
        if outcome.notice:  # a fix none of our checkers reproduces the diagnostic of: offered, and said so
            _notice(server, action.title, outcome.notice)
            action.title = f"{action.title} (not verified)"
        if outcome.summary:  # what the test stage ran and what passed, e.g. "(3/3 doctests pass)"
            action.title = f"{action.title} ({outcome.summary})"
        return action

    @server.command(COMMAND_APPLY)
    async def apply_action(*args: Any) -> dict[str, Any]:
        target = ActionTarget.from_data(args[0] if args else None)
        if target is None:
            return {"applied": False, "reason": "not a codeassist action"}
        try:
            view, outcome = await run_action(server, target, target.action)
        except CodeassistError as error:
            server.report_error(error)
            return {"applied": False, "reason": error.message}
        if outcome.replacement is None:
            _nothing(server, target.action, outcome.reason or "no suggestion")
            return {"applied": False, "reason": outcome.reason}
        edit = workspace_edit(server, view, outcome.replacement)
        _notice(server, target.action, outcome.notice)
        try:
            result = await server.workspace_apply_edit_async(types.ApplyWorkspaceEditParams(
                edit=edit, label=f"codeassist: {target.action}"))
        except JsonRpcException as error:  # the client refused the request or answered nonsense
            return {"applied": False, "reason": f"The editor did not apply the edit: {error}"}
        return {"applied": bool(result and result.applied),
                "reason": (result.failure_reason if result else None) or ""}

    @server.command(COMMAND_EXPLAIN)
    async def explain(*args: Any) -> dict[str, Any]:
        target = ActionTarget.from_data(args[0] if args else None)
        if target is None:
            return {"explanation": None}
        try:
            _view, outcome = await run_action(server, target, "Explaining selection")
        except CodeassistError as error:
            server.report_error(error)
            return {"explanation": None, "reason": error.message}
        if outcome.explanation is None:
            _nothing(server, "Explain selection", outcome.reason or "no explanation")
            return {"explanation": None, "reason": outcome.reason}
        await show_explanation(server, outcome.explanation)
        return {"explanation": outcome.explanation}
