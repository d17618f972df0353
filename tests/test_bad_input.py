"""Bad input gets a clear JSON error and changes nothing."""

from __future__ import annotations

import pytest
import requests

from tests.conftest import BRANCH, settle, state

API = f"/api/v1/branches/{BRANCH}"


@pytest.fixture
def world(live, r, token):
    """A branch mid-morning: tickets waiting, the VIP counter serving one, tokens for each actor."""
    for category in ("vip", "vip", "personal"):
        requests.post(f"{live.url('kiosk')}{API}/tickets", json={"category": category}, timeout=5)
    tokens = {"vip": token("counter", "vip"), "3": token("counter", "3"),
              "device": token("device", "lobby-manager")}
    requests.post(f"{live.url('counter')}{API}/counters/vip/call-next",
                  headers={"Authorization": f"Bearer {tokens['vip']}"}, timeout=5)
    settle()
    return tokens


CASES = [
    # (id, service, method, path, token, json/raw body, expected status, expected code)
    ("unknown branch", "kiosk", "post", "/api/v1/branches/nowhere/tickets", None, {"category": "vip"}, 404,
     "unknown_branch"),
    ("unknown category", "kiosk", "post", f"{API}/tickets", None, {"category": "gold"}, 422, "unknown_category"),
    ("category wrong type", "kiosk", "post", f"{API}/tickets", None, {"category": 7}, 422, "invalid_request"),
    ("unknown field", "kiosk", "post", f"{API}/tickets", None, {"category": "vip", "vip": True}, 422,
     "invalid_request"),
    ("malformed json", "kiosk", "post", f"{API}/tickets", None, b'{"category": "vip"', 400, "malformed_json"),
    ("not json", "kiosk", "post", f"{API}/tickets", None, b"category=vip", 415, "unsupported_media_type"),
    ("bad ticket number", "kiosk", "get", f"{API}/tickets/V0..1", None, None, 422, "invalid_request"),
    ("unknown ticket", "kiosk", "get", f"{API}/tickets/V999", None, None, 404, "unknown_ticket"),
    ("unknown counter", "counter", "post", f"{API}/counters/9/call-next", "vip", None, 404, "unknown_counter"),
    ("unknown reason", "counter", "post", f"{API}/counters/vip/pause", "vip",
     {"reason": "lunch", "expected_minutes": 15}, 422, "unknown_reason"),
    ("zero minutes", "counter", "post", f"{API}/counters/vip/pause", "vip",
     {"reason": "review", "expected_minutes": 0}, 422, "invalid_request"),
    ("241 minutes", "counter", "post", f"{API}/counters/vip/pause", "vip",
     {"reason": "review", "expected_minutes": 241}, 422, "invalid_request"),
    ("minutes as text", "counter", "post", f"{API}/counters/vip/pause", "vip",
     {"reason": "review", "expected_minutes": "15"}, 422, "invalid_request"),
    ("minutes missing", "counter", "post", f"{API}/counters/vip/pause", "vip", {"reason": "review"}, 422,
     "invalid_request"),
    ("note too long", "counter", "post", f"{API}/counters/vip/pause", "vip",
     {"reason": "review", "expected_minutes": 5, "note": "x" * 501}, 422, "invalid_request"),
    ("pause malformed json", "counter", "post", f"{API}/counters/vip/pause", "vip", b"{reason: review}", 400,
     "malformed_json"),
    ("no token", "counter", "post", f"{API}/counters/vip/pause", None, {"reason": "review", "expected_minutes": 5},
     401, "missing_token"),
    ("garbage token", "counter", "post", f"{API}/counters/vip/pause", "garbage",
     {"reason": "review", "expected_minutes": 5}, 401, "invalid_token"),
    ("another counter's token", "counter", "post", f"{API}/counters/vip/pause", "3",
     {"reason": "review", "expected_minutes": 5}, 403, "wrong_counter"),
    ("device token at a counter", "counter", "post", f"{API}/counters/vip/call-next", "device", None, 403,
     "wrong_token_kind"),
    ("counter token on the pager", "pager", "get", f"{API}/pages", "vip", None, 403, "wrong_token_kind"),
    ("no token on the pager", "pager", "get", f"{API}/pages", None, None, 401, "missing_token"),
    ("unknown page", "pager", "post", f"{API}/pages/p123-abc/ack", "device", None, 404, "unknown_page"),
    ("bad page status", "pager", "get", f"{API}/pages?status=closed", "device", None, 422, "invalid_request"),
    ("empty reply", "pager", "post", f"{API}/pages/p123-abc/reply", "device", {"message": ""}, 422,
     "invalid_request"),
    ("unknown alert kind", "counter", "post", f"{API}/counters/vip/alerts", "vip", {"kind": "fire"}, 422,
     "invalid_request"),
    ("body over 64 KiB", "counter", "post", f"{API}/counters/vip/alerts", "vip",
     {"kind": "help", "note": "x" * 70_000}, 413, "request_entity_too_large"),
    ("invalid utf-8", "kiosk", "post", f"{API}/tickets", None, b'{"category": "\xff\xfevip"}', 400, "malformed_json"),
    ("invalid utf-8 in a note", "counter", "post", f"{API}/counters/vip/alerts", "vip",
     b'{"kind": "help", "note": "\xc3\x28"}', 400, "malformed_json"),
    ("utf-16 with a BOM", "kiosk", "post", f"{API}/tickets", None, '{"category": "vip"}'.encode("utf-16"), 400,
     "malformed_json"),
    ("utf-16 without a BOM", "counter", "post", f"{API}/counters/vip/alerts", "vip",
     '{"kind": "help"}'.encode("utf-16-le"), 400, "malformed_json"),
    ("utf-32", "kiosk", "post", f"{API}/tickets", None, '{"category": "vip"}'.encode("utf-32"), 400,
     "malformed_json"),
    ("utf-8 with a BOM", "kiosk", "post", f"{API}/tickets", None, b'\xef\xbb\xbf{"category": "vip"}', 400,
     "malformed_json"),
    ("json nested 20,000 deep", "counter", "post", f"{API}/counters/vip/alerts", "vip",
     b"[" * 20_000 + b"]" * 20_000, 400, "malformed_json"),
    ("object nested deep in a field", "counter", "post", f"{API}/counters/vip/pause", "vip",
     b'{"reason": ' + b'{"a": ' * 5_000 + b"1" + b"}" * 5_000 + b', "expected_minutes": 5}', 400, "malformed_json"),
    ("huge integer", "counter", "post", f"{API}/counters/vip/pause", "vip",
     b'{"reason": "review", "expected_minutes": ' + b"9" * 4_000 + b"}", 422, "invalid_request"),
    ("number too large for a float", "counter", "post", f"{API}/counters/vip/pause", "vip",
     b'{"reason": "review", "expected_minutes": 1e400}', 422, "invalid_request"),
    ("not a number", "counter", "post", f"{API}/counters/vip/pause", "vip",
     b'{"reason": "review", "expected_minutes": NaN}', 422, "invalid_request"),
    ("slash in a branch id", "kiosk", "get", "/api/v1/branches/zhong%2Fnan/screen", None, None, 404, "not_found"),
    ("dots for a counter id", "counter", "post", f"{API}/counters/..%2Fvip/call-next", "vip", None, 404,
     "not_found"),
    ("dots in a page id", "pager", "get", f"{API}/pages/p1..2", "device", None, 422, "invalid_request"),
    ("dot segment in a ticket", "kiosk", "get", f"{API}/tickets/.%2E", None, None, 422, "invalid_request"),
]


@pytest.mark.parametrize(("service", "method", "path", "who", "body", "status", "code"),
                         [case[1:] for case in CASES], ids=[case[0] for case in CASES])
def test_bad_input_is_refused_and_changes_nothing(live, r, world, service, method, path, who, body, status, code):
    headers = {}
    if who is not None:
        headers["Authorization"] = f"Bearer {world.get(who, who)}"
    kwargs: dict = {"headers": headers, "timeout": 5}
    if isinstance(body, bytes):
        kwargs["data"] = body
        headers["Content-Type"] = "application/json" if code != "unsupported_media_type" else "text/plain"
    elif body is not None:
        kwargs["json"] = body
    before = state(r)
    response = getattr(requests, method)(f"{live.url(service)}{path}", **kwargs)
    assert response.status_code == status, response.text
    assert response.headers["Content-Type"].startswith("application/json")
    error = response.json()["error"]
    assert error["code"] == code and error["message"]
    assert state(r) == before


def test_pausing_twice_is_a_conflict(live, world):
    url = f"{live.url('counter')}{API}/counters/vip/pause"
    headers = {"Authorization": f"Bearer {world['vip']}"}
    assert requests.post(url, headers=headers, json={"reason": "review", "expected_minutes": 5},
                         timeout=5).status_code == 200
    again = requests.post(url, headers=headers, json={"reason": "break", "expected_minutes": 5}, timeout=5)
    assert again.status_code == 409 and again.json()["error"]["code"] == "counter_paused"
    counter = requests.get(f"{live.url('counter')}{API}/counters/vip", headers=headers, timeout=5).json()["counter"]
    assert counter["pause"]["reason"] == "review"
    not_paused = requests.post(f"{live.url('counter')}{API}/counters/3/resume",
                               headers={"Authorization": f"Bearer {world['3']}"}, timeout=5)
    assert not_paused.status_code == 409 and not_paused.json()["error"]["code"] == "not_paused"
