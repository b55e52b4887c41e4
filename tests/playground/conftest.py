"""Fixtures for the playground's browser tests: Debian's chromium driven by Playwright (one browser per session),
a live server on the scripted model (the pytest plugin's assistants_server), and a page per test that saves a
screenshot and checks that nothing was fetched from anywhere but the server and no script error went uncaught."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import openai
import pytest
from browsing import CHROMIUM, DESKTOP, FLAGS, WAIT_MS, Opened, forget, watch


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    if not CHROMIUM.exists():
        pytest.skip("the browser tests need Debian's chromium at /usr/bin/chromium (apt-get install chromium)")
    from playwright.sync_api import expect, sync_playwright

    expect.set_options(timeout=WAIT_MS)
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=FLAGS)
        yield chromium
        chromium.close()


@pytest.fixture(scope="session")
def screenshots(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Where each test's screenshot goes ($PLAYGROUND_SCREENSHOTS, else under pytest's temporary folder)."""
    folder = Path(os.environ.get("PLAYGROUND_SCREENSHOTS") or tmp_path_factory.getbasetemp() / "playground")
    folder.mkdir(parents=True, exist_ok=True)
    return folder


@pytest.fixture
def site(assistants_server: str) -> str:
    """The server's root: the playground is at /, the API under /v1."""
    return assistants_server.removesuffix("/v1")


@pytest.fixture
def sdk(assistants_server: str) -> openai.OpenAI:
    """The official SDK on the same server, for setting up and checking what the page did."""
    return openai.OpenAI(base_url=assistants_server, api_key="sk-local", max_retries=0,
                         _strict_response_validation=True)


@pytest.fixture
def open_page(browser: Any, site: str, screenshots: Path, request: pytest.FixtureRequest
              ) -> Iterator[Callable[..., Any]]:
    """A factory: a fresh browser context (its own localStorage) on a path of the site, at a viewport."""
    opened: list[Opened] = []
    contexts: list[Any] = []

    def factory(path: str = "/", viewport: dict[str, int] = DESKTOP, base: str | None = None) -> Any:
        context = browser.new_context(viewport=viewport)
        context.set_default_timeout(WAIT_MS)
        contexts.append(context)
        page = context.new_page()
        opened.append(watch(page))
        page.goto((base or site) + path)
        return page

    yield factory
    try:
        for i, seen in enumerate(opened):
            suffix = f"-{i}" if i else ""
            seen.page.screenshot(path=str(screenshots / f"{request.node.name}{suffix}.png"))
        for seen in opened:
            origin = seen.page.url.split("/")[2]
            outside = [r.url for r in seen.requests
                       if not r.url.startswith(("blob:", "data:")) and r.url.split("/")[2] != origin]
            assert outside == [], f"the page fetched from outside its server: {outside}"
            assert seen.errors == [], f"uncaught script errors: {seen.errors}"
    finally:
        for seen in opened:
            forget(seen.page)
        for context in contexts:
            context.close()
