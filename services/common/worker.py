"""Run an RQ worker for one service's queue, with the scheduler and periodic housekeeping."""

from __future__ import annotations

import itertools
import logging
import os
import socket
import threading
import time
from collections.abc import Callable
from typing import Any

import redis
from rq import SimpleWorker
from rq.defaults import DEFAULT_LOGGING_DATE_FORMAT, DEFAULT_LOGGING_FORMAT
from rq.scheduler import RQScheduler
from rq.serializers import JSONSerializer

from services.common import contracts, logs
from services.common.redis import get_rq_redis

log = logging.getLogger("lobby.worker")
# RQ's scheduler wakes once a second. It moves the jobs RQ retries after a failure (contracts.JOB_RETRY) and
# any job enqueued for a time; polling ten times a second puts them back in the queue as soon as they are due.
# (Page timers were scheduled jobs too, up to 1.3 s late: the pager workers now fire them from their sorted
# set themselves, services/pager/escalation.py.)
SCHEDULER_POLL_S = 0.1
HEARTBEAT_S = 1.0


class LobbyScheduler(RQScheduler):
    """RQ's scheduler, polling for due jobs every SCHEDULER_POLL_S; heartbeats and lock TTLs as RQ's."""

    def work(self) -> None:
        self._install_signal_handlers()
        self.register_birth()
        last_beat = 0.0
        while True:
            if self._stop_requested:
                self.stop()
                break
            if self.should_reacquire_locks:
                self.acquire_locks()
            if time.monotonic() - last_beat >= HEARTBEAT_S:
                self.heartbeat()
                last_beat = time.monotonic()
            self.enqueue_scheduled_jobs()
            time.sleep(SCHEDULER_POLL_S)


class LobbyWorker(SimpleWorker):
    """RQ's SimpleWorker (no fork per job: pages are latency-critical) with the LobbyScheduler."""

    def perform_job(self, job: Any, queue: Any, *args: Any, **kwargs: Any) -> bool:
        """Run one job with its id and branch on every log line it writes."""
        payload = job.args[0] if job.args and isinstance(job.args[0], dict) else {}
        token = logs.job_context(job.id, payload.get("branch"))
        try:
            return super().perform_job(job, queue, *args, **kwargs)
        finally:
            logs.CONTEXT.reset(token)

    def _start_scheduler(self, burst: bool = False, logging_level: str | None = "INFO",
                         date_format: str = DEFAULT_LOGGING_DATE_FORMAT,
                         log_format: str = DEFAULT_LOGGING_FORMAT) -> None:
        self.scheduler = LobbyScheduler(
            self.queues, connection=self.connection,
            logging_level=logging_level if logging_level is not None else self.log.level,
            date_format=date_format, log_format=log_format, serializer=self.serializer,
        )
        self.scheduler.acquire_locks()
        if not self.scheduler.acquired_locks:
            return
        if burst:
            try:
                self.scheduler.register_birth()
                self.scheduler.enqueue_scheduled_jobs()
            finally:
                self.scheduler.release_locks()
                self.scheduler.register_death()
        else:
            self.scheduler.start()


def _every(interval_s: float, task: Callable[[], object], stop: threading.Event) -> None:
    while not stop.is_set():
        try:
            task()
        except Exception:
            log.exception("periodic task %s failed", getattr(task, "__name__", task))
        stop.wait(interval_s)


RECONNECT_FIRST_S, RECONNECT_MAX_S = 0.2, 3.0
# How long a stopping worker waits for its background threads to finish what they hold.
BACKGROUND_JOIN_S = 2.0


def _stop_asked(worker: LobbyWorker | None) -> bool:
    """Say whether a signal asked the worker to stop (RQ marks a warm shutdown with its date)."""
    return worker is not None and (worker._stop_requested or worker._shutdown_requested_date is not None)


def run(queue_name: str, *, periodic: list[tuple[float, Callable[[], object]]] | None = None,
        background: list[Callable[[threading.Event], object]] | None = None, burst: bool = False) -> None:
    """Work the queue until stopped. SimpleWorker: no fork per job, since pages are latency-critical.

    Each periodic task runs every interval on a thread of its own; each background task (such as the pager's
    page-request consumer) runs on a thread of its own until the event it is given is set, when the worker stops.
    """
    connection = get_rq_redis()
    stop = threading.Event()
    for interval_s, task in periodic or []:
        threading.Thread(target=_every, args=(interval_s, task, stop), daemon=True,
                         name=f"periodic-{getattr(task, '__name__', 'task')}").start()
    threads = [threading.Thread(target=task, args=(stop,), daemon=True,
                                name=f"background-{getattr(task, '__name__', 'task')}") for task in background or []]
    for thread in threads:
        thread.start()
    delay_s = RECONNECT_FIRST_S
    try:
        for attempt in itertools.count():
            # Redis restarted or failed over: RQ's loop gives up ("unhandled exception, quitting") or raises,
            # and so does a new worker, which names itself to Redis. Wait for Redis and work again rather
            # than leave the queue unworked until someone restarts us; the jobs stay queued in Redis
            # meanwhile. A stop requested by a signal ends it.
            worker = None
            try:
                # A fresh name each time: the lost worker's registration may still stand in Redis.
                worker = LobbyWorker(
                    [contracts.queue(queue_name, connection)], connection=connection, serializer=JSONSerializer,
                    name=f"{queue_name}-{socket.gethostname()}-{os.getpid()}-{attempt}",
                )
                worker.work(burst=burst, with_scheduler=True, logging_level="INFO")
                reason: object = "the worker loop ended on an error"
            except (redis.ConnectionError, redis.TimeoutError, redis.BusyLoadingError) as exc:
                if burst:
                    raise
                reason = exc
            if burst or _stop_asked(worker):
                return
            log.warning("lost Redis (%s); working again in %.1f s", reason, delay_s)
            time.sleep(delay_s)
            if _stop_asked(worker):
                return
            delay_s = min(delay_s * 2, RECONNECT_MAX_S)
    finally:
        stop.set()
        for thread in threads:  # they notice within a second (a blocking read); daemons, so never held longer
            thread.join(BACKGROUND_JOIN_S)
