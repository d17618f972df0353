"""The branch manager's daily report: a scripted day whose every number is worked out by hand below.

The day is played in this process on the fake clock: tickets through `issue`, calls, pauses and
resumes through the counter's `Desk`, alerts through the counter API, acknowledgements and a reply through
the pager API, the counter worker's watch (VIP waits, pause overruns) and the pager's timers (escalation, the
close of information pages) fired directly. Jobs are not queued and page requests are not handed to the pager
workers (`contracts.enqueue` and `contracts.request_page` are stubbed): pages are delivered here, from the
outbox.

The day is a week ahead: the session's stack may be running, and its workers act on the real clock; on a day
still to come no timer of ours is due and no VIP ticket of ours has waited, so they leave it alone.
"""

from __future__ import annotations

import csv
import io
import json
import re
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from html import unescape

import pytest

from services.domain import alerts, contracts, keys, pages, stats, tickets, watch
from services.domain.clock import SYSTEM
from services.domain.contracts import PageKind, PageRequest, Priority
from services.domain.desk import Desk
from services.domain.schemas import Page
from services.pager import delivery as jobs
from services.pager.report import charts as report_charts
from services.pager.report import days, display, figures
from services.pager.report import session as report_session
from services.pager.report.csv import TABLES
from services.pager.report.models import CategoryRow, PageKindRow, PauseRow, VipWaitRow
from services.web import auth
from tests.conftest import BRANCH, QUICK, today_at_nine

API = f"/api/v1/branches/{BRANCH}"


@dataclass
class Day:
    """A day played on the fake clock: its date and the pages it made, by name (P1…P12)."""

    date: str
    clock: object
    pages: dict[str, str] = field(default_factory=dict)
    device: str = ""


def play_day(r, branch, fake_clock, clients, token, monkeypatch, *, running_pause: bool = True) -> Day:
    """Play the scripted day (times are the branch's wall clock); leave the clock at 12:00."""
    monkeypatch.setattr(contracts, "request_page", lambda *args, **kwargs: None)
    day = Day(date=(today_at_nine() + timedelta(days=7)).date().isoformat(), clock=fake_clock,
              device=token("device", "lobby-manager"))
    counter_tokens = {c.id: token("counter", c.id) for c in branch.counters}
    desks = {c.id: Desk(r, branch, c.id) for c in branch.counters}
    category = {c.id: c for c in branch.categories}

    def at(wall: str) -> None:
        hour, minute, second = (int(x) for x in (wall + ":00")[:8].split(":"))
        moment = datetime.combine(date.fromisoformat(day.date), time(hour, minute, second), branch.zone)
        assert moment >= fake_clock.moment, f"the script goes back in time at {wall}"
        fake_clock.moment = moment

    def issue(*categories: str) -> None:
        for c in categories:
            tickets.take(r, branch, category[c])

    def call(counter: str, expected: str) -> None:
        called = desks[counter].call_next()
        assert called is not None and called.number == expected, (counter, called)

    def deliver(name: str) -> None:
        """Turn what waits in the outbox into its page (as the pager worker would), and name the page."""
        (waiting,) = r.hvals(keys.outbox(BRANCH))
        day.pages[name] = jobs.deliver(r, branch, PageRequest.model_validate_json(waiting))
        assert r.hlen(keys.outbox(BRANCH)) == 0

    def alert(counter: str, kind: str, note: str | None = None) -> None:
        response = clients["counter"].post(f"{API}/counters/{counter}/alerts", json={"kind": kind, "note": note},
                                           headers={"Authorization": f"Bearer {counter_tokens[counter]}"})
        assert response.status_code == 202, response.json

    def fire() -> int:
        return pages.fire_due(r, [branch], grace_s=0)

    def ack(name: str) -> None:
        response = clients["pager"].post(f"{API}/pages/{day.pages[name]}/ack",
                                         headers={"Authorization": f"Bearer {day.device}"})
        assert response.status_code == 200, response.json

    at("09:00")
    issue("vip", "personal", "personal")                     # V001 A001 A002
    at("09:02")
    call("1", "A001")                                        # A001 waited 2:00
    at("09:03")
    call("2", "A002")                                        # A002 waited 3:00
    at("09:05")
    call("vip", "V001")                                      # V001 waited 5:00
    at("09:10")
    issue("vip", "corporate")                                # V002 B001
    at("09:12")
    call("4", "B001")                                        # B001 waited 2:00
    at("09:14")
    desks["vip"].finish("served")                            # V001 served
    at("09:15")
    desks["vip"].pause("vault_transfer", 10, "现金入库")      # until 09:25
    deliver("P1")                                            # pause
    at("09:15:20")
    ack("P1")                                                # 20 s
    at("09:20:30")
    assert watch.vip_waits(r, branch) == 1                   # V002 has waited 10:30 > 10 min
    deliver("P2")                                            # vip_wait
    at("09:21")
    call("3", "V002")                                        # redirected to window 3: V002 waited 11:00
    assert pages.get(r, BRANCH, day.pages["P2"]).resolution == "cleared"  # called before anyone took P2
    at("09:26")
    assert watch.pause_overruns(r, branch) == 1              # the vault pause was due back at 09:25
    deliver("P3")                                            # pause_overrun
    at("09:26:40")
    ack("P3")                                                # 40 s
    at("09:30")
    desks["vip"].resume()                                    # paused 15:00 for 10 expected; P1, P3 cleared
    deliver("P4")                                            # resume: low priority, information
    at("09:32:01")
    assert fire() == 1                                       # P4 closes by itself after 2 minutes: expired
    at("09:40")
    alert("1", "distress")
    deliver("P5")                                            # distress: repeats at 15 s, escalates at 20 s
    at("09:40:25")
    assert fire() == 2                                       # one repeat, one escalation to the deputy
    at("09:40:50")
    ack("P5")                                                # 50 s, escalated
    at("09:45")
    alert("2", "help")
    deliver("P6")                                            # help
    at("09:45:30")
    ack("P6")                                                # 30 s
    at("10:00")
    issue("personal", "personal", "vip")                     # A003 A004 V003
    at("10:01")
    call("1", "A003")                                        # A001 served; A003 waited 1:00
    at("10:02")
    call("2", "A004")                                        # A002 served; A004 waited 2:00
    at("10:05")
    desks["2"].finish("no_show")                             # A004 did not come
    at("10:11")
    assert watch.vip_waits(r, branch) == 1                   # V003 has waited 11:00
    deliver("P7")                                            # vip_wait
    at("10:13")
    ack("P7")                                                # 2:00
    at("10:20")
    call("vip", "V003")                                      # V003 waited 20:00
    at("10:30")
    alert("4", "ask_supervisor", "客户要求大额取现，可否办理？")
    deliver("P8")                                            # escalates at 45 s
    at("10:31")
    assert fire() == 1                                       # escalated to the deputy
    at("10:31:30")
    response = clients["pager"].post(f"{API}/pages/{day.pages['P8']}/reply", json={"message": "可以，按流程办理。"},
                                     headers={"Authorization": f"Bearer {day.device}"})
    assert response.status_code == 200                       # the reply acknowledges: 1:30, escalated
    at("11:00")
    issue("personal", "corporate")                           # A005 (never called) B002
    at("11:05")
    desks["2"].pause("break", 15, "=1+1 <b>午休</b>")        # markup and a formula, to be shown as text
    deliver("P9")                                            # pause
    at("11:05:10")
    ack("P9")                                                # 10 s
    at("11:17")
    desks["2"].resume()                                      # paused 12:00 for 15 expected; P9 cleared
    deliver("P10")                                           # resume: information
    at("11:27")
    ack("P10")                                               # information, taken anyway after 10:00
    at("11:30")
    call("4", "B002")                                        # B001 served; B002 waited 30:00
    at("11:35")
    desks["4"].finish("served")                              # B002 served
    if running_pause:
        at("11:40")
        desks["4"].pause("review", 20, None)                 # still paused at noon
        deliver("P11")                                       # pause, never acknowledged
    at("11:50")
    alert("3", "help")
    deliver("P12")                                           # help, never acknowledged, not swept
    at("12:00")
    return day


@pytest.fixture
def day(r, branch, fake_clock, clients, token, monkeypatch) -> Day:
    return play_day(r, branch, fake_clock, clients, token, monkeypatch)


def _auth(tok: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {tok}"}


# The numbers, by hand.


def test_the_days_numbers_are_the_ones_worked_out_by_hand(r, branch, day):
    built = figures.build(r, branch, day.date)
    assert built.date == day.date and built.percentile_method == "nearest-rank"
    rows = {c.category: c for c in built.categories}

    # VIP waits: V001 300 s, V002 660 s, V003 1200 s (all called; V002 and V003 still at their counters).
    # Nearest rank of n = 3: p50 is the ⌈1.5⌉ = 2nd smallest, p90 the ⌈2.7⌉ = 3rd.
    vip = rows["vip"]
    assert (vip.issued, vip.called, vip.served, vip.no_show, vip.waiting, vip.expired) == (3, 3, 1, 0, 0, 0)
    assert (vip.wait_p50_s, vip.wait_p90_s, vip.wait_max_s) == (660, 1200, 1200)
    # Personal: A001 120, A002 180, A003 60, A004 120 (no-show, but it was called); A005 never called.
    # Sorted 60 120 120 180: p50 is the ⌈2⌉ = 2nd (120), p90 the ⌈3.6⌉ = 4th (180).
    personal = rows["personal"]
    assert (personal.issued, personal.called, personal.served, personal.no_show, personal.waiting) == (5, 4, 2, 1, 1)
    assert (personal.wait_p50_s, personal.wait_p90_s, personal.wait_max_s) == (120, 180, 180)
    # Corporate: B001 120, B002 1800. p50 the ⌈1⌉ = 1st (120), p90 the ⌈1.8⌉ = 2nd (1800).
    corporate = rows["corporate"]
    assert (corporate.issued, corporate.called, corporate.served, corporate.waiting) == (2, 2, 2, 0)
    assert (corporate.wait_p50_s, corporate.wait_p90_s, corporate.wait_max_s) == (120, 1800, 1800)

    # Every called ticket: 60 120 120 120 180 300 660 1200 1800 (n = 9): p50 the 5th, p90 the ⌈8.1⌉ = 9th.
    s = built.summary
    assert (s.issued, s.called, s.served, s.no_show, s.not_called) == (10, 9, 5, 1, 1)
    assert (s.wait_p50_s, s.wait_p90_s, s.wait_max_s) == (180, 1800, 1800)

    # Issued per hour: 09 V001 A001 A002 V002 B001; 10 A003 A004 V003; 11 A005 B002.
    assert [(h.hour, h.counts, h.total) for h in built.hours] == [
        (9, {"vip": 2, "personal": 2, "corporate": 1}, 5),
        (10, {"vip": 1, "personal": 2, "corporate": 0}, 3),
        (11, {"vip": 0, "personal": 1, "corporate": 1}, 2),
    ]
    assert built.hours[0].label == "09:00–10:00"

    # VIP over 10 minutes (600 s): V002 660 (over by 60), V003 1200 (over by 600); V001's 300 is not.
    assert [(v.number, v.waited_s, v.over_s, v.window, v.still_waiting) for v in built.vip_waits] == [
        ("V002", 660, 60, "3", False), ("V003", 1200, 600, "VIP", False)]
    assert s.vip_over_threshold == 2

    # Pauses: vault 09:15–09:30 = 900 s for 10 expected (+5.0); break 11:05–11:17 = 720 s for 15 (−3.0);
    # review from 11:40, still running at 12:00: 1200 s so far for 20 (0.0, not over).
    assert [(p.window, p.reason, p.reason_name, p.reason_name_en, p.expected_minutes, p.actual_s,
             p.actual_minutes, p.over_minutes, p.overran, p.running) for p in built.pauses] == [
        ("VIP", "vault_transfer", "现金出入库", "Vault cash in/out", 10, 900, 15.0, 5.0, True, False),
        ("2", "break", "休息", "Break", 15, 720, 12.0, -3.0, False, False),
        ("4", "review", "复核工作", "Review work", 20, 1200, 20.0, 0.0, False, True),
    ]
    assert built.pauses[0].note == "现金入库" and built.pauses[2].resumed_at is None
    # 900 + 720 + 1200 = 2820 s = 47.0 minutes; one overran.
    assert (s.pauses, s.pause_minutes, s.pause_overruns) == (3, 47.0, 1)

    # Pages: acknowledged after P1 20, P3 40, P5 50, P6 30, P7 120, P8 90, P9 10 seconds (P1, P3 and P9 were
    # cleared when their counters resumed, after being taken: they count as taken). P2 was cleared when V002
    # was called, before anyone took it. P4 and P10 (resume) are low priority, for information: P4 closed by
    # itself, P10 was taken after 10:00, which is no time to acknowledge. P11 (pause) and P12 (help) were
    # never taken. P5 and P8 escalated.
    kinds = {k.kind: k for k in built.pages}
    assert list(kinds) == ["distress", "help", "ask_supervisor", "pause", "pause_overrun", "vip_wait", "queue_long",
                           "long_service", "endpoint_offline", "resume"]

    def row(kind: str) -> tuple:
        k = kinds[kind] if kind != "all" else built.pages_all
        return (k.pages, k.information, k.acknowledged, k.cleared, k.unacknowledged, k.ack_p50_s, k.ack_p90_s,
                k.ack_max_s, k.escalated)

    assert row("distress") == (1, 0, 1, 0, 0, 50, 50, 50, 1)
    assert row("help") == (2, 0, 1, 0, 1, 30, 30, 30, 0)                # P6 30; P12 open
    assert row("ask_supervisor") == (1, 0, 1, 0, 0, 90, 90, 90, 1)
    assert row("pause") == (3, 0, 2, 0, 1, 10, 20, 20, 0)               # sorted 10 20: p50 1st, p90 ⌈1.8⌉ = 2nd
    assert row("pause_overrun") == (1, 0, 1, 0, 0, 40, 40, 40, 0)
    assert row("vip_wait") == (2, 0, 1, 1, 0, 120, 120, 120, 0)         # P7 120; P2 cleared
    assert row("resume") == (2, 2, 0, 0, 0, None, None, None, 0)        # information: never unacknowledged
    # The seven taken: 10 20 30 40 50 90 120: p50 the ⌈3.5⌉ = 4th (40), p90 the ⌈6.3⌉ = 7th (120).
    assert row("all") == (12, 2, 7, 1, 2, 40, 120, 120, 2)
    assert (s.pages, s.pages_escalated, s.pages_cleared, s.pages_unacknowledged, s.ack_p50_s, s.ack_p90_s) == (
        12, 2, 1, 2, 40, 120)


def test_another_day_is_empty_and_a_page_counts_on_its_own_local_day(r, branch, day, fake_clock):
    before = (date.fromisoformat(day.date) - timedelta(days=1)).isoformat()
    empty = figures.build(r, branch, before)
    assert empty.summary.issued == 0 and empty.hours == [] and empty.pauses == [] and empty.summary.pages == 0
    assert all(k.pages == 0 and k.ack_p50_s is None for k in empty.pages)
    assert not empty.history_expired and not figures.build(r, branch, day.date).history_expired
    # The branch keeps 90 days: the 91st day back is gone, and the report says so.
    kept = (date.fromisoformat(day.date) - timedelta(days=branch.history_days)).isoformat()
    gone = (date.fromisoformat(day.date) - timedelta(days=branch.history_days + 1)).isoformat()
    assert (figures.build(r, branch, kept).history_expired, figures.build(r, branch, gone).history_expired) == (
        False, True)
    # One help call a second before midnight, one at midnight: each counts on its own day.
    midnight = datetime.combine(date.fromisoformat(day.date) + timedelta(days=1), time(0), branch.zone)
    for counter, moment in (("1", midnight - timedelta(seconds=1)), ("4", midnight)):  # none folds
        fake_clock.moment = moment
        alerts.raise_alert(r, alerts.page_request(branch, counter, PageKind.HELP, Priority.HIGH, "需要协助", {},
                                                  SYSTEM.now()))
        assert jobs.sweep_outbox(r, {branch.id: branch}, grace_s=0) == 1
    after = (date.fromisoformat(day.date) + timedelta(days=1)).isoformat()
    assert figures.build(r, branch, day.date).summary.pages == 13
    assert figures.build(r, branch, after).summary.pages == 1
    assert figures.build(r, branch, after).pages[1].kind == "help"


# The pure helpers.


def test_percentiles_are_nearest_rank():
    # Nearest rank on 15 20 35 40 50: p30 → ⌈1.5⌉ = 2nd (20), p40 → 2nd (20), p50 → ⌈2.5⌉ = 3rd (35).
    values = [50, 15, 40, 20, 35]
    assert [stats.percentile(values, p) for p in (5, 30, 40, 50, 90, 100)] == [15, 20, 20, 35, 50, 50]
    assert stats.percentile(list(range(1, 11)), 90) == 9  # ⌈9.0⌉ exactly: no floating point past the 9th
    assert stats.percentile(list(range(1, 101)), 90) == 90
    assert stats.percentile([7], 50) == stats.percentile([7], 90) == 7
    assert stats.percentile([], 50) is None
    for bad in (0, 101):
        with pytest.raises(ValueError):
            stats.percentile([1], bad)


def test_durations_read_as_minutes_and_seconds():
    assert [display.duration_text(s) for s in (None, 0, 9.4, 59.5, 660, 3599, 3600, 5025)] == [
        "—", "0:00", "0:09", "1:00", "11:00", "59:59", "1:00:00", "1:23:45"]
    assert [display.duration_text(s) for s in (-0.4, -48, -3600)] == ["0:00", "-0:48", "-1:00:00"]


def _page(priority: str = "high", *, acknowledged: bool = False, resolution: str | None = None) -> Page:
    created = "2025-03-14T10:00:00+08:00"
    return Page(id="p1", kind="help", priority=priority, counter="1", window="1", message="需要协助", details={},
                status="resolved" if resolution else ("acknowledged" if acknowledged else "open"), created_at=created,
                acknowledged_at="2025-03-14T10:00:30+08:00" if acknowledged else None, resolution=resolution)


def test_only_pages_that_ask_for_an_acknowledgement_can_lack_one():
    assert figures.outcome(_page()) == "unacknowledged"
    assert figures.outcome(_page(acknowledged=True)) == "acknowledged"
    assert figures.outcome(_page(acknowledged=True, resolution="cleared")) == "acknowledged", "taken, then cleared"
    assert figures.outcome(_page(resolution="cleared")) == "cleared", "cleared before anyone took it"
    assert figures.outcome(_page(resolution="resolved", acknowledged=True)) == "acknowledged"
    for low in (_page("low"), _page("low", resolution="expired"), _page("low", acknowledged=True)):
        assert figures.outcome(low) == "information"
    row = figures.page_rows([_page(), _page(acknowledged=True), _page(resolution="cleared"),
                            _page("low", acknowledged=True)])[1]
    assert (row.pages, row.information, row.acknowledged, row.cleared, row.unacknowledged) == (4, 1, 1, 1, 1)
    assert (row.ack_p50_s, row.ack_max_s) == (30, 30), "a low-priority page's acknowledgement is no time to acknowledge"


def test_dates_are_checked(branch, fake_clock):
    today = fake_clock.moment.date().isoformat()
    assert days.parse_day(None, branch, today) == days.parse_day("", branch, today) == today
    assert days.parse_day("2025-03-14", branch, today) == "2025-03-14"
    for bad in ("2025-02-30", "2025-3-14", "20250314", "yesterday", "2025-03-14T00:00", "1999-12-31", "３０２５-01-01"):
        with pytest.raises(Exception) as caught:
            days.parse_day(bad, branch, today)
        assert caught.value.status == 422 and caught.value.code == "invalid_date", bad


# Over HTTP.


def test_json_is_the_report_and_documented(clients, r, branch, day):
    response = clients["pager"].get(f"{API}/report?date={day.date}", headers=_auth(day.device))
    assert response.status_code == 200 and response.headers["Cache-Control"] == "no-store"
    assert response.json == {"report": figures.build(r, branch, day.date).model_dump(mode="json")}
    body = response.json["report"]
    assert set(body) >= {"summary", "categories", "hours", "vip_waits", "pauses", "pages", "pages_all"}
    assert body["pauses"][1]["note"] == "=1+1 <b>午休</b>", "JSON keeps the note as it was typed"
    # Today (the fake clock's day) is the default.
    assert clients["pager"].get(f"{API}/report", headers=_auth(day.device)).json["report"]["date"] == day.date
    doc = clients["pager"].get("/openapi.json").json
    paths = doc["paths"]
    assert paths["/api/v1/branches/{branch}/report"]["get"]["responses"]["200"]
    assert "Report" in doc["components"]["schemas"]
    for table in TABLES:
        assert "text/csv" in paths[f"/api/v1/branches/{{branch}}/report/{table}.csv"]["get"]["responses"]["200"][
            "content"]


def _csv(response) -> list[dict[str, str]]:
    """Read a CSV file of the report into rows by JSON field name: each header cell's last word."""
    raw = response.get_data()
    assert raw.startswith("\ufeff".encode()), "a byte order mark, so Excel reads UTF-8"
    header, *rows = csv.reader(io.StringIO(raw.decode("utf-8-sig")))
    return [dict(zip([cell.split()[-1] for cell in header], row, strict=True)) for row in rows]


def _csv_header(response) -> list[str]:
    return next(csv.reader(io.StringIO(response.get_data().decode("utf-8-sig"))))


def test_each_table_downloads_as_csv(clients, day):
    def get(table: str):
        response = clients["pager"].get(f"{API}/report/{table}.csv?date={day.date}&token={day.device}")
        assert response.status_code == 200, response.get_data(as_text=True)
        assert response.headers["Content-Type"] == "text/csv; charset=utf-8"
        assert response.headers["Content-Disposition"] == \
            f'attachment; filename="{BRANCH}-report-{day.date}-{table}.csv"'
        return _csv(response)

    categories = get("categories")
    assert [(c["category"], c["name"], c["issued"], c["wait_p50_s"], c["wait_p90_s"], c["wait_max_s"])
            for c in categories] == [("vip", "贵宾", "3", "660.0", "1200.0", "1200.0"),
                                     ("personal", "个人业务", "5", "120.0", "180.0", "180.0"),
                                     ("corporate", "对公业务", "2", "120.0", "1800.0", "1800.0")]
    hours = get("hours")
    assert list(hours[0]) == ["hour", "label", "vip", "personal", "corporate", "total"]
    assert [(p["kind"], p["information"], p["acknowledged"], p["cleared"], p["unacknowledged"])
            for p in get("pages")][-2:] == [("resume", "2", "0", "0", "0"), ("all", "2", "7", "1", "2")]
    assert [(h["hour"], h["vip"], h["personal"], h["corporate"], h["total"]) for h in hours] == [
        ("9", "2", "2", "1", "5"), ("10", "1", "2", "0", "3"), ("11", "0", "1", "1", "2")]
    assert [(v["number"], v["waited_s"], v["over_s"]) for v in get("vip_waits")] == [
        ("V002", "660.0", "60.0"), ("V003", "1200.0", "600.0")]
    pauses = get("pauses")
    assert [(p["reason_name"], p["expected_minutes"], p["actual_s"], p["over_s"], p["over_minutes"], p["running"])
            for p in pauses] == [("现金出入库", "10", "900", "300", "5.0", "false"),
                                 ("休息", "15", "720", "-180", "-3.0", "false"),
                                 ("复核工作", "20", "1200", "0", "0.0", "true")]
    assert pauses[1]["note"] == "'=1+1 <b>午休</b>", "a spreadsheet never runs a teller's note as a formula"
    assert pauses[2]["resumed_at"] == ""
    pages = get("pages")
    assert [(p["kind"], p["pages"], p["ack_p50_s"], p["ack_p90_s"], p["escalated"]) for p in pages] == [
        ("distress", "1", "50.0", "50.0", "1"), ("help", "2", "30.0", "30.0", "0"),
        ("ask_supervisor", "1", "90.0", "90.0", "1"), ("pause", "3", "10.0", "20.0", "0"),
        ("pause_overrun", "1", "40.0", "40.0", "0"), ("vip_wait", "2", "120.0", "120.0", "0"),
        ("queue_long", "0", "", "", "0"), ("long_service", "0", "", "", "0"), ("endpoint_offline", "0", "", "", "0"),
        ("resume", "2", "", "", "0"), ("all", "12", "40.0", "120.0", "2")]


def test_csv_header_rows_name_each_column_in_chinese_and_by_its_json_field(clients, day):
    def header(table: str) -> list[str]:
        response = clients["pager"].get(f"{API}/report/{table}.csv?date={day.date}", headers=_auth(day.device))
        assert response.status_code == 200
        return _csv_header(response)

    headers = {table: header(table) for table in TABLES}
    assert headers["hours"] == ["时 hour", "时段 label", "贵宾 vip", "个人业务 personal", "对公业务 corporate",
                                "合计 total"]
    assert headers["categories"][:4] == ["类别 category", "名称 name", "英文名称 name_en", "贵宾 vip"]
    assert headers["pauses"][:3] == ["柜台 counter", "窗口 window", "原因 reason"]
    information = contracts.PRIORITY_NAMES[contracts.INFORMATION][0]  # the column counts the contract's priority
    assert headers["pages"][:8] == ["类型 kind", "名称 name", "英文名称 name_en", "呼叫 pages",
                                    f"{information} information", "已确认 acknowledged", "系统解除 cleared",
                                    "未确认 unacknowledged"]
    models = {"categories": CategoryRow, "vip_waits": VipWaitRow, "pauses": PauseRow,
              "pages": PageKindRow}
    for table, cells in headers.items():
        chinese = [cell.rsplit(" ", 1)[0] for cell in cells]
        assert all(re.search("[\u4e00-\u9fff]", name) for name in chinese), (table, cells)
        if table in models:  # the last word is the JSON field name, so a script still finds its column
            assert [cell.split()[-1] for cell in cells] == list(models[table].model_fields), table


def test_the_page_shows_tables_and_server_drawn_charts(clients, day):
    response = clients["pager"].get(f"/branches/{BRANCH}/report?date={day.date}&token={day.device}")
    assert response.status_code == 200 and response.mimetype == "text/html"
    html = response.get_data(as_text=True)
    csp = response.headers["Content-Security-Policy"]
    assert "script-src 'self'" in csp and "style-src 'self'" in csp and "unsafe-inline" not in csp
    assert response.headers["Referrer-Policy"] == "no-referrer" and response.headers["Cache-Control"] == "no-store"
    # No inline script or style: only external scripts and the JSON data block; no style attribute.
    for tag in re.findall(r"<script\b[^>]*>", html):
        assert 'src="' in tag or 'type="application/json"' in tag, tag
    assert "<style" not in html and " style=" not in html
    # Three charts, drawn here, wide (a desk, A4) and compact (a phone): SVG with a title and a description,
    # well-formed, text escaped.
    drawn = re.findall(r'<svg xmlns="http://www.w3.org/2000/svg" class="chart chart-(wide|compact)".*?</svg>', html,
                       re.S)
    assert drawn == ["wide", "compact"] * 3
    charts = re.findall(r'<svg xmlns="http://www.w3.org/2000/svg" class="chart chart-wide".*?</svg>', html, re.S)
    compact = re.findall(r'<svg xmlns="http://www.w3.org/2000/svg" class="chart chart-compact".*?</svg>', html, re.S)
    for svg in compact:
        assert 'viewBox="0 0 360 ' in svg and ET.fromstring(svg).get("role") == "img"
    for svg in charts:
        tree = ET.fromstring(svg)
        ns = "{http://www.w3.org/2000/svg}"
        assert tree.get("role") == "img" and tree.find(f"{ns}title").text and tree.find(f"{ns}desc").text
        assert tree.findall(f".//{ns}rect") and tree.findall(f".//{ns}text")
    assert "每小时取号" in charts[0] and "等候时间" in charts[1] and "呼叫与升级" in charts[2]
    assert "09时" in charts[0] and ">5</text>" in charts[0], "the 09:00 bar is labelled with its total"
    assert "p50 11:00" in charts[1] and "p90 20:00" in charts[1], "VIP: p50 660 s, p90 1200 s"
    assert "1（升级 1）" in charts[2]
    # Kinds and the information priority are named as the contracts name them, in the table and the charts.
    information = contracts.PRIORITY_NAMES[contracts.INFORMATION]
    resumed = next(row for row in _cells(html, "t-pages")
                   if row[0] == " ".join(contracts.KIND_NAMES[PageKind.RESUME]))
    assert resumed[1:3] == ["2", " ".join(information)], "both resume pages are information"
    assert " · ".join(information) in charts[2] and " · ".join(information) in compact[2]
    assert f"{information[1]}” (such as {contracts.KIND_NAMES[PageKind.RESUME][1]})" in _text(html)
    # Tables with the same numbers, and the teller's note as text.
    assert 'id="kpi-issued">10<' in html and 'id="kpi-vip">2<' in html and 'id="kpi-pages">12<' in html
    for table in ("t-hours", "t-categories", "t-vip", "t-pauses", "t-pages"):
        assert f'id="{table}"' in html
    assert "=1+1 &lt;b&gt;午休&lt;/b&gt;" in html and "<b>午休</b>" not in html
    assert "现金出入库" in html and "Vault cash in/out" in html and "进行中" in html
    # Links to every table's CSV, to the JSON and to the days around, none with a token: a session cookie
    # reads them (the next test).
    for table in TABLES:
        assert f'href="/api/v1/branches/{BRANCH}/report/{table}.csv?date={day.date}"' in html
    assert f'href="/api/v1/branches/{BRANCH}/report?date={day.date}"' in html
    assert "token=" not in html and day.device not in html and 'name="token"' not in html
    assert "rp-expired" not in html
    old = clients["pager"].get(f"/branches/{BRANCH}/report?date=2001-01-01", headers=_auth(day.device))
    assert "数据已删除" in old.get_data(as_text=True), "a day past the history kept says why it is empty"


def test_charts_escape_text_and_say_so_when_empty(r, branch, day):
    built = figures.build(r, branch, day.date)
    hostile = built.model_copy(update={"categories": [c.model_copy(update={"name": '<script>"&'})
                                                      for c in built.categories]})
    for draw in (report_charts.tickets_by_hour, report_charts.waiting_times):
        svg = str(draw(hostile))
        assert "<script>" not in svg and "&lt;script&gt;&#34;&amp;" in svg
        ET.fromstring(svg)
    empty = figures.build(r, branch, (date.fromisoformat(day.date) + timedelta(days=1)).isoformat())
    for draw in (report_charts.tickets_by_hour, report_charts.waiting_times, report_charts.pages_by_kind):
        assert "当日无数据" in str(draw(empty))


# Who may read it.


ROUTES = [f"{API}/report", *(f"{API}/report/{t}.csv" for t in TABLES), f"/branches/{BRANCH}/report"]


def test_only_a_manager_of_the_branch_may_read_it(clients, token, r):
    pager = clients["pager"]
    device = token("device", "lobby-manager")
    wrong = [
        (None, 401, "missing_token"),
        ("garbage", 401, "invalid_token"),
        (token("counter", "vip"), 403, "wrong_token_kind"),
        (token("device", "lobby-manager", QUICK), 403, "wrong_branch"),
        (token("device", "cleaner"), 403, "unknown_manager"),
    ]
    for url in ROUTES:
        page = url.startswith("/branches/")
        for tok, status, code in wrong:
            response = pager.get(url, headers=_auth(tok) if tok else {})
            assert response.status_code == status, (url, code, response.status_code)
            if page:  # the page answers in HTML, with a form for the token and no report in it
                html = response.get_data(as_text=True)
                # The form's input has no name: the token is never sent in an address, only in a header.
                assert response.mimetype == "text/html" and 'id="gate-token"' in html and "t-hours" not in html
                assert 'name="token"' not in html
                assert json.loads(re.search(r'id="page-data">(.*?)</script>', html).group(1))["problem"] == code
            else:
                assert response.json["error"]["code"] == code
        for good in ({"headers": _auth(device)}, {"query_string": {"token": device}}):
            response = pager.get(url, **good)
            assert response.status_code == 200, (url, good)
    assert pager.get("/api/v1/branches/nowhere/report", headers=_auth(device)).status_code == 404
    assert pager.get("/branches/nowhere/report", headers=_auth(device)).status_code == 404


def test_a_bad_date_is_a_clear_422(clients, token, r):
    device = token("device", "lobby-manager")
    for url in ROUTES:
        response = clients["pager"].get(url, query_string={"date": "2025-02-30", "token": device})
        assert response.status_code == 422, url
        if url.startswith("/branches/"):
            html = response.get_data(as_text=True)
            assert "2025-02-30 is not a calendar date" in html and 'type="date"' in html
        else:
            assert response.json["error"] == {"code": "invalid_date", "message": "2025-02-30 is not a calendar date"}
    response = clients["pager"].get(f"{API}/report?date=14/03/2025", headers=_auth(device))
    assert response.status_code == 422 and "YYYY-MM-DD" in response.json["error"]["message"]


# Units: m:ss everywhere on the page, never a bare negative number.


def _text(html: str) -> str:
    """The text a reader sees: tags and the page's JSON data block removed, entities decoded."""
    body = re.sub(r'<script type="application/json".*?</script>', " ", html, flags=re.S)
    body = re.sub(r"<(title|desc)\b.*?</\1>", " ", body, flags=re.S)
    return " ".join(unescape(re.sub(r"<[^>]+>", " ", body)).split())


def _cells(html: str, table: str) -> list[list[str]]:
    body = re.search(rf'<table class="rp-table" id="{table}">.*?<tbody>(.*?)</tbody>', html, re.S).group(1)
    return [[_text(cell) for cell in re.findall(r"<t[hd]\b.*?</t[hd]>", row, re.S)]
            for row in re.findall(r"<tr\b.*?</tr>", body, re.S)]


def test_the_page_writes_every_duration_as_minutes_and_seconds(clients, day):
    html = clients["pager"].get(f"/branches/{BRANCH}/report?date={day.date}", headers=_auth(day.device)).get_data(
        as_text=True)
    # Pauses: expected, actual and over, all m:ss; the break that ended 3 minutes early says so in words.
    pauses = [row[-3:] for row in _cells(html, "t-pauses")]
    assert pauses == [["10:00", "15:00", "+5:00"], ["15:00", "12:00", "提前 3:00 · early"], ["20:00", "20:00", "0:00"]]
    assert "共 47:00" in _text(html), "the day's pauses in all, m:ss"
    assert "VIP over 10:00" in _text(html) and "分钟" not in _text(html) and "min" not in _text(html).split()
    # No number anywhere on the page is a bare negative one (a date's hyphens follow a digit).
    assert not re.findall(r"(?<![\w.:/-])[-−]\d", _text(html)), "a negative number on the page"
    assert [row[-1] for row in _cells(html, "t-vip")] == ["办理中 Being served"] * 2
    assert [row[-2] for row in _cells(html, "t-vip")] == ["+1:00", "+10:00"]


def test_a_running_pause_says_what_it_has_left_and_an_early_end_says_early():
    def row(over_s: int, running: bool) -> PauseRow:
        return PauseRow(counter="1", window="1", reason="break", reason_name="休息", reason_name_en="Break",
                               note=None, since="2025-03-14T10:00:00+08:00", resumed_at=None if running else "x",
                               expected_minutes=15, actual_s=900 + over_s, actual_minutes=0, over_minutes=0,
                               over_s=over_s, overran=over_s > 0, running=running)

    shown = [display.overrun(row(over, running)) for over, running in
             ((300, False), (-48, False), (-48, True), (0, False), (75, True))]
    assert [(o.text, o.en) for o in shown] == [("+5:00", ""), ("提前 0:48", "· early"), ("尚余 0:48", "· left"),
                                               ("0:00", ""), ("+1:15", "")]


# The session: a token opens it once, a cookie reads the report, never a link or a form.


def _set_cookies(response) -> list[str]:
    return [c for c in response.headers.getlist("Set-Cookie") if c.startswith(f"{report_session.SESSION_COOKIE}=")]


def test_a_token_in_the_address_opens_a_reading_session_and_no_link_carries_it(clients, r, day):
    pager = clients["pager"]
    response = pager.get(f"/branches/{BRANCH}/report?date={day.date}&token={day.device}")
    assert response.status_code == 200
    html = response.get_data(as_text=True)
    assert "token=" not in html and day.device not in html
    for tag in re.findall(r"<(?:a|form|link|script|img)\b[^>]*>", html):
        assert "token" not in tag, tag
    # The cookie: HttpOnly, SameSite=Strict, for the report's pages and its API only, for hours not days.
    cookies = _set_cookies(response)
    assert sorted(re.search(r"Path=([^;]+)", c).group(1) for c in cookies) == [
        f"/api/v1/branches/{BRANCH}/report", f"/branches/{BRANCH}/report"]
    for cookie in cookies:
        assert "HttpOnly" in cookie and "SameSite=Strict" in cookie, cookie
        assert 0 < int(re.search(r"Max-Age=(\d+)", cookie).group(1)) <= 12 * 3600
    value = cookies[0].split(";")[0].split("=", 1)[1]
    assert value not in day.device
    # Redis keeps its hash under the branch, with the token's id, for as long as the cookie lives.
    (key,) = r.scan_iter(f"lobby:{{{BRANCH}}}:report-session:*")
    assert value not in key and 0 < r.ttl(key) <= 12 * 3600
    assert r.get(key) == day.device.split(".")[2]

    # The cookie alone (the test client sends it where its path fits) reads the next day, each CSV, the JSON.
    after = (date.fromisoformat(day.date) + timedelta(days=1)).isoformat()
    assert pager.get(f"/branches/{BRANCH}/report?date={after}").status_code == 200
    for table in TABLES:
        assert pager.get(f"{API}/report/{table}.csv?date={day.date}").status_code == 200, table
    assert pager.get(f"{API}/report?date={day.date}").json["report"]["summary"]["issued"] == 10
    # It authorises reading the report and nothing else: not a new session, not the pages API.
    refused = pager.post(f"{API}/report/session")
    assert refused.status_code == 401 and refused.json["error"]["code"] == "missing_token"
    assert pager.get(f"{API}/pages").status_code == 401
    # Nor does one branch's session read another branch's report, were the cookie sent there.
    bare = pager.application.test_client(use_cookies=False)
    cookie = {"Cookie": f"{report_session.SESSION_COOKIE}={value}"}
    assert bare.get(f"{API}/report", headers=cookie).status_code == 200
    assert bare.get(f"/api/v1/branches/{QUICK}/report", headers=cookie).json["error"]["code"] == "session_expired"


def test_the_page_exchanges_the_devices_token_for_a_session_in_a_header(clients, r, token):
    pager = clients["pager"]
    device = token("device", "lobby-manager")
    gate = pager.get(f"/branches/{BRANCH}/report")
    assert gate.status_code == 401 and "session_url" in gate.get_data(as_text=True)
    for tok, status in (("garbage", 401), (token("counter", "vip"), 403), (token("device", "cleaner"), 403)):
        assert pager.post(f"{API}/report/session", headers=_auth(tok)).status_code == status
    assert pager.post(f"{API}/report/session?token={device}").status_code == 401, "a header, never the address"
    answer = pager.post(f"{API}/report/session", headers=_auth(device))
    assert answer.status_code == 200 and answer.json["session"]["manager"] == "lobby-manager"
    assert len(_set_cookies(answer)) == 2
    assert pager.get(f"/branches/{BRANCH}/report").status_code == 200


def test_revoking_the_token_ends_its_sessions_at_the_next_request(clients, r, day):
    pager = clients["pager"]
    assert pager.get(f"/branches/{BRANCH}/report?date={day.date}&token={day.device}").status_code == 200
    assert pager.get(f"{API}/report/pauses.csv?date={day.date}").status_code == 200
    assert auth.revoke(r, BRANCH, day.device)
    page = pager.get(f"/branches/{BRANCH}/report?date={day.date}")
    assert page.status_code == 401 and "t-hours" not in page.get_data(as_text=True)
    assert json.loads(re.search(r'id="page-data">(.*?)</script>', page.get_data(as_text=True)).group(1))[
        "problem"] == "invalid_token"
    assert all("Max-Age=0" in c or "Expires=Thu, 01 Jan 1970" in c for c in _set_cookies(page)), "the cookie goes"
    assert not list(r.scan_iter(f"lobby:{{{BRANCH}}}:report-session:*"))
    assert pager.get(f"{API}/report/pauses.csv?date={day.date}").status_code == 401
