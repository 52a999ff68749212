"""Acceptance tracking: outcome inference (outcomes.py), the local store (store.py), stats and gating."""

from __future__ import annotations

import collections
import logging
import threading
from typing import Any

from codeassist_lsp.config import FeedbackSettings
from codeassist_lsp.errors import StorageUnavailable, report_unavailable
from codeassist_lsp.feedback.outcomes import Outcome, OutcomeTracker, SuggestionFeatures
from codeassist_lsp.feedback.gating import GatingModel, fit, shipped_prior
from codeassist_lsp.feedback.stats import acceptance_by, confidence_band
from codeassist_lsp.feedback.store import FEATURE_FIELDS, FeedbackStore

__all__ = ["FeedbackRecorder", "Outcome", "OutcomeTracker", "SuggestionFeatures", "open_feedback"]

log = logging.getLogger(__name__)

# The gating model is refitted on the user's own outcomes once there are this many, and after every
# REFIT_EVERY more; each refit reads at most REFIT_ROWS of the newest.
MIN_OWN_OUTCOMES = 50
REFIT_EVERY = 100
REFIT_ROWS = 5000


class FeedbackRecorder:
    """Infers each shown suggestion's outcome and keeps it: on disk when a store is open, else in memory."""

    def __init__(self, store: FeedbackStore | None, **tracker_options: Any) -> None:
        self.store = store
        self.recent: collections.deque[Outcome] = collections.deque(maxlen=500)
        self.tracker = OutcomeTracker(self._record, **tracker_options)
        self.model: GatingModel | None = shipped_prior()
        """P(accept) for gating: the shipped prior, refitted on this user's outcomes."""
        self._since_refit = 0
        self.withheld = 0
        """Suggestions gating kept from the user this session."""
        if store is not None:
            self.refit_in_background()

    def _record(self, outcome: Outcome) -> None:
        self.recent.append(outcome)
        self._since_refit += 1
        if self._since_refit >= REFIT_EVERY and self.store is not None:
            self.refit_in_background()
        log.debug("suggestion %s: %s (%s), %d/%d chars", outcome.id, outcome.outcome, outcome.reason,
                  outcome.accepted_chars, outcome.shown_chars)
        if self.store is None:
            return
        try:
            self.store.record(outcome)
        except Exception as error:  # a full or broken disk must not stop completions
            self.store = None
            report_unavailable(_store_failed(error))

    def refit_in_background(self) -> None:
        """Refit the gating model on the stored outcomes off the event loop (it replaces `model` when done)."""
        self._since_refit = 0
        threading.Thread(target=self.refit, name="codeassist-gating-refit", daemon=True).start()

    def refit(self) -> GatingModel | None:
        """The shipped prior updated with the stored outcomes of model suggestions (None: too few yet)."""
        store = self.store
        if store is None:
            return None
        try:
            rows = [(SuggestionFeatures(**{name: row[name] for name in FEATURE_FIELDS}), row["shown_chars"],
                     row["outcome"] in ("accepted", "typed"))
                    # Rows from before first_logprob scored other tokens (the guess after the text too).
                    for row in store.rows(REFIT_ROWS) if row["first_logprob"] is not None]
            if len(rows) < MIN_OWN_OUTCOMES:
                return None
            self.model = fit(rows, prior=shipped_prior())
            return self.model
        except Exception:  # the prior keeps gating
            log.warning("refitting the gating model failed", exc_info=True)
            return None

    def summary(self, recent: bool = False) -> dict[str, Any]:
        """This session's outcome counts (and, with `recent`, the latest outcomes) for the status command."""
        self.tracker.sweep()  # what is due (timeouts, undo windows past) is decided before it is reported
        report: dict[str, Any] = {"enabled": True, "stored": self.store is not None,
                                  "path": str(self.store.path) if self.store else None,
                                  "pending": self.tracker.pending, "outcomes": dict(self.tracker.counts),
                                  "withheldByGating": self.withheld,
                                  "gatingSamples": self.model.samples if self.model is not None else 0}
        if recent:
            if self.store is not None:
                rows = self.store.rows()
                report["acceptance"] = {"byLanguage": acceptance_by(rows, lambda r: r["language"]),
                                        "byMode": acceptance_by(rows, lambda r: r["mode"]),
                                        "byConfidence": acceptance_by(rows, confidence_band)}
            report["recent"] = [{"id": o.id, "outcome": o.outcome, "reason": o.reason, "seen": o.seen,
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
