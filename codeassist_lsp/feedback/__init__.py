"""Acceptance tracking: outcome inference (outcomes.py), the local store (store.py), stats and gating."""

from __future__ import annotations

import collections
import logging
from typing import Any

from codeassist_lsp.config import FeedbackSettings
from codeassist_lsp.errors import StorageUnavailable, report_unavailable
from codeassist_lsp.feedback.outcomes import Outcome, OutcomeTracker, SuggestionFeatures
from codeassist_lsp.feedback.store import FeedbackStore

__all__ = ["FeedbackRecorder", "Outcome", "OutcomeTracker", "SuggestionFeatures", "open_feedback"]

log = logging.getLogger(__name__)


class FeedbackRecorder:
    """Infers each shown suggestion's outcome and keeps it: on disk when a store is open, else in memory."""

    def __init__(self, store: FeedbackStore | None, **tracker_options: Any) -> None:
        self.store = store
        self.recent: collections.deque[Outcome] = collections.deque(maxlen=500)
        self.tracker = OutcomeTracker(self._record, **tracker_options)

    def _record(self, outcome: Outcome) -> None:
        self.recent.append(outcome)
        log.debug("suggestion %s: %s (%s), %d/%d chars", outcome.id, outcome.outcome, outcome.reason,
                  outcome.accepted_chars, outcome.shown_chars)
        if self.store is None:
            return
        try:
            self.store.record(outcome)
        except Exception as error:  # a full or broken disk must not stop completions
            self.store = None
            report_unavailable(_store_failed(error))

    def summary(self, recent: bool = False) -> dict[str, Any]:
        """This session's outcome counts (and, with `recent`, the latest outcomes) for the status command."""
        report: dict[str, Any] = {"enabled": True, "stored": self.store is not None,
                                  "path": str(self.store.path) if self.store else None,
                                  "pending": self.tracker.pending, "outcomes": dict(self.tracker.counts)}
        if recent:
            report["recent"] = [{"id": o.id, "outcome": o.outcome, "reason": o.reason,
                                 "shownChars": o.shown_chars, "acceptedChars": o.accepted_chars}
                                for o in self.recent]
        return report

    def close(self) -> None:
        """Decide every open suggestion (the session ends) and close the store."""
        self.tracker.close()
        if self.store is not None:
            self.store.close()
            self.store = None


def _store_failed(error: BaseException) -> StorageUnavailable:
    failure = StorageUnavailable(f"The acceptance feedback store cannot be written ({error}).",
                                 hint="Outcomes are counted in memory for this session only. Free space on that "
                                      "disk or make the folder writable, or set codeassist.feedback.directory "
                                      "to another folder.")
    failure.component = "feedback"
    return failure


def open_feedback(settings: FeedbackSettings) -> FeedbackRecorder | None:
    """The recorder the settings ask for: None when tracking is off; in memory when the store cannot open."""
    if not settings.enabled:
        return None
    try:
        store: FeedbackStore | None = FeedbackStore(settings.directory, max_records=settings.max_records,
                                                    retention_days=settings.retention_days)
    except Exception as error:  # an unwritable cache dir: go on without the store
        store = None
        report_unavailable(_store_failed(error))
    return FeedbackRecorder(store)
