"""The fan-out hub's contract (services/web/hub.py), on a real Redis: every client gets every entry after its
cursor once and in order, whenever it joins; a slow client is cut off and loses nothing; clients of one stream
share one reader. The last is shown on the running stack, over HTTP, through gunicorn's gevent workers."""

from __future__ import annotations

import random
import threading
import time

import pytest
import redis
import requests

from services.domain import keys
from services.runtime import redis as clients
from services.web import hub as hubs
from services.web import serving
from tests.sse import eventually

BRANCH = "hubtest"


@pytest.fixture
def hub(r: redis.Redis):
    kwargs = r.connection_pool.connection_kwargs
    made = hubs.Hub(r, lambda: redis.Redis(host=kwargs["host"], port=kwargs["port"], db=kwargs.get("db", 0),
                                           decode_responses=True, single_connection_client=True, socket_timeout=25),
                    hubs.process_name("test"))
    yield made
    made.close()


def drain(r: redis.Redis, follower: hubs.Follower, until: str, timeout_s: float = 10.0) -> list[str]:
    """Receive a follower's entries until it has the one with id `until`; return their ids in order."""
    got: list[str] = []
    deadline = time.monotonic() + timeout_s
    while not got or got[-1] != until:
        assert time.monotonic() < deadline, f"stuck after {got[-3:]} waiting for {until}"
        assert follower.ended is None, follower.ended
        got += [entry.id for entry in follower.receive(r, 0.2)]
    return got


def test_clients_joining_while_entries_arrive_get_each_entry_after_their_cursor_once(r, hub):
    """Replay, then live: 60 clients join at random cursors while a writer appends, among them clients whose
    stream the hub already reads past their cursor (they replay from Redis while the reader buffers)."""
    key = keys.stream(BRANCH, keys.DEVICE)
    written = [r.xadd(key, {"type": "page", "data": f'{{"n": {n}}}'}) for n in range(50)]
    lock = threading.Lock()
    stop = threading.Event()

    def write() -> None:
        n = 50
        while not stop.is_set():
            entry_id = r.xadd(key, {"type": "page", "data": f'{{"n": {n}}}'})
            with lock:
                written.append(entry_id)
            n += 1
            time.sleep(0.002)

    writer = threading.Thread(target=write)
    writer.start()
    followers = []
    rng = random.Random(7)
    try:
        for _ in range(60):
            with lock:
                cursor = rng.choice(["0-0", *written])
            followers.append((cursor, hub.follow({key: cursor})))
            time.sleep(rng.uniform(0, 0.01))
    finally:
        stop.set()
        writer.join()
    last = written[-1]
    replayed = sum(1 for _, follower in followers if follower.replay)
    assert replayed >= 10, "the hand-over was tried: clients joined behind the hub's position"
    for cursor, follower in followers:
        got = drain(r, follower, last)
        expected = [entry_id for entry_id in written if hubs.seq(entry_id) > hubs.seq(cursor)]
        assert got == expected, f"from {cursor}: {len(got)} entries, expected {len(expected)}"
    assert len({f.streams[0].reader for _, f in followers}) == 1, "one stream, one reader"


def test_an_entry_written_during_the_hand_over_is_sent_once_after_the_replay(r, hub):
    key = keys.stream(BRANCH, keys.SCREEN)
    first = hub.follow({key: "0-0"})
    ids = [r.xadd(key, {"type": "notice", "data": "{}"}) for _ in range(5)]
    assert drain(r, first, ids[-1]) == ids
    late = hub.follow({key: ids[1]})
    assert late.replay == {key: ids[-1]}, "the late client replays up to what the hub has read"
    # Written before the late client replays: the reader buffers it for the client meanwhile.
    during = r.xadd(key, {"type": "notice", "data": "{}"})
    eventually(lambda: len(late.buffer) == 1)
    after = r.xadd(key, {"type": "notice", "data": "{}"})
    assert drain(r, late, after) == [*ids[2:], during, after]


def test_a_slow_client_is_cut_off_without_holding_up_the_others_and_resumes_losing_nothing(r, hub, monkeypatch):
    monkeypatch.setattr(hubs, "BUFFER", 50)
    key = keys.stream(BRANCH, keys.terminal("1"))
    start = r.xadd(key, {"type": "reply", "data": "{}"})
    slow, fast = hub.follow({key: start}), hub.follow({key: start})
    ids = []
    for _ in range(80):
        ids.append(r.xadd(key, {"type": "reply", "data": "{}"}))
        # The fast client keeps up; the slow one reads nothing.
        fast.receive(r, 0)
    fast_got = [e for e in ids if hubs.seq(e) <= hubs.seq(fast.positions[key])]
    fast_got += drain(r, fast, ids[-1]) if fast.positions[key] != ids[-1] else []
    assert fast_got == ids
    eventually(lambda: slow.ended == hubs.OVERFLOW)
    assert slow not in hub.followers and not slow.buffer, "cut off, its buffer freed"
    # It reconnects from the last entry it was sent (none here: its cursor) and gets everything.
    again = hub.follow({key: slow.positions[key]})
    assert drain(r, again, ids[-1]) == ids


def test_a_revocation_ends_the_token_s_clients_before_entries_written_after_it(r, hub):
    key = keys.stream(BRANCH, keys.DEVICE)
    token_key = keys.token(BRANCH, "t1")
    r.hset(token_key, "kind", "device")
    start = r.xadd(key, {"type": "page", "data": "{}"})
    mine, other = hub.follow({key: start}, token_key), hub.follow({key: start})
    before = r.xadd(key, {"type": "page", "data": "{}"})
    pipe = r.pipeline()
    pipe.delete(token_key)
    pipe.xadd(keys.REVOCATIONS, {"token_key": token_key})
    pipe.execute()
    after = r.xadd(key, {"type": "page", "data": "{}"})
    assert drain(r, other, after) == [before, after]
    got = []
    eventually(lambda: got.extend(e.id for e in mine.receive(r, 0.1)) or mine.ended == hubs.REVOKED)
    got += [e.id for e in mine.receive(r, 0)]
    assert after not in got and got in ([], [before])


def test_two_hundred_clients_of_one_stream_share_one_reader_per_process(live, r, sse):
    """On the running stack: 200 screens of one branch follow the kiosk's screen stream; the kiosk reads it once
    per worker process, and holds a few Redis connections, not one per client."""
    branch = "zhongnan"
    base = live.url("kiosk")
    url = f"{base}/api/v1/branches/{branch}/screen/events"
    screens = [sse(url) for _ in range(200)]
    assert all(s.status == 200 for s in screens)
    for screen in screens:
        screen.wait_for(lambda e: e.type == "screen")

    def kiosk_processes() -> dict[str, dict[str, int]]:
        return {name: report for name, report in hubs.holding(r).items() if name.startswith("kiosk/")}

    reports = eventually(lambda: (found := kiosk_processes()) and sum(p["clients"] for p in found.values()) == 200
                         and found)
    holding = [p for p in reports.values() if p["clients"]]
    assert 1 <= len(holding) <= serving.workers
    assert all(p["streams"] == 1 and p["readers"] == 1 for p in holding), reports
    by_role = clients.connections(r)
    assert by_role.get("kiosk-web", 0) <= serving.workers * (1 + clients.MAX_CONNECTIONS) < 200, by_role
    # One ticket: the screen's new waiting counts reach every client.
    reply = requests.post(f"{base}/api/v1/branches/{branch}/tickets", json={"category": "personal"}, timeout=10)
    assert reply.status_code == 201, reply.text
    for screen in screens:
        screen.wait_for(lambda e: e.type == "waiting" and e.data["waiting"]["personal"]["count"] == 1)


def test_a_reader_cut_from_redis_ends_its_streams_and_they_resume_from_their_last_id(live, r, token, sse):
    """Redis drops the pager's stream readers (CLIENT KILL) while a device listens: the device's stream ends like a
    finished one, and the device, reconnecting with its last id, gets the page made meanwhile, once."""
    branch = "zhongnan"
    url = f"{live.url('pager')}/api/v1/branches/{branch}/pages/events"
    headers = {"Authorization": f"Bearer {token('device', 'lobby-manager')}"}
    device = sse(url, headers=headers)

    def press(counter: str) -> str:
        reply = requests.post(f"{live.url('counter')}/api/v1/branches/{branch}/counters/{counter}/alerts",
                              json={"kind": "help"}, timeout=5,
                              headers={"Authorization": f"Bearer {token('counter', counter)}"})
        assert reply.status_code == 202, reply.text
        return reply.json()["alert"]["id"]

    def paged(alert_id: str):
        return lambda e: e.type == "page" and alert_id in e.data["page"]["details"]["alert_ids"]

    first = device.wait_for(paged(press("1")))
    readers = [c for c in r.client_list() if c["name"].startswith("lobby/pager-web/") and c["cmd"] == "xread"]
    assert readers, "the pager's processes read the device stream"
    for reader in readers:
        r.client_kill_filter(_id=reader["id"])
    eventually(lambda: device.ended, timeout=5)
    missed = press("2")
    again = sse(url, headers=headers | {"Last-Event-ID": first.id})
    page = again.wait_for(paged(missed))
    assert [e.id for e in again.events] == [page.id], "what came after its last id, once"
