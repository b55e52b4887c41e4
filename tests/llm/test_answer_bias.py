"""The answer bias (llm/answer_bias.py) on a small made-up vocabulary: which tokens it moves, given the text so far.
No model: the logits are a numpy array over the made-up vocabulary."""

from __future__ import annotations

import numpy as np
import pytest

from offline_assistants.llm.answer_bias import FOLLOW, START, STOP, Pieces, Steering, grouped, marks_of, spans_of
from offline_assistants.llm.backend import AnswerBias

# Single digits as most small models split them, a few longer pieces, marks, and an end token.
VOCAB = [*"0123456789", " ", ".", ",", " The", " is", "66", "665", "<", " <", "tool", "```", "```python", "{", "\n",
         "\n```", "\n\n", "<|im_end|>"]
END = VOCAB.index("<|im_end|>")
CODE = "```python\n"
CALL = '<tool_call>\n{"name": "get_weather", "arguments": '


def ids(*texts: str) -> set[int]:
    return {VOCAB.index(t) for t in texts}


def named(bias: dict[int, float]) -> dict[str, float]:
    return {VOCAB[token]: value for token, value in bias.items()}


@pytest.fixture
def pieces() -> Pieces:
    return Pieces(((i, t.encode()) for i, t in enumerate(VOCAB)), ends=[END])


def steering(pieces: Pieces, *outputs: str, openings: tuple[str, ...] = ()) -> Steering:
    made = Steering.of(AnswerBias(copy_from=outputs, never_open=openings), pieces)
    assert made is not None
    return made


def applied(s: Steering, text: str, logits: dict[str, float] | None = None) -> dict[str, float]:
    """The logits after the bias, starting from 0 (or the given ones): only those that are not 0."""
    array = np.zeros(len(VOCAB), dtype=np.float32)
    for text_, value in (logits or {}).items():
        array[VOCAB.index(text_)] = value
    s.apply(text, array)
    return {VOCAB[i]: float(v) for i, v in enumerate(array) if v}


def test_spans_are_the_numbers_of_the_outputs_and_their_grouped_forms() -> None:
    assert spans_of(["Output:\n7006652\n"]) == ("7006652", "7,006,652")
    assert spans_of(['{"price": 182.31}', "Cloudy, 14 C"]) == ("182.31", "14")
    assert spans_of(["The rent is 1,450 euros."]) == ("1,450", "1450")
    # File search's citation markers are not figures; a number is found once.
    assert spans_of(["【0:1†report.txt】 The Q3 revenue was 4.2 million.", "4.2"]) == ("3", "4.2")
    assert grouped("1234567.25") == "1,234,567.25"


def test_a_number_begun_is_copied_digit_by_digit(pieces: Pieces) -> None:
    s = steering(pieces, "Output:\n7006652")
    assert named(s.bias("The answer is 700")) == {"6": FOLLOW, "66": FOLLOW, "665": FOLLOW}
    assert named(s.bias("The answer is 7006")) == {"6": FOLLOW}  # "65" is no token here
    # Grouped as the reply began it: the commas are kept.
    assert named(s.bias("It is 7,0")) == {"0": FOLLOW}
    assert named(s.bias("It is 7,006")) == {",": FOLLOW}


def test_a_whole_number_is_not_run_on_but_a_short_one_may_be(pieces: Pieces) -> None:
    s = steering(pieces, "7006652 and 12")
    after = named(s.bias("= 7006652"))
    assert after["0"] == after["9"] == after["66"] == -STOP and "." not in after
    assert named(s.bias("x = 12")) == {}  # "12" may begin "1234": a short span does not stop the number


def test_a_number_that_is_no_span_is_left_alone(pieces: Pieces) -> None:
    s = steering(pieces, "7006652")
    assert named(s.bias("1234 * 5")) == {}
    assert named(s.bias("about 70066.")) == {}  # gone astray: nothing to copy from here


def test_outside_a_number_the_spans_starts_get_a_nudge_but_a_bare_space_does_not(pieces: Pieces) -> None:
    s = steering(pieces, "Cloudy, 14 C")
    assert named(s.bias("The temperature is")) == {"1": START}
    assert named(s.bias("")) == {"1": START}


def test_an_answer_never_opens_with_a_call_opening(pieces: Pieces) -> None:
    s = steering(pieces, openings=(CODE, CALL))
    assert marks_of((CODE, CALL)) == ("```", "<")
    after = applied(s, "  \n", {"<|im_end|>": 1.0, " The": 2.0})
    banned = {t for t, v in after.items() if v == -np.inf}
    assert banned == {"<", " <", "```", "```python", "\n```"}
    assert after["<|im_end|>"] == 1.0 and after[" The"] == 2.0  # the end token starts with "<" but is no mark


def test_a_mark_on_a_new_line_after_the_answer_ends_it(pieces: Pieces) -> None:
    s = steering(pieces, openings=(CALL, CODE))
    # "42\n</tool_response>": as likely to end as it was to go on into the tag.
    after = applied(s, "42\n", {"<": 3.0, "<|im_end|>": 1.0, " The": 2.0})
    assert after["<|im_end|>"] == 3.0 and after["<"] == -np.inf and after[" The"] == 2.0
    # Mid-line, only a token that itself breaks the line into a mark is one.
    after = applied(s, "It is 42", {"<": 3.0, "\n```": 4.0, "<|im_end|>": 1.0})
    assert after == {"<": 3.0, "\n```": -np.inf, "<|im_end|>": 4.0}


def test_nothing_to_steer_by_is_no_steering(pieces: Pieces) -> None:
    assert Steering.of(AnswerBias(copy_from=("no figures here",)), pieces) is None
    assert Steering.of(AnswerBias(), pieces) is None


def test_pieces_index_a_vocabulary_by_text() -> None:
    pieces = Pieces([(0, b"7"), (1, b"70"), (2, b"\xe2\x80"), (3, b""), (4, b"7")], ends=[3])
    assert sorted(pieces.prefixes("7006")) == [0, 1, 4]
    assert sorted(pieces.prefixes("7006", 2)) == [1]
    assert pieces.digit_led == [0, 4, 1] and pieces.ends == [3] and pieces.longest == 2
