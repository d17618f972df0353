"""Redis connections: one pool per process and purpose, created on first use."""

from __future__ import annotations

from functools import lru_cache
from urllib.parse import urlsplit

import redis
from redis.sentinel import Sentinel

from services.common.config import redis_url_for, settings

# Plain calls must fail fast when Redis is away (the APIs answer 503 within two seconds).
COMMAND_TIMEOUT_S = 1.5
# Stream readers block up to KEEPALIVE_S in XREAD, so their socket waits longer than that.
STREAM_TIMEOUT_S = 25.0
# Connections a pool may open. redis-py 8 caps a pool at 100 by default, and every Server-Sent Events client
# holds a stream connection for as long as it listens: the 101st live screen got a 500 (BENCHMARKS.md, B4).
# Room for every thread of a web service (services/stack.py), and more.
MAX_CONNECTIONS = 4096


@lru_cache(maxsize=64)
def _client(url: str, *, decode: bool, timeout: float) -> redis.Redis:
    if url.startswith("sentinel://"):
        return _sentinel_client(url, decode=decode, timeout=timeout)
    return redis.Redis.from_url(
        url,
        decode_responses=decode,
        socket_timeout=timeout,
        socket_connect_timeout=COMMAND_TIMEOUT_S,
        health_check_interval=30,
        retry_on_timeout=False,
        max_connections=MAX_CONNECTIONS,
    )


def _sentinel_client(url: str, *, decode: bool, timeout: float) -> redis.Redis:
    """Return a client of the master the Sentinels name: after a failover its connections find the new one."""
    parts = urlsplit(url)
    sentinels = settings().sentinels
    if not sentinels:
        raise ValueError(f"{url} needs REDIS_SENTINELS (host:port,host:port,...)")
    sentinel = Sentinel(list(sentinels), socket_timeout=COMMAND_TIMEOUT_S,
                        socket_connect_timeout=COMMAND_TIMEOUT_S)
    return sentinel.master_for(
        parts.netloc, db=int(parts.path.strip("/") or 0), decode_responses=decode, socket_timeout=timeout,
        socket_connect_timeout=COMMAND_TIMEOUT_S, health_check_interval=30, retry_on_timeout=False,
        max_connections=MAX_CONNECTIONS,
    )


# How long a write that must survive a failover waits for a replica to have it.
REPLICA_WAIT_MS = 1000


def replicated(r: redis.Redis) -> None:
    """With Sentinels, wait until a replica has what this client wrote; else fail (the API answers 503).

    Replication is asynchronous: a primary that dies just after answering can take the last writes with
    it. An alert must not be lost that way, so its 202 waits for a replica's copy (Redis's WAIT) whenever
    a replica is connected.
    """
    if not settings().sentinels:
        return
    role = r.execute_command("ROLE")
    # With no replica connected there is nothing to fail over to: the write is as safe as it can be.
    if len(role) > 2 and role[2] and r.wait(1, REPLICA_WAIT_MS) < 1:
        raise redis.ConnectionError("no replica acknowledged the write in time")


def for_branch(branch_id: str) -> redis.Redis:
    """Return the plain client of the Redis the branch lives on."""
    return get_redis(redis_url_for(branch_id))


def rq_for_branch(branch_id: str) -> redis.Redis:
    """Return the RQ client (bytes replies) of the Redis the branch lives on."""
    return get_rq_redis(redis_url_for(branch_id))


def get_redis(url: str | None = None) -> redis.Redis:
    """Return the shared client (str replies) for plain commands."""
    return _client(url or settings().redis_url, decode=True, timeout=COMMAND_TIMEOUT_S)


def get_stream_redis(url: str | None = None) -> redis.Redis:
    """Return the client for blocking stream reads."""
    return _client(url or settings().redis_url, decode=True, timeout=STREAM_TIMEOUT_S)


def get_rq_redis(url: str | None = None) -> redis.Redis:
    """Return the client RQ needs (bytes replies)."""
    return _client(url or settings().redis_url, decode=False, timeout=10.0)
