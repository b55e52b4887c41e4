"""The loop rule on fixed texts, tokenized by the real model's tokenizer: loops and symbol runs end a reply;
lists, tables and code with repeated lines are left alone."""

from __future__ import annotations

import pytest

from offline_assistants.engine.loops import LoopGuard
from offline_assistants.llm.backend import ModelBackend


def first_trip(backend: ModelBackend, text: str) -> tuple[int, str] | None:
    """Feed the text token by token; where (in characters) and why the guard trips, or None."""
    guard = LoopGuard()
    seen = ""
    tokenizer = backend.tokenizer  # type: ignore[attr-defined]
    for token in backend.encode_text(text):
        piece = tokenizer.piece(token)
        seen += piece
        if guard.feed(token, piece):
            return len(seen), guard.tripped or ""
    return None


LOOPS = [
    "La femme au pays de France, la femme au pays de France, la femme au pays de France, la femme au pays de "
    "France, la femme au pays de France, la femme au pays de France",
    "I'm sorry, but I can't help with that. " * 6,
    "The answer is 4.\n" * 12,
    "Here is the plan. First we go to the market and buy bread, cheese and apples for the picnic in the park "
    "tomorrow. First we go to the market and buy bread, cheese and apples for the picnic in the park tomorrow.",
]

SYMBOLS = [
    "Sure! Here it is: ＡＢＣ＄％＆＇（）＊＋，－．／０１２",
    "The result is ☀☁☂☃☄★☆☇☈☉☊☋☌☍☎☏",
    "Wow" + "!" * 77,
    "Good morning \ue000\ue001\ue002\ue003\ue004\ue005\ue006\ue007\ue008\ue009\ue00a\ue00b\ue00c",
]

LEGIT = [
    "Here are five fruits:\n1. Apple\n2. Banana\n3. Cherry\n4. Mango\n5. Orange\n",
    "| Day | High | Low |\n|---|---|---|\n| Mon | 21 | 12 |\n| Tue | 22 | 13 |\n| Wed | 19 | 11 |\n| Thu | 20 | 12 |\n",
    "```python\nfor i in range(3):\n    print(i)\n    print(i)\nx = [0, 0, 0, 0]\ny = [0, 0, 0, 0]\n"
    "def f(a, b):\n    return a + b\n\ndef g(a, b):\n    return a - b\n```\n",
    "- Drink water.\n- Drink water before bed.\n- Go to bed at the same time.\n- Go to bed when tired.\n",
    "The capital of France is Paris. Paris is known for the Eiffel Tower, the Louvre and its cafés. Paris, "
    "Paris, Paris: the name says it all. 🙂",
    "Step 1: Preheat the oven.\nStep 2: Mix the flour and sugar.\nStep 3: Add the eggs.\nStep 4: Bake for 20 "
    "minutes.\nStep 5: Let it cool.\n",
    "1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 19 20 21 22 23 24 25 26 27 28 29 30 31 32 33 34 35",
    "========================\nResults\n========================\n",
]


@pytest.mark.parametrize("text", LOOPS)
def test_loops_are_stopped(real_backend: ModelBackend, text: str) -> None:
    trip = first_trip(real_backend, text)
    assert trip is not None and "repeats itself" in trip[1]
    assert trip[0] < len(text)


@pytest.mark.parametrize("text", SYMBOLS)
def test_symbol_runs_are_stopped(real_backend: ModelBackend, text: str) -> None:
    trip = first_trip(real_backend, text)
    assert trip is not None and trip[1] == "the reply turned into a run of symbols"


@pytest.mark.parametrize("text", LEGIT)
def test_lists_tables_and_code_are_left_alone(real_backend: ModelBackend, text: str) -> None:
    assert first_trip(real_backend, text) is None
