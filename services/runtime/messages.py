"""RQ jobs for another service (contracts.py, item 3): enqueued by dotted path with RQ's JSON serializer, one
payload model dumped to plain JSON as the one argument, on the queue named after the service that runs it."""

from __future__ import annotations

from collections.abc import Callable

import redis
from rq import Queue, Retry
from rq.serializers import JSONSerializer

from services.domain.contracts import JobSpec, Payload

JOB_RESULT_TTL_S = 60
JOB_FAILURE_TTL_S = 7 * 24 * 3600
JOB_RETRY = Retry(max=3, interval=[1, 2, 5])

Send = Callable[[JobSpec, Payload], None]


def queue(name: str, connection: redis.Redis) -> Queue:
    return Queue(name, connection=connection, serializer=JSONSerializer)


def enqueue(connection: redis.Redis, spec: JobSpec, payload: Payload, *, job_id: str | None = None,
            retry: Retry = JOB_RETRY) -> None:
    """Enqueue one job for another service on its queue, on the Redis `connection` (RQ's: bytes replies); a
    job_id names a job that must not run twice at once."""
    queue(spec.queue, connection).enqueue(spec.path, payload.model_dump(mode="json"), result_ttl=JOB_RESULT_TTL_S,
                                          failure_ttl=JOB_FAILURE_TTL_S, retry=retry, job_id=job_id)
