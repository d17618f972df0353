"""Security: no one let in, no alarm a stranger can raise or read, no cross-site state change, limits that hold."""

from __future__ import annotations

import re

import pytest
import redis
import requests

from services.web import auth
from tests.conftest import BLEND, BRANCH, QUICK, settle, state
from tests.sse import eventually

API = f"/api/v1/branches/{BRANCH}"


def _dump_all(r) -> bytes:
    """Every key and value of the test Redis, serialized, for searching secrets in."""
    kw = r.connection_pool.connection_kwargs
    raw = redis.Redis(host=kw["host"], port=kw["port"], db=kw.get("db", 0))
    return b"\n".join(key + b"=" + (raw.dump(key) or b"") for key in raw.scan_iter("*", count=1000))


# Routes that need a token, with every path parameter filled in: counter routes need the counter's token,
# pager routes a manager's device token.
def _protected_routes(apps) -> list[tuple[str, str, str]]:
    values = {"branch": BRANCH, "counter": "vip", "alert_id": "a1-x", "page_id": "p1-x"}
    routes = []
    for service in ("counter", "pager"):
        for rule in apps[service].url_map.iter_rules():
            if not rule.rule.startswith("/api/"):
                continue
            path = re.sub(r"<(?:\w+:)?(\w+)>", lambda m: values[m.group(1)], rule.rule)
            for method in sorted(rule.methods - {"HEAD", "OPTIONS"}):
                routes.append((service, method, path))
    return routes


def test_every_protected_route_refuses_the_wrong_caller(apps, token, r):
    routes = _protected_routes(apps)
    assert len(routes) >= 17, "every counter and pager route is covered"
    right = {"counter": token("counter", "vip"), "pager": token("device", "lobby-manager")}
    wrong_kind = {"counter": right["pager"], "pager": right["counter"]}
    other_branch = {"counter": token("counter", "vip", QUICK), "pager": token("device", "lobby-manager", QUICK)}
    other_counter = token("counter", "3")
    revoked = token("counter", "vip")
    auth.revoke(r, BRANCH, revoked)
    forged = ".".join([*right["counter"].split(".")[:3], "not-the-secret"])
    callers = [
        ("no token", None, 401),
        ("garbage", "garbage", 401),
        ("forged secret", forged, 401),
        ("revoked", revoked, 401),
    ]
    for service, method, path in routes:
        # A client of its own for every request: no cookie from one (the report's reading session) helps another.
        client = apps[service].test_client
        cases = [*callers, ("wrong kind", wrong_kind[service], 403), ("other branch", other_branch[service], 403)]
        if service == "counter":
            cases.append(("other counter", other_counter, 403))
        for name, tok, status in cases:
            headers = {"Authorization": f"Bearer {tok}"} if tok else {}
            response = client().open(path, method=method, headers=headers, json={} if method == "POST" else None)
            assert response.status_code == status, (name, method, path, response.json)
            assert response.json["error"]["code"]
        # The right token gets past the door (whatever the route then says of an empty body).
        response = client().open(path, method=method, headers={"Authorization": f"Bearer {right[service]}"},
                               json={} if method == "POST" else None, buffered=not path.endswith("/events"))
        assert response.status_code not in (401, 403), (method, path, response.status_code)
        response.close()


def test_tokens_are_kept_only_as_hashes(r, token):
    tokens = [token("counter", "vip"), token("device", "lobby-manager")]
    everything = _dump_all(r)
    for tok in tokens:
        secret = tok.rsplit(".", 1)[1]
        assert secret.encode() not in everything and tok.encode() not in everything


def test_ticket_issuing_is_rate_limited_per_client_and_branch(clients, r):
    kiosk = clients["kiosk"]
    url = f"/api/v1/branches/{BLEND}/tickets"
    for _ in range(5):  # bad requests do not use up the allowance
        assert kiosk.post(url, json={"category": "gold"}).status_code == 422
    for i in range(30):  # the blend branch keeps the default: 30 a minute per client
        assert kiosk.post(url, json={"category": "personal"}).status_code == 201, i
    refused = kiosk.post(url, json={"category": "personal"})
    assert refused.status_code == 429 and refused.json["error"]["code"] == "rate_limited"
    assert int(refused.headers["Retry-After"]) > 0
    assert r.zcard(next(r.scan_iter(f"lobby:{{{BLEND}}}:line:*:personal"))) == 30, "the refused one made nothing"
    assert kiosk.post(f"/api/v1/branches/{BRANCH}/tickets", json={"category": "vip"}).status_code == 201, \
        "another branch keeps its own allowance"


@pytest.mark.parametrize("proxies", [0, 1])
def test_behind_a_trusted_proxy_each_client_has_its_own_allowance_and_nobody_else_can_claim_one(r, ctx, proxies):
    """Behind nginx (LOBBY_TRUSTED_PROXIES=1) every kiosk reaches the service from nginx's one address: the
    client's own is the last X-Forwarded-For entry. Without a trusted proxy, a client's X-Forwarded-For is
    ignored, so it cannot dodge its limit by naming other addresses."""
    from dataclasses import replace

    from services.kiosk.app import create_app

    settings = ctx.settings.model_copy(update={"trusted_proxies": proxies})
    kiosk = create_app({"TESTING": True, "CONTEXT": replace(ctx, settings=settings)}).test_client()
    url = f"/api/v1/branches/{BLEND}/tickets"

    def take(forwarded: str) -> int:
        return kiosk.post(url, json={"category": "personal"}, headers={"X-Forwarded-For": forwarded},
                          environ_base={"REMOTE_ADDR": "10.0.0.2"}).status_code

    assert [take(f"198.51.100.{i % 2}, 203.0.113.7") for i in range(30)] == [201] * 30
    assert take("203.0.113.7") == 429, "the client nginx named has used its 30"
    assert take("203.0.113.8") == (201 if proxies else 429), "another client, or the same one lying"


def test_alert_buttons_are_limited_but_a_distress_call_never_is(clients, token, r):
    counter = clients["counter"]
    headers = {"Authorization": f"Bearer {token('counter', '2', BLEND)}"}
    url = f"/api/v1/branches/{BLEND}/counters/2/alerts"
    for i in range(30):
        assert counter.post(url, headers=headers, json={"kind": "help"}).status_code == 202, i
    for kind in ("help", "ask_supervisor"):
        refused = counter.post(url, headers=headers, json={"kind": kind, "note": "?"})
        assert refused.status_code == 429 and "Retry-After" in refused.headers
    distress = [counter.post(url, headers=headers, json={"kind": "distress"}) for _ in range(10)]
    assert [d.status_code for d in distress] == [202] * 10
    assert len({d.json["alert"]["id"] for d in distress}) == 10, "every distress press is recorded"
    other = {"Authorization": f"Bearer {token('counter', '3', BLEND)}"}
    assert counter.post(f"/api/v1/branches/{BLEND}/counters/3/alerts", headers=other,
                        json={"kind": "help"}).status_code == 202, "another terminal is not held back"


@pytest.mark.parametrize("attack", ["form", "text", "foreign origin", "opaque origin", "cross-site fetch"])
def test_no_state_change_from_another_site(clients, token, r, attack):
    vip = {"Authorization": f"Bearer {token('counter', 'vip')}"}
    targets = [("kiosk", f"{API}/tickets", {}, {"category": "vip"}),
               ("counter", f"{API}/counters/vip/pause", vip, {"reason": "review", "expected_minutes": 5}),
               ("counter", f"{API}/counters/vip/alerts", vip, {"kind": "help"})]
    before = state(r)
    for service, path, headers, body in targets:
        client = clients[service]
        if attack == "form":
            response = client.post(path, headers=headers, data=body)
        elif attack == "text":
            response = client.post(path, headers={**headers, "Content-Type": "text/plain"}, data=str(body))
        else:
            extra = {"foreign origin": {"Origin": "https://evil.example"}, "opaque origin": {"Origin": "null"},
                     "cross-site fetch": {"Sec-Fetch-Site": "cross-site"}}[attack]
            response = client.post(path, headers={**headers, **extra}, json=body)
        assert response.status_code in (403, 415), (attack, path, response.status_code)
        assert response.json["error"]["code"] in ("cross_site", "unsupported_media_type")
    assert state(r) == before
    same_site = clients["kiosk"].post(f"{API}/tickets", json={"category": "vip"},
                                      headers={"Origin": "http://localhost", "Sec-Fetch-Site": "same-origin"})
    assert same_site.status_code == 201, "our own pages still work"


def test_public_views_carry_no_calls_tokens_or_internal_ids(live, token, sse, r):
    screen_url = f"{live.url('kiosk')}{API}/screen"
    display = sse(f"{screen_url}/events")
    marker = "SECRET-MARKER-7f3a"
    counter_token = token("counter", "2")
    device_token = token("device", "lobby-manager")
    kiosk = f"{live.url('kiosk')}{API}/tickets"
    number = requests.post(kiosk, json={"category": "personal"}, timeout=5).json()["ticket"]["number"]
    headers = {"Authorization": f"Bearer {counter_token}"}
    alert_ids = []
    for kind in ("distress", "help", "ask_supervisor"):
        response = requests.post(f"{live.url('counter')}{API}/counters/2/alerts", headers=headers,
                                 json={"kind": kind, "note": f"{marker} {kind}"}, timeout=5)
        alert_ids.append(response.json()["alert"]["id"])
    requests.post(f"{live.url('counter')}{API}/counters/2/call-next", headers=headers, timeout=5)
    settle()
    device = {"Authorization": f"Bearer {device_token}"}
    pages = eventually(lambda: requests.get(f"{live.url('pager')}{API}/pages", headers=device,
                                            timeout=5).json()["pages"])
    page_ids = [p["id"] for p in pages]
    display.wait_for(lambda e: e.type == "ticket_called")
    public = "\n".join([
        requests.get(screen_url, timeout=5).text,
        requests.get(f"{kiosk}/{number}", timeout=5).text,
        "\n".join(repr(e) for e in display.events),
        repr(r.xrange(f"lobby:{{{BRANCH}}}:stream:screen")),
    ])
    for secret in [marker, "distress", "ask_supervisor", "help", counter_token, device_token,
                   counter_token.split(".")[2], *alert_ids, *page_ids]:
        assert secret not in public, secret


def test_every_page_sends_a_content_security_policy_and_refuses_frames(apps, clients):
    values = {"branch": BRANCH, "counter": "vip", "number": "V001", "filename": "lobby.css"}
    pages = 0
    for service, app in apps.items():
        for rule in app.url_map.iter_rules():
            if not rule.rule.startswith("/branches/"):
                continue
            path = re.sub(r"<(?:\w+:)?(\w+)>", lambda m: values[m.group(1)], rule.rule)
            for target in (path, path.replace(BRANCH, "nowhere")):  # the page, and its error page
                response = clients[service].get(target)
                policy = response.headers.get("Content-Security-Policy", "")
                assert "frame-ancestors 'none'" in policy and "script-src 'self'" in policy, (target, policy)
                assert "unsafe-inline" not in policy and "unsafe-eval" not in policy
                assert response.headers.get("X-Frame-Options") == "DENY", target
                assert response.headers.get("Referrer-Policy") == "no-referrer", "a token in the URL stays here"
                pages += 1
    assert pages >= 14, "kiosk, screen, ticket, QR code, terminal, terminal waiting, device, and their errors"
