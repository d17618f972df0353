"""The floor: the whole branch at a glance for the manager, read whole (GET) and followed live (SSE)."""

from __future__ import annotations

import requests

from services.domain import floor, presence
from services.domain.desk import Desk
from tests.conftest import BRANCH, bearer, issue


def test_the_floor_reads_counters_lines_redirects_and_endpoints(own_redis, branch, fake_clock):
    vip, personal = branch.category("vip"), branch.category("personal")
    for category in (vip, vip, personal):
        issue(own_redis, branch, category)
    Desk(own_redis, branch, "1").call_next()
    Desk(own_redis, branch, "vip").pause("vault_transfer", 15, None)
    Desk(own_redis, branch, "4").close()
    presence.opened(own_redis, branch, presence.endpoint("display", "lobby"), "c1", fake_clock.now_ms())
    fake_clock.advance(13 * 60)

    seen = floor.snapshot(own_redis, branch)
    by_id = {c.id: c for c in seen.counters}
    assert (by_id["vip"].status, by_id["vip"].pause.reason, by_id["vip"].pause.left_s) == ("paused", "vault_transfer",
                                                                                            120)
    assert (by_id["1"].serving.ticket, by_id["1"].serving.serving_s, by_id["1"].serving.long) == ("A001", 780, True)
    assert by_id["4"].status == "closed" and by_id["2"].serving is None
    lines = {line.category: line for line in seen.lines}
    assert (lines["vip"].waiting, lines["vip"].longest_wait_s) == (2, 780)
    assert lines["personal"].waiting == 0 and lines["personal"].longest_wait_s is None
    assert [(r.category, r.from_window, r.to_window) for r in seen.redirects] == [("vip", "VIP", "3")]
    states = {e.endpoint: (e.state, e.since) for e in seen.endpoints}
    assert states["display:lobby"][0] == "offline", "a page unheard for 13 minutes"
    assert states["display:lobby"][1].endswith("09:00:00.000+08:00")
    assert states["device:deputy"] == ("unsupervised", None)

    fake_clock.advance(3 * 60)
    over = {c.id: c for c in floor.snapshot(own_redis, branch).counters}["vip"]
    assert over.pause.left_s == -60, "a pause that runs over counts below zero"


def test_the_floor_is_for_managers_and_follows_the_branch_live(live, token, sse):
    api = f"{live.url('pager')}/api/v1/branches/{BRANCH}/floor"
    assert requests.get(api, timeout=5).status_code == 401
    assert requests.get(api, headers=bearer(token("counter", "1")), timeout=5).status_code == 403
    manager = bearer(token("device", "lobby-manager"))
    whole = requests.get(api, headers=manager, timeout=5)
    assert whole.status_code == 200 and {c["id"] for c in whole.json()["counters"]} == {"vip", "1", "2", "3", "4"}

    feed = sse(f"{api}/events", headers=manager)
    first = feed.wait_for(lambda e: e.type == "floor").data
    assert first["redirects"] == [] and first["branch"] == BRANCH
    counter = f"{live.url('counter')}/api/v1/branches/{BRANCH}/counters/vip"
    teller = bearer(token("counter", "vip"))
    assert requests.post(f"{counter}/pause", headers=teller, json={"reason": "vault_transfer", "expected_minutes": 15},
                         timeout=5).status_code == 200
    paused = feed.wait_for(lambda e: e.type == "floor" and e.data["redirects"], timeout=5).data
    assert {c["id"]: c["status"] for c in paused["counters"]}["vip"] == "paused"
    assert paused["redirects"] == [{"category": "vip", "from_window": "VIP", "to_window": "3"}]
    requests.post(f"{live.url('kiosk')}/api/v1/branches/{BRANCH}/tickets", json={"category": "vip"}, timeout=5)
    feed.wait_for(lambda e: e.type == "floor" and {line["category"]: line["waiting"]
                                                   for line in e.data["lines"]}["vip"] == 1, timeout=5)
    three = bearer(token("counter", "3"))
    requests.post(f"{live.url('counter')}/api/v1/branches/{BRANCH}/counters/3/call-next", headers=three, timeout=5)
    called = feed.wait_for(lambda e: e.type == "floor" and {c["id"]: c for c in e.data["counters"]}["3"]["serving"],
                           timeout=5).data
    assert {c["id"]: c for c in called["counters"]}["3"]["serving"]["ticket"] == "V001", "window 3 calls VIP first"


def test_revoking_the_token_ends_the_floor_stream(live, r, token, sse):
    from services.web import auth

    doomed = token("device", "deputy")
    feed = sse(f"{live.url('pager')}/api/v1/branches/{BRANCH}/floor/events", headers=bearer(doomed))
    feed.wait_for(lambda e: e.type == "floor")
    auth.revoke(r, BRANCH, doomed)
    assert feed.wait_for(lambda e: e.type == "revoked", timeout=10).data == {"reason": "token_revoked"}
