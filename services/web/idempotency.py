"""Idempotency-Key: a POST repeated with the same key returns the first answer and does nothing again.

Each key (per branch and caller) has a slot in Redis. The first request claims it as `pending` for no longer
than a request can take (PENDING_S), runs, and stores its answer there for a day. A repeat meanwhile is told to
retry shortly (409 `request_in_progress`, with Retry-After); a repeat afterwards gets the stored answer. A
request that fails releases its slot, and a slot whose request died (its worker killed, Redis frozen
mid-request) lapses by itself within PENDING_S, so a retry is never locked out for long.

The work itself happens once because every write a view makes takes the request's `Once`
(services/domain/once.py, `current_once`): a Lua script or MULTI keeps its result beside the change, in the
same atomic step. A retry whose first attempt committed its work but died before answering runs the view
again; its write finds the kept result and acts no more, and the view answers from it.

Two requests are the same when their path and their JSON body, parsed, are equal: key order and spacing do
not matter.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable
from functools import wraps
from typing import Any

from flask import Response, g, make_response, request

from services.domain import keys
from services.domain.errors import Conflict, Unprocessable
from services.domain.once import Once
from services.web.app import redis_client

KEY_PATTERN = re.compile(r"^[\x21-\x7e]{1,200}$")
REMEMBER_S = 24 * 3600
# How long a request is taken to be in flight. A request whose Redis stalls fails within a command's timeout
# (1.5 s); one that makes progress answers well within this (a replicated write waits 1 s at most). Should one
# outlive it, a retry running beside it is still safe: its writes find the first one's kept result.
PENDING_S = 5
PENDING, DONE = "pending", "done"


def _fingerprint() -> str:
    raw = request.get_data(cache=True)
    try:
        body = json.dumps(json.loads(raw.decode("utf-8")), sort_keys=True, separators=(",", ":"),
                          ensure_ascii=False).encode() if raw.strip() else b""
    except ValueError:
        body = raw  # not JSON: the request is refused anyway, and only the same bytes are the same request
    return hashlib.sha256(request.path.encode() + b"\0" + body).hexdigest()


def current_once() -> Once | None:
    """Return the Once of the request being served (None without an Idempotency-Key)."""
    return g.get("once")


def idempotent(caller: Callable[[], str]) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Make a state-changing view honour Idempotency-Key, per branch and caller."""

    def decorate(view: Callable[..., Any]) -> Callable[..., Any]:
        @wraps(view)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            key = request.headers.get("Idempotency-Key")
            if key is None:
                return view(*args, **kwargs)
            if not KEY_PATTERN.match(key):
                raise Unprocessable("Idempotency-Key must be 1 to 200 printable ASCII characters",
                                    code="bad_idempotency_key")
            branch_id = (request.view_args or {}).get("branch", "-")
            slot = keys.idempotency(branch_id, caller(), key)
            r = redis_client()
            fingerprint = _fingerprint()
            if not r.set(slot, json.dumps({"state": PENDING, "fp": fingerprint}), nx=True, ex=PENDING_S):
                return _replay(r.get(slot), fingerprint)
            g.once = Once(f"{slot}:once", REMEMBER_S)
            try:
                response = make_response(view(*args, **kwargs))
            except Exception:
                # Its work was not done, or was kept under the Once: either way a retry may run it. With Redis
                # gone this fails too, and the slot lapses within PENDING_S.
                r.delete(slot)
                raise
            r.set(slot, json.dumps({
                "state": DONE, "fp": fingerprint, "status": response.status_code,
                "body": response.get_data(as_text=True), "mimetype": response.mimetype,
            }), ex=REMEMBER_S)
            return response

        return wrapper

    return decorate


def _replay(stored: str | None, fingerprint: str) -> Response:
    if stored is None:
        raise Conflict("a request with this Idempotency-Key just finished; retry", code="idempotency_retry")
    record = json.loads(stored)
    if record.get("fp") != fingerprint:
        raise Unprocessable("this Idempotency-Key was used for a different request",
                            code="idempotency_key_reused")
    if record["state"] == PENDING:
        error = Conflict("a request with this Idempotency-Key is still in progress; retry in a moment",
                         code="request_in_progress")
        error.headers["Retry-After"] = "1"
        raise error
    response = Response(record["body"], status=record["status"], mimetype=record["mimetype"])
    response.headers["Idempotent-Replayed"] = "true"
    return response
