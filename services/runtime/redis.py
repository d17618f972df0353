"""Redis clients: one pool per process, Redis and purpose, made on first use."""

from __future__ import annotations

import re
from functools import lru_cache
from urllib.parse import urlsplit

import redis
from redis.sentinel import Sentinel

# Plain calls must fail fast when Redis is away (the APIs answer 503 within two seconds).
COMMAND_TIMEOUT_S = 1.5
# Stream readers block up to KEEPALIVE_S in XREAD, so their socket waits longer than that.
STREAM_TIMEOUT_S = 25.0
# Connections a pool may open. redis-py caps a pool at 100 by default, and every Server-Sent Events client
# holds a stream connection for as long as it listens (BENCHMARKS.md, B4): room for every thread of a web
# service (services/ops/stack.py), and more.
MAX_CONNECTIONS = 4096
# What a client is for: plain commands (str replies), blocking stream reads (str replies, a socket that waits
# longer than a read blocks), or RQ (bytes replies).
PLAIN, STREAM, RQ = "plain", "stream", "rq"
_KINDS = {PLAIN: (True, COMMAND_TIMEOUT_S), STREAM: (True, STREAM_TIMEOUT_S), RQ: (False, 10.0)}


@lru_cache(maxsize=64)
def client(url: str, purpose: str = PLAIN, sentinels: tuple[tuple[str, int], ...] = ()) -> redis.Redis:
    """Return this process's client of a Redis for a purpose; a sentinel://<master>/<db> URL asks the Sentinels
    where the master is, so that after a failover its connections find the new one."""
    decode, timeout = _KINDS[purpose]
    options = dict(decode_responses=decode, socket_timeout=timeout, socket_connect_timeout=COMMAND_TIMEOUT_S,
                   health_check_interval=30, retry_on_timeout=False, max_connections=MAX_CONNECTIONS)
    if not url.startswith("sentinel://"):
        return redis.Redis.from_url(url, **options)
    if not sentinels:
        raise ValueError(f"{url} needs REDIS_SENTINELS (host:port,host:port,...)")
    parts = urlsplit(url)
    sentinel = Sentinel(list(sentinels), socket_timeout=COMMAND_TIMEOUT_S, socket_connect_timeout=COMMAND_TIMEOUT_S)
    return sentinel.master_for(parts.netloc, db=int(parts.path.strip("/") or 0), **options)


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
