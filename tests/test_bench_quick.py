"""The benchmark harness's quick mode runs end to end and reports every benchmark (no timing targets here)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

# bench/ is not installed: `python -m bench` runs from the repository's top folder.
ROOT = Path(__file__).resolve().parent.parent
ROWS = ("B0", "B1", "B2", "B3", "B4", "B5", "B6", "B7", "B8", "B4c", "B9")


@pytest.mark.timeout(330)
def test_quick_mode_prints_and_writes_every_row(tmp_path: Path) -> None:
    done = subprocess.run([sys.executable, "-m", "bench", "--quick", "--out", str(tmp_path)], cwd=ROOT,
                          capture_output=True, text=True, timeout=320, check=False)
    assert done.returncode == 0, done.stderr[-4000:]
    table = [line for line in done.stdout.splitlines() if line.startswith("| B")]
    assert [line.split("|")[1].strip() for line in table] == list(ROWS)

    document = json.loads((tmp_path / "latest-quick.json").read_text(encoding="utf-8"))
    assert document["mode"] == "quick"
    assert set(ROWS) <= set(document["results"])
    assert document["table"].count("\n| B") == len(ROWS)
    assert {"nproc", "cpu", "memory_gib", "python", "redis"} <= set(document["machine"])
    results = document["results"]
    # Every benchmark measured something: the harness drove the real stack, end to end.
    assert results["B0"]["n"] > 0 and results["B0"]["p99_ms"] is not None
    assert results["B1"]["n"] > 0 and results["B1"]["accepted"] == results["B1"]["presses"]
    assert results["B2"]["n"] > 0
    assert results["B3"]["hello"]["rps"] > 0 and results["B3"]["tickets"]["rps"] > 0
    assert set(results["B3"]["tickets"]["statuses"]) == {"201"}  # issued, not refused (e.g. rate-limited)
    assert results["B4"]["connected"] == results["B4"]["clients"] > 0 and results["B4"]["n"] > 0
    assert results["B5"]["timers"] > 0
    assert results["B6"]["tickets"] > 0 and results["B6"]["pages"] > 0
    assert results["B6"]["bytes_per_ticket"] and results["B6"]["bytes_per_page"]
    # B7 simulated a day of each trace and held its estimates against the best knowable.
    for trace in ("mmc", "busy_day"):
        figures = results["B7"][trace]
        assert figures["count"] > 0 and figures["customers"] >= figures["count"], trace
        assert figures["error_s"] is not None and figures["best_error_s"] is not None, trace
        assert figures["ratio"] is not None, trace
    speed = results["B7"]["speed"]
    assert speed["busy_day_s"] > 0 and speed["ms_per_customer"] > 0 and speed["round_trips_per_customer"] > 0
    assert speed["ping"]["n"] > 0 and speed["ping"]["p50_us"] > 0
    # B8 archived each branch's day into PostgreSQL and SQLite alike, and drew the trends from the archive.
    b8 = results["B8"]
    if b8["postgres"] is None:  # no PostgreSQL here: B8 says so, and measures SQLite (CI has one)
        assert "no PostgreSQL" in b8["note"] and not os.environ.get("LOBBY_REQUIRE_POSTGRES")
    for where in ("postgres", "sqlite") if b8["postgres"] else ("sqlite",):
        assert b8[where]["rows"]["tickets"] == b8["branches"] * b8["per_branch_day"]["tickets"] > 0, where
        assert b8[where]["rows"]["pages"] == b8["branches"] * b8["per_branch_day"]["pages"] > 0, where
    assert b8["trends"]["page"]["n"] > 0 and b8["trends"]["rows"] > 0
    assert b8["redis_window"]["days_kept"] == 8 and b8["per_branch_day"]["redis_bytes"] > 0
    # B4c and B9 ran a region of their own per size: every client connected and was delivered to, through the
    # processes' hubs (a few readers and Redis connections), and the rush hour's presses, pauses and tickets
    # were timed; the plot was drawn.
    for size in [*results["B4c"]["sizes"], *results["B9"]["sizes"]]:
        assert size["connected"] == size["clients"] == 11 * size["branches"] and size["dropped"] == 0
        assert size["delivery"]["n"] > 0
        assert {"kiosk", "counter", "pager"} <= set(size["live"]) and size["redis_connections"]["total_busy"] > 0
        assert sum(service["clients"] for service in size["live"].values()) == size["clients"]
        for figure in ("press_to_device", "pause_to_display", "ticket_issue"):
            assert size[figure]["n"] > 0, figure
    assert (tmp_path / "scale-quick.svg").read_text(encoding="utf-8").startswith("<svg")
