"""The load test's clients: each one a user of the API with a thread of its own, doing what apps do (add
messages, read them back, start runs and poll them, stream runs and walk away mid-stream, upload and list
files), with a little think time between requests and a timeout on every one.

Every request's latency is kept with when it ran; streams note when the model's tokens were arriving, so the
latencies measured *while a run generates* can be picked out. An error is any reply but a 2xx, unless it is
one the API documents for what was asked (DOCUMENTED); a timeout is an error too.
"""

from __future__ import annotations

import asyncio
import random
import ssl
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import httpx2

HEADERS = {"Authorization": "Bearer sk-load", "OpenAI-Beta": "assistants=v2"}
# One TLS context for every client (none is used on http://): made per client, loading the CA bundle costs tens of
# milliseconds of the one event loop all the clients share, a hundred times over.
TLS = ssl.create_default_context()
REQUEST_TIMEOUT_S = 15.0  # far above any honest latency: past it, the server is stuck, not slow
# (status, what the message says): the replies the API documents for a request made at the wrong moment.
DOCUMENTED = {
    "run on a thread with an active run": (400, "already has an active run"),
    "message on a thread with an active run": (400, "while a run"),
    "run queue full": (429, "rate_limit_exceeded"),
}


@dataclass
class Sample:
    name: str
    start: float
    seconds: float


@dataclass
class Traffic:
    """What all the clients saw, together."""

    samples: list[Sample] = field(default_factory=list)
    readings: list[tuple[float, bool]] = field(default_factory=list)  # (when, the model was at work), from /_probe
    most_listening: int = 0  # the most event subscriptions the server held at once
    generated: int = 0  # tokens the long runs streamed (message deltas), for the model's own pace under load
    lags: list[float] = field(default_factory=list)  # how late the clients' own event loop woke, every 50 ms
    errors: list[str] = field(default_factory=list)
    documented: Counter[str] = field(default_factory=Counter)
    posted: dict[str, list[str]] = field(default_factory=dict)  # thread id -> user texts acknowledged, in order
    files: dict[str, bytes] = field(default_factory=dict)
    runs: dict[str, str] = field(default_factory=dict)  # run id -> its thread, every run acknowledged
    streams_left: int = 0  # streams a client walked away from mid-run

    def during_generation(self) -> list[Sample]:
        """The samples whose whole request fell between two readings of /_probe that both found the model at
        work (readings come every 100 ms)."""
        stretches: list[tuple[float, float]] = []
        begun: float | None = None
        for (when, busy), (after, busy_after) in zip(self.readings, self.readings[1:]):
            if busy and busy_after:
                begun = when if begun is None else begun
                if stretches and stretches[-1][0] == begun:
                    stretches[-1] = (begun, after)
                else:
                    stretches.append((begun, after))
            else:
                begun = None
        return [s for s in self.samples if any(a <= s.start and s.start + s.seconds <= b for a, b in stretches)]


def run_id(line: str) -> str:
    """The id in a `data: {"id": "run_...", ...}` line of a run's stream."""
    assert line.startswith('data: {"id":"run_'), line[:80]
    return line.split('"id":"', 1)[1].split('"', 1)[0]


class Client:
    def __init__(self, n: int, url: str, assistant_id: str, traffic: Traffic, rng: random.Random,
                 deadline: float, think_s: float) -> None:
        self.n, self.url, self.assistant_id, self.traffic, self.rng = n, url, assistant_id, traffic, rng
        self.deadline, self.think_s = deadline, think_s
        self.thread_id = ""
        self.messages: list[str] = []  # ids of this client's messages, to read back
        self.sent = 0

    async def request(self, http: httpx2.AsyncClient, name: str, method: str, path: str,
                      documented: tuple[str, ...] = (), **kwargs: Any) -> httpx2.Response | None:
        """One timed request; None when it got a documented refusal, or failed (then recorded as an error)."""
        start = time.monotonic()
        try:
            response = await http.request(method, path, **kwargs)
        except httpx2.TimeoutException:
            self.traffic.errors.append(f"client {self.n}: {name} timed out after {REQUEST_TIMEOUT_S:.0f}s")
            return None
        except httpx2.TransportError as exc:
            self.traffic.errors.append(f"client {self.n}: {name}: {exc!r}")
            return None
        self.traffic.samples.append(Sample(name, start, time.monotonic() - start))
        if response.status_code // 100 == 2:
            return response
        for what in documented:
            status, words = DOCUMENTED[what]
            if response.status_code == status and words in response.text:
                self.traffic.documented[what] += 1
                return None
        self.traffic.errors.append(f"client {self.n}: {name}: {response.status_code} {response.text[:200]}")
        return None

    async def main(self) -> None:
        async with httpx2.AsyncClient(base_url=self.url, headers=HEADERS, timeout=REQUEST_TIMEOUT_S,
                                      verify=TLS) as http:
            text = f"client {self.n} says hello"
            made = await self.request(http, "POST threads", "POST", "/v1/threads", json={
                "metadata": {"client": str(self.n)}, "messages": [{"role": "user", "content": text}]})
            if made is None:
                return
            self.thread_id = made.json()["id"]
            self.traffic.posted[self.thread_id] = [text]
            actions = [self.add_message, self.list_messages, self.get_message, self.get_thread, self.list_files,
                       self.upload, self.run_and_poll, self.stream_and_leave, self.chat, self.embed]
            weights = [30, 20, 15, 10, 5, 5, 2, 2, 1, 2]
            while time.monotonic() < self.deadline:
                await self.rng.choices(actions, weights)[0](http)
                await asyncio.sleep(self.rng.expovariate(1 / self.think_s))

    async def add_message(self, http: httpx2.AsyncClient) -> None:
        self.sent += 1
        text = f"client {self.n} message {self.sent} " + "x" * self.rng.randint(0, 400)
        made = await self.request(http, "POST messages", "POST", f"/v1/threads/{self.thread_id}/messages",
                                  ("message on a thread with an active run",), json={"role": "user", "content": text})
        if made is not None:
            self.traffic.posted[self.thread_id].append(text)
            self.messages.append(made.json()["id"])

    async def list_messages(self, http: httpx2.AsyncClient) -> None:
        await self.request(http, "GET messages", "GET", f"/v1/threads/{self.thread_id}/messages",
                           params={"limit": 20})

    async def get_message(self, http: httpx2.AsyncClient) -> None:
        if self.messages:
            message_id = self.rng.choice(self.messages)
            await self.request(http, "GET message", "GET", f"/v1/threads/{self.thread_id}/messages/{message_id}")

    async def get_thread(self, http: httpx2.AsyncClient) -> None:
        await self.request(http, "GET thread", "GET", f"/v1/threads/{self.thread_id}")

    async def list_files(self, http: httpx2.AsyncClient) -> None:
        await self.request(http, "GET files", "GET", "/v1/files", params={"limit": 20})

    async def upload(self, http: httpx2.AsyncClient) -> None:
        data = self.rng.randbytes(self.rng.randint(1, 32 * 1024))
        made = await self.request(http, "POST files", "POST", "/v1/files", data={"purpose": "assistants"},
                                  files={"file": (f"c{self.n}.bin", data)})
        if made is not None:
            self.traffic.files[made.json()["id"]] = data

    async def chat(self, http: httpx2.AsyncClient) -> None:
        """A streamed chat completion (the same engine and model, nothing stored), read to its first chunk: the
        reply is queued behind the runs, so a client that waited for all of it would time out, as it would with a
        run; the first chunk says the server took it."""
        start = time.monotonic()
        body = {"model": "gpt-4o", "max_completion_tokens": 8, "stream": True,
                "messages": [{"role": "user", "content": f"client {self.n} asks"}]}
        try:
            async with asyncio.timeout(REQUEST_TIMEOUT_S), http.stream("POST", "/v1/chat/completions",
                                                                       json=body) as got:
                if got.status_code != 200:
                    text = (await got.aread()).decode(errors="replace")
                    status, words = DOCUMENTED["run queue full"]
                    if got.status_code == status and words in text:
                        self.traffic.documented["run queue full"] += 1
                    else:
                        self.traffic.errors.append(f"client {self.n}: chat: {got.status_code} {text[:200]}")
                    return
                async for line in got.aiter_lines():
                    if line.startswith("data: {"):
                        break
        except TimeoutError:
            self.traffic.errors.append(f"client {self.n}: chat: no first chunk in {REQUEST_TIMEOUT_S:.0f}s")
            return
        except httpx2.TransportError as exc:
            self.traffic.errors.append(f"client {self.n}: chat: {exc!r}")
            return
        self.traffic.samples.append(Sample("POST chat", start, time.monotonic() - start))

    async def embed(self, http: httpx2.AsyncClient) -> None:
        await self.request(http, "POST embeddings", "POST", "/v1/embeddings", json={
            "model": "text-embedding-3-small", "input": [f"client {self.n}", "says hello"]})

    def _run_body(self, stream: bool) -> dict[str, Any]:
        return {"assistant_id": self.assistant_id, "max_completion_tokens": 16, "stream": stream}

    async def run_and_poll(self, http: httpx2.AsyncClient) -> None:
        made = await self.request(http, "POST runs", "POST", f"/v1/threads/{self.thread_id}/runs",
                                  ("run on a thread with an active run", "run queue full"), json=self._run_body(False))
        if made is None:
            return
        run_id = made.json()["id"]
        self.traffic.runs[run_id] = self.thread_id
        while time.monotonic() < self.deadline:
            await asyncio.sleep(0.3)
            polled = await self.request(http, "GET run", "GET", f"/v1/threads/{self.thread_id}/runs/{run_id}")
            if polled is None or polled.json()["status"] not in ("queued", "in_progress"):
                return

    async def stream_and_leave(self, http: httpx2.AsyncClient) -> None:
        """Stream a run and walk away after a random number of lines or a random time, whichever comes first
        (a run queued behind others says nothing for a while): the run goes on without its listener."""
        wanted, patience = self.rng.randint(1, 30), self.rng.uniform(0.2, 5.0)
        lines = 0
        try:
            async with asyncio.timeout(patience), http.stream(
                    "POST", f"/v1/threads/{self.thread_id}/runs", json=self._run_body(True)) as got:
                if got.status_code != 200:
                    body = (await got.aread()).decode(errors="replace")
                    if not any(got.status_code == DOCUMENTED[w][0] and DOCUMENTED[w][1] in body
                               for w in ("run on a thread with an active run", "run queue full")):
                        self.traffic.errors.append(f"client {self.n}: stream: {got.status_code} {body[:200]}")
                    else:
                        self.traffic.documented["stream refused: run active or queue full"] += 1
                    return
                async for line in got.aiter_lines():
                    lines += 1
                    if lines == 2:  # thread.run.created's data: the run, so it can be cancelled at the end
                        self.traffic.runs[run_id(line)] = self.thread_id
                    if lines >= max(wanted, 2):
                        break
        except TimeoutError:
            pass
        except httpx2.TransportError as exc:
            self.traffic.errors.append(f"client {self.n}: stream: {exc!r}")
            return
        if lines:
            self.traffic.streams_left += 1


async def generate(url: str, assistant_id: str, traffic: Traffic, deadline: float) -> None:
    """Keep the real model at work: long streamed runs, one after another, on a thread of their own. A run may
    wait silently in a full queue for a long time, so its stream has no read timeout: the load's deadline ends
    it."""
    async with httpx2.AsyncClient(base_url=url, headers=HEADERS, verify=TLS,
                                 timeout=httpx2.Timeout(REQUEST_TIMEOUT_S, read=None)) as http:
        made = await http.post("/v1/threads", json={"messages": [
            {"role": "user", "content": "Tell me a long story about a lighthouse keeper."}]})
        thread_id = made.json()["id"]
        while time.monotonic() < deadline:
            try:
                async with asyncio.timeout(max(0.0, deadline - time.monotonic())):
                    await _generate_once(http, thread_id, assistant_id, traffic)
            except TimeoutError:
                return  # the load is over: its run goes on, and is cancelled with the others


async def _generate_once(http: httpx2.AsyncClient, thread_id: str, assistant_id: str, traffic: Traffic) -> None:
    body = {"assistant_id": assistant_id, "stream": True, "max_completion_tokens": 200,
            "truncation_strategy": {"type": "last_messages", "last_messages": 1}}
    async with http.stream("POST", f"/v1/threads/{thread_id}/runs", json=body) as got:
        if got.status_code != 200:
            text = (await got.aread()).decode(errors="replace")
            if not (got.status_code == 429 and "rate_limit_exceeded" in text):
                traffic.errors.append(f"generator: {got.status_code} {text[:200]}")
            await asyncio.sleep(0.5)
            return
        lines = 0
        async for line in got.aiter_lines():
            lines += 1
            if lines == 2:
                traffic.runs[run_id(line)] = thread_id
            traffic.generated += line.startswith("event: thread.message.delta")


async def watch(url: str, traffic: Traffic, deadline: float) -> None:
    """Read /_probe every 100 ms: whether the model is at work, and how many streams the server holds."""
    async with httpx2.AsyncClient(base_url=url, headers=HEADERS, timeout=REQUEST_TIMEOUT_S, verify=TLS) as http:
        while time.monotonic() < deadline:
            probe = (await http.get("/_probe")).json()
            traffic.readings.append((time.monotonic(), bool(probe["busy"])))
            traffic.most_listening = max(traffic.most_listening, int(probe["listening"]))
            await asyncio.sleep(0.1)


async def lag(traffic: Traffic, deadline: float) -> None:
    """How late the clients' event loop wakes from a 50 ms sleep: when it is late, the clients (not the server)
    are what makes latencies long."""
    while time.monotonic() < deadline:
        start = time.monotonic()
        await asyncio.sleep(0.05)
        traffic.lags.append(time.monotonic() - start - 0.05)
