"""The branch manager's daily report: a scripted day whose every number is worked out by hand below.

The day is played in this process on the fake clock: tickets through `tickets.issue`, calls, pauses and
resumes through the counter's `Desk`, alerts through the counter API, acknowledgements and a reply through
the pager API, the counter worker's watch (VIP waits, pause overruns) and the pager's escalation sweep called
directly. Jobs are not queued and page requests are not handed to the pager workers (`contracts.enqueue` and
`contracts.request_page` are stubbed): pages are delivered here, from the outbox.

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

import pytest

from services.common import contracts, keys, tickets
from services.common.contracts import PageKind, PageRequest, Priority
from services.counter import alerts, watch
from services.counter.desk import Desk
from services.pager import escalation, jobs, report, report_charts
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
    monkeypatch.setattr(contracts, "enqueue", lambda *args, **kwargs: None)
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
            tickets.issue(r, branch, category[c])

    def call(counter: str, expected: str) -> None:
        called = desks[counter].call_next()
        assert called is not None and called.number == expected, (counter, called)

    def deliver(name: str) -> None:
        """Turn what waits in the outbox into its page (as the pager worker would), and name the page."""
        (waiting,) = r.hvals(keys.outbox(BRANCH))
        day.pages[name] = jobs.deliver(r, PageRequest.model_validate_json(waiting))
        assert r.hlen(keys.outbox(BRANCH)) == 0

    def alert(counter: str, kind: str, note: str | None = None) -> None:
        response = clients["counter"].post(f"{API}/counters/{counter}/alerts", json={"kind": kind, "note": note},
                                           headers={"Authorization": f"Bearer {counter_tokens[counter]}"})
        assert response.status_code == 202, response.json

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
    ack("P2")                                                # 30 s
    at("09:26")
    assert watch.pause_overruns(r, branch) == 1              # the vault pause was due back at 09:25
    deliver("P3")                                            # pause_overrun
    at("09:26:40")
    ack("P3")                                                # 40 s
    at("09:30")
    desks["vip"].resume()                                    # paused 15:00 for 10 expected
    deliver("P4")                                            # resume, never acknowledged
    at("09:40")
    alert("1", "distress")
    deliver("P5")                                            # distress: repeats at 15 s, escalates at 20 s
    at("09:40:25")
    assert escalation.sweep(r, branch, 0) == 2               # one repeat, one escalation to the deputy
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
    assert escalation.sweep(r, branch, 0) == 1               # escalated to the deputy
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
    desks["2"].resume()                                      # paused 12:00 for 15 expected
    deliver("P10")                                           # resume, never acknowledged
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
    built = report.build(r, branch, day.date)
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

    # Pages: acknowledged after P1 20, P2 30, P3 40, P5 50, P6 30, P7 120, P8 90, P9 10 seconds;
    # P4 and P10 (resume), P11 (pause) and P12 (help) never; P5 and P8 escalated.
    kinds = {k.kind: k for k in built.pages}
    assert list(kinds) == ["distress", "help", "ask_supervisor", "pause", "pause_overrun", "vip_wait", "resume"]

    def row(kind: str) -> tuple:
        k = kinds[kind] if kind != "all" else built.pages_all
        return k.pages, k.acknowledged, k.unacknowledged, k.ack_p50_s, k.ack_p90_s, k.ack_max_s, k.escalated

    assert row("distress") == (1, 1, 0, 50, 50, 50, 1)
    assert row("help") == (2, 1, 1, 30, 30, 30, 0)                 # P6 30; P12 open
    assert row("ask_supervisor") == (1, 1, 0, 90, 90, 90, 1)
    assert row("pause") == (3, 2, 1, 10, 20, 20, 0)                # sorted 10 20: p50 1st, p90 ⌈1.8⌉ = 2nd
    assert row("pause_overrun") == (1, 1, 0, 40, 40, 40, 0)
    assert row("vip_wait") == (2, 2, 0, 30, 120, 120, 0)           # 30 120
    assert row("resume") == (2, 0, 2, None, None, None, 0)
    # All eight: 10 20 30 30 40 50 90 120: p50 the ⌈4⌉ = 4th (30), p90 the ⌈7.2⌉ = 8th (120).
    assert row("all") == (12, 8, 4, 30, 120, 120, 2)
    assert (s.pages, s.pages_escalated, s.pages_unacknowledged, s.ack_p50_s, s.ack_p90_s) == (12, 2, 4, 30, 120)


def test_another_day_is_empty_and_a_page_counts_on_its_own_local_day(r, branch, day, fake_clock):
    before = (date.fromisoformat(day.date) - timedelta(days=1)).isoformat()
    empty = report.build(r, branch, before)
    assert empty.summary.issued == 0 and empty.hours == [] and empty.pauses == [] and empty.summary.pages == 0
    assert all(k.pages == 0 and k.ack_p50_s is None for k in empty.pages)
    assert not empty.history_expired and not report.build(r, branch, day.date).history_expired
    # The branch keeps 90 days: the 91st day back is gone, and the report says so.
    kept = (date.fromisoformat(day.date) - timedelta(days=branch.history_days)).isoformat()
    gone = (date.fromisoformat(day.date) - timedelta(days=branch.history_days + 1)).isoformat()
    assert (report.build(r, branch, kept).history_expired, report.build(r, branch, gone).history_expired) == (
        False, True)
    # One help call a second before midnight, one at midnight: each counts on its own day.
    midnight = datetime.combine(date.fromisoformat(day.date) + timedelta(days=1), time(0), branch.zone)
    for counter, moment in (("1", midnight - timedelta(seconds=1)), ("4", midnight)):  # none folds
        fake_clock.moment = moment
        alerts.raise_alert(r, alerts.page_request(branch, counter, PageKind.HELP, Priority.HIGH, "需要协助", {}))
        assert jobs.sweep_outbox(r, grace_s=0) == 1
    after = (date.fromisoformat(day.date) + timedelta(days=1)).isoformat()
    assert report.build(r, branch, day.date).summary.pages == 13
    assert report.build(r, branch, after).summary.pages == 1
    assert report.build(r, branch, after).pages[1].kind == "help"


# The pure helpers.


def test_percentiles_are_nearest_rank():
    # Nearest rank on 15 20 35 40 50: p30 → ⌈1.5⌉ = 2nd (20), p40 → 2nd (20), p50 → ⌈2.5⌉ = 3rd (35).
    values = [50, 15, 40, 20, 35]
    assert [report.percentile(values, p) for p in (5, 30, 40, 50, 90, 100)] == [15, 20, 20, 35, 50, 50]
    assert report.percentile(list(range(1, 11)), 90) == 9  # ⌈9.0⌉ exactly: no floating point past the 9th
    assert report.percentile(list(range(1, 101)), 90) == 90
    assert report.percentile([7], 50) == report.percentile([7], 90) == 7
    assert report.percentile([], 50) is None
    for bad in (0, 101):
        with pytest.raises(ValueError):
            report.percentile([1], bad)


def test_durations_read_as_minutes_and_seconds():
    assert [report.duration_text(s) for s in (None, 0, 9.4, 59.5, 660, 3599, 3600, 5025)] == [
        "—", "0:00", "0:09", "1:00", "11:00", "59:59", "1:00:00", "1:23:45"]


def test_dates_are_checked(branch, fake_clock):
    assert report.parse_day(None, branch) == report.parse_day("", branch) == fake_clock.moment.date().isoformat()
    assert report.parse_day("2025-03-14", branch) == "2025-03-14"
    for bad in ("2025-02-30", "2025-3-14", "20250314", "yesterday", "2025-03-14T00:00", "1999-12-31", "３０２５-01-01"):
        with pytest.raises(Exception) as caught:
            report.parse_day(bad, branch)
        assert caught.value.status == 422 and caught.value.code == "invalid_date", bad


# Over HTTP.


def test_json_is_the_report_and_documented(clients, r, branch, day):
    response = clients["pager"].get(f"{API}/report?date={day.date}", headers=_auth(day.device))
    assert response.status_code == 200 and response.headers["Cache-Control"] == "no-store"
    assert response.json == {"report": report.build(r, branch, day.date).model_dump(mode="json")}
    body = response.json["report"]
    assert set(body) >= {"summary", "categories", "hours", "vip_waits", "pauses", "pages", "pages_all"}
    assert body["pauses"][1]["note"] == "=1+1 <b>午休</b>", "JSON keeps the note as it was typed"
    # Today (the fake clock's day) is the default.
    assert clients["pager"].get(f"{API}/report", headers=_auth(day.device)).json["report"]["date"] == day.date
    doc = clients["pager"].get("/openapi.json").json
    paths = doc["paths"]
    assert paths["/api/v1/branches/{branch}/report"]["get"]["responses"]["200"]
    assert "Report" in doc["components"]["schemas"]
    for table in report.TABLES:
        assert "text/csv" in paths[f"/api/v1/branches/{{branch}}/report/{table}.csv"]["get"]["responses"]["200"][
            "content"]


def _csv(response) -> list[dict[str, str]]:
    raw = response.get_data()
    assert raw.startswith("\ufeff".encode()), "a byte order mark, so Excel reads UTF-8"
    return list(csv.DictReader(io.StringIO(raw.decode("utf-8-sig"))))


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
    assert [(h["hour"], h["vip"], h["personal"], h["corporate"], h["total"]) for h in hours] == [
        ("9", "2", "2", "1", "5"), ("10", "1", "2", "0", "3"), ("11", "0", "1", "1", "2")]
    assert [(v["number"], v["waited_s"], v["over_s"]) for v in get("vip_waits")] == [
        ("V002", "660.0", "60.0"), ("V003", "1200.0", "600.0")]
    pauses = get("pauses")
    assert [(p["reason_name"], p["expected_minutes"], p["actual_minutes"], p["over_minutes"], p["running"])
            for p in pauses] == [("现金出入库", "10", "15.0", "5.0", "false"), ("休息", "15", "12.0", "-3.0", "false"),
                                 ("复核工作", "20", "20.0", "0.0", "true")]
    assert pauses[1]["note"] == "'=1+1 <b>午休</b>", "a spreadsheet never runs a teller's note as a formula"
    assert pauses[2]["resumed_at"] == ""
    pages = get("pages")
    assert [(p["kind"], p["pages"], p["ack_p50_s"], p["ack_p90_s"], p["escalated"]) for p in pages] == [
        ("distress", "1", "50.0", "50.0", "1"), ("help", "2", "30.0", "30.0", "0"),
        ("ask_supervisor", "1", "90.0", "90.0", "1"), ("pause", "3", "10.0", "20.0", "0"),
        ("pause_overrun", "1", "40.0", "40.0", "0"), ("vip_wait", "2", "30.0", "120.0", "0"),
        ("resume", "2", "", "", "0"), ("all", "12", "30.0", "120.0", "2")]


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
    # Three charts, drawn here: SVG with a title and a description, well-formed, text escaped.
    charts = re.findall(r'<svg xmlns="http://www.w3.org/2000/svg" class="chart".*?</svg>', html, re.S)
    assert len(charts) == 3
    for svg in charts:
        tree = ET.fromstring(svg)
        ns = "{http://www.w3.org/2000/svg}"
        assert tree.get("role") == "img" and tree.find(f"{ns}title").text and tree.find(f"{ns}desc").text
        assert tree.findall(f".//{ns}rect") and tree.findall(f".//{ns}text")
    assert "每小时取号" in charts[0] and "等候时间" in charts[1] and "呼叫与升级" in charts[2]
    assert "09时" in charts[0] and ">5</text>" in charts[0], "the 09:00 bar is labelled with its total"
    assert "p50 11:00" in charts[1] and "p90 20:00" in charts[1], "VIP: p50 660 s, p90 1200 s"
    assert "1（升级 1）" in charts[2]
    # Tables with the same numbers, and the teller's note as text.
    assert 'id="kpi-issued">10<' in html and 'id="kpi-vip">2<' in html and 'id="kpi-pages">12<' in html
    for table in ("t-hours", "t-categories", "t-vip", "t-pauses", "t-pages"):
        assert f'id="{table}"' in html
    assert "=1+1 &lt;b&gt;午休&lt;/b&gt;" in html and "<b>午休</b>" not in html
    assert "现金出入库" in html and "Vault cash in/out" in html and "进行中" in html
    # Links to every table's CSV and to the JSON, carrying the token (the page takes it off the address bar).
    for table in report.TABLES:
        assert f"/report/{table}.csv?date={day.date}&amp;token=" in html
    assert f"/api/v1/branches/{BRANCH}/report?date={day.date}&amp;token=" in html
    assert "rp-expired" not in html
    old = clients["pager"].get(f"/branches/{BRANCH}/report?date=2001-01-01", headers=_auth(day.device))
    assert "数据已删除" in old.get_data(as_text=True), "a day past the history kept says why it is empty"


def test_charts_escape_text_and_say_so_when_empty(r, branch, day):
    built = report.build(r, branch, day.date)
    hostile = built.model_copy(update={"categories": [c.model_copy(update={"name": '<script>"&'})
                                                      for c in built.categories]})
    for draw in (report_charts.tickets_by_hour, report_charts.waiting_times):
        svg = str(draw(hostile))
        assert "<script>" not in svg and "&lt;script&gt;&#34;&amp;" in svg
        ET.fromstring(svg)
    empty = report.build(r, branch, (date.fromisoformat(day.date) + timedelta(days=1)).isoformat())
    for draw in (report_charts.tickets_by_hour, report_charts.waiting_times, report_charts.pages_by_kind):
        assert "当日无数据" in str(draw(empty))


# Who may read it.


ROUTES = [f"{API}/report", *(f"{API}/report/{t}.csv" for t in report.TABLES), f"/branches/{BRANCH}/report"]


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
                assert response.mimetype == "text/html" and 'name="token"' in html and "t-hours" not in html
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
