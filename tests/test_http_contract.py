"""API.md at the edges: errors stay JSON and streams keep their word, whatever the client or Redis does.

Redis refusing writes, requests gunicorn refuses itself, chunked and non-UTF-8 bodies, stream cursors that are
not Redis stream ids, a reconnect from beyond what a stream keeps, and a token revoked while its stream is open.
"""

from __future__ import annotations

import json
import logging
import shutil
import socket
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import redis
import requests

from services.domain import feeds, keys
from services.ops.redis_server import RedisServer, free_port
from services.runtime.settings import Context
from services.web import auth
from services.web import sse as sse_module
from tests.conftest import BRANCH, settle, state
from tests.sse import eventually, stream_seq

API = f"/api/v1/branches/{BRANCH}"
SERVICES = ("kiosk", "counter", "pager")


# ------------------------------------------------------------------------------------ Redis refusing writes


def _out_of_memory(r: redis.Redis, directory: Path) -> Callable[[], None]:
    r.config_set("maxmemory-policy", "noeviction")
    r.config_set("maxmemory", "1")
    return lambda: r.config_set("maxmemory", "0")


def _read_only(r: redis.Redis, directory: Path) -> Callable[[], None]:
    r.replicaof("127.0.0.1", free_port())  # a master that is not there: Redis keeps its data and serves reads
    return lambda: r.replicaof("no", "one")


def _failed_snapshot(r: redis.Redis, directory: Path) -> Callable[[], None]:
    r.config_set("save", "3600 1")  # Redis stops writes after a failed snapshot only when it is set to save
    shutil.rmtree(directory)  # its working directory: the snapshot cannot be written
    r.bgsave()
    eventually(lambda: r.info("persistence")["rdb_last_bgsave_status"] == "err")
    return lambda: r.config_set("save", "")


REFUSALS = {"out of memory": _out_of_memory, "read-only replica": _read_only, "failed snapshot": _failed_snapshot}


@pytest.fixture
def own_apps(redis_server, tmp_path, monkeypatch) -> Iterator[tuple[redis.Redis, Path, dict]]:
    """The three apps, in process, on a Redis of the test's own (in tmp_path/redis)."""
    from services.counter.app import create_app as counter_app
    from services.kiosk.app import create_app as kiosk_app
    from services.pager.app import create_app as pager_app

    directory = tmp_path / "redis"
    server = RedisServer(directory, appendonly=False).start()
    monkeypatch.setenv("REDIS_URL", server.url)
    client = redis.Redis.from_url(server.url, decode_responses=True)
    apps = {"kiosk": kiosk_app({"TESTING": True}), "counter": counter_app({"TESTING": True}),
            "pager": pager_app({"TESTING": True})}
    yield client, directory, {name: app.test_client() for name, app in apps.items()}
    client.close()
    server.stop()


@pytest.mark.parametrize("refusal", REFUSALS)
def test_redis_refusing_writes_is_503_everywhere_and_readyz_says_so(own_apps, refusal):
    from services.domain.contracts import PAGE_REQUESTS
    from services.pager import intake
    from services.runtime import consumer

    r, directory, clients = own_apps
    vip = {"Authorization": f"Bearer {auth.issue(r, BRANCH, auth.COUNTER, 'vip')}"}
    device = {"Authorization": f"Bearer {auth.issue(r, BRANCH, auth.DEVICE, 'lobby-manager')}"}
    assert clients["kiosk"].post(f"{API}/tickets", json={"category": "vip"}).status_code == 201
    assert clients["counter"].post(f"{API}/counters/vip/alerts", headers=vip, json={"kind": "help"}).status_code == 202
    consumer.drain(r, PAGE_REQUESTS, "tests", intake.handler({BRANCH: Context.from_env().branches[BRANCH]}))
    page = clients["pager"].get(f"{API}/pages", headers=device).json["pages"][0]

    undo = REFUSALS[refusal](r, directory)
    before = state(r)
    writes = [
        clients["kiosk"].post(f"{API}/tickets", json={"category": "vip"}),
        clients["counter"].post(f"{API}/counters/vip/pause", headers=vip,
                                json={"reason": "review", "expected_minutes": 5}),
        clients["pager"].post(f"{API}/pages/{page['id']}/ack", headers=device),
    ]
    for response in writes:
        assert response.status_code == 503, response.json
        assert response.json["error"]["code"] == "unavailable" and response.json["error"]["message"]
        assert int(response.headers["Retry-After"]) > 0
    for name, client in clients.items():
        ready = client.get("/readyz")
        assert ready.status_code == 503 and ready.json["redis"] == "refusing_writes", name
    assert clients["kiosk"].get(f"{API}/screen").status_code == 200, "reads still work"
    assert state(r) == before

    undo()
    for name, client in clients.items():
        assert client.get("/readyz").status_code == 200, name
    assert clients["kiosk"].post(f"{API}/tickets", json={"category": "vip"}).status_code == 201


# ------------------------------------------------------------------------ what gunicorn refuses by itself


def _raw_http(base_url: str, request: bytes) -> tuple[int, dict[str, str], bytes]:
    """Send bytes as they are and return the answer's status, headers (lower-case names) and body."""
    parts = urlsplit(base_url)
    with socket.create_connection((parts.hostname, parts.port), timeout=5) as sock:
        sock.sendall(request)
        received = b""
        while chunk := sock.recv(65536):
            received += chunk
    head, _, body = received.partition(b"\r\n\r\n")
    status_line, *lines = head.decode("latin-1").split("\r\n")
    headers = {name.strip().lower(): value.strip() for name, _, value in (line.partition(":") for line in lines)}
    return int(status_line.split()[1]), headers, body


GUNICORN_REFUSALS = [
    ("request line too long", b"GET " + API.encode() + b"/screen?x=" + b"a" * 5000 + b" HTTP/1.1\r\nHost: x\r\n\r\n",
     414, "uri_too_long"),
    ("header too large", b"GET " + API.encode() + b"/screen HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 9000
     + b"\r\n\r\n", 431, "headers_too_large"),
    ("too many headers", b"GET " + API.encode() + b"/screen HTTP/1.1\r\nHost: x\r\n"
     + b"".join(b"X-H%d: 1\r\n" % i for i in range(120)) + b"\r\n", 431, "headers_too_large"),
    ("not HTTP", b"HELLO THERE\r\n\r\n", 400, "bad_request"),
    ("bad header name", b"GET " + API.encode() + b"/screen HTTP/1.1\r\nHost: x\r\nBad Name: 1\r\n\r\n", 400,
     "bad_request"),
]


@pytest.mark.parametrize(("request_bytes", "status", "code"), [case[1:] for case in GUNICORN_REFUSALS],
                         ids=[case[0] for case in GUNICORN_REFUSALS])
def test_what_gunicorn_refuses_itself_is_a_json_error(live, request_bytes, status, code):
    for service in SERVICES:
        got, headers, body = _raw_http(live.url(service), request_bytes)
        assert got == status, (service, body[:200])
        assert headers["content-type"].startswith("application/json"), (service, body[:200])
        assert json.loads(body)["error"]["code"] == code


# --------------------------------------------------------------------------------------- request bodies


def quiet_state(r: redis.Redis) -> dict[bytes, bytes]:
    """Return state(r) once the stack's workers are idle and have made their page-request stream again."""
    settle()
    eventually(lambda: r.exists(keys.page_requests()))
    return state(r)


def test_a_chunked_body_over_64_kib_is_refused_and_changes_nothing(live, r, token):
    url = f"{live.url('counter')}{API}/counters/vip/alerts"
    headers = {"Authorization": f"Bearer {token('counter', 'vip')}", "Content-Type": "application/json"}
    # Valid JSON whatever length of it is read: only the limit can refuse it.
    body = b'{"kind": "help"}' + b" " * 70_000

    def chunks() -> Iterator[bytes]:
        for start in range(0, len(body), 8192):
            yield body[start:start + 8192]

    before = quiet_state(r)
    response = requests.post(url, data=chunks(), headers=headers, timeout=10)
    assert response.request.headers["Transfer-Encoding"] == "chunked"
    assert response.status_code == 413, response.text
    assert response.json()["error"]["code"] == "request_entity_too_large"
    settle()
    assert state(r) == before

    within = requests.post(url, data=iter([b'{"kind": ', b'"help"}']), headers=headers, timeout=10)
    assert within.status_code == 202, "a chunked body within the limit is read whole"


@pytest.mark.parametrize("content_type", ["application/json; charset=latin-1", "application/json; charset=utf-16"])
def test_a_charset_other_than_utf_8_is_refused(live, r, content_type):
    url = f"{live.url('kiosk')}{API}/tickets"
    before = quiet_state(r)
    response = requests.post(url, data=b'{"category": "vip"}', headers={"Content-Type": content_type}, timeout=5)
    assert response.status_code == 415 and response.json()["error"]["code"] == "unsupported_media_type"
    assert state(r) == before
    utf8 = requests.post(url, data=b'{"category": "vip"}',
                         headers={"Content-Type": "application/json; charset=UTF-8"}, timeout=5)
    assert utf8.status_code == 201


# --------------------------------------------------------------------------------------- stream cursors


@pytest.mark.parametrize("cursor", ["99999999999999999999-0", "18446744073709551616-0", "0-18446744073709551616",
                                    "1-0\n", "١-0", "1", "-1-0"])
def test_a_cursor_that_is_not_a_redis_stream_id_is_refused(live, token, cursor):
    url = f"{live.url('pager')}{API}/pages/events"
    device = {"Authorization": f"Bearer {token('device', 'lobby-manager')}"}
    response = requests.get(url, headers=device, params={"since": cursor}, timeout=5)
    assert response.status_code == 400 and response.json()["error"]["code"] == "bad_event_id"


def test_a_cursor_beyond_the_newest_entry_is_reset_and_never_stalls_the_stream_for_others(live, token, sse):
    """The largest stream id is a valid cursor, but no entry the stream ever had: the client is told to reload
    and followed from the newest entry. Its cursor never becomes where the process reads the stream from, so the
    clients who join after it, in the same process or not, get what comes next."""
    url = f"{live.url('pager')}{API}/pages/events"
    device = {"Authorization": f"Bearer {token('device', 'lobby-manager')}"}
    ahead = [sse(url, headers=device, params={"since": f"{2**64 - 1}-{2**64 - 1}"}) for _ in range(4)]
    others = [sse(url, headers={"Authorization": f"Bearer {token('device', 'deputy')}"}) for _ in range(4)]
    for stream in ahead:
        assert stream.status == 200
        reset = stream.wait_for(lambda e: e.type == "reset")
        assert reset.data["reason"] == "ahead"
    alert = requests.post(f"{live.url('counter')}{API}/counters/vip/alerts", json={"kind": "help"},
                          headers={"Authorization": f"Bearer {token('counter', 'vip')}"}, timeout=5)
    assert alert.status_code == 202
    for stream in ahead + others:
        stream.wait_for(lambda e: e.type == "page")


def test_a_stream_that_fails_midway_is_logged_and_ends_cleanly(clients, r, caplog):
    response = clients["kiosk"].get(f"{API}/screen/events", buffered=False)
    chunks = iter(response.response)
    assert next(chunks).startswith(b"retry:")
    assert b"event: screen" in next(chunks)
    key = keys.stream(BRANCH, keys.SCREEN)
    r.delete(key)
    r.set(key, "not a stream")  # the next XREAD fails with WRONGTYPE
    with caplog.at_level(logging.WARNING, logger="lobby.streams"):
        rest = list(chunks)  # ends, instead of raising into the server
    response.close()
    assert rest == []
    assert any(key in record.getMessage() for record in caplog.records), caplog.text


# ----------------------------------------------------------------------------- replay beyond retention


def _fill(r: redis.Redis, key: str, count: int) -> list[str]:
    """Append count events to a stream capped at 100 entries; return every id, trimmed ones included."""
    ids = [r.xadd(key, {"type": "page_updated", "data": feeds.dumps({"n": n})}, maxlen=100, approximate=True)
           for n in range(count)]
    assert stream_seq(r.xrange(key, count=1)[0][0]) > stream_seq(ids[0]), "the first entries were trimmed"
    return ids


def test_a_cursor_older_than_what_the_stream_keeps_gets_reset_then_goes_on(live, r, token, sse):
    key = keys.stream(BRANCH, keys.DEVICE)
    ids = _fill(r, key, 400)
    url = f"{live.url('pager')}{API}/pages/events"
    device = {"Authorization": f"Bearer {token('device', 'lobby-manager')}"}

    stale = sse(url, headers={**device, "Last-Event-ID": ids[0]})
    reset = stale.wait_for(lambda e: e.type == "reset")
    assert stale.events[0] == reset and reset.id == ids[-1], "reset first, its id the newest: the cursor moves on"
    r.xadd(key, {"type": "page_updated", "data": feeds.dumps({"n": "live"})})
    stale.wait_for(lambda e: e.data.get("n") == "live")
    assert [e.type for e in stale.events] == ["reset", "page_updated"], "then live events, no partial replay"

    kept = sse(url, headers={**device, "Last-Event-ID": ids[-51]})
    kept.wait_for(lambda e: e.data.get("n") == "live")
    assert [e.data["n"] for e in kept.events] == [*range(350, 400), "live"], "a kept cursor replays as before"


def test_a_stream_with_a_snapshot_sends_it_after_the_reset(live, r, token, sse):
    key = keys.terminal_stream(BRANCH, "vip")
    ids = _fill(r, key, 400)
    terminal = sse(f"{live.url('counter')}{API}/counters/vip/events",
                   headers={"Authorization": f"Bearer {token('counter', 'vip')}", "Last-Event-ID": ids[5]})
    terminal.wait_for(lambda e: e.type == "counter")
    assert [(e.type, e.id) for e in terminal.events] == [("reset", ids[-1]), ("counter", ids[-1])]


# ----------------------------------------------------------------------------------------- revocation


def test_a_revoked_device_stream_ends_before_the_next_page(live, r, token, sse):
    url = f"{live.url('pager')}{API}/pages/events"
    doomed_token = token("device", "lobby-manager")
    doomed = sse(url, headers={"Authorization": f"Bearer {doomed_token}"})
    witness = sse(url, headers={"Authorization": f"Bearer {token('device', 'deputy')}"})
    time.sleep(0.3)  # both wait in XREAD
    assert auth.revoke(r, BRANCH, doomed_token)
    alert = requests.post(f"{live.url('counter')}{API}/counters/vip/alerts", json={"kind": "help"},
                          headers={"Authorization": f"Bearer {token('counter', 'vip')}"}, timeout=5)
    assert alert.status_code == 202
    witness.wait_for(lambda e: e.type == "page")
    doomed.wait_for(lambda e: e.type == "revoked")
    eventually(lambda: doomed.ended, timeout=5)
    assert [e.type for e in doomed.events] == ["revoked"], "the page written after the revoke never went out"
    again = requests.get(url, headers={"Authorization": f"Bearer {doomed_token}"}, timeout=5)
    assert again.status_code == 401


def test_revoking_ends_an_idle_stream_within_one_keepalive(live, r, token, sse):
    device_token, counter_token = token("device", "lobby-manager"), token("counter", "vip")
    device = sse(f"{live.url('pager')}{API}/pages/events", headers={"Authorization": f"Bearer {device_token}"})
    terminal = sse(f"{live.url('counter')}{API}/counters/vip/events",
                   headers={"Authorization": f"Bearer {counter_token}"})
    terminal.wait_for(lambda e: e.type == "counter")
    time.sleep(0.3)
    auth.revoke(r, BRANCH, device_token)
    auth.revoke(r, BRANCH, counter_token)
    revoked_at = time.monotonic()
    for stream in (device, terminal):
        stream.wait_for(lambda e: e.type == "revoked", timeout=sse_module.KEEPALIVE_S + 3)
        eventually(lambda s=stream: s.ended, timeout=3)
    assert time.monotonic() - revoked_at < sse_module.KEEPALIVE_S + 3
    assert [e.type for e in device.events] == ["revoked"]
    assert [e.type for e in terminal.events] == ["counter", "revoked"]


# ------------------------------------------------------------------------------------------- the document


def test_the_openapi_document_names_reset_and_revoked(live):
    for service in SERVICES:
        doc = requests.get(f"{live.url(service)}/openapi.json", timeout=5).json()
        described = [item["get"]["responses"]["200"]["description"] for path, item in doc["paths"].items()
                     if path.endswith("/events")]
        assert described and all("`reset`" in text for text in described), service
        assert all(("`revoked`" in text) == (service != "kiosk") for text in described), service
