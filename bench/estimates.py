"""B7: the wait estimate a ticket shows at issue against the best estimate knowable then, on simulated days
(`services/simulate`: the domain code's Lua scripts on a Redis of B7's own), and how fast the simulator runs.

Two traces, each pooled over seeded days: the textbook M/M/3 queue at 80% load in real units, and the demo's
mixed day (scenarios/busy-day.toml: weights, redirects, pauses, a lunch closing). The best knowable estimate
(`services/simulate/day.py`) is 0 when a counter calling the category is free, else position × the true mean
service ÷ the counters calling it. The simulator's speed is read against a Redis round trip (PING) measured on
the same socket in the same run. B7 needs no HTTP stack and never touches the stack's Redis.
"""

from __future__ import annotations

import statistics
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import redis
from redis.connection import UnixDomainSocketConnection

from bench.driver import Driver
from bench.machine import cpu_s
from services.domain.branch import Branch
from services.domain.stats import percentile
from services.ops.redis_server import RedisServer
from services.simulate import day, outcome
from services.simulate.scenario import Scenario, load

ROOT = Path(__file__).resolve().parent.parent
BUSY_DAY = ROOT / "scenarios" / "busy-day.toml"
# The M/M/3 trace: one line, three counters, exponential services of 4 minutes, 80% load, 9-hour days.
MMC_COUNTERS, MMC_LOAD, MMC_SERVICE_MINUTES, MMC_HOURS = 3, 0.8, 4, 9
MMC_SEED = 1


class CountedConnection(UnixDomainSocketConnection):
    """A Unix-socket connection that counts what it sends: one send is one round trip (a pipeline is one)."""

    sent = 0

    def send_packed_command(self, command: Any, check_health: bool = True) -> None:
        CountedConnection.sent += 1
        super().send_packed_command(command, check_health)


def mmc_branch() -> Branch:
    """One category, three identical counters, no wait limit nor alert, no long-service finding."""
    return Branch.model_validate({
        "id": "mmc", "name": "M/M/3", "name_en": "M/M/3", "wait_limit_minutes": 0, "wait_alert_minutes": 0,
        "categories": [{"id": "all", "prefix": "A", "name": "全部", "name_en": "All",
                        "service_minutes": MMC_SERVICE_MINUTES, "long_service_minutes": 24 * 60}],
        "counters": [{"id": str(i), "window": str(i), "serves": ["all"]} for i in range(1, MMC_COUNTERS + 1)],
        "managers": [{"id": "m", "name": "经理", "name_en": "Manager"}],
        "pause_reasons": [{"id": "other", "name": "其他", "name_en": "Other"}],
    })


def mmc_scenario() -> Scenario:
    """Poisson arrivals at 80% of the three counters' rate (36 an hour), exponential services, 09:00-18:00."""
    per_hour = MMC_LOAD * MMC_COUNTERS * 60 / MMC_SERVICE_MINUTES
    return Scenario.model_validate({
        "opens": "09:00", "closes": f"{9 + MMC_HOURS:02d}:00", "seed": MMC_SEED,
        "arrivals": {"all": {"per_hour": per_hour}},
        "service": {"all": {"distribution": "exponential", "mean_minutes": MMC_SERVICE_MINUTES}},
    })


def pings(r: redis.Redis, count: int) -> list[int]:
    """Time `count` PINGs one after another on this client (ns each): a round trip on this socket."""
    taken = []
    for _ in range(count):
        t0 = time.perf_counter_ns()
        r.ping()
        taken.append(time.perf_counter_ns() - t0)
    return taken


@dataclass
class Days:
    """Seeded days as run: what happened, the seconds, our CPU seconds and Redis's, and the round trips each
    took (the flush before each aside), and the PINGs timed after each (ns)."""

    days: list[day.Day] = field(default_factory=list)
    seconds: list[float] = field(default_factory=list)
    cpu_s: float = 0.0
    redis_cpu_s: float = 0.0
    round_trips: int = 0
    pings_ns: list[int] = field(default_factory=list)


def run_days(r: redis.Redis, redis_pid: int, branch: Branch, scenario: Scenario, count: int, pings_each: int = 0
             ) -> Days:
    """Run `count` days, seeds seed…seed+count−1, each on an emptied Redis; after each, time `pings_each` PINGs
    on the same socket (the baseline, in the same minutes)."""
    ran = Days()
    for n in range(count):
        r.flushdb()
        sent, cpu, redis_cpu = CountedConnection.sent, time.process_time(), cpu_s(redis_pid)
        started = time.perf_counter()
        ran.days.append(day.run(r, branch, scenario.model_copy(update={"seed": scenario.seed + n})))
        ran.seconds.append(time.perf_counter() - started)
        ran.cpu_s += time.process_time() - cpu
        ran.redis_cpu_s += cpu_s(redis_pid) - redis_cpu
        ran.round_trips += CountedConnection.sent - sent
        ran.pings_ns += pings(r, pings_each)
    return ran


def figures(ran: Days) -> dict[str, Any]:
    """What the days came to: the estimates' errors against the best knowable, the customers, the waits."""
    found = outcome.outcome(ran.days, 0, 0)
    e = found.estimates
    waits = [t.waited_s for d in ran.days for t in d.tickets.values() if t.waited_s is not None]
    return {
        "days": len(ran.days), "customers": found.customers, "count": e.count,
        "error_s": None if e.error_s is None else round(e.error_s, 1),
        "best_error_s": None if e.best_error_s is None else round(e.best_error_s, 1),
        "ratio": None if e.ratio is None else round(e.ratio, 3),
        "mean_wait_s": round(statistics.fmean(waits), 1) if waits else None,
        "not_called": found.not_called, "pages": found.pages, "seconds": round(sum(ran.seconds), 2),
    }


def speed(ran: Days) -> dict[str, Any]:
    """How fast the simulator ran these days, against a PING on the same socket."""
    customers = sum(len(d.tickets) for d in ran.days)
    per_customer_ms = sum(ran.seconds) / customers * 1000
    trips = ran.round_trips / customers
    ping_us = percentile(ran.pings_ns, 50) / 1000
    return {
        "busy_day_s": round(statistics.fmean(ran.seconds), 2), "busy_day_max_s": round(max(ran.seconds), 2),
        "ms_per_customer": round(per_customer_ms, 2), "round_trips_per_customer": round(trips, 1),
        "ping": {"n": len(ran.pings_ns), "p50_us": round(ping_us, 1),
                 "mean_us": round(statistics.fmean(ran.pings_ns) / 1000, 1)},
        # What the round trips would take at the PING's pace, as a share of the time per customer; the rest is
        # Python (the domain code and the simulator) and the scripts' own work in Redis.
        "round_trip_share": round(trips * ping_us / 1000 / per_customer_ms, 2),
        # CPU seconds over the days (the PINGs after them aside): this process's, and Redis's.
        "cpu_s": {"bench": round(ran.cpu_s, 2), "redis": round(ran.redis_cpu_s, 2)},
    }


def b7(d: Driver) -> dict[str, Any]:
    """Wait estimates against the best knowable on the M/M/3 and busy-day traces; the simulator's speed."""
    busy = load(BUSY_DAY)
    busy_branch = busy.load_branch()
    with tempfile.TemporaryDirectory(prefix="lobby-b7-") as folder:
        socket = Path(folder) / "redis.sock"
        server = RedisServer(Path(folder), appendonly=False, extra_args=("--unixsocket", str(socket))).start()
        assert server.process is not None
        pool = redis.ConnectionPool(connection_class=CountedConnection, path=str(socket), decode_responses=True)
        r = redis.Redis(connection_pool=pool)
        try:
            r.ping()
            d.log(f"  M/M/{MMC_COUNTERS}, {d.plan.b7_mmc_days} days…")
            mmc = run_days(r, server.process.pid, mmc_branch(), mmc_scenario(), d.plan.b7_mmc_days)
            d.log(f"  busy day, {d.plan.b7_busy_days} days…")
            mixed = run_days(r, server.process.pid, busy_branch, busy, d.plan.b7_busy_days, d.plan.b7_pings)
        finally:
            r.close()
            pool.disconnect()
            server.stop()
    return {
        "mmc": figures(mmc) | {"counters": MMC_COUNTERS, "load": MMC_LOAD, "service_minutes": MMC_SERVICE_MINUTES,
                               "hours": MMC_HOURS},
        "busy_day": figures(mixed) | {"scenario": BUSY_DAY.relative_to(ROOT).as_posix()},
        "speed": speed(mixed),
    }
