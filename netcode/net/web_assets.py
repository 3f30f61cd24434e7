"""The browser client and demo page, served by the lobby under ``/play``.

``GET /play?room=CODE`` redirects to ``/play/demo/?room=CODE`` (the canvas page of
js/demo); the ES modules of the client are ``/play/src/netcode.js`` and its
siblings, the same tree as the repository's js/ folder, so the page's relative
imports (``../src/netcode.js``) work both here and from a checkout.

Only the files named in :data:`ASSETS` are ever served: the request path is looked
up in that table and never joined onto a filesystem path, so ``..``, ``%2e%2e``,
absolute paths and symlinks cannot reach anything else (404). Files are read once,
when the lobby starts, each capped at :data:`MAX_ASSET_BYTES`.

Where the files come from: an installed wheel carries them as ``netcode/_web/``
(pyproject.toml ``force-include`` of js/src and js/demo); a source checkout reads
the repository's js/ folder, the one source of truth.
"""

from __future__ import annotations

import email.utils
import hashlib
import http
import importlib.resources
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from importlib.resources.abc import Traversable
from pathlib import Path
from urllib.parse import quote, urlsplit

from websockets.asyncio.server import ServerConnection
from websockets.datastructures import Headers
from websockets.http11 import Request, Response

__all__ = [
    "ASSETS",
    "MAX_ASSET_BYTES",
    "PLAY_PATH",
    "Asset",
    "WebAssets",
    "asset_root",
]

log = logging.getLogger("netcode.lobby.web")

PLAY_PATH = "/play"
# The largest file we serve; a bigger one is left out (404, warning at start-up):
# the client's modules are ~20 KB each, so this only guards against a wrong file.
MAX_ASSET_BYTES = 1_048_576

_JS = "text/javascript; charset=utf-8"  # RFC 9239: the one JavaScript media type
_HTML = "text/html; charset=utf-8"
_TS = "text/plain; charset=utf-8"  # .d.ts: for editors; no browser executes it
_QUERY_SAFE = "=&+%;,/?:@!$'()*~-._"  # RFC 3986 query characters, kept as they are

# URL path below /play -> (file below the asset root, media type). The allow-list.
ASSETS: Mapping[str, tuple[str, str]] = {
    "/demo/": ("demo/index.html", _HTML),
    "/demo/index.html": ("demo/index.html", _HTML),
    "/demo/demo.js": ("demo/demo.js", _JS),
    "/demo/predict.js": ("demo/predict.js", _JS),
    "/demo/netgraph.js": ("demo/netgraph.js", _JS),
    "/src/netcode.js": ("src/netcode.js", _JS),
    "/src/netcode.d.ts": ("src/netcode.d.ts", _TS),
    "/src/msgpack.d.ts": ("src/msgpack.d.ts", _TS),
    "/src/lobby.js": ("src/lobby.js", _JS),
    "/src/link.js": ("src/link.js", _JS),
    "/src/hello.js": ("src/hello.js", _JS),
    "/src/msgpack.js": ("src/msgpack.js", _JS),
    "/src/wire.js": ("src/wire.js", _JS),
    "/src/reliability.js": ("src/reliability.js", _JS),
    "/src/snapshot.js": ("src/snapshot.js", _JS),
    "/src/interpolation.js": ("src/interpolation.js", _JS),
    "/src/star.js": ("src/star.js", _JS),
}

# The page reads lobby and room from the query string and opens a websocket to
# whatever lobby it names, hence connect-src ws: wss:. No referrer: the URL holds
# the room code (and maybe a token).
_PAGE_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; connect-src 'self' ws: wss:; style-src 'self' 'unsafe-inline'"
    ),
    "Referrer-Policy": "no-referrer",
}


@dataclass(frozen=True, slots=True)
class Asset:
    """One served file: its bytes, media type and entity tag."""

    body: bytes
    content_type: str
    etag: str


def asset_root() -> Traversable | None:
    """Where the files are: the wheel's ``netcode/_web``, else the checkout's js/."""
    packaged = importlib.resources.files("netcode").joinpath("_web")
    if packaged.joinpath("src", "netcode.js").is_file():
        return packaged
    checkout = Path(__file__).resolve().parents[2] / "js"
    if (checkout / "src" / "netcode.js").is_file():
        return checkout
    return None


def _load(root: Traversable | None) -> dict[str, Asset]:
    """Read every allow-listed file once; missing or oversized ones are left out."""
    out: dict[str, Asset] = {}
    for url, (rel, ctype) in ASSETS.items():
        node = None if root is None else root.joinpath(*rel.split("/"))
        try:
            body = b"" if node is None else node.read_bytes()
        except OSError:
            body = b""
        if not body or len(body) > MAX_ASSET_BYTES:
            log.warning("not serving %s%s: %s missing, empty or too large", PLAY_PATH, url, rel)
            continue
        etag = '"' + hashlib.sha256(body).hexdigest()[:20] + '"'
        out[url] = Asset(body, ctype, etag)
    return out


class WebAssets:
    """The ``/play`` route of the lobby: register :meth:`handle` for ``/play`` and
    ``/play/`` in ``LobbyServer.routes``."""

    def __init__(self, root: Traversable | None = None) -> None:
        self.assets = _load(root if root is not None else asset_root())

    def handle(self, connection: ServerConnection, request: Request) -> Response:
        """GET/HEAD of an allow-listed file (304 on a matching If-None-Match), the
        redirect of ``/play`` to the page, 405 for other methods, else 404."""
        if request.method not in ("GET", "HEAD"):
            return _response(405, b"Method not allowed\n", {"Allow": "GET, HEAD"})
        head = request.method == "HEAD"
        parts = urlsplit(request.path)
        sub = parts.path[len(PLAY_PATH) :]
        if sub in ("", "/"):
            # Re-quoted: a control character in the request must not reach a header.
            query = f"?{quote(parts.query, safe=_QUERY_SAFE)}" if parts.query else ""
            return _response(302, b"", {"Location": f"{PLAY_PATH}/demo/{query}"})
        asset = self.assets.get(sub)
        if asset is None:
            return _response(404, b"Not found\n", {}, head=head)
        headers = {"Content-Type": asset.content_type, "ETag": asset.etag}
        if asset.content_type == _HTML:
            headers.update(_PAGE_HEADERS)
        else:
            # Module scripts load in CORS mode: a game page on another origin may import
            # the client from the lobby. Public files, no credentials: any origin.
            headers["Access-Control-Allow-Origin"] = "*"
        if request.headers.get("If-None-Match") == asset.etag:
            return _response(304, b"", headers)
        return _response(200, asset.body, headers, head=head)


def _response(
    status: int, body: bytes, extra: Mapping[str, str], *, head: bool = False
) -> Response:
    """A complete response; for HEAD the headers of the GET without its body."""
    st = http.HTTPStatus(status)
    headers = Headers()
    headers["Date"] = email.utils.formatdate(usegmt=True)
    headers["Connection"] = "close"
    if status != 304:
        headers["Content-Length"] = str(len(body))
    if "Content-Type" not in extra:
        headers["Content-Type"] = "text/plain; charset=utf-8"
    # Revalidate every time (the ETag makes that a 304): a new netcode version must
    # never run against a cached older module.
    headers["Cache-Control"] = "no-cache"
    headers["X-Content-Type-Options"] = "nosniff"
    for name, value in extra.items():
        headers[name] = value
    return Response(st.value, st.phrase, headers, b"" if head or status == 304 else body)
