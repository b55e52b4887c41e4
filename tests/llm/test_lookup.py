"""Prompt lookup (llm/lookup.py): drafts continue the context's latest match, longest suffix first, and the pace
grows, shrinks and pauses with how drafts fared."""

from __future__ import annotations

from offline_assistants.llm.lookup import MAX_DRAFT, Costs, Lookup, Pace


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


def test_a_draft_is_as_long_as_its_rows_are_worth() -> None:
    costs, overall = Costs(), Pace()
    assert Pace().next(costs, 1, overall) == 0  # nothing measured yet: a plain step first
    costs.decoded(1, 0, 10.0)
    assert Pace().next(costs, 1, overall) == 1  # 0.7 x 10 ms > 5 ms (the row's prior cost); 0.49 x 10 is not
    costs.decoded(3, 2, 12.0)  # a drafted row measured at 1 ms: 0.7^6 x 10 > 1 > 0.7^7 x 10
    assert Pace().next(costs, 1, overall) == 6
    keen = Pace()
    keen.took(8, 8)
    assert keen.next(costs, 1, overall) == MAX_DRAFT  # this reply agrees with its drafts
    costs.decoded(4, 0, 20.0)
    assert Pace().next(costs, 4, overall) == 4  # four share a step: a kept token saves 5 ms, 0.7^4 x 5 > 1
    for _ in range(6):
        overall.took(4, 0)  # everyone's drafts refused at once: the prior falls to 2.8 / 10
    assert Pace().next(costs, 1, overall) == 1  # 0.28 x 10 > 1 > 0.28^2 x 10


def test_costs_learn_a_rows_price_from_decodes_beside_plain_ones() -> None:
    costs = Costs()
    costs.decoded(3, 2, 30.0)  # no plain decode of one sequence yet: nothing to compare with
    assert costs.row_ms is None
    costs.decoded(1, 0, 10.0)
    costs.decoded(3, 2, 30.0)
    assert costs.row_ms == 10.0 and costs.step_ms(1) == 10.0 and costs.step_ms(2) is None
