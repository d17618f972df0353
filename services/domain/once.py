"""Writes made once per key: the outcome of a write is kept beside it, in the same atomic step.

A request retried with its Idempotency-Key after its first attempt died (a web worker killed, Redis frozen
mid-request) must not act twice, nor be refused for long. So every state change that a key can repeat takes
a `Once`: a Lua script stores its result under `Once.key` in the script itself (lua/once.lua wraps it), and a
MULTI stores it in the same MULTI. A second run with the same key finds the result and returns it without acting
again. The web layer's own record of the request (services/web/idempotency.py) only holds the answer for replay and
marks a request in flight; this is what makes the work itself happen once.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import redis


@dataclass(frozen=True)
class Once:
    """The key a write keeps its result under, and for how long (seconds)."""

    key: str
    ttl_s: int


MISSING = object()


def kept(pipe: redis.client.Pipeline, once: Once | None) -> Any:
    """In a transaction's WATCH phase: watch the key and return the result kept under it, else MISSING."""
    if once is None:
        return MISSING
    pipe.watch(once.key)
    raw = pipe.get(once.key)
    return json.loads(raw)[0] if raw is not None else MISSING


def keep(pipe: redis.client.Pipeline, once: Once | None, result: Any) -> None:
    """Add to a MULTI: keep the result under the key (a JSON value), so a repeat returns it."""
    if once is not None:
        pipe.set(once.key, json.dumps([result]), ex=once.ttl_s)
