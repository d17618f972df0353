"""Redis connections: one pool per process and purpose, created on first use."""

from __future__ import annotations

from functools import lru_cache

import redis

from services.common.config import settings

# Plain calls must fail fast when Redis is away (the APIs answer 503 within two seconds).
COMMAND_TIMEOUT_S = 1.5
# Stream readers block up to KEEPALIVE_S in XREAD, so their socket waits longer than that.
STREAM_TIMEOUT_S = 25.0
# Connections a pool may open. redis-py 8 caps a pool at 100 by default, and every Server-Sent Events client
# holds a stream connection for as long as it listens: the 101st live screen got a 500 (BENCHMARKS.md, B4).
# Room for every thread of a web service (services/stack.py), and more.
MAX_CONNECTIONS = 4096


@lru_cache(maxsize=16)
def _client(url: str, *, decode: bool, timeout: float) -> redis.Redis:
    return redis.Redis.from_url(
        url,
        decode_responses=decode,
        socket_timeout=timeout,
        socket_connect_timeout=COMMAND_TIMEOUT_S,
        health_check_interval=30,
        retry_on_timeout=False,
        max_connections=MAX_CONNECTIONS,
    )


def get_redis(url: str | None = None) -> redis.Redis:
    """Return the shared client (str replies) for plain commands."""
    return _client(url or settings().redis_url, decode=True, timeout=COMMAND_TIMEOUT_S)


def get_stream_redis(url: str | None = None) -> redis.Redis:
    """Return the client for blocking stream reads."""
    return _client(url or settings().redis_url, decode=True, timeout=STREAM_TIMEOUT_S)


def get_rq_redis(url: str | None = None) -> redis.Redis:
    """Return the client RQ needs (bytes replies)."""
    return _client(url or settings().redis_url, decode=False, timeout=10.0)
