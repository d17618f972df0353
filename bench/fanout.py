"""B4 and B5, which run together: events to many live screens and devices while tickets, calls and presses
flow, and meanwhile how late the pages' repeat and escalation timers fire."""

from __future__ import annotations

import time
from datetime import datetime
from typing import Any

import requests

from bench.driver import Driver
from bench.plan import ESCALATE_BRANCH, ESCALATE_S, REPEAT_S
from services.domain.stats import percentile


def b4_b5(d: Driver) -> tuple[dict[str, Any], dict[str, Any]]:
    """Fan-out to many SSE clients while pages and calls flow; B5's timer pages run meanwhile."""
    timer_pages = d.press(d.url("counter"), [d.alert(b.id, c.id) for b in d.timer_branches for c in b.counters],
                          100)
    b5_started = time.monotonic()
    per_branch = max(2, d.plan.b4_clients // len(d.branches))
    urls = []
    for branch in d.branches:
        urls += [d.device_url(branch.id, n) for n in range(per_branch // 2)]
        urls += [d.screen_url(branch.id) for _ in range(per_branch - per_branch // 2)]
    idle_rss = d.rss()
    connect_start = time.monotonic()
    stop, queue, running = d.listen(urls, "delivery", processes=2)
    connect_s = time.monotonic() - connect_start
    connected_rss = d.rss()
    traffic = flow(d, int(d.plan.b4_rate * d.plan.b4_seconds))
    answer = d.press(d.url("kiosk"), traffic, d.plan.b4_rate, concurrency=16)
    busy_rss = d.rss()
    d.settle()
    time.sleep(1.0)
    heard = d.stop_listening(stop, queue, running)
    delivery: dict[str, list[float]] = {}
    for part in heard:
        for kind, values in part["delivery"].items():
            delivery.setdefault(kind, []).extend(values)
    every = [v for values in delivery.values() for v in values]
    statuses: dict[int, int] = {}
    for _, _, status, _ in answer["sent"]:
        statuses[status] = statuses.get(status, 0) + 1

    def summary(values: list[float]) -> dict[str, Any]:
        return {"n": len(values), "p50_ms": percentile(values, 50), "p99_ms": percentile(values, 99),
                "max_ms": max(values) if values else None}

    b4 = summary(every) | {
        "clients": len(urls), "connected": sum(p["connected"] for p in heard),
        "dropped": sum(len(p["dropped"]) for p in heard), "dropped_detail": [x for p in heard
                                                                             for x in p["dropped"]][:5],
        "connect_s": round(connect_s, 2), "flow_requests": len(traffic), "flow_statuses": statuses,
        "flow_seconds": round(answer["elapsed_s"], 1), "by_type": {k: summary(v) for k, v in delivery.items()},
        "rss_kib": {"idle": idle_rss, "connected": connected_rss, "busy": busy_rss},
    }
    wait = max(0.0, max(5.0, d.plan.b4_seconds) - (time.monotonic() - b5_started))
    time.sleep(wait)
    b5 = timer_lateness(d, timer_pages)
    d.resolve_open_pages(d.branches)
    return b4, b5


def flow(d: Driver, count: int) -> list[dict[str, Any]]:
    """Build B4's traffic: tickets, calls and presses in turn over the branches (kiosk and counter paths)."""
    out: list[dict[str, Any]] = []
    counter = d.url("counter")
    steps = ["ticket", "ticket", "call", "ticket", "call", "press"]
    for i in range(count):
        branch = d.branches[i % len(d.branches)]
        step = steps[(i // len(d.branches)) % len(steps)]
        if step == "ticket":
            out.append({"path": f"/api/v1/branches/{branch.id}/tickets", "body": {"category": "personal"}})
        elif step == "call":
            counter_id = ("1", "2", "3")[i % 3]
            out.append({"base": counter, "path": f"/api/v1/branches/{branch.id}/counters/{counter_id}/call-next",
                        "token": d.counter_tokens[branch.id, counter_id]})
        else:
            counter_id = branch.counters[i % len(branch.counters)].id
            out.append(d.alert(branch.id, counter_id) | {"base": counter})
    return out


def timer_lateness(d: Driver, pressed: dict[str, Any]) -> dict[str, Any]:
    """Read the timer branches' pages and measure each repeat or escalation against its deadline."""
    late_ms: list[float] = []
    fired = {"escalated": 0, "repeated": 0}
    pages = 0
    for branch in d.timer_branches:
        token = d.device_tokens[branch.id][0]
        reply = requests.get(f"{d.url('pager')}/api/v1/branches/{branch.id}/pages", params={"status": "open"},
                             headers={"Authorization": f"Bearer {token}"}, timeout=10)
        reply.raise_for_status()
        interval_s = ESCALATE_S if branch.id == ESCALATE_BRANCH else REPEAT_S
        for page in reply.json()["pages"]:
            pages += 1
            previous = None
            for entry in page["audit"]:
                at = datetime.fromisoformat(entry["at"]).timestamp() * 1000
                if entry["event"] in fired and previous is not None:
                    fired[entry["event"]] += 1
                    late_ms.append(round(at - (previous + interval_s * 1000), 1))
                if entry["event"] in ("created", *fired):
                    previous = at
    d.resolve_open_pages(d.timer_branches)
    return {"timers": len(late_ms), "pages": pages, "fired": fired, "presses": len(pressed["sent"]),
            "min_ms": min(late_ms) if late_ms else None, "p50_ms": percentile(late_ms, 50),
            "p99_ms": percentile(late_ms, 99), "max_ms": max(late_ms) if late_ms else None,
            "early": len([x for x in late_ms if x < -1]),
            "intervals_s": {"escalate": ESCALATE_S, "repeat": REPEAT_S}}
