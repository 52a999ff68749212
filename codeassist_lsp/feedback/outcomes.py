"""What happened to each shown suggestion, inferred from the document changes that follow it.

One `OutcomeTracker` follows every document: per document at most one suggestion is being decided
(the one showing) and at most one just-accepted suggestion waits out a short undo window. Each
suggestion gets exactly one `Outcome`:

- accepted: the whole suggestion went into the document, at least part of it by an accept action
  (an insertion of several characters at once, or the client's explicit accept command);
- typed: the user typed the whole suggestion character by character (typed-ahead all the way);
- partial: part of it was accepted (its first word(s) or line(s)), then the user went elsewhere;
- rejected: the text diverged, the cursor left, the suggestion was replaced, the document closed,
  nothing happened within TIMEOUT_S, or an accept was undone within UNDO_WINDOW_S;
- unseen: the client reports what it shows (VS Code's show callback) and never showed this one (the
  user typed on before it arrived): it says nothing about the suggestion and counts nowhere.

Clients that can say more add explicit signals: the accept command, and in VS Code the show and
partial-accept callbacks (`shown_by_client`, `partially_accepted`).

No LSP types here: the service calls `shown`, `changed`, `cursor_at`, `closed` and `sweep`.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable

import attrs

# A suggestion nobody acted on for this long was not wanted (it may still show, unread).
TIMEOUT_S = 30.0
# An accept that is undone this soon was a mistake, not an acceptance.
UNDO_WINDOW_S = 5.0

Sink = Callable[["Outcome"], None]


@attrs.frozen
class SuggestionFeatures:
    """What is known about a suggestion when it is shown; never any code text."""

    language: str = ""
    mode: str = "line"
    """line, block or new-line (a line above the code at the cursor)."""
    context_kind: str = ""
    """Where the cursor was: line-end (text before it on the line), empty-line or block-body."""
    snippets: int = 0
    """Related definitions / open-file snippets in the prompt."""
    model_id: str = ""
    source: str = "model"
    """model or cache (typed-ahead answers continue the suggestion they came from)."""
    mean_logprob: float | None = None
    """Over the tokens of the shown text (GenerationResult.shown_logprobs), as are min and first."""
    min_logprob: float | None = None
    first_logprob: float | None = None
    shown_tokens: int = 0
    generated_tokens: int = 0
    finish_reason: str = ""
    """Why generation stopped where it was shown: stop, eog, length, or budget (cut at a guess or the time budget)."""
    prompt_hash: str = ""


@attrs.frozen
class Outcome:
    """The one verdict on one shown suggestion."""

    id: str
    outcome: str
    """accepted, typed, partial, rejected or unseen."""
    reason: str
    """How: whole, explicit, word, line, typed, diverged, moved, replaced, closed, timeout, undone, not-shown."""
    shown_chars: int
    accepted_chars: int
    """Characters of the suggestion that ended up in the document (accepted or typed)."""
    features: SuggestionFeatures
    shown_at: float
    """Unix time."""
    decided_after_s: float
    seen: bool | None = None
    """Whether the client showed it, for clients that report it (None: the client does not say)."""

    @property
    def accepted(self) -> bool:
        """Whether the user took the whole suggestion (by accepting or typing it)."""
        return self.outcome in ("accepted", "typed")


@attrs.define
class _Tracked:
    """A suggestion being decided: where it was shown and how far into it the document got."""

    id: str
    base: str
    """The document when the suggestion was first shown."""
    offset: int
    text: str
    """The suggestion as last shown, from `offset` (typed-ahead answers extend or repeat it)."""
    features: SuggestionFeatures
    shown_at: float
    shown_wall: float
    last_activity: float
    progress: int = 0
    """Characters of `text` now in the document at `offset`."""
    accept_actions: int = 0
    typed_chars: int = 0
    explicit: bool = False
    progress_before_accept: int = 0
    """Progress before the change that completed it (an undo goes back to at most this)."""
    completed_by_accept: bool = False
    """The change that completed it was an accept (so it can be undone), not a typed character."""
    whole_at: float = 0.0
    seen: bool = False
    """The client reported it on screen (or acted on it)."""
    accepted_in_part: bool = False
    """The client reported a partial accept (VS Code's accept word / accept line)."""
    partial_kind: str = ""
    """What the client's last partial accept took: word or line ('' when it did not say)."""

    @property
    def expected_cursor(self) -> int:
        """Where the cursor is while the user works through the suggestion."""
        return self.offset + self.progress

    def inserted(self, document: str) -> str | None:
        """What the document has at `offset` that the base did not, or None when it changed elsewhere."""
        tail = len(self.base) - self.offset
        if len(document) < len(self.base) or not document.startswith(self.base[:self.offset]):
            return None
        if tail and not document.endswith(self.base[self.offset:]):
            return None
        return document[self.offset:len(document) - tail]


def _is_accept_action(chunk: str) -> bool:
    """An insertion of several characters at once with code in it: the client accepted, nobody types that fast.

    Whitespace-only chunks are an editor's auto-indent after Enter, which the user typed.
    """
    return len(chunk) >= 2 and bool(chunk.strip())


class OutcomeTracker:
    """Follows shown suggestions per document and hands each its one outcome (to `sink`)."""

    def __init__(self, sink: Sink, *, clock: Callable[[], float] = time.monotonic,
                 wall: Callable[[], float] = time.time, timeout_s: float = TIMEOUT_S,
                 undo_window_s: float = UNDO_WINDOW_S) -> None:
        self._sink = sink
        self._clock = clock
        self._wall = wall
        self.timeout_s = timeout_s
        self.undo_window_s = undo_window_s
        self._open: dict[str, _Tracked] = {}
        self._settling: dict[str, _Tracked] = {}
        self._by_id: dict[str, str] = {}
        self.counts: dict[str, int] = {}
        self.client_reports_shows = False
        """Set by the client's first show report: from then on a suggestion it never showed is unseen."""

    # -- events -------------------------------------------------------------------------

    def shown(self, path: str, document: str, offset: int, text: str, features: SuggestionFeatures) -> str:
        """A suggestion was sent to the client; its id (the same id when it continues the one showing)."""
        now = self._clock()
        self.sweep()
        tracked = self._open.get(path)
        if tracked is not None:
            inserted = tracked.inserted(document)
            if (inserted is not None and offset == tracked.offset + len(inserted)
                    and tracked.text.startswith(inserted)):
                whole = inserted + text
                if whole == tracked.text or whole.startswith(tracked.text) or tracked.text.startswith(whole):
                    # Typed-ahead (or the same suggestion asked for again): it goes on being decided.
                    tracked.text = whole
                    tracked.progress = len(inserted)
                    tracked.last_activity = now
                    return tracked.id
            at_cursor = inserted is not None and offset == tracked.offset + len(inserted)
            self._decide(tracked, "replaced" if at_cursor else "moved")
        tracked = _Tracked(id=uuid.uuid4().hex[:16], base=document, offset=offset, text=text, features=features,
                           shown_at=now, shown_wall=self._wall(), last_activity=now)
        self._open[path] = tracked
        self._by_id[tracked.id] = path
        return tracked.id

    def changed(self, path: str, document: str) -> None:
        """The document changed (after the edit); advance or decide the suggestion showing there."""
        self.sweep()
        now = self._clock()
        settling = self._settling.get(path)
        if settling is not None:
            inserted = settling.inserted(document)
            if (settling.completed_by_accept or settling.explicit) and inserted is not None \
                    and len(inserted) <= settling.progress_before_accept and settling.text.startswith(inserted):
                self._decide(settling, "undone")
            else:
                self._decide(settling, None)  # the user went on after accepting: it stays accepted
        tracked = self._open.get(path)
        if tracked is None:
            return
        inserted = tracked.inserted(document)
        if inserted is not None and tracked.text and len(inserted) > len(tracked.text) \
                and inserted.startswith(tracked.text):
            # The whole suggestion and more in one notification (editors batch their changes): it was
            # taken, and the user went on (so no undo window).
            rest = tracked.text[tracked.progress:]
            if _is_accept_action(rest):
                tracked.accept_actions += 1
            else:
                tracked.typed_chars += len(rest)
            tracked.progress = len(tracked.text)
            self._decide(tracked, None)
            return
        if inserted is None or not tracked.text.startswith(inserted):
            self._decide(tracked, "diverged")
            return
        grown = len(inserted) - tracked.progress
        if grown > 0:
            if _is_accept_action(inserted[tracked.progress:]):
                tracked.accept_actions += 1
            else:
                tracked.typed_chars += grown
        tracked.progress_before_accept = tracked.progress
        tracked.progress = len(inserted)
        tracked.last_activity = now
        if tracked.progress == len(tracked.text) and tracked.text:
            tracked.whole_at = now
            del self._open[path]
            tracked.completed_by_accept = grown > 0 and _is_accept_action(inserted[tracked.progress_before_accept:])
            # A client that reports what it shows (VS Code) runs the item's accept command after inserting
            # it: a suggestion completed by one character (a one-character suggestion accepted, or typed)
            # waits for that command until the next change.
            awaits_command = self.client_reports_shows and grown == 1
            if tracked.completed_by_accept or awaits_command:
                self._settling[path] = tracked  # an accept can be undone: decided after the undo window
            else:
                self._decide(tracked, None)

    def cursor_at(self, path: str, document: str, offset: int) -> None:
        """The client named the cursor (a request at it); a cursor elsewhere leaves the suggestion."""
        settling = self._settling.get(path)
        if settling is not None and offset != settling.expected_cursor:
            self._decide(settling, None)
        tracked = self._open.get(path)
        if tracked is None:
            return
        inserted = tracked.inserted(document)
        if inserted is None or not tracked.text.startswith(inserted):
            self._decide(tracked, "diverged")
        elif offset != tracked.offset + len(inserted):
            self._decide(tracked, "moved")

    def accepted_explicitly(self, suggestion_id: str) -> bool:
        """The client said it accepted this suggestion (the inline item's command); False when unknown."""
        tracked = self._undecided(suggestion_id)
        if tracked is None:
            return False
        tracked.explicit = tracked.seen = True
        return True

    def shown_by_client(self, suggestion_id: str) -> bool:
        """The client put this suggestion on screen (VS Code's show callback); False when unknown or decided."""
        self.client_reports_shows = True
        tracked = self._undecided(suggestion_id)
        if tracked is None:
            return False
        tracked.seen = True
        return True

    def partially_accepted(self, suggestion_id: str, kind: str = "") -> bool:
        """The client accepted part of this suggestion (kind: word or line; its edit arrives as a change)."""
        tracked = self._undecided(suggestion_id)
        if tracked is None:
            return False
        tracked.seen = True
        tracked.accepted_in_part = True
        tracked.partial_kind = kind if kind in ("word", "line") else tracked.partial_kind
        return True

    def _undecided(self, suggestion_id: str) -> _Tracked | None:
        """The suggestion with this id while it is still being decided."""
        path = self._by_id.get(suggestion_id)
        if path is None:
            return None
        for tracked in (self._settling.get(path), self._open.get(path)):
            if tracked is not None and tracked.id == suggestion_id:
                return tracked
        return None

    def closed(self, path: str) -> None:
        """The document closed: whatever showing there is decided now."""
        settling = self._settling.get(path)
        if settling is not None:
            self._decide(settling, None)
        tracked = self._open.get(path)
        if tracked is not None:
            self._decide(tracked, "closed")

    def close(self) -> None:
        """Decide everything still open (the server stops)."""
        for path in list(self._settling) + list(self._open):
            self.closed(path)

    def sweep(self) -> None:
        """Decide suggestions past their undo window or their timeout."""
        now = self._clock()
        for tracked in list(self._settling.values()):
            if now - tracked.whole_at >= self.undo_window_s:
                self._decide(tracked, None)
        for tracked in list(self._open.values()):
            if now - tracked.last_activity >= self.timeout_s:
                self._decide(tracked, "timeout")

    @property
    def pending(self) -> int:
        """Suggestions not decided yet."""
        return len(self._open) + len(self._settling)

    # -- deciding -------------------------------------------------------------------------

    def _decide(self, tracked: _Tracked, left_because: str | None) -> None:
        """Hand the suggestion its one outcome; `left_because` is why it ended unfinished (None: it did not)."""
        for table in (self._open, self._settling):
            for path, entry in list(table.items()):
                if entry is tracked:
                    del table[path]
        if self._by_id.pop(tracked.id, None) is None:
            return  # decided already: one outcome per suggestion
        whole = tracked.progress == len(tracked.text) and bool(tracked.text)
        accepted_by_client = tracked.explicit or tracked.accepted_in_part
        if self.client_reports_shows and not tracked.seen:
            outcome, reason, kept = "unseen", "not-shown", 0
        elif left_because == "undone":
            outcome, reason, kept = "rejected", "undone", tracked.progress_before_accept
        elif whole and left_because is None:
            kept = tracked.progress
            if accepted_by_client or tracked.accept_actions:
                outcome, reason = "accepted", "explicit" if accepted_by_client else "whole"
            else:
                outcome, reason = "typed", "typed"
        elif tracked.explicit:
            # The client accepted it; the edit reached us changed (formatting) or not at all.
            outcome, reason, kept = "accepted", "explicit", tracked.progress
        elif (tracked.accept_actions or tracked.accepted_in_part) and tracked.progress:
            accepted = tracked.text[:tracked.progress]
            first_line = tracked.text.split("\n", 1)[0]
            outcome, kept = "partial", tracked.progress
            reason = tracked.partial_kind or ("line" if accepted.endswith("\n") or accepted == first_line else "word")
        else:
            outcome, reason, kept = "rejected", left_because or "diverged", tracked.progress
        record = Outcome(id=tracked.id, outcome=outcome, reason=reason, shown_chars=len(tracked.text),
                         accepted_chars=kept, features=tracked.features, shown_at=tracked.shown_wall,
                         decided_after_s=round(self._clock() - tracked.shown_at, 3),
                         seen=tracked.seen if self.client_reports_shows else None)
        self.counts[outcome] = self.counts.get(outcome, 0) + 1
        self._sink(record)
