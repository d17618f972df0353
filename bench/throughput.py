"""B3: how many tickets one kiosk service issues a second, beside a hello-world route of the same app served
the same way."""

from __future__ import annotations

from typing import Any

from bench.driver import Driver
from bench.figures import stats_ms
from bench.hello import HELLO_PATH

# How many turns each of the two takes in a full run (see below).
B3_SLICES = 5


def b3(d: Driver) -> dict[str, Any]:
    """Ticket issuing against a hello-world route of the same app under the same gunicorn settings."""
    with d.hello_server() as base:
        body = {"category": "personal"}
        ticket_paths = [f"/api/v1/branches/{b.id}/tickets" for b in d.branches]
        targets = {"hello": (base, [HELLO_PATH]), "tickets": (d.url("kiosk"), ticket_paths)}
        runs: dict[str, dict[str, Any]] = {
            name: {"requests": 0, "elapsed_s": 0.0, "latencies_ns": [], "statuses": {}, "errors": []}
            for name in targets}
        if d.plan.b3_seconds >= 5:
            for target, paths in targets.values():
                d.load(target, paths, body, 1.0, None)  # warm up
        # Turn about, in slices, so that a change in the machine's load falls on both alike.
        slices = B3_SLICES if d.plan.b3_seconds >= 5 else 1
        for _ in range(slices):
            for name, (target, paths) in targets.items():
                part = d.load(target, paths, body, d.plan.b3_seconds / slices, None)
                run = runs[name]
                run["requests"] += part["requests"]
                run["elapsed_s"] += part["elapsed_s"]
                run["latencies_ns"] += part["latencies_ns"]
                run["errors"] += part["errors"]
                for status, count in part["statuses"].items():
                    run["statuses"][status] = run["statuses"].get(status, 0) + count
    summary = {name: {"rps": round(run["requests"] / run["elapsed_s"], 1), **stats_ms(run["latencies_ns"]),
                      "statuses": run["statuses"], "errors": run["errors"]} for name, run in runs.items()}
    ratio = summary["tickets"]["rps"] / summary["hello"]["rps"] if summary["hello"]["rps"] else None
    return {**summary, "clients": d.plan.b3_clients, "seconds": d.plan.b3_seconds, "slices": slices,
            "ratio": round(ratio, 3) if ratio is not None else None}
