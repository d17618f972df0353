"""Crashes for the fault tests: a child of the stack killed as a crash kills it, then brought back."""

from __future__ import annotations

import contextlib
import os
import signal

from services.ops.stack import Stack, descendants


def kill(stack: Stack, name: str) -> None:
    """Kill one child of the stack and its own children with SIGKILL; it stays down until `restart`."""
    process = stack.child(name).process
    if process is None or process.poll() is not None:
        return
    for pid in [process.pid, *descendants(process.pid)]:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    process.wait()


def restart(stack: Stack) -> None:
    """Start again every child that died, as `lobby up` does every half second."""
    stack.supervise_once()
