"""The branch manager's daily report: tickets, waiting times, VIP waits, pauses and pages of one business day.

Everything is read from Redis for one branch and one local date (the branch's time zone):

- tickets: the hashes numbered that day, prefix + 001..N for each category (N = the day's sequence);
  a ticket counts in the category it was issued in (its number's), even when transferred;
- waiting time: called_at − issued_at of every ticket that was called (called, served, no-show). A
  transferred ticket counts until the call that took it last (the first call's time is not kept). Tickets
  never called (still waiting, or expired at the day's end) have no waiting time: they are counted apart;
- VIP waits: every ticket of a VIP category whose waiting time is over the branch's threshold; a VIP ticket
  still waiting today is listed once it has waited longer than the threshold (its wait so far), and one
  never called on an earlier day (expired) is listed with no wait, since it was never served;
- pauses: every pause that ended that day (the counter's `resume` records it), and a pause still running
  that began that day, with its minutes so far;
- pages: every page created that day (by created_at's local date); time to acknowledge is
  acknowledged_at − created_at; escalated means escalation_level > 0.

Percentiles are nearest-rank: the p-th percentile of n values is the ⌈p·n/100⌉-th smallest, a value that
occurred (never an interpolation), so a test can compute it by hand.
"""

from __future__ import annotations

import csv
import io
import json
import math
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Any

import redis
from pydantic import BaseModel, Field

from services.common import clock, counters, keys
from services.common.config import Branch
from services.common.errors import Unprocessable
from services.common.schemas import Page

PERCENTILE_METHOD = "nearest-rank"
DAY_PATTERN = re.compile(r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$")
FIRST_DAY, LAST_DAY = date(2000, 1, 1), date(2999, 12, 31)
CALLED = ("called", "served", "no_show")

# Page kinds in the order a manager reads them (the caller's needs first), with their names.
PAGE_KINDS: dict[str, tuple[str, str]] = {
    "distress": ("紧急求助", "Distress"),
    "help": ("需要协助", "Help"),
    "ask_supervisor": ("请示主管", "Ask a supervisor"),
    "pause": ("窗口暂停", "Counter paused"),
    "pause_overrun": ("暂停超时", "Pause overrun"),
    "vip_wait": ("贵宾久等", "VIP waiting long"),
    "resume": ("恢复服务", "Counter resumed"),
}


# The report (the JSON document; the page and the CSV files show the same numbers).


class CategoryRow(BaseModel):
    category: str
    name: str
    name_en: str
    vip: bool
    issued: int = Field(description="tickets numbered in this category that day")
    called: int = Field(description="tickets called (called, served or no-show): those with a waiting time")
    served: int
    no_show: int
    waiting: int = Field(description="never called and still waiting")
    expired: int = Field(description="never called; closed at the day's end")
    wait_p50_s: float | None = Field(description="waiting time, nearest-rank median (seconds)")
    wait_p90_s: float | None = Field(description="waiting time, nearest-rank 90th percentile (seconds)")
    wait_max_s: float | None


class HourRow(BaseModel):
    hour: int = Field(ge=0, le=23, description="local hour the tickets were issued in")
    label: str = Field(examples=["09:00–10:00"])
    counts: dict[str, int] = Field(description="tickets issued per category")
    total: int


class VipWaitRow(BaseModel):
    number: str
    category: str
    name: str
    name_en: str
    status: str = Field(description="the ticket's status: called, served, no_show, waiting or expired")
    issued_at: str
    called_at: str | None
    window: str | None
    waited_s: float | None = Field(description="called_at − issued_at; so far, while waiting; null if expired")
    over_s: float | None = Field(description="waited_s − the threshold")
    still_waiting: bool


class PauseRow(BaseModel):
    counter: str
    window: str
    reason: str
    reason_name: str
    reason_name_en: str
    note: str | None
    since: str
    resumed_at: str | None = Field(description="null while the pause still runs")
    expected_minutes: int
    actual_s: int
    actual_minutes: float = Field(description="actual_s / 60, to 0.1 minute")
    over_minutes: float = Field(description="actual minus expected, to 0.1 minute (negative: ended early)")
    overran: bool
    running: bool


class PageKindRow(BaseModel):
    kind: str = Field(description="a page kind, or `all`")
    name: str
    name_en: str
    pages: int
    acknowledged: int
    unacknowledged: int
    ack_p50_s: float | None = Field(description="time to acknowledge, nearest-rank median (seconds)")
    ack_p90_s: float | None = Field(description="time to acknowledge, nearest-rank 90th percentile (seconds)")
    ack_max_s: float | None
    escalated: int = Field(description="pages that reached a manager after the first (escalation_level > 0)")


class Summary(BaseModel):
    issued: int
    called: int
    served: int
    no_show: int
    not_called: int = Field(description="still waiting or expired")
    wait_p50_s: float | None
    wait_p90_s: float | None
    wait_max_s: float | None
    vip_over_threshold: int
    pauses: int
    pause_minutes: float
    pause_overruns: int
    pages: int
    pages_escalated: int
    pages_unacknowledged: int
    ack_p50_s: float | None
    ack_p90_s: float | None


class Report(BaseModel):
    branch: str
    branch_name: str
    branch_name_en: str
    date: str = Field(examples=["2025-03-14"], description="the business day, in the branch's time zone")
    timezone: str
    generated_at: str
    percentile_method: str = Field(default=PERCENTILE_METHOD,
                                   description="nearest-rank: the ⌈p·n/100⌉-th smallest value")
    vip_wait_threshold_minutes: float
    history_expired: bool = Field(description="the day is older than the branch keeps history (history_days): "
                                              "its tickets, pauses and pages have been removed")
    summary: Summary
    categories: list[CategoryRow]
    hours: list[HourRow]
    vip_waits: list[VipWaitRow]
    pauses: list[PauseRow]
    pages: list[PageKindRow]
    pages_all: PageKindRow


class ReportEnvelope(BaseModel):
    report: Report


# Pure helpers.


def percentile(values: Sequence[float], p: int) -> float | None:
    """Return the nearest-rank p-th percentile (the ⌈p·n/100⌉-th smallest value), or None for no values."""
    if not 0 < p <= 100:
        raise ValueError("p must be in 1..100")
    if not values:
        return None
    ordered = sorted(values)
    rank = -(-p * len(ordered) // 100)  # ⌈p·n/100⌉ in integers: no floating point at the boundaries
    return ordered[rank - 1]


def seconds_between(start: str, end: str) -> float:
    """Seconds from one ISO time to another, to the millisecond."""
    return round((clock.parse_iso(end) - clock.parse_iso(start)).total_seconds(), 3)


def parse_day(value: str | None, branch: Branch) -> str:
    """Return the business day asked for (YYYY-MM-DD; today in the branch when empty), or raise 422."""
    if value is None or value == "":
        return clock.business_day(branch)
    if not DAY_PATTERN.match(value):
        raise Unprocessable(f"date must be a day as YYYY-MM-DD, e.g. {clock.business_day(branch)}; got {value!r}",
                            code="invalid_date")
    try:
        day = date.fromisoformat(value)
    except ValueError as exc:
        raise Unprocessable(f"{value} is not a calendar date", code="invalid_date") from exc
    if not FIRST_DAY <= day <= LAST_DAY:
        raise Unprocessable(f"date must be between {FIRST_DAY} and {LAST_DAY}", code="invalid_date")
    return day.isoformat()


def day_bounds_ms(branch: Branch, day: str) -> tuple[int, int]:
    """Return the first and the last millisecond of a local day in the branch's time zone."""
    start = datetime.combine(date.fromisoformat(day), time(0), branch.zone)
    end = datetime.combine(date.fromisoformat(day) + timedelta(days=1), time(0), branch.zone)
    return int(start.timestamp() * 1000), int(end.timestamp() * 1000) - 1


def local_day(branch: Branch, iso: str) -> str:
    return clock.parse_iso(iso).astimezone(branch.zone).date().isoformat()


def _round(value: float | None, digits: int = 3) -> float | None:
    return None if value is None else round(value, digits)


# Reading the day.


@dataclass(frozen=True)
class TicketRecord:
    """A ticket of the day as the report needs it."""

    number: str
    category: str  # the category it was issued in
    status: str
    issued_at: str
    called_at: str | None
    window: str | None

    @property
    def waited_s(self) -> float | None:
        if self.status not in CALLED or not self.called_at:
            return None
        return seconds_between(self.issued_at, self.called_at)


def read_tickets(r: redis.Redis, branch: Branch, day: str) -> list[TicketRecord]:
    """Read every ticket numbered on a day, category by category, in number order."""
    pipe = r.pipeline(transaction=False)
    for category in branch.categories:
        pipe.get(keys.ticket_seq(branch.id, day, category.id))
    issued = {c.id: int(n or 0) for c, n in zip(branch.categories, pipe.execute(), strict=True)}
    numbers = [(c.id, f"{c.prefix}{n:03d}") for c in branch.categories for n in range(1, issued[c.id] + 1)]
    pipe = r.pipeline(transaction=False)
    for _, number in numbers:
        pipe.hgetall(keys.ticket(branch.id, day, number))
    found = []
    for (category, number), raw in zip(numbers, pipe.execute(), strict=True):
        if not raw or not raw.get("issued_at"):
            continue  # removed (retention) or never written
        found.append(TicketRecord(number=number, category=category, status=raw.get("status", "waiting"),
                                  issued_at=raw["issued_at"], called_at=raw.get("called_at") or None,
                                  window=raw.get("window") or None))
    return found


def read_pauses(r: redis.Redis, branch: Branch, day: str, now: datetime) -> list[PauseRow]:
    """Read the pauses that ended on a day, and those still running that began on it, by start time."""
    rows = []
    for raw in r.lrange(keys.pauses(branch.id, day), 0, -1):
        record = json.loads(raw)
        rows.append(_pause_row(branch, record, int(record.get("actual_s") or 0), record.get("resumed_at")))
    for state in counters.load_all(r, branch).values():
        if state.status != counters.PAUSED or not state.pause or local_day(branch, state.pause["since"]) != day:
            continue
        counter = branch.counter(state.id)
        record = {**state.pause, "counter": state.id, "window": counter.window if counter else state.id}
        so_far = max(0, int((now - clock.parse_iso(state.pause["since"])).total_seconds()))
        rows.append(_pause_row(branch, record, so_far, None))
    return sorted(rows, key=lambda p: clock.parse_iso(p.since))


def _pause_row(branch: Branch, record: dict[str, Any], actual_s: int, resumed_at: str | None) -> PauseRow:
    reason = branch.pause_reason(record["reason"])
    expected = int(record["expected_minutes"])
    return PauseRow(
        counter=record["counter"], window=record.get("window") or record["counter"], reason=record["reason"],
        reason_name=reason.name if reason else record["reason"],
        reason_name_en=reason.name_en if reason else record["reason"],
        note=record.get("note") or None, since=record["since"], resumed_at=resumed_at,
        expected_minutes=expected, actual_s=actual_s, actual_minutes=round(actual_s / 60, 1),
        over_minutes=round((actual_s - expected * 60) / 60, 1), overran=actual_s > expected * 60,
        running=resumed_at is None,
    )


def read_pages(r: redis.Redis, branch: Branch, day: str) -> list[Page]:
    """Read the pages created on a day (by created_at's local date), oldest first."""
    start_ms, end_ms = day_bounds_ms(branch, day)
    margin = 60_000  # the index score and created_at are read from the clock a moment apart
    ids = r.zrangebyscore(keys.pages_all(branch.id), start_ms - margin, end_ms + margin)
    raws = r.mget([keys.page(branch.id, i) for i in ids]) if ids else []
    found = [Page.model_validate_json(raw) for raw in raws if raw]
    return sorted((p for p in found if local_day(branch, p.created_at) == day), key=lambda p: p.created_at)


# Building the report.


def build(r: redis.Redis, branch: Branch, day: str) -> Report:
    """Compute the report of one business day of a branch."""
    now = clock.now()
    today = clock.business_day(branch, now)
    tickets = read_tickets(r, branch, day)
    pauses = read_pauses(r, branch, day, now)
    pages = read_pages(r, branch, day)
    categories = category_rows(branch, tickets)
    vip_waits = vip_wait_rows(branch, tickets, now if day == today else None)
    kinds, everything = page_rows(pages)
    waits = [t.waited_s for t in tickets if t.waited_s is not None]
    acks = [s for p in pages if (s := ack_s(p)) is not None]
    summary = Summary(
        issued=len(tickets), called=len(waits),
        served=sum(c.served for c in categories), no_show=sum(c.no_show for c in categories),
        not_called=sum(c.waiting + c.expired for c in categories),
        wait_p50_s=percentile(waits, 50), wait_p90_s=percentile(waits, 90), wait_max_s=max(waits, default=None),
        vip_over_threshold=len(vip_waits),
        pauses=len(pauses), pause_minutes=round(sum(p.actual_s for p in pauses) / 60, 1),
        pause_overruns=sum(p.overran for p in pauses),
        pages=len(pages), pages_escalated=everything.escalated, pages_unacknowledged=everything.unacknowledged,
        ack_p50_s=percentile(acks, 50), ack_p90_s=percentile(acks, 90),
    )
    return Report(
        branch=branch.id, branch_name=branch.name, branch_name_en=branch.name_en, date=day,
        timezone=branch.timezone, generated_at=clock.local_iso(branch, now),
        vip_wait_threshold_minutes=branch.vip_wait_threshold_minutes,
        history_expired=date.fromisoformat(day) < date.fromisoformat(today) - timedelta(days=branch.history_days),
        summary=summary,
        categories=categories, hours=hour_rows(branch, tickets), vip_waits=vip_waits, pauses=pauses,
        pages=kinds, pages_all=everything,
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
        hour = clock.parse_iso(t.issued_at).astimezone(branch.zone).hour
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
                waited = round((now - clock.parse_iso(t.issued_at)).total_seconds(), 3)
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
    return sorted(rows, key=lambda row: clock.parse_iso(row.issued_at))


def ack_s(page: Page) -> float | None:
    """Seconds from a page's creation to its acknowledgement, or None while unacknowledged."""
    return seconds_between(page.created_at, page.acknowledged_at) if page.acknowledged_at else None


def page_rows(pages: Sequence[Page]) -> tuple[list[PageKindRow], PageKindRow]:
    """Count pages per kind (every known kind, then any other) with time to acknowledge and escalations."""
    kinds = list(PAGE_KINDS) + sorted({p.kind for p in pages} - set(PAGE_KINDS))
    rows = [_kind_row(kind, *PAGE_KINDS.get(kind, (kind, kind)), [p for p in pages if p.kind == kind])
            for kind in kinds]
    return rows, _kind_row("all", "全部", "All pages", list(pages))


def _kind_row(kind: str, name: str, name_en: str, pages: list[Page]) -> PageKindRow:
    acks = [s for p in pages if (s := ack_s(p)) is not None]
    return PageKindRow(
        kind=kind, name=name, name_en=name_en, pages=len(pages), acknowledged=len(acks),
        unacknowledged=len(pages) - len(acks), ack_p50_s=percentile(acks, 50), ack_p90_s=percentile(acks, 90),
        ack_max_s=max(acks, default=None), escalated=sum(p.escalation_level > 0 for p in pages),
    )


# CSV: one file per table, the JSON field names as the header row.


TABLES = ("categories", "hours", "vip_waits", "pauses", "pages")
# A spreadsheet would run a cell that starts with one of these as a formula: such text gets a leading quote.
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def table_rows(report: Report, table: str) -> tuple[list[str], list[list[Any]]]:
    """Return a table of the report as a header and rows of plain values."""
    if table == "hours":
        ids = [c.category for c in report.categories]
        header = ["hour", "label", *ids, "total"]
        return header, [[h.hour, h.label, *(h.counts.get(i, 0) for i in ids), h.total] for h in report.hours]
    models: list[BaseModel] = {
        "categories": report.categories, "vip_waits": report.vip_waits, "pauses": report.pauses,
        "pages": [*report.pages, report.pages_all],
    }[table]  # type: ignore[assignment]
    model = {"categories": CategoryRow, "vip_waits": VipWaitRow, "pauses": PauseRow, "pages": PageKindRow}[table]
    header = list(model.model_fields)
    return header, [[getattr(m, f) for f in header] for m in models]


def csv_cell(value: Any) -> Any:
    """Write a value as a spreadsheet reads it safely: empty for None, text never taken for a formula."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str) and value.startswith(FORMULA_START):
        return "'" + value
    return value


def to_csv(report: Report, table: str) -> str:
    """Return one table of the report as CSV text, with a byte order mark so Excel reads the Chinese."""
    header, rows = table_rows(report, table)
    out = io.StringIO()
    out.write("\ufeff")
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(header)
    writer.writerows([csv_cell(v) for v in row] for row in rows)
    return out.getvalue()


def duration_text(seconds: float | None) -> str:
    """Write seconds as m:ss (h:mm:ss from an hour), rounded to the second; an em dash for none."""
    if seconds is None:
        return "—"
    total = math.floor(seconds + 0.5)
    hours, rest = divmod(total, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"
