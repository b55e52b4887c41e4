"""SQLite storage: one connection per thread, one writer at a time, a repository per object family."""

from __future__ import annotations

from offline_assistants.store.assistants import AssistantStore
from offline_assistants.store.containers import ContainerStore
from offline_assistants.store.db import Database
from offline_assistants.store.files import FileStore
from offline_assistants.store.messages import MessageStore
from offline_assistants.store.response_events import ResponseEventStore
from offline_assistants.store.responses import ResponseStore
from offline_assistants.store.runs import RunStore
from offline_assistants.store.threads import ThreadStore
from offline_assistants.store.uploads import UploadStore
from offline_assistants.store.vector_stores import VectorStoreStore


class Store:
    def __init__(self, database: Database) -> None:
        self.database = database
        self.assistants = AssistantStore(database)
        self.threads = ThreadStore(database)
        self.messages = MessageStore(database)
        self.runs = RunStore(database)
        self.files = FileStore(database)
        self.uploads = UploadStore(database)
        self.vector_stores = VectorStoreStore(database)
        self.responses = ResponseStore(database)
        self.response_events = ResponseEventStore(database)
        self.containers = ContainerStore(database)

    def close(self) -> None:
        self.database.close()


__all__ = ["Database", "Store"]
