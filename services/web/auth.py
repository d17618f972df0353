"""Bearer tokens of counter terminals, managers' devices and supervised screens.

A token reads `lby.<branch>.<id>.<secret>`. Redis keeps, under the branch, only the SHA-256 of the
secret with what the token may do (kind and subject); the secret is compared in constant time.
The branch in the token lets a token of another branch be told apart (403) from garbage (401).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass

import redis
from flask import request

from services.domain import keys
from services.domain.clock import SYSTEM, iso
from services.domain.errors import Forbidden, Unauthorized

COUNTER, DEVICE, SCREEN = "counter", "device", "screen"
KINDS = (COUNTER, DEVICE, SCREEN)
SCHEME = "lby"


@dataclass(frozen=True)
class Principal:
    """Who is calling: a counter's terminal, a manager's device or a screen, in one branch."""

    branch: str
    token_id: str
    kind: str
    subject: str


def _digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def issue(r: redis.Redis, branch_id: str, kind: str, subject: str) -> str:
    """Create a token for a counter, a device or a screen; return it (the only time it exists in clear)."""
    if kind not in KINDS:
        raise ValueError(f"token kind must be one of {KINDS}")
    token_id = secrets.token_hex(8)
    secret = secrets.token_urlsafe(32)
    pipe = r.pipeline()
    pipe.hset(keys.token(branch_id, token_id), mapping={
        "kind": kind, "subject": subject, "hash": _digest(secret), "issued_at": iso(SYSTEM.now()),
    })
    pipe.sadd(keys.tokens(branch_id), token_id)
    pipe.execute()
    return f"{SCHEME}.{branch_id}.{token_id}.{secret}"


def revoke(r: redis.Redis, branch_id: str, token_or_id: str) -> bool:
    """Revoke a token given whole or by its id; return whether it existed."""
    parts = token_or_id.split(".")
    token_id = parts[2] if len(parts) == 4 else token_or_id
    pipe = r.pipeline()
    pipe.delete(keys.token(branch_id, token_id))
    pipe.srem(keys.tokens(branch_id), token_id)
    # Said on the stream every live stream reads with its events (services/web/hub.py): streams opened with the
    # token end before any event written after this.
    pipe.xadd(keys.REVOCATIONS, {"token_key": keys.token(branch_id, token_id)}, maxlen=keys.REVOCATIONS_MAXLEN)
    return bool(pipe.execute()[0])


def list_tokens(r: redis.Redis, branch_id: str) -> list[dict[str, str]]:
    out = []
    for token_id in sorted(r.smembers(keys.tokens(branch_id))):
        raw = r.hgetall(keys.token(branch_id, token_id))
        if raw:
            out.append({"id": token_id, "kind": raw["kind"], "subject": raw["subject"],
                        "issued_at": raw.get("issued_at", "")})
    return out


def verify(r: redis.Redis, token: str) -> Principal | None:
    """Return the token's principal, or None when it is malformed, unknown or revoked."""
    parts = token.split(".")
    if len(parts) != 4 or parts[0] != SCHEME or not all(parts[1:]):
        return None
    _, branch_id, token_id, secret = parts
    if len(token_id) > 64 or len(branch_id) > 64 or "{" in branch_id or "}" in branch_id:
        return None
    raw = r.hgetall(keys.token(branch_id, token_id))
    if not raw or not hmac.compare_digest(raw.get("hash", ""), _digest(secret)):
        return None
    return Principal(branch=branch_id, token_id=token_id, kind=raw["kind"], subject=raw["subject"])


def presented_token(allow_query: bool = False) -> str | None:
    header = request.headers.get("Authorization", "")
    if header.startswith("Bearer "):
        return header[len("Bearer "):].strip() or None
    if allow_query:
        return request.args.get("token") or None
    return None


def authenticate(r: redis.Redis, branch_id: str, kind: str, *, allow_query: bool = False) -> Principal:
    """Return the caller's principal for this branch and kind, or raise 401/403."""
    token = presented_token(allow_query)
    if token is None:
        raise Unauthorized("a bearer token is required", code="missing_token")
    principal = verify(r, token)
    if principal is None:
        raise Unauthorized("the token is not valid", code="invalid_token")
    if principal.branch != branch_id:
        raise Forbidden("this token belongs to another branch", code="wrong_branch")
    if principal.kind != kind:
        raise Forbidden(f"this action needs a {kind} token", code="wrong_token_kind")
    return principal
