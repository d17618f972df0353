"""Pages: what the lobby manager's device shows, one per alert, with their audit trail.

A page is written, then announced on the device stream, in one MULTI: no device hears of a page
that is not stored, and none is stored unheard. Creation is idempotent by alert id (PagerDuty's
dedup key): asked twice, the pager makes one page.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from typing import Any

import redis

from services.common import clock, contracts, keys, metrics, streams
from services.common.config import Branch, Manager
from services.common.contracts import PAGE_EVENT, PageEvent, PageRequest
from services.common.errors import Conflict, NotFound
from services.common.schemas import AuditEntry, Page
from services.pager import escalation

OPEN, ACKNOWLEDGED, RESOLVED = "open", "acknowledged", "resolved"
PAGE, PAGE_UPDATED = "page", "page_updated"
STATUSES = (OPEN, ACKNOWLEDGED, RESOLVED)
PRIORITY_ORDER = {"urgent": 0, "high": 1, "normal": 2, "low": 3}


def new_id() -> str:
    return f"p{clock.now_ms():x}-{secrets.token_hex(3)}"


def _audit(event: str, by: str | None = None, **extra: Any) -> AuditEntry:
    return AuditEntry(at=clock.iso(clock.now()), event=event, by=by, **extra)


FOLDABLE = ("distress", "ask_supervisor", "help")


def create(r: redis.Redis, branch: Branch, request: PageRequest) -> tuple[Page, str]:
    """Create the page for an alert, fold it into the open page of the same call, or return the page it
    already has; say which ("created", "folded" or "existing")."""
    dedup, open_for = keys.page_for_alert(branch.id), keys.page_open_for(branch.id)
    fold_field = f"{request.counter}:{request.kind.value}"
    made: dict[str, Any] = {}

    def write(pipe: redis.client.Pipeline) -> None:
        made.clear()
        existing = pipe.hget(dedup, request.alert_id)
        raw = pipe.get(keys.page(branch.id, existing)) if existing else None
        if raw:
            made["page"], made["outcome"] = Page.model_validate_json(raw), "existing"
            pipe.multi()
            _leave_outbox(pipe, branch.id, request.alert_id)
            return
        folding = pipe.hget(open_for, fold_field) if request.kind.value in FOLDABLE else None
        raw = pipe.get(keys.page(branch.id, folding)) if folding else None
        target = Page.model_validate_json(raw) if raw else None
        if target is not None and target.status != RESOLVED:
            target.presses += 1
            target.details.setdefault("alert_ids", []).append(request.alert_id)
            if request.details.get("question"):
                target.details.setdefault("questions", []).append(request.details["question"])
            target.audit.append(_audit("pressed", note=f"press {target.presses} at {request.created_at}"))
            made["page"], made["outcome"] = target, "folded"
            pipe.multi()
            pipe.hset(dedup, request.alert_id, target.id)
            pipe.set(keys.page(branch.id, target.id), target.model_dump_json())
            streams.append(pipe, keys.stream(branch.id, keys.DEVICE), PAGE_UPDATED,
                           {"page": target.model_dump(mode="json"), "change": "pressed"})
            _leave_outbox(pipe, branch.id, request.alert_id)
            return
        first = branch.managers[0]
        page = Page(
            id=new_id(), kind=request.kind.value, priority=request.priority.value, counter=request.counter,
            window=request.window, message=request.message,
            details={**request.details, "alert_id": request.alert_id, "alert_ids": [request.alert_id]},
            status=OPEN, created_at=clock.local_iso(branch), paged=[first.id],
            audit=[_audit("created", level=0, by=first.id, note=f"alert raised {request.created_at}")],
        )
        score = clock.now_ms()
        timers = escalation.initial_timers(branch, page, score)
        made["page"], made["outcome"], made["timers"] = page, "created", timers
        pipe.multi()
        pipe.hset(dedup, request.alert_id, page.id)
        if request.kind.value in FOLDABLE:
            pipe.hset(open_for, fold_field, page.id)
        pipe.set(keys.page(branch.id, page.id), page.model_dump_json())
        pipe.zadd(keys.pages_all(branch.id), {page.id: score})
        pipe.zadd(keys.pages_active(branch.id), {page.id: score})
        metrics.count(pipe, branch.id, f"pages:{page.kind}:{page.priority}")
        if timers:
            pipe.zadd(keys.timers(branch.id), timers)
        streams.append(pipe, keys.stream(branch.id, keys.DEVICE), PAGE, {"page": page.model_dump(mode="json")})
        _leave_outbox(pipe, branch.id, request.alert_id)

    r.transaction(write, dedup, open_for)
    return made["page"], made["outcome"]


def _leave_outbox(pipe: redis.client.Pipeline, branch_id: str, alert_id: str) -> None:
    pipe.hdel(keys.outbox(branch_id), alert_id)
    pipe.zrem(keys.outbox_times(branch_id), alert_id)


def get(r: redis.Redis, branch_id: str, page_id: str) -> Page:
    raw = r.get(keys.page(branch_id, page_id))
    if raw is None:
        raise NotFound(f"no page {page_id}", code="unknown_page")
    return Page.model_validate_json(raw)


def list_pages(r: redis.Redis, branch_id: str, status: str) -> list[Page]:
    """List pages by status (open, acknowledged, resolved or all): most urgent first, then oldest."""
    index = keys.pages_all(branch_id) if status in (RESOLVED, "all") else keys.pages_active(branch_id)
    ids = r.zrange(index, 0, -1)
    raws = r.mget([keys.page(branch_id, i) for i in ids]) if ids else []
    found = [Page.model_validate_json(raw) for raw in raws if raw]
    if status != "all":
        found = [p for p in found if p.status == status]
    return sorted(found, key=lambda p: (PRIORITY_ORDER[p.priority], p.created_at))


def update(r: redis.Redis, branch: Branch, page_id: str, change: Callable[[Page], Page | None]) -> Page:
    """Apply a change to a page atomically and announce it; change returns None to change nothing."""
    key = keys.page(branch.id, page_id)
    result: dict[str, Page] = {}

    def write(pipe: redis.client.Pipeline) -> None:
        raw = pipe.get(key)
        if raw is None:
            raise NotFound(f"no page {page_id}", code="unknown_page")
        before = Page.model_validate_json(raw)
        after = change(before.model_copy(deep=True))
        result["page"] = after or before
        if after is None:
            return
        pipe.multi()
        pipe.set(key, after.model_dump_json())
        if before.acknowledged_at is None and after.acknowledged_at is not None:
            waited_s = (clock.parse_iso(after.acknowledged_at) - clock.parse_iso(after.created_at)).total_seconds()
            metrics.observe(pipe, branch.id, "ack", after.kind, max(0.0, waited_s), metrics.ACK_BUCKETS_S)
        if after.status != OPEN:
            escalation.cancel(pipe, branch.id, page_id)
        if after.status == RESOLVED:
            pipe.zrem(keys.pages_active(branch.id), page_id)
            if after.kind in FOLDABLE:
                pipe.hdel(keys.page_open_for(branch.id), f"{after.counter}:{after.kind}")
        streams.append(pipe, keys.stream(branch.id, keys.DEVICE), PAGE_UPDATED,
                       {"page": after.model_dump(mode="json")})
        result["changed"] = after

    r.transaction(write, key, keys.timers(branch.id))
    return result["page"]


def acknowledge(r: redis.Redis, branch: Branch, page_id: str, manager: Manager) -> Page:
    """Take the page: the first device to acknowledge owns it; repeats and escalation stop."""

    def change(page: Page) -> Page | None:
        if page.status == ACKNOWLEDGED and page.acknowledged_by == manager.id:
            return None
        if page.status != OPEN:
            raise Conflict(f"page {page.id} is already {page.status}"
                           + (f" by {page.acknowledged_by}" if page.acknowledged_by else ""),
                           code=f"already_{page.status}", page=page.model_dump(mode="json"))
        page.status = ACKNOWLEDGED
        page.acknowledged_by = manager.id
        page.acknowledged_at = clock.local_iso(branch)
        page.audit.append(_audit("acknowledged", manager.id, level=page.escalation_level))
        return page

    page = update(r, branch, page_id, change)
    _tell_counter(branch, page, "acknowledged", manager)
    return page


def resolve(r: redis.Redis, branch: Branch, page_id: str, manager: Manager, note: str | None) -> Page:
    def change(page: Page) -> Page | None:
        if page.status == RESOLVED:
            return None
        if page.status == OPEN:
            page.acknowledged_by = manager.id
            page.acknowledged_at = clock.local_iso(branch)
            page.audit.append(_audit("acknowledged", manager.id, level=page.escalation_level))
        page.status = RESOLVED
        page.resolved_at = clock.local_iso(branch)
        page.resolution_note = note
        page.audit.append(_audit("resolved", manager.id, note=note))
        return page

    page = update(r, branch, page_id, change)
    _tell_counter(branch, page, "resolved", manager)
    return page


def reply(r: redis.Redis, branch: Branch, page_id: str, manager: Manager, message: str) -> Page:
    """Answer the counter (a supervisor's reply); replying also acknowledges an open page."""
    acknowledged_now = False

    def change(page: Page) -> Page | None:
        nonlocal acknowledged_now
        if page.status == RESOLVED:
            raise Conflict(f"page {page.id} is resolved", code="already_resolved")
        at = clock.local_iso(branch)
        if page.status == OPEN:
            page.status, page.acknowledged_by, page.acknowledged_at = ACKNOWLEDGED, manager.id, at
            page.audit.append(_audit("acknowledged", manager.id, level=page.escalation_level))
            acknowledged_now = True
        page.replies.append({"at": at, "by": manager.id, "by_name": manager.name, "message": message})
        page.audit.append(_audit("replied", manager.id, note=message))
        return page

    page = update(r, branch, page_id, change)
    if acknowledged_now:
        _tell_counter(branch, page, "acknowledged", manager)
    _tell_counter(branch, page, "replied", manager, message)
    return page


def _tell_counter(branch: Branch, page: Page, event: str, manager: Manager, message: str | None = None) -> None:
    alert_id = page.details.get("alert_id")
    if not alert_id:
        return
    contracts.enqueue(PAGE_EVENT, PageEvent(
        branch=branch.id, alert_id=alert_id, alert_ids=page.details.get("alert_ids", [alert_id]),
        counter=page.counter, page_id=page.id, event=event,  # type: ignore[arg-type]
        by=manager.id, by_name=manager.name, at=clock.local_iso(branch), message=message,
    ))
