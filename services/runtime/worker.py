"""A service's worker process: what its services/<service>/worker.py says it runs, until it is told to stop.

That is any of: the RQ jobs of its queue (SimpleWorker, no fork per job, with RQ's scheduler for retries), tasks
run every so often on threads of their own (timers, sweeps, the watch), and stream consumers
(services/runtime/consumer.py), each on a thread of its own until the worker stops.
"""

from __future__ import annotations

import contextlib
import itertools
import logging
import os
import signal
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from types import FrameType
from typing import Any

import redis
from rq import SimpleWorker
from rq.exceptions import StopRequested
from rq.serializers import JSONSerializer

from services.domain import keys
from services.runtime import logs, messages
from services.runtime import redis as clients
from services.runtime.settings import Context

log = logging.getLogger("lobby.worker")
RECONNECT_FIRST_S, RECONNECT_MAX_S = 0.2, 3.0
# Every worker says it is alive this often, in a key that lapses when it stops saying so (`lobby status`).
HEARTBEAT_S = 2.0
HEARTBEAT_TTL_S = 15
# How long a stopping worker waits for its threads to finish what they hold.
BACKGROUND_JOIN_S = 2.0


@dataclass
class Work:
    """What one service's worker runs: its RQ queue's jobs (None: it is sent no jobs), tasks to run every so many
    seconds, consumers (each runs until the event it is given is set), and what a burst run does once first."""

    service: str
    queue: str | None = None
    every: list[tuple[float, Callable[[], object]]] = field(default_factory=list)
    consumers: list[Callable[[threading.Event], object]] = field(default_factory=list)
    once: list[Callable[[], object]] = field(default_factory=list)


_CONTEXT: Context | None = None


def context() -> Context:
    """Return the worker's context: RQ calls a job with its payload only, and the job finds the rest here."""
    assert _CONTEXT is not None, "set by run() when the worker starts"
    return _CONTEXT


# Set by a SIGTERM or SIGINT that came while no RQ worker's own handlers were installed: as the process starts,
# and between two RQ workers. An RQ worker that starts after it stops at once.
_STOP = threading.Event()


def _ask_to_stop(signum: int, frame: FrameType | None) -> None:
    _STOP.set()


def _stop_on_signals() -> None:
    """Answer SIGTERM and SIGINT by setting _STOP, until an RQ worker installs its own handlers."""
    signal.signal(signal.SIGTERM, _ask_to_stop)
    signal.signal(signal.SIGINT, _ask_to_stop)


def _default_stop_in_a_child() -> None:
    """Give a process forked while _STOP answers the stop signals (RQ's scheduler, forked before the RQ worker
    installs its handlers) the default ones back: a child's _STOP is nobody's, and a stop sent to it before it
    installs its own handlers would be swallowed, leaving its parent waiting for it forever."""
    for signum in (signal.SIGTERM, signal.SIGINT):
        if signal.getsignal(signum) is _ask_to_stop:
            signal.signal(signum, signal.SIG_DFL if signum == signal.SIGTERM else signal.default_int_handler)


os.register_at_fork(after_in_child=_default_stop_in_a_child)


class LobbyWorker(SimpleWorker):
    """RQ's SimpleWorker, writing each job's id and branch on every log line it writes, and stopping at once when
    it was asked to before its own signal handlers were installed."""

    def _install_signal_handlers(self) -> None:
        super()._install_signal_handlers()
        if _STOP.is_set():  # the work loop checks this first, then tears down (scheduler, registration)
            self._stop_requested = True

    def perform_job(self, job: Any, queue: Any, *args: Any, **kwargs: Any) -> bool:
        payload = job.args[0] if job.args and isinstance(job.args[0], dict) else {}
        token = logs.job_context(job.id, payload.get("branch"))
        try:
            return super().perform_job(job, queue, *args, **kwargs)
        finally:
            logs.CONTEXT.reset(token)


def _name(service: str) -> str:
    return f"{service}-{socket.gethostname()}-{os.getpid()}"


def heartbeat(r: redis.Redis, service: str) -> None:
    """Say this worker process is alive, for HEARTBEAT_TTL_S."""
    name = _name(service)
    pipe = r.pipeline(transaction=False)
    pipe.hset(keys.worker(name), mapping={"name": name, "service": service, "pid": os.getpid(),
                                          "host": socket.gethostname(), "beat": time.time()})
    pipe.expire(keys.worker(name), HEARTBEAT_TTL_S)
    pipe.execute()


def running(r: redis.Redis) -> list[dict[str, str]]:
    """Return the workers alive on a Redis: those whose last heartbeat has not lapsed."""
    names = list(r.scan_iter(keys.worker("*"), count=1000))
    pipe = r.pipeline(transaction=False)
    for name in names:
        pipe.hgetall(name)
    return [found for found in pipe.execute() if found]


def _every(interval_s: float, task: Callable[[], object], stop: threading.Event) -> None:
    while not stop.is_set():
        try:
            task()
        except (redis.ConnectionError, redis.TimeoutError) as exc:  # the reconnect loops say more
            log.warning("periodic task %s: Redis unavailable (%s)", getattr(task, "__name__", task), exc)
        except Exception:
            log.exception("periodic task %s failed", getattr(task, "__name__", task))
        stop.wait(interval_s)


def run(ctx: Context, work: Work, *, burst: bool = False) -> None:
    """Run a service's work until stopped (SIGTERM, SIGINT); with burst, do what is waiting once and return."""
    global _CONTEXT
    _CONTEXT = ctx
    clients.name_process(f"{work.service}-worker")
    if burst:
        for task in work.once:
            task()
        if work.queue:
            _work_queue(ctx, work.queue, burst=True)
        return
    _stop_on_signals()  # before the heartbeat says this worker is up: a stop from then on is never the default kill
    stop = _STOP
    r = ctx.redis()
    every = [(HEARTBEAT_S, lambda: heartbeat(r, work.service)), *work.every]
    threads = [threading.Thread(target=_every, args=(interval_s, task, stop), daemon=True,
                                name=f"every-{getattr(task, '__name__', 'task')}") for interval_s, task in every]
    threads += [threading.Thread(target=task, args=(stop,), daemon=True,
                                 name=f"consumer-{getattr(task, '__name__', 'task')}") for task in work.consumers]
    for thread in threads:
        thread.start()
    try:
        if work.queue:
            _work_queue(ctx, work.queue, burst=False)
        else:
            _wait_for_a_stop_signal(stop)
    finally:
        stop.set()
        for thread in threads:  # they notice within a second (a blocking read); daemons, so never held longer
            thread.join(BACKGROUND_JOIN_S)
        with contextlib.suppress(redis.RedisError):
            r.delete(keys.worker(_name(work.service)))


def _wait_for_a_stop_signal(stop: threading.Event) -> None:
    while not stop.wait(1.0):
        pass


def _stop_asked(worker: LobbyWorker | None) -> bool:
    """Say whether a signal asked the RQ worker to stop (RQ marks a warm shutdown with its date)."""
    return worker is not None and (worker._stop_requested or worker._shutdown_requested_date is not None)


def _work_queue(ctx: Context, queue_name: str, *, burst: bool) -> None:
    """Work an RQ queue until stopped; when Redis goes away, wait for it and work again.

    RQ's loop gives up when Redis restarts or fails over ("unhandled exception, quitting"), and so does a new
    worker, which names itself to Redis: the jobs stay queued in Redis meanwhile, so the worker waits for Redis
    rather than leave the queue unworked until someone restarts it. A stop requested by a signal ends it.
    """
    connection = ctx.rq()
    delay_s = RECONNECT_FIRST_S
    for attempt in itertools.count():
        worker = None
        if _STOP.is_set():
            return
        try:
            # A fresh name each time: the lost worker's registration may still stand in Redis.
            worker = LobbyWorker([messages.queue(queue_name, connection)], connection=connection,
                                 serializer=JSONSerializer,
                                 name=f"{queue_name}-{socket.gethostname()}-{os.getpid()}-{attempt}")
            worker.work(burst=burst, with_scheduler=True, logging_level="INFO")
            reason: object = "the worker loop ended on an error"
        except StopRequested:
            # A stop signal came while RQ tore the worker down after losing Redis (it was joining its scheduler,
            # which it had told to stop): RQ's handler raised it there. The worker is stopping; so are we.
            return
        except (redis.ConnectionError, redis.TimeoutError, redis.BusyLoadingError) as exc:
            if burst:
                raise
            reason = exc
        if burst or _stop_asked(worker):
            return
        log.warning("lost Redis (%s); working again in %.1f s", reason, delay_s)
        # Wait on handlers of our own: RQ's, still installed, would answer a stop by writing to the Redis that is
        # gone, and raise out of the loop.
        _stop_on_signals()
        if _STOP.wait(delay_s):
            return
        delay_s = min(delay_s * 2, RECONNECT_MAX_S)
