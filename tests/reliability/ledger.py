"""What the client was told: every write the server acknowledged with a 2xx, and the one still in flight when the
server died. After a restart each acknowledged write must read back byte for byte; a write in flight may have
landed or not, but nothing else may appear in its place.

A writer (`Writer`) keeps the server busy with such writes, one at a time, until its connection dies with the
server: the kill then always lands among writes, some acknowledged, one in flight.
"""

from __future__ import annotations

import random
import threading
from dataclasses import dataclass, field
from typing import Any

import httpx2

HEADERS = {"Authorization": "Bearer sk-soak", "OpenAI-Beta": "assistants=v2"}


def client(url: str, timeout: float = 30.0) -> httpx2.Client:
    return httpx2.Client(base_url=url, headers=HEADERS, timeout=timeout)


@dataclass
class Ledger:
    assistants: dict[str, dict[str, Any]] = field(default_factory=dict)  # id -> metadata, instructions
    deleted: set[str] = field(default_factory=set)  # assistants whose delete was acknowledged
    thread_metadata: dict[str, list[dict[str, Any]]] = field(default_factory=dict)  # id -> [acked, in flight?]
    messages: dict[str, list[str]] = field(default_factory=dict)  # thread id -> the user texts acknowledged
    in_flight: dict[str, str] = field(default_factory=dict)  # thread id -> a user text sent, never acknowledged
    files: dict[str, bytes] = field(default_factory=dict)  # file id -> its bytes
    quiet_threads: list[str] = field(default_factory=list)  # threads no run uses: writers add messages there
    lock: threading.Lock = field(default_factory=threading.Lock)

    def acknowledged(self) -> int:
        with self.lock:
            return (len(self.assistants) + len(self.deleted) + len(self.thread_metadata) + len(self.files)
                    + sum(len(texts) for texts in self.messages.values()))

    def thread(self, thread_id: str, metadata: dict[str, Any], texts: list[str]) -> None:
        with self.lock:
            self.thread_metadata[thread_id] = [metadata]
            self.messages[thread_id] = list(texts)

    def verify(self, http: httpx2.Client) -> list[str]:
        """Read every acknowledged write back; what differs, said plainly. A write that was in flight and did
        land becomes acknowledged, so the next restart checks it too."""
        problems: list[str] = []
        with self.lock:
            for assistant_id, want in self.assistants.items():
                got = http.get(f"/v1/assistants/{assistant_id}")
                if got.status_code != 200:
                    problems.append(f"assistant {assistant_id}: {got.status_code} {got.text[:200]}")
                elif {k: got.json()[k] for k in want} != want:
                    problems.append(f"assistant {assistant_id}: {got.json()} is not {want}")
            for assistant_id in self.deleted:
                if (status := http.get(f"/v1/assistants/{assistant_id}").status_code) != 404:
                    problems.append(f"assistant {assistant_id}: deleted, yet it answers {status}")
            for thread_id, choices in self.thread_metadata.items():
                got = http.get(f"/v1/threads/{thread_id}")
                if got.status_code != 200:
                    problems.append(f"thread {thread_id}: {got.status_code} {got.text[:200]}")
                elif got.json()["metadata"] not in choices:
                    problems.append(f"thread {thread_id}: metadata {got.json()['metadata']} is none of {choices}")
                else:
                    self.thread_metadata[thread_id] = [got.json()["metadata"]]
            for thread_id, texts in self.messages.items():
                problems += self._messages(http, thread_id, texts)
            for file_id, data in self.files.items():
                got = http.get(f"/v1/files/{file_id}/content")
                if got.status_code != 200 or got.content != data:
                    problems.append(f"file {file_id}: {got.status_code}, {len(got.content)} bytes, not the "
                                    f"{len(data)} acknowledged" + (" (same length, other bytes)"
                                                                  if len(got.content) == len(data) else ""))
        return problems

    def _messages(self, http: httpx2.Client, thread_id: str, texts: list[str]) -> list[str]:
        got = user_texts(http, thread_id)
        pending = self.in_flight.pop(thread_id, None)
        if got == texts:
            return []
        if pending is not None and got == [*texts, pending]:
            texts.append(pending)
            return []
        return [f"thread {thread_id}: user messages {got} are not the acknowledged {texts}"
                + (f" (+ {pending!r} in flight)" if pending is not None else "")]


def user_texts(http: httpx2.Client, thread_id: str) -> list[str]:
    """The thread's user messages, oldest first, every page."""
    texts: list[str] = []
    after = None
    while True:
        params: dict[str, Any] = {"order": "asc", "limit": 100, **({"after": after} if after else {})}
        page = http.get(f"/v1/threads/{thread_id}/messages", params=params)
        page.raise_for_status()
        body = page.json()
        texts += [m["content"][0]["text"]["value"] for m in body["data"] if m["role"] == "user"]
        if not body["has_more"]:
            return texts
        after = body["last_id"]


class Writer(threading.Thread):
    """Acknowledged writes, one after another, until the server stops answering: assistants (some deleted),
    threads with metadata and messages, messages added, metadata changed, files uploaded."""

    def __init__(self, url: str, ledger: Ledger, rng: random.Random, tag: str) -> None:
        super().__init__(name=f"writer-{tag}", daemon=True)
        self.url, self.ledger, self.rng, self.tag = url, ledger, rng, tag
        self.writes = 0
        self.error: BaseException | None = None  # anything but the server going away

    def run(self) -> None:
        try:
            with client(self.url, timeout=20) as http:
                while True:
                    self._one(http)
                    self.writes += 1
        except httpx2.TransportError:
            return  # the server was killed: the write in flight is left in flight
        except BaseException as exc:  # noqa: BLE001 - reported by the test
            self.error = exc

    def _one(self, http: httpx2.Client) -> None:
        ledger, rng, n = self.ledger, self.rng, self.writes
        with ledger.lock:
            mine = list(ledger.quiet_threads)
        kind = rng.choice(["assistant", "thread", "message", "message", "message", "metadata", "file", "delete"])
        if kind == "assistant" or (kind == "delete" and not ledger.assistants):
            metadata = {"writer": self.tag, "n": str(n)}
            body = {"model": "gpt-4o", "instructions": f"soak {self.tag} {n} ünïcødé", "metadata": metadata}
            made = _ok(http.post("/v1/assistants", json=body))
            with ledger.lock:
                ledger.assistants[made["id"]] = {"metadata": metadata, "instructions": body["instructions"]}
        elif kind == "delete":
            assistant_id = rng.choice(sorted(ledger.assistants))
            with ledger.lock:
                del ledger.assistants[assistant_id]  # in flight: it may or may not be gone
            _ok(http.delete(f"/v1/assistants/{assistant_id}"))
            with ledger.lock:
                ledger.deleted.add(assistant_id)
        elif kind == "thread" or not mine:
            metadata = {"writer": self.tag, "n": str(n)}
            texts = [f"{self.tag}-{n}-first", f"{self.tag}-{n}-second"]
            made = _ok(http.post("/v1/threads", json={"metadata": metadata, "messages": [
                {"role": "user", "content": text} for text in texts]}))
            ledger.thread(made["id"], metadata, texts)
            with ledger.lock:
                ledger.quiet_threads.append(made["id"])
        elif kind == "message":
            thread_id = rng.choice(mine)
            text = f"{self.tag}-{n}-" + "x" * rng.randint(0, 2000)
            with ledger.lock:
                ledger.in_flight[thread_id] = text
            _ok(http.post(f"/v1/threads/{thread_id}/messages", json={"role": "user", "content": text}))
            with ledger.lock:
                ledger.in_flight.pop(thread_id, None)
                ledger.messages[thread_id].append(text)
        elif kind == "metadata":
            thread_id = rng.choice(mine)
            with ledger.lock:  # a modify merges the keys it sets over those stored (the hosted API's rule)
                metadata = {**ledger.thread_metadata[thread_id][0], "changed": str(n)}
                ledger.thread_metadata[thread_id].append(metadata)  # in flight: either may be there
            _ok(http.post(f"/v1/threads/{thread_id}", json={"metadata": metadata}))
            with ledger.lock:
                ledger.thread_metadata[thread_id] = [metadata]
        else:
            data = rng.randbytes(rng.randint(1, 256 * 1024))
            made = _ok(http.post("/v1/files", data={"purpose": "assistants"},
                                 files={"file": (f"{self.tag}-{n}.bin", data)}))
            with ledger.lock:
                ledger.files[made["id"]] = data


def _ok(response: httpx2.Response) -> Any:
    if response.status_code // 100 != 2:
        raise AssertionError(f"{response.request.method} {response.request.url.path}: {response.status_code} "
                             f"{response.text[:300]}")
    return response.json()
