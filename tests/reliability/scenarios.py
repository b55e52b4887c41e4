"""Where a kill lands: each scenario brings the server to the middle of something (`begin` returns there), the
soak kills it a random moment later, and after the restart `after` says what is wrong with how that something
ended, then shows the thread takes a new run that completes.

- Stream: a streamed run, killed after a random number of its events.
- ToolCall: a run in `requires_action` (it must still wait there, and take the outputs), or a run going on from
  `submit_tool_outputs`, killed mid-stream.
- Code: a run whose code_interpreter call is executing (`time.sleep` in the thread's real kernel).
- FileUpload: a Files API upload mid-body; an Uploads API part mid-body; an Uploads API completion.
- Indexing: a vector store file being extracted, chunked and embedded.
- ResponseStream: a streamed response in a conversation (the Responses face).
"""

from __future__ import annotations

import hashlib
import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx2
from crash_checks import chunk_count
from ledger import Ledger, client

ENDED = ("completed", "failed", "cancelled", "expired", "incomplete")
FUNCTION = {"type": "function", "function": {"name": "lookup", "description": "Look a word up.",
                                             "parameters": {"type": "object", "properties": {"q": {"type": "string"}},
                                                            "required": ["q"]}}}
CODE = "import time\nfor _ in range(40):\n    time.sleep(0.1)\nprint('slept')"


@dataclass
class Soak:
    """What the scenarios share: the server's URL, the ledger, the random source and the two assistants."""

    url: str
    database: Path
    ledger: Ledger
    rng: random.Random
    plain: str = ""  # an assistant with no tools
    tooled: str = ""  # one with a function, the code interpreter and file search

    def http(self, timeout: float = 30.0) -> httpx2.Client:
        return client(self.url, timeout)


def ok(response: httpx2.Response) -> Any:
    if response.status_code // 100 != 2:
        raise AssertionError(f"{response.request.method} {response.request.url.path}: {response.status_code} "
                             f"{response.text[:300]}")
    return response.json()


def script(http: httpx2.Client, thread_id: str, *steps: dict[str, Any]) -> None:
    ok(http.post("/_script/steps", json={"steps": list(steps), "thread_id": thread_id}))


def new_thread(soak: Soak, http: httpx2.Client, text: str) -> str:
    metadata = {"scenario": text[:40]}
    thread_id: str = ok(http.post("/v1/threads", json={"metadata": metadata,
                                                       "messages": [{"role": "user", "content": text}]}))["id"]
    soak.ledger.thread(thread_id, metadata, [text])
    return thread_id


def wait_run(http: httpx2.Client, thread_id: str, run_id: str, statuses: tuple[str, ...],
             timeout: float = 20.0) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        run: dict[str, Any] = ok(http.get(f"/v1/threads/{thread_id}/runs/{run_id}"))
        if run["status"] in statuses:
            return run
        if time.monotonic() > deadline:
            raise AssertionError(f"run {run_id} is {run['status']}, not {statuses}, after {timeout:.0f}s")
        time.sleep(0.03)


def new_run_completes(soak: Soak, http: httpx2.Client, thread_id: str, assistant_id: str) -> list[str]:
    """The thread accepts a new run, and it completes with the reply scripted for it."""
    text = f"after restart {soak.rng.randrange(10**6)}"
    script(http, thread_id, {"kind": "reply", "text": text})
    made = http.post(f"/v1/threads/{thread_id}/runs", json={"assistant_id": assistant_id})
    if made.status_code != 200:
        return [f"thread {thread_id} refuses a new run: {made.status_code} {made.text[:200]}"]
    run = wait_run(http, thread_id, made.json()["id"], ENDED)
    if run["status"] != "completed":
        return [f"thread {thread_id}: the new run ended {run['status']} ({run['last_error']})"]
    newest = ok(http.get(f"/v1/threads/{thread_id}/messages", params={"limit": 1}))["data"][0]
    if newest["content"][0]["text"]["value"] != text:
        return [f"thread {thread_id}: the new run wrote {newest['content']}, not {text!r}"]
    return []


def killed_run(http: httpx2.Client, thread_id: str, run_id: str) -> list[str]:
    """A run the kill caught executing: failed with the reason, its message (if any) kept as incomplete."""
    run = ok(http.get(f"/v1/threads/{thread_id}/runs/{run_id}"))
    if run["status"] == "completed":
        return []  # the kill came after its end: nothing was in flight
    problems = []
    if run["status"] != "failed" or (run["last_error"] or {}).get("code") != "server_error":
        problems.append(f"run {run_id}: {run['status']} {run['last_error']}, not failed with server_error")
    for message in ok(http.get(f"/v1/threads/{thread_id}/messages", params={"run_id": run_id}))["data"]:
        if message["status"] != "incomplete" or message["incomplete_details"] != {"reason": "run_failed"}:
            problems.append(f"message {message['id']} of the killed run: {message['status']} "
                            f"{message['incomplete_details']}")
    for step in ok(http.get(f"/v1/threads/{thread_id}/runs/{run_id}/steps"))["data"]:
        if step["status"] not in ("completed", "failed"):
            problems.append(f"step {step['id']} of the killed run: {step['status']}")
    return problems


class Streamer(threading.Thread):
    """Reads a run's event stream until the server dies; `reached` is set after `events` events."""

    def __init__(self, url: str, path: str, body: dict[str, Any], events: int) -> None:
        super().__init__(daemon=True)
        self.url, self.path, self.body, self.events = url, path, body, events
        self.reached = threading.Event()
        self.run_id: str | None = None
        self.response_id: str | None = None
        self.seen = 0
        self.error: str | None = None

    def run(self) -> None:
        try:
            with client(self.url) as http, http.stream("POST", self.path, json=self.body) as response:
                if response.status_code != 200:
                    self.error = f"{response.status_code} {response.read()[:200]!r}"
                    return
                for line in response.iter_lines():
                    if line.startswith("data: {") and self.run_id is None and '"thread.run"' in line:
                        self.run_id = line.split('"id":"', 1)[1].split('"', 1)[0]
                    if line.startswith("data: {") and self.response_id is None and '"resp_' in line:
                        self.response_id = "resp_" + line.split('"resp_', 1)[1].split('"', 1)[0]
                    if line.startswith("event: "):
                        self.seen += 1
                        if self.seen >= self.events:
                            self.reached.set()
        except httpx2.TransportError:
            pass  # the server was killed mid-stream: what the scenario is for
        finally:
            self.reached.set()

    def wait(self, timeout: float = 20.0) -> None:
        if not self.reached.wait(timeout) or self.error:
            raise AssertionError(f"stream {self.path}: {self.error or 'no events'}")


@dataclass
class Scenario:
    name: str
    jitter_s: float  # the kill comes up to this long after begin() returns
    landed: str = ""  # where the kill landed, as the restart showed it
    threads: list[str] = field(default_factory=list)

    def begin(self, soak: Soak, http: httpx2.Client) -> None:
        raise NotImplementedError

    def at_kill(self, http: httpx2.Client) -> None:
        """Just before the kill: note what is under way, when the restart cannot tell."""

    def after(self, soak: Soak, http: httpx2.Client) -> list[str]:
        raise NotImplementedError


class Stream(Scenario):
    def __init__(self) -> None:
        super().__init__("mid-stream", jitter_s=0.3)

    def begin(self, soak: Soak, http: httpx2.Client) -> None:
        self.thread_id = new_thread(soak, http, "tell me a long story")
        self.threads = [self.thread_id]
        script(http, self.thread_id, {"kind": "reply", "text": " ".join(f"w{i}" for i in range(120)),
                                      "delay_s": 0.02})
        self.stream = Streamer(soak.url, f"/v1/threads/{self.thread_id}/runs",
                               {"assistant_id": soak.plain, "stream": True}, soak.rng.randint(3, 60))
        self.stream.start()
        self.stream.wait()

    def after(self, soak: Soak, http: httpx2.Client) -> list[str]:
        self.stream.join(10)
        if self.stream.run_id is None:
            return ["the stream never named its run"]
        run = ok(http.get(f"/v1/threads/{self.thread_id}/runs/{self.stream.run_id}"))
        self.landed = f"run {run['status']} after {self.stream.seen} events"
        return [*killed_run(http, self.thread_id, self.stream.run_id),
                *new_run_completes(soak, http, self.thread_id, soak.plain)]


class ToolCall(Scenario):
    def __init__(self) -> None:
        super().__init__("mid tool call", jitter_s=0.3)

    def begin(self, soak: Soak, http: httpx2.Client) -> None:
        self.thread_id = new_thread(soak, http, "look up soak")
        self.threads = [self.thread_id]
        self.waiting = soak.rng.random() < 0.5  # killed in requires_action, or mid-reply after the outputs
        script(http, self.thread_id, {"kind": "call", "name": "lookup", "arguments": {"q": "soak"}})
        run = ok(http.post(f"/v1/threads/{self.thread_id}/runs",
                           json={"assistant_id": soak.tooled, "tools": [FUNCTION]}))
        self.run_id = run["id"]
        run = wait_run(http, self.thread_id, self.run_id, ("requires_action",))
        self.call_id = run["required_action"]["submit_tool_outputs"]["tool_calls"][0]["id"]
        if self.waiting:
            return
        script(http, self.thread_id, {"kind": "reply", "text": " ".join(f"r{i}" for i in range(100)),
                                      "delay_s": 0.02})
        self.stream = Streamer(soak.url, f"/v1/threads/{self.thread_id}/runs/{self.run_id}/submit_tool_outputs",
                               {"tool_outputs": [{"tool_call_id": self.call_id, "output": "a test"}],
                                "stream": True}, soak.rng.randint(2, 40))
        self.stream.start()
        self.stream.wait()

    def after(self, soak: Soak, http: httpx2.Client) -> list[str]:
        if not self.waiting:
            self.stream.join(10)
            run = ok(http.get(f"/v1/threads/{self.thread_id}/runs/{self.run_id}"))
            self.landed = f"run {run['status']} {self.stream.seen} events after submit_tool_outputs"
            return [*killed_run(http, self.thread_id, self.run_id),
                    *new_run_completes(soak, http, self.thread_id, soak.tooled)]
        run = ok(http.get(f"/v1/threads/{self.thread_id}/runs/{self.run_id}"))
        self.landed = f"run {run['status']} (killed while it waited for tool outputs)"
        if run["status"] != "requires_action":
            return [f"run {self.run_id} waited for tool outputs; after the restart it is {run['status']}"]
        script(http, self.thread_id, {"kind": "reply", "text": "looked up"})
        ok(http.post(f"/v1/threads/{self.thread_id}/runs/{self.run_id}/submit_tool_outputs",
                     json={"tool_outputs": [{"tool_call_id": self.call_id, "output": "a test"}]}))
        run = wait_run(http, self.thread_id, self.run_id, ENDED)
        problems = [] if run["status"] == "completed" else [f"run {self.run_id} ended {run['status']} after "
                                                            f"its outputs, across the restart"]
        return [*problems, *new_run_completes(soak, http, self.thread_id, soak.tooled)]


class Code(Scenario):
    def __init__(self) -> None:
        super().__init__("mid code execution", jitter_s=1.5)

    def begin(self, soak: Soak, http: httpx2.Client) -> None:
        self.thread_id = new_thread(soak, http, "run some code")
        self.threads = [self.thread_id]
        script(http, self.thread_id, {"kind": "code", "code": CODE}, {"kind": "reply", "text": "ran"})
        self.run_id = ok(http.post(f"/v1/threads/{self.thread_id}/runs", json={"assistant_id": soak.tooled}))["id"]
        deadline = time.monotonic() + 20
        while not any(s["type"] == "tool_calls" for s in ok(http.get(
                f"/v1/threads/{self.thread_id}/runs/{self.run_id}/steps"))["data"]):
            assert time.monotonic() < deadline, "the code step never started"
            time.sleep(0.03)

    def after(self, soak: Soak, http: httpx2.Client) -> list[str]:
        run = ok(http.get(f"/v1/threads/{self.thread_id}/runs/{self.run_id}"))
        self.landed = f"run {run['status']} mid code"
        if run["status"] == "completed":
            return [f"run {self.run_id}: its code sleeps 4 s, yet it completed before the kill"]
        return [*killed_run(http, self.thread_id, self.run_id),
                *new_run_completes(soak, http, self.thread_id, soak.tooled)]


class SlowBody:
    """A request body read in 256 KB pieces, slowly (a 4 MB part takes ~0.5 s, as on a slow link), so the kill
    lands mid-body; `sent` is set once `mid` bytes went out."""

    def __init__(self, data: bytes, mid: int, pause_s: float = 0.03) -> None:
        self.data, self.mid, self.pause_s = data, mid, pause_s
        self.pos = 0
        self.sent = threading.Event()

    def read(self, n: int = -1) -> bytes:
        if self.pos >= self.mid:
            self.sent.set()
        time.sleep(self.pause_s)
        chunk = self.data[self.pos:self.pos + 256 * 1024]
        self.pos += len(chunk)
        if not chunk:
            self.sent.set()
        return chunk


class FileUpload(Scenario):
    """One of: a Files API upload mid-body, an Uploads API part mid-body, an Uploads API completion."""

    SIZE = 16 * 1024 * 1024
    PART = 4 * 1024 * 1024

    def __init__(self) -> None:
        super().__init__("mid file upload", jitter_s=0.15)

    def begin(self, soak: Soak, http: httpx2.Client) -> None:
        rng = soak.rng
        self.kind = rng.choice(["file", "part", "complete"])
        if self.kind == "complete":
            self.jitter_s = 0.03  # joining 16 MB takes tens of milliseconds
        self.data = rng.randbytes(self.SIZE)
        self.filename = f"big-{rng.randrange(10**9)}.bin"
        if self.kind == "file":
            body = SlowBody(self.data, rng.randrange(self.SIZE + 1))
            self._send(soak, lambda h: h.post("/v1/files", data={"purpose": "assistants"},
                                              files={"file": (self.filename, body)}), body.sent)
            return
        self.upload_id = ok(http.post("/v1/uploads", json={
            "purpose": "assistants", "filename": self.filename, "bytes": self.SIZE,
            "mime_type": "application/octet-stream"}))["id"]
        pieces = [self.data[i:i + self.PART] for i in range(0, self.SIZE, self.PART)]
        last = len(pieces) - 1 if self.kind == "part" else len(pieces)
        self.parts = [ok(http.post(f"/v1/uploads/{self.upload_id}/parts", files={"data": ("p", piece)}))["id"]
                      for piece in pieces[:last]]
        if self.kind == "part":
            body = SlowBody(pieces[-1], rng.randrange(self.PART + 1))
            self._send(soak, lambda h: h.post(f"/v1/uploads/{self.upload_id}/parts",
                                              files={"data": ("p", body)}), body.sent)
        else:
            started = threading.Event()
            md5 = hashlib.md5(self.data, usedforsecurity=False).hexdigest()

            def complete(h: httpx2.Client) -> httpx2.Response:
                started.set()  # the kill lands while the server joins the parts
                return h.post(f"/v1/uploads/{self.upload_id}/complete", json={"part_ids": self.parts, "md5": md5})

            self._send(soak, complete, started)

    def _send(self, soak: Soak, request: Any, mid: threading.Event) -> None:
        self.reply: httpx2.Response | None = None

        def go() -> None:
            try:
                with soak.http() as h:
                    self.reply = request(h)
            except httpx2.TransportError:
                pass
            finally:
                mid.set()

        self.sender = threading.Thread(target=go, daemon=True)
        self.sender.start()
        assert mid.wait(20), "the upload never got under way"

    def after(self, soak: Soak, http: httpx2.Client) -> list[str]:
        self.sender.join(10)
        acked = self.reply is not None and self.reply.status_code == 200
        self.landed = f"{self.kind}: {'acknowledged before the kill' if acked else 'cut off'}"
        if self.kind == "file":
            if acked:
                assert self.reply is not None
                soak.ledger.files[self.reply.json()["id"]] = self.data  # verified with every acknowledged file
            return []
        if self.kind == "part":
            if acked:
                assert self.reply is not None
                self.parts.append(self.reply.json()["id"])
            else:  # the part was cut off: the upload still takes it
                piece = self.data[len(self.parts) * self.PART:]
                self.parts.append(ok(http.post(f"/v1/uploads/{self.upload_id}/parts",
                                               files={"data": ("p", piece)}))["id"])
        done = http.post(f"/v1/uploads/{self.upload_id}/complete", json={"part_ids": self.parts})
        if done.status_code == 200:
            file_id = done.json()["file"]["id"]
        elif self.kind == "complete" and "already completed" in done.text:
            self.landed = "complete: it finished before the kill, unacknowledged"
            listed = ok(http.get("/v1/files", params={"limit": 10000}))["data"]
            file_id = next((f["id"] for f in listed if f["filename"] == self.filename), "")
        else:
            return [f"upload {self.upload_id} ({self.kind}) could not be completed after the restart: "
                    f"{done.status_code} {done.text[:200]}"]
        got = http.get(f"/v1/files/{file_id}/content")
        if got.content != self.data:
            return [f"upload {self.upload_id}: the file has {len(got.content)} bytes, not the {self.SIZE} sent"]
        soak.ledger.files[file_id] = self.data
        return []


class Indexing(Scenario):
    def __init__(self) -> None:
        super().__init__("mid vector-store indexing", jitter_s=1.0)

    def begin(self, soak: Soak, http: httpx2.Client) -> None:
        rng = soak.rng
        words = ["".join(rng.choice("abcdefghijklmnop") for _ in range(rng.randint(3, 9))) for _ in range(3000)]
        self.text = " ".join(rng.choice(words) for _ in range(150_000)).encode()
        self.file_id = ok(http.post("/v1/files", data={"purpose": "assistants"},
                                    files={"file": ("notes.txt", self.text)}))["id"]
        soak.ledger.files[self.file_id] = self.text
        self.store_id = ok(http.post("/v1/vector_stores", json={"file_ids": [self.file_id]}))["id"]
        self.word = words[0]

    def at_kill(self, http: httpx2.Client) -> None:
        self.status = ok(http.get(f"/v1/vector_stores/{self.store_id}/files/{self.file_id}"))["status"]

    def after(self, soak: Soak, http: httpx2.Client) -> list[str]:
        """Indexing resumed (crash_checks waits for it): the file completed, with as many chunks as the same file
        indexed afresh (none twice), and search finds it."""
        entry = ok(http.get(f"/v1/vector_stores/{self.store_id}/files/{self.file_id}"))
        self.landed = f"file {self.status} at the kill, {entry['status']} after the restart"
        if entry["status"] != "completed":
            return [f"vector store file {self.file_id}: {entry['status']} {entry['last_error']}"]
        fresh = ok(http.post("/v1/vector_stores", json={"file_ids": [self.file_id]}))["id"]
        wait_file(http, fresh, self.file_id)
        problems = []
        kept, again = (chunk_count(soak.database, self.store_id, self.file_id),
                        chunk_count(soak.database, fresh, self.file_id))
        if kept != again:
            problems.append(f"vector store {self.store_id}: {kept} chunks of {self.file_id} after the restart, "
                            f"{again} when indexed afresh")
        hits = ok(http.post(f"/v1/vector_stores/{self.store_id}/search", json={"query": self.word}))["data"]
        if not hits:
            problems.append(f"vector store {self.store_id}: search for {self.word!r} finds nothing")
        ok(http.delete(f"/v1/vector_stores/{fresh}"))
        return problems


def wait_file(http: httpx2.Client, store_id: str, file_id: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while ok(http.get(f"/v1/vector_stores/{store_id}/files/{file_id}"))["status"] == "in_progress":
        assert time.monotonic() < deadline, f"{file_id} still in_progress in {store_id}"
        time.sleep(0.05)


class ResponseStream(Scenario):
    """A streamed response in a conversation (the Responses face), killed mid-stream: after the restart the
    response reads failed (or completed, if the kill came after its end), and the conversation takes a new
    response that completes."""

    def __init__(self) -> None:
        super().__init__("mid-response", jitter_s=0.3)

    def begin(self, soak: Soak, http: httpx2.Client) -> None:
        self.conversation = ok(http.post("/v1/conversations", json={"metadata": {"scenario": "response"}}))["id"]
        script(http, self.conversation, {"kind": "reply", "text": " ".join(f"r{i}" for i in range(120)),
                                         "delay_s": 0.02})
        self.stream = Streamer(soak.url, "/v1/responses", {"model": "gpt-4o", "input": "tell me a long story",
                                                           "conversation": self.conversation, "stream": True},
                               soak.rng.randint(3, 60))
        self.stream.start()
        self.stream.wait()

    def after(self, soak: Soak, http: httpx2.Client) -> list[str]:
        self.stream.join(10)
        if self.stream.response_id is None:
            return ["the stream never named its response"]
        response = ok(http.get(f"/v1/responses/{self.stream.response_id}"))
        self.landed = f"response {response['status']} after {self.stream.seen} events"
        problems = []
        if response["status"] not in ("failed", "completed"):
            problems.append(f"response {response['id']}: {response['status']} after the restart")
        text = f"after restart {soak.rng.randrange(10**6)}"
        script(http, self.conversation, {"kind": "reply", "text": text})
        made = http.post("/v1/responses", json={"model": "gpt-4o", "input": "again",
                                                "conversation": self.conversation})
        if made.status_code != 200 or made.json()["status"] != "completed":
            problems.append(f"conversation {self.conversation} refuses a new response: {made.status_code} "
                            f"{made.text[:200]}")
        elif made.json()["output"][-1]["content"][0]["text"] != text:
            problems.append(f"conversation {self.conversation}: the new response says something else")
        return problems


SCENARIOS: tuple[Callable[[], Scenario], ...] = (Stream, ToolCall, Code, FileUpload, Indexing, ResponseStream)
