"""Fixtures for tests in a real Chromium: the js/ client served over HTTP on 127.0.0.1.

Chromium is Debian's (``apt-get install chromium``; never ``playwright install``),
driven by Playwright for Python. Where either is missing the tests skip with the
reason (or fail under CI, tests/conftest.py ``require_service``).
"""

from __future__ import annotations

import contextlib
import functools
import http.server
import importlib.util
import os
import threading
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import require_service

__all__ = ["CHROMIUM", "CHROMIUM_ARGS", "JS_DIR", "browser", "js_server", "page"]

CHROMIUM = "/usr/bin/chromium"
JS_DIR = Path(__file__).resolve().parents[2] / "js"
# AIORTC_NOTES trap 12: with only loopback to offer, Chromium starts ICE checks only
# with both WebRTC flags; the rest keep a headless Chromium quiet and off the network.
CHROMIUM_ARGS = (
    "--no-sandbox",
    "--headless",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--allow-loopback-in-peer-connection",
    "--disable-features=WebRtcHideLocalIpsWithMdns",
)


def _have_playwright() -> bool:
    return importlib.util.find_spec("playwright") is not None


class _Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture(scope="session")
def js_server() -> Iterator[str]:
    """``http://127.0.0.1:PORT`` serving the js/ folder (the client and its pages)."""
    handler = functools.partial(_Quiet, directory=str(JS_DIR))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, name="js-http", daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture
async def browser() -> AsyncIterator[Any]:
    """A headless Debian Chromium; closed after the test."""
    have = os.access(CHROMIUM, os.X_OK)
    require_service(have, f"chromium at {CHROMIUM} (apt-get install chromium)")
    require_service(_have_playwright(), "playwright for Python (pip install -e '.[dev]')")
    from playwright.async_api import async_playwright

    async with async_playwright() as pw:
        b = await pw.chromium.launch(executable_path=CHROMIUM, args=list(CHROMIUM_ARGS))
        try:
            yield b
        finally:
            with contextlib.suppress(Exception):
                await b.close()


@pytest.fixture
async def page(browser: Any, js_server: str) -> AsyncIterator[Any]:
    """A tab with the client loaded as ``window.netcode``; its console errors fail the test."""
    p = await open_harness(browser, js_server)
    yield p
    with contextlib.suppress(Exception):
        await p.close()


async def open_harness(browser: Any, js_server: str) -> Any:
    """A new tab on js/test/harness.html, the module imported."""
    p = await browser.new_page()
    errors: list[str] = []
    p.on("pageerror", lambda exc: errors.append(str(exc)))
    p.page_errors = errors
    await p.goto(f"{js_server}/test/harness.html")
    await p.wait_for_function("document.title === 'ready'")
    return p
