"""The LanguageServer subclass and its wiring; features live in codeassist_lsp/features/."""

from __future__ import annotations

import asyncio
import collections
import logging
import uuid
from pathlib import Path
from typing import Any

from lsprotocol import types
from pygls.lsp.server import LanguageServer

from codeassist_lsp import __version__
from codeassist_lsp.config import Settings, parse_settings
from codeassist_lsp.context.assembler import ContextAssembler
from codeassist_lsp.context.documents import DocumentTrees
from codeassist_lsp.context.workspace import WorkspaceIndex
from codeassist_lsp.engine.tiers import missing_code_model_hint, model_file_of
from codeassist_lsp.errors import (
    CodeassistError, ComponentUnavailable, InvalidSettings, StorageUnavailable, listen_for_unavailable,
)
from codeassist_lsp.features.diagnostics import DiagnosticsPublisher
from codeassist_lsp.feedback import FeedbackRecorder, open_feedback
from codeassist_lsp.policy import Policy, load_policy
from codeassist_lsp.protocol import CodeassistProtocol
from codeassist_lsp.service import CompletionService
from codeassist_lsp.verify import SecurityPolicy

log = logging.getLogger(__name__)

# How often the files of the loaded models are looked at (one stat each), to notice them replaced.
MODEL_FILE_CHECK_S = 2.0


class CodeassistServer(LanguageServer):
    """Holds settings, the completion service and the user-facing notifications."""

    def __init__(self) -> None:
        super().__init__("codeassist", __version__, protocol_cls=CodeassistProtocol,
                         text_document_sync_kind=types.TextDocumentSyncKind.Incremental)
        self.settings = Settings()
        self.policy = Policy()
        self.client_name = ""  # the editor's clientInfo.name from initialize
        self.policy_root: Path | None = None  # the workspace root the policy was looked for from
        self.raw_settings: Any = None  # as the client sent them, to tighten again when the policy changes
        self.service: CompletionService | None = None
        self.feedback: FeedbackRecorder | None = None
        self.documents = DocumentTrees()
        self.index: WorkspaceIndex | None = None
        self.assembler = ContextAssembler(None, self.documents)
        self.diagnostics: DiagnosticsPublisher | None = None
        self._told: set[str] = set()
        self.shutdown_requested = False
        self.exit_code = 0  # the process's, set by the exit notification
        # What the model did for recent completions (prompt size, KV reuse), for status/benchmarks.
        self.recent_requests: collections.deque[dict[str, float]] = collections.deque(maxlen=2000)
        self.prewarm_tasks: dict[str, asyncio.TimerHandle] = {}
        self.stats: dict[str, int] = {"requests": 0, "shown": 0, "empty": 0, "cancelled": 0,
                                      "stale": 0, "unavailable": 0}

    def shutdown(self) -> None:
        """Stop serving without waiting for the thread that reads stdin: it blocks until the client
        closes the pipe, which a client may do only after the process has exited (cli ends it)."""
        if self._stop_event is not None:
            self._stop_event.set()
        if self._thread_pool:
            self._thread_pool.shutdown(wait=False, cancel_futures=True)
        if self._server:
            self._server.close()

    # -- telling the user, once -----------------------------------------------------------

    def tell_once(self, key: str, message: str,
                  kind: types.MessageType = types.MessageType.Error) -> None:
        """showMessage and logMessage the first time `key` happens; later repeats go to our log only."""
        if key in self._told:
            log.debug("%s", message)
            return
        self._told.add(key)
        self.window_log_message(types.LogMessageParams(type=kind, message=message))
        self.window_show_message(types.ShowMessageParams(type=kind, message=f"codeassist: {message}"))

    def report_error(self, error: CodeassistError) -> None:
        """Tell the user about a domain error once per distinct message."""
        self.tell_once(type(error).__name__ + error.message, error.for_user())

    def listen_for_unavailable(self) -> None:
        """Tell the user once per component when a part fails (scanners, disk cache, index), from any thread."""
        loop = asyncio.get_running_loop()

        def tell(error: ComponentUnavailable) -> None:
            # A full or read-only disk fails every store at once (cache, index, feedback): one message.
            part = "storage" if isinstance(error, StorageUnavailable) else error.component
            loop.call_soon_threadsafe(self.tell_once, "unavailable:" + part, error.for_user(),
                                      types.MessageType.Warning)

        listen_for_unavailable(tell)

    # -- settings and model lifecycle -----------------------------------------------------

    def apply_settings(self, raw: Any) -> None:
        """Take new settings; reload the model only when model settings changed."""
        self.raw_settings = raw
        try:
            settings = parse_settings(raw)
        except InvalidSettings as error:
            self.report_error(error)
            settings = Settings()
        settings = self.apply_policy(settings)
        model_changed = ((settings.model, settings.actions.model, settings.engine)
                         != (self.settings.model, self.settings.actions.model, self.settings.engine))
        feedback_changed = settings.feedback != self.settings.feedback
        self.settings = settings
        if feedback_changed or (self.feedback is None and settings.feedback.enabled):
            self.reopen_feedback()
        if self.service is None or model_changed:
            self.start_service()
        else:
            self.service.settings = settings
            self.service.policy = self.security_policy()

    def load_policy(self, root: str | Path | None) -> None:
        """(Re)read the workspace and admin policy; tell the user once about a malformed file."""
        self.policy_root = Path(root) if root else None
        self.policy = load_policy(self.policy_root)
        for message in self.policy.errors:
            self.tell_once("policy-error:" + message, message, types.MessageType.Error)

    def apply_policy(self, settings: Settings) -> Settings:
        """Settings tightened to the policy; each override is logged and told once."""
        settings, overrides = self.policy.apply(settings)
        for message in overrides:
            log.warning("%s", message)
            self.tell_once("policy:" + message, message, types.MessageType.Warning)
        return settings

    def security_policy(self) -> SecurityPolicy:
        """The verifier's policy from the settings."""
        security = self.settings.security
        return SecurityPolicy(on_high=security.on_high_severity, enabled=security.enabled)

    def start_service(self) -> None:
        """(Re)start the model thread; loading runs in the background."""
        if self.service is not None:
            self.service.close()
        self.service = CompletionService(self.settings, assembler=self.assembler, policy=self.security_policy())
        self.service.feedback = self.feedback
        self._told = {key for key in self._told if not key.startswith("ModelNotAvailable")}

    def reopen_feedback(self) -> None:
        """Acceptance tracking as the settings say (open suggestions are decided first, as closed)."""
        if self.feedback is not None:
            self.feedback.close()
        self.feedback = open_feedback(self.settings.feedback)
        if self.service is not None:
            self.service.feedback = self.feedback

    async def watch_model_load(self) -> None:
        """$/progress while the model loads, then one message if it failed."""
        service = self.service
        if service is None:
            return
        token = None if service.worker.loaded.is_set() else await self.begin_progress("Loading model…")
        await asyncio.get_running_loop().run_in_executor(None, service.worker.loaded.wait)
        error = service.worker.load_error
        if token is not None:
            message = "Model ready" if error is None else "Model failed to load"
            self.work_done_progress.end(token, types.WorkDoneProgressEnd(message=message))
        if error is not None:
            if isinstance(error, CodeassistError):
                self.report_error(error)
            else:
                self.tell_once("load", f"The model failed to load: {error}")
        elif service.backend is not None:
            self.window_log_message(types.LogMessageParams(
                type=types.MessageType.Info, message=f"codeassist: model {service.backend.model_id} ready"))
        await asyncio.get_running_loop().run_in_executor(None, service.worker.quality_loaded.wait)
        self.report_quality_tier(service)
        await self.watch_model_files(service)

    async def watch_model_files(self, service: CompletionService) -> None:
        """Tell the user once when a loaded model's file changes on disk (the loaded copy keeps serving)."""
        files = {id(f): f for b in (service.worker.backend, service.worker.quality)
                 if (f := model_file_of(b)) is not None}.values()
        while files and self.service is service and not self.shutdown_requested:
            await asyncio.sleep(MODEL_FILE_CHECK_S)
            for file in files:
                if file.changed():
                    self.tell_once("model-file-changed:" + str(file.path),
                                   f"The model file {file.path} was replaced or removed after it was loaded; "
                                   "codeassist goes on with the copy in memory. Restart the language server to load "
                                   "the file again.", types.MessageType.Warning)

    def report_quality_tier(self, service: CompletionService) -> None:
        """Tell the user once when actions and hover run without the code model, and why."""
        if self.settings.engine != "llama" or service.backend is None:
            return
        error = service.worker.quality_error
        if isinstance(error, CodeassistError):
            self.tell_once("quality" + error.message, f"{error.for_user()} Actions and hover use the completion "
                           "model meanwhile.", types.MessageType.Warning)
        elif error is not None:
            self.tell_once("quality-load", f"The code model failed to load: {error}. Actions and hover use the "
                           "completion model meanwhile.", types.MessageType.Warning)
        elif service.worker.quality is None:
            self.tell_once("quality-missing", missing_code_model_hint(), types.MessageType.Warning)
        else:
            self.window_log_message(types.LogMessageParams(
                type=types.MessageType.Info,
                message=f"codeassist: code model {service.worker.quality.model_id} ready for actions and hover"))

    def open_workspace(self, root: str | None) -> None:
        """Index the workspace's definitions (persisted, so a restart does not re-parse)."""
        if root is None or not self.settings.context.index_workspace:
            return
        try:
            # A folder that cannot be written leaves the index in memory (and tells the user).
            self.index = WorkspaceIndex(root, exclude=tuple(self.settings.context.exclude))
        except Exception as error:  # a bug of ours must not stop completions
            log.exception("workspace index failed to open")
            self.tell_once("index", f"The workspace index is off: {error}. Completions use open files only.",
                           types.MessageType.Warning)
            return
        if self.index.rebuilt_because:
            self.tell_once("index-rebuilt", f"The workspace index in {self.index.directory} was damaged "
                           f"({self.index.rebuilt_because}); it is being rebuilt from your files, nothing to do.",
                           types.MessageType.Warning)
        self.assembler = ContextAssembler(self.index, self.documents, root=root)
        if self.service is not None:
            self.service.assembler = self.assembler

    async def watch_indexing(self) -> None:
        """Build the workspace index in the background with $/progress."""
        index = self.index
        if index is None:
            return
        token = await self.begin_progress("Indexing workspace…", percentage=0)
        loop = asyncio.get_running_loop()
        last_report = [0.0]

        def report(done: int, total: int) -> None:
            now = loop.time()
            if token is not None and total and (now - last_report[0] > 0.2 or done == total):
                last_report[0] = now
                loop.call_soon_threadsafe(self.work_done_progress.report, token, types.WorkDoneProgressReport(
                    message=f"{done}/{total} files", percentage=int(100 * done / total)))

        stats = await loop.run_in_executor(None, index.build, report, None)
        if token is not None:
            self.work_done_progress.end(token, types.WorkDoneProgressEnd(message="Workspace indexed"))
        log.info("workspace index: %s", stats)

    async def begin_progress(self, message: str, percentage: int | None = None) -> str | None:
        """Start a server-initiated $/progress; its token, or None when the client takes none."""
        if not self.client_supports_progress():
            return None
        token = str(uuid.uuid4())
        try:
            await self.work_done_progress.create_async(token)
            self.work_done_progress.begin(token, types.WorkDoneProgressBegin(
                title="codeassist", message=message, percentage=percentage, cancellable=False))
        except Exception:  # a client that refuses progress still gets completions
            return None
        return token

    def client_supports_progress(self) -> bool:
        """Whether the client accepts server-initiated $/progress."""
        capabilities = self.client_capabilities
        window = capabilities.window if capabilities else None
        return bool(window and window.work_done_progress)

    @property
    def client_capabilities(self) -> types.ClientCapabilities | None:
        """What the client said it can do in initialize."""
        return getattr(self.protocol, "client_capabilities", None)


def create_server() -> CodeassistServer:
    """A server with every feature registered."""
    server = CodeassistServer()
    from codeassist_lsp.features import (
        agent, code_actions, completion, documents, hover, inline_completion, lifecycle,
    )

    for module in (lifecycle, documents, inline_completion, completion, code_actions, hover, agent):
        module.register(server)
    server.diagnostics = DiagnosticsPublisher(server)
    return server
