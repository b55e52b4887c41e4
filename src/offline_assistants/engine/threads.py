"""Threads and their messages. A message's tokens are counted here, once, as it is stored."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from offline_assistants.errors import Conflict
from offline_assistants.ids import new_id, now
from offline_assistants.schemas.common import Deleted, ListParams, Page, ToolResources, dump, merged_metadata
from offline_assistants.schemas.messages import Message, MessageCreate, MessageUpdate, content_parts, text_of
from offline_assistants.schemas.threads import Thread, ThreadCreate, ThreadUpdate
from offline_assistants.store import Store
from offline_assistants.store.window import Encoder


class Threads:
    def __init__(self, store: Store, encode: Encoder, on_delete: Callable[[str], None] | None = None, *,
                 expand: Callable[[ToolResources | None], ToolResources | None] = lambda r: r,
                 attach: Callable[[str, list[str]], None] = lambda thread_id, file_ids: None) -> None:
        self.store = store
        self.encode = encode
        self.on_delete = on_delete  # e.g. stop the thread's code-interpreter kernel
        self.expand = expand  # tool_resources' inline vector_stores made into stores (engine/vector_stores.py)
        self.attach = attach  # files attached for file_search go into the thread's store

    # --- threads ---
    def create(self, req: ThreadCreate, *, kind: str = "thread", thread_id: str | None = None) -> Thread:
        """A thread; `kind` "conversation" gives it a conversation's id (the Responses face: the same rows)."""
        if req.tool_resources is not None:
            self.store.files.check_tool_resources(req.tool_resources)
        for i, message in enumerate(req.messages):
            self._check_attachments(message, f"messages[{i}]")
        thread_id = thread_id or new_id(kind)
        # Tokenize before the write lock: it is the slow part and needs no database.
        prepared = [self.prepare(thread_id, m) for m in req.messages]
        resources = self.expand(req.tool_resources)
        with self.store.database.write():
            self.store.threads.insert({
                "id": thread_id,
                "created_at": now(),
                "metadata": req.metadata or {},
                "tool_resources": dump(resources),
            })
            for values, tokens in prepared:
                self.store.messages.insert(values, tokens)
        self.attach(thread_id, [f for m in req.messages for f in _searched(m)])
        return self.store.threads.get(thread_id)

    def get(self, thread_id: str) -> Thread:
        return self.store.threads.get(thread_id)

    def list_threads(self, params: ListParams) -> Page[Thread]:
        """Threads, newest first by default: an extension (the real API has no list), for the playground."""
        return self.store.threads.page(params)

    def update(self, thread_id: str, req: ThreadUpdate) -> Thread:
        values: dict[str, Any] = {}
        if "metadata" in req.model_fields_set:
            values["metadata"] = merged_metadata(self.store.threads.get(thread_id).metadata, req.metadata)
        if "tool_resources" in req.model_fields_set:
            if req.tool_resources is not None:
                self.store.files.check_tool_resources(req.tool_resources)
            values["tool_resources"] = dump(self.expand(req.tool_resources))
        return self.store.threads.update(thread_id, values)

    def delete(self, thread_id: str) -> Deleted:
        self.store.threads.delete(thread_id)
        if self.on_delete is not None:
            self.on_delete(thread_id)
        return Deleted(id=thread_id, object="thread.deleted")

    # --- messages ---
    def _check_attachments(self, req: MessageCreate, prefix: str = "") -> None:
        """Every file a message names must exist: its attachments, and the files of its image parts."""
        dot = "." if prefix else ""
        self.store.files.check_exists([a.file_id for a in req.attachments or []], f"{prefix}{dot}attachments")
        if not isinstance(req.content, str):
            images = [p.image_file.file_id for p in req.content if p.type == "image_file"]
            self.store.files.check_exists(images, f"{prefix}{dot}content")

    def prepare(self, thread_id: str, req: MessageCreate, **extra: Any) -> tuple[dict[str, Any], list[int]]:
        content = content_parts(req.content)
        ts = now()
        values = {
            "id": new_id("message"),
            "thread_id": thread_id,
            "created_at": ts,
            "role": req.role,
            "content": content,
            "attachments": [a.model_dump(mode="json") for a in req.attachments or []],
            "metadata": req.metadata or {},
            "status": "completed",
            "completed_at": ts,
            "assistant_id": None,
            "run_id": None,
        }
        values.update(extra)
        return values, self.encode(req.role, text_of(content))

    def add_message(self, thread_id: str, req: MessageCreate, *, check_run: bool = True) -> Message:
        self.store.threads.row(thread_id)
        self._check_attachments(req)
        values, tokens = self.prepare(thread_id, req)
        with self.store.database.write():
            if check_run:
                active = self.store.runs.active(thread_id)
                if active is not None:
                    raise Conflict(f"Can't add messages to {thread_id} while a run {active['id']} is active.")
            message = self.store.messages.insert(values, tokens)
        self.attach(thread_id, _searched(req))
        return message

    def item_row(self, thread_id: str, item: dict[str, Any], role: str, text: str, tokens: list[int]
                 ) -> tuple[dict[str, Any], list[int]]:
        return item_row(thread_id, item, role, text, tokens)

    def get_message(self, thread_id: str, message_id: str) -> Message:
        self.store.threads.row(thread_id)
        return self.store.messages.get(thread_id, message_id)

    def update_message(self, thread_id: str, message_id: str, req: MessageUpdate) -> Message:
        self.store.threads.row(thread_id)
        values: dict[str, Any] = {}
        if "metadata" in req.model_fields_set:
            current = self.store.messages.get(thread_id, message_id).metadata
            values["metadata"] = merged_metadata(current, req.metadata)
        return self.store.messages.update(thread_id, message_id, values)

    def delete_message(self, thread_id: str, message_id: str) -> Deleted:
        self.store.threads.row(thread_id)
        self.store.messages.delete(thread_id, message_id)
        return Deleted(id=message_id, object="thread.message.deleted")

    def list_messages(self, thread_id: str, params: ListParams, run_id: str | None = None) -> Page[Message]:
        self.store.threads.row(thread_id)
        return self.store.messages.page(thread_id, params, run_id)


def item_row(thread_id: str, item: dict[str, Any], role: str, text: str, tokens: list[int]
             ) -> tuple[dict[str, Any], list[int]]:
    """A conversation item that is no message (a function call, its output) as a row of the thread: stored with
    the text the model reads for it, so the window and its running sums cover it like any message."""
    ts = now()
    return {"id": item["id"], "thread_id": thread_id, "created_at": ts, "role": role,
            "content": content_parts(text), "attachments": [], "metadata": {}, "status": "completed",
            "completed_at": ts, "assistant_id": None, "run_id": None, "item": item}, tokens


def _searched(req: MessageCreate) -> list[str]:
    """The files a message attaches for file search."""
    return [a.file_id for a in req.attachments or [] if any(t.type == "file_search" for t in a.tools or [])]
