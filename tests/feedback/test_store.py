"""The feedback store: one row per suggestion, no code text, 0600, retention."""

from __future__ import annotations

import stat
import time
from pathlib import Path

import attrs

from codeassist_lsp.config import FeedbackSettings
from codeassist_lsp.feedback import open_feedback
from codeassist_lsp.feedback.outcomes import Outcome, SuggestionFeatures
from codeassist_lsp.feedback.store import FeedbackStore

SECRET_CODE = "api_key = load_secret_from_vault()"


def outcome(n: int, shown_at: float | None = None) -> Outcome:
    return Outcome(id=f"s{n}", outcome="accepted", reason="whole", shown_chars=12, accepted_chars=12,
                   features=SuggestionFeatures(language="python", mode="line", mean_logprob=-0.2, min_logprob=-1.5,
                                               model_id="m", prompt_hash="abcd"),
                   shown_at=time.time() if shown_at is None else shown_at, decided_after_s=0.5)


def test_one_row_per_suggestion_with_private_permissions(tmp_path: Path) -> None:
    store = FeedbackStore(tmp_path / "fb")
    assert store.record(outcome(1))
    assert not store.record(attrs.evolve(outcome(1), outcome="rejected"))  # never counted twice
    rows = store.rows()
    assert [(r["id"], r["outcome"], r["language"], r["min_logprob"]) for r in rows] == [("s1", "accepted", "python", -1.5)]
    assert stat.S_IMODE(store.path.stat().st_mode) == 0o600
    assert stat.S_IMODE(store.directory.stat().st_mode) == 0o700
    store.close()


def test_no_code_text_reaches_the_disk(tmp_path: Path) -> None:
    recorder = open_feedback(FeedbackSettings(directory=str(tmp_path)))
    assert recorder is not None
    document = "def f():\n    \n"
    recorder.tracker.shown("f.py", document, 13, SECRET_CODE, SuggestionFeatures(language="python"))
    recorder.tracker.changed("f.py", document[:13] + SECRET_CODE + document[13:])
    recorder.close()
    stored = b"".join(path.read_bytes() for path in tmp_path.iterdir() if path.is_file())
    assert b"load_secret" not in stored and b"api_key" not in stored
    rows = FeedbackStore(tmp_path).rows()
    assert [(r["outcome"], r["shown_chars"]) for r in rows] == [("accepted", len(SECRET_CODE))]


def test_retention_by_count_and_age(tmp_path: Path) -> None:
    store = FeedbackStore(tmp_path, max_records=3, retention_days=1)
    for n in range(5):
        store.record(outcome(n, shown_at=time.time() + n))
    store.record(outcome(99, shown_at=time.time() - 2 * 86400))
    store.prune()
    assert sorted(r["id"] for r in store.rows()) == ["s2", "s3", "s4"]


def test_turned_off_means_no_store(tmp_path: Path) -> None:
    assert open_feedback(FeedbackSettings(enabled=False, directory=str(tmp_path))) is None
    assert list(tmp_path.iterdir()) == []


def test_an_unwritable_folder_keeps_outcomes_in_memory(tmp_path: Path) -> None:
    blocked = tmp_path / "file"
    blocked.write_text("not a folder")
    recorder = open_feedback(FeedbackSettings(directory=str(blocked / "fb")))
    assert recorder is not None and recorder.store is None
    recorder.tracker.shown("f.py", "x", 1, " = 1", SuggestionFeatures())
    recorder.close()
    assert recorder.summary()["outcomes"] == {"rejected": 1}


def test_a_store_of_an_older_version_gains_the_new_columns(tmp_path: Path) -> None:
    import sqlite3

    old = sqlite3.connect(tmp_path / "feedback.sqlite3")
    old.execute("CREATE TABLE outcomes (id TEXT PRIMARY KEY, outcome TEXT NOT NULL, reason TEXT NOT NULL, "
                "shown_at REAL NOT NULL, decided_after_s REAL NOT NULL, shown_chars INTEGER NOT NULL, "
                "accepted_chars INTEGER NOT NULL)")
    old.commit()
    old.close()
    store = FeedbackStore(tmp_path)
    assert store.record(outcome(1))
    assert store.rows()[0]["prompt_hash"] == "abcd"
