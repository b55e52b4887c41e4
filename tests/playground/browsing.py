"""What the playground's browser tests share: how chromium is launched, the two viewports, and what a page did."""

from __future__ import annotations

from pathlib import Path
from typing import Any

CHROMIUM = Path("/usr/bin/chromium")
# Headless, and nothing of chromium's own that reaches the network (updates, safe browsing, first-run pings).
FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
         "--no-first-run"]
DESKTOP = {"width": 1280, "height": 800}
PHONE = {"width": 390, "height": 844}
# Waits end as soon as the page gets there; the bound covers a code-interpreter kernel starting on 2 busy cores.
WAIT_MS = 20_000


class Opened:
    """A page and what it did: every request it made, every uncaught script error."""

    def __init__(self, page: Any) -> None:
        self.page = page
        self.requests: list[Any] = []
        self.errors: list[str] = []
        page.on("request", lambda req: self.requests.append(req))
        page.on("pageerror", lambda exc: self.errors.append(str(exc)))


_OPENED: dict[int, Opened] = {}


def watch(page: Any) -> Opened:
    _OPENED[id(page)] = seen = Opened(page)
    return seen


def forget(page: Any) -> None:
    _OPENED.pop(id(page), None)


def requests_of(page: Any) -> list[Any]:
    """Every request the page has made so far, in order."""
    return _OPENED[id(page)].requests
