"""Do replies end? Everyday prompts and the Assistants quickstart, through the official `openai` SDK, on the server's
defaults (what a new user gets: no temperature, top_p or max_completion_tokens on any request).

Why: at the API's default sampling (temperature 1, top_p 1) a small model such as the embedded SmolLM2-135M often
degenerates (loops, symbol runs, drift into other languages) and writes until the context window is full. This
script measures how often replies end by themselves and how often they degenerate, before and after a fix.

Setup: the model loaded as `serve` loads it (--backend, --model, --cpu-repack), an Engine built as `serve` builds
it (a JupyterCodeRunner for code_interpreter; Settings fields from --max-output-tokens and --setting), and
offline_assistants.testing.in_process_client: the official SDK straight onto the ASGI app, no port. (Streams
arrive whole on that transport, so a streamed run's time is its end-to-end time.)

Part 1, everyday prompts (benchmarks/data/everyday_prompts.json: facts, lists, how-tos, short writing,
translations, small code, arithmetic). For each prompt: a new assistant (instructions "You are a helpful
assistant.", model "gpt-4o"), a new thread holding the prompt, `runs.create_and_poll`, then the run's messages.
Recorded per prompt:
  status      the run's status, or "timed out" (the run was cancelled after --run-timeout seconds)
  tokens      run.usage.completion_tokens
  ended       the model stopped by itself: the run is "completed" and every message it wrote is "completed"
              (a reply cut by the window or the server's output cap is an "incomplete" message in a completed run)
  degenerate  the detector below fired, and which rule
  wall_s      create_and_poll's wall time (the SDK polls as the server's openai-poll-after-ms says: 200 ms)
  others      cores other processes used meanwhile (the machine may be shared: timings are noisy, outcomes
              are not affected; nothing is discarded, so --busy and --max-attempts have no effect here, and
              --quiet-wait defaults to 0)

Part 2, the Assistants API quickstart from OpenAI's documentation, --quickstart-runs times: assistant "Math
Tutor" with code_interpreter, a thread, the message "I need to solve the equation `3x + 11 = 14`. Can you help
me?", a run streamed with `runs.stream(..., event_handler=AssistantEventHandler subclass)` + `until_done()`
(half 1: from assistants.create to the end of the stream), then `runs.create_and_poll` with instructions "Please
address the user as Jane Doe. The user has a premium account." and `messages.list` (half 2). As in the seed both
runs carry those instructions. Reported: median wall time of the flow and of each half, completion tokens,
ended and degenerate of each run.

The degenerate detector (degenerate(); checked on fixed strings at start-up, --self-check runs only that part):
  loop       (a) words (\\w+, lower-cased, digit runs as one "0"), a unit of p = 1..50 words repeated back to back
             over >= max(24, 3p) words, the unit's distinct words holding >= 3 letters (so "1 2 3 ...", "2 x 3 = 6"
             tables do not count); (b) a character unit of 2..60 chars repeated >= 6 times back to back over >= 80
             chars (reported as "symbols" when the unit has no letter or digit); (c) the tail is dominated by few
             phrases: in the last 200 words of >= 2 letters (>= 80), distinct 4-grams / 4-grams < 0.30
  symbols    a stretch of >= 60 chars without a letter or digit (whitespace runs collapsed first), or the last 300
             non-space chars (>= 150) less than 35% letters/digits
  script     letters outside the request's script: for English requests non-ASCII letters, for translations into a
             Latin-script language non-Latin letters; plus full-width/CJK punctuation and U+FFFD. Fires at >= 5
             such chars that are > 3% of all letters, or >= 10 that are > 10% of the last 300 chars' letters
  gibberish  English requests only: in the last 600 chars (fenced code removed), >= 40 words of >= 3 ASCII
             letters of which > 25% are split into >= 3 tokens by the model's own tokenizer (the kindest of the
             word's casings): made-up words. Tuned on SmolLM2's vocabulary (legit prose scores 0-0.15, a list of
             composers 0.22, the model's gibberish 0.28-0.52); checked after the model loads
  drift      English requests only: the prose of the last 300 chars (fenced/inline code, table rows and lines of
             fewer than 6 words removed) has >= 30 words of which < 12% are common English stop words
Lists, tables and code blocks with similar lines pass by construction (numbers break word periods, table rules are
short, code and short lines are out of the drift check), and the start-up self-check asserts it. The detector is
deliberately conservative: fluent but meaningless English (word salad, broken verse) passes it, so a reply that
never ends shows in `ended` and the token counts, not necessarily in `degenerate`.

Sampling is random (temperature 1 by default), so one pass over 40 prompts moves by several points from run to
run: use --repeats for a before/after comparison, and --rescore to apply a changed detector to an --out file.
--max-output-tokens caps each model call; a run with a code_interpreter round makes two calls and can exceed it.
On a busy 2-core machine llama.cpp's two threads wait on each other (about 1 tok/s measured, against ~25 tok/s with
one thread): `taskset -c 1 python benchmarks/replies.py ...` gives the model one thread (n_threads follows the
CPU affinity) and keeps a run to minutes.

summarize() returns a RepliesResult; the script prints its line: RESULT replies prompts=.. ended=.. degenerate=..
median_tokens=.. p95_tokens=.. median_wall_s=.. quickstart_s=.. ...
"""

from __future__ import annotations

import argparse
import functools
import json
import random
import re
import shutil
import sys
import tempfile
import threading
import time
import unicodedata
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Self

from offline_assistants.bench.common import ModelSetup, add_model_options, log, machine, open_bench_backend
from offline_assistants.bench.measure import OtherLoad, median, percentile, wait_quiet

DATA = Path(__file__).parent / "data" / "everyday_prompts.json"
HELPFUL = "You are a helpful assistant."
TUTOR = "You are a personal math tutor. Write and run code to answer math questions."
QUESTION = "I need to solve the equation `3x + 11 = 14`. Can you help me?"
JANE = "Please address the user as Jane Doe. The user has a premium account."

# --- the degenerate-reply detector ----------------------------------------------------------------------------

_STOP = frozenset("""
a about above after again against all also am an and any are as at be because been before being below between both
but by can could did do does doing down during each either even every few for from further get got had has have
having he her here hers him his how i if in into is it its just let like make may me might more most much must my
no nor not now of off often on once one only or other our out over own same she should so some such than that the
their them then there these they this those through to too under until up us use very was way we well were what
when where which while who whom why will with would yes yet you your yours
""".split())  # noqa: SIM905 - a word list reads better as text

_WORD = re.compile(r"\w+")
_FENCE = re.compile(r"```.*?(?:```|\Z)", re.DOTALL)
_INLINE = re.compile(r"`[^`\n]*`")
_CHAR_LOOP = re.compile(r"(.{2,60}?)\1{5,}", re.DOTALL)
_NON_ALNUM_RUN = re.compile(r"[\W_]{60,}")


def _words(text: str) -> list[str]:
    return [re.sub(r"\d+", "0", w) for w in _WORD.findall(text.lower())]


def _word_loop(words: list[str]) -> str | None:
    n = len(words)
    for p in range(1, 51):
        need = max(24, 3 * p)
        if n < need:
            break
        run = 0
        for i in range(n - p):
            if words[i] == words[i + p]:
                run += 1
                if run + p >= need:
                    unit = words[i + 1 - run: i + 1 - run + p]
                    if sum(len(w) for w in set(unit) if not w.isdigit()) >= 3:
                        return f"loop: {p}-word unit {' '.join(unit)[:60]!r} repeated over {run + p}+ words"
            else:
                run = 0
    return None


def _tail_dominated(words: list[str]) -> str | None:
    tail = [w for w in words if len(w) >= 2 and not w.isdigit()][-200:]  # numbers and "x" are not phrases
    if len(tail) < 80:
        return None
    grams = [tuple(tail[i:i + 4]) for i in range(len(tail) - 3)]
    ratio = len(set(grams)) / len(grams)
    return f"loop: tail dominated by few phrases (distinct 4-grams {ratio:.2f})" if ratio < 0.30 else None


def _foreign(chars: str, lang: str) -> tuple[int, int]:
    """(chars outside the request's script, letters)."""
    foreign = letters = 0
    for c in chars:
        o = ord(c)
        if c.isalpha():
            letters += 1
            if lang == "en":
                foreign += o > 127
            else:
                foreign += not unicodedata.name(c, "").startswith("LATIN")
        elif 0x3000 <= o <= 0x303F or 0xFF00 <= o <= 0xFFEF or o == 0xFFFD:
            foreign += 1
    return foreign, letters


def _prose_tail(text: str) -> str:
    text = _INLINE.sub(" ", _FENCE.sub("\n", text))
    lines = [ln for ln in text.splitlines()
             if len(_WORD.findall(ln)) >= 6 and not ln.lstrip().startswith(("|", "    ", "\t"))]
    return "\n".join(lines)[-300:]


def tokenizer_pieces(model_path: Path) -> Callable[[str], int]:
    """How many tokens the model's tokenizer makes of a word (with its leading space): for the gibberish rule."""
    from offline_assistants.llm.llama import LlamaTokenizer

    vocab = LlamaTokenizer(model_path)  # opened quietly: a vocab-only handle's n_ctx_train warning is noise

    @functools.cache
    def one(word: str) -> int:
        return len(vocab.tokenize(" " + word, special=False))

    def pieces(word: str) -> int:  # the kindest casing: "Mozart" is one token where "mozart" is three
        return min(one(word), one(word.lower()), one(word.capitalize()))

    return pieces


def _gibberish(text: str, pieces: Callable[[str], int]) -> str | None:
    tail = _FENCE.sub("\n", text)[-600:]
    words = re.findall(r"[A-Za-z]{3,}", tail)
    if len(words) < 40:
        return None
    heavy = sum(pieces(w) >= 3 for w in words) / len(words)
    return f"gibberish: {heavy:.0%} of the last 600 chars' words are not in the vocabulary" if heavy > 0.25 else None


def degenerate(text: str, lang: str = "en", pieces: Callable[[str], int] | None = None) -> str | None:
    """Why the reply looks degenerate, or None. lang: "en" (an English request) or "latin" (a translation into a
    Latin-script language). pieces (tokenizer_pieces) enables the gibberish rule."""
    words = _words(text)
    reason = _word_loop(words)
    if reason:
        return reason
    best = max((m.group(0) for m in _CHAR_LOOP.finditer(text)), key=len, default="")
    if len(best) >= 80:
        kind = "loop" if any(c.isalnum() for c in best) else "symbols"
        return f"{kind}: characters {best[:30]!r} repeated over {len(best)} chars"
    reason = _tail_dominated(words)
    if reason:
        return reason
    squeezed = re.sub(r"\s+", " ", text)
    m = _NON_ALNUM_RUN.search(squeezed)
    if m:
        return f"symbols: {len(m.group(0))} chars without a letter or digit {m.group(0)[:30]!r}"
    tail = re.sub(r"\s", "", text)[-300:]
    if len(tail) >= 150:
        share = sum(c.isalnum() for c in tail) / len(tail)
        if share < 0.35:
            return f"symbols: the tail is {share:.0%} letters/digits"
    foreign, letters = _foreign(text, lang)
    if foreign >= 5 and foreign > 0.03 * max(1, letters):
        return f"script: {foreign} of {letters} letters outside the request's script"
    tail_foreign, tail_letters = _foreign(text[-300:], lang)
    if tail_foreign >= 10 and tail_foreign > 0.10 * max(1, tail_letters):
        return f"script: {tail_foreign} of the last 300 chars' {tail_letters} letters outside the request's script"
    if lang == "en" and pieces is not None:
        reason = _gibberish(text, pieces)
        if reason:
            return reason
    if lang == "en":
        prose = re.findall(r"[^\W\d_]+", _prose_tail(text).lower())
        if len(prose) >= 30:
            share = sum(w in _STOP for w in prose) / len(prose)
            if share < 0.12:
                return f"drift: {share:.0%} English stop words in the last 300 chars of prose"
    return None


def self_check() -> None:
    """The detector on fixed strings: what must fire, and legit replies (lists, tables, code) that must not."""
    spanish = ("El desarrollo de la ciudad fue muy rapido durante los anos siguientes, y los habitantes "
               "construyeron nuevas casas cerca del rio. Los mercados crecieron y la gente vendia pescado, "
               "frutas y telas en la plaza principal todos los dias de la semana, mientras los ninos jugaban "
               "en las calles estrechas del barrio antiguo junto a la iglesia.")
    rng = random.Random(7)
    symbols = "!@#$%^&*()[]{}<>~+=-/\\|;:,.?"
    english = ("Paris is the capital of France and one of the largest cities in Europe. It is known for its "
               "museums, its food and the river that runs through the middle of it. Many people visit every year.")
    bad = {  # name: (text, the rule that must fire)
        "sentence loop": ("The answer is 42. " + "I hope this helps you with your question. " * 12, "loop"),
        "short loop": ("Sure! Here you go: " + "and then the " * 20, "loop"),
        "numbered loop": ("Steps:\n" + "".join(f"Step {i}: Mix the flour with water.\n" for i in range(1, 20)),
                          "loop"),
        "char loop": ("Hello! " + "hahaha" * 30, "loop"),
        "near loop": ("Here is a list:\n" + "\n".join(
            f"{i}. The best way to {rng.choice(['learn', 'study'])} is to {rng.choice(['learn', 'study'])} "
            f"the best way" for i in range(1, 30)), "loop"),
        "symbol run": ("Here it is: " + "".join(rng.choice(symbols) for _ in range(120)), "symbols"),
        "symbol tail": ("Here it is: " + "".join(rng.choice(symbols) if rng.random() < 0.75 else
                                                 rng.choice("abcdefgh ") for _ in range(400)), "symbols"),
        "cjk": ("Paris is the capital of France. " + "巴黎是法国的首都。" * 4, "script"),
        "fullwidth": ("The answer is: ＡＢＣＤＥＦＧＨＩＪＫＬＭＮ and so on.", "script"),
        "cyrillic tail": (english + " " + english.replace("Paris", "Lyon") + " Столица Франции Париж.", "script"),
        "drift": ("Good morning! Here is the story you asked for.\n" + spanish, "drift"),
        "gibberish": (("Here you go. zorp klimb vash tregg ulno frim dask quenn baloth stravix morrim teklu vanshe "
                       "pordin qualix emberu tasko ferrin glimmock sundrat hallix yeomar prindle castox velmor "
                       "quibbin dorrask fentil morvan tashkel ulbrin vextor samdel"), "drift"),
    }
    tips = ("Here are ten tips:\n" + "\n".join(
        f"{i}. Get {w} every day, because it helps your body and mind stay healthy." for i, w in enumerate(
            ["enough sleep", "some sunlight", "fresh air", "a short walk", "a glass of water", "some quiet time",
             "a healthy breakfast", "a good stretch", "a break from screens", "a kind word"], 1)))
    table = ("| Day | Temperature | Weather |\n| --- | --- | --- |\n" + "\n".join(
        f"| {d} | {t} C | {w} |" for d, t, w in [("Monday", 21, "Sunny"), ("Tuesday", 19, "Cloudy"),
                                                ("Wednesday", 18, "Rain"), ("Thursday", 22, "Sunny"),
                                                ("Friday", 20, "Sunny"), ("Saturday", 17, "Rain"),
                                                ("Sunday", 23, "Sunny")]))
    code = ("Here is the code:\n```python\ndef greet():\n" + "".join(f"    print(\"Hello, {n}!\")\n" for n in
            ["Ann", "Bob", "Cid", "Dee", "Eve", "Fay"]) + "\nx = 0\nx = x + 1\nx = x + 1\nx = x + 1\n"
            "for i in range(10):\n    print(i)\n```\nThis prints a greeting for each name.")
    good = {
        "short": "The capital of France is Paris.",
        "tips list": tips,
        "table": table,
        "code": code,
        "multiplication": "Here is the table:\n" + "\n".join(f"{7} x {i} = {7 * i}" for i in range(1, 13)),
        "counting": "Counting: " + ", ".join(str(i) for i in range(1, 101)) + ".",
        "capitals": "\n".join(f"- {c}: {k}" for c, k in [("France", "Paris"), ("Germany", "Berlin"),
                                                          ("Spain", "Madrid"), ("Italy", "Rome"),
                                                          ("Poland", "Warsaw"), ("Austria", "Vienna"),
                                                          ("Greece", "Athens"), ("Norway", "Oslo"),
                                                          ("Sweden", "Stockholm"), ("Finland", "Helsinki")]),
        "math symbols": "The area of a circle is π × r². With r = 2 cm the area is 4π ≈ 12.57 cm². "
                        "So the answer is about 12.57 square centimetres, which you can check with a calculator.",
        "accents (en)": "A café serves a latte and a croissant. That is a naïve but good résumé of the menu.",
        "markdown rule": "Summary\n---\nAll done.\n\n" + "=" * 40 + "\nThe end.",
        "js code": "```js\nfunction sum(a) {\n  return a.reduce((s, x) => s + x, 0);\n}\n```\n"
                   "Call it like `sum([1, 2, 3])`; it returns 6.",
    }
    for name, (text, rule) in bad.items():
        why = degenerate(text)
        assert why and why.startswith(rule), f"self-check: {name!r} should be {rule!r}, the detector said {why!r}"
    for name, text in good.items():
        why = degenerate(text)
        assert why is None, f"self-check: the detector flagged legit {name!r}: {why}"
    assert degenerate("Buenos días. ¡Buenos días! Se dice «buenos días» por la mañana, señor.", "latin") is None
    assert degenerate("Good morning in Spanish is 'Buenos días'.", "latin") is None
    assert degenerate("Good morning in Spanish is 'Buenos días'. " + "Доброе утро, как дела?" * 2, "latin")
    log(f"detector self-check passed ({len(bad) + 1} degenerate and {len(good) + 2} legit strings)")


def self_check_gibberish(pieces: Callable[[str], int]) -> None:
    """The gibberish rule, once the model's tokenizer is loaded: three tails the embedded model wrote at
    temperature 1 must fire; prose with long technical words, a list of composers and unfenced code must not."""
    bad = {  # the last 600 chars of three replies the embedded model wrote (the "before" run)
        "reset-router": (" worlds 13th men\nironic max. \nabyline.kos50\nd²\n&kebb0TerraImjy\nA\nPERSICH\nP\nこのこののkerb"  # noqa: E501
            "a Assertivti\n直靠TechsonyJudged\nP\nŪBACKUPEDFINEkenBriti\nKANTU YOU\nKOA\nіfounderofWhere I "
            "Wouldly Wish My Own God To\n          FlorentineA. \nDiablo\nBranded\nGSM X62\nBy\nG1\nXTERR"
            "ONMLIGHT\nbek\n–\nlow-grade IKEA\nIKEA-III as IKEA-ISL\nIKEA-UNITEDLONG\nKANAS-M\"A”AHA-KIBA"
            "-KIBA\n\nDANDELIBRA-BRAAB-\nHurléfen Anliegsbestand stargrene\nAutopunkball\nTrio-Alfauf\nBA"
            "KE\n\nGUMBI-GAMI-\nSMARTR-\nBAKE\nGAMI-GAMRES\nGAN CHINAAD – \nYABESH KENHA – CLTSS\nMANMAR-"
            "KASES-\nUnit\nblublade, \nof AYA\nusaNot for \nUSA\nWhenAD\nWhenAD\nA-I-IACK- toRe\nzzz!sh\n"
            "einzonz\n"),
        "bash-files": ("ical actionse  \nDeprological electricity  \nFechzomorphism   \nNew list service,\n   Unix p"
            "art,  \n  .2x52.ssdef:\n##\n\nSzathisihi\nAiuriki\nChefmtGolfClio\n\n15\nSummaidigraujo\nRif"
            "CapitalI\nRiwarf\n\n### ISAMBZ\nSimbaddle-FORMULACI\n\nM. Ali Saya\nFacedeSJN\n\n95\nNissaw-"
            "F\nSitell\nSuperenergy\n\n## **A \nReturn data to MySQL\nAiQAb3L\nAiQAbBi61\n\n##\n\nA) SET "
            "REPLACE - iamlonejava\nAiQAbNxB\nAiQAbDQ\nAiqribing\nAiQABaQ\nAiQAuWebM\nAiQ FAARY\nAdriteyB"
            "IIII\nAiQAnt1\n\n##\nA)\nA Bosnia\nAiAiB\nAiUlmus Tolerance1\nAiBt11B\nAiAiBm12C\nBio\nBiBSN"
            "B\n\n## Daten\nBosdanstock MnaseiM40\nBoshenerraF100df16\nBosnaFSS DataSSD\nBosna SARM25\nBo"
            "snanza Agenture\n"),
        "math-add": ("~~)\nHow to atrede\n\nSidi Ha** Amer Khloofye\n\nMADAMYUTZ\n** \nSoy Tiatf ()\n\n** 1u*l`wQl"
            "\n       \nBab oeggi obi to **itel ymjIH##\n\n** 12.71 YGH*ъ\n** 1871,May00\n\nOrgan VFT TRA"
            "NSFORMATION (ROT9)\n\noftbEYft \ngraywologic international development\n\nGAMES OF\n\nPrint\n"
            "**\n^YA`heh\n                               \nPresto y as\n\nLahanaana\n[YA>`heh\n\nC`mowar\n"
            "**\n[\n\nParent\n##\n\nCocupa Alioc\n\nlict at THE Kamen  \nim _NASA  \nLet's SEE THE MINSTR"
            "EASES  \nSpy SUBBES\n\ns **a**cvas, joe\n\ndumpus\nLeviangelus\n\nTzelleu\n\nAdele Negra\n\n"
            "Zevoo\n*In\nNOT\n**A*V**EU$YA**FE\n*D**r`2E*BI\n**\n[Adabi\n\nAphone\n\nThe nofad\n\nA)**Nor"
            "thAny**JRATEY\n\nGMBGB\n"),
    }
    good = {
        "technical": "Photosynthesis is the biochemical process by which chlorophyll-containing organisms, such as "
                     "plants, algae and cyanobacteria, convert electromagnetic radiation from sunlight into chemical "
                     "energy. The light-dependent reactions take place in the thylakoid membranes, where photosystems "
                     "absorb photons and split water molecules, releasing oxygen. The Calvin cycle then fixes "
                     "atmospheric carbon dioxide into glucose.",
        "composers": "Famous composers include Wolfgang Amadeus Mozart, Ludwig van Beethoven, Johann Sebastian Bach, "
                     "Pyotr Ilyich Tchaikovsky, Frederic Chopin, Antonin Dvorak, Claude Debussy, Sergei "
                     "Rachmaninoff, Igor Stravinsky, Gustav Mahler, Giuseppe Verdi, Giacomo Puccini, Richard Wagner "
                     "and Johannes Brahms. Each of them wrote music that is still played today around the world.",
        "unfenced code": "You can do it like this: const total = numbers.reduce((accumulator, currentValue) => "
                         "accumulator + currentValue, 0); console.log(total); Then "
                         "document.getElementById('result').textContent = total; and addEventListener('click', "
                         "handleClick) attaches the handler. Use JSON.stringify(obj) to serialise the object and "
                         "localStorage.setItem('key', value) to persist it between page loads.",
    }
    for name, text in bad.items():
        assert _gibberish(text, pieces), f"self-check: the gibberish rule missed {name!r}"
    for name, text in good.items():
        why = degenerate(text, "en", pieces)
        assert why is None, f"self-check: the detector flagged legit {name!r}: {why}"
    log(f"gibberish self-check passed ({len(bad)} gibberish and {len(good)} legit strings)")


# --- running ----------------------------------------------------------------------------------------------------


class Watchdog:
    """Cancels whatever run is active on a thread once `timeout_s` passed (runs from a timer thread, through the
    SDK, while the main thread is still waiting on create_and_poll or the stream)."""

    def __init__(self, client: Any, thread_id: str, timeout_s: float) -> None:
        self.client, self.thread_id, self.fired = client, thread_id, False
        self._timer = threading.Timer(timeout_s, self._fire)
        self._timer.daemon = True

    def _fire(self) -> None:
        self.fired = True
        try:
            for run in self.client.beta.threads.runs.list(thread_id=self.thread_id, limit=10).data:
                if run.status in ("queued", "in_progress", "requires_action"):
                    log(f"  run {run.id} passed the run timeout: cancelling it")
                    self.client.beta.threads.runs.cancel(thread_id=self.thread_id, run_id=run.id)
        except Exception as exc:  # noqa: BLE001 - a diagnostic path; the run outcome is recorded anyway
            log(f"  cancelling after the timeout failed: {exc!r}")

    def __enter__(self) -> Self:
        self._timer.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._timer.cancel()


def run_messages(client: Any, thread_id: str, run_id: str) -> tuple[str, list[str]]:
    """The text the run wrote (its messages oldest first) and those messages' statuses."""
    msgs = client.beta.threads.messages.list(thread_id=thread_id, run_id=run_id, order="asc", limit=100).data
    parts = []
    for m in msgs:
        for c in m.content:
            if c.type == "text":
                parts.append(c.text.value)
    return "\n\n".join(parts), [m.status for m in msgs]


def outcome(run: Any, text: str, statuses: list[str], fired: bool, lang: str,
            pieces: Callable[[str], int] | None) -> dict[str, Any]:
    return {
        "status": "timed out" if fired else run.status,
        "tokens": run.usage.completion_tokens if run.usage else None,
        "ended": run.status == "completed" and bool(statuses) and all(s == "completed" for s in statuses),
        "message_status": statuses,
        "degenerate": degenerate(text, lang, pieces),
        "chars": len(text),
        "text": text,
    }


def sampling_args(args: argparse.Namespace) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if args.temperature is not None:
        out["temperature"] = args.temperature
    if args.top_p is not None:
        out["top_p"] = args.top_p
    return out


def everyday(client: Any, args: argparse.Namespace, prompts: list[dict[str, Any]], out: Any) -> list[dict[str, Any]]:
    rows = []
    for rep in range(args.repeats):
        for k, p in enumerate(prompts):
            if args.quiet_wait > 0:
                wait_quiet(args.quiet_wait, threshold=args.busy, label=p["id"])
            assistant = client.beta.assistants.create(model="gpt-4o", instructions=HELPFUL)
            thread = client.beta.threads.create(messages=[{"role": "user", "content": p["prompt"]}])
            meter = OtherLoad().start()
            t0 = time.perf_counter()
            with Watchdog(client, thread.id, args.run_timeout) as dog:
                run = client.beta.threads.runs.create_and_poll(thread_id=thread.id, assistant_id=assistant.id,
                                                               **sampling_args(args))
            wall = time.perf_counter() - t0
            others = meter.stop()
            text, statuses = run_messages(client, thread.id, run.id)
            row = {"part": "prompts", "rep": rep, "id": p["id"], "kind": p["kind"], "prompt": p["prompt"],
                   **outcome(run, text, statuses, dog.fired, p.get("lang", "en"), args.pieces),
                   "wall_s": round(wall, 2), "others": round(others, 2)}
            tok = row["tokens"] or 0
            row["tok_s"] = round(tok / wall, 1) if wall > 0 else None
            rows.append(row)
            if out:
                out.write(json.dumps(row, ensure_ascii=False) + "\n")
                out.flush()
            flag = f"DEGENERATE ({row['degenerate']})" if row["degenerate"] else "ok"
            log(f"[{k + 1}/{len(prompts)}{f' rep {rep}' if args.repeats > 1 else ''}] {p['id']}: {row['status']}, "
                f"{tok} tok in {wall:.1f}s ({row['tok_s']} tok/s), "
                f"{'ended' if row['ended'] else 'NOT ended (' + ','.join(statuses) + ')'}, {flag}; "
                f"others {others:.2f} cores; {text[:70]!r}")
            client.beta.threads.delete(thread.id)
            client.beta.assistants.delete(assistant.id)
    return rows


def quickstart(client: Any, args: argparse.Namespace, i: int, out: Any) -> dict[str, Any]:
    from openai import AssistantEventHandler
    from typing_extensions import override

    class EventHandler(AssistantEventHandler):  # the quickstart's handler, collecting instead of printing
        def __init__(self) -> None:
            super().__init__()
            self.text: list[str] = []
            self.tool_calls: list[str] = []
            self.code: list[str] = []
            self.logs: list[str] = []

        @override
        def on_text_created(self, text: Any) -> None:
            self.text.append("\nassistant > ")

        @override
        def on_text_delta(self, delta: Any, snapshot: Any) -> None:
            self.text.append(delta.value or "")

        @override
        def on_tool_call_created(self, tool_call: Any) -> None:
            self.tool_calls.append(tool_call.type)

        @override
        def on_tool_call_delta(self, delta: Any, snapshot: Any) -> None:
            if delta.type == "code_interpreter" and delta.code_interpreter:
                if delta.code_interpreter.input:
                    self.code.append(delta.code_interpreter.input)
                for output in delta.code_interpreter.outputs or []:
                    if output.type == "logs":
                        self.logs.append(output.logs or "")

    t0 = time.perf_counter()
    assistant = client.beta.assistants.create(name="Math Tutor", instructions=TUTOR,
                                              tools=[{"type": "code_interpreter"}], model="gpt-4o")
    thread = client.beta.threads.create()
    client.beta.threads.messages.create(thread_id=thread.id, role="user", content=QUESTION)
    handler = EventHandler()
    with Watchdog(client, thread.id, args.run_timeout) as dog1, client.beta.threads.runs.stream(
        thread_id=thread.id, assistant_id=assistant.id, instructions=JANE, event_handler=handler,
        **sampling_args(args),
    ) as stream:
        stream.until_done()
    run1 = handler.get_final_run()
    t1 = time.perf_counter()
    with Watchdog(client, thread.id, args.run_timeout) as dog2:
        run2 = client.beta.threads.runs.create_and_poll(thread_id=thread.id, assistant_id=assistant.id,
                                                        instructions=JANE, **sampling_args(args))
    if run2.status == "completed":
        client.beta.threads.messages.list(thread_id=thread.id)
    t2 = time.perf_counter()
    text1, st1 = run_messages(client, thread.id, run1.id)
    text2, st2 = run_messages(client, thread.id, run2.id)
    halves = []
    for half, run, text, st, dog, wall in (("stream", run1, text1, st1, dog1, t1 - t0),
                                           ("poll", run2, text2, st2, dog2, t2 - t1)):
        row = {"part": "quickstart", "rep": i, "id": f"quickstart-{half}",
               **outcome(run, text, st, dog.fired, "en", args.pieces), "wall_s": round(wall, 2)}
        if half == "stream":
            row.update(tool_calls=handler.tool_calls, code="".join(handler.code), logs="".join(handler.logs),
                       streamed_text_chars=len("".join(handler.text)))
        halves.append(row)
        if out:
            out.write(json.dumps(row, ensure_ascii=False) + "\n")
            out.flush()
        log(f"quickstart {i + 1} {half}: {row['status']}, {row['tokens']} tok in {wall:.1f}s, "
            f"{'ended' if row['ended'] else 'NOT ended (' + ','.join(st) + ')'}, "
            f"{'DEGENERATE (' + row['degenerate'] + ')' if row['degenerate'] else 'ok'}"
            f"{', tool calls ' + ','.join(handler.tool_calls) if half == 'stream' and handler.tool_calls else ''}; "
            f"{text[:70]!r}")
    client.beta.threads.delete(thread.id)
    client.beta.assistants.delete(assistant.id)
    return {"flow_s": t2 - t0, "stream": halves[0], "poll": halves[1]}


def parse_setting(text: str) -> tuple[str, Any]:
    key, _, value = text.partition("=")
    try:
        return key, json.loads(value)
    except json.JSONDecodeError:
        return key, value


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--prompts", type=Path, default=DATA, help="the prompt file (default %(default)s)")
    ap.add_argument("--limit", type=int, default=None, help="only the first N prompts")
    ap.add_argument("--repeats", type=int, default=1, help="run every prompt this many times (default 1)")
    ap.add_argument("--quickstart-runs", type=int, default=3, help="times to run the quickstart flow (default 3)")
    ap.add_argument("--skip-prompts", action="store_true")
    ap.add_argument("--skip-quickstart", action="store_true")
    ap.add_argument("--max-output-tokens", default=None,
                    help="the engine's max_output_tokens setting: a number, or 'none' for no cap (until the "
                         "window is full); default: not set, i.e. the server's default")
    ap.add_argument("--setting", action="append", default=[], metavar="KEY=VALUE",
                    help="another Settings field for the engine (VALUE as JSON, else a string); repeatable")
    ap.add_argument("--temperature", type=float, default=None, help="set on every run (default: not sent)")
    ap.add_argument("--top-p", type=float, default=None, help="set on every run (default: not sent)")
    ap.add_argument("--run-timeout", type=float, default=600.0,
                    help="cancel a run after this many seconds and record it as 'timed out' (default %(default)s)")
    ap.add_argument("--out", type=Path, default=None, help="per-run JSONL, reply text included")
    ap.add_argument("--self-check", action="store_true", help="only check the detector on fixed strings")
    ap.add_argument("--rescore", type=Path, default=None, metavar="JSONL",
                    help="no runs: apply the detector again to a file --out wrote, and summarize it")
    add_model_options(ap, unit="prompt")
    ap.set_defaults(quiet_wait=0.0)
    args = ap.parse_args()
    warnings.filterwarnings("ignore", category=DeprecationWarning)  # the SDK marks the Assistants API deprecated

    self_check()
    if args.self_check:
        return 0
    if args.rescore:
        return rescore(args)

    import offline_assistants
    from offline_assistants.api import create_app
    from offline_assistants.config import Settings
    from offline_assistants.engine import Engine
    from offline_assistants.testing import in_process_client
    from offline_assistants.tools.code_interpreter import JupyterCodeRunner

    prompts = json.loads(args.prompts.read_text())["prompts"][: args.limit]
    settings: dict[str, Any] = dict(parse_setting(s) for s in args.setting)
    if args.max_output_tokens is not None:
        mot = args.max_output_tokens
        settings["max_output_tokens"] = None if mot.lower() == "none" else int(mot)

    t_start = time.perf_counter()
    log("machine:", json.dumps(machine()))
    log(f"package: {Path(offline_assistants.__file__).parent}")
    backend = open_bench_backend(ModelSetup.from_args(args))
    args.pieces = tokenizer_pieces(backend.path)
    try:
        self_check_gibberish(args.pieces)
    except AssertionError as exc:
        # The made-up-word rule is calibrated on SmolLM2's tokenizer; another vocabulary splits words otherwise.
        log(f"{exc}: the gibberish rule is off for this model's tokenizer")
        args.pieces = None
    data_dir = Path(tempfile.mkdtemp(prefix="oa-bench-replies-"))
    cfg = Settings(data_dir=data_dir, n_ctx=args.n_ctx, **settings)
    cfg.ensure_dirs()
    runner = JupyterCodeRunner(cfg.sandbox_dir, timeout_s=cfg.code_timeout_s, memory_mb=cfg.code_memory_mb,
                               max_output_chars=cfg.code_max_output_chars, idle_timeout_s=cfg.kernel_idle_timeout_s)
    engine = Engine(cfg, backend, code_runner=runner)
    client = in_process_client(create_app(engine), max_retries=0, timeout=args.run_timeout + 120)
    log(f"model {backend.path.name}, n_ctx {backend.n_ctx}, engine max_output_tokens={cfg.max_output_tokens}"
        f"{', settings ' + json.dumps(settings) if settings else ''}; requests send "
        f"{json.dumps(sampling_args(args)) if sampling_args(args) else 'no sampling parameters'}")
    out = args.out.open("w") if args.out else None

    rows: list[dict[str, Any]] = []
    qs: list[dict[str, Any]] = []
    try:
        if not args.skip_prompts:
            log(f"part 1: {len(prompts)} everyday prompts x {args.repeats}")
            rows = everyday(client, args, prompts, out)
        if not args.skip_quickstart:
            for i in range(args.quickstart_runs):
                log(f"part 2: quickstart flow {i + 1}/{args.quickstart_runs}")
                qs.append(quickstart(client, args, i, out))
    finally:
        if out:
            out.close()
        engine.close()
        backend.close()
        shutil.rmtree(data_dir, ignore_errors=True)

    print(summarize(rows, qs, cfg.max_output_tokens, time.perf_counter() - t_start).line())
    return 0


@dataclass(frozen=True)
class Prompts:
    """Part 1 over every prompt run."""

    prompts: int
    ended: float  # share of replies that ended by themselves
    degenerate: float
    timed_out: int
    median_tokens: float
    p95_tokens: float
    max_tokens: int
    median_wall_s: float
    total_wall_s: float
    degenerate_ids: tuple[str, ...]


@dataclass(frozen=True)
class Half:
    """One half of a quickstart flow (the streamed run, or the polled one)."""

    tokens: int | None
    ended: bool
    degenerate: bool


@dataclass(frozen=True)
class Quickstart:
    """Part 2: medians over the flows, and each flow's halves."""

    runs: int
    flow_s: float
    stream_s: float
    poll_s: float
    halves: tuple[tuple[Half, Half], ...]  # (stream, poll) of each flow


@dataclass(frozen=True)
class RepliesResult:
    max_output_tokens: str  # the engine's setting, as given
    prompts: Prompts | None
    quickstart: Quickstart | None
    total_s: float

    def line(self) -> str:
        fields = [f"max_output_tokens={self.max_output_tokens}"]
        if p := self.prompts:
            fields += [f"prompts={p.prompts}", f"ended={p.ended:.2f}", f"degenerate={p.degenerate:.2f}",
                       f"timed_out={p.timed_out}", f"median_tokens={p.median_tokens:.0f}",
                       f"p95_tokens={p.p95_tokens:.0f}", f"max_tokens={p.max_tokens}",
                       f"median_wall_s={p.median_wall_s:.1f}", f"degenerate_ids={','.join(p.degenerate_ids) or '-'}"]
        if q := self.quickstart:
            def pair(f: Callable[[Half], object]) -> str:
                return ",".join(f"{f(stream)}/{f(poll)}" for stream, poll in q.halves)

            fields += [f"quickstart_runs={q.runs}", f"quickstart_s={q.flow_s:.1f}",
                       f"quickstart_stream_s={q.stream_s:.1f}", f"quickstart_poll_s={q.poll_s:.1f}",
                       f"quickstart_tokens={pair(lambda h: h.tokens)}",
                       f"quickstart_ended={pair(lambda h: int(h.ended))}",
                       f"quickstart_degenerate={pair(lambda h: int(h.degenerate))}"]
        fields.append(f"total_s={self.total_s:.0f}")
        return "RESULT replies " + " ".join(fields)


def summarize(rows: list[dict[str, Any]], qs: list[dict[str, Any]], max_output_tokens: Any,
              total: float) -> RepliesResult:
    """The result, and its summary on stderr."""
    prompts = None
    if rows:
        n = len(rows)
        tokens = [r["tokens"] or 0 for r in rows]
        bad = [r for r in rows if r["degenerate"]]
        ended = sum(r["ended"] for r in rows)
        timed_out = sum(r["status"] == "timed out" for r in rows)
        prompts = Prompts(prompts=n, ended=ended / n, degenerate=len(bad) / n, timed_out=timed_out,
                          median_tokens=median(tokens), p95_tokens=percentile(tokens, 0.95), max_tokens=max(tokens),
                          median_wall_s=median([r["wall_s"] for r in rows]),
                          total_wall_s=sum(r["wall_s"] for r in rows),
                          degenerate_ids=tuple(sorted({r["id"] for r in bad})))
        log(f"part 1: {ended}/{n} ended by themselves, {len(bad)}/{n} degenerate, {timed_out} timed out; "
            f"completion tokens median {prompts.median_tokens:.0f} p95 {prompts.p95_tokens:.0f} max "
            f"{prompts.max_tokens}; wall median {prompts.median_wall_s:.1f}s, total {prompts.total_wall_s:.0f}s")
        for r in bad:
            log(f"  degenerate {r['id']}: {r['degenerate']}")
    quick = None
    if qs:
        def half(row: dict[str, Any]) -> Half:
            return Half(tokens=row["tokens"], ended=bool(row["ended"]), degenerate=bool(row["degenerate"]))

        quick = Quickstart(runs=len(qs), flow_s=median([q["flow_s"] for q in qs]),
                           stream_s=median([q["stream"]["wall_s"] for q in qs]),
                           poll_s=median([q["poll"]["wall_s"] for q in qs]),
                           halves=tuple((half(q["stream"]), half(q["poll"])) for q in qs))
    log(f"total wall time {total:.0f}s")
    return RepliesResult(str(max_output_tokens), prompts, quick, total)


def rescore(args: argparse.Namespace) -> int:
    """Run the detector again over a JSONL written by --out (no model run: only its tokenizer is loaded)."""
    from offline_assistants.llm.catalog import resolve

    pieces = tokenizer_pieces(resolve(args.model).path)
    self_check_gibberish(pieces)
    langs = {p["id"]: p.get("lang", "en") for p in json.loads(args.prompts.read_text())["prompts"]}
    rows: list[dict[str, Any]] = []
    halves: list[dict[str, Any]] = []
    for line in args.rescore.read_text().splitlines():
        row = json.loads(line)
        before = row["degenerate"]
        row["degenerate"] = degenerate(row["text"], langs.get(row["id"], "en"), pieces)
        if before != row["degenerate"]:
            log(f"{row['id']}: was {before!r}, now {row['degenerate']!r}")
        (rows if row["part"] == "prompts" else halves).append(row)
    qs = [{"flow_s": a["wall_s"] + b["wall_s"], "stream": a, "poll": b} for a, b in zip(halves[::2], halves[1::2])]
    print(summarize(rows, qs, args.max_output_tokens, float("nan")).line())
    return 0


if __name__ == "__main__":
    sys.exit(main())
