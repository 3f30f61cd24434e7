"""Fixtures for tests in a real Chromium: the js/ client served over HTTP on 127.0.0.1.

Chromium is Debian's (``apt-get install chromium``; never ``playwright install``),
driven by Playwright for Python. Where either is missing the tests skip with the
reason (or fail under CI, tests/conftest.py ``require_service``).
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib.util
import os
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from benchmarks._browser_tab import CHROMIUM, CHROMIUM_ARGS, JS_DIR, js_http_server
from netcode.net.lobby_server import LobbyServer
from tests.conftest import require_service
from tests.helpers import TIMEOUT, running_lobby

__all__ = [
    "CHROMIUM",
    "CHROMIUM_ARGS",
    "JS_DIR",
    "artifact_dir",
    "browser",
    "js_server",
    "lobby",
    "open_harness",
    "open_page",
    "page",
    "wait_js",
    "wait_until",
]


def _have_playwright() -> bool:
    return importlib.util.find_spec("playwright") is not None


@pytest.fixture(scope="session")
def js_server() -> Iterator[str]:
    """``http://127.0.0.1:PORT`` serving the js/ folder (the client and its pages)."""
    with js_http_server() as url:
        yield url


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


@pytest.fixture
async def lobby() -> AsyncIterator[LobbyServer]:
    """A real lobby on 127.0.0.1 (it also serves the /play page)."""
    async with running_lobby() as server:
        yield server


async def open_page(browser: Any, url: str, ready: str) -> Any:
    """A new tab on ``url``, once the JS expression ``ready`` holds; the page's uncaught
    errors collect in ``page.page_errors`` (tests assert it stays empty)."""
    p = await browser.new_page()
    errors: list[str] = []
    p.on("pageerror", lambda exc: errors.append(str(exc)))
    p.page_errors = errors
    await p.goto(url)
    await wait_js(p, f"() => {ready}")
    return p


async def wait_js(page: Any, predicate: str, arg: Any = None) -> Any:
    """Wait until the JS function ``predicate(arg)`` returns something truthy; return it.

    Unlike ``page.wait_for_function`` this evaluates nothing from a string inside the
    page, so it works under the /play page's Content-Security-Policy (no unsafe-eval).
    """
    script = f"""([arg, ms]) => new Promise((resolve, reject) => {{
        const pred = {predicate};
        const t0 = performance.now();
        const check = () => {{
            let got;
            try {{ got = pred(arg); }} catch (e) {{ return reject(e); }}
            if (got) return resolve(got);
            if (performance.now() - t0 > ms) return reject(new Error("timeout: " + pred));
            setTimeout(check, 50);
        }};
        check();
    }})"""
    return await page.evaluate(script, [arg, TIMEOUT * 1000])


async def open_harness(browser: Any, js_server: str) -> Any:
    """A new tab on js/test/harness.html, the module imported as ``window.netcode``."""
    return await open_page(browser, f"{js_server}/test/harness.html", "document.title === 'ready'")


async def wait_until(cond: Callable[[], bool], what: str) -> None:
    """Wait for a condition on state that has no event of its own (a lobby counter, a
    session property), checking every 20 ms; TimeoutError naming ``what`` after TIMEOUT."""
    try:
        async with asyncio.timeout(TIMEOUT):
            while not cond():  # noqa: ASYNC110 - a condition check, bounded above
                await asyncio.sleep(0.02)
    except TimeoutError:
        raise TimeoutError(f"no {what} within {TIMEOUT} s") from None


def artifact_dir(tmp_path: Path) -> Path:
    """Where screenshots go: $NETCODE_TEST_ARTIFACTS if set (CI uploads it), else the
    test's tmp_path (pytest keeps the last 3 runs under /tmp/pytest-of-$USER/)."""
    where = os.environ.get("NETCODE_TEST_ARTIFACTS")
    out = Path(where) if where else tmp_path
    out.mkdir(parents=True, exist_ok=True)
    return out
