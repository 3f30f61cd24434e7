"""The browser side of ``benchmarks.browser``: Debian's Chromium driven by Playwright.

The tab loads js/test/harness.html (the client as ``window.netcode``, the same
page tests/browser drives) from a static server on 127.0.0.1 and joins rooms of
the benchmark's lobby through the public ``netcode.connect`` API. Its echo is a
``StateReceived`` handler installed with ``page.evaluate``: every state goes
straight back to its sender, as the Python peer's ``on_state`` does.

The Chromium flags and the static server are shared with tests/browser/conftest.py
(which imports them from here): with only loopback to offer, Chromium starts ICE
checks only with both WebRTC flags (AIORTC_NOTES trap 12); the rest keep a
headless Chromium quiet and off the network. Never ``playwright install``.
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

__all__ = [
    "CHROMIUM",
    "CHROMIUM_ARGS",
    "JS_DIR",
    "BrowserTab",
    "chromium_missing",
    "js_http_server",
    "open_tab",
]

CHROMIUM = "/usr/bin/chromium"
JS_DIR = Path(__file__).resolve().parent.parent / "js"
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

# Join, install the echo, wait for the link to the host: one evaluate, so no CDP
# round trip sits between the join call and the first ICE check.
_JOIN = """async ([url, room, ms]) => {
    const t0 = performance.now();
    const info = await window.join(url, { room });
    const s = window.sessions[info.index];
    s.on('StateReceived', (e) => { s.sendState(e.data, e.peerId); });
    try {
        await window.waitLog(info.index, (log) => log.some((e) => e.type === 'PeerConnected'), ms);
    } catch (e) { await s.close(); throw e; }  // no half-joined session left behind
    return { ...info, peerConnectMs: performance.now() - t0 };
}"""
_STATS = """([i, p]) => { const st = window.sessions[i].stats(p);
    return { rtt_ms: st.rttMs, loss: st.loss, bad_packets: st.badPackets,
             packets_received: st.packetsReceived }; }"""


def chromium_missing() -> str | None:
    """Why the browser path cannot run here, or None."""
    if not os.access(CHROMIUM, os.X_OK):
        return f"no chromium at {CHROMIUM} (apt-get install chromium)"
    if importlib.util.find_spec("playwright") is None:
        return "no playwright for Python (pip install -e '.[dev]')"
    return None


class _Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass


@contextlib.contextmanager
def js_http_server() -> Iterator[str]:
    """``http://127.0.0.1:PORT`` serving js/ (the client and its harness page)."""
    handler = functools.partial(_Quiet, directory=str(JS_DIR))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, name="js-http", daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


class BrowserTab:
    """One harness tab; ``join`` / ``leave`` one room at a time."""

    def __init__(self, page: Any, version: str) -> None:
        self.page = page
        self.version = version
        self.errors: list[str] = []
        page.on("pageerror", lambda exc: self.errors.append(str(exc)))
        self._index: int | None = None

    async def join(self, url: str, room: str, timeout_s: float) -> dict[str, Any]:
        """{"peer_id", "peer_connect_ms"} once the tab's link to the host is up."""
        info = await self.page.evaluate(_JOIN, [url, room, int(timeout_s * 1000)])
        self._index = int(info["index"])
        return {"peer_id": info["peerId"], "peer_connect_ms": float(info["peerConnectMs"])}

    async def stats(self, peer_id: str) -> dict[str, Any]:
        """The tab's stats of its link to ``peer_id`` (the host)."""
        out: dict[str, Any] = await self.page.evaluate(_STATS, [self._index, peer_id])
        return out

    async def leave(self) -> None:
        index, self._index = self._index, None
        if index is not None:
            await self.page.evaluate("(i) => window.sessions[i].close()", index)


@contextlib.asynccontextmanager
async def open_tab(timeout_s: float) -> AsyncIterator[BrowserTab]:
    """A headless Chromium with one harness tab; Chromium is closed (killed) on exit."""
    from playwright.async_api import async_playwright

    with js_http_server() as base:
        async with async_playwright() as pw:
            browser = await pw.chromium.launch(executable_path=CHROMIUM, args=list(CHROMIUM_ARGS))
            try:
                page = await browser.new_page()
                tab = BrowserTab(page, browser.version)
                await page.goto(f"{base}/test/harness.html")
                await page.wait_for_function(
                    "() => document.title === 'ready'", timeout=timeout_s * 1000
                )
                yield tab
            finally:
                with contextlib.suppress(Exception):
                    await browser.close()
