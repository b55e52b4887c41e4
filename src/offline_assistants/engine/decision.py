"""The tool decision under `tool_choice: "auto"`: answer, run code, or call one of the functions.

A tiny model is a poor judge of *whether* a tool fits when asked to pick greedily: SmolLM2-135M answered 83% of
the requests that needed a call (benchmarks/tool_decisions.py). What works better, measured on that set:

1. **Options described, scored whole.** Each option is a sentence continuing "I will": " answer from what I
   already know.", " run Python code to compute it.", " use get_weather to get the current weather for a city."
   Its score is the log-probability of the whole sentence, not of greedy first tokens.
2. **Calibrated against the option's prior** (pointwise mutual information): the same options are scored once
   after a request that says nothing ("N/A"), and that score is subtracted. What is left is how much *this*
   request raises each option, so a model's blanket preference for answering no longer decides. The no-request
   scores depend only on the system prompt (the tool set), so they are computed once per tool set and cached.
3. **Biases per kind** between answering, code and calling, fitted on the labelled set (each tool's own `BIAS`,
   in tools/; a split-half fit scored within 2 points of the full fit).
4. **Words the request shares with a function** (engine/words.py: stems in common with its name, description
   and parameters), LEXICAL_WEIGHT each, added to that function's score: the model's likelihoods alone miss
   requests that plainly name what a tool does. Decision accuracy 0.808 -> 0.922 on the labelled set (split-half:
   weights fitted on one half scored 0.88 and 0.905 on the other); words alone score 0.743.
5. **Which function** is then chosen among the functions alone by the likelihood of " call NAME." plus
   NAMING_LEXICAL_WEIGHT per shared stem (the right one 50 -> 62 times in 63).
   A backend that `scores_together` (the model process on a GPU) is asked these with the options, in one pass;
   on a CPU, where each option's tokens cost their share, only when a function was chosen.
6. **A second, different function** joins the call when the request asks for two things in two clauses ("the TSLA
   price and the news about Tesla") and that function shares words with a clause the first one shares none with.
   The two calls come in the order of their clauses.

Held out (benchmarks/tool_decisions.py --set bfcl-*: other authors' functions and phrasings, and irrelevant
requests that share a word with the function offered, from the Berkeley Function Calling Leaderboard): words (4.)
make any function sharing a word look relevant, and on the held-out half the decision is 0.621, abstaining on 6
of 31 irrelevant requests (ours: 0.922). Nothing measured so far does better on both sources, so nothing of it is
here (benchmarks/README.md has the figures). The sources disagree on what separates a fitting function: a rule
over the calibrated score, shared words and a "channel" term, fitted on the BFCL tune half (0.757 there),
scored 0.638 on ours; fitted on ours it gained nothing on BFCL. The channel (the request's log-likelihood after
"The function NAME can DESCRIPTION. Here is a request a user wrote for it:", less after a neutral lead), with the
one weight that kept ours, raised the tune half 0.557 -> 0.614 and left the held-out half at 0.621, for N+1
more scoring passes per decision. Also tried on the tune half: only name and description words, the share of the
request they cover, static-embedding similarity (wordllama), the channel per token.

Everything is scored, nothing sampled: the same conversation is routed the same way every time.
"""

from __future__ import annotations

import hashlib
import threading
from collections import OrderedDict

from offline_assistants.engine import words
from offline_assistants.llm.backend import Decision, DecisionMaker, ModelBackend, ToolOption

LEAD = "I will"
ANSWER_TEXT = " answer from what I already know."
NULL_REQUEST = "N/A"
# Fitted on benchmarks/data/tool_decisions.jsonl (a grid over the three; neighbours within 3 points). Each
# tool's own bias (code, functions) is its plug-in's (tools/), fitted the same way.
LEXICAL_WEIGHT = 4.0  # added to a function's score per word stem the request shares with it
NAMING_LEXICAL_WEIGHT = 3.0  # the same, when choosing which function to call
NULL_CACHE_SIZE = 64


def option_text(option: ToolOption | None) -> str:
    """What choosing this option says, as the continuation of LEAD."""
    return ANSWER_TEXT if option is None else option.sentence


def call_text(option: ToolOption) -> str:
    return f" call {option.name}."


class Decider(DecisionMaker):
    """Chooses among options with the model; keeps the no-request scores of recent tool sets."""

    offers_used_tools = False

    def __init__(self, backend: ModelBackend) -> None:
        self.backend = backend
        self._null: OrderedDict[str, list[float]] = OrderedDict()
        self._null_lock = threading.Lock()  # runs decide on several worker threads at once (engine/worker.py)

    def choose(self, system: list[int], prompt: list[int], options: list[ToolOption | None], *,
               request: str, cache_key: str | None) -> Decision:
        """The chosen option and how many prompt tokens the scoring read. `prompt` is the whole prompt up to the
        assistant's turn; `system` its system part, which the calibration reuses; `request` the user's words."""
        backend = self.backend
        texts = [option_text(o) for o in options]
        encoded = [backend.encode_text(t) for t in texts]
        lead = backend.encode_text(LEAD)
        functions = [o for o in options if o is not None and o.type == "function"]
        naming = [backend.encode_text(call_text(f)) for f in functions] if len(functions) > 1 else []
        # One pass where options cost about one's price: which function is asked with the rest, used or not.
        together = naming if backend.scores_together else []
        scores = backend.score(prompt + lead, encoded + together, cache_key=cache_key)
        scores, named = scores[:len(options)], scores[len(options):]
        read = len(prompt) + len(lead)
        null, null_read = self._null_scores(system, lead, texts, encoded)
        read += null_read
        said = words.stems(request)
        adjusted = [s - n + _bias(o) + _lexical(said, o, LEXICAL_WEIGHT) for s, n, o in zip(scores, null, options)]
        best = max(range(len(options)), key=lambda i: (adjusted[i], options[i] is None))  # a tie answers
        chosen = options[best]
        if chosen is None or chosen.type != "function":
            return Decision(chosen, read)
        if len(functions) > 1:
            named = named or backend.score(prompt + lead, naming, cache_key=cache_key)
            ranked = [n + _lexical(said, f, NAMING_LEXICAL_WEIGHT) for n, f in zip(named, functions)]
            chosen = functions[max(range(len(functions)), key=ranked.__getitem__)]
        parts = [words.stems(part) for part in words.clauses(request)]
        calls = in_request_order(parts, chosen, also_asked(parts, chosen, functions))
        return Decision(calls[0], read, also=calls[1:])

    def _null_scores(self, system: list[int], lead: list[int], texts: list[str], encoded: list[list[int]]
                     ) -> tuple[list[float], int]:
        key = hashlib.sha256(repr((system, texts)).encode()).hexdigest()
        with self._null_lock:
            cached = self._null.get(key)
            if cached is not None:
                self._null.move_to_end(key)
                return cached, 0
        backend = self.backend
        prompt = system + backend.encode_message("user", NULL_REQUEST) + backend.generation_prefix() + lead
        # No cache key: this prompt belongs to no conversation, and must not evict one's parked state.
        scores = backend.score(prompt, encoded, cache_key=None)
        with self._null_lock:
            self._null[key] = scores
            while len(self._null) > NULL_CACHE_SIZE:
                self._null.popitem(last=False)
        return scores, len(prompt)


def _lexical(said: frozenset[str], option: ToolOption | None, weight: float) -> float:
    if option is None or option.about is None:
        return 0.0
    return weight * (words.shared(said, option.about) + option.evidence)


def also_asked(parts: list[frozenset[str]], chosen: ToolOption, functions: list[ToolOption]) -> list[ToolOption]:
    """A different function the request also asks for, in a clause of its own (see 6. above), if any."""
    if len(parts) < 2:
        return []
    for other in functions:
        if other is chosen:
            continue
        if any(_shares(part, other) and not _shares(part, chosen) for part in parts):
            return [other]
    return []


def in_request_order(parts: list[frozenset[str]], chosen: ToolOption, also: list[ToolOption]) -> list[ToolOption]:
    """The calls in the order the request asks for them, as a model writing them would: the second function goes
    first when its clause comes before every clause that the chosen one shares words with ("What's on my calendar
    on Friday, and the temperature in Denver?" calls the calendar, then the weather)."""
    if not also:
        return [chosen]
    other = also[0]
    mine = [i for i, part in enumerate(parts) if _shares(part, chosen)]
    theirs = [i for i, part in enumerate(parts) if _shares(part, other) and not _shares(part, chosen)]
    if theirs and (not mine or theirs[0] < mine[0]):
        return [other, chosen, *also[1:]]
    return [chosen, *also]


def _shares(part: frozenset[str], option: ToolOption) -> int:
    return words.shared(part, option.about) if option.about is not None else 0


def _bias(option: ToolOption | None) -> float:
    return 0.0 if option is None else option.bias
