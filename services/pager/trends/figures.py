"""The trends' figures, from the archived days of a range: waits by weekday and hour, VIP waits over the threshold
by week, time to acknowledge by page kind and week with escalations, pauses by reason, tickets per day.

Only the days the records database holds count (a day Redis still holds, not yet archived, does not), and each
figure means what it means in the daily report (services/pager/report/figures.py):

- waiting time is `wait_s` (called_at − issued_at) of every ticket that was called, in the category and at the
  local weekday and hour it was issued; tickets never called have none and are counted apart;
- a VIP wait is over the threshold when longer than branch.vip_wait_threshold_minutes; its share is of the VIP
  waits of the week (VIP tickets never called are counted apart, as `vip_not_called`);
- time to acknowledge is `ack_s` of the pages that need an acknowledgement (all but the information priority)
  and got one; drills (`test`) count nowhere; escalated means escalation_level > 0;
- a pause overran when actual_s > expected_minutes × 60.

Percentiles are nearest-rank (`services.domain.stats.percentile`), exact: every wait of the range is read,
never a bucket or an interpolation. That is one scan of the range's tickets, of the four columns needed
(about 220,000 rows for 12 months of a busy branch): each further pass over the table, such as a GROUP BY for
the counts, would cost as much as the scan again, so counts and percentiles are all taken from that one read.
Pages and pauses are a few a day, read the same way.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import Connection, Engine, Select, not_, select

from services.domain.branch import Branch
from services.domain.clock import SYSTEM, local_iso
from services.domain.contracts import INFORMATION, KIND_NAMES
from services.domain.stats import percentile
from services.pager.report.figures import SYSTEM_CLOSED
from services.pager.report.models import PageKindRow
from services.pager.trends.models import (
    AckWeekRow,
    CategoryTrend,
    DayRow,
    HeatCell,
    PauseReasonRow,
    Trends,
    TrendsSummary,
    WeekRow,
)
from services.pager.trends.spans import Span, span_of, week_name, week_of
from services.records import tables

# A page as the trends read it: (day, kind, priority, ack_s, resolution, escalation_level).
PageFacts = tuple[str, str, str, float | None, str | None, int]


def build(db: Engine, branch: Branch, range_key: str, today: str, now: datetime | None = None) -> Trends:
    """Compute the trends of a branch over a range (4w, quarter, 12m) ending the day before `today`, the branch's
    business day, from the days the records database holds; `now` is when they were generated."""
    span = span_of(range_key, today)
    first, last = span.start.isoformat(), span.end.isoformat()
    t, p, z, d = tables.tickets, tables.pages, tables.pauses, tables.days
    with db.connect() as connection:
        archived = set(connection.execute(
            select(d.c.day).where(d.c.branch == branch.id, d.c.day >= first, d.c.day <= last)).scalars())
        ticket_rows = driver_rows(connection, select(t.c.day, t.c.category, t.c.hour, t.c.wait_s)
                                  .where(t.c.branch == branch.id, t.c.day >= first, t.c.day <= last))
        page_rows = driver_rows(connection, select(p.c.day, p.c.kind, p.c.priority, p.c.ack_s, p.c.resolution,
                                                   p.c.escalation_level)
                                .where(p.c.branch == branch.id, p.c.day >= first, p.c.day <= last, not_(p.c.test)))
        pause_rows = driver_rows(connection, select(z.c.day, z.c.reason, z.c.expected_minutes, z.c.actual_s)
                                 .where(z.c.branch == branch.id, z.c.day >= first, z.c.day <= last))
    # A day archived between the first query and the next counts nowhere, as if it had been read before it.
    return compute(branch, span, archived, ticket_rows, [r for r in page_rows if r[0] in archived],
                   [r for r in pause_rows if r[0] in archived], now or SYSTEM.now())


def driver_rows(connection: Connection, query: Select) -> list[tuple[Any, ...]]:
    """Run a query and return its rows as the database driver gives them, plain tuples.

    For the tickets of a year, a quarter of a million rows, SQLAlchemy's Row objects would cost as much time
    again as the query itself; the columns read here need no conversion (text, integers, floats).
    """
    result = connection.execute(query)
    try:
        return result.cursor.fetchall()
    finally:
        result.close()


def compute(branch: Branch, span: Span, archived: set[str], ticket_rows: Iterable[Sequence[Any]],
            page_rows: Sequence[PageFacts], pause_rows: Sequence[tuple[str, str, int, int]],
            now: datetime) -> Trends:
    """Compute the trends from the rows read: tickets (day, category, hour, wait_s), pages (PageFacts) and
    pauses (day, reason, expected_minutes, actual_s) of the range's archived days."""
    threshold_s = branch.vip_wait_threshold_minutes * 60
    vip = {c.id for c in branch.categories if c.vip}
    # The tickets, in one pass: grouped by day, category and hour (some ten thousand groups a year), from which
    # each count and each set of waits is taken. A ticket's weekday is its day's, since the business day is the
    # local date of issue (clock.business_day) and the `weekday` column that date's weekday: it is taken once a
    # day here rather than read with every row.
    groups: dict[tuple[str, str, int], list[float | None]] = defaultdict(list)
    for day, category, hour, wait in ticket_rows:
        groups[day, category, hour].append(wait)
    weekday_of = {day: date.fromisoformat(day).weekday() for day in archived}
    per_day: dict[tuple[str, str], int] = defaultdict(int)
    cell_tickets: dict[tuple[str, int, int], int] = defaultdict(int)
    cell_waits: dict[tuple[str, int, int], list[float]] = defaultdict(list)
    vip_waits: dict[str, list[float | None]] = defaultdict(list)
    for (day, category, hour), waits in groups.items():
        if day not in archived:
            continue
        key = (category, weekday_of[day], hour)
        per_day[day, category] += len(waits)
        cell_tickets[key] += len(waits)
        cell_waits[key] += [w for w in waits if w is not None]
        if category in vip:
            vip_waits[day] += waits

    categories = [(c.id, c.name, c.name_en, c.vip) for c in branch.categories]
    known = {c.id for c in branch.categories}
    categories += [(c, c, c, False) for c in sorted({key[0] for key in cell_tickets} - known)]
    weekdays = sorted({key[1] for key in cell_tickets})
    hours = list(range(min(k[2] for k in cell_tickets), max(k[2] for k in cell_tickets) + 1)) if cell_tickets else []

    heatmap, category_rows, every_wait = [], [], []
    for category, name, name_en, is_vip in categories:
        mine: list[float] = []
        issued = 0
        for weekday in weekdays:
            for hour in hours:
                key = (category, weekday, hour)
                waits = sorted(cell_waits.get(key, ()))
                mine += waits
                issued += cell_tickets.get(key, 0)
                heatmap.append(HeatCell(category=category, weekday=weekday, hour=hour, tickets=cell_tickets.get(key, 0),
                                        called=len(waits), wait_p50_s=percentile(waits, 50),
                                        wait_p90_s=percentile(waits, 90)))
        mine.sort()
        every_wait += mine
        category_rows.append(CategoryTrend(category=category, name=name, name_en=name_en, vip=is_vip, issued=issued,
                                           called=len(mine), wait_p50_s=percentile(mine, 50),
                                           wait_p90_s=percentile(mine, 90)))
    every_wait.sort()

    weeks, ack_weeks = week_rows(span, archived, per_day, vip_waits, threshold_s, page_rows, pause_rows)
    kinds, kinds_all = kind_rows(page_rows)
    pauses = pause_reason_rows(branch, pause_rows)
    daily = day_rows(span, archived, per_day, [c[0] for c in categories])
    tickets = sum(per_day.values())
    vip_called = sum(w.vip_called for w in weeks)
    vip_over = sum(w.vip_over for w in weeks)
    summary = TrendsSummary(
        tickets=tickets, tickets_per_day=round(tickets / len(archived), 1) if archived else None,
        called=len(every_wait), wait_p50_s=percentile(every_wait, 50), wait_p90_s=percentile(every_wait, 90),
        vip_called=vip_called, vip_over=vip_over, vip_over_share=share(vip_over, vip_called),
        vip_not_called=sum(w.vip_not_called for w in weeks),
        pages=kinds_all.pages - kinds_all.information, acknowledged=kinds_all.acknowledged,
        ack_p50_s=kinds_all.ack_p50_s, ack_p90_s=kinds_all.ack_p90_s, escalated=kinds_all.escalated,
        pauses=sum(r.pauses for r in pauses), pause_s=sum(r.actual_s for r in pauses),
        pause_overruns=sum(r.overruns for r in pauses),
    )
    return Trends(
        branch=branch.id, branch_name=branch.name, branch_name_en=branch.name_en, timezone=branch.timezone,
        generated_at=local_iso(branch, now), range=span.key, start=span.start.isoformat(),
        end=span.end.isoformat(), days=span.days, archived_days=len(archived),
        vip_wait_threshold_minutes=branch.vip_wait_threshold_minutes, summary=summary,
        categories=category_rows, weekdays=weekdays, hours=hours, heatmap=heatmap, weeks=weeks,
        ack_weeks=ack_weeks, kinds=kinds, kinds_all=kinds_all, pauses=pauses, daily=daily,
    )


def share(part: int, whole: int) -> float | None:
    """Return part / whole to 4 decimals, or None when whole is 0."""
    return round(part / whole, 4) if whole else None


def week_rows(span: Span, archived: set[str], per_day: dict[tuple[str, str], int],
              vip_waits: dict[str, list[float | None]], threshold_s: float, page_rows: Sequence[PageFacts],
              pause_rows: Sequence[tuple[str, str, int, int]]) -> tuple[list[WeekRow], list[AckWeekRow]]:
    """Sum each calendar week of the range, and time to acknowledge per week and kind."""
    mondays = span.mondays()
    monday_of = {day.isoformat(): week_of(day) for day in span.each_day()}
    tickets: dict[date, int] = defaultdict(int)
    for (day, _), n in per_day.items():
        tickets[monday_of[day]] += n
    vip: dict[date, list[float | None]] = defaultdict(list)
    for day, waits in vip_waits.items():
        vip[monday_of[day]] += waits
    pages: dict[date, list[PageFacts]] = defaultdict(list)
    for page in page_rows:
        pages[monday_of[page[0]]].append(page)
    pauses: dict[date, list[tuple[str, str, int, int]]] = defaultdict(list)
    for pause in pause_rows:
        pauses[monday_of[pause[0]]].append(pause)
    archived_in: dict[date, int] = defaultdict(int)
    for day in archived:
        archived_in[monday_of[day]] += 1

    rows, by_kind = [], []
    for monday in mondays:
        sunday = monday + timedelta(days=6)
        name = week_name(monday)
        waits = [w for w in vip[monday] if w is not None]
        over = sum(w > threshold_s for w in waits)
        kinds, everything = kind_rows(pages[monday], every_kind=False)
        # The kinds with a page to acknowledge that week (information alone has none), then all of them.
        for row in [*(k for k in kinds if k.pages > k.information), everything]:
            by_kind.append(AckWeekRow(week=name, start=monday.isoformat(), kind=row.kind, name=row.name,
                                      name_en=row.name_en, pages=row.pages - row.information,
                                      acknowledged=row.acknowledged, ack_p50_s=row.ack_p50_s,
                                      ack_p90_s=row.ack_p90_s, escalated=row.escalated))
        week_pauses = pauses[monday]
        rows.append(WeekRow(
            week=name, start=monday.isoformat(), end=sunday.isoformat(),
            days=(min(sunday, span.end) - max(monday, span.start)).days + 1, archived_days=archived_in[monday],
            tickets=tickets[monday], vip_called=len(waits), vip_over=over, vip_over_share=share(over, len(waits)),
            vip_not_called=len(vip[monday]) - len(waits),
            pages=everything.pages - everything.information, acknowledged=everything.acknowledged,
            ack_p50_s=everything.ack_p50_s, ack_p90_s=everything.ack_p90_s, escalated=everything.escalated,
            pauses=len(week_pauses), pause_s=sum(z[3] for z in week_pauses),
            pause_overruns=sum(z[3] > z[2] * 60 for z in week_pauses),
        ))
    return rows, by_kind


def kind_rows(page_rows: Sequence[PageFacts], *, every_kind: bool = True) -> tuple[list[PageKindRow], PageKindRow]:
    """Count pages per kind, as the daily report does (every known kind unless told not to, then any other),
    with time to acknowledge and escalations; and all kinds together."""
    by_kind: dict[str, list[PageFacts]] = defaultdict(list)
    for page in page_rows:
        by_kind[page[1]].append(page)
    known = [str(kind) for kind in KIND_NAMES]
    kinds = [k for k in known if every_kind or k in by_kind] + sorted(set(by_kind) - set(known))
    rows = [kind_row(kind, *KIND_NAMES.get(kind, (kind, kind)), by_kind.get(kind, [])) for kind in kinds]
    return rows, kind_row("all", "全部", "All pages", page_rows)


def kind_row(kind: str, name: str, name_en: str, pages: Sequence[PageFacts]) -> PageKindRow:
    """Count a kind's pages by how they ended, with the nearest-rank p50, p90 and max time to acknowledge."""
    acks, information, cleared = [], 0, 0
    for _, _, priority, ack, resolution, _ in pages:
        if priority == INFORMATION:
            information += 1
        elif ack is not None:
            acks.append(ack)
        elif resolution in SYSTEM_CLOSED:
            cleared += 1
    acks.sort()
    return PageKindRow(
        kind=kind, name=name, name_en=name_en, pages=len(pages), information=information, acknowledged=len(acks),
        cleared=cleared, unacknowledged=len(pages) - information - len(acks) - cleared,
        ack_p50_s=percentile(acks, 50), ack_p90_s=percentile(acks, 90), ack_max_s=acks[-1] if acks else None,
        escalated=sum(page[5] > 0 for page in pages),
    )


def pause_reason_rows(branch: Branch, pause_rows: Sequence[tuple[str, str, int, int]]) -> list[PauseReasonRow]:
    """Sum the pauses of each reason (the branch's reasons in its order, then any other found)."""
    by_reason: dict[str, list[tuple[str, str, int, int]]] = defaultdict(list)
    for pause in pause_rows:
        by_reason[pause[1]].append(pause)
    reasons = [r.id for r in branch.pause_reasons] + sorted(set(by_reason) - {r.id for r in branch.pause_reasons})
    rows = []
    for reason_id in reasons:
        mine = by_reason.get(reason_id, [])
        reason = branch.pause_reason(reason_id)
        actual = sum(z[3] for z in mine)
        overs = [z[3] - z[2] * 60 for z in mine if z[3] > z[2] * 60]
        rows.append(PauseReasonRow(
            reason=reason_id, name=reason.name if reason else reason_id,
            name_en=reason.name_en if reason else reason_id,
            pauses=len(mine), actual_s=actual, expected_s=sum(z[2] * 60 for z in mine),
            actual_minutes=round(actual / 60, 1), overruns=len(overs), over_s=sum(overs),
        ))
    return rows


def day_rows(span: Span, archived: set[str], per_day: dict[tuple[str, str], int],
             categories: Sequence[str]) -> list[DayRow]:
    """Count each day's tickets per category, every day of the range (a day not archived counts none)."""
    rows = []
    for day in span.each_day():
        name = day.isoformat()
        counts = {c: per_day.get((name, c), 0) for c in categories}
        rows.append(DayRow(day=name, weekday=day.weekday(), archived=name in archived, counts=counts,
                           total=sum(counts.values())))
    return rows


def render_page(db: Engine, branch: Branch, range_key: str, today: str, now: datetime | None = None) -> str:
    """Return the whole trends page (HTML) of a branch over a range, as a request draws it but without one: the
    figures, the charts and the template (`views.render_trends`, imported on call since views imports this)."""
    from services.pager.trends.views import render_trends

    return render_trends(db, branch, range_key, today, now=now)
