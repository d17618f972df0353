"""B4's curve and B9: a region on one machine. For each size, a stack of its own with that many branches, every
branch's live clients connected (2 lobby displays, 6 terminals, 3 manager devices: 11 a branch), and a rush
hour flowing through them (tickets, calls, distress alerts, VIP pauses and resumes).

B4c sizes by clients (1,000 to 10,000): delivery to every client, clients dropped, memory, Redis connections, CPU
per delivered event. B9 sizes by branches (1 to 1,000): press to device, pause to display and ticket issue, each
against the same figure at one branch, the cost curve's baseline, measured in the same run.
"""

from __future__ import annotations

import collections
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import redis

from bench.driver import Driver
from bench.figures import stats_ms
from bench.plan import Plan, branches_toml
from services.domain.stats import percentile
from services.ops.redis_server import free_port
from services.ops.stack import SERVICES, Stack
from services.runtime import redis as clients
from services.web import hub

DISPLAYS, TERMINALS, DEVICES = 2, 6, 3
PER_BRANCH = DISPLAYS + TERMINALS + DEVICES
# A rush hour, compressed: each branch sends an action every RUSH_INTERVAL_S, in this order, round and round; at
# least FLOOR_RATE actions a second in all, so that a small region still gives each figure its samples.
RUSH = ("ticket", "ticket", "call", "alert", "ticket", "call", "pause", "ticket", "call", "resume")
RUSH_INTERVAL_S = 10.0
FLOOR_RATE = 20.0
LISTENERS = 2  # load processes holding the clients
# With LOBBY_BENCH_PROFILE=<dir>, py-spy samples every process of the stack during B4c's largest region's rush hour
# and the result keeps each service's hottest functions (where the time goes: BENCHMARKS.md).
PROFILE_DIR = os.environ.get("LOBBY_BENCH_PROFILE")


def b4_curve(log: Callable[[str], None], plan: Plan) -> dict[str, Any]:
    """Run B4c: one region per size in clients; return each size's figures."""
    largest = max(plan.b4_curve)
    return {"sizes": [region(log, plan, max(1, round(n / PER_BRANCH)), profiled=n == largest and bool(PROFILE_DIR))
                      for n in plan.b4_curve]}


def b9(log: Callable[[str], None], plan: Plan) -> dict[str, Any]:
    """Run B9: one region per size in branches; each latency against its value at the smallest size."""
    runs = [region(log, plan, n) for n in plan.b9_branches]
    base = runs[0]
    for run in runs:
        for figure in ("press_to_device", "pause_to_display", "ticket_issue"):
            p99, base_p99 = run[figure]["p99_ms"], base[figure]["p99_ms"]
            run[figure]["ratio_to_smallest"] = round(p99 / base_p99, 2) if p99 and base_p99 else None
    return {"sizes": runs, "baseline_branches": base["branches"]}


def region(log: Callable[[str], None], plan: Plan, branches: int, profiled: bool = False) -> dict[str, Any]:
    """Start a stack of `branches` branches, connect every client, run the rush hour; return what it measured."""
    with tempfile.TemporaryDirectory(prefix="lobby-scale-") as scratch:
        work = Path(scratch)
        config = work / "branches.toml"
        config.write_text(branches_toml(branches, counters=TERMINALS), encoding="utf-8")
        stack = Stack(ports={s: free_port() for s in SERVICES}, config_path=config, var_dir=work / "var",
                      log_dir=work / "logs")
        started = time.monotonic()
        stack.start(timeout_s=120)
        try:
            driver = Driver(stack, replace(plan, branches=branches), config, log)
            log(f"  {branches} branches: stack up in {time.monotonic() - started:.0f} s")
            return _measure(driver, plan, branches, profiled)
        finally:
            stack.stop()


def _measure(d: Driver, plan: Plan, branches: int, profiled: bool) -> dict[str, Any]:
    r = redis.Redis.from_url(d.redis_url, decode_responses=True)
    urls: list[str] = []
    for branch in d.branches:
        urls += [d.screen_url(branch.id)] * DISPLAYS
        urls += [f"{d.url('counter')}/api/v1/branches/{branch.id}/counters/{c.id}/events?token="
                 f"{d.counter_tokens[branch.id, c.id]}" for c in branch.counters[:TERMINALS]]
        urls += [d.device_url(branch.id, n) for n in range(DEVICES)]
    idle_rss, connect_start = d.rss(), time.monotonic()
    stop, queue, running = d.listen(urls, "region", processes=LISTENERS)
    connect_s = time.monotonic() - connect_start
    time.sleep(2 * hub.REPORT_S)
    connected_rss, live = d.rss(), hub.by_service(r)
    connections_connected = clients.connections(r)
    flow = rush(d, plan.b9_seconds)
    rate = rush_rate(branches)
    cpu_before = d.cpu()
    spies = profile(d, plan.b9_seconds) if profiled else []
    answer = d.press(d.url("kiosk"), flow, rate, concurrency=32)
    hottest = read_profiles(spies)
    d.settle()
    time.sleep(1.0)
    cpu_used = sum(d.cpu().values()) - sum(cpu_before.values())
    busy_rss, busy_pss, connections_busy = d.rss(), d.pss(), clients.connections(r)
    heard = d.stop_listening(stop, queue, running)
    r.close()
    delivery = [v for part in heard for values in part["delivery"].values() for v in values]
    delivered = len(delivery)
    arrivals: dict[str, tuple[int, str, float]] = {}
    notices: dict[str, list[tuple[int, bool]]] = {}
    for part in heard:
        for alert_id, arrival in part["arrivals"].items():
            if alert_id not in arrivals or arrival[0] < arrivals[alert_id][0]:
                arrivals[alert_id] = arrival
        for branch_id, seen in part["notices"].items():
            notices.setdefault(branch_id, []).extend(seen)
    press, pause, issue, statuses = [], [], [], {}
    for spec, (t0, t1, status, body) in zip(flow, answer["sent"], strict=True):
        statuses[f"{spec['step']} {status}"] = statuses.get(f"{spec['step']} {status}", 0) + 1
        if spec["step"] == "alert" and status == 202:
            arrival = arrivals.get(body["alert"]["id"])
            press.append(arrival[0] - t0 if arrival else None)
        elif spec["step"] == "pause" and status == 200:
            seen = [t for t, redirect in notices.get(spec["branch"], []) if redirect and t > t0]
            pause.append(min(seen) - t0 if seen else None)
        elif spec["step"] == "ticket" and status == 201:
            issue.append(t1 - t0)
    web_rss = sum(v for k, v in busy_rss.items() if k.endswith("-web"))
    web_idle = sum(v for k, v in idle_rss.items() if k.endswith("-web"))
    total_rss = sum(busy_rss.values())
    return {
        "branches": branches, "clients": len(urls),
        "connected": sum(p["connected"] for p in heard), "dropped": sum(len(p["dropped"]) for p in heard),
        "dropped_detail": [x for p in heard for x in p["dropped"]][:5], "connect_s": round(connect_s, 1),
        "delivery": {"n": delivered, "p50_ms": percentile(delivery, 50), "p99_ms": percentile(delivery, 99),
                     "max_ms": max(delivery) if delivery else None},
        "press_to_device": stats_ms([x for x in press if x is not None]) | {"missing": press.count(None)},
        "pause_to_display": stats_ms([x for x in pause if x is not None]) | {"missing": pause.count(None)},
        "ticket_issue": stats_ms(issue),
        "flow": {"requests": len(flow), "rate_per_s": rate, "seconds": round(answer["elapsed_s"], 1),
                 "statuses": statuses},
        "rss_kib": {"idle": idle_rss, "connected": connected_rss, "busy": busy_rss, "all_busy": total_rss,
                    "pss_busy": busy_pss, "all_pss_busy": sum(busy_pss.values()),
                    "web_busy": web_rss, "web_per_client": round((web_rss - web_idle) / max(1, len(urls)), 1)},
        "live": live,
        "redis_connections": {"connected": connections_connected, "busy": connections_busy,
                              "total_busy": sum(connections_busy.values())},
        "profile": hottest,
        "cpu_s": round(cpu_used, 2),
        "cpu_ms_per_delivered_event": round(cpu_used * 1000 / delivered, 3) if delivered else None,
    }


def rush_rate(branches: int) -> float:
    """Return the rush hour's actions a second over this many branches."""
    return max(FLOOR_RATE, branches / RUSH_INTERVAL_S)


def rush(d: Driver, seconds: float) -> list[dict[str, Any]]:
    """Build the rush hour: every branch's actions in RUSH order, branches interleaved, for `seconds`. Each
    branch starts at its own place in the round, so that every kind of action is in the flow at every size."""
    rate = rush_rate(len(d.branches))
    count = max(len(RUSH), int(rate * seconds))
    counter = d.url("counter")
    out: list[dict[str, Any]] = []
    for i in range(count):
        branch = d.branches[i % len(d.branches)]
        turn = i // len(d.branches) + i % len(d.branches)
        step = RUSH[turn % len(RUSH)]
        vip = {"base": counter, "token": d.counter_tokens[branch.id, "vip"]}
        if step == "ticket":
            spec = {"path": f"/api/v1/branches/{branch.id}/tickets", "body": {"category": "personal"}}
        elif step == "call":
            counter_id = ("1", "2", "3")[turn % 3]
            spec = {"base": counter, "path": f"/api/v1/branches/{branch.id}/counters/{counter_id}/call-next",
                    "token": d.counter_tokens[branch.id, counter_id]}
        elif step == "alert":
            counter_id = branch.counters[turn % len(branch.counters)].id
            spec = d.alert(branch.id, counter_id) | {"base": counter}
        elif step == "pause":
            spec = {"path": f"/api/v1/branches/{branch.id}/counters/vip/pause", **vip,
                    "body": {"reason": "vault_transfer", "expected_minutes": 15}}
        else:
            spec = {"path": f"/api/v1/branches/{branch.id}/counters/vip/resume", **vip}
        out.append(spec | {"step": step, "branch": branch.id})
    return out


def profile(d: Driver, seconds: float) -> list[tuple[str, Path, subprocess.Popen[bytes]]]:
    """Start py-spy on every process of the stack but Redis for `seconds`; return (name, output, process)."""
    from services.ops.stack import descendants

    out = Path(PROFILE_DIR or ".")
    out.mkdir(parents=True, exist_ok=True)
    spy = Path(sys.executable).with_name("py-spy")
    spies = []
    for child in d.stack.children:
        if not child.process:
            continue
        # A web service's worker processes (not its master); a worker process itself and what it forked.
        pids = descendants(child.process.pid) if child.name.endswith("-web") else [
            child.process.pid, *descendants(child.process.pid)]
        for pid in pids:
            target = out / f"{child.name}-{pid}.txt"
            spies.append((child.name, target, subprocess.Popen(
                [str(spy), "record", "--nonblocking", "--format", "raw", "--duration", str(int(seconds)),
                 "--rate", "100", "--pid", str(pid), "--output", str(target)],
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)))
    return spies


def read_profiles(spies: list[tuple[str, Path, subprocess.Popen[bytes]]], top: int = 12) -> dict[str, Any]:
    """Wait for py-spy; return, per service, the share of samples each function was on top of the stack."""
    found: dict[str, collections.Counter[str]] = {}
    for service, target, spy in spies:
        spy.wait(120)
        if not target.exists():
            continue
        tally = found.setdefault(service, collections.Counter())
        for line in target.read_text(encoding="utf-8", errors="replace").splitlines():
            stack, _, count = line.rpartition(" ")
            if stack and count.isdigit():
                frame = stack.rsplit(";", 1)[-1]
                tally[frame.split(" (")[0] + " (" + frame.rsplit("/", 1)[-1] if "(" in frame else frame] += int(count)
    return {service: [(name, round(100 * n / max(1, sum(tally.values())), 1)) for name, n in tally.most_common(top)]
            for service, tally in found.items()}
