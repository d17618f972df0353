"""Rate limits (Flask-Limiter, counted in Redis): tickets per kiosk client, alert buttons per terminal.

Limits are set per branch (`[branches.rate_limits]`). A distress call is never limited: the limit is for
runaway scripts and stuck keys, not for a teller in trouble, and repeat presses fold into one page anyway.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from flask import Flask, Response, request
from flask_limiter import Limiter, RateLimitExceeded

from services.common.config import Settings
from services.common.errors import ApiError


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
    app.config.setdefault("RATELIMIT_STRATEGY", "sliding-window-counter")
    app.config.setdefault("RATELIMIT_HEADERS_ENABLED", True)
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


def ticket_limit() -> str:
    return _branch_limit("tickets")


def alert_limit() -> str:
    return _branch_limit("alerts")


def per_kiosk_client() -> str:
    """Key tickets by branch and client address."""
    return f"{_branch_id()}:client:{_client()}"


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
    error = ApiError(f"too many requests ({exc.description}); try again shortly", code="rate_limited", status=429)
    return error.body(), 429
