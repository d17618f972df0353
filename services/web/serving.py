"""The gunicorn worker every web service runs: gthread, with gunicorn's own error answers in the API's JSON shape.

Gunicorn answers some requests itself, before the app sees them: a request line over its limit (414), headers
too large or too many (431), a request that is not HTTP (400), a transfer coding it does not know (501). It
writes those answers as HTML pages, through `gunicorn.util.write_error`, called from `Worker.handle_error`
alone; this worker writes them as `{"error": {"code", "message"}}` (API.md: never an HTML error page on /api/).
"""

from __future__ import annotations

import json
import socket

from gunicorn import util
from gunicorn.workers.gthread import ThreadWorker

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


class JsonErrorWorker(ThreadWorker):
    """Gunicorn's gthread worker, answering the requests gunicorn refuses itself with JSON errors."""

    def init_process(self) -> None:
        # In this worker's process, gunicorn's error writer is ours (it is only called from handle_error).
        util.write_error = write_json_error
        super().init_process()
