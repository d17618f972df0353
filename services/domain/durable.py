"""Writes that must survive a failover: an alert, a pause, a resume."""

from __future__ import annotations

import redis
from redis.sentinel import SentinelConnectionPool

# How long a write that must survive a failover waits for a replica to have it.
REPLICA_WAIT_MS = 1000


def replicated(r: redis.Redis) -> None:
    """On a Redis the Sentinels watch, wait until a replica has what this client wrote; else fail (the API
    answers 503 and the terminal presses again).

    Replication is asynchronous: a primary that dies just after answering can take the last writes with it. An
    alert must not be lost that way, so its 202 waits for a replica's copy (Redis's WAIT) whenever a replica is
    connected.
    """
    if not isinstance(r.connection_pool, SentinelConnectionPool):
        return
    role = r.execute_command("ROLE")
    # With no replica connected there is nothing to fail over to: the write is as safe as it can be.
    if len(role) > 2 and role[2] and r.wait(1, REPLICA_WAIT_MS) < 1:
        raise redis.ConnectionError("no replica acknowledged the write in time")
