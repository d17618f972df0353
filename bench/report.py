"""The results as one Markdown table (what each benchmark measured, its target, whether this run met it) and as
the JSON document written under bench/results/."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import asdict
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench.plan import Plan

TARGETS = {
    "B1": "p99 ≤ 20 ms and ≤ 10× B0 p99",
    "B3": "≥ 0.5× hello-world rate",
    "B4": "delivery p99 ≤ 250 ms, none dropped",
    "B5": "never early, p99 ≤ 1.5 s late",
    "B6": "< 1 KiB per ticket",
    "B7": "MAE ≤ 1.25× best knowable on both; a busy day ≤ 5 s",
    "B8": "50 branches' day ≤ 10 s into PostgreSQL; 12-month trends p95 ≤ 1 s",
    "B4c": "10,000 clients, none dropped; delivery p99 ≤ 250 ms; RSS < 1.5 GiB; Redis connections ≤ 200",
    "B9": "press → device p99 at 100 branches ≤ B1 p99 (1,000 clients)",
}


def verdicts(results: dict[str, Any]) -> dict[str, bool | None]:
    """Say, for each benchmark with a target that ran, whether this run met it."""
    b1, b3, b4, b5, b6, b7, b8, b4c, b9 = (results.get(k, {}) for k in ("B1", "B3", "B4", "B5", "B6", "B7", "B8",
                                                                        "B4c", "B9"))

    def ok(*conditions: Any) -> bool | None:
        return None if any(c is None for c in conditions) else all(conditions)

    checks = {
        "B1": lambda: ok(b1["p99_ms"] is not None and b1["p99_ms"] <= 20 and b1["missing"] == 0,
                 b1["ratio_to_b0_p99"] is not None and b1["ratio_to_b0_p99"] <= 10),
        "B3": lambda: ok(b3["ratio"] is not None and b3["ratio"] >= 0.5),
        "B4": lambda: ok(b4["p99_ms"] is not None and b4["p99_ms"] <= 250 and b4["dropped"] == 0
                         and b4["connected"] == b4["clients"]),
        "B5": lambda: ok(b5["timers"] > 0 and b5["early"] == 0 and b5["p99_ms"] is not None
                         and b5["p99_ms"] <= 1500),
        "B6": lambda: ok(b6["bytes_per_ticket"] is not None and b6["bytes_per_ticket"] < 1024),
        "B7": lambda: ok(*(b7[t]["ratio"] is not None and b7[t]["ratio"] <= 1.25 for t in ("mmc", "busy_day")),
                         b7["speed"]["busy_day_s"] <= 5),
        "B8": lambda: ok(None if not b8.get("postgres") else b8["postgres"]["seconds"] <= 10,
                         b8["trends"]["page"]["p95_ms"] <= 1000),
        "B4c": lambda: ok(*(s["connected"] == s["clients"] and s["dropped"] == 0
                            and s["delivery"]["p99_ms"] is not None and s["delivery"]["p99_ms"] <= 250
                            and s["rss_kib"]["all_busy"] < 1.5 * 1024 * 1024
                            and s["redis_connections"]["total_busy"] <= 200 for s in b4c["sizes"])),
        "B9": lambda: ok(*(s["press_to_device"]["p99_ms"] is not None and b1.get("p99_ms") is not None
                           and s["press_to_device"]["p99_ms"] <= b1["p99_ms"] for s in b9["sizes"]
                           if s["branches"] == 100)) if b1 else None,
    }
    return {name: check() for name, check in checks.items() if name in results}


def _f(value: Any, unit: str = "") -> str:
    if value is None:
        return "–"
    if isinstance(value, float):
        value = f"{value:.1f}" if value >= 10 else f"{value:.2f}"
    return f"{value}{unit}"


def _split(split: dict[str, int] | None) -> str:
    return f" ({split['state']} state + {split['streams']} stream entries)" if split else ""


def _spread(figures: dict[str, Any], which: tuple[str, ...] = ("p50", "p99", "max")) -> str:
    return " · ".join(f"{p} {_f(figures[f'{p}_ms'], ' ms')}" for p in which)


def _b4(b4: dict[str, Any]) -> tuple[str, str]:
    mb = {name: kib / 1024 for name, kib in b4["rss_kib"]["busy"].items()}
    web = " ".join(f"{n.split('-')[0]} {v:.0f}" for n, v in mb.items() if n.endswith("-web"))
    return "fan-out", (f"{b4['connected']}/{b4['clients']} clients, {b4['dropped']} dropped · delivery p50 "
                       f"{_f(b4['p50_ms'], ' ms')} · p99 {_f(b4['p99_ms'], ' ms')} ({b4['n']} deliveries) · "
                       f"RSS MiB {web} redis {mb.get('redis', 0):.0f}")


def _b7(b7: dict[str, Any]) -> tuple[str, str]:
    def trace(name: str, t: dict[str, Any]) -> str:
        return (f"{name}: MAE {_f(t['error_s'], ' s')} vs best {_f(t['best_error_s'], ' s')} = "
                f"{_f(t['ratio'], '×')} ({t['customers']} customers, {t['days']} day{'s' if t['days'] > 1 else ''})")

    speed, mmc = b7["speed"], b7["mmc"]
    mmc_name = f"M/M/{mmc['counters']} at {mmc['load']:.0%} load"
    return "wait estimates (simulated)", (
        f"{trace(mmc_name, mmc)} · {trace('busy day', b7['busy_day'])} · "
        f"simulator {_f(speed['busy_day_s'], ' s')}/busy day = {_f(speed['ms_per_customer'], ' ms')}/customer, "
        f"{speed['round_trips_per_customer']} round trips each, PING {_f(speed['ping']['p50_us'], ' µs')}")


def _b8(b8: dict[str, Any]) -> tuple[str, str]:
    def archived(where: str) -> str:
        a = b8.get(where)
        if not a:
            return f"{where}: not measured"
        return (f"{where} {_f(a['seconds'], ' s')} (Redis read {_f(a['read_redis_s'], ' s')}, write "
                f"{_f(a['write_db_s'], ' s')}; {a['rows']['tickets']} tickets, {a['rows']['pages']} pages)")

    t, w = b8["trends"], b8["redis_window"]
    return "records database", (
        f"{b8['branches']} branches' day: {archived('postgres')} · baseline {archived('sqlite')} · trends "
        f"{t['range']} over {t['days']} days ({t['rows']} rows): p50 {_f(t['page']['p50_ms'], ' ms')} · p95 "
        f"{_f(t['page']['p95_ms'], ' ms')} vs a day's report from the database p95 "
        f"{_f(t['daily_report_from_db']['p95_ms'], ' ms')} · Redis {w['days_kept']} days: "
        f"{_f(w['branch_mib'], ' MiB')}/branch, 500 branches {_f(w['region_500_gib'], ' GiB')} "
        f"(91 days: {_f(w['region_500_gib_at_91_days'], ' GiB')})")


def _b4c(b4c: dict[str, Any]) -> tuple[str, str]:
    def size(s: dict[str, Any]) -> str:
        d = s["delivery"]
        return (f"{s['connected']}/{s['clients']} ({s['dropped']} dropped): p50 {_f(d['p50_ms'], ' ms')}, p99 "
                f"{_f(d['p99_ms'], ' ms')}, max {_f(d['max_ms'], ' ms')}; RSS {s['rss_kib']['all_busy'] / 1024:.0f} "
                f"MiB ({_f(s['rss_kib']['web_per_client'], ' KiB')}/client on the web); "
                f"{s['redis_connections']['total_busy']} Redis conns; "
                f"{_f(s['cpu_ms_per_delivered_event'], ' ms')} CPU/event")

    return "fan-out curve (one stack per size)", " · ".join(size(s) for s in b4c["sizes"])


def _b9(b9: dict[str, Any]) -> tuple[str, str]:
    def size(s: dict[str, Any]) -> str:
        parts = [f"{name} p99 {_f(s[key]['p99_ms'], ' ms')} ({_f(s[key].get('ratio_to_smallest'), '×')})"
                 for key, name in (("press_to_device", "press→device"), ("pause_to_display", "pause→display"),
                                   ("ticket_issue", "ticket"))]
        return f"{s['branches']} branches: " + ", ".join(parts)

    return (f"cost by branches (× its value at {b9['baseline_branches']} branch)",
            " · ".join(size(s) for s in b9["sizes"]))


# Per benchmark: what it measures, and its figures as the table shows them.
ROWS: dict[str, Callable[[dict[str, Any]], tuple[str, str]]] = {
    "B0": lambda b0: ("Redis XADD → blocked XREAD",
                      f"p50 {_f(b0['p50_ms'], ' ms')} · p99 {_f(b0['p99_ms'], ' ms')} ({b0['n']} writes)"),
    "B1": lambda b1: ("press → device SSE",
                      f"{_spread(b1)} · p99 = {_f(b1['ratio_to_b0_p99'], '×')} B0 ({b1['n']}/{b1['presses']} presses, "
                      f"{b1['branches']} branches, {b1['missing']} missing) · HTTP floor (hello-world POST, same "
                      f"rate) {_spread(b1['http_floor'], ('p50', 'p99'))}"),
    "B2": lambda b2: ("pause → display redirect",
                      f"{_spread(b2)} ({b2['n']} pauses, {b2['missing']} missing)"),
    "B3": lambda b3: ("ticket issuing",
                      f"{_f(b3['tickets']['rps'])} req/s, p99 {_f(b3['tickets']['p99_ms'], ' ms')} vs hello "
                      f"{_f(b3['hello']['rps'])} req/s, p99 {_f(b3['hello']['p99_ms'], ' ms')}: ratio "
                      f"{_f(b3['ratio'])} ({b3['clients']} clients)"),
    "B4": _b4,
    "B5": lambda b5: ("timer lateness",
                      f"min {_f(b5['min_ms'], ' ms')} · {_spread(b5)} ({b5['timers']} timers, {b5['early']} early)"),
    "B6": lambda b6: ("Redis footprint",
                      f"{_f(b6['bytes_per_ticket'], ' B')}/ticket{_split(b6['ticket_split'])} = "
                      f"{_f(b6['kib_per_10k_tickets'])} KiB per 10,000 · {_f(b6['bytes_per_page'], ' B')}/page"
                      f"{_split(b6['page_split'])} = {_f(b6['kib_per_1k_pages'])} KiB per 1,000 pages"),
    "B7": _b7,
    "B8": _b8,
    "B4c": _b4c,
    "B9": _b9,
}


def rows(results: dict[str, Any]) -> list[tuple[str, str, str, str, str]]:
    """Return the table's rows, of the benchmarks that ran: id, what, measured, target, met."""
    met = verdicts(results)
    mark = {True: "yes", False: "NO", None: "–"}
    made = []
    for name, describe in ROWS.items():
        if name in results:
            what, measured = describe(results[name])
            made.append((name, what, measured, TARGETS.get(name, "baseline" if name == "B0" else "–"),
                         mark[met.get(name)]))
    return made


def table(results: dict[str, Any]) -> str:
    """Render the results as one Markdown table."""
    lines = ["| | benchmark | measured | target | met |", "|---|---|---|---|---|"]
    lines += [f"| {' | '.join(row)} |" for row in rows(results)]
    return "\n".join(lines)


def document(quick: bool, started: datetime, about: dict[str, Any], plan: Plan, results: dict[str, Any]
             ) -> dict[str, Any]:
    """Return everything one run found, as written to JSON: mode, when, the machine, the plan, results, table."""
    return {
        "mode": "quick" if quick else "full", "started_at": started.isoformat(timespec="seconds"),
        "seconds": round((datetime.now(UTC) - started).total_seconds(), 1),
        "command": "python -m bench" + (" --quick" if quick else ""), "machine": about,
        "plan": asdict(plan), "met": verdicts(results), "results": results, "table": table(results),
    }


def write(found: dict[str, Any], out: Path, started: datetime) -> Path:
    """Write the document as a timestamped file and as latest-{mode}.json in out; return the latter."""
    out.mkdir(parents=True, exist_ok=True)
    text = json.dumps(found, indent=1, ensure_ascii=False) + "\n"
    (out / f"{started.strftime('%Y%m%dT%H%M%SZ')}-{found['mode']}.json").write_text(text, encoding="utf-8")
    latest = out / f"latest-{found['mode']}.json"
    latest.write_text(text, encoding="utf-8")
    return latest
