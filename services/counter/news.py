"""What became of alerts' pages, brought to the counters: the page news the pager writes in the same MULTI as each
page change (contracts.py, item 2), read by every counter worker as one consumer group."""

from __future__ import annotations

import logging

import redis

from services.domain import alerts
from services.domain.branch import Branch
from services.domain.contracts import PageEvent
from services.runtime import consumer, logs

log = logging.getLogger("lobby.counter")


def handler(branches: dict[str, Branch]) -> consumer.Handle:
    """Return what a counter worker does with a batch of page news: record each on its alerts and tell its
    terminal (idempotent: news read twice records the same)."""

    def handle(r: redis.Redis, entries: list[consumer.Entry], who: str) -> None:
        for entry_id, fields in entries:
            token = logs.job_context(f"page-news-{entry_id}", fields.get("branch"), consumer=who)
            try:
                branch = branches.get(fields.get("branch", ""))
                if branch is None or "event" not in fields:
                    log.warning("page news %s for a branch this worker does not serve; left", entry_id)
                    continue
                alerts.apply_page_event(r, branch, PageEvent.model_validate_json(fields["event"]))
            except (redis.ConnectionError, redis.TimeoutError):
                raise  # the entries stay pending; this worker or another reads them again
            except Exception:
                log.exception("could not apply page news %s", entry_id)
            finally:
                logs.CONTEXT.reset(token)

    return handle
