"""Supervision of the managers' devices and the counters' terminals: which are live, and whom a new page goes to.

The domain's rules on a Redis of the test's own, on a clock passed in (fake_clock for pages); then the same
through the running stack: a stream that opens, heartbeats, and a press whose page skips an offline device.
"""

from __future__ import annotations

import requests

from services.domain import alerts, keys, pages, presence
from services.domain.clock import SYSTEM
from services.domain.contracts import PageKind, Priority
from tests.conftest import BRANCH, bearer
from tests.sse import eventually

LOBBY, DEPUTY = presence.endpoint(presence.DEVICE, "lobby-manager"), presence.endpoint(presence.DEVICE, "deputy")
T0 = 1_800_000_000_000



def live_of(r, branch, *names, now_ms):
    return [p.live for p in presence.of(r, branch, names, now_ms)]


def test_an_open_stream_is_live_until_it_ends_and_its_page_stops_reconnecting(own_redis, branch):
    grace_ms = presence.RECONNECT_GRACE_S * 1000
    assert live_of(own_redis, branch, LOBBY, now_ms=T0) == [False], "never heard of: offline"
    presence.opened(own_redis, branch, LOBBY, "c1", T0)
    [state] = presence.of(own_redis, branch, [LOBBY], T0 + 1)
    assert (state.live, state.seen_ms, state.since_ms) == (True, T0, T0)
    presence.closed(own_redis, branch.id, LOBBY, "c1", T0 + 9_000)
    presence.heard(own_redis, branch, LOBBY, T0 + 10_000)
    assert live_of(own_redis, branch, LOBBY, now_ms=T0 + 9_000 + grace_ms) == [True], "reconnecting"
    [state] = presence.of(own_redis, branch, [LOBBY], T0 + 9_001 + grace_ms)
    assert (state.live, state.offline_since_ms) == (False, T0 + 9_000), "beating without a stream: since it ended"


def test_a_closed_page_is_offline_since_it_was_last_heard_of(own_redis, branch):
    offline_ms = int(branch.supervision.offline_after_s * 1000)
    presence.opened(own_redis, branch, LOBBY, "c1", T0)
    presence.closed(own_redis, branch.id, LOBBY, "c1", T0 + 9_000)  # the server notices at its next keepalive
    [state] = presence.of(own_redis, branch, [LOBBY], T0 + offline_ms + 1)
    assert (state.live, state.offline_since_ms) == (False, T0)


def test_a_frozen_page_with_its_socket_open_goes_offline_until_it_beats_again(own_redis, branch):
    offline_ms = int(branch.supervision.offline_after_s * 1000)
    presence.opened(own_redis, branch, LOBBY, "c1", T0)  # its stream stays open; its heartbeats stop
    assert live_of(own_redis, branch, LOBBY, now_ms=T0 + offline_ms) == [True], "heard of at the limit: live"
    assert live_of(own_redis, branch, LOBBY, now_ms=T0 + offline_ms + 1) == [False], "no heartbeat: offline"
    presence.heard(own_redis, branch, LOBBY, T0 + offline_ms + 2)
    assert live_of(own_redis, branch, LOBBY, now_ms=T0 + offline_ms + 3) == [True]


def test_the_streams_of_an_endpoint_lapse_when_its_page_stops_beating(own_redis, branch):
    """A web process that died never removes its streams: they go when their page is no longer heard of, twice
    offline_after_s later, and every heartbeat keeps them meanwhile."""
    claim_s = presence.claim_s(branch)
    assert claim_s == 2 * branch.supervision.offline_after_s
    presence.opened(own_redis, branch, LOBBY, "c1", T0)
    streams = keys.presence_streams(branch.id, LOBBY)
    own_redis.expire(streams, 5)  # as if most of claim_s had passed unheard
    presence.heard(own_redis, branch, LOBBY, T0 + 1_000)
    assert claim_s - 2 <= own_redis.ttl(streams) <= claim_s, "a heartbeat keeps them"
    own_redis.pexpire(streams, 1)
    eventually(lambda: not own_redis.exists(streams), timeout=2)
    assert live_of(own_redis, branch, LOBBY, now_ms=T0 + 2_000) == [False], "unheard that long: no stream open"


def test_an_ended_stream_goes_and_the_others_stay(own_redis, branch):
    presence.opened(own_redis, branch, LOBBY, "c1", T0)
    presence.opened(own_redis, branch, LOBBY, "c2", T0 + 1)
    presence.closed(own_redis, branch.id, LOBBY, "c1", T0 + 2)
    assert own_redis.smembers(keys.presence_streams(branch.id, LOBBY)) == {"c2"}
    [state] = presence.of(own_redis, branch, [LOBBY], T0 + 6_000)
    assert state.live and state.since_ms == T0, "connected since the first stream: a second one does not restart it"


def test_a_new_page_goes_to_the_first_manager_whose_device_is_live(own_redis, branch):
    names = [m.id for m in branch.managers]
    assert presence.route(own_redis, branch, T0) == [presence.Paged(names[0], False)], "none live: the first"
    presence.opened(own_redis, branch, DEPUTY, "c1", T0)
    assert presence.route(own_redis, branch, T0 + 1) == [presence.Paged(names[0], False),
                                                         presence.Paged(names[1], True)]
    presence.opened(own_redis, branch, LOBBY, "c2", T0)
    assert presence.route(own_redis, branch, T0 + 1) == [presence.Paged(names[0], True)]


def _press(r, branch, kind=PageKind.HELP, priority=Priority.HIGH):
    request = alerts.page_request(branch, "2", kind, priority, "2 窗口协助", {}, SYSTEM.now())
    return pages.create(r, branch, request)[0]


def test_a_page_skips_an_offline_lobby_manager_and_climbs_on_from_the_deputy(own_redis, branch, fake_clock):
    presence.opened(own_redis, branch, DEPUTY, "c1", fake_clock.now_ms())
    page = _press(own_redis, branch)
    assert (page.escalation_level, page.paged) == (1, ["lobby-manager", "deputy"])
    assert [(e.event, e.by, e.level) for e in page.audit] == [("skipped_offline", "lobby-manager", 0),
                                                               ("created", "deputy", 1)]
    fake_clock.advance(branch.escalation.high_s)
    presence.heard(own_redis, branch, DEPUTY, fake_clock.now_ms())
    assert pages.fire_due(own_redis, [branch]) == 1
    climbed = pages.get(own_redis, branch.id, page.id)
    assert (climbed.escalation_level, climbed.paged[-1]) == (2, "branch-manager")


def test_with_no_device_live_the_page_is_made_for_the_first_level(own_redis, branch, fake_clock):
    page = _press(own_redis, branch)
    assert (page.escalation_level, page.paged) == (0, ["lobby-manager"])
    assert page.audit[0].event == "created" and "no manager's device is live" in page.audit[0].note


def test_the_terminal_is_told_whom_its_call_reached(live, r, token, sse):
    """Only the deputy's device is connected: the help call goes to the deputy at once, and the alert says the
    lobby manager's device was offline; a distress call says as much without naming anyone."""
    teller = bearer(token("counter", "2"))
    api = f"{live.url('counter')}/api/v1/branches/{BRANCH}/counters/2"
    deputy_token = token("device", "deputy")
    deputy = sse(f"{live.url('pager')}/api/v1/branches/{BRANCH}/pages/events", headers=bearer(deputy_token))
    assert deputy.status == 200
    beat = requests.post(f"{live.url('pager')}/api/v1/branches/{BRANCH}/device/heartbeat",
                         headers=bearer(deputy_token), timeout=5)
    assert beat.status_code == 204 and r.hget(keys.presence(BRANCH, DEPUTY), "seen")

    def paged(alert_id: str) -> list | None:
        alert = requests.get(f"{api}/alerts/{alert_id}", headers=teller, timeout=5).json()["alert"]
        return alert["paged"] or None

    help_call = requests.post(f"{api}/alerts", headers=teller, json={"kind": "help"}, timeout=5).json()["alert"]
    assert eventually(lambda: paged(help_call["id"])) == [{"manager": "lobby-manager", "live": False},
                                                          {"manager": "deputy", "live": True}]
    page = deputy.wait_for(lambda e: e.type == "page").data["page"]
    assert (page["escalation_level"], page["paged"]) == (1, ["lobby-manager", "deputy"])

    distress = requests.post(f"{api}/alerts", headers=teller, json={"kind": "distress"}, timeout=5).json()["alert"]
    assert eventually(lambda: paged(distress["id"])) == [{"manager": None, "live": False},
                                                         {"manager": None, "live": True}]


def test_a_heartbeat_needs_the_devices_own_token(live, token):
    url = f"{live.url('pager')}/api/v1/branches/{BRANCH}/device/heartbeat"
    assert requests.post(url, timeout=5).status_code == 401
    assert requests.post(url, headers=bearer(token("counter", "2")), timeout=5).status_code == 403
    terminal = f"{live.url('counter')}/api/v1/branches/{BRANCH}/counters/1/heartbeat"
    assert requests.post(terminal, headers=bearer(token("counter", "2")), timeout=5).status_code == 403
    assert requests.post(terminal, headers=bearer(token("counter", "1")), timeout=5).status_code == 204


def test_a_screen_is_supervised_only_with_its_own_screen_token(live, r, token, sse):
    kiosk_api = f"{live.url('kiosk')}/api/v1/branches/{BRANCH}"
    kiosk = presence.endpoint("kiosk", "kiosk-1")
    public = sse(f"{kiosk_api}/screen/events", params={"token": "lby.zhongnan.nope.nope"})
    assert public.status == 200, "a bad token never darkens a public screen: it is served, unsupervised"
    assert not r.exists(keys.presence(BRANCH, kiosk))

    screen_token = token("screen", "kiosk-1")
    enrolled = sse(f"{kiosk_api}/screen/events", params={"token": screen_token})
    assert enrolled.status == 200
    assert r.scard(keys.presence_streams(BRANCH, kiosk)) == 1 and r.hget(keys.presence(BRANCH, kiosk), "seen")
    beat = f"{kiosk_api}/screens/heartbeat"
    assert requests.post(beat, headers=bearer(screen_token), timeout=5).status_code == 204
    assert requests.post(beat, timeout=5).status_code == 401
    assert requests.post(beat, headers=bearer(token("device", "deputy")), timeout=5).status_code == 403
    other_branch = requests.post(beat.replace(BRANCH, "quick"), headers=bearer(screen_token), timeout=5)
    assert other_branch.status_code == 403 and other_branch.json()["error"]["code"] == "wrong_branch"
