"""Structured logs: one JSON object a line, with the branch, counter, ticket, page and request ids; never a token.

Web requests carry their ids from the URL and an `X-Request-ID` (ours, or the caller's when it is sane);
worker jobs carry the job id and the branch of their payload, and a page request the pager's intake handles
carries its stream entry (as `job`, `page-request-<id>`), its branch and the consumer that took it. Anything
that looks like a token is redacted before a line is written, and request paths are logged without their
query string (where an event stream's `?token=` would be).
"""

from __future__ import annotations

import contextvars
import logging
import re
import sys
import time
import uuid
from typing import IO, Any

from flask import Flask, Response, g, has_request_context, request
from pythonjsonlogger.json import JsonFormatter

CONTEXT: contextvars.ContextVar[dict[str, Any] | None] = contextvars.ContextVar("lobby_log_context", default=None)
TOKEN = re.compile(r"lby\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+")
REQUEST_ID = re.compile(r"^[A-Za-z0-9._-]{1,64}$")
# URL parameters that name what a line is about, and the field each becomes.
VIEW_ARGS = {"branch": "branch", "counter": "counter", "number": "ticket", "page_id": "page", "alert_id": "alert"}
FIELDS = ("service", "request_id", "branch", "counter", "ticket", "page", "alert", "job", "consumer")
log = logging.getLogger("lobby.http")


def redact(text: str) -> str:
    return TOKEN.sub("lby.<redacted>", text)


class ContextFilter(logging.Filter):
    """Add the ids of what is being handled to every record, and redact tokens from its message."""

    def __init__(self, service: str):
        super().__init__()
        self.service = service

    def filter(self, record: logging.LogRecord) -> bool:
        context: dict[str, Any] = {"service": self.service, **(CONTEXT.get() or {})}
        if has_request_context():
            for arg, field in VIEW_ARGS.items():
                if request.view_args and arg in request.view_args:
                    context.setdefault(field, request.view_args[arg])
            context.setdefault("request_id", g.get("request_id"))
        for field, value in context.items():
            if value is not None and not hasattr(record, field):
                setattr(record, field, value)
        record.msg, record.args = redact(record.getMessage()), None
        return True


class LobbyJsonFormatter(JsonFormatter):
    def formatException(self, ei: Any) -> str:
        return redact(super().formatException(ei))


def setup(service: str, stream: IO[str] | None = None, level: int = logging.INFO) -> logging.Handler:
    """Send every log record of this process to stderr (or stream) as one JSON line; return the handler."""
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(LobbyJsonFormatter(
        "{asctime}{levelname}{name}{message}", style="{", rename_fields={"asctime": "time", "levelname": "level",
                                                                          "name": "logger"},
        json_ensure_ascii=False,
    ))
    handler.addFilter(ContextFilter(service))
    root = logging.getLogger()
    for old in [h for h in root.handlers if getattr(h, "lobby", False)]:
        root.removeHandler(old)
    handler.lobby = True  # type: ignore[attr-defined]
    root.addHandler(handler)
    root.setLevel(level)
    # RQ adds its own text handler to its loggers unless they already have one: give them ours.
    for name in ("rq.worker", "rq.scheduler"):
        logging.getLogger(name).handlers = [handler]
        logging.getLogger(name).propagate = False
    return handler


def job_context(job_id: str, branch: str | None, **extra: Any) -> contextvars.Token:
    """Set the ids a worker's lines carry while it runs one job (or handles one page request)."""
    return CONTEXT.set({"job": job_id, "branch": branch, **extra})


def install(app: Flask) -> None:
    """Give each request an id, and log one line per request (path without its query string)."""

    @app.before_request
    def _start() -> None:
        given = request.headers.get("X-Request-ID", "")
        g.request_id = given if REQUEST_ID.match(given) else uuid.uuid4().hex
        g.started = time.perf_counter()

    @app.after_request
    def _finish(response: Response) -> Response:
        response.headers["X-Request-ID"] = g.get("request_id", "")
        if request.path not in ("/healthz", "/readyz", "/metrics"):
            log.info("%s %s %s", request.method, request.path, response.status_code, extra={
                "method": request.method, "path": request.path, "status": response.status_code,
                "duration_ms": round((time.perf_counter() - g.get("started", time.perf_counter())) * 1000, 1),
            })
        return response
