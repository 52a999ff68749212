"""The local feedback store: one SQLite row per decided suggestion, no code text, in the user cache dir."""

from __future__ import annotations

import logging
import os
import sqlite3
import threading
import time
from pathlib import Path
from typing import Any

import attrs

from codeassist_lsp.feedback.outcomes import Outcome, SuggestionFeatures

log = logging.getLogger(__name__)

FILE_NAME = "feedback.sqlite3"
# Retention is enforced every this many records (and when the store opens), not on every insert.
PRUNE_EVERY = 200

_COLUMNS = (
    "id TEXT PRIMARY KEY", "outcome TEXT NOT NULL", "reason TEXT NOT NULL", "shown_at REAL NOT NULL",
    "decided_after_s REAL NOT NULL", "shown_chars INTEGER NOT NULL", "accepted_chars INTEGER NOT NULL",
    "language TEXT", "mode TEXT", "context_kind TEXT", "snippets INTEGER", "model_id TEXT", "source TEXT",
    "mean_logprob REAL", "min_logprob REAL", "first_logprob REAL", "shown_tokens INTEGER",
    "generated_tokens INTEGER", "finish_reason TEXT", "prompt_hash TEXT",
    "seen INTEGER",  # 1/0 when the client reports what it shows (VS Code), NULL when it does not
)
FEATURE_FIELDS = tuple(field.name for field in attrs.fields(SuggestionFeatures))


def default_directory() -> Path:
    """$CODEASSIST_FEEDBACK_DIR, else <cache dir>/feedback (the cache dir: $CODEASSIST_CACHE_DIR or ~/.cache/codeassist)."""
    from codeassist_lsp.engine.models import cache_dir

    # The test suite points this elsewhere: its suggestions are not a user's outcomes.
    return Path(os.environ.get("CODEASSIST_FEEDBACK_DIR") or cache_dir() / "feedback")


class FeedbackStore:
    """Outcomes on disk (0600 in a 0700 folder), pruned to `max_records` and `retention_days`."""

    def __init__(self, directory: str | Path | None = None, *, max_records: int = 20000,
                 retention_days: int = 90) -> None:
        self.directory = Path(directory) if directory else default_directory()
        self.max_records = max_records
        self.retention_days = retention_days
        self.path = self.directory / FILE_NAME
        self.directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        os.chmod(self.directory, 0o700)
        # Create the file 0600 before SQLite opens it; SQLite gives its journal the file's mode.
        os.close(os.open(self.path, os.O_CREAT | os.O_RDWR, 0o600))
        os.chmod(self.path, 0o600)
        self._lock = threading.Lock()
        self._db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")  # losing the last outcomes in a power cut is fine
        self._db.execute(f"CREATE TABLE IF NOT EXISTS outcomes ({', '.join(_COLUMNS)})")
        # A store written by an older version lacks the newer feature columns: add them (empty).
        present = {row[1] for row in self._db.execute("PRAGMA table_info(outcomes)")}
        for column in _COLUMNS:
            if column.split()[0] not in present:
                self._db.execute(f"ALTER TABLE outcomes ADD COLUMN {column}")
        self._since_prune = 0
        self.prune()

    def record(self, outcome: Outcome) -> bool:
        """Store one outcome; False when this suggestion already has one (never counted twice)."""
        features = outcome.features
        row = (outcome.id, outcome.outcome, outcome.reason, outcome.shown_at, outcome.decided_after_s,
               outcome.shown_chars, outcome.accepted_chars, outcome.seen,
               *(getattr(features, name) for name in FEATURE_FIELDS))
        with self._lock:
            cursor = self._db.execute(
                f"INSERT OR IGNORE INTO outcomes (id, outcome, reason, shown_at, decided_after_s, shown_chars, "
                f"accepted_chars, seen, {', '.join(FEATURE_FIELDS)}) VALUES ({', '.join('?' * len(row))})", row)
            self._since_prune += 1
            if self._since_prune >= PRUNE_EVERY:
                self._prune_locked()
            return cursor.rowcount == 1

    def prune(self) -> None:
        """Drop records older than the retention period and the oldest beyond `max_records`."""
        with self._lock:
            self._prune_locked()

    def _prune_locked(self) -> None:
        self._since_prune = 0
        if self.retention_days > 0:
            self._db.execute("DELETE FROM outcomes WHERE shown_at < ?", (time.time() - self.retention_days * 86400,))
        if self.max_records > 0:
            self._db.execute("DELETE FROM outcomes WHERE rowid NOT IN "
                             "(SELECT rowid FROM outcomes ORDER BY shown_at DESC LIMIT ?)", (self.max_records,))

    def rows(self, limit: int | None = None, *, unseen: bool = False) -> list[dict[str, Any]]:
        """Stored outcomes, newest first; suggestions the client never showed only with `unseen`."""
        where = "" if unseen else " WHERE outcome != 'unseen'"
        with self._lock:
            cursor = self._db.execute(f"SELECT * FROM outcomes{where} ORDER BY shown_at DESC"
                                      + (" LIMIT ?" if limit else ""), (limit,) if limit else ())
            names = [column[0] for column in cursor.description]
            return [dict(zip(names, values)) for values in cursor.fetchall()]

    def close(self) -> None:
        """Close the database."""
        with self._lock:
            self._db.close()
