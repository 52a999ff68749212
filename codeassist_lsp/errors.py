"""One error family: every failure a user can see carries a message that says how to fix it."""

from __future__ import annotations

import logging
from collections.abc import Callable

log = logging.getLogger(__name__)


class CodeassistError(Exception):
    """Base of every error the server reports to a user; `message` is written for humans."""

    def __init__(self, message: str, *, hint: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def for_user(self) -> str:
        """The message and, when there is one, how to fix it."""
        return f"{self.message} {self.hint}".strip()


class ModelNotAvailable(CodeassistError):
    """No usable model file: not installed, missing, or corrupt."""


class InvalidSettings(CodeassistError):
    """Settings from the client could not be read; defaults are used instead."""


class EngineError(CodeassistError):
    """The inference engine failed (decode error, context overflow, ...)."""


class Cancelled(CodeassistError):
    """The request was cancelled or superseded before it finished."""


class ComponentUnavailable(CodeassistError):
    """A part the server can work on without (a scanner, the disk cache, the index) failed.

    The code that notices it goes on without the part and calls `report_unavailable`; the server
    tells the user once per `component`, whichever thread the failure happened on.
    """

    component = "component"


class ScannerUnavailable(ComponentUnavailable):
    """A security scanner (bandit, semgrep-core) is missing or crashed; the built-in rules still run."""


class StorageUnavailable(ComponentUnavailable):
    """A folder codeassist writes to (the completion cache, the workspace index) cannot be written."""

    component = "storage"


UnavailableListener = Callable[[ComponentUnavailable], None]
_listener: UnavailableListener | None = None


def listen_for_unavailable(listener: UnavailableListener | None) -> None:
    """Route every `report_unavailable` to `listener` (the server's edge); None stops it."""
    global _listener
    _listener = listener


def report_unavailable(error: ComponentUnavailable) -> None:
    """Log that a part failed and tell the listener, if any (it must be safe to call from any thread)."""
    log.warning("%s unavailable: %s", error.component, error.for_user())
    if _listener is not None:
        _listener(error)
