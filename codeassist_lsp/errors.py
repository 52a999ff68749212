"""One error family: every failure a user can see carries a message that says how to fix it."""

from __future__ import annotations


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
