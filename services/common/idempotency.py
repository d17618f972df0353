"""Idempotency-Key: a POST repeated with the same key returns the first answer and does nothing again."""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable
from functools import wraps
from typing import Any

from flask import Response, make_response, request

from services.common import keys
from services.common.errors import Conflict, Unprocessable
from services.common.web import redis_client

KEY_PATTERN = re.compile(r"^[\x21-\x7e]{1,200}$")
REMEMBER_S = 24 * 3600
PENDING = "pending"


def _fingerprint() -> str:
    return hashlib.sha256(request.path.encode() + b"\0" + request.get_data(cache=True)).hexdigest()


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
            if not r.set(slot, json.dumps({"state": PENDING, "fp": fingerprint}), nx=True, ex=REMEMBER_S):
                return _replay(r.get(slot), fingerprint)
            try:
                response = make_response(view(*args, **kwargs))
            except Exception:
                r.delete(slot)  # the first try failed: a retry must be able to act
                raise
            r.set(slot, json.dumps({
                "state": "done", "fp": fingerprint, "status": response.status_code,
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
        raise Conflict("a request with this Idempotency-Key is still in progress", code="request_in_progress")
    response = Response(record["body"], status=record["status"], mimetype=record["mimetype"])
    response.headers["Idempotent-Replayed"] = "true"
    return response
