"""The lobby's log lines: ``key=value`` text or JSON lines, and no secret in either.

Event lines (connect, join, leave, kick, close, error, disconnect: see
:mod:`netcode.net.lobby_metrics`) carry their fields in ``record.netcode_event``;
every other record is rendered with its message under ``msg``. One record is one
line in both formats (a traceback is escaped into the line, never spread over many).
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Iterable, Mapping
from typing import Any, Literal

__all__ = [
    "LOG_FORMATS",
    "JsonFormatter",
    "KeyValueFormatter",
    "RedactSecrets",
    "key_values",
    "setup_logging",
]

LogFormat = Literal["text", "json"]
LOG_FORMATS: tuple[LogFormat, ...] = ("text", "json")
REDACTED = "[redacted]"


def _timestamp(record: logging.LogRecord) -> str:
    base = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
    return f"{base}.{int(record.msecs):03d}Z"


def _fields(record: logging.LogRecord) -> dict[str, Any]:
    out: dict[str, Any] = {
        "ts": _timestamp(record),
        "level": record.levelname.lower(),
        "logger": record.name,
    }
    event = getattr(record, "netcode_event", None)
    if isinstance(event, dict):
        out.update((k, v) for k, v in event.items() if v is not None)
    else:
        out["msg"] = record.getMessage()
    if record.exc_info:
        out["exc"] = logging.Formatter().formatException(record.exc_info)
    return out


def _kv(value: object) -> str:
    text = str(value)
    if not text or any(c in text for c in ' "=\n\\'):
        return json.dumps(text)
    return text


def key_values(fields: Mapping[str, object]) -> str:
    """``k=v k2="v 2"``: values quoted (JSON) when they hold a space, quote, = or newline."""
    return " ".join(f"{k}={_kv(v)}" for k, v in fields.items() if v is not None)


class KeyValueFormatter(logging.Formatter):
    """``ts=... level=info logger=netcode.lobby.events event=join node=n1 room=AB12CD``."""

    def format(self, record: logging.LogRecord) -> str:
        return key_values(_fields(record))


class JsonFormatter(logging.Formatter):
    """One JSON object per line, the same keys as :class:`KeyValueFormatter`."""

    def format(self, record: logging.LogRecord) -> str:
        return json.dumps(_fields(record), default=str)


class RedactSecrets(logging.Filter):
    """Defence in depth: replace the configured secret values wherever they appear.

    The lobby never logs a secret on purpose; this catches a library that would
    (e.g. a request line with ``?token=``).
    """

    def __init__(self, secrets: Iterable[str | None]) -> None:
        super().__init__()
        self.secrets = tuple(s for s in secrets if s)

    def filter(self, record: logging.LogRecord) -> bool:
        if not self.secrets:
            return True
        text = record.getMessage()
        if any(s in text for s in self.secrets):
            for secret in self.secrets:
                text = text.replace(secret, REDACTED)
            record.msg, record.args = text, None
        return True


def setup_logging(level: str, fmt: LogFormat, secrets: Iterable[str | None] = ()) -> None:
    """Configure the root logger for ``netcode lobby``: one line per record on stderr."""
    handler = logging.StreamHandler()
    handler.setFormatter(JsonFormatter() if fmt == "json" else KeyValueFormatter())
    handler.addFilter(RedactSecrets(secrets))
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(getattr(logging, level))
    # websockets logs each connection at INFO and, at DEBUG, every frame and header:
    # frames carry reconnection tokens and headers the lobby token, so it never
    # goes below INFO, and only shows at --log-level DEBUG.
    ws_level = logging.INFO if level == "DEBUG" else logging.WARNING
    logging.getLogger("netcode.lobby.websockets").setLevel(ws_level)
