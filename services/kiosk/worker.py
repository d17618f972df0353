"""What the kiosk worker runs: the jobs of queue `kiosk` (a call, a routing change: services/kiosk/jobs.py), and
the redraw of the lobby screens that took tickets, every REDRAW_EVERY_S."""

from __future__ import annotations

from services.domain.contracts import KIOSK
from services.kiosk.jobs import REDRAW_EVERY_S, redraw_stale_screens
from services.runtime.settings import Context
from services.runtime.worker import Work


def work(ctx: Context) -> Work:
    r = ctx.redis()
    return Work(service=KIOSK, queue=KIOSK, every=[(REDRAW_EVERY_S, lambda: redraw_stale_screens(r, ctx.branches))])
