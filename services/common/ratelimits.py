"""Rate limits, counted in Redis: tickets per kiosk client, alert buttons per terminal.

Limits are set per branch (`[branches.rate_limits]`, in the limits library's notation, e.g. "30/minute;300/hour")
and counted in fixed windows. Alert buttons go through Flask-Limiter. Tickets count inside the script that
issues them (`ticket_allowances`, `lines.Allowance`): the check, the ticket and the count are one atomic step and
one round trip, where Flask-Limiter's test-then-hit took four more on the kiosk's busiest path (BENCHMARKS.md,
B3), and only a ticket actually issued uses up an allowance. A distress call is never limited: the limit is
for runaway scripts and stuck keys, not for a teller in trouble, and repeat presses fold into one page anyway.
"""

from __future__ import annotations

import math
import time
from functools import lru_cache
from typing import Any
from urllib.parse import urlsplit

from flask import Flask, Response, request
from flask_limiter import Limiter, RateLimitExceeded
from limits import RateLimitItem, parse_many

from services.common import keys
from services.common.config import Branch, Settings
from services.common.errors import ApiError
from services.common.lines import Allowance


def _client() -> str:
    return request.remote_addr or "unknown"


limiter = Limiter(key_func=_client)
RATELIMIT_PREFIX = "lobby:ratelimit"


def storage_uri(settings: Settings) -> str:
    """Return the limits library's URI for the default Redis (its own scheme when Sentinels are in use)."""
    url = settings.redis_url
    if not url.startswith("sentinel://"):
        return url
    hosts = ",".join(f"{host}:{port}" for host, port in settings.sentinels)
    return f"redis+sentinel://{hosts}/{urlsplit(url).netloc}"


def init_app(app: Flask, settings: Settings) -> None:
    """Count limits in the service's Redis, under `lobby:ratelimit:` keys."""
    app.config.setdefault("RATELIMIT_STORAGE_URI", storage_uri(settings))
    # Fixed windows and no X-RateLimit-* headers: one Lua script per limit, where a sliding window with headers
    # ran three; a refusal still says when to try again (Retry-After, in _too_many).
    app.config.setdefault("RATELIMIT_STRATEGY", "fixed-window")
    app.config.setdefault("RATELIMIT_HEADERS_ENABLED", False)
    # With Redis down the request fails with our 503 anyway; the limiter must not turn it into a 500.
    app.config.setdefault("RATELIMIT_SWALLOW_ERRORS", True)
    # Counters are short-lived and per key, so they need no branch hash tag to move with a branch.
    app.config.setdefault("RATELIMIT_STORAGE_OPTIONS", {"key_prefix": RATELIMIT_PREFIX})
    limiter.init_app(app)
    app.register_error_handler(RateLimitExceeded, _too_many)


def _branch_id() -> str:
    return (request.view_args or {}).get("branch", "")


def _branch_limit(kind: str) -> str:
    from services.common.web import branches  # the app's branches; imported late to avoid a cycle

    branch = branches().get(_branch_id())
    return getattr(branch.rate_limits, kind) if branch else "1000/minute"


@lru_cache(maxsize=256)
def _items(limits: str) -> tuple[RateLimitItem, ...]:
    return tuple(parse_many(limits))


def ticket_allowances(branch: Branch, client: str, now_s: float) -> list[Allowance]:
    """Return the windows a kiosk client's ticket counts in now, one per limit of the branch."""
    allowances = []
    for item in _items(branch.rate_limits.tickets):
        window_s = item.get_expiry()
        start = int(now_s // window_s * window_s)
        allowances.append(Allowance(keys.ticket_allowance(branch.id, client, window_s, start), item.amount, window_s))
    return allowances


def retry_after_s(allowance: Allowance, now_s: float) -> int:
    """Return the whole seconds until an allowance's fixed window ends."""
    return max(1, math.ceil(allowance.window_s - now_s % allowance.window_s))


class TooManyRequests(ApiError):
    status, code = 429, "rate_limited"

    def __init__(self, message: str, retry_after_s: int):
        super().__init__(f"too many requests ({message}); try again in {retry_after_s} s")
        self.headers["Retry-After"] = str(retry_after_s)


def alert_limit() -> str:
    return _branch_limit("alerts")


def per_terminal() -> str:
    """Key alerts by branch and the terminal's token id, so one stuck terminal cannot drown the others.

    Limits are checked before the blueprint authenticates, so the id is read, not verified, here: a forged
    id buys nothing, since its request is refused 401 right after.
    """
    header = request.headers.get("Authorization", "")
    parts = header.removeprefix("Bearer ").strip().split(".")
    who = parts[2] if len(parts) == 4 else _client()
    return f"{_branch_id()}:terminal:{who}"


def accepted(response: Response) -> bool:
    """Count only requests that did something: bad input changes nothing, not even a rate counter."""
    return response.status_code < 400


def is_distress() -> bool:
    body: Any = request.get_json(silent=True)
    return isinstance(body, dict) and body.get("kind") == "distress"


def _too_many(exc: RateLimitExceeded) -> Any:
    current = limiter.current_limit
    retry = max(1, math.ceil(current.reset_at - time.time())) if current else 1
    error = TooManyRequests(exc.description or "limit reached", retry)
    return error.body(), error.status, error.headers
