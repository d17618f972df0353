"""Alerts a counter raises for the lobby manager, and the outbox that makes their pages certain.

An alert is written with its page request in the outbox, and an entry naming it in the page-request
stream the pager workers read, in the same MULTI as the state change that caused it. A pager worker
takes the entry within milliseconds and makes the page. If the entry is lost (a worker killed after
reading it, every pager worker down), the pager's sweeper finds the request still in the outbox and
sends it again; the pager creates one page per alert id however often it is asked.
"""

from __future__ import annotations

import secrets
from typing import Any

import redis

from services.common import clock, contracts, keys, streams
from services.common.config import Branch
from services.common.contracts import PageEvent, PageKind, PageRequest, Priority
from services.common.redis import replicated
from services.common.schemas import Alert

SENT, ACKNOWLEDGED, RESOLVED = "sent", "acknowledged", "resolved"
# Terminal stream event types.
COUNTER_EVENT, ALERT_ACKNOWLEDGED, REPLY, ALERT_EVENT = "counter", "alert_acknowledged", "reply", "alert"


def new_id() -> str:
    return f"a{clock.now_ms():x}-{secrets.token_hex(4)}"


def stage(pipe: redis.client.Pipeline, request: PageRequest) -> None:
    """Add the alert, its outbox entry and its entry for the pager workers to a MULTI that is about to run."""
    record(pipe, request)
    contracts.request_page(pipe, request)


def record(pipe: redis.client.Pipeline, request: PageRequest) -> None:
    """Add the alert and its outbox entry to a MULTI, without handing it to the pager (only its sweeper finds it)."""
    branch_id = request.branch
    pipe.hset(keys.alert(branch_id, request.alert_id), mapping=_new_alert(request))
    pipe.hset(keys.outbox(branch_id), request.alert_id, request.model_dump_json())
    pipe.zadd(keys.outbox_times(branch_id), {request.alert_id: clock.now_ms()})
    pipe.sadd(keys.outbox_branches(), branch_id)


def page_request(branch: Branch, counter_id: str, kind: PageKind, priority: Priority, message: str,
                 details: dict[str, Any], alert_id: str | None = None) -> PageRequest:
    counter = branch.counter(counter_id)
    assert counter is not None
    return PageRequest(
        branch=branch.id, alert_id=alert_id or new_id(), kind=kind, priority=priority,
        counter=counter_id, window=counter.window, message=message, details=details,
        created_at=clock.local_iso(branch),
    )


def _new_alert(request: PageRequest) -> dict[str, str]:
    return {"id": request.alert_id, "kind": request.kind.value, "counter": request.counter, "status": SENT,
            "created_at": request.created_at}


def raise_alert(r: redis.Redis, request: PageRequest) -> Alert:
    """Record an alert with its outbox entry and hand it to the pager workers, in one MULTI; return it as written.

    The answer is built from what was written, not read back: the teller's press waits one round trip less.
    """
    pipe = r.pipeline()
    stage(pipe, request)
    pipe.execute()
    replicated(r)
    return Alert.model_validate(_new_alert(request))


def load(r: redis.Redis, branch_id: str, alert_id: str) -> Alert | None:
    raw = r.hgetall(keys.alert(branch_id, alert_id))
    if not raw:
        return None
    return Alert(
        id=raw["id"], kind=raw["kind"], counter=raw["counter"], status=raw["status"],
        page_id=raw.get("page_id") or None, acknowledged_by=raw.get("acknowledged_by") or None,
        acknowledged_at=raw.get("acknowledged_at") or None, reply=raw.get("reply") or None,
        created_at=raw["created_at"],
    )


def apply_page_event(r: redis.Redis, event: PageEvent) -> None:
    """Record on the alert what became of its page, and tell the counter's terminal."""
    alert_keys = [keys.alert(event.branch, a) for a in dict.fromkeys([event.alert_id, *event.alert_ids])]

    def write(pipe: redis.client.Pipeline) -> bool:
        # Update only alerts that still exist, in one MULTI under WATCH: an alert removed meanwhile (by
        # retention) must not come back as a partial hash.
        present = [key for key in alert_keys if pipe.exists(key)]
        pipe.multi()
        for key in present:
            pipe.hset(key, "page_id", event.page_id)
            if event.event == "acknowledged":
                pipe.hset(key, mapping={"status": ACKNOWLEDGED, "acknowledged_by": event.by_name or event.by or "",
                                        "acknowledged_at": event.at})
            elif event.event == "replied":
                pipe.hset(key, "reply", event.message or "")
            elif event.event == "resolved":
                pipe.hset(key, "status", RESOLVED)
        return bool(present)

    if not r.transaction(write, *alert_keys, value_from_callable=True):
        return
    terminal = keys.terminal_stream(event.branch, event.counter)
    alert = load(r, event.branch, event.alert_id)
    data = {"alert": alert.model_dump(mode="json") if alert else None, "at": event.at}
    if event.event == "acknowledged":
        streams.append(r, terminal, ALERT_ACKNOWLEDGED, {**data, "by": event.by, "by_name": event.by_name})
    elif event.event == "replied":
        streams.append(r, terminal, REPLY, {**data, "message": event.message, "by": event.by,
                                            "by_name": event.by_name})
    else:
        streams.append(r, terminal, ALERT_EVENT, {**data, "event": event.event})
