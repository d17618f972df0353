"""Redis clients: one pool per process, Redis and purpose, made on first use."""

from __future__ import annotations

import os
import re
import socket
from functools import lru_cache
from urllib.parse import urlsplit

import redis
from redis.sentinel import Sentinel

# Plain calls must fail fast when Redis is away (the APIs answer 503 within two seconds).
COMMAND_TIMEOUT_S = 1.5
# Stream readers block up to KEEPALIVE_S in XREAD, so their socket waits longer than that.
STREAM_TIMEOUT_S = 25.0
# Connections a pool may open. A web process serves its live streams from a few readers of its own
# (services/web/hub.py), so its pool only carries requests, each a few round trips long: past this many at
# once, a request waits up to COMMAND_TIMEOUT_S for a connection to come free. So each process holds a bounded
# number of connections, however many clients it serves.
MAX_CONNECTIONS = 16
# What a client is for: plain commands (str replies), blocking stream reads (str replies, a socket that waits
# longer than a read blocks), or RQ (bytes replies).
PLAIN, STREAM, RQ = "plain", "stream", "rq"
_KINDS = {PLAIN: (True, COMMAND_TIMEOUT_S), STREAM: (True, STREAM_TIMEOUT_S), RQ: (False, 10.0)}


# How this process names its connections (CLIENT SETNAME): lobby/<role>/<host>/<pid>, so that Redis's CLIENT
# LIST tells which process holds which (`connections`, `lobby status`, /metrics).
_name: list[str] = []


def process_label(role: str) -> str:
    """Name this process after its role, host and pid: <role>/<host>/<pid>."""
    return f"{role}/{socket.gethostname()}/{os.getpid()}"


def name_process(role: str) -> str:
    """Name this process's Redis connections from now on after its role (kiosk-web, pager-worker...)."""
    _name[:] = [f"lobby/{process_label(role)}"]
    client.cache_clear()
    return _name[0]


@lru_cache(maxsize=64)
def client(url: str, purpose: str = PLAIN, sentinels: tuple[tuple[str, int], ...] = ()) -> redis.Redis:
    """Return this process's client of a Redis for a purpose; a sentinel://<master>/<db> URL asks the Sentinels
    where the master is, so that after a failover its connections find the new one."""
    return _made(url, purpose, sentinels, max_connections=MAX_CONNECTIONS)


def dedicated(url: str, purpose: str = STREAM, sentinels: tuple[tuple[str, int], ...] = ()) -> redis.Redis:
    """Return a client of one connection of its own (a reader that blocks on it for its whole life)."""
    return _made(url, purpose, sentinels, single_connection_client=True)


def _made(url: str, purpose: str, sentinels: tuple[tuple[str, int], ...], **extra: object) -> redis.Redis:
    decode, timeout = _KINDS[purpose]
    options = dict(decode_responses=decode, socket_timeout=timeout, socket_connect_timeout=COMMAND_TIMEOUT_S,
                   health_check_interval=30, retry_on_timeout=False, client_name=_name[0] if _name else None,
                   **extra)
    if not url.startswith("sentinel://"):
        if "max_connections" in options:
            # A pool that makes a request wait for a connection rather than fail past its size.
            pool = redis.BlockingConnectionPool.from_url(url, timeout=COMMAND_TIMEOUT_S, **options)
            return redis.Redis(connection_pool=pool)
        return redis.Redis.from_url(url, **options)
    if not sentinels:
        raise ValueError(f"{url} needs REDIS_SENTINELS (host:port,host:port,...)")
    if options.pop("single_connection_client", False):
        options["max_connections"] = 1  # master_for makes a pool of its own each time: one connection of its own
    parts = urlsplit(url)
    sentinel = Sentinel(list(sentinels), socket_timeout=COMMAND_TIMEOUT_S, socket_connect_timeout=COMMAND_TIMEOUT_S)
    return sentinel.master_for(parts.netloc, db=int(parts.path.strip("/") or 0), **options)


def connections(r: redis.Redis) -> dict[str, int]:
    """Return how many connections Redis has, by the role that named them (`name_process`; "other" unnamed)."""
    counts: dict[str, int] = {}
    for entry in r.client_list():
        name = entry.get("name", "")
        role = name.split("/")[1] if name.startswith("lobby/") and name.count("/") >= 3 else "other"
        counts[role] = counts.get(role, 0) + 1
    return counts


# Errors with which a reachable Redis refuses writes for a while, whatever the command: out of memory under
# noeviction (OOM), a replica (READONLY), a failed snapshot (MISCONF), a master without the replicas
# min-replicas-to-write asks for (NOREPLICAS) or cut from its master (MASTERDOWN). LOADING is a BusyLoadingError,
# which redis-py makes a ConnectionError. The code starts the reply, or follows ": " where a pipeline's command
# number is put before it, or ": -" inside the script error of Redis 6.
REFUSING_WRITES = re.compile(r"(?:^|: -?)(?:OOM|READONLY|MISCONF|NOREPLICAS|MASTERDOWN|LOADING) ")


def refuses_writes(exc: redis.ResponseError) -> bool:
    """Say whether Redis refused for now to change anything (retry later), not that the command was wrong."""
    if isinstance(exc, (redis.exceptions.OutOfMemoryError, redis.exceptions.ReadOnlyError,
                        redis.exceptions.MasterDownError)):
        return True
    return bool(REFUSING_WRITES.search(str(exc)))
