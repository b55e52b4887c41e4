"""Fixtures of the retrieval tests: a machine without network."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from typing import Any

import pytest


@pytest.fixture
def no_network(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[Any]]:
    """Every attempt to reach another host raises (and is recorded), as on a machine with no network: connects,
    datagrams and name lookups. Opening a socket stays allowed (urllib3 binds one to ::1 on import to learn
    whether IPv6 exists; that reaches nothing)."""
    attempts: list[Any] = []

    def blocked(*args: Any, **kwargs: Any) -> Any:
        attempts.append(args)
        raise OSError("network access blocked by the test")

    for name in ("connect", "connect_ex", "sendto"):
        monkeypatch.setattr(socket.socket, name, blocked)
    monkeypatch.setattr(socket, "create_connection", blocked)
    monkeypatch.setattr(socket, "getaddrinfo", blocked)
    yield attempts
