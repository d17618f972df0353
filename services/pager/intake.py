"""The pager workers' intake: page requests handed over by the page-request stream of their Redis.

A counter writes an alert, its PageRequest in the branch's outbox, and an entry naming it (branch id, alert
id) in `keys.page_requests()`, in one MULTI (services/domain/alerts.py). Every pager worker runs one consumer of
the group `pager` (services/runtime/consumer.py), so Redis wakes exactly one blocked worker per entry, which
reads the request from the outbox, with where the managers' devices stand (whom a new page goes to), and
delivers it (`delivery.deliver`, idempotent by alert id). That is two round trips from the counter's write to
the page's MULTI, where an RQ job per page cost its enqueue in the
teller's request, a dequeue and RQ's bookkeeping (BENCHMARKS.md, B1).

Recovery does not depend on the stream: the outbox is the durable record, and the sweeper
(`delivery.sweep_outbox`) delivers whatever stays in it past the grace time, whether its entry was lost with a
killed worker or never read.
"""

from __future__ import annotations

import logging

import redis

from services.domain import keys, presence
from services.domain.branch import Branch
from services.domain.clock import SYSTEM
from services.domain.contracts import PageRequest
from services.pager.delivery import deliver
from services.runtime import consumer, logs

log = logging.getLogger("lobby.pager")


def handler(mine: dict[str, Branch]) -> consumer.Handle:
    """Return what a pager worker does with a batch of page requests: deliver each from the outbox."""

    def handle(r: redis.Redis, entries: list[consumer.Entry], who: str) -> None:
        for entry_id, fields in entries:
            branch_id, alert_id = fields.get("branch"), fields.get("alert")
            token = logs.job_context(f"page-request-{entry_id}", branch_id, consumer=who)
            try:
                branch = mine.get(branch_id or "")
                if branch is None or not alert_id:
                    # Not a branch of this worker's Redis (a config this worker has not loaded yet): its request
                    # stays in the outbox, for the sweeper of a worker that knows the branch.
                    log.warning("page request for alert %s of branch %s, which this worker does not serve; left in "
                                "the outbox", alert_id, branch_id)
                    continue
                # The request, and where the managers' devices stand (whom a new page goes to): one round trip.
                now_ms = SYSTEM.now_ms()
                pipe = r.pipeline(transaction=False)
                pipe.hget(keys.outbox(branch.id), alert_id)
                presence.queue_route(pipe, branch)
                replies = iter(pipe.execute())
                raw = next(replies)
                if raw is None:
                    continue  # delivered already (by the sweeper, or before this worker lost Redis)
                deliver(r, branch, PageRequest.model_validate_json(raw),
                        paged=presence.read_route(branch, replies, now_ms))
            except (redis.ConnectionError, redis.TimeoutError):
                raise  # the entries stay pending; this worker or another reads them again
            except Exception:
                log.exception("could not deliver alert %s of %s; the sweeper delivers it from the outbox",
                              alert_id, branch_id)
            finally:
                logs.CONTEXT.reset(token)

    return handle
