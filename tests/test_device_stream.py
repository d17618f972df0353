"""The manager's device feed: a device that reconnects with Last-Event-ID misses nothing, gets nothing twice."""

from __future__ import annotations

import requests

from tests.conftest import BRANCH
from tests.sse import eventually, stream_seq

API = f"/api/v1/branches/{BRANCH}"


def _pause_resume(live, counter_token: str, counter: str) -> None:
    headers = {"Authorization": f"Bearer {counter_token}"}
    base = f"{live.url('counter')}{API}/counters/{counter}"
    assert requests.post(f"{base}/pause", headers=headers, json={"reason": "review", "expected_minutes": 5},
                         timeout=5).status_code == 200
    assert requests.post(f"{base}/resume", headers=headers, timeout=5).status_code == 200


def test_reconnect_with_last_event_id_gets_every_missed_page_once(live, token, sse):
    device = {"Authorization": f"Bearer {token('device', 'lobby-manager')}"}
    url = f"{live.url('pager')}{API}/pages/events"
    first = sse(url, headers=device)
    _pause_resume(live, token("counter", "1"), "1")
    first.wait_for(lambda e: e.type == "page" and e.data["page"]["kind"] == "resume")
    seen = [e for e in first.events if e.type == "page"]
    assert [e.data["page"]["kind"] for e in seen] == ["pause", "resume"]
    last_id = seen[-1].id
    first.close()

    # While the device is away: two counters call for help, and the manager's deputy acknowledges one.
    for counter, kind in (("2", "help"), ("4", "distress")):
        assert requests.post(f"{live.url('counter')}{API}/counters/{counter}/alerts", json={"kind": kind},
                             headers={"Authorization": f"Bearer {token('counter', counter)}"},
                             timeout=5).status_code == 202

    def open_pages() -> list[dict]:
        found = requests.get(f"{live.url('pager')}{API}/pages", headers=device, timeout=5).json()["pages"]
        calls = [p for p in found if p["kind"] in ("help", "distress")]
        return calls if len(calls) == 2 else []

    help_2 = next(p for p in eventually(open_pages) if p["counter"] == "2")
    deputy = {"Authorization": f"Bearer {token('device', 'deputy')}"}
    assert requests.post(f"{live.url('pager')}{API}/pages/{help_2['id']}/ack", headers=deputy,
                         timeout=5).status_code == 200

    again = sse(url, headers={**device, "Last-Event-ID": last_id})
    again.wait_for(lambda e: e.type == "page_updated" and e.data["page"]["id"] == help_2["id"])
    missed = [e for e in again.events if e.type == "page"]
    assert [(e.data["page"]["counter"], e.data["page"]["kind"]) for e in missed] == [("2", "help"), ("4", "distress")]
    updated = again.of_type("page_updated")
    assert [(e.data["page"]["id"], e.data["page"]["acknowledged_by"]) for e in updated] == [(help_2["id"], "deputy")]
    ids = [e.id for e in again.events]
    assert len(ids) == len(set(ids)), "no event twice"
    assert all(e.seq > stream_seq(last_id) for e in again.events), "nothing from before the cursor"

    # ?since= works for clients that cannot set headers, and a bad cursor is refused.
    since = sse(url, params={"since": last_id, "token": token("device", "deputy")})
    since.wait_for(lambda e: e.type == "page_updated" and e.data["page"]["id"] == help_2["id"])
    assert len(since.of_type("page")) == 2 and len(since.of_type("page_updated")) == 1
    bad = requests.get(url, headers={**device, "Last-Event-ID": "yesterday"}, timeout=5)
    assert bad.status_code == 400 and bad.json()["error"]["code"] == "bad_event_id"


def test_event_data_cannot_split_a_frame(live, token, sse):
    """A note with newlines and `data:` lines stays inside one JSON data line."""
    device = sse(f"{live.url('pager')}{API}/pages/events",
                 headers={"Authorization": f"Bearer {token('device', 'lobby-manager')}"})
    note = "line one\n\ndata: {\"forged\": true}\nevent: page\n<b>bold</b>"
    response = requests.post(f"{live.url('counter')}{API}/counters/vip/pause",
                             headers={"Authorization": f"Bearer {token('counter', 'vip')}"},
                             json={"reason": "other", "expected_minutes": 3, "note": note}, timeout=5)
    assert response.status_code == 200
    event = device.wait_for(lambda e: e.type == "page")
    # A note shows on one line: its line breaks are spaces by the time it is stored, and nothing in it can
    # end a frame or start another.
    assert event.data["page"]["details"]["note"] == "line one data: {\"forged\": true} event: page <b>bold</b>"
    assert not any("forged" in e.data for e in device.events)
