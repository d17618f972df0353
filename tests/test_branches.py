"""Several branches in one deployment: side by side, they never see each other's tickets, pages or streams."""

from __future__ import annotations

import requests

from services.domain import keys
from tests.conftest import BRANCH, QUICK, settle
from tests.sse import eventually


def _api(live, service: str, branch: str) -> str:
    return f"{live.url(service)}/api/v1/branches/{branch}"


def test_two_branches_side_by_side_share_nothing(live, token, sse, r):
    screens = {b: sse(f"{_api(live, 'kiosk', b)}/screen/events") for b in (BRANCH, QUICK)}
    device_tokens = {b: token("device", "lobby-manager", b) for b in (BRANCH, QUICK)}
    devices = {b: sse(f"{_api(live, 'pager', b)}/pages/events", params={"token": device_tokens[b]})
               for b in (BRANCH, QUICK)}
    counter_tokens = {b: {c: token("counter", c, b) for c in ("vip", "3")} for b in (BRANCH, QUICK)}

    def post(service: str, branch: str, path: str, counter: str | None = None, **body) -> requests.Response:
        headers = {"Authorization": f"Bearer {counter_tokens[branch][counter]}"} if counter else {}
        return requests.post(f"{_api(live, service, branch)}{path}", json=body or None, headers=headers, timeout=5)

    # Each branch numbers its own tickets.
    for b in (BRANCH, QUICK):
        assert post("kiosk", b, "/tickets", category="vip").json()["ticket"]["number"] == "V001"
    assert post("kiosk", BRANCH, "/tickets", category="vip").json()["ticket"]["number"] == "V002"

    # The VIP counter of one branch pauses: only that branch's manager, screen and window 3 hear of it.
    assert post("counter", BRANCH, "/counters/vip/pause", "vip", reason="vault_transfer",
                expected_minutes=10).status_code == 200
    page = devices[BRANCH].wait_for(lambda e: e.type == "page")
    assert page.data["page"]["details"]["vip_waiting"] == 2, "counts only its own branch's VIP customers"
    screens[BRANCH].wait_for(lambda e: e.type == "notice" and e.data["notices"])
    assert post("counter", QUICK, "/counters/3/call-next", "3").json()["ticket"] is None, \
        "the other branch's window 3 calls no VIP: its VIP counter is open"
    called = post("counter", BRANCH, "/counters/3/call-next", "3").json()["ticket"]
    assert (called["number"], called["window"]) == ("V001", "3")
    screens[BRANCH].wait_for(lambda e: e.type == "ticket_called")

    # A distress in the other branch reaches only its manager.
    alert = requests.post(f"{_api(live, 'counter', QUICK)}/counters/3/alerts", json={"kind": "distress"},
                          headers={"Authorization": f"Bearer {counter_tokens[QUICK]['3']}"}, timeout=5)
    assert alert.status_code == 202
    devices[QUICK].wait_for(lambda e: e.type == "page" and e.data["page"]["kind"] == "distress")
    settle()

    def listed(b: str) -> list[tuple[str, str]]:
        response = requests.get(f"{_api(live, 'pager', b)}/pages", params={"status": "all"},
                                headers={"Authorization": f"Bearer {device_tokens[b]}"}, timeout=5)
        return sorted((p["counter"], p["kind"]) for p in response.json()["pages"])

    assert eventually(lambda: listed(BRANCH) == [("vip", "pause")])
    assert listed(QUICK) == [("3", "distress")]
    assert [e.data["page"]["kind"] for e in devices[BRANCH].of_type("page")] == ["pause"]
    assert [e.data["page"]["kind"] for e in devices[QUICK].of_type("page")] == ["distress"]
    assert not screens[QUICK].of_type("ticket_called") and not any(
        e.data.get("notices") for e in screens[QUICK].of_type("notice")), "the quiet branch's screen saw nothing"
    quick_screen = requests.get(f"{_api(live, 'kiosk', QUICK)}/screen", timeout=5).json()
    assert quick_screen["now_serving"] == [] and quick_screen["notices"] == []
    assert quick_screen["waiting"]["vip"]["count"] == 1
    assert requests.get(f"{_api(live, 'kiosk', QUICK)}/tickets/V002", timeout=5).status_code == 404

    # A token of one branch is useless in the other.
    for service, path, tok in (("pager", "/pages", device_tokens[BRANCH]),
                               ("counter", "/counters/vip", counter_tokens[BRANCH]["vip"])):
        response = requests.get(f"{_api(live, service, QUICK)}{path}", headers={"Authorization": f"Bearer {tok}"},
                                timeout=5)
        assert response.status_code == 403 and response.json()["error"]["code"] == "wrong_branch"
    stolen = requests.get(f"{_api(live, 'pager', QUICK)}/pages/events",
                          params={"token": device_tokens[BRANCH]}, timeout=5)
    assert stolen.status_code == 403

    # Every key is under one branch's hash tag (so a branch can move to another Redis), rate-limit counters too,
    # bar the global index of outboxes, the streams between services on this Redis, the revocations every live
    # stream reads, and what running processes say of themselves (workers' heartbeats, web processes' holdings,
    # their stream readers' wake-ups).
    branch_keys = {b: keys.branch(b) for b in (BRANCH, QUICK)}
    stray = [k for k in r.scan_iter("lobby:*", count=1000)
             if not any(k.startswith(prefix + ":") for prefix in branch_keys.values())
             and k not in (keys.outbox_branches(), keys.page_requests(), keys.page_news(), keys.REVOCATIONS,
                           keys.WEB_PROCESSES)
             and not k.startswith((keys.worker(""), keys.HUB_WAKE))]
    assert stray == []
