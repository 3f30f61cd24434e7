"""The lobby serves the browser client and demo page at /play (netcode/net/web_assets.py).

Plain HTTP over a raw socket (so paths like ``/play/../x`` reach the server exactly
as written, no client normalises them); no browser needed.
"""

from __future__ import annotations

import asyncio
import tomllib
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from websockets.datastructures import Headers
from websockets.http11 import Request

from netcode.config import LobbyConfig
from netcode.net.lobby_server import LobbyServer
from netcode.net.web_assets import ASSETS, MAX_ASSET_BYTES, WebAssets
from tests.browser.conftest import JS_DIR
from tests.conftest import TIMESCALE
from tests.helpers import TIMEOUT, running_lobby

__all__: list[str] = []

pytestmark = pytest.mark.timeout(60 * TIMESCALE)

ROOT = JS_DIR.parent


@pytest.fixture
async def lobby() -> AsyncIterator[LobbyServer]:
    async with running_lobby() as server:
        yield server


async def fetch(
    server: LobbyServer, path: str, method: str = "GET", headers: str = ""
) -> tuple[int, dict[str, str], bytes]:
    """One request on a fresh connection: (status, headers lower-cased, body)."""
    reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
    try:
        writer.write(f"{method} {path} HTTP/1.1\r\nHost: x\r\n{headers}\r\n".encode())
        async with asyncio.timeout(TIMEOUT):
            raw = await reader.read(-1)  # the server closes after every plain response
    finally:
        writer.close()
    head, _, body = raw.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    fields = dict(line.split(": ", 1) for line in lines[1:])
    return int(lines[0].split()[1]), {k.lower(): v for k, v in fields.items()}, body


async def test_play_redirects_to_the_page_keeping_the_query(lobby: LobbyServer) -> None:
    for path in ("/play?room=ABC234&x=1", "/play/?room=ABC234&x=1"):
        status, headers, _ = await fetch(lobby, path)
        assert status == 302 and headers["location"] == "/play/demo/?room=ABC234&x=1"
    status, headers, _ = await fetch(lobby, "/play")
    assert headers["location"] == "/play/demo/"


async def test_files_with_their_types_and_cache_headers(lobby: LobbyServer) -> None:
    status, headers, body = await fetch(lobby, "/play/demo/?room=ABC234")
    assert status == 200 and headers["content-type"] == "text/html; charset=utf-8"
    assert body == (JS_DIR / "demo" / "index.html").read_bytes()
    assert "connect-src" in headers["content-security-policy"]
    assert headers["referrer-policy"] == "no-referrer"
    for name in ("netcode.js", "link.js", "msgpack.js"):
        status, headers, body = await fetch(lobby, f"/play/src/{name}")
        assert status == 200 and body == (JS_DIR / "src" / name).read_bytes()
        assert headers["content-type"] == "text/javascript; charset=utf-8"
        assert headers["cache-control"] == "no-cache"
        assert headers["x-content-type-options"] == "nosniff"
        assert int(headers["content-length"]) == len(body)
        assert headers["access-control-allow-origin"] == "*"  # importable cross-origin
    status, headers, _ = await fetch(lobby, "/play/src/netcode.d.ts")
    assert status == 200 and headers["content-type"].startswith("text/plain")


async def test_head_and_conditional_get(lobby: LobbyServer) -> None:
    _, full, body = await fetch(lobby, "/play/src/netcode.js")
    status, headers, empty = await fetch(lobby, "/play/src/netcode.js", "HEAD")
    assert status == 200 and empty == b""
    assert headers["content-length"] == str(len(body)) and headers["etag"] == full["etag"]
    status, _, empty = await fetch(
        lobby, "/play/src/netcode.js", headers=f"If-None-Match: {full['etag']}\r\n"
    )
    assert status == 304 and empty == b""
    status, headers, _ = await fetch(lobby, "/play/src/netcode.js", "POST")
    assert status == 405 and headers["allow"] == "GET, HEAD"
    status, headers, empty = await fetch(lobby, "/play/nothing.js", "HEAD")
    assert status == 404 and empty == b"" and headers["content-length"] == "10"


@settings(max_examples=200)
@given(st.text(alphabet=st.characters(max_codepoint=127, exclude_characters="\r\n"), max_size=60))
def test_the_redirect_never_carries_raw_control_characters(query: str) -> None:
    request = Request(f"/play?{query}", Headers())
    response = WebAssets().handle(None, request)  # type: ignore[arg-type]
    location = response.headers["Location"]
    assert response.status_code == 302 and location.startswith("/play/demo/")
    assert all(0x21 <= ord(c) < 0x7F for c in location)


TRAVERSALS = (
    "/play/../pyproject.toml",
    "/play/%2e%2e/pyproject.toml",
    "/play/%2E%2E/%2E%2E/etc/passwd",
    "/play/src/../../pyproject.toml",
    "/play/src/..%2f..%2fpyproject.toml",
    "/play//etc/passwd",
    "/play/src/netcode.js/",
    "/play/src/netcode.js%00.html",
    "/play/src/NETCODE.JS",
    "/play/src/",
    "/play/js/src/netcode.js",
    "/play/demo/../../netcode/config.py",
    "/playground",
)


async def test_anything_off_the_allow_list_is_404(lobby: LobbyServer) -> None:
    for path in TRAVERSALS:
        status, _, body = await fetch(lobby, path)
        assert status == 404, path
        assert b"[tool" not in body and b"root:" not in body


@settings(max_examples=300)
@given(st.text(alphabet="./%2eEfcsrnoj-_~", max_size=40))
def test_only_allow_listed_paths_resolve(tail: str) -> None:
    # The lookup is a dict of fixed keys: whatever the path, only those answer 200.
    assets = WebAssets()
    found = assets.assets.get("/" + tail)
    assert found is None or "/" + tail in ASSETS


async def test_serve_play_false_turns_it_off() -> None:
    async with running_lobby(LobbyConfig(serve_play=False)) as server:
        status, _, _ = await fetch(server, "/play/src/netcode.js")
        assert status == 404
        status, _, _ = await fetch(server, "/healthz")
        assert status == 200


def test_allow_list_covers_the_js_tree() -> None:
    # A new module in js/src or js/demo that the page imports must be served too.
    on_disk = {
        f"/{p.relative_to(JS_DIR).as_posix()}"
        for d in ("src", "demo")
        for p in (JS_DIR / d).iterdir()
        if p.is_file()
    }
    listed = {rel for rel, _ in ((f"/{r}", t) for r, t in ASSETS.values())}
    assert on_disk == listed
    assert all(len(WebAssets().assets[u].body) <= MAX_ASSET_BYTES for u in ASSETS)


def test_missing_or_oversized_files_are_left_out(tmp_path: Path) -> None:
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "netcode.js").write_text("export {};\n")
    (tmp_path / "src" / "link.js").write_bytes(b"x" * (MAX_ASSET_BYTES + 1))
    assets = WebAssets(tmp_path)
    assert set(assets.assets) == {"/src/netcode.js"}


def test_the_wheel_carries_the_files_where_asset_root_looks() -> None:
    # pyproject's force-include must put js/src and js/demo at netcode/_web/.
    conf = tomllib.loads((ROOT / "pyproject.toml").read_text())
    include = conf["tool"]["hatch"]["build"]["targets"]["wheel"]["force-include"]
    assert include == {"js/src": "netcode/_web/src", "js/demo": "netcode/_web/demo"}
    assert not (ROOT / "netcode" / "_web").exists(), "no second copy in the checkout"
