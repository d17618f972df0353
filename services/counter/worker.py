"""What the counter worker runs: the page news consumer (what became of the counters' alerts), and the watch
every second (the day's end, pauses that overrun, VIP customers waiting long). The counter is sent no RQ jobs."""

from __future__ import annotations

import threading

from services.counter import news
from services.domain import watch
from services.domain.contracts import COUNTER, PAGE_NEWS
from services.runtime import consumer
from services.runtime.settings import Context
from services.runtime.worker import Work

WATCH_EVERY_S = 1.0


def work(ctx: Context) -> Work:
    r, mine = ctx.redis(), ctx.on()
    name = consumer.consumer_name(COUNTER)
    handle = news.handler(ctx.branches)

    def read_news(stop: threading.Event) -> None:
        consumer.consume(PAGE_NEWS, name, ctx.stream_redis, ctx.redis, handle, stop)

    return Work(service=COUNTER, every=[(WATCH_EVERY_S, lambda: watch.watch(r, mine))], consumers=[read_news],
                once=[lambda: consumer.drain(r, PAGE_NEWS, name, handle)])
