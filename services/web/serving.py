"""How every web service is served: gunicorn's gevent worker, with gunicorn's own error answers in the API's JSON
shape. Gunicorn reads its settings from this module (`gunicorn -c python:services.web.serving`).

gevent, because a Server-Sent Events client holds its connection for as long as it listens: as a greenlet it
costs a few kilobytes, where a thread costs a stack and the thread pool caps how many listen. The live streams
are read once per process for all its clients (services/web/hub.py), so clients cost no Redis connection.
Several worker processes per service use every core; gunicorn's master hands each new connection to one.

Gunicorn answers some requests itself, before the app sees them: a request line over its limit (414), headers
too large or too many (431), a request that is not HTTP (400), a transfer coding it does not know (501). It
writes those answers as HTML pages, through `gunicorn.util.write_error`, called from `Worker.handle_error`
alone; this worker writes them as `{"error": {"code", "message"}}` (API.md: never an HTML error page on /api/).
"""

from __future__ import annotations

import json
import os
import socket

from gunicorn import util
from gunicorn.workers.ggevent import GeventWorker

# gunicorn's settings (read from this module by `-c python:services.web.serving`); the command adds --bind and the
# app. WEB_CONCURRENCY sets the worker processes per service, as it does for gunicorn itself.
worker_class = "services.web.serving.JsonErrorWorker"
workers = int(os.environ.get("WEB_CONCURRENCY", "2"))
# Connections one worker process holds at once: every screen, terminal and device of a region (BENCHMARKS.md, B4).
worker_connections = 20_000
graceful_timeout = 3
timeout = 60
loglevel = "warning"

# Gunicorn's statuses, with our code and a message that does not repeat what the client sent.
ERRORS = {
    400: ("bad_request", "the request is not valid HTTP"),
    403: ("forbidden", "this request is not allowed"),
    414: ("uri_too_long", "the request line is too long"),
    417: ("expectation_failed", "the Expect header cannot be met"),
    431: ("headers_too_large", "the request's headers are too large or too many"),
    500: ("internal_error", "something went wrong on our side; it has been logged"),
    501: ("not_implemented", "the request's transfer coding is not supported"),
}


def write_json_error(sock: socket.socket, status_int: int, reason: str, mesg: str) -> None:
    """Write gunicorn's answer to a request it refused (what util.write_error does) as our JSON error."""
    code, message = ERRORS.get(status_int, ("bad_request", reason.lower()))
    body = json.dumps({"error": {"code": code, "message": message}}).encode()
    head = (f"HTTP/1.1 {status_int} {reason}\r\nConnection: close\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\nCache-Control: no-store\r\nX-Content-Type-Options: nosniff\r\n\r\n")
    util.write_nonblock(sock, head.encode("latin-1") + body)


class JsonErrorWorker(GeventWorker):
    """Gunicorn's gevent worker, answering the requests gunicorn refuses itself with JSON errors."""

    def init_process(self) -> None:
        # In this worker's process, gunicorn's error writer is ours (it is only called from handle_error).
        util.write_error = write_json_error
        super().init_process()
