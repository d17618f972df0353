"""Rules 2 to 4: distress, ask-supervisor and help calls, acknowledged, answered, repeated and escalated.

Against the running services and workers (with the scheduler) on a real Redis.
"""

from __future__ import annotations

import json
import threading

import pytest
import requests

from services.domain import clock, keys
from tests.conftest import BRANCH, QUICK, bearer
from tests.sse import eventually

SCREEN_WORDS = ("distress", "ask_supervisor", "help", "alert", "page", "紧急", "请示", "协助")


def api(branch: str) -> str:
    return f"/api/v1/branches/{branch}"



@pytest.fixture
def actors(live, token, sse):
    """A counter-2 terminal, the lobby manager's device and the public screen, all listening."""

    def make(branch: str = BRANCH) -> dict:
        teller = token("counter", "2", branch)
        manager = token("device", "lobby-manager", branch)
        deputy = token("device", "deputy", branch)
        base = api(branch)
        screen = sse(f"{live.url('kiosk')}{base}/screen/events")
        screen.wait_for(lambda e: e.type == "screen")
        return {
            "teller": teller, "manager": manager, "deputy": deputy, "screen": screen,
            "device": sse(f"{live.url('pager')}{base}/pages/events", headers=bearer(manager)),
            "terminal": sse(f"{live.url('counter')}{base}/counters/2/events", params={"token": teller}),
            "alerts": f"{live.url('counter')}{base}/counters/2/alerts",
            "pages": f"{live.url('pager')}{base}/pages",
        }

    return make


def timers_of(r, branch: str, page_id: str) -> list[str]:
    """The page's pending timers (repeat, escalate, expire): all that could ever act on it later."""
    return [m for m in r.zrange(keys.timers(branch), 0, -1) if m.split(":")[0] == page_id]


def assert_screen_clean(screen, *secrets: str) -> None:
    """The public screen stream, read for the whole test, carries no trace of a call for the manager."""
    for event in screen.events:
        assert event.type in {"screen", "ticket_called", "waiting", "notice"}
        text = json.dumps(event.data, ensure_ascii=False)
        for word in (*SCREEN_WORDS, *secrets):
            assert word not in text, (word, event)


@pytest.mark.parametrize(("kind", "priority"), [("distress", "urgent"), ("ask_supervisor", "high"),
                                                ("help", "high")])
def test_each_call_end_to_end(live, actors, kind, priority):
    a = actors()
    note = {"distress": "客户情绪激动", "ask_supervisor": "外币兑换限额是多少？", "help": "打印机卡纸"}[kind]
    response = requests.post(a["alerts"], headers=bearer(a["teller"]), json={"kind": kind, "note": note}, timeout=5)
    assert response.status_code == 202, response.text
    alert = response.json()["alert"]
    assert alert["kind"] == kind and alert["status"] == "sent"

    page = a["device"].wait_for(lambda e: e.type == "page").data["page"]
    assert (page["kind"], page["priority"], page["counter"], page["window"]) == (kind, priority, "2", "2")
    assert page["escalation_level"] == 0 and page["paged"] == ["lobby-manager"]
    assert page["created_at"] and page["status"] == "open"
    if kind == "ask_supervisor":
        assert page["details"]["question"] == note

    ack = requests.post(f"{a['pages']}/{page['id']}/ack", headers=bearer(a["manager"]), timeout=5)
    assert ack.status_code == 200 and ack.json()["page"]["acknowledged_by"] == "lobby-manager"
    heard = a["terminal"].wait_for(lambda e: e.type == "alert_acknowledged")
    # A distress call's terminal is read across the counter: it is told the call was taken, never by whom.
    named = None if kind == "distress" else "大堂经理"
    assert heard.data["by_name"] == named and heard.data["alert"]["id"] == alert["id"]
    assert heard.data["alert"]["acknowledged_by"] == named
    every_device = a["device"].wait_for(lambda e: e.type == "page_updated")
    assert every_device.data["page"]["acknowledged_by"] == "lobby-manager", "every device sees who is coming"

    if kind == "ask_supervisor":
        answer = "单笔等值五千美元以内可以直接办理"
        replied = requests.post(f"{a['pages']}/{page['id']}/reply", headers=bearer(a["manager"]),
                                json={"message": answer}, timeout=5)
        assert replied.status_code == 200
        reply = a["terminal"].wait_for(lambda e: e.type == "reply")
        assert reply.data["message"] == answer and reply.data["by_name"] == "大堂经理"

    def alert_now() -> dict:
        got = requests.get(f"{a['alerts']}/{alert['id']}", headers=bearer(a["teller"]), timeout=5).json()["alert"]
        done = got["status"] == "acknowledged" and (kind != "ask_supervisor" or got["reply"])
        return got if done else {}

    final = eventually(alert_now)
    assert final["page_id"] == page["id"] and final["acknowledged_by"] == named
    assert_screen_clean(a["screen"], note)


def test_ten_presses_in_a_burst_make_one_page(live, actors):
    a = actors()
    start = threading.Barrier(10)
    codes: list[int] = []

    def press() -> None:
        start.wait()
        codes.append(requests.post(a["alerts"], headers=bearer(a["teller"]), json={"kind": "distress"},
                                   timeout=5).status_code)

    threads = [threading.Thread(target=press) for _ in range(10)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    assert codes == [202] * 10
    a["device"].wait_for(lambda e: e.data.get("page", {}).get("presses") == 10)
    opened = requests.get(a["pages"], headers=bearer(a["manager"]), timeout=5).json()["pages"]
    assert len(opened) == 1 and opened[0]["presses"] == 10
    assert len(a["device"].of_type("page")) == 1
    assert len(opened[0]["details"]["alert_ids"]) == 10
    assert_screen_clean(a["screen"])

    # Acknowledging the page acknowledges every press: one notice on the terminal, all alerts answered. The
    # page's resolution, news that comes after it, closes the count.
    requests.post(f"{a['pages']}/{opened[0]['id']}/ack", headers=bearer(a["manager"]), timeout=5)
    requests.post(f"{a['pages']}/{opened[0]['id']}/resolve", headers=bearer(a["manager"]), json={}, timeout=5)
    resolved = a["terminal"].wait_for(lambda e: e.type == "alert" and e.data["event"] == "resolved").seq
    assert [e.type for e in a["terminal"].events if e.seq < resolved].count("alert_acknowledged") == 1


def test_unanswered_page_escalates_and_an_ack_stops_everything(live, actors, quick_branch, r):
    """Level 0 unanswered for 2 s, the deputy is paged; the deputy acknowledges, which takes the page's timers
    away: nothing is left to repeat or escalate it (test_escalation.py moves a fake clock past every deadline)."""
    timeout_s = quick_branch.escalation.high_s
    a = actors(QUICK)
    requests.post(a["alerts"], headers=bearer(a["teller"]), json={"kind": "help"}, timeout=5)
    page = a["device"].wait_for(lambda e: e.type == "page").data["page"]
    escalated = a["device"].wait_for(lambda e: e.type == "page_updated" and e.data.get("change") == "escalated",
                                     timeout=timeout_s + 5).data["page"]
    assert escalated["escalation_level"] == 1 and escalated["paged"] == ["lobby-manager", "deputy"]
    ack = requests.post(f"{a['pages']}/{page['id']}/ack", headers=bearer(a["deputy"]), timeout=5)
    assert ack.status_code == 200 and ack.json()["page"]["acknowledged_by"] == "deputy"
    a["terminal"].wait_for(lambda e: e.type == "alert_acknowledged" and e.data["by"] == "deputy")
    assert timers_of(r, QUICK, page["id"]) == [], "the acknowledgement removed the page's timers"
    a["device"].wait_for(lambda e: e.type == "page_updated" and e.data.get("change") == "acknowledged")
    changes = [e.data.get("change") for e in a["device"].of_type("page_updated")]
    assert changes == ["escalated", "acknowledged"], changes

    trail = requests.get(f"{a['pages']}/{page['id']}", headers=bearer(a["deputy"]), timeout=5).json()["page"]
    events = [(entry["event"], entry["level"]) for entry in trail["audit"]]
    assert events == [("created", 0), ("escalated", 1), ("acknowledged", 1)]
    created, escalated_at = (clock.parse_iso(trail["audit"][i]["at"]) for i in (0, 1))
    assert (escalated_at - created).total_seconds() >= timeout_s, "an escalation never fires early"


def test_urgent_page_repeats_then_climbs_every_level(live, actors, quick_branch, r):
    a = actors(QUICK)
    requests.post(a["alerts"], headers=bearer(a["teller"]), json={"kind": "distress"}, timeout=5)
    page = a["device"].wait_for(lambda e: e.type == "page").data["page"]
    assert page["priority"] == "urgent"
    top = a["device"].wait_for(lambda e: e.type == "page_updated" and e.data["page"]["escalation_level"] == 2,
                               timeout=3 * quick_branch.escalation.urgent_s + 5).data["page"]
    assert top["paged"] == ["lobby-manager", "deputy", "branch-manager"]
    assert top["repeats"] >= 1, "repeated to the current level before climbing"
    requests.post(f"{a['pages']}/{page['id']}/resolve", headers=bearer(a["manager"]), json={"note": "已处理"},
                  timeout=5)
    a["device"].wait_for(lambda e: e.data["page"]["status"] == "resolved")
    assert timers_of(r, QUICK, page["id"]) == [], "resolving removed the page's timers: nothing repeats it"


def test_the_answer_to_a_press_is_the_alert_as_stored(clients, token, r):
    """The 202 is built from what the press wrote, without reading it back: it must say what a read says."""
    headers = {"Authorization": f"Bearer {token('counter', '2')}"}
    url = f"/api/v1/branches/{BRANCH}/counters/2/alerts"
    answer = clients["counter"].post(url, headers=headers, json={"kind": "help", "note": "打印机卡纸"})
    assert answer.status_code == 202
    alert = answer.json["alert"]
    assert alert["status"] == "sent" and alert["kind"] == "help" and alert["counter"] == "2"
    stored = r.hgetall(keys.alert(BRANCH, alert["id"]))
    assert {k: stored[k] for k in ("id", "kind", "counter", "created_at")} == \
        {k: alert[k] for k in ("id", "kind", "counter", "created_at")}
