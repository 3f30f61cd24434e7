"""Built-in TLS for the lobby (``wss://`` without a reverse proxy).

``LobbyConfig(certfile=..., keyfile=...)`` (``--certfile/--keyfile``): the server
context is Python's defaults for a server (``ssl.create_default_context``:
TLS 1.2+, the system's cipher policy). The files are read once at start; a
renewed certificate needs a restart (or a reverse proxy, docs/DEPLOY.md).
"""

from __future__ import annotations

import ssl

from ..config import LobbyConfig
from ..errors import ConfigError

__all__ = ["server_ssl_context"]


def server_ssl_context(config: LobbyConfig) -> ssl.SSLContext | None:
    """The server's TLS context, or None without ``certfile`` (plain ``ws://``)."""
    if config.certfile is None:
        return None
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    try:
        context.load_cert_chain(config.certfile, config.keyfile)
    except (OSError, ssl.SSLError) as exc:
        # A usage error (exit 2 from the CLI), not a traceback at the first handshake.
        raise ConfigError(f"certfile/keyfile: cannot load {config.certfile}: {exc}") from None
    return context
