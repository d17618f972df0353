"""Rule 1, end to end over HTTP against gunicorn services and RQ workers on a real Redis.

Three VIP customers wait; the VIP counter pauses for the vault; the lobby manager is paged with the
reason, the minutes and who waits; the screen sends VIP customers to window 3, which calls them first;
the manager acknowledges; the VIP counter resumes and VIP tickets go back to it.
"""

from __future__ import annotations

import requests

from tests.conftest import BRANCH, bearer, stack_logs

API = f"/api/v1/branches/{BRANCH}"



def take(live, category: str) -> dict:
    response = requests.post(f"{live.url('kiosk')}{API}/tickets", json={"category": category}, timeout=5)
    assert response.status_code == 201, response.text
    return response.json()["ticket"]


def test_vip_pause_pages_manager_and_redirects_to_window_3(live, token, sse):
    kiosk, counter, pager = live.url("kiosk"), live.url("counter"), live.url("pager")
    vip, window3 = bearer(token("counter", "vip")), bearer(token("counter", "3"))
    device_token = token("device", "lobby-manager")
    device = sse(f"{pager}{API}/pages/events", headers=bearer(device_token))
    screen = sse(f"{kiosk}{API}/screen/events")
    terminal = sse(f"{counter}{API}/counters/vip/events", params={"token": token("counter", "vip")})
    assert device.status == screen.status == terminal.status == 200
    screen.wait_for(lambda e: e.type == "screen")

    numbers = [take(live, "vip")["number"] for _ in range(3)]
    assert numbers == ["V001", "V002", "V003"]
    personal = take(live, "personal")["number"]
    assert personal == "A001"

    paused = requests.post(f"{counter}{API}/counters/vip/pause", headers=vip,
                           json={"reason": "vault_transfer", "expected_minutes": 15, "note": "下班前入库"}, timeout=5)
    assert paused.status_code == 200, paused.text
    body = paused.json()["counter"]
    assert body["status"] == "paused"
    assert body["pause"]["reason"] == "vault_transfer" and body["pause"]["expected_minutes"] == 15

    # The manager's device hears of it: reason, minutes, and three VIP customers waiting.
    page_event = device.wait_for(lambda e: e.type == "page" and e.data["page"]["kind"] == "pause",
                                 timeout=10)
    page = page_event.data["page"]
    assert page["counter"] == "vip" and page["window"] == "VIP"
    assert page["details"]["reason"] == "vault_transfer"
    assert page["details"]["expected_minutes"] == 15
    assert page["details"]["vip_waiting"] == 3
    assert page["details"]["longest_vip_wait_s"] >= 0
    assert page["details"]["redirect_window"] == "3"
    assert "15" in page["message"] and "3" in page["message"], page["message"]

    # The screen redirects the waiting VIP customers to window 3, in the stream and the snapshot.
    notice = screen.wait_for(lambda e: e.type == "notice" and e.data["notices"], timeout=10)
    expected = {"kind": "vip_redirect", "window": "3", "category": "vip", "tickets": numbers,
                "reason": "vip_counter_paused"}
    assert notice.data["notices"][0] == expected
    snapshot = requests.get(f"{kiosk}{API}/screen", timeout=5).json()
    assert snapshot["notices"] == [expected]
    ticket = requests.get(f"{kiosk}{API}/tickets/V002", timeout=5).json()["ticket"]
    assert ticket["redirect"] == {"window": "3", "reason": "vip_counter_paused"}
    assert requests.get(f"{kiosk}{API}/tickets/{personal}", timeout=5).json()["ticket"]["redirect"] is None

    # A VIP customer who arrives during the pause is redirected too.
    late = take(live, "vip")
    assert late["number"] == "V004" and late["redirect"] == {"window": "3", "reason": "vip_counter_paused"}

    # The paused counter takes no calls; window 3 calls the VIP customers first.
    refused = requests.post(f"{counter}{API}/counters/vip/call-next", headers=vip, timeout=5)
    assert refused.status_code == 409 and refused.json()["error"]["code"] == "counter_paused"
    called = requests.post(f"{counter}{API}/counters/3/call-next", headers=window3, timeout=5)
    assert called.status_code == 200, called.text
    assert called.json()["ticket"]["number"] == "V001"
    assert called.json()["ticket"]["window"] == "3"
    shown = screen.wait_for(lambda e: e.type == "ticket_called" and e.data["number"] == "V001")
    assert shown.data["window"] == "3"

    # The manager acknowledges; the VIP terminal hears who is coming.
    ack = requests.post(f"{pager}{API}/pages/{page['id']}/ack", headers=bearer(device_token), timeout=5)
    assert ack.status_code == 200, ack.text
    assert ack.json()["page"]["status"] == "acknowledged"
    assert ack.json()["page"]["acknowledged_by"] == "lobby-manager"
    heard = terminal.wait_for(lambda e: e.type == "alert_acknowledged", timeout=10)
    assert heard.data["by"] == "lobby-manager" and heard.data["by_name"] == "大堂经理"

    # Resume: the notice goes, the manager gets a low-priority resume page, VIP goes back to the VIP counter.
    resumed = requests.post(f"{counter}{API}/counters/vip/resume", headers=vip, timeout=5)
    assert resumed.status_code == 200 and resumed.json()["counter"]["status"] == "open"
    resume_page = device.wait_for(lambda e: e.type == "page" and e.data["page"]["kind"] == "resume").data["page"]
    assert resume_page["priority"] == "low"
    screen.wait_for(lambda e: e.type == "notice" and e.data["notices"] == [])
    assert requests.get(f"{kiosk}{API}/screen", timeout=5).json()["notices"] == []
    assert requests.get(f"{kiosk}{API}/tickets/V002", timeout=5).json()["ticket"]["redirect"] is None

    after = requests.post(f"{counter}{API}/counters/3/call-next", headers=window3, timeout=5).json()["ticket"]
    assert after["number"] == personal, "window 3 is back to personal customers"
    again = requests.post(f"{counter}{API}/counters/vip/call-next", headers=vip, timeout=5).json()["ticket"]
    assert again["number"] == "V002" and again["window"] == "VIP", stack_logs(live)

    # The public screen never saw anything but tickets, calls, waiting counts and notices.
    assert {e.type for e in screen.events} <= {"screen", "ticket_called", "waiting", "notice"}
