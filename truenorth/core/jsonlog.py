"""Structured logs: one JSON object per line (TRUENORTH_LOG_FORMAT=json; docs/operations.md, "Metrics, logs
and error reports").

Importable without Django set up (settings' LOGGING names `JsonFormatter` by dotted path, and gunicorn loads
`GunicornJsonLogger` in its master before any app code). Each line holds `time` (UTC, ISO 8601 with
milliseconds), `level`, `logger`, `message`, `request_id` when the line was written while serving a request
(set by truenorth.ops.metrics.MetricsMiddleware), `exception` (the formatted traceback) when there is one,
and any `extra={...}` fields the caller passed.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
from contextvars import ContextVar
from typing import Any

from gunicorn.glogging import Logger as GunicornLogger

# The current request's id (a contextvar, so threads and async tasks each see their own).
request_id: ContextVar[str | None] = ContextVar("truenorth_request_id", default=None)

# Attributes every LogRecord has: everything else on a record came from `extra=` and is written as a field.
_STANDARD = frozenset(
    vars(logging.LogRecord("", logging.INFO, "", 0, "", None, None)).keys() | {"message", "asctime"}
)


REQUEST_ID_META = "truenorth.request_id"


def _id_of(request: Any) -> str | None:
    """The id the middleware stored on a request that Django's `log_response` passes as `extra` (it logs 4xx
    and 5xx answers after the middleware returned, when the context variable is reset already)."""
    meta = getattr(request, "META", None)
    return meta.get(REQUEST_ID_META) if isinstance(meta, dict) else None


class JsonFormatter(logging.Formatter):
    """A log record as one line of JSON (never several lines: a traceback is one escaped string)."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": dt.datetime.fromtimestamp(record.created, dt.UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        current = (
            getattr(record, "request_id", None)
            or request_id.get()
            or _id_of(getattr(record, "request", None))
        )
        if current:
            entry["request_id"] = current
        for key, value in vars(record).items():
            if key not in _STANDARD and key not in entry and key != "request":
                entry[key] = value
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        elif record.exc_text:
            entry["exception"] = record.exc_text
        if record.stack_info:
            entry["stack"] = self.formatStack(record.stack_info)
        return json.dumps(entry, default=str, ensure_ascii=False)


class GunicornJsonLogger(GunicornLogger):
    """gunicorn's logger with JSON lines: its error log through `JsonFormatter`, and each access-log line as
    fields (method, path without the query string, status, bytes, duration, client address, user agent,
    request id) instead of the Apache-style text line. `truenorth serve` uses it when
    TRUENORTH_LOG_FORMAT=json (gunicorn's `logger_class`)."""

    def setup(self, cfg: Any) -> None:
        super().setup(cfg)
        for log in (self.error_log, self.access_log):
            for handler in log.handlers:
                handler.setFormatter(JsonFormatter())

    def access(self, resp: Any, req: Any, environ: dict[str, Any], request_time: dt.timedelta) -> None:
        if not self.access_log_enabled:
            return
        raw_headers = getattr(resp, "headers", None) or []
        pairs = raw_headers.items() if hasattr(raw_headers, "items") else raw_headers
        headers = {str(name).lower(): value for name, value in pairs}
        status = str(getattr(resp, "status", "")).split(" ")[0]
        method = environ.get("REQUEST_METHOD", "-")
        path = environ.get("PATH_INFO", "-")  # no query string: it may carry a token
        fields: dict[str, Any] = {
            "method": method,
            "path": path,
            "status": int(status) if str(status).isdigit() else status,
            "bytes": getattr(resp, "sent", None),
            "duration_ms": round(request_time.total_seconds() * 1000, 3),
            "remote_addr": environ.get("REMOTE_ADDR", "-"),
            "user_agent": environ.get("HTTP_USER_AGENT", ""),
        }
        if headers.get("x-request-id"):
            fields["request_id"] = headers["x-request-id"]
        try:
            self.access_log.info("%s %s %s", method, path, fields["status"], extra=fields)
        except Exception:  # gunicorn's own rule: a broken access line never breaks the response
            self.error(f"Failed to log the access line for {method} {path}")
