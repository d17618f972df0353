"""The trends page: a few archived days written into the records database by hand, whose every figure is worked
out below, on SQLite and on PostgreSQL (`records_url`).

The clock stands at Wednesday 19 March 2025, 09:00 in Shanghai: the range ends on Tuesday 18 March, and 4 weeks
start on Wednesday 19 February. Archived: Monday 10, Tuesday 11 and Monday 17 March in the range; Tuesday
18 February (the day before it starts) and today, which must count nowhere. The weeks are 2025-W08 (from
17 February, 5 of its days in the range) to 2025-W12 (from 17 March, 2 of its days in the range).
"""

from __future__ import annotations

import csv
import io
import json
import re
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import Engine, func, insert, select

from services.domain.branch import Branch
from services.domain.clock import SYSTEM
from services.domain.errors import Unprocessable
from services.pager.report import session as report_session
from services.pager.trends import charts, figures, spans
from services.pager.trends.csv import TABLES, to_csv
from services.pager.trends.models import AckWeekRow, HeatCell, PauseReasonRow, WeekRow
from services.pager.trends.views import render_trends
from services.records import database, tables
from services.runtime.settings import Context
from tests.conftest import BRANCH, QUICK, FakeClock, bearer, state

API = f"/api/v1/branches/{BRANCH}/trends"
PAGE = f"/branches/{BRANCH}/trends"
ZONE = ZoneInfo("Asia/Shanghai")
NOW = datetime(2025, 3, 19, 9, 0, tzinfo=ZONE)
TODAY = "2025-03-19"
MON10, TUE11, MON17 = "2025-03-10", "2025-03-11", "2025-03-17"
BEFORE, LATER = "2025-02-18", TODAY  # archived, outside the range
# The waits (seconds) of the tickets issued per day, category and hour; None: never called.
TICKETS: dict[tuple[str, str, int], list[float | None]] = {
    (MON10, "personal", 9): [60, 120, 180, 240, 300, 360, 420, 480, 540, 600, None],
    (MON10, "vip", 9): [300, 600, 600.5, 900, None],  # over 10:00: 600.5 and 900
    (TUE11, "personal", 10): [100, 200, 300],
    (TUE11, "vip", 11): [1200],  # over
    (MON17, "personal", 9): [30, 900],
    (MON17, "vip", 15): [100, 700],  # over: 700
    (MON17, "corporate", 14): [50],
    (BEFORE, "personal", 9): [9999.0],
    (LATER, "personal", 9): [8888.0],
}
# Pages: (day, kind, priority, ack_s, resolution, escalation_level, test)
PAGES = [
    (MON10, "help", "high", 20.0, None, 0, False),
    (MON10, "help", "high", 40.0, None, 0, False),
    (MON10, "help", "high", 100.0, None, 1, False),
    (MON10, "distress", "urgent", 10.0, None, 0, False),
    (MON10, "pause", "normal", 30.0, None, 0, False),
    (MON10, "resume", "low", 45.0, None, 0, False),  # information: its acknowledgement is no time to acknowledge
    (TUE11, "help", "high", None, "cleared", 0, False),
    (TUE11, "ask_supervisor", "high", None, None, 2, False),
    (MON17, "help", "high", 60.0, None, 0, False),
    (MON17, "distress", "urgent", 5.0, None, 1, True),  # a drill: counts nowhere
    (LATER, "help", "high", 999.0, None, 3, False),
]
# Pauses: (day, counter, reason, expected_minutes, actual_s)
PAUSES = [
    (MON10, "1", "break", 15, 900),  # exactly as expected: no overrun
    (MON10, "2", "break", 15, 1080),  # 3:00 over
    (MON10, "vip", "vault_transfer", 10, 900),  # 5:00 over
    (MON17, "3", "review", 20, 1000),  # early
    (MON17, "4", "=1+1", 5, 400),  # a reason the branch no longer has, that a spreadsheet would run: 1:40 over
]


def iso_at(day: str, hour: int, seconds: float = 0) -> str:
    moment = datetime.fromisoformat(f"{day}T{hour:02d}:05:00+08:00") + timedelta(seconds=seconds)
    return moment.isoformat(timespec="milliseconds")


def write(db: Engine, branch_id: str = BRANCH) -> None:
    """Write the archived days of TICKETS, PAGES and PAUSES, each day as the archive writes it: its row first."""
    every_day = sorted({d for d, _, _ in TICKETS} | {p[0] for p in PAGES} | {z[0] for z in PAUSES})
    numbers: dict[tuple[str, str], int] = {}
    prefix = {"vip": "V", "personal": "A", "corporate": "B"}
    with db.begin() as connection:
        for day in every_day:
            connection.execute(insert(tables.days), [{
                "branch": branch_id, "day": day, "archived_at": f"{day}T23:00:00.000+08:00", "tickets": 0,
                "pauses": 0, "pages": 0, "page_events": 0, "alerts": 0, "outages": 0}])
        rows = []
        for (day, category, hour), waits in TICKETS.items():
            for wait in waits:
                n = numbers[day, category] = numbers.get((day, category), 0) + 1
                rows.append({
                    "branch": branch_id, "day": day, "number": f"{prefix[category]}{n:03d}", "category": category,
                    "final_category": category, "status": "served" if wait is not None else "expired",
                    "issued_at": iso_at(day, hour), "estimate_s": 300,
                    "called_at": iso_at(day, hour, wait) if wait is not None else None, "counter": "1",
                    "window": "1", "recalls": 0, "recalled_at": None, "transfers": 0, "transferred_from": None,
                    "transferred_to": None, "transferred_at": None, "finished_at": None,
                    "expired_at": iso_at(day, 17) if wait is None else None, "wait_s": wait,
                    "weekday": date.fromisoformat(day).weekday(), "hour": hour})
        connection.execute(insert(tables.tickets), rows)
        connection.execute(insert(tables.pages), [{
            "branch": branch_id, "id": f"{day}-{n}", "day": day, "kind": kind, "priority": priority, "counter": "1",
            "window": "1", "message": kind, "test": test, "created_at": iso_at(day, 10),
            "acknowledged_at": iso_at(day, 10, ack) if ack is not None else None,
            "acknowledged_by": "lobby-manager" if ack is not None else None, "ack_s": ack, "resolved_at": None,
            "resolved_by": None, "resolution": resolution, "resolution_note": None, "escalation_level": level,
            "presses": 1, "repeats": 0, "page": {"id": f"{day}-{n}"}}
            for n, (day, kind, priority, ack, resolution, level, test) in enumerate(PAGES)])
        connection.execute(insert(tables.pauses), [{
            "branch": branch_id, "day": day, "counter": counter, "since": iso_at(day, 12), "window": counter,
            "reason": reason, "note": None, "expected_minutes": expected, "resumed_at": iso_at(day, 12, actual),
            "actual_s": actual} for day, counter, reason, expected, actual in PAUSES])


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> FakeClock:
    """Stop the clock the services read at NOW."""
    fake = FakeClock(NOW)
    monkeypatch.setattr(SYSTEM, "now", fake.now)
    monkeypatch.setattr(SYSTEM, "now_ms", fake.now_ms)
    return fake


@pytest.fixture
def records(records_url: str) -> Iterator[Engine]:
    """The records database, holding the days above."""
    db = database.connect(records_url)
    write(db)
    yield db
    db.dispose()


@pytest.fixture
def pager(r, ctx: Context, records_url: str, records: Engine, clock: FakeClock) -> Iterator[Any]:
    """A test client of the pager service whose records database is `records`."""
    from services.pager.app import create_app

    with_records = Context(ctx.settings.model_copy(update={"database_url": records_url}), ctx.branches)
    yield create_app({"TESTING": True, "CONTEXT": with_records}).test_client()
    database.engine(records_url).dispose()


@pytest.fixture
def device(token) -> str:
    return token("device", "lobby-manager")


def built(db: Engine, branch: Branch, key: str = "4w"):
    return figures.build(db, branch, key, TODAY, NOW)


# The figures, worked out by hand.


def test_the_ranges_end_yesterday_and_reach_back_28_91_or_365_days():
    assert [(s.start.isoformat(), s.end.isoformat(), s.days) for s in
            (spans.span_of(key, TODAY) for key in spans.RANGES)] == [
        ("2025-02-19", "2025-03-18", 28), ("2024-12-18", "2025-03-18", 91), ("2024-03-19", "2025-03-18", 365)]
    assert [spans.week_name(m) for m in spans.span_of("4w", TODAY).mondays()] == [
        "2025-W08", "2025-W09", "2025-W10", "2025-W11", "2025-W12"]
    assert spans.parse_range(None) == spans.parse_range("") == "4w"
    with pytest.raises(Unprocessable) as refused:
        spans.parse_range("1y")
    assert refused.value.code == "invalid_range" and "4w, quarter, 12m" in refused.value.message


def test_a_heatmap_cell_is_the_nearest_rank_p50_and_p90_of_its_waits(records, branch):
    trends = built(records, branch)
    assert trends.weekdays == [0, 1] and trends.hours == [9, 10, 11, 12, 13, 14, 15]
    cell = {(c.category, c.weekday, c.hour): c for c in trends.heatmap}
    # Monday 09:00, personal: 60 … 600 on the 10th (and one never called), 30 and 900 on the 17th. Of the 12
    # waits, p50 is the ⌈6⌉th smallest, 300; p90 the ⌈10.8⌉th = 11th, 600. Not 9999 (before the range), nor 8888
    # (today).
    assert cell["personal", 0, 9] == HeatCell(category="personal", weekday=0, hour=9, tickets=13, called=12,
                                               wait_p50_s=300, wait_p90_s=600)
    # Tuesday 10:00: 100, 200, 300: p50 the 2nd, p90 the ⌈2.7⌉th = 3rd.
    assert (cell["personal", 1, 10].wait_p50_s, cell["personal", 1, 10].wait_p90_s) == (200, 300)
    assert cell["personal", 1, 9] == HeatCell(category="personal", weekday=1, hour=9, tickets=0, called=0,
                                               wait_p50_s=None, wait_p90_s=None)
    # VIP on Mondays at 09:00: 300, 600, 600.5, 900 (one never called): p50 600, p90 900.
    assert (cell["vip", 0, 9].tickets, cell["vip", 0, 9].wait_p50_s, cell["vip", 0, 9].wait_p90_s) == (5, 600, 900)
    assert len(trends.heatmap) == 3 * 2 * 7, "every category × weekday × hour"
    personal = next(c for c in trends.categories if c.category == "personal")
    # The range's 15 personal waits: 30 60 100 120 180 200 240 300 300 360 420 480 540 600 900: p50 the 8th,
    # p90 the ⌈13.5⌉th = 14th.
    assert (personal.issued, personal.called, personal.wait_p50_s, personal.wait_p90_s) == (16, 15, 300, 600)
    s = trends.summary
    assert (s.tickets, s.called, s.tickets_per_day) == (25, 23, round(25 / 3, 1))


def test_the_share_of_vip_waits_over_the_threshold_is_counted_by_week(records, branch):
    trends = built(records, branch)
    weeks = {w.week: w for w in trends.weeks}
    assert list(weeks) == ["2025-W08", "2025-W09", "2025-W10", "2025-W11", "2025-W12"]
    # Week 11: 300, 600, 600.5, 900 on the 10th and 1200 on the 11th: over 10:00 (600 is not) are 3 of 5.
    w11 = weeks["2025-W11"]
    assert (w11.vip_called, w11.vip_over, w11.vip_over_share, w11.vip_not_called) == (5, 3, 0.6, 1)
    assert (w11.start, w11.end, w11.days, w11.archived_days, w11.tickets) == ("2025-03-10", "2025-03-16", 7, 2, 20)
    w12 = weeks["2025-W12"]
    assert (w12.vip_called, w12.vip_over, w12.vip_over_share, w12.days, w12.archived_days) == (2, 1, 0.5, 2, 1)
    w08 = weeks["2025-W08"]
    assert (w08.days, w08.archived_days, w08.vip_called, w08.vip_over_share) == (5, 0, 0, None), \
        "18 February is archived, but before the range"
    assert (trends.summary.vip_over, trends.summary.vip_called, trends.summary.vip_over_share) == (4, 7, 0.5714)


def test_time_to_acknowledge_by_kind_and_week_leaves_out_drills_and_information(records, branch):
    trends = built(records, branch)
    kinds = {k.kind: k for k in trends.kinds}
    # Help: 20, 40, 100 and 60 acknowledged (p50 the 2nd: 40; p90 the ⌈3.6⌉th: 100), one cleared by the system.
    help_ = kinds["help"]
    assert (help_.pages, help_.acknowledged, help_.cleared, help_.unacknowledged) == (5, 4, 1, 0)
    assert (help_.ack_p50_s, help_.ack_p90_s, help_.ack_max_s, help_.escalated) == (40, 100, 100, 1)
    assert (kinds["distress"].pages, kinds["distress"].ack_p50_s, kinds["distress"].escalated) == (1, 10, 0), \
        "the drill is not a distress call"
    assert (kinds["resume"].information, kinds["resume"].ack_p50_s) == (1, None)
    assert (kinds["ask_supervisor"].unacknowledged, kinds["ask_supervisor"].escalated) == (1, 1)
    every = trends.kinds_all
    # 10 20 30 40 60 100: p50 the 3rd, p90 the ⌈5.4⌉th = 6th.
    assert (every.pages, every.information, every.acknowledged, every.ack_p50_s, every.ack_p90_s,
            every.escalated) == (9, 1, 6, 30, 100, 2)
    weeks = {w.week: w for w in trends.weeks}
    # Week 11: 10 20 30 40 100 of 7 pages needing an acknowledgement: p50 the 3rd, p90 the ⌈4.5⌉th = 5th.
    assert (weeks["2025-W11"].pages, weeks["2025-W11"].acknowledged, weeks["2025-W11"].ack_p50_s,
            weeks["2025-W11"].ack_p90_s, weeks["2025-W11"].escalated) == (7, 5, 30, 100, 2)
    assert (weeks["2025-W12"].pages, weeks["2025-W12"].ack_p50_s, weeks["2025-W12"].escalated) == (1, 60, 0)
    by_kind = [(a.week, a.kind, a.pages, a.ack_p50_s, a.escalated) for a in trends.ack_weeks]
    assert by_kind == [("2025-W08", "all", 0, None, 0), ("2025-W09", "all", 0, None, 0),
                       ("2025-W10", "all", 0, None, 0),
                       ("2025-W11", "distress", 1, 10, 0), ("2025-W11", "help", 4, 40, 1),
                       ("2025-W11", "ask_supervisor", 1, None, 1), ("2025-W11", "pause", 1, 30, 0),
                       ("2025-W11", "all", 7, 30, 2),
                       ("2025-W12", "help", 1, 60, 0), ("2025-W12", "all", 1, 60, 0)]
    assert (trends.summary.pages, trends.summary.ack_p50_s, trends.summary.escalated) == (8, 30, 2)


def test_pause_time_by_reason_and_overruns(records, branch):
    pauses = {p.reason: p for p in built(records, branch).pauses}
    assert list(pauses) == ["vault_transfer", "corporate_cash", "review", "break", "other", "=1+1"]
    assert pauses["break"] == PauseReasonRow(reason="break", name="休息", name_en="Break", pauses=2, actual_s=1980,
                                             expected_s=1800, actual_minutes=33.0, overruns=1, over_s=180)
    assert (pauses["vault_transfer"].overruns, pauses["vault_transfer"].over_s) == (1, 300)
    assert (pauses["review"].overruns, pauses["review"].over_s) == (0, 0), "ended early"
    assert (pauses["=1+1"].name, pauses["=1+1"].overruns, pauses["=1+1"].over_s) == ("=1+1", 1, 100)
    assert pauses["other"].pauses == 0
    s = built(records, branch).summary
    assert (s.pauses, s.pause_s, s.pause_overruns) == (5, 900 + 1080 + 900 + 1000 + 400, 3)


def test_tickets_per_day_count_only_the_archived_days_of_the_range(records, branch):
    trends = built(records, branch)
    daily = {d.day: d for d in trends.daily}
    assert len(daily) == 28 and trends.daily[0].day == "2025-02-19" and trends.daily[-1].day == "2025-03-18"
    assert (daily[MON10].counts, daily[MON10].total) == ({"vip": 5, "personal": 11, "corporate": 0}, 16)
    assert (daily[TUE11].total, daily[MON17].total, daily[MON17].counts["corporate"]) == (4, 5, 1)
    assert [d.day for d in trends.daily if d.archived] == [MON10, TUE11, MON17]
    assert daily["2025-03-12"].archived is False and daily["2025-03-12"].total == 0
    assert (trends.archived_days, trends.days, trends.start, trends.end) == (3, 28, "2025-02-19", "2025-03-18")
    # The quarter holds 18 February too.
    quarter = built(records, branch, "quarter")
    assert (quarter.archived_days, quarter.summary.tickets, len(quarter.daily)) == (4, 26, 91)


def test_figures_read_a_branch_alone(records, branch, quick_branch):
    assert built(records, quick_branch).archived_days == 0
    assert built(records, quick_branch).summary.tickets == 0


# Over HTTP.


def _csv(response) -> tuple[list[str], list[dict[str, str]]]:
    raw = response.get_data()
    assert raw.startswith("\ufeff".encode()), "a byte order mark, so Excel reads UTF-8"
    header, *rows = csv.reader(io.StringIO(raw.decode("utf-8-sig")))
    return header, [dict(zip([cell.split()[-1] for cell in header], row, strict=True)) for row in rows]


def test_json_is_the_trends_document_and_documented(pager, device, records, branch):
    response = pager.get(f"{API}?range=4w", headers=bearer(device))
    assert response.status_code == 200 and response.headers["Cache-Control"] == "no-store"
    assert response.json == {"trends": built(records, branch).model_dump(mode="json")}
    assert pager.get(API, headers=bearer(device)).json["trends"]["range"] == "4w", "4 weeks by default"
    assert pager.get(f"{API}?range=12m", headers=bearer(device)).json["trends"]["days"] == 365
    doc = pager.get("/openapi.json").json
    paths = doc["paths"]
    operation = paths["/api/v1/branches/{branch}/trends"]["get"]
    assert {"200", "401", "403", "422", "503"} <= set(operation["responses"])
    assert "TrendsEnvelope" in doc["components"]["schemas"] and "HeatCell" in doc["components"]["schemas"]
    assert [p["name"] for p in operation["parameters"] if p["in"] == "query"] == ["range", "token"]
    for table in TABLES:
        assert "text/csv" in paths[f"/api/v1/branches/{{branch}}/trends/{table}.csv"]["get"]["responses"]["200"][
            "content"]
    assert "post" in paths["/api/v1/branches/{branch}/trends/session"]


def test_each_table_downloads_as_csv_with_bilingual_headers_and_formula_safe_text(pager, device):
    headers = {}
    for table in TABLES:
        response = pager.get(f"{API}/{table}.csv?range=4w&token={device}")
        assert response.status_code == 200, response.get_data(as_text=True)
        assert response.headers["Content-Type"] == "text/csv; charset=utf-8"
        assert response.headers["Content-Disposition"] == \
            f'attachment; filename="{BRANCH}-trends-4w-2025-03-18-{table}.csv"'
        headers[table], rows = _csv(response)
        for cell in headers[table]:  # 类别 category: the Chinese name, then the JSON field name
            chinese, field = cell.rsplit(" ", 1)
            assert re.search("[\u4e00-\u9fff]", chinese) and re.fullmatch("[a-z_0-9]+", field), (table, cell)
        if table == "pauses":
            formula = next(row for row in rows if row["reason"].endswith("=1+1"))
            assert (formula["reason"], formula["name"], formula["overruns"]) == ("'=1+1", "'=1+1", "1"), \
                "a spreadsheet never runs a reason as a formula"
        if table == "heatmap":
            cell = next(row for row in rows if (row["category"], row["weekday"], row["hour"]) == ("personal", "0", "9"))
            assert (cell["wait_p50_s"], cell["wait_p90_s"], cell["called"]) == ("300.0", "600.0", "12")
        if table == "weeks":
            assert next(row for row in rows if row["week"] == "2025-W11")["vip_over_share"] == "0.6"
    assert headers["heatmap"][:3] == ["类别 category", "星期（0 周一） weekday", "时 hour"]
    assert headers["days"] == ["日期 day", "星期（0 周一） weekday", "已归档 archived", "贵宾 vip", "个人业务 personal",
                               "对公业务 corporate", "合计 total"]
    models = {"heatmap": HeatCell, "weeks": WeekRow, "ack_weeks": AckWeekRow, "pauses": PauseReasonRow}
    for table, model in models.items():
        assert [cell.split()[-1] for cell in headers[table]] == list(model.model_fields), table


def test_a_category_named_like_a_formula_is_quoted_in_the_csv_header(records, branch):
    hostile = built(records, branch)
    hostile = hostile.model_copy(update={"categories": [c.model_copy(update={"name": "=HYPERLINK(1)"})
                                                        for c in hostile.categories]})
    header = next(csv.reader(io.StringIO(to_csv(hostile, "days").lstrip("\ufeff"))))
    assert header[3:6] == ["'=HYPERLINK(1) vip", "'=HYPERLINK(1) personal", "'=HYPERLINK(1) corporate"]


def test_the_page_draws_every_chart_and_links_to_the_report_and_back(pager, device):
    response = pager.get(f"{PAGE}?range=4w&token={device}")
    assert response.status_code == 200 and response.mimetype == "text/html"
    html = response.get_data(as_text=True)
    assert "unsafe-inline" not in response.headers["Content-Security-Policy"]
    assert response.headers["Cache-Control"] == "no-store" and response.headers["Referrer-Policy"] == "no-referrer"
    for tag in re.findall(r"<script\b[^>]*>", html):
        assert 'src="' in tag or 'type="application/json"' in tag, tag
    assert "<style" not in html and " style=" not in html
    drawn = re.findall(r'<svg xmlns="http://www.w3.org/2000/svg" class="chart chart-(wide|compact)" id="([^"]+)"',
                       html)
    ids = [chart_id for _, chart_id in drawn]
    assert ids == ["chart-heat-vip", "chart-heat-vip-compact", "chart-heat-personal", "chart-heat-personal-compact",
                   "chart-heat-corporate", "chart-heat-corporate-compact", "chart-vip", "chart-vip-compact",
                   "chart-acks", "chart-acks-compact", "chart-kinds", "chart-kinds-compact", "chart-pauses",
                   "chart-pauses-compact", "chart-days", "chart-days-compact"]
    for svg in re.findall(r'<svg xmlns="http://www.w3.org/2000/svg" class="chart.*?</svg>', html, re.S):
        tree = ET.fromstring(svg)
        ns = "{http://www.w3.org/2000/svg}"
        assert tree.get("role") == "img" and tree.find(f"{ns}title").text and tree.find(f"{ns}desc").text
    heat = re.search(r'<svg[^>]*id="chart-heat-personal".*?</svg>', html, re.S).group(0)
    assert ">5:00</text>" in heat and ">10:00</text>" in heat, "Monday 09:00: p50 5:00, p90 10:00"
    assert "60%" in re.search(r'<svg[^>]*id="chart-vip".*?</svg>', html, re.S).group(0), "week 11's share"
    assert 'id="kpi-tickets">25<' in html and 'id="kpi-vip">57.1%<' in html and 'id="kpi-escalated">2<' in html
    assert 'aria-current="page" data-range="4w"' in html
    for table in TABLES:
        assert f'href="{API}/{table}.csv?range=4w"' in html
    assert f'href="{API}?range=4w"' in html
    assert f'href="/branches/{BRANCH}/report"' in html, "back to the daily report"
    assert "token=" not in html and device not in html
    report = pager.get(f"/branches/{BRANCH}/report", headers=bearer(device)).get_data(as_text=True)
    assert f'id="rp-trends" href="{PAGE}"' in report, "the daily report links to the trends"


def test_charts_escape_text_and_say_so_when_empty(records, branch, quick_branch):
    trends = built(records, branch)
    hostile = trends.model_copy(update={"categories": [c.model_copy(update={"name": '<script>"&'})
                                                       for c in trends.categories]})
    for svg in (charts.heatmap(hostile, hostile.categories[1]), charts.tickets_per_day(hostile)):
        assert "<script>" not in str(svg) and "&lt;script&gt;&#34;&amp;" in str(svg)
        ET.fromstring(str(svg))
    empty = built(records, quick_branch)
    for draw in (charts.vip_share, charts.acks_by_week, charts.acks_by_kind, charts.pauses_by_reason,
                 charts.tickets_per_day):
        for compact in (False, True):
            svg = str(draw(empty, compact=compact))
            assert "No " in svg and "<rect" not in svg, draw.__name__
            ET.fromstring(svg)
    assert "No ticket called" in str(charts.heatmap(empty, empty.categories[0]))


# Who may read them, and what a wrong request does.


ROUTES = [API, *(f"{API}/{t}.csv" for t in TABLES), PAGE]


def test_only_a_manager_of_the_branch_may_read_the_trends(pager, token, device):
    wrong = [
        (None, 401, "missing_token"),
        ("garbage", 401, "invalid_token"),
        (token("counter", "vip"), 403, "wrong_token_kind"),
        (token("screen", "lobby"), 403, "wrong_token_kind"),  # a kiosk's or a display's
        (token("device", "lobby-manager", QUICK), 403, "wrong_branch"),
        (token("device", "cleaner"), 403, "unknown_manager"),
    ]
    for url in ROUTES:
        page = url.startswith("/branches/")
        for tok, status, code in wrong:
            response = pager.get(url, headers=bearer(tok) if tok else {})
            assert response.status_code == status, (url, code, response.status_code)
            if page:  # a form for the token, no trends, and no field that would send it in an address
                html = response.get_data(as_text=True)
                assert response.mimetype == "text/html" and 'id="gate-token"' in html and "chart-vip" not in html
                assert 'name="token"' not in html
                assert json.loads(re.search(r'id="page-data">(.*?)</script>', html).group(1))["problem"] == code
            else:
                assert response.json["error"]["code"] == code
        for good in ({"headers": bearer(device)}, {"query_string": {"token": device}}):
            assert pager.get(url, **good).status_code == 200, (url, good)
    assert pager.get("/api/v1/branches/nowhere/trends", headers=bearer(device)).status_code == 404
    assert pager.get("/branches/nowhere/trends", headers=bearer(device)).status_code == 404


def _rows(db: Engine) -> dict[str, int]:
    with db.connect() as connection:
        return {t.name: connection.execute(select(func.count()).select_from(t)).scalar_one()
                for t in (tables.days, *tables.RECORDS)}


def test_a_bad_range_is_a_clear_422_that_changes_nothing(pager, r, device, records):
    before, rows = state(r), _rows(records)
    for url in ROUTES:
        for bad in ("1y", "4W", "=1+1", "x" * 16):
            response = pager.get(url, query_string={"range": bad}, headers=bearer(device))
            assert response.status_code == 422, (url, bad)
            if url.startswith("/branches/"):
                html = response.get_data(as_text=True)
                assert "range must be one of 4w, quarter, 12m" in html and 'name="range"' in html
                assert "chart-vip" not in html
            else:
                assert response.json["error"]["code"] == "invalid_range"
                assert response.json["error"]["message"].startswith("range must be one of 4w, quarter, 12m")
    assert pager.get(API, query_string={"range": "x" * 17}, headers=bearer(device)).status_code == 422
    assert state(r) == before and _rows(records) == rows


def test_without_a_records_database_the_page_says_so_and_the_api_answers_503(r, ctx, token, clock):
    from services.pager.app import create_app

    bare = Context(ctx.settings.model_copy(update={"database_url": None}), ctx.branches)
    pager = create_app({"TESTING": True, "CONTEXT": bare}).test_client()
    device = token("device", "lobby-manager")
    for url in (API, f"{API}/weeks.csv"):
        response = pager.get(url, headers=bearer(device))
        assert response.status_code == 503, url
        assert response.json["error"]["code"] == "no_records_database"
        assert "DATABASE_URL" in response.json["error"]["message"]
    page = pager.get(PAGE, headers=bearer(device))
    html = page.get_data(as_text=True)
    assert page.status_code == 503 and 'id="no-database"' in html and "未配置记录数据库" in html
    assert "No records database" in html and "chart-" not in html
    assert pager.get(API).status_code == 401, "who asks is checked first"
    assert pager.get(f"{API}?range=1y", headers=bearer(device)).status_code == 422


def _set_cookies(response) -> list[str]:
    return [c for c in response.headers.getlist("Set-Cookie") if c.startswith(f"{report_session.SESSION_COOKIE}=")]


def test_a_token_in_the_address_opens_a_reading_session_for_the_trends(pager, r, device):
    response = pager.get(f"{PAGE}?token={device}")
    assert response.status_code == 200
    cookies = _set_cookies(response)
    assert sorted(re.search(r"Path=([^;]+)", c).group(1) for c in cookies) == [API, PAGE]
    assert all("HttpOnly" in c and "SameSite=Strict" in c for c in cookies)
    # The cookie alone reads the page in another range, the JSON and every CSV; it opens nothing.
    assert pager.get(f"{PAGE}?range=quarter").status_code == 200
    assert pager.get(f"{API}?range=12m").json["trends"]["range"] == "12m"
    for table in TABLES:
        assert pager.get(f"{API}/{table}.csv").status_code == 200
    assert pager.post(f"{API}/session").status_code == 401, "a session is opened by a header only"
    assert pager.get(f"/api/v1/branches/{BRANCH}/pages").status_code == 401


def test_the_page_exchanges_the_devices_token_for_a_session_on_its_paths(pager, token, device):
    gate = pager.get(PAGE)
    assert gate.status_code == 401
    data = json.loads(re.search(r'id="page-data">(.*?)</script>', gate.get_data(as_text=True)).group(1))
    assert data["session_url"] == f"{API}/session" and data["reading"] == {"zh": "趋势", "en": "trends"}
    for tok, status in (("garbage", 401), (token("counter", "vip"), 403), (token("device", "cleaner"), 403)):
        assert pager.post(f"{API}/session", headers=bearer(tok)).status_code == status
    answer = pager.post(f"{API}/session", headers=bearer(device))
    assert answer.status_code == 200 and answer.json["session"]["paths"] == [PAGE, API]
    assert len(_set_cookies(answer)) == 2
    assert pager.get(PAGE).status_code == 200


# Outside a request: what bench/ times.


def test_render_trends_draws_the_page_a_request_draws(pager, device, records, branch):
    served = pager.get(f"{PAGE}?range=quarter", headers=bearer(device)).get_data(as_text=True)
    drawn = render_trends(records, branch, "quarter", TODAY, now=NOW)
    assert figures.render_page(records, branch, "quarter", TODAY, now=NOW) == drawn
    charted = re.compile(r'<svg xmlns="http://www.w3.org/2000/svg" class="chart.*?</svg>', re.S)
    assert charted.findall(drawn) == charted.findall(served)
    assert 'id="kpi-tickets">26<' in drawn and "大堂经理" in drawn
    with pytest.raises(Unprocessable):
        render_trends(records, branch, "1y", TODAY)
