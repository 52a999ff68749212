"""workspace/executeCommand `codeassist.agent`: change the workspace as instructed, as one reviewable edit."""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote, urlparse

from lsprotocol import types
from pygls.exceptions import JsonRpcException

from codeassist_lsp.actions.prompts import ActionPrompt
from codeassist_lsp.actions.runner import ActionRunner
from codeassist_lsp.agent.run import Agent, AgentResult
from codeassist_lsp.agent.workspace import StagedWorkspace
from codeassist_lsp.errors import CodeassistError
from codeassist_lsp.features.code_actions import WorkDone, position_of

if TYPE_CHECKING:
    from codeassist_lsp.server import CodeassistServer

log = logging.getLogger(__name__)

AGENT_COMMAND = "codeassist.agent"
ANNOTATION = "codeassist-agent"


def _path(value: str) -> Path:
    return Path(unquote(urlparse(value).path)) if value.startswith("file:") else Path(value)


def register(server: CodeassistServer) -> None:
    """Register the agent command."""

    @server.command(AGENT_COMMAND)
    async def agent(*args: Any) -> dict[str, Any]:
        options = args[0] if args and isinstance(args[0], dict) else {}
        instruction = str(options.get("instruction") or "").strip()
        root = server.policy_root
        if not instruction:
            return {"applied": False, "summary": "Say what to change: {\"instruction\": \"...\"}."}
        if root is None:
            return {"applied": False, "summary": "The agent needs a workspace folder."}
        scope = _path(str(options["scope"])).resolve() if options.get("scope") else root.resolve()
        if not scope.is_relative_to(root.resolve()):
            return {"applied": False, "summary": f"The scope {scope} is outside the workspace {root}."}
        open_texts, versions = _open_documents(server, root)
        workspace = StagedWorkspace(root, scope, open_texts)
        async with WorkDone(server, "codeassist: agent") as work:
            runner = ActionRunner(server.service, server.settings.actions, server.stats, progress=work.report)
            await runner.until_ready()

            async def generate(prompt: ActionPrompt, max_tokens: int) -> str:
                return (await runner.generate(prompt, max_tokens=max_tokens)).text

            async def sample(prompt: ActionPrompt, max_tokens: int, count: int) -> list[str]:
                return [r.text for r in await runner.sample(prompt, max_tokens=max_tokens, count=count)]

            try:
                generate.backend = runner.backend  # type: ignore[attr-defined]
            except CodeassistError:
                generate.backend = None  # type: ignore[attr-defined]
            result = await Agent(workspace, generate, report=work.report, policy=server.service.policy
                                 if server.service else None, settings=server.settings.agent, index=server.index,
                                 allows=_policy_filter(server, workspace),
                                 context_size=server.settings.actions.model.context_size, sample=sample).run(instruction)
        log.info("agent transcript:\n%s", "\n".join(result.transcript))
        answer = _answer(result)
        if not result.changes:
            server.window_show_message(types.ShowMessageParams(
                type=types.MessageType.Info, message=f"codeassist agent: {result.summary} Nothing was changed."))
            return answer
        edit = workspace_edit(server, workspace, result, versions)
        if not _supports_annotations(server) and not await _confirmed(server, result):
            return {**answer, "applied": False, "reason": "declined"}
        try:
            applied = await server.workspace_apply_edit_async(types.ApplyWorkspaceEditParams(
                edit=edit, label=f"codeassist agent: {result.summary}"))
        except JsonRpcException as error:
            return {**answer, "applied": False, "reason": f"The editor did not apply the edit: {error}"}
        return {**answer, "applied": bool(applied and applied.applied),
                "reason": (applied.failure_reason if applied else None) or ""}


def _answer(result: AgentResult) -> dict[str, Any]:
    return {"applied": False, "summary": result.summary, "plan": result.plan, "files": sorted(result.changes),
            "testsBefore": result.tests_before.summary if result.tests_before else None,
            "testsAfter": result.tests_after.summary if result.tests_after else None,
            "modelCalls": result.model_calls, "seconds": round(result.seconds, 1)}


def _policy_filter(server: CodeassistServer, workspace: StagedWorkspace) -> Callable[[str], bool]:
    """Whether the policy lets actions (the agent's model) see a workspace-relative path."""
    def allows(path: str) -> bool:
        language = workspace.language(path)
        language_id = language.language_ids[0] if language and language.language_ids else ""
        return server.policy.allows("actions", language_id, str(workspace.root / path))
    return allows


def _open_documents(server: CodeassistServer, root: Path) -> tuple[dict[str, str], dict[str, int]]:
    texts, versions = {}, {}
    for uri, document in list(server.workspace.text_documents.items()):
        path = Path(document.path).resolve()
        if path.is_relative_to(root.resolve()):
            relative = path.relative_to(root.resolve()).as_posix()
            texts[relative] = document.source
            if document.version is not None:
                versions[relative] = document.version
    return texts, versions


def _supports_annotations(server: CodeassistServer) -> bool:
    """Whether the client itself asks the user before applying an edit annotated as needing confirmation.

    Declaring changeAnnotationSupport is not enough: some clients (Neovim 0.11) accept annotations and
    apply the edit at once. VS Code shows its refactor preview for them.
    """
    capabilities = server.client_capabilities
    workspace = capabilities.workspace if capabilities else None
    edit = workspace.workspace_edit if workspace else None
    name = (getattr(server, "client_name", "") or "").lower()
    return bool(edit and edit.change_annotation_support is not None and edit.document_changes
                and any(known in name for known in ("visual studio code", "code-server", "vscodium", "code - oss")))


async def _confirmed(server: CodeassistServer, result: AgentResult) -> bool:
    """Ask before applying, for clients that cannot show annotated edits for confirmation."""
    try:
        choice = await server.window_show_message_request_async(types.ShowMessageRequestParams(
            type=types.MessageType.Info, message=f"codeassist agent: {result.summary}. Apply?",
            actions=[types.MessageActionItem(title="Apply"), types.MessageActionItem(title="Discard")]))
    except JsonRpcException:
        return False
    return choice is not None and choice.title == "Apply"


def workspace_edit(server: CodeassistServer, workspace: StagedWorkspace, result: AgentResult,
                   versions: dict[str, int]) -> types.WorkspaceEdit:
    """One multi-file edit, every change annotated as needing the user's confirmation."""
    changes = []
    for path, replacement in sorted(result.changes.items()):
        text = workspace.original(path)
        edit = types.AnnotatedTextEdit(
            range=types.Range(start=position_of(server, text, replacement.start),
                              end=position_of(server, text, replacement.end)),
            new_text=replacement.new_text, annotation_id=ANNOTATION)
        changes.append(types.TextDocumentEdit(
            text_document=types.OptionalVersionedTextDocumentIdentifier(
                uri=(workspace.root / path).as_uri(), version=versions.get(path)),
            edits=[edit]))
    return types.WorkspaceEdit(document_changes=changes, change_annotations={
        ANNOTATION: types.ChangeAnnotation(label="codeassist agent", needs_confirmation=True,
                                           description=result.summary)})
