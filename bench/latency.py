"""B0, B1, B2: how long a Redis write takes to reach a blocked reader, a counter's alert a manager's device, and
a paused counter the lobby display."""

from __future__ import annotations

import time
from typing import Any

from bench import clients
from bench.driver import Driver
from bench.figures import ms, stats_ms
from bench.hello import HELLO_PATH


def b0(d: Driver) -> dict[str, Any]:
    """Raw Redis: XADD from one process to a blocked XREAD in another."""
    stream, queue, ready = "bench:b0", d.ctx.Queue(), d.ctx.Event()
    d.r.delete(stream)
    reader = d.spawn(clients.run_redis_reader, d.redis_url, stream, d.plan.b0_writes, ready, queue)
    ready.wait(30)
    time.sleep(0.3)
    writer = d.spawn(clients.run_redis_writer, d.redis_url, stream, d.plan.b0_writes, 0.002, queue)
    got = dict([queue.get(timeout=300), queue.get(timeout=300)])
    reader.join(10)
    writer.join(10)
    d.r.delete(stream)
    return stats_ms(got["reader"]) | {"writes": d.plan.b0_writes}


def b1(d: Driver) -> dict[str, Any]:
    """Press to device: distress alerts over the branches' counters, timed to the device's SSE event."""
    pairs = [(b.id, c.id) for c in d.branches[0].counters for b in d.branches]
    stop, queue, running = d.listen([d.device_url(b.id) for b in d.branches], "pages")
    sent: dict[str, int] = {}
    answered: dict[str, int] = {}
    statuses: dict[int, int] = {}
    left, rounds = d.plan.b1_presses, 0
    while left > 0:
        batch = pairs[: min(left, len(pairs))]
        answer = d.press(d.url("counter"), [d.alert(b, c) for b, c in batch], d.plan.b1_rate)
        for t0, t1, status, body in answer["sent"]:
            statuses[status] = statuses.get(status, 0) + 1
            if status == 202:
                sent[body["alert"]["id"]] = t0
                answered[body["alert"]["id"]] = t1
        left -= len(batch)
        rounds += 1
        d.settle()
        time.sleep(0.5)
        d.resolve_open_pages(d.branches)  # the next round's presses make new pages, not folds
    [heard] = d.stop_listening(stop, queue, running)
    # The HTTP floor: the same number of POSTs, same rate and body, to a route that does nothing, served as
    # the services are. What B1 adds to it is the alert, the pager's hop and the device's stream.
    with d.hello_server() as hello:
        floor = d.press(hello, [{"path": HELLO_PATH, "body": {"kind": "distress"}}] * len(sent), d.plan.b1_rate)
    arrivals = heard["arrivals"]
    latencies = [arrivals[a][0] - t0 for a, t0 in sent.items() if a in arrivals]
    kinds: dict[str, int] = {}
    for alert_id in sent:
        if alert_id in arrivals:
            kinds[arrivals[alert_id][1]] = kinds.get(arrivals[alert_id][1], 0) + 1
    first = min(sent.values(), default=0)
    slowest = sorted(((arrivals[a][0] - t0, a) for a, t0 in sent.items() if a in arrivals), reverse=True)[:5]
    return stats_ms(latencies) | {
        # The slowest presses: when they left (s into B1), the POST's answer time, the time to the device.
        "slowest": [{"at_s": round((sent[a] - first) / 1e9, 2), "post_ms": ms(answered[a] - sent[a]),
                     "device_ms": ms(total), "stream_to_device_ms": round(arrivals[a][2], 1)}
                    for total, a in slowest],
        # The POST's own answer time, and the last leg alone: stream entry (XADD) to the device.
        "post": stats_ms([answered[a] - sent[a] for a in sent]),
        "http_floor": stats_ms([t1 - t0 for t0, t1, status, _ in floor["sent"] if status == 200]),
        "stream_to_device": stats_ms([int(arrivals[a][2] * 1e6) for a in sent if a in arrivals]),
        "presses": d.plan.b1_presses, "accepted": len(sent), "statuses": statuses,
        "missing": len([a for a in sent if a not in arrivals]), "arrived_as": kinds, "rounds": rounds,
        "branches": len(d.branches), "listeners_dropped": len(heard["dropped"]),
    }


def b2(d: Driver) -> dict[str, Any]:
    """Pause to screen: pause each branch's VIP counter, timed to the redirect notice on its display."""
    stop, queue, running = d.listen([d.screen_url(b.id) for b in d.branches], "notices")
    samples: list[tuple[int, int]] = []
    failures = 0
    for _ in range(d.plan.b2_rounds):
        pauses = [{"path": f"/api/v1/branches/{b.id}/counters/vip/pause", "token": d.counter_tokens[b.id, "vip"],
                   "body": {"reason": "vault_transfer", "expected_minutes": 15}} for b in d.branches]
        answer = d.press(d.url("counter"), pauses, d.plan.b1_rate)
        for index, (t0, _, status, _) in enumerate(answer["sent"]):
            if status == 200:
                samples.append((index, t0))
            else:
                failures += 1
        d.settle()
        d.admin(d.url("counter"), [{"path": f"/api/v1/branches/{b.id}/counters/vip/resume",
                                    "token": d.counter_tokens[b.id, "vip"]} for b in d.branches])
        d.settle()
        time.sleep(0.3)
    [heard] = d.stop_listening(stop, queue, running)
    latencies, missing = [], 0
    for index, t0 in samples:
        seen = [t for t, redirect in heard["notices"].get(index, []) if redirect and t > t0]
        if seen:
            latencies.append(min(seen) - t0)
        else:
            missing += 1
    d.resolve_open_pages(d.branches)
    return stats_ms(latencies) | {"pauses": len(samples), "failed": failures, "missing": missing}
