"""The machine a run measures on, and what each process of the stack takes of it (read from /proc)."""

from __future__ import annotations

import contextlib
import os
import platform
import shutil
import subprocess
from collections.abc import Callable
from typing import Any

import redis

from services.ops.stack import descendants


def machine() -> dict[str, Any]:
    """Describe the machine: cores, CPU model, memory, Python, and the load while we run."""
    model = ""
    with open("/proc/cpuinfo", encoding="utf-8") as info:
        for line in info:
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    lscpu = shutil.which("lscpu")
    if lscpu:
        for line in subprocess.run([lscpu], capture_output=True, text=True, check=False).stdout.splitlines():
            if line.startswith("Model name:"):
                model = line.split(":", 1)[1].strip()
    mem_kib = 0
    with open("/proc/meminfo", encoding="utf-8") as info:
        for line in info:
            if line.startswith("MemTotal:"):
                mem_kib = int(line.split()[1])
    import gunicorn
    import rq

    return {"nproc": os.cpu_count(), "cpu": model, "memory_gib": round(mem_kib / 1024**2, 1),
            "python": platform.python_version(), "gunicorn": gunicorn.__version__, "rq": rq.__version__,
            "redis_py": redis.__version__, "loadavg_start": [round(x, 2) for x in os.getloadavg()]}


def _tree_total(pid: int, read: Callable[[int], float]) -> float:
    """Sum a per-process figure over a process and all its descendants (one that exits meanwhile counts 0)."""
    total = 0.0
    for each in (pid, *descendants(pid)):
        with contextlib.suppress(FileNotFoundError, ProcessLookupError):
            total += read(each)
    return total


def _rss_kib(pid: int) -> int:
    with open(f"/proc/{pid}/status", encoding="utf-8") as status:
        return next((int(line.split()[1]) for line in status if line.startswith("VmRSS:")), 0)


def _pss_kib(pid: int) -> int:
    with open(f"/proc/{pid}/smaps_rollup", encoding="utf-8") as rollup:
        return next((int(line.split()[1]) for line in rollup if line.startswith("Pss:")), 0)


def _cpu_s(pid: int) -> float:
    with open(f"/proc/{pid}/stat", encoding="utf-8") as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def rss_kib(pid: int) -> int:
    """Return the resident memory of a process and all its descendants (KiB)."""
    return int(_tree_total(pid, _rss_kib))


def pss_kib(pid: int) -> int:
    """Return the proportional memory of a process and its descendants (KiB): pages a forked worker shares with
    its master count once, split between them, where RSS counts them in each."""
    return int(_tree_total(pid, _pss_kib))


def cpu_s(pid: int) -> float:
    """Return the CPU time (user + system, s) of a process and all its descendants so far."""
    return _tree_total(pid, _cpu_s)
