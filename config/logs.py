"""Structured logs: one JSON object per line, one line per event.

Every role calls `setup_logging(role, level)` once at start. Call sites log with
`log.info("event.name", extra={"fields": {...}})`; a request id travels in the
`request_id` field so one request can be followed across gateway, coordinator and nodes
(the gateway sends it to the others as `X-Request-Id`).
"""

from __future__ import annotations

import json
import logging
import sys
import time


class JsonFormatter(logging.Formatter):
    def __init__(self, role: str) -> None:
        super().__init__()
        self.role = role

    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "ts": round(time.time(), 3),
            "level": record.levelname.lower(),
            "role": self.role,
            "logger": record.name,
            "event": record.getMessage(),
        }
        fields = getattr(record, "fields", None)
        if fields:
            entry.update(fields)
        if record.exc_info:
            entry["exc"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str, separators=(",", ":"))


class BadHttpFilter(logging.Filter):
    """aiohttp logs every request it cannot parse (a malformed request line or header, a bad
    chunked body) as an ERROR with a full traceback, before answering 400 itself: anyone
    could flood the logs with tracebacks. The client's mistake becomes one info line."""

    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        if exc is None or not _is_bad_http(exc):
            return True
        if not logging.getLogger().isEnabledFor(logging.INFO):
            return False
        remote = record.args[0] if isinstance(record.args, tuple) and record.args else None
        record.levelno, record.levelname = logging.INFO, "INFO"
        record.msg, record.args = "http.bad_request", ()
        record.exc_info, record.exc_text = None, None
        record.fields = {"status": 400, "remote": str(remote) if remote is not None else None,
                         "error": f"{type(exc).__name__}: {getattr(exc, 'message', '') or exc}"[:300]}
        return True


def _is_bad_http(exc: BaseException) -> bool:
    from aiohttp.http_exceptions import HttpProcessingError
    return isinstance(exc, HttpProcessingError)


def setup_logging(role: str, level: str = "info") -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter(role))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    # aiohttp's access log duplicates our own per-request line.
    logging.getLogger("aiohttp.access").setLevel(logging.WARNING)
    server_log = logging.getLogger("aiohttp.server")
    if not any(isinstance(f, BadHttpFilter) for f in server_log.filters):
        server_log.addFilter(BadHttpFilter())
