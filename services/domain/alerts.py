"""Alerts a counter raises for the lobby manager, and the outbox that makes their pages certain.

An alert is written with its page request in the outbox, and an entry naming it in the page-request
stream the pager workers read, in the same MULTI as the state change that caused it. A pager worker
takes the entry within milliseconds and makes the page. If the entry is lost (a worker killed after
reading it, every pager worker down), the pager's sweeper finds the request still in the outbox and
sends it again; the pager creates one page per alert id however often it is asked.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Sequence
from datetime import datetime
from typing import Any

import redis

from services.domain import contracts, feeds, keys, once
from services.domain.branch import Branch
from services.domain.clock import local_iso, parse_iso, to_ms
from services.domain.contracts import PageEvent, PageKind, PageRequest, Priority
from services.domain.durable import replicated
from services.domain.limits import Allowance, RateLimited
from services.domain.schemas import Alert

SENT, ACKNOWLEDGED, RESOLVED = "sent", "acknowledged", "resolved"
# Terminal stream event types.
COUNTER_EVENT, ALERT_ACKNOWLEDGED, REPLY, ALERT_EVENT = "counter", "alert_acknowledged", "reply", "alert"


def new_id(moment: datetime) -> str:
    return f"a{to_ms(moment):x}-{secrets.token_hex(4)}"


def stage(pipe: redis.client.Pipeline, request: PageRequest) -> None:
    """Add the alert, its outbox entry and its entry for the pager workers to a MULTI that is about to run."""
    record(pipe, request)
    contracts.request_page(pipe, request)


def record(pipe: redis.client.Pipeline, request: PageRequest) -> None:
    """Add the alert and its outbox entry to a MULTI, without handing it to the pager (only its sweeper finds it)."""
    branch_id = request.branch
    pipe.hset(keys.alert(branch_id, request.alert_id), mapping=_new_alert(request))
    pipe.hset(keys.outbox(branch_id), request.alert_id, request.model_dump_json())
    pipe.zadd(keys.outbox_times(branch_id), {request.alert_id: to_ms(parse_iso(request.created_at))})
    pipe.sadd(keys.outbox_branches(), branch_id)


def page_request(branch: Branch, counter_id: str | None, kind: PageKind, priority: Priority, message: str,
                 details: dict[str, Any], moment: datetime) -> PageRequest:
    """Return what a counter asks the pager for at a moment, with a new alert id; without a counter (a screen
    offline, a line too long), counter and window are empty."""
    counter = branch.counter(counter_id) if counter_id is not None else None
    assert counter is not None or counter_id is None
    return PageRequest(
        branch=branch.id, alert_id=new_id(moment), kind=kind, priority=priority,
        counter=counter_id or "", window=counter.window if counter else "", message=message, details=details,
        created_at=local_iso(branch, moment),
    )


def _new_alert(request: PageRequest) -> dict[str, str]:
    fields = {"id": request.alert_id, "kind": request.kind.value, "counter": request.counter, "status": SENT,
              "created_at": request.created_at}
    if request.details.get("test"):
        fields["test"] = "1"
    return fields


def raise_alert(r: redis.Redis, request: PageRequest, allowances: Sequence[Allowance] = (),
                once_: once.Once | None = None) -> Alert:
    """Record an alert with its outbox entry and hand it to the pager workers, in one MULTI; return it as written.

    The alert counts in every allowance, or is refused (RateLimited, nothing written) when one is used up: the
    check and the count are in the same transaction, so presses at once cannot all pass the check first.
    Under a Once that raised an alert already, that alert is returned and nothing is written or counted.
    The answer is built from what was written, not read back: the teller's press waits one round trip less.
    """
    found: dict[str, str] = {}

    def write(pipe: redis.client.Pipeline) -> None:
        found.clear()
        kept = once.kept(pipe, once_)
        if kept is not once.MISSING:
            found["kept"] = kept
            return
        if allowances:
            pipe.watch(*(a.key for a in allowances))
            for index, (allowance, used) in enumerate(zip(allowances, pipe.mget([a.key for a in allowances]),
                                                          strict=True)):
                if int(used or 0) >= allowance.limit:
                    raise RateLimited(index)
        pipe.multi()
        for allowance in allowances:
            pipe.incr(allowance.key)
            pipe.expire(allowance.key, allowance.window_s)
        stage(pipe, request)
        once.keep(pipe, once_, request.alert_id)

    r.transaction(write)
    if "kept" in found:
        alert = load(r, request.branch, found["kept"])
        assert alert is not None, "a kept alert was written in the same MULTI"
        return alert
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
        replied_by=raw.get("replied_by") or None, reply_preset=raw.get("reply_preset") or None,
        resolved_by=raw.get("resolved_by") or None, resolution=raw.get("resolution") or None,
        paged=json.loads(raw["paged"]) if raw.get("paged") else [], test=raw.get("test") == "1",
        created_at=raw["created_at"],
    )


def _fields(event: PageEvent) -> dict[str, str]:
    """Return what an alert records of its page's news (names only where the event carries them: never for a
    distress call, whose terminal a customer can read)."""
    fields = {"page_id": event.page_id}
    if event.paged:
        fields["paged"] = json.dumps([p.model_dump(mode="json") for p in event.paged])
    if event.status in (ACKNOWLEDGED, RESOLVED):  # a press folded into a page someone took, or one born cleared
        fields["status"] = event.status
        if event.event == "created" and event.by:
            fields["acknowledged_by"] = event.by_name or event.by
    if event.event == "acknowledged":
        fields.update(status=ACKNOWLEDGED, acknowledged_by=event.by_name or event.by or "",
                      acknowledged_at=event.at)
    elif event.event == "replied":
        fields.update(reply=event.message or "", replied_by=event.by_name or event.by or "",
                      reply_preset=event.preset or "")
    elif event.event in ("resolved", "cleared", "expired"):
        fields.update(status=RESOLVED, resolved_by=event.by_name or event.by or "", resolution=event.event)
    return fields


def apply_page_event(r: redis.Redis, branch: Branch, event: PageEvent) -> None:
    """Record on the alert what became of its page, and tell the counter's terminal (page news, read by the
    counter workers: services/counter/news.py)."""
    alert_keys = [keys.alert(event.branch, a) for a in dict.fromkeys([event.alert_id, *event.alert_ids])]
    fields = _fields(event)

    def write(pipe: redis.client.Pipeline) -> bool:
        # Update only alerts that still exist, in one MULTI under WATCH: an alert removed meanwhile (by
        # retention) must not come back as a partial hash.
        present = [key for key in alert_keys if pipe.exists(key)]
        pipe.multi()
        for key in present:
            pipe.hset(key, mapping=fields)
        return bool(present)

    if not r.transaction(write, *alert_keys, value_from_callable=True):
        return
    terminal = keys.terminal(event.counter)
    alert = load(r, event.branch, event.alert_id)
    data = {"alert": alert.model_dump(mode="json") if alert else None, "at": event.at}
    if event.event == "acknowledged":
        feeds.append(r, branch, terminal, ALERT_ACKNOWLEDGED, {**data, "by": event.by, "by_name": event.by_name})
    elif event.event == "replied":
        feeds.append(r, branch, terminal, REPLY, {**data, "message": event.message, "preset": event.preset,
                                                  "by": event.by, "by_name": event.by_name})
    else:
        feeds.append(r, branch, terminal, ALERT_EVENT, {**data, "event": event.event})
