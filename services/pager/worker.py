"""What the pager worker runs: the page-request consumer (alerts into pages), the timers of pages (every
pages.POLL_S), the sweeps of the outbox and of pages whose condition ended (every second), and every minute
the archive of closed days (the RQ queue `pager` runs its jobs: services/pager/archive.py) and retention."""

from __future__ import annotations

import threading

from services.domain import pages
from services.domain.contracts import PAGE_REQUESTS, PAGER
from services.pager import archive, delivery, intake, retention
from services.records import database
from services.runtime import consumer
from services.runtime.settings import Context
from services.runtime.worker import Work

SWEEP_EVERY_S = 1.0
RETENTION_EVERY_S = 60.0


def work(ctx: Context) -> Work:
    r, mine = ctx.redis(), ctx.on()
    by_id = {b.id: b for b in mine}
    name = consumer.consumer_name(PAGER)
    handle = intake.handler(by_id)

    def read_requests(stop: threading.Event) -> None:
        consumer.consume(PAGE_REQUESTS, name, ctx.stream_redis, ctx.redis, handle, stop)

    def sweep() -> None:
        delivery.sweep_outbox(r, by_id, ctx.settings.outbox_grace_s)
        delivery.clear_ended(r, mine)

    def keep_records() -> None:
        db = database.engine(ctx.settings.database_url) if ctx.settings.database_url else None
        if db is not None:
            archive.enqueue_due(r, ctx.rq(), mine)
        for branch in mine:
            late = (lambda day, b=branch: archive.append_late_events(r, db, b, day)) if db is not None else None
            retention.remove_archived_days(r, branch, before=late)
            retention.remove_old_pages(r, branch)

    return Work(service=PAGER, queue=PAGER,
                every=[(pages.POLL_S, lambda: pages.fire_due(r, mine)), (SWEEP_EVERY_S, sweep),
                       (RETENTION_EVERY_S, keep_records)],
                consumers=[read_requests], once=[lambda: consumer.drain(r, PAGE_REQUESTS, name, handle)])
