"""Run an RQ worker for one service's queue, with the scheduler and periodic housekeeping."""

from __future__ import annotations

import logging
import os
import socket
import threading
from collections.abc import Callable

from rq import SimpleWorker
from rq.serializers import JSONSerializer

from services.common import contracts
from services.common.redis import get_rq_redis

log = logging.getLogger("lobby.worker")


def _every(interval_s: float, task: Callable[[], object], stop: threading.Event) -> None:
    while not stop.is_set():
        try:
            task()
        except Exception:
            log.exception("periodic task %s failed", getattr(task, "__name__", task))
        stop.wait(interval_s)


def run(queue_name: str, *, periodic: list[tuple[float, Callable[[], object]]] | None = None,
        burst: bool = False) -> None:
    """Work the queue until stopped. SimpleWorker: no fork per job, since pages are latency-critical."""
    connection = get_rq_redis()
    worker = SimpleWorker(
        [contracts.queue(queue_name, connection)], connection=connection, serializer=JSONSerializer,
        name=f"{queue_name}-{socket.gethostname()}-{os.getpid()}",
    )
    stop = threading.Event()
    for interval_s, task in periodic or []:
        threading.Thread(target=_every, args=(interval_s, task, stop), daemon=True,
                         name=f"periodic-{getattr(task, '__name__', 'task')}").start()
    try:
        worker.work(burst=burst, with_scheduler=True, logging_level="INFO")
    finally:
        stop.set()
