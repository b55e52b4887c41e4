"""One streamed turn through the official SDK on each face, timed as the client sees it: the Responses face's
`responses.create(stream=True)` and the Assistants face's `messages.create` + `runs.create(stream=True)`; and the
probe that tells, from the server's side, how much of the wait was the model's (bench/responses.py uses them)."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from offline_assistants.bench.measure import result_value
from offline_assistants.llm.backend import Finish, ModelBackend, Sampling, Stream


@dataclass(frozen=True)
class Streamed:
    """One streamed response or run, as the client saw it (seconds from just before the POST)."""

    id: str  # the response's or the run's
    first_s: float  # the first text delta
    gen_s: float  # first text delta -> last
    total_s: float  # the terminal event
    text: str
    status: str
    input_tokens: int
    cached_tokens: int | None  # the Assistants face does not report it
    output_tokens: int
    model_ms: float = 0.0  # of first_s, inside the model (Probe): KV switch, prompt evaluation, the first token
    evaluated: int | None = None  # prompt tokens the model evaluated (Probe)

    @property
    def rest_ms(self) -> float:
        """What of first_s is not the model's: HTTP, the request's rows, the window and prompt, events."""
        return self.first_s * 1e3 - self.model_ms

    @property
    def tok_s(self) -> float | None:
        return (self.output_tokens - 1) / self.gen_s if self.output_tokens > 1 and self.gen_s > 0 else None

    def describe(self) -> str:
        cached = "" if self.cached_tokens is None else f" ({self.cached_tokens} cached)"
        return (f"first token {self.first_s * 1e3:.0f} ms (model {self.model_ms:.0f} ms, evaluated {self.evaluated} "
                f"tokens; rest {self.rest_ms:.0f} ms), total {self.total_s:.2f} s, {result_value(self.tok_s)} tok/s; "
                f"input {self.input_tokens} tokens{cached}, output {self.output_tokens}, {self.status}")


class Probe:
    """Diagnostics as ttft.py takes them, nothing changed: the backend instance's generate, wrapped, tells how long
    the model took from the call to its first piece and how many prompt tokens it evaluated (Finish)."""

    def __init__(self, backend: ModelBackend) -> None:
        self.backend = backend
        self.original = backend.generate
        self.model_ms = 0.0
        self.evaluated: int | None = None

        def generate(prompt: list[int], sampling: Sampling, **kw: Any) -> Stream:
            t = time.perf_counter()
            first = True
            for item in self.original(prompt, sampling, **kw):
                if isinstance(item, Finish):
                    self.evaluated = item.prompt_tokens
                elif first:
                    self.model_ms, first = (time.perf_counter() - t) * 1e3, False
                yield item

        backend.generate = generate  # type: ignore[method-assign]

    def clear(self) -> None:
        self.model_ms, self.evaluated = 0.0, None

    def close(self) -> None:
        self.backend.generate = self.original  # type: ignore[method-assign]


def stream_response(client: Any, **params: Any) -> Streamed:
    """responses.create(stream=True, **params), timed."""
    t0 = time.perf_counter()
    first = last = end = 0.0
    parts: list[str] = []
    final = None
    for event in client.responses.create(stream=True, **params):
        if event.type == "response.output_text.delta":
            last = time.perf_counter()
            first = first or last
            parts.append(event.delta)
        elif event.type in ("response.completed", "response.incomplete", "response.failed"):
            end = time.perf_counter()
            final = event.response
    if final is None or final.usage is None or final.status == "failed":
        raise RuntimeError(f"the response did not finish: {final and final.error}")
    if not first:
        raise RuntimeError(f"response {final.id}: no text delta ({final.status})")
    u = final.usage
    return Streamed(final.id, first - t0, last - first, end - t0, "".join(parts), final.status, u.input_tokens,
                    u.input_tokens_details.cached_tokens, u.output_tokens)


def stream_run(client: Any, thread_id: str, assistant_id: str, max_tokens: int, ask: str) -> Streamed:
    """The Assistants face's turn: messages.create(ask), then runs.create(stream=True) at temperature 0, timed from
    before the first."""
    t0 = time.perf_counter()
    client.beta.threads.messages.create(thread_id, role="user", content=ask)
    first = last = end = 0.0
    parts: list[str] = []
    run = None
    for event in client.beta.threads.runs.create(thread_id=thread_id, assistant_id=assistant_id, stream=True,
                                                 max_completion_tokens=max_tokens, temperature=0):
        if event.event == "thread.message.delta":
            last = time.perf_counter()
            first = first or last
            parts += [c.text.value or "" for c in event.data.delta.content or [] if c.type == "text" and c.text]
        elif event.event in ("thread.run.completed", "thread.run.incomplete", "thread.run.failed"):
            end = time.perf_counter()
            run = event.data
    if run is None or run.usage is None or run.status == "failed":
        raise RuntimeError(f"the run did not finish: {run and run.last_error}")
    if not first:
        raise RuntimeError(f"run {run.id}: no text delta ({run.status})")
    return Streamed(run.id, first - t0, last - first, end - t0, "".join(parts), run.status, run.usage.prompt_tokens,
                    None, run.usage.completion_tokens)
