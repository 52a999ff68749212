"""initialize / initialized / configuration changes / status command."""

from __future__ import annotations

import asyncio
import os
import threading
from typing import TYPE_CHECKING, Any

from lsprotocol import types
from pygls.uris import to_fs_path

from codeassist_lsp.config import settings_to_wire
from codeassist_lsp.protocol import use_fast_positions
from codeassist_lsp.tcp import pop_token
from codeassist_lsp.verify import stats as verification_stats

if TYPE_CHECKING:
    from codeassist_lsp.server import CodeassistServer

STATUS_COMMAND = "codeassist.status"
# After `exit`, the process ends within this long even if a teardown step waits.
EXIT_GRACE_S = 0.5


def status_report(server: CodeassistServer, *, recent: bool = False) -> dict[str, Any]:
    """What the server is doing: model state, settings and counters."""
    service = server.service
    backend = service.backend if service else None
    error = service.worker.load_error if service else None
    state = "loading"
    if service is not None and service.worker.loaded.is_set():
        state = "ready" if backend is not None else "error"
    return {
        "model": {"state": state, "id": backend.model_id if backend else None,
                  "error": getattr(error, "message", str(error)) if error else None,
                  **_remote_status(backend)},
        "qualityModel": _quality_status(service),
        "settings": settings_to_wire(server.settings),
        "stats": dict(server.stats),
        "verification": verification_stats(),
        "index": None if server.index is None else {"ready": server.index.ready, "root": str(server.index.root)},
        "feedback": server.feedback.summary(recent) if server.feedback is not None else {"enabled": False},
        "policy": server.policy.describe(),
        "sandbox": _sandbox_status(server),
        **({"recent_requests": list(server.recent_requests)} if recent else {}),
    }


def _sandbox_status(server: CodeassistServer) -> dict[str, Any]:
    """How the test stage isolates generated code here (probed once), and what is off."""
    from codeassist_lsp.verify.sandbox import Sandbox, detect_isolation

    preferred = server.settings.actions.sandbox
    if not server.settings.actions.run_tests:
        return {"testStage": False}
    mechanism, note = detect_isolation(preferred)
    return {"testStage": True, "isolation": mechanism, "networkIsolated": mechanism != "rlimits",
            "filesIsolated": mechanism != "rlimits", "processLimit": Sandbox(mechanism).enforces_process_limit,
            **({"warning": note} if note else {})}


def _quality_status(service: Any) -> dict[str, Any]:
    """The quality tier: which model answers actions and hover, and whether it is the code model."""
    if service is None or not service.worker.quality_loaded.is_set():
        return {"state": "loading", "id": None}
    worker = service.worker
    error = worker.quality_error
    backend = worker.backend_for("quality")
    return {"state": "ready" if worker.quality is not None else "fallback",
            "id": backend.model_id if backend is not None else None,
            "sharedWithCompletion": backend is worker.backend,
            "error": getattr(error, "message", str(error)) if error else None,
            **_remote_status(backend)}


def _remote_status(backend: Any) -> dict[str, Any]:
    """For a tier on an inference server: the server, whether it answers, and the local stand-in."""
    describe = getattr(backend, "describe", None)
    return {"engine": "remote", "remote": describe()} if describe is not None and hasattr(backend, "remote_backend") \
        else {"engine": "local"}


def _workspace_root(params: types.InitializeParams) -> str | None:
    """The first workspace folder (or the legacy rootUri) as a file path."""
    uri = params.workspace_folders[0].uri if params.workspace_folders else params.root_uri
    return to_fs_path(uri) if uri else params.root_path


def register(server: CodeassistServer) -> None:
    """Settings from initializationOptions and didChangeConfiguration; model load with progress."""

    @server.feature(types.INITIALIZE)
    def initialize(params: types.InitializeParams) -> None:
        use_fast_positions(server.workspace)
        server.listen_for_unavailable()
        pop_token(params.initialization_options)  # the --tcp handshake's (checked before), no setting
        # Which editor this is: some accept edit annotations without asking the user (features/agent.py).
        server.client_name = params.client_info.name if params.client_info else ""
        root = _workspace_root(params)
        server.load_policy(root)  # before the settings: the policy tightens them
        server.apply_settings(params.initialization_options)
        server.open_workspace(root)

    @server.feature(types.INITIALIZED)
    async def initialized(_params: types.InitializedParams) -> None:
        asyncio.ensure_future(server.watch_model_load())
        asyncio.ensure_future(server.watch_indexing())

    @server.feature(types.WORKSPACE_DID_CHANGE_CONFIGURATION)
    async def did_change_configuration(params: types.DidChangeConfigurationParams) -> None:
        server.load_policy(server.policy_root)  # the policy file is read again with every change
        reapply_settings(params.settings if params.settings is not None else server.raw_settings)

    @server.feature(types.WORKSPACE_DID_CHANGE_WORKSPACE_FOLDERS)
    async def did_change_workspace_folders(_params: types.DidChangeWorkspaceFoldersParams) -> None:
        # pygls has updated its folders: the policy is looked for from the first one now.
        folders = list(server.workspace.folders.values())
        server.load_policy(to_fs_path(folders[0].uri) if folders else server.policy_root)
        reapply_settings(server.raw_settings)

    def reapply_settings(raw: Any) -> None:
        before = server.service
        server.apply_settings(raw)
        if server.service is not before:
            asyncio.ensure_future(server.watch_model_load())

    @server.command(STATUS_COMMAND)
    def status(*args: Any) -> dict[str, Any]:
        # Optional argument {"recent": true}: include per-request model work (benchmarks).
        options = args[0] if args and isinstance(args[0], dict) else {}
        return status_report(server, recent=bool(options.get("recent")))

    @server.feature(types.SHUTDOWN)
    def shutdown(*_args: Any) -> None:
        server.shutdown_requested = True
        for pending in server.prewarm_tasks.values():
            pending.cancel()
        server.prewarm_tasks.clear()
        if server.service is not None:
            server.service.close()
        if server.feedback is not None:
            server.feedback.close()  # open suggestions are decided (closed) and stored before exit

    @server.feature(types.EXIT)
    def exit_(*_args: Any) -> None:
        # LSP: exit code 0 after shutdown, 1 without it (pygls' own exit code never leaves its loop).
        server.exit_code = 0 if server.shutdown_requested else 1
        # The process must end now; pygls' and asyncio's teardown can wait for a thread that reads
        # stdin until the client closes it, which a client may do only once we are gone.
        deadline = threading.Timer(EXIT_GRACE_S, os._exit, args=(server.exit_code,))
        deadline.daemon = True
        deadline.start()
