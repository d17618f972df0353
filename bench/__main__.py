"""Run the benchmarks: start Redis and the whole stack as `lobby up` does, drive it, print one table.

Each benchmark drives the stack over HTTP and SSE from separate processes; the table and the whole result (the
machine, the plan, every figure) go to bench/results/latest-{full,quick}.json and a timestamped copy. Every
figure is measured in the same run as its baseline: B0 (Redis alone) ahead of B1 (press to device), and B3's
hello-world endpoint (the kiosk app plus one route, same gunicorn settings) beside ticket issuing, B7's
simulator beside a PING on its own Redis, B8's archive into PostgreSQL beside the same into SQLite. `--quick`
runs every benchmark with small counts in seconds, so CI keeps the harness working; its timings mean nothing.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import redis

from bench import report
from bench.driver import Driver
from bench.estimates import b7
from bench.fanout import b4_b5
from bench.footprint import b6
from bench.latency import b0, b1, b2
from bench.machine import machine
from bench.plan import FULL, QUICK, branches_toml
from bench.plot import svg
from bench.records import b8
from bench.scale import b4_curve, b9
from bench.throughput import b3
from services.ops.redis_server import free_port
from services.ops.stack import SERVICES, Stack

RESULTS_DIR = Path(__file__).resolve().parent / "results"
# The benchmarks in the order they run; B4 and B5 run together (B5's timers fire while B4's traffic flows). B7
# drives no HTTP: it runs simulated days on a Redis of its own.
# B4c and B9 start a stack of their own for each size (the run's stack idles meanwhile).
STEPS: list[tuple[str, Callable[[Driver], Any]]] = [
    ("B0", b0), ("B1", b1), ("B2", b2), ("B3", b3), ("B4+B5", b4_b5), ("B6", b6), ("B7", b7), ("B8", b8),
    ("B4c", lambda d: b4_curve(d.log, d.plan)), ("B9", lambda d: b9(d.log, d.plan)),
]


def run(driver: Driver, only: set[str] | None = None) -> dict[str, Any]:
    """Run every benchmark, or those named in `only` (B4 and B5 run together; B1's ratio needs B0)."""
    results: dict[str, Any] = {}
    driver.warm_up()
    for name, step in STEPS:
        if only is not None and not only & {part.upper() for part in name.split("+")}:
            continue
        driver.log(f"{name}…")
        started, cpu_before = time.monotonic(), driver.cpu()
        outcome = step(driver)
        elapsed = time.monotonic() - started
        # Share of one core each process used during the step (Redis's and ours; the load generators aside).
        used = {k: round((v - cpu_before.get(k, 0.0)) / elapsed, 3) for k, v in driver.cpu().items()}
        for key, result in zip(name.split("+"), outcome if name == "B4+B5" else (outcome,), strict=True):
            # The 1-minute load average as the step ends: others' work on the machine skews every figure.
            results[key] = result | {"loadavg_1m": round(os.getloadavg()[0], 2), "cores_used": used}
        driver.log(f"{name} done in {time.monotonic() - started:.1f} s (load {os.getloadavg()[0]:.1f})")
    if "B1" in results:
        b0p99, b1p99 = results.get("B0", {}).get("p99_ms"), results["B1"]["p99_ms"]
        results["B1"]["ratio_to_b0_p99"] = round(b1p99 / b0p99, 1) if b0p99 and b1p99 else None
    return results


def main(argv: list[str] | None = None) -> int:
    """Run the benchmarks as the command line asks; print the table and write the JSON."""
    parser = argparse.ArgumentParser(prog="python -m bench", description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small counts, a few seconds: checks the harness")
    parser.add_argument("--out", type=Path, default=RESULTS_DIR, help="where the JSON result goes")
    parser.add_argument("--only", type=lambda v: set(v.upper().split(",")), metavar="B1,B3",
                        help="run only these benchmarks (while working on one; the committed run has all)")
    parser.add_argument("--keep", type=Path, help="keep Redis's data and the services' logs in this directory")
    args = parser.parse_args(argv)
    plan = QUICK if args.quick else FULL
    log = lambda text: print(text, file=sys.stderr, flush=True)  # noqa: E731
    started = datetime.now(UTC)
    about = machine()
    with tempfile.TemporaryDirectory(prefix="lobby-bench-") as scratch:
        work = args.keep or Path(scratch)
        work.mkdir(parents=True, exist_ok=True)
        config = work / "branches.toml"
        config.write_text(branches_toml(plan.branches), encoding="utf-8")
        stack = Stack(ports={s: free_port() for s in SERVICES}, config_path=config, var_dir=work / "var",
                      log_dir=work / "logs")
        log(f"starting the stack ({plan.branches} branches)…")
        stack.start(timeout_s=60)
        try:
            about["redis"] = redis.Redis.from_url(stack.redis_url or "").info("server")["redis_version"]
            results = run(Driver(stack, plan, config, log), args.only)
        finally:
            stack.stop()
    about["loadavg_end"] = [round(x, 2) for x in os.getloadavg()]
    found = report.document(args.quick, started, about, plan, results)
    written = report.write(found, args.out, started)
    if "B4c" in results or "B9" in results:
        plot = args.out / f"scale-{found['mode']}.svg"
        plot.write_text(svg(results.get("B4c"), results.get("B9")), encoding="utf-8")
        log(f"scale curves: {plot}")
    print(found["table"])
    print(f"\n{found['mode']} run, {found['seconds']} s; JSON: {written}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
