"""Outcome inference on edit sequences, without LSP: the tracker's rules one by one (clock injected)."""

from __future__ import annotations

import pytest

from codeassist_lsp.feedback.outcomes import Outcome, OutcomeTracker, SuggestionFeatures

BASE = "def area(r):\n    return \n"
OFFSET = BASE.index("return ") + len("return ")
SUGGESTION = "math.pi * r ** 2"


class Clock:
    """Time that moves only when the test says so."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def decided() -> list[Outcome]:
    return []


@pytest.fixture
def tracker(clock: Clock, decided: list[Outcome]) -> OutcomeTracker:
    return OutcomeTracker(decided.append, clock=clock)


def with_inserted(text: str) -> str:
    return BASE[:OFFSET] + text + BASE[OFFSET:]


def show(tracker: OutcomeTracker, text: str = SUGGESTION, inserted: str = "") -> str:
    return tracker.shown("a.py", with_inserted(inserted), OFFSET + len(inserted), text, SuggestionFeatures())


def test_accepting_the_whole_suggestion(tracker: OutcomeTracker, decided: list[Outcome]) -> None:
    sid = show(tracker)
    tracker.changed("a.py", with_inserted(SUGGESTION))
    assert decided == []  # an accept can still be undone
    tracker.changed("a.py", with_inserted(SUGGESTION + "\n"))  # the user goes on
    assert [(o.id, o.outcome, o.reason, o.accepted_chars) for o in decided] == [
        (sid, "accepted", "whole", len(SUGGESTION))]


def test_an_accept_is_decided_after_the_undo_window(tracker: OutcomeTracker, decided: list[Outcome],
                                                   clock: Clock) -> None:
    show(tracker)
    tracker.changed("a.py", with_inserted(SUGGESTION))
    clock.now += tracker.undo_window_s
    tracker.sweep()
    assert [o.outcome for o in decided] == ["accepted"]


def test_undo_after_accept_is_a_rejection(tracker: OutcomeTracker, decided: list[Outcome]) -> None:
    show(tracker)
    tracker.changed("a.py", with_inserted(SUGGESTION))
    tracker.changed("a.py", BASE)
    assert [(o.outcome, o.reason, o.accepted_chars) for o in decided] == [("rejected", "undone", 0)]


def test_accepting_a_word_then_leaving(tracker: OutcomeTracker, decided: list[Outcome]) -> None:
    sid = show(tracker)
    tracker.changed("a.py", with_inserted("math."))
    # The client asks again after the partial accept: the rest is the same suggestion.
    assert show(tracker, SUGGESTION[len("math."):], inserted="math.") == sid
    tracker.changed("a.py", with_inserted("math.tau"))
    assert [(o.id, o.outcome, o.reason, o.accepted_chars) for o in decided] == [(sid, "partial", "word", 5)]


def test_accepting_the_first_line_of_a_block(tracker: OutcomeTracker, decided: list[Outcome]) -> None:
    block = "x = 1\n    y = 2"
    show(tracker, block)
    tracker.changed("a.py", with_inserted("x = 1\n"))
    tracker.closed("a.py")
    assert [(o.outcome, o.reason) for o in decided] == [("partial", "line")]


def test_typing_it_through(tracker: OutcomeTracker, decided: list[Outcome]) -> None:
    sid = show(tracker)
    for end in range(1, len(SUGGESTION) + 1):
        tracker.changed("a.py", with_inserted(SUGGESTION[:end]))
        if end < len(SUGGESTION):
            tracker.cursor_at("a.py", with_inserted(SUGGESTION[:end]), OFFSET + end)
            assert show(tracker, SUGGESTION[end:], inserted=SUGGESTION[:end]) == sid  # typed-ahead
    assert [(o.id, o.outcome, o.reason, o.accepted_chars) for o in decided] == [
        (sid, "typed", "typed", len(SUGGESTION))]


def test_typing_something_else(tracker: OutcomeTracker, decided: list[Outcome]) -> None:
    show(tracker)
    tracker.changed("a.py", with_inserted("m"))
    tracker.changed("a.py", with_inserted("mx"))
    assert [(o.outcome, o.reason, o.accepted_chars) for o in decided] == [("rejected", "diverged", 1)]


def test_moving_the_cursor_away(tracker: OutcomeTracker, decided: list[Outcome]) -> None:
    show(tracker)
    tracker.cursor_at("a.py", BASE, OFFSET)  # still there: nothing decided
    assert decided == []
    tracker.cursor_at("a.py", BASE, 3)
    assert [(o.outcome, o.reason) for o in decided] == [("rejected", "moved")]


def test_nothing_happens(tracker: OutcomeTracker, decided: list[Outcome], clock: Clock) -> None:
    show(tracker)
    clock.now += tracker.timeout_s
    tracker.sweep()
    assert [(o.outcome, o.reason) for o in decided] == [("rejected", "timeout")]


def test_an_edit_elsewhere_in_the_document(tracker: OutcomeTracker, decided: list[Outcome]) -> None:
    show(tracker)
    tracker.changed("a.py", "import math\n" + BASE)
    assert [(o.outcome, o.reason) for o in decided] == [("rejected", "diverged")]


def test_a_different_suggestion_at_the_same_place_replaces_it(tracker: OutcomeTracker,
                                                              decided: list[Outcome]) -> None:
    first = show(tracker)
    assert show(tracker) == first  # asked again, the same answer: the same suggestion
    second = show(tracker, "2 * math.pi * r")
    assert second != first
    assert [(o.id, o.outcome, o.reason) for o in decided] == [(first, "rejected", "replaced")]


def test_explicit_accept_counts_once(tracker: OutcomeTracker, decided: list[Outcome]) -> None:
    sid = show(tracker)
    tracker.changed("a.py", with_inserted(SUGGESTION))
    assert tracker.accepted_explicitly(sid)
    tracker.closed("a.py")
    assert not tracker.accepted_explicitly(sid)  # decided: a late or repeated signal changes nothing
    tracker.close()
    assert [(o.id, o.outcome, o.reason) for o in decided] == [(sid, "accepted", "explicit")]


def test_auto_indent_after_enter_is_typing(tracker: OutcomeTracker, decided: list[Outcome]) -> None:
    block = "\n    return 1"
    show(tracker, block)
    tracker.changed("a.py", with_inserted("\n    "))  # the editor indents after Enter: not an accept
    tracker.changed("a.py", with_inserted("\n    x"))
    assert [(o.outcome, o.reason) for o in decided] == [("rejected", "diverged")]


def test_after_a_whole_accept_the_next_suggestion_is_new(tracker: OutcomeTracker, decided: list[Outcome]) -> None:
    # The early part of a suggestion was shown and accepted; the rest, shown after it, is its own suggestion.
    first = show(tracker, "math.pi")
    tracker.changed("a.py", with_inserted("math.pi"))
    second = show(tracker, " * r ** 2", inserted="math.pi")
    assert second != first
    tracker.changed("a.py", with_inserted("math.pi * r ** 2"))  # accepts the rest
    tracker.close()
    assert sorted((o.id, o.outcome) for o in decided) == sorted([(first, "accepted"), (second, "accepted")])


def test_every_suggestion_gets_exactly_one_outcome(tracker: OutcomeTracker, decided: list[Outcome]) -> None:
    ids = {show(tracker, f"value_{n}") for n in range(5)}
    tracker.close()
    tracker.close()
    assert sorted(o.id for o in decided) == sorted(ids)


def test_accept_and_go_on_in_one_notification(tracker: OutcomeTracker, decided: list[Outcome]) -> None:
    # Neovim debounces didChange: the accept and the next keys arrive as one change.
    sid = show(tracker)
    tracker.changed("a.py", with_inserted(SUGGESTION + ")"))
    assert [(o.id, o.outcome, o.accepted_chars) for o in decided] == [(sid, "accepted", len(SUGGESTION))]


def test_typing_a_one_character_suggestion_and_going_on(tracker: OutcomeTracker, decided: list[Outcome]) -> None:
    show(tracker, "1")
    tracker.changed("a.py", with_inserted("1)"))
    assert [(o.outcome, o.accepted_chars) for o in decided] == [("typed", 1)]


# -- what VS Code's extension adds: show and partial-accept reports --------------------------------


def test_a_partial_accept_the_client_reports_counts_even_for_one_character(tracker: OutcomeTracker,
                                                                         decided: list[Outcome]) -> None:
    sid = show(tracker, "x or y")
    assert tracker.shown_by_client(sid)
    tracker.changed("a.py", with_inserted("x"))  # one character: edits alone cannot tell it from typing
    assert tracker.partially_accepted(sid, "word")
    tracker.changed("a.py", with_inserted("x)"))
    assert [(o.id, o.outcome, o.reason, o.accepted_chars, o.seen) for o in decided] == [
        (sid, "partial", "word", 1, True)]


def test_without_the_report_one_character_is_typing(tracker: OutcomeTracker, decided: list[Outcome]) -> None:
    show(tracker, "x or y")
    tracker.changed("a.py", with_inserted("x"))
    tracker.changed("a.py", with_inserted("x)"))
    assert [(o.outcome, o.seen) for o in decided] == [("rejected", None)]  # seen: the client never says


def test_partial_accepts_all_the_way_are_an_accept(tracker: OutcomeTracker, decided: list[Outcome]) -> None:
    sid = show(tracker, "x or y")
    tracker.shown_by_client(sid)
    for end, kind in ((1, "word"), (4, "word"), (6, "word")):
        tracker.changed("a.py", with_inserted("x or y"[:end]))
        tracker.partially_accepted(sid, kind)
    tracker.close()
    assert [(o.outcome, o.reason, o.accepted_chars) for o in decided] == [("accepted", "explicit", 6)]


def test_a_suggestion_the_client_never_showed_is_unseen(tracker: OutcomeTracker, decided: list[Outcome]) -> None:
    first = show(tracker)
    tracker.shown_by_client(first)
    tracker.changed("a.py", with_inserted("m"))  # typed-ahead: still the same suggestion, seen
    second = show(tracker, "ax", inserted="m")  # a new answer, typed past before the editor showed it
    tracker.changed("a.py", with_inserted("my"))
    assert [(o.id, o.outcome, o.reason, o.seen) for o in decided] == [
        (first, "rejected", "replaced", True), (second, "unseen", "not-shown", False)]


def test_reports_about_unknown_or_decided_suggestions_change_nothing(tracker: OutcomeTracker,
                                                                   decided: list[Outcome]) -> None:
    sid = show(tracker)
    tracker.shown_by_client(sid)
    tracker.closed("a.py")
    assert not tracker.shown_by_client(sid) and not tracker.partially_accepted(sid, "word")
    assert not tracker.partially_accepted("no-such-id", "line")
    assert [(o.id, o.outcome) for o in decided] == [(sid, "rejected")]


def test_a_one_character_suggestion_accepted_in_vs_code(tracker: OutcomeTracker, decided: list[Outcome]) -> None:
    # VS Code inserts the item, then runs its accept command: one character looks typed until then.
    sid = show(tracker, "a")
    tracker.shown_by_client(sid)
    tracker.changed("a.py", with_inserted("a"))
    assert decided == [] and tracker.accepted_explicitly(sid)
    tracker.changed("a.py", with_inserted("a\n"))
    assert [(o.id, o.outcome, o.reason, o.accepted_chars) for o in decided] == [(sid, "accepted", "explicit", 1)]


def test_typing_through_in_vs_code_then_deleting_is_still_typed(tracker: OutcomeTracker,
                                                                decided: list[Outcome]) -> None:
    sid = show(tracker, "ab")
    tracker.shown_by_client(sid)
    tracker.changed("a.py", with_inserted("a"))
    tracker.changed("a.py", with_inserted("ab"))  # no command follows: the user typed it
    tracker.changed("a.py", with_inserted("a"))  # a backspace is not an undo of an accept
    assert [(o.id, o.outcome, o.accepted_chars) for o in decided] == [(sid, "typed", 2)]
