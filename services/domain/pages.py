"""Pages: what the managers' devices show, one per alert, with their audit trail and their timers.

A page is written, then announced on the device feed, in one MULTI: no device hears of a page that is not
stored, and none is stored unheard. What becomes of it goes to the counter that raised it as page news
(contracts.tell_counter) in the same MULTI, so an answer to a teller is never lost between the two. Creation is
idempotent by alert id (PagerDuty's dedup key): asked twice, the pager makes one page, and a repeat press of the
same call at the same counter folds into its open page.

Every write to a page (fold, acknowledge, reply, resolve, a timer, a clear) runs in a transaction that
WATCHes the page itself: one that read a page someone changed since runs again on the new page, so no write
overwrites another (an acknowledgement racing a repeat press keeps both).

A page whose condition ended is cleared by the system: a pause page when the counter resumes, a long-wait
page when the customer is called, a pause overrun at resume. The end of the condition marks its alert in
`keys.cleared`, in the transaction or script that ends it; the page is resolved (`resolution` "cleared",
audit entry `cleared`, timers gone) in that transaction when the caller can, else right after, and a page not
written yet is born cleared. No timer of a marked alert fires: timers read the mark under the same WATCH.

Timers (repeat, escalate, and the close of an information page) are members `<page id>:<kind>` of a sorted set
per branch scored by when they fall due, written in the same MULTI as the page. Every pager worker looks for
due ones every POLL_S (`fire_due`); a timer acts only if it is still the page's current one and the page is open.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import redis

from services.domain import contracts, counts, feeds, keys, once, presence
from services.domain.branch import Branch, Manager
from services.domain.clock import SYSTEM, Clock, business_day, iso, local_iso, parse_iso, to_ms
from services.domain.contracts import REPLY_PRESETS, PageEvent, PageRequest
from services.domain.errors import Conflict, NotFound, Unprocessable
from services.domain.schemas import AuditEntry, Page

OPEN, ACKNOWLEDGED, RESOLVED = "open", "acknowledged", "resolved"
STATUSES = (OPEN, ACKNOWLEDGED, RESOLVED)
PAGE, PAGE_UPDATED = "page", "page_updated"
PRIORITY_ORDER = {str(p): rank for rank, p in enumerate(contracts.PRIORITY_NAMES)}
# Calls a teller makes by pressing a button: pressed again while unresolved, they fold into one page.
FOLDABLE = tuple(contracts.CALLS)
INFORMATION = contracts.INFORMATION
DISCREET = contracts.DISCREET

REPEAT, ESCALATE, EXPIRE = "repeat", "escalate", "expire"
TIMER_KINDS = (REPEAT, ESCALATE, EXPIRE)
# How often each pager worker looks for due timers: the most a timer can be late, beyond the write itself.
POLL_S = 0.1
# Timers fired per branch per look; more wait for the next look, POLL_S later.
BATCH = 500


def is_test(page: Page) -> bool:
    """Say whether a page is a drill (a test of the silent call): it goes the whole way, and is counted apart."""
    return bool(page.details.get("test"))


def _fold_field(counter: str, kind: str, test: bool) -> str:
    """Name the open call a repeat press folds into: a drill never folds into a real call, nor one into a drill."""
    return f"{counter}:{kind}" + (":test" if test else "")


def new_id(moment: datetime) -> str:
    return f"p{to_ms(moment):x}-{secrets.token_hex(3)}"


def _audit(moment: datetime, event: str, by: str | None = None, **extra: Any) -> AuditEntry:
    return AuditEntry(at=iso(moment), event=event, by=by, **extra)


# Timers


def member(page_id: str, kind: str) -> str:
    return f"{page_id}:{kind}"


def timeout_s(branch: Branch, priority: str) -> float:
    return float(getattr(branch.escalation, f"{priority}_s"))


def initial_timers(branch: Branch, page: Page, now_ms: int) -> dict[str, int]:
    """Return the timers a new page starts with: escalation by priority, repeats for urgent pages, and the
    close of an information page."""
    timers = {}
    if page.priority == INFORMATION:
        return {member(page.id, EXPIRE): now_ms + int(branch.escalation.info_close_s * 1000)}
    escalate_s = timeout_s(branch, page.priority)
    if escalate_s > 0:
        timers[member(page.id, ESCALATE)] = now_ms + int(escalate_s * 1000)
    repeat_s = branch.escalation.repeat_urgent_s
    if page.priority == "urgent" and repeat_s > 0:
        timers[member(page.id, REPEAT)] = now_ms + int(repeat_s * 1000)
    return timers


def _cancel_timers(pipe: redis.client.Pipeline, branch_id: str, page_id: str) -> None:
    pipe.zrem(keys.timers(branch_id), *(member(page_id, kind) for kind in TIMER_KINDS))


# Reading


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


# Writing: the one path every change of an existing page takes.


@dataclass
class Change:
    """What a change does to a page: the page after it, the `change` its device event names, its timers (set:
    members and when they fall due; drop: members to remove; a page that leaves `open` loses every timer), and
    the news its counter gets (`tell`: events of PageEvent, in order, by a manager, with a reply's text or preset)."""

    page: Page | None
    event: str | None = None
    set_timers: dict[str, int] = field(default_factory=dict)
    drop_timers: list[str] = field(default_factory=list)
    tell: tuple[str, ...] = ()
    by: Manager | None = None
    message: str | None = None
    preset: str | None = None
    # A manager's request made once per Idempotency-Key: kept in the same MULTI (services/domain/once.py).
    keep: once.Once | None = None


def _queue_change(pipe: redis.client.Pipeline, branch: Branch, before: Page, change: Change,
                  moment: datetime) -> None:
    """Add a page's change to a MULTI: the page, its indexes and timers, counts, the clear marks it used up, its
    device event and its counter's news."""
    after = change.page
    if after is not None:
        pipe.set(keys.page(branch.id, after.id), after.model_dump_json())
        if before.acknowledged_at is None and after.acknowledged_at is not None and not is_test(after):
            waited_s = (parse_iso(after.acknowledged_at) - parse_iso(after.created_at)).total_seconds()
            counts.observe(pipe, branch.id, "ack", after.kind, max(0.0, waited_s), counts.ACK_BUCKETS_S)
        if after.escalation_level > before.escalation_level and not is_test(after):
            counts.count(pipe, branch.id, f"escalations:{after.kind}")
        if after.status != OPEN:
            _cancel_timers(pipe, branch.id, after.id)
        if after.status == RESOLVED:
            pipe.zrem(keys.pages_active(branch.id), after.id)
            if after.kind in FOLDABLE:
                pipe.hdel(keys.page_open_for(branch.id), _fold_field(after.counter, after.kind, is_test(after)))
            if after.resolution == "cleared":
                pipe.hdel(keys.cleared(branch.id), *_alert_ids(after))
    if change.drop_timers:
        pipe.zrem(keys.timers(branch.id), *change.drop_timers)
    if change.set_timers and (after or before).status == OPEN:
        pipe.zadd(keys.timers(branch.id), change.set_timers)
    once.keep(pipe, change.keep, (after or before).id)
    if after is not None:
        data: dict[str, Any] = {"page": after.model_dump(mode="json")}
        if change.event:
            data["change"] = change.event
        feeds.append(pipe, branch, keys.DEVICE, PAGE_UPDATED, data)
        for event in change.tell:
            replied = event == "replied"
            _tell_counter(pipe, branch, after, event, moment, change.by, change.message if replied else None,
                          change.preset if replied else None)


def _alert_ids(page: Page) -> list[str]:
    """Return the alerts a page stands for: the first press's, then those folded into it."""
    first = page.details.get("alert_id")
    return list(dict.fromkeys([*([first] if first else []), *(page.details.get("alert_ids") or [])]))


def _clear_mark(pipe: redis.client.Pipeline, branch_id: str, page: Page) -> dict[str, Any] | None:
    """Return the clear mark of the page's alert (its condition ended), read in a WATCH phase, or None."""
    if page.status == RESOLVED:
        return None
    ids = _alert_ids(page)
    for raw in pipe.hmget(keys.cleared(branch_id), ids) if ids else []:
        if raw:
            return json.loads(raw)
    return None


def _cleared(page: Page, mark: dict[str, Any], branch: Branch, moment: datetime) -> Page:
    """Return the page resolved by the system because its condition ended."""
    page.status = RESOLVED
    page.resolution = "cleared"
    page.resolved_by = None
    page.resolved_at = local_iso(branch, moment)
    page.resolution_note = mark.get("reason")
    page.audit.append(_audit(moment, "cleared", note=f"{mark.get('reason')} at {mark.get('at')}"))
    return page


def write(r: redis.Redis, branch: Branch, page_id: str,
          change: Callable[[Page, redis.client.Pipeline], Change | None],
          clock: Clock = SYSTEM) -> tuple[Page, Change | None]:
    """Apply a change to a page in a transaction that WATCHes the page, its branch's timers and clear marks.

    `change` gets a copy of the page and the watching pipeline (for reads of its own) and returns what to
    write, or None to write nothing. A page whose alert was marked cleared is cleared first: the change then
    sees it resolved. Return the page as it is after, and the change written (None when nothing was).
    """
    page_key = keys.page(branch.id, page_id)
    result: dict[str, Any] = {}

    def run(pipe: redis.client.Pipeline) -> None:
        result.clear()
        moment = clock.now()
        raw = pipe.get(page_key)
        if raw is None:
            raise NotFound(f"no page {page_id}", code="unknown_page")
        before = Page.model_validate_json(raw)
        mark = _clear_mark(pipe, branch.id, before)
        if mark is not None:
            done = Change(_cleared(before.model_copy(deep=True), mark, branch, moment), "cleared", tell=("cleared",))
            result["page"], result["change"], result["cleared"] = done.page, done, True
            pipe.multi()
            _queue_change(pipe, branch, before, done, moment)
            return
        done = change(before.model_copy(deep=True), pipe)
        result["page"], result["change"] = (done.page or before) if done else before, done
        if done is None:
            return
        pipe.multi()
        _queue_change(pipe, branch, before, done, moment)

    r.transaction(run, page_key, keys.timers(branch.id), keys.cleared(branch.id))
    if result.get("cleared"):
        return write(r, branch, page_id, change, clock)
    return result["page"], result["change"]


# Creating


def create(r: redis.Redis, branch: Branch, request: PageRequest, clock: Clock = SYSTEM,
           paged: list[presence.Paged] | None = None) -> tuple[Page, str]:
    """Create the page for an alert, fold it into the open page of the same call, or return the page it
    already has; say which ("created", "folded" or "existing").

    A new page goes to `paged` (presence.route: read by the caller in a round trip it makes anyway), else to
    whom presence.route says now.
    """
    dedup, open_for, cleared = keys.page_for_alert(branch.id), keys.page_open_for(branch.id), keys.cleared(branch.id)
    fold_field = _fold_field(request.counter, request.kind.value, bool(request.details.get("test")))
    made: dict[str, Any] = {}

    def run(pipe: redis.client.Pipeline) -> None:
        made.clear()
        moment = clock.now()
        existing = pipe.hget(dedup, request.alert_id)
        raw = pipe.get(keys.page(branch.id, existing)) if existing else None
        if raw:
            made["page"], made["outcome"] = Page.model_validate_json(raw), "existing"
            pipe.multi()
            _leave_outbox(pipe, branch.id, request.alert_id)
            return
        folding = pipe.hget(open_for, fold_field) if request.kind.value in FOLDABLE else None
        if folding:
            pipe.watch(keys.page(branch.id, folding))  # the fold rewrites that page: it must not have changed
            raw = pipe.get(keys.page(branch.id, folding))
            target = Page.model_validate_json(raw) if raw else None
            if target is not None and target.status != RESOLVED:
                before = target.model_copy(deep=True)
                again = target.status == ACKNOWLEDGED
                target.presses += 1
                target.details.setdefault("alert_ids", []).append(request.alert_id)
                if request.details.get("question"):
                    target.details.setdefault("questions", []).append(request.details["question"])
                target.audit.append(_audit(moment, "pressed", note=f"press {target.presses} at {request.created_at}"
                                           + (", after it was acknowledged" if again else "")))
                made["page"], made["outcome"] = target, "folded"
                pipe.multi()
                pipe.hset(dedup, request.alert_id, target.id)
                _queue_change(pipe, branch, before, Change(target, "pressed_again" if again else "pressed"), moment)
                _tell_created(pipe, branch, target, request.alert_id, moment)
                _leave_outbox(pipe, branch.id, request.alert_id)
                return
        mark_raw = pipe.hget(cleared, request.alert_id)
        routed = paged if paged is not None else presence.route(r, branch, to_ms(moment))
        level = len(routed) - 1
        details = {**request.details, "alert_id": request.alert_id, "alert_ids": [request.alert_id]}
        if request.details.get("question"):
            details["questions"] = [request.details["question"]]  # repeat presses add theirs
        page = Page(
            id=new_id(moment), kind=request.kind.value, priority=request.priority.value, counter=request.counter,
            window=request.window, message=request.message, details=details,
            status=OPEN, created_at=local_iso(branch, moment), paged=[p.manager for p in routed],
            escalation_level=level,
            audit=[*(_audit(moment, "skipped_offline", level=index, by=p.manager, note="device offline")
                     for index, p in enumerate(routed[:-1])),
                   _audit(moment, "created", level=level, by=routed[-1].manager,
                          note=f"alert raised {request.created_at}"
                          + ("" if routed[-1].live else "; no manager's device is live"))],
        )
        score = to_ms(moment)
        if mark_raw:  # its condition ended before the page was written: born cleared, never paged again
            page = _cleared(page, json.loads(mark_raw), branch, moment)
            timers: dict[str, int] = {}
        else:
            timers = initial_timers(branch, page, score)
        made["page"], made["outcome"], made["timers"] = page, "created", timers
        pipe.multi()
        pipe.hset(dedup, request.alert_id, page.id)
        if request.kind.value in FOLDABLE and page.status != RESOLVED:
            pipe.hset(open_for, fold_field, page.id)
        pipe.set(keys.page(branch.id, page.id), page.model_dump_json())
        pipe.zadd(keys.pages_all(branch.id), {page.id: score})
        # The day it belongs to is a day of the branch, closed (and archived) like any, tickets or none.
        pipe.sadd(keys.days(branch.id), business_day(branch, parse_iso(page.created_at)))
        if page.status != RESOLVED:
            pipe.zadd(keys.pages_active(branch.id), {page.id: score})
        else:
            pipe.hdel(cleared, request.alert_id)
        counts.count(pipe, branch.id,
                     f"test_calls:{page.kind}" if is_test(page) else f"pages:{page.kind}:{page.priority}")
        if timers:
            pipe.zadd(keys.timers(branch.id), timers)
        feeds.append(pipe, branch, keys.DEVICE, PAGE, {"page": page.model_dump(mode="json")})
        _tell_created(pipe, branch, page, request.alert_id, moment, routed)
        _leave_outbox(pipe, branch.id, request.alert_id)

    r.transaction(run, dedup, open_for, cleared)
    return made["page"], made["outcome"]


def _leave_outbox(pipe: redis.client.Pipeline, branch_id: str, alert_id: str) -> None:
    pipe.hdel(keys.outbox(branch_id), alert_id)
    pipe.zrem(keys.outbox_times(branch_id), alert_id)


# What managers do


def acknowledge(r: redis.Redis, branch: Branch, page_id: str, manager: Manager,
                once_: once.Once | None = None, clock: Clock = SYSTEM) -> Page:
    """Take the page: the first device to acknowledge owns it; repeats and escalation stop."""

    def change(page: Page, pipe: redis.client.Pipeline) -> Change | None:
        if once.kept(pipe, once_) is not once.MISSING:
            return None
        if page.status == ACKNOWLEDGED and page.acknowledged_by == manager.id:
            return None
        if page.status != OPEN:
            raise Conflict(f"page {page.id} is already {page.status}"
                           + (f" by {page.acknowledged_by}" if page.acknowledged_by else ""),
                           code=f"already_{page.status}", page=page.model_dump(mode="json"))
        _take(page, manager, branch, clock.now())
        return Change(page, "acknowledged", tell=("acknowledged",), by=manager, keep=once_)

    return write(r, branch, page_id, change, clock)[0]


def resolve(r: redis.Redis, branch: Branch, page_id: str, manager: Manager, note: str | None,
            once_: once.Once | None = None, clock: Clock = SYSTEM) -> Page:
    """Close the page (acknowledging it too if nobody had), with the manager's note."""

    def change(page: Page, pipe: redis.client.Pipeline) -> Change | None:
        if once.kept(pipe, once_) is not once.MISSING or page.status == RESOLVED:
            return None
        moment = clock.now()
        if page.status == OPEN:
            _take(page, manager, branch, moment)
        page.status = RESOLVED
        page.resolution = "resolved"
        page.resolved_by = manager.id
        page.resolved_at = local_iso(branch, moment)
        page.resolution_note = note
        page.audit.append(_audit(moment, "resolved", manager.id, note=note))
        return Change(page, "resolved", tell=("resolved",), by=manager, keep=once_)

    return write(r, branch, page_id, change, clock)[0]


def reply(r: redis.Redis, branch: Branch, page_id: str, manager: Manager, message: str | None = None,
          preset: str | None = None, once_: once.Once | None = None, clock: Clock = SYSTEM) -> Page:
    """Answer the counter (a supervisor's reply, or a discreet preset for a distress call); replying also
    acknowledges an open page, and the counter hears of both."""
    if preset is not None and preset not in REPLY_PRESETS:
        raise Unprocessable(f"unknown preset {preset!r}; use one of {', '.join(REPLY_PRESETS)}", code="unknown_preset")

    def change(page: Page, pipe: redis.client.Pipeline) -> Change | None:
        if once.kept(pipe, once_) is not once.MISSING:
            return None
        if page.status == RESOLVED:
            raise Conflict(f"page {page.id} is resolved", code="already_resolved")
        if not page.counter:
            raise Unprocessable("this page is not a counter's (a screen, a line): no terminal reads a reply",
                                code="no_counter")
        if page.kind in DISCREET and preset is None:
            raise Unprocessable("a distress call's terminal is read across the counter: answer it with one of the "
                                f"discreet replies ({', '.join(REPLY_PRESETS)}), not free text",
                                code="discreet_reply_only")
        moment = clock.now()
        tell: tuple[str, ...] = ("replied",)
        if page.status == OPEN:
            _take(page, manager, branch, moment)
            tell = ("acknowledged", "replied")
        text = REPLY_PRESETS[preset][0] if preset else message
        page.replies.append({"at": local_iso(branch, moment), "by": manager.id, "by_name": manager.name,
                             "message": text, "preset": preset})
        page.audit.append(_audit(moment, "replied", manager.id, note=text))
        return Change(page, "replied", tell=tell, by=manager, message=text, preset=preset, keep=once_)

    return write(r, branch, page_id, change, clock)[0]


def _take(page: Page, manager: Manager, branch: Branch, moment: datetime) -> None:
    page.status = ACKNOWLEDGED
    page.acknowledged_by = manager.id
    page.acknowledged_at = local_iso(branch, moment)
    page.audit.append(_audit(moment, "acknowledged", manager.id, level=page.escalation_level))


# The system


def watch_for_clear(pipe: redis.client.Pipeline, branch: Branch, alert_ids: Iterable[str]) -> list[Page]:
    """In the WATCH phase of a transaction that ends a condition: watch the pages of these alerts, and return
    those not resolved yet (an alert whose page is not written yet has none)."""
    ids = list(alert_ids)
    if not ids:
        return []
    pipe.watch(keys.page_for_alert(branch.id))
    page_ids = [page_id for page_id in pipe.hmget(keys.page_for_alert(branch.id), ids) if page_id]
    if not page_ids:
        return []
    page_keys = [keys.page(branch.id, page_id) for page_id in page_ids]
    pipe.watch(*page_keys)
    found = [Page.model_validate_json(raw) for raw in pipe.mget(page_keys) if raw]
    return [page for page in found if page.status != RESOLVED]


def queue_clear(pipe: redis.client.Pipeline, branch: Branch, alert_ids: Iterable[str], pages: Iterable[Page],
                reason: str, moment: datetime) -> list[Page]:
    """In the MULTI of that transaction: mark the alerts cleared and clear their pages (from watch_for_clear);
    return the pages as cleared. A page not written yet keeps the mark, and is born cleared."""
    mark = {"at": local_iso(branch, moment), "reason": reason}
    ids = list(alert_ids)
    if ids:
        pipe.hset(keys.cleared(branch.id), mapping={alert_id: json.dumps(mark) for alert_id in ids})
    done = []
    for before in pages:
        after = _cleared(before.model_copy(deep=True), mark, branch, moment)
        _queue_change(pipe, branch, before, Change(after, "cleared", tell=("cleared",)), moment)  # uses the marks
        done.append(after)
    return done


def clear(r: redis.Redis, branch: Branch, alert_ids: Iterable[str], clock: Clock = SYSTEM) -> list[Page]:
    """Clear the pages of alerts marked cleared (keys.cleared); return those pages, cleared.

    An alert whose page is not written yet keeps its mark: the page is born cleared.
    """
    done = []
    for alert_id in alert_ids:
        page_id = r.hget(keys.page_for_alert(branch.id), alert_id)
        if not page_id:
            continue
        try:
            page, _ = write(r, branch, page_id, lambda page, pipe: None, clock)
        except NotFound:
            r.hdel(keys.cleared(branch.id), alert_id)  # its page is gone (retention): nothing left to clear
            continue
        if page.resolution == "cleared":
            done.append(page)
    return done


def clear_marked(r: redis.Redis, branch: Branch, clock: Clock = SYSTEM) -> list[Page]:
    """Clear the pages of every alert still marked cleared (a request that ended its condition died before
    clearing the page); return the pages cleared now."""
    return clear(r, branch, r.hkeys(keys.cleared(branch.id)), clock)


def fire_due(r: redis.Redis, branches: Sequence[Branch], clock: Clock = SYSTEM, grace_s: float = 0.0) -> int:
    """Fire every timer of these branches due more than grace_s ago, found in one round trip; return how many
    acted on a page (a timer another worker fired first, or of a page answered or cleared since, does not)."""
    cutoff = clock.now_ms() - int(grace_s * 1000)
    pipe = r.pipeline(transaction=False)
    for branch in branches:
        pipe.zrangebyscore(keys.timers(branch.id), "-inf", cutoff, start=0, num=BATCH, withscores=True)
    fired = 0
    for branch, due in zip(branches, pipe.execute(), strict=True):
        for name, due_ms in due:
            page_id, kind = name.rsplit(":", 1)
            fired += fire(r, branch, page_id, kind, int(due_ms), clock) in ("repeated", "escalated", "expired")
    return fired


def fire(r: redis.Redis, branch: Branch, page_id: str, kind: str, due_ms: int, clock: Clock = SYSTEM) -> str:
    """Act on a due timer; return what happened (repeated, escalated, expired, stale, done, cleared, early)."""
    if due_ms > clock.now_ms():
        return "early"  # never before its time: the next look fires it
    name = member(page_id, kind)

    def change(page: Page, pipe: redis.client.Pipeline) -> Change | None:
        score = pipe.zscore(keys.timers(branch.id), name)
        if score is None or int(score) != due_ms:
            return None  # rescheduled or cancelled since: not ours to act on
        if page.status != OPEN:
            return Change(None, drop_timers=[name])
        moment = clock.now()
        if kind == EXPIRE:
            page.status, page.resolution, page.resolved_at = RESOLVED, "expired", local_iso(branch, moment)
            page.audit.append(_audit(moment, "expired", note="information only; closed by itself"))
            return Change(page, "expired", tell=("expired",))
        if kind == ESCALATE and page.escalation_level + 1 < len(branch.managers):
            page.escalation_level += 1
            manager = branch.managers[page.escalation_level]
            page.paged.append(manager.id)
            page.audit.append(_audit(moment, "escalated", manager.id, level=page.escalation_level,
                                     note=f"unacknowledged; now paging {manager.name}"))
            event, interval_s = "escalated", timeout_s(branch, page.priority)
        else:
            # A repeat to the current level; at the top level an escalation timer keeps repeating too.
            page.repeats += 1
            page.audit.append(_audit(moment, "repeated", level=page.escalation_level))
            event = "repeated"
            interval_s = branch.escalation.repeat_urgent_s if kind == REPEAT else timeout_s(branch, page.priority)
        return Change(page, event, set_timers={name: to_ms(moment) + int(interval_s * 1000)})

    try:
        page, done = write(r, branch, page_id, change, clock)
    except NotFound:
        r.zrem(keys.timers(branch.id), name)  # its page is gone (retention)
        return "done"
    if done is None:
        return "cleared" if page.resolution == "cleared" else "stale"
    return "done" if done.page is None else str(done.event)


# Telling the counter


def _tell_counter(pipe: redis.client.Pipeline, branch: Branch, page: Page, event: str, moment: datetime,
                  manager: Manager | None = None, message: str | None = None, preset: str | None = None) -> None:
    """Add to a MULTI what became of the page, for the counter of its alerts. A distress call's terminal is never
    told who answered: it is read across the counter."""
    alert_id = page.details.get("alert_id")
    if not alert_id or not page.counter:  # a page of no counter's (a screen offline) has no terminal to tell
        return
    named = manager if page.kind not in DISCREET else None
    contracts.tell_counter(pipe, PageEvent(
        branch=branch.id, alert_id=alert_id, alert_ids=page.details.get("alert_ids", [alert_id]),
        counter=page.counter, page_id=page.id, event=event,  # type: ignore[arg-type]
        by=named.id if named else None, by_name=named.name if named else None,
        at=local_iso(branch, moment), message=message, preset=preset, status=page.status,
    ))


def _tell_created(pipe: redis.client.Pipeline, branch: Branch, page: Page, alert_id: str, moment: datetime,
                  paged: Sequence[presence.Paged] = ()) -> None:
    """Add to a MULTI that an alert is on a page (created, or folded into the page of an earlier press, which may
    be acknowledged already: then by whom, unless the call is discreet), and, for a new page, whom it went to."""
    if not page.counter:
        return
    taken = branch.manager(page.acknowledged_by) if page.acknowledged_by and page.kind not in DISCREET else None
    contracts.tell_counter(pipe, PageEvent(
        branch=branch.id, alert_id=alert_id, counter=page.counter, page_id=page.id, event="created",
        at=local_iso(branch, moment), status=page.status, by=taken.id if taken else None,
        by_name=taken.name if taken else None,
        paged=[contracts.PagedTo(manager=None if page.kind in DISCREET else p.manager, live=p.live)
               for p in paged],
    ))
