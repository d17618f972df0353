"""The report's figures: tickets per category and per hour, VIP waits, pauses and pages by kind, of one day.

- a ticket counts in the category it was issued in (its number's), even when transferred;
- waiting time: called_at − issued_at of every ticket that was called (called, served, no-show). A
  transferred ticket counts until the call that took it last (the first call's time is not kept). Tickets
  never called (still waiting, or expired at the day's end) have no waiting time: they are counted apart;
- VIP waits: every ticket of a VIP category whose waiting time is over the branch's threshold; a VIP ticket
  still waiting today is listed once it has waited longer than the threshold (its wait so far), and one
  never called on an earlier day (expired) is listed with no wait, since it was never served;
- pauses: each with its expected and actual time, and by how much it overran (negative: ended early, or the
  time a running pause has left);
- pages: a page of the information priority (`contracts.INFORMATION`, e.g. a `resume`) needs no
  acknowledgement, so it is never unacknowledged and its acknowledgement, if any, is no time to acknowledge.
  Every other page needs one, and ends the day in one of three columns: acknowledged (acknowledged_at set;
  time to acknowledge is acknowledged_at − created_at), cleared (the system closed it before anyone
  acknowledged it, because its condition ended: `resolution` "cleared" or "expired"), or unacknowledged.
  Escalated means escalation_level > 0.
- supervision: each page the system raised about itself or the floor (a screen or terminal offline, a long
  service, a long line), with what it was about, since when, and how long it lasted (to the end of its page);
- drills: a test of the silent call goes the whole way, but counts in none of the above: it is listed apart.

Percentiles are nearest-rank (`services.domain.stats`): the p-th percentile of n values is the
⌈p·n/100⌉-th smallest, a value that occurred (never an interpolation), so a test can compute it by hand.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import date, datetime, timedelta

import redis
from sqlalchemy import Engine

from services.domain import held_days
from services.domain.branch import Branch
from services.domain.clock import SYSTEM, Clock, business_day, local_iso, parse_iso
from services.domain.contracts import INFORMATION, KIND_NAMES, PageKind
from services.domain.pages import is_test
from services.domain.schemas import Page
from services.domain.stats import percentile
from services.pager.report import archived
from services.pager.report.days import seconds_between
from services.pager.report.models import (
    CategoryRow,
    HourRow,
    PageKindRow,
    PauseRow,
    Report,
    Summary,
    SupervisionRow,
    TestCallRow,
    VipWaitRow,
)
from services.pager.report.reads import DayRecords, PauseRecord, TicketRecord, read_day

# A page's resolution when the system closed it, not a manager.
SYSTEM_CLOSED = ("cleared", "expired")
# Pages the system raises about itself and the floor, listed apart as incidents with their length.
SUPERVISED = (PageKind.ENDPOINT_OFFLINE, PageKind.LONG_SERVICE, PageKind.QUEUE_LONG)

def _round(value: float | None, digits: int = 3) -> float | None:
    return None if value is None else round(value, digits)


def build(r: redis.Redis, branch: Branch, day: str, clock: Clock = SYSTEM, db: Engine | None = None) -> Report:
    """Compute the report of one business day of a branch, as it stands at the clock's now: from the records
    database `db` once it holds the day, else from Redis."""
    now = clock.now()
    source = archived.read_day(db, branch, day) if db is not None and held_days.is_archived(r, branch, day) \
        else read_day(r, branch, day, now)
    return build_from(branch, day, source, now)


def build_from(branch: Branch, day: str, source: DayRecords, now: datetime) -> Report:
    """Compute the report of one business day from its records, as it stands at `now`."""
    today = business_day(branch, now)
    tickets = source.tickets
    pauses = [pause_row(branch, p) for p in source.pauses]
    every_page = source.pages
    pages = [p for p in every_page if not is_test(p)]
    drills = [test_call_row(branch, p) for p in every_page if is_test(p)]
    incidents = [supervision_row(branch, p, now) for p in pages if p.kind in SUPERVISED]
    categories = category_rows(branch, tickets)
    vip_waits = vip_wait_rows(branch, tickets, now if day == today else None)
    kinds, everything = page_rows(pages)
    waits = [t.waited_s for t in tickets if t.waited_s is not None]
    summary = Summary(
        issued=len(tickets), called=len(waits),
        served=sum(c.served for c in categories), no_show=sum(c.no_show for c in categories),
        not_called=sum(c.waiting + c.expired for c in categories),
        wait_p50_s=percentile(waits, 50), wait_p90_s=percentile(waits, 90), wait_max_s=max(waits, default=None),
        vip_over_threshold=len(vip_waits),
        pauses=len(pauses), pause_minutes=round(sum(p.actual_s for p in pauses) / 60, 1),
        pause_s=sum(p.actual_s for p in pauses), pause_overruns=sum(p.overran for p in pauses),
        pages=len(pages), pages_escalated=everything.escalated, pages_cleared=everything.cleared,
        pages_unacknowledged=everything.unacknowledged,
        ack_p50_s=everything.ack_p50_s, ack_p90_s=everything.ack_p90_s,
        supervision_incidents=len(incidents), test_calls=len(drills),
        test_calls_acknowledged=sum(d.acknowledged_by is not None for d in drills),
    )
    return Report(
        branch=branch.id, branch_name=branch.name, branch_name_en=branch.name_en, date=day,
        timezone=branch.timezone, generated_at=local_iso(branch, now),
        vip_wait_threshold_minutes=branch.vip_wait_threshold_minutes,
        history_expired=date.fromisoformat(day) < date.fromisoformat(today) - timedelta(days=branch.history_days),
        summary=summary,
        categories=categories, hours=hour_rows(branch, tickets), vip_waits=vip_waits, pauses=pauses,
        pages=kinds, pages_all=everything, supervision=incidents, test_calls=drills,
    )


def category_rows(branch: Branch, tickets: Iterable[TicketRecord]) -> list[CategoryRow]:
    """Count each category's tickets by outcome, with the nearest-rank p50, p90 and max waiting time."""
    by_category: dict[str, list[TicketRecord]] = {c.id: [] for c in branch.categories}
    for t in tickets:
        by_category[t.category].append(t)
    rows = []
    for c in branch.categories:
        mine = by_category[c.id]
        waits = [t.waited_s for t in mine if t.waited_s is not None]
        status = [t.status for t in mine]
        rows.append(CategoryRow(
            category=c.id, name=c.name, name_en=c.name_en, vip=c.vip, issued=len(mine), called=len(waits),
            served=status.count("served"), no_show=status.count("no_show"), waiting=status.count("waiting"),
            expired=status.count("expired"), wait_p50_s=percentile(waits, 50), wait_p90_s=percentile(waits, 90),
            wait_max_s=max(waits, default=None),
        ))
    return rows


def hour_rows(branch: Branch, tickets: Iterable[TicketRecord]) -> list[HourRow]:
    """Count tickets issued per local hour and category, from the first hour with a ticket to the last."""
    counts: dict[int, dict[str, int]] = {}
    for t in tickets:
        hour = parse_iso(t.issued_at).astimezone(branch.zone).hour
        counts.setdefault(hour, {c.id: 0 for c in branch.categories})[t.category] += 1
    if not counts:
        return []
    rows = []
    for hour in range(min(counts), max(counts) + 1):
        per = counts.get(hour, {c.id: 0 for c in branch.categories})
        rows.append(HourRow(hour=hour, label=f"{hour:02d}:00–{(hour + 1) % 24:02d}:00", counts=per,
                            total=sum(per.values())))
    return rows


def vip_wait_rows(branch: Branch, tickets: Iterable[TicketRecord], now: datetime | None) -> list[VipWaitRow]:
    """List every VIP ticket that waited longer than the threshold (now: the day is today), by issue time."""
    threshold_s = branch.vip_wait_threshold_minutes * 60
    vip = {c.id: c for c in branch.categories if c.vip}
    rows = []
    for t in tickets:
        category = vip.get(t.category)
        if category is None:
            continue
        waited = t.waited_s
        still = t.status == "waiting"
        if still:
            if now is None:  # an earlier day's ticket the day's end has not closed yet: never called
                waited = None
            else:
                waited = round((now - parse_iso(t.issued_at)).total_seconds(), 3)
                if waited <= threshold_s:
                    continue
        elif t.status == "expired":
            waited = None
        elif waited is None or waited <= threshold_s:
            continue
        rows.append(VipWaitRow(
            number=t.number, category=t.category, name=category.name, name_en=category.name_en, status=t.status,
            issued_at=t.issued_at, called_at=t.called_at, window=t.window, waited_s=waited,
            over_s=_round(waited - threshold_s) if waited is not None else None, still_waiting=still,
        ))
    return sorted(rows, key=lambda row: parse_iso(row.issued_at))


def pause_row(branch: Branch, pause: PauseRecord) -> PauseRow:
    """Compare a pause's actual time with the time expected, and name its reason in both languages."""
    reason = branch.pause_reason(pause.reason)
    expected_s = pause.expected_minutes * 60
    return PauseRow(
        counter=pause.counter, window=pause.window, reason=pause.reason,
        reason_name=reason.name if reason else pause.reason, reason_name_en=reason.name_en if reason else pause.reason,
        note=pause.note, since=pause.since, resumed_at=pause.resumed_at,
        expected_minutes=pause.expected_minutes, actual_s=pause.actual_s, actual_minutes=round(pause.actual_s / 60, 1),
        over_minutes=round((pause.actual_s - expected_s) / 60, 1), over_s=pause.actual_s - expected_s,
        overran=pause.actual_s > expected_s,
        running=pause.resumed_at is None,
    )


def ack_s(page: Page) -> float | None:
    """Seconds from a page's creation to its acknowledgement, or None while unacknowledged."""
    return seconds_between(page.created_at, page.acknowledged_at) if page.acknowledged_at else None


def needs_ack(page: Page) -> bool:
    """Say whether a page asks to be acknowledged: every page but one of the information priority."""
    return page.priority != INFORMATION


def outcome(page: Page) -> str:
    """Say how a page ended up: information, acknowledged, cleared (by the system first) or unacknowledged."""
    if not needs_ack(page):
        return "information"
    if page.acknowledged_at:
        return "acknowledged"
    if page.resolution in SYSTEM_CLOSED:
        return "cleared"
    return "unacknowledged"


def supervision_row(branch: Branch, page: Page, now: datetime) -> SupervisionRow:
    """Return an incident the system paged, with what it was about and how long it lasted."""
    d = page.details
    name, name_en = KIND_NAMES.get(page.kind, (page.kind, page.kind))
    since = page.created_at
    if page.kind == PageKind.ENDPOINT_OFFLINE:
        subject = f"{d.get('endpoint_kind')}:{d.get('endpoint')}"
        screen = branch.screen(str(d.get("endpoint")))
        subject_name = (f"{page.window} 窗口终端" if d.get("endpoint_kind") == "terminal"
                        else screen.name if screen else str(d.get("endpoint")))
        since = d.get("offline_since") or since
    elif page.kind == PageKind.LONG_SERVICE:
        subject, subject_name = f"{page.counter} {d.get('ticket')}", f"{page.window} 窗口 {d.get('ticket')}"
        since = local_iso(branch, parse_iso(page.created_at) - timedelta(seconds=float(d.get("serving_s") or 0)))
    else:
        category = branch.category(str(d.get("category")))
        subject, subject_name = str(d.get("category")), category.name if category else str(d.get("category"))
    ended = page.resolved_at
    lasted = seconds_between(since, ended) if ended else (now - parse_iso(since)).total_seconds()
    return SupervisionRow(kind=page.kind, name=name, name_en=name_en, subject=subject, subject_name=subject_name,
                          since=since, ended_at=ended, lasted_s=max(0, round(lasted)), running=ended is None,
                          acknowledged_by=page.acknowledged_by)


def test_call_row(branch: Branch, page: Page) -> TestCallRow:
    """Return a drill of the silent call as the report lists it."""
    return TestCallRow(window=page.window, created_at=page.created_at, acknowledged_by=page.acknowledged_by,
                       ack_s=ack_s(page), escalated=page.escalation_level > 0, paged=list(page.paged))


def page_rows(pages: Sequence[Page]) -> tuple[list[PageKindRow], PageKindRow]:
    """Count pages per kind (every known kind, then any other) with time to acknowledge and escalations."""
    known = [str(kind) for kind in KIND_NAMES]  # in the order a manager reads them, the caller's needs first
    kinds = known + sorted({p.kind for p in pages} - set(known))
    rows = [_kind_row(kind, *KIND_NAMES.get(kind, (kind, kind)), [p for p in pages if p.kind == kind])
            for kind in kinds]
    return rows, _kind_row("all", "全部", "All pages", list(pages))


def _kind_row(kind: str, name: str, name_en: str, pages: list[Page]) -> PageKindRow:
    ends = [outcome(p) for p in pages]
    acks = [s for p, end in zip(pages, ends, strict=True) if end == "acknowledged" and (s := ack_s(p)) is not None]
    return PageKindRow(
        kind=kind, name=name, name_en=name_en, pages=len(pages), information=ends.count("information"),
        acknowledged=len(acks), cleared=ends.count("cleared"), unacknowledged=ends.count("unacknowledged"),
        ack_p50_s=percentile(acks, 50), ack_p90_s=percentile(acks, 90), ack_max_s=max(acks, default=None),
        escalated=sum(p.escalation_level > 0 for p in pages),
    )
