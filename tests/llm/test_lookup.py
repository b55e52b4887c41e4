"""Prompt lookup (llm/lookup.py): drafts continue the context's latest match, longest suffix first, and the pace
grows, shrinks and pauses with how drafts fared."""

from __future__ import annotations

from offline_assistants.llm.lookup import MAX_DRAFT, MISSES, PAUSE, Lookup, Pace


def test_a_draft_continues_the_latest_earlier_occurrence_of_the_suffix() -> None:
    lookup = Lookup.of([5, 1, 2, 3, 4, 9, 1, 2, 3, 7, 8, 1, 2])
    assert lookup.draft(3) == [3, 7, 8]  # (1, 2) last came before 3, 7, 8 (not 3, 4, 9)
    lookup.extend([3])
    assert lookup.draft(2) == [7, 8]  # (1, 2, 3): the latest occurrence again
    lookup.extend([4])
    assert lookup.draft(4) == [9, 1, 2, 3]  # (1, 2, 3, 4) occurs only at the start: the longest match wins


def test_nothing_is_drafted_without_a_match_or_room() -> None:
    lookup = Lookup.of([1, 2, 3, 4])
    assert lookup.draft(4) == []
    lookup.extend([1, 2])
    assert lookup.draft(0) == []
    assert lookup.draft(8) == [3, 4, 1, 2]  # a match runs on into the tokens written since


def test_a_single_token_in_common_is_no_match() -> None:
    assert Lookup.of([1, 2, 3, 9, 2]).draft(4) == []


def test_the_pace_grows_with_whole_drafts_and_pauses_after_misses() -> None:
    pace = Pace()
    first = pace.next()
    pace.took(first, first)
    assert pace.next() == min(MAX_DRAFT, first * 2)
    pace.took(4, 2)
    assert pace.next() == 3  # what was taken, and one more
    for _ in range(MISSES):
        pace.took(pace.next(), 0)
    assert [pace.next() for _ in range(PAUSE)] == [0] * PAUSE
    assert pace.next() > 0
    assert (pace.drafted, pace.accepted) == (first + 4 + 3 + 1 + 1, first + 2)
