"""The branch supervises itself: a screen or terminal offline, a service too long, a line too long each page the
manager once, and the page is cleared by the system when the condition ends, saying how long it lasted.

On a Redis of the test's own and a fake clock (the session stack's counter workers run the same checks on the
real clock). The pages are made from the outbox as a pager worker would (deliver_all).
"""

from __future__ import annotations

import json

import pytest

from services.domain import keys, pages, presence, supervision
from services.domain.desk import Desk
from services.domain.errors import Unprocessable
from tests.conftest import BRANCH, issue
from tests.test_trust import deliver_all

DISPLAY = presence.endpoint("display", "lobby")


def alerts_of(r, kind: str) -> list[dict]:
    found = [json.loads(raw) for raw in r.hvals(keys.outbox(BRANCH))]
    return [a for a in found if a["kind"] == kind]


def only_page(r, kind: str) -> pages.Page:
    (found,) = [p for p in pages.list_pages(r, BRANCH, "all") if p.kind == kind]
    return found


def test_a_display_offline_pages_once_and_its_return_clears_the_page(own_redis, branch, fake_clock):
    offline_s = branch.supervision.offline_after_s
    presence.opened(own_redis, branch, DISPLAY, "c1", fake_clock.now_ms())
    fake_clock.advance(offline_s)  # a frozen page: its stream stays open, its heartbeats stop
    assert supervision.check(own_redis, branch) == (0, 0), "offline_after_s unheard, not more: not yet"
    fake_clock.advance(0.001)
    assert supervision.check(own_redis, branch) == (1, 0)
    assert supervision.check(own_redis, branch) == (0, 0), "once per incident"
    deliver_all(own_redis)
    page = only_page(own_redis, "endpoint_offline")
    assert (page.priority, page.counter, page.details["endpoint_kind"], page.details["endpoint"]) == (
        "normal", "", "display", "lobby")
    assert page.details["offline_since"].endswith("09:00:00.000+08:00")
    with pytest.raises(Unprocessable, match="no terminal reads a reply"):
        pages.reply(own_redis, branch, page.id, branch.managers[0], "收到")

    fake_clock.advance(35)
    presence.heard(own_redis, branch, DISPLAY, fake_clock.now_ms())
    assert supervision.check(own_redis, branch) == (0, 1)
    cleared = pages.get(own_redis, BRANCH, page.id)
    assert (cleared.status, cleared.resolution) == ("resolved", "cleared")
    assert cleared.audit[-1].event == "cleared" and "back online after 1:35" in cleared.audit[-1].note
    assert own_redis.hlen(keys.incidents(BRANCH)) == 0, "armed again for the next outage"


def test_a_display_offline_during_a_vip_redirect_is_high_priority(own_redis, branch, fake_clock):
    Desk(own_redis, branch, "vip").pause("vault_transfer", 15, None)  # VIP customers go to window 3
    presence.opened(own_redis, branch, DISPLAY, "c1", fake_clock.now_ms())
    presence.closed(own_redis, branch.id, DISPLAY, "c1", fake_clock.now_ms() + 8_000)  # closed; noticed later
    fake_clock.advance(branch.supervision.offline_after_s)
    assert supervision.check(own_redis, branch) == (1, 0), "offline since last heard of, not since noticed"
    (alert,) = alerts_of(own_redis, "endpoint_offline")
    assert alert["priority"] == "high" and alert["details"]["vip_redirect"] is True
    assert "贵宾" in alert["message"]


def test_a_screen_never_enrolled_and_a_closed_counters_terminal_are_not_watched(own_redis, branch, fake_clock):
    terminal = presence.endpoint(presence.TERMINAL, "4")
    presence.opened(own_redis, branch, terminal, "c1", fake_clock.now_ms())
    Desk(own_redis, branch, "4").close()
    fake_clock.advance(branch.supervision.offline_after_s * 3)
    assert supervision.check(own_redis, branch) == (0, 0)

    Desk(own_redis, branch, "4").open()
    assert supervision.check(own_redis, branch) == (1, 0), "open again: its terminal is watched"
    (alert,) = alerts_of(own_redis, "endpoint_offline")
    assert (alert["counter"], alert["details"]["endpoint_kind"]) == ("4", "terminal")


def test_a_long_service_pages_once_and_ends_with_the_service(own_redis, branch, fake_clock):
    personal = branch.category("personal")
    number = issue(own_redis, branch, personal)
    desk = Desk(own_redis, branch, "1")
    assert desk.call_next().number == number
    fake_clock.advance(personal.long_service_ms / 1000 - 1)
    assert supervision.check(own_redis, branch) == (0, 0)
    fake_clock.advance(1)
    assert supervision.check(own_redis, branch) == (1, 0)
    assert supervision.check(own_redis, branch) == (0, 0)
    deliver_all(own_redis)
    page = only_page(own_redis, "long_service")
    assert (page.counter, page.details["ticket"], page.details["serving_s"]) == ("1", number, 12 * 60)

    fake_clock.advance(30)
    desk.finish("served")
    assert supervision.check(own_redis, branch) == (0, 1)
    cleared = pages.get(own_redis, BRANCH, page.id)
    assert cleared.resolution == "cleared" and "service ended after 12:30" in cleared.audit[-1].note


def test_a_long_line_pages_once_names_the_idle_counters_and_is_armed_again_when_back_under(own_redis, branch,
                                                                                            fake_clock):
    corporate = branch.category("corporate")
    Desk(own_redis, branch, "4").pause("review", 30, None)
    issue(own_redis, branch, corporate)
    issue(own_redis, branch, corporate)  # a millisecond later in its line
    fake_clock.advance(branch.wait_alert_minutes * 60 - 0.001)
    assert supervision.check(own_redis, branch) == (0, 0)
    fake_clock.advance(0.002)
    assert supervision.check(own_redis, branch) == (1, 0)
    (alert,) = alerts_of(own_redis, "queue_long")
    assert (alert["details"]["category"], alert["details"]["waiting"]) == ("corporate", 2)
    assert alert["details"]["idle_counters"] == [{"counter": "4", "window": "4", "status": "paused"}]
    assert supervision.check(own_redis, branch) == (0, 0)

    Desk(own_redis, branch, "4").resume()
    deliver_all(own_redis)
    Desk(own_redis, branch, "4").call_next()
    assert supervision.check(own_redis, branch) == (0, 0), "the other has waited as long: still too long"
    Desk(own_redis, branch, "4").finish("served")
    Desk(own_redis, branch, "4").call_next()
    assert supervision.check(own_redis, branch) == (0, 1), "nobody waits: back under"
    assert only_page(own_redis, "queue_long").resolution == "cleared"

    issue(own_redis, branch, corporate)
    fake_clock.advance(branch.wait_alert_minutes * 60)
    assert supervision.check(own_redis, branch) == (1, 0), "a new incident pages again"


def test_the_watch_runs_the_supervision(own_redis, branch, fake_clock):
    from services.domain import watch

    presence.opened(own_redis, branch, DISPLAY, "c1", fake_clock.now_ms())
    fake_clock.advance(branch.supervision.offline_after_s + 1)
    watch.watch(own_redis, [branch])
    assert len(alerts_of(own_redis, "endpoint_offline")) == 1


def test_the_report_lists_incidents_with_their_length_and_drills_apart(own_redis, branch, fake_clock):
    from services.domain import alerts
    from services.domain.clock import SYSTEM, business_day
    from services.domain.contracts import PageKind, Priority
    from services.pager.report import csv, figures

    presence.opened(own_redis, branch, DISPLAY, "c1", fake_clock.now_ms())
    fake_clock.advance(branch.supervision.offline_after_s + 1)
    supervision.check(own_redis, branch)
    deliver_all(own_redis)
    fake_clock.advance(34)
    presence.opened(own_redis, branch, DISPLAY, "c2", fake_clock.now_ms())
    assert supervision.check(own_redis, branch) == (0, 1)

    drill = alerts.page_request(branch, "2", PageKind.DISTRESS, Priority.URGENT, "【演练 TEST】2 窗口紧急求助",
                                {"test": True}, SYSTEM.now())
    page, _ = pages.create(own_redis, branch, drill)
    fake_clock.advance(6)
    pages.acknowledge(own_redis, branch, page.id, branch.managers[0])

    report = figures.build(own_redis, branch, business_day(branch, fake_clock.now()))
    (incident,) = report.supervision
    assert (incident.kind, incident.subject, incident.subject_name, incident.lasted_s, incident.running) == (
        "endpoint_offline", "display:lobby", "大堂叫号屏", 95, False)
    (test,) = report.test_calls
    assert (test.window, test.acknowledged_by, test.ack_s, test.escalated) == ("2", "lobby-manager", 6.0, False)
    assert (report.summary.test_calls, report.summary.test_calls_acknowledged) == (1, 1)
    assert {k.kind: k.pages for k in report.pages}["distress"] == 0, "a drill is not a distress call"
    assert report.summary.pages == 1 and report.summary.supervision_incidents == 1
    for table in ("supervision", "test_calls"):
        header = csv.to_csv(report, table).splitlines()[0]
        assert "持续（秒） lasted_s" in header or "确认（秒） ack_s" in header


def test_a_drill_is_only_of_the_silent_call_and_never_folds_into_a_real_one(live, r, token):
    import requests

    from tests.sse import eventually

    teller = {"Authorization": f"Bearer {token('counter', '2')}"}
    api = f"{live.url('counter')}/api/v1/branches/{BRANCH}/counters/2/alerts"
    wrong = requests.post(api, headers=teller, json={"kind": "help", "test": True}, timeout=5)
    assert wrong.status_code == 422 and "distress" in wrong.json()["error"]["message"]
    assert r.hlen(keys.outbox(BRANCH)) == 0 and not r.keys(keys.alert(BRANCH, "*")), "refused: nothing written"

    real = requests.post(api, headers=teller, json={"kind": "distress"}, timeout=5).json()["alert"]
    drill = requests.post(api, headers=teller, json={"kind": "distress", "test": True}, timeout=5).json()["alert"]
    assert (real["test"], drill["test"]) == (False, True)

    def page_of(alert_id: str) -> str | None:
        return requests.get(f"{api}/{alert_id}", headers=teller, timeout=5).json()["alert"]["page_id"]

    real_page, drill_page = eventually(lambda: page_of(real["id"])), eventually(lambda: page_of(drill["id"]))
    assert real_page != drill_page, "a drill pressed while a real call is open is a page of its own"
    assert pages.get(r, BRANCH, drill_page).details["test"] is True
    assert "test" not in pages.get(r, BRANCH, real_page).details
