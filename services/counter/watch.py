"""What the counter worker watches every second: the day's end, pauses that overrun, VIP customers waiting.

Each finding is paged once: the mark that it was paged and the alert with its outbox entry are written
in one MULTI, so a crash cannot page twice or not at all.
"""

from __future__ import annotations

import logging

import redis

from services.common import clock, counters, keys, tickets
from services.common.config import Branch, branches, branches_on, settings
from services.common.contracts import PageKind, PageRequest, Priority
from services.common.redis import get_redis
from services.counter import alerts

log = logging.getLogger("lobby.watch")


def _page_once(r: redis.Redis, flag_key: str, flag: str, request: PageRequest) -> bool:
    """Stage the alert unless the flag is already set; return whether it was paged now."""

    def write(pipe: redis.client.Pipeline) -> bool:
        if pipe.sismember(flag_key, flag):
            return False
        pipe.multi()
        pipe.sadd(flag_key, flag)
        pipe.expire(flag_key, 3 * 24 * 3600)
        alerts.stage(pipe, request)
        return True

    return bool(r.transaction(write, flag_key, value_from_callable=True))


def pause_overruns(r: redis.Redis, branch: Branch) -> int:
    """Page the manager once for each pause that has outlasted its expected minutes."""
    now = clock.now()
    paged = 0
    for state in counters.load_all(r, branch).values():
        pause = state.pause
        if state.status != counters.PAUSED or not pause or clock.parse_iso(pause["until"]) > now:
            continue
        counter = branch.counter(state.id)
        reason = branch.pause_reason(pause["reason"])
        over_min = max(1, round((now - clock.parse_iso(pause["until"])).total_seconds() / 60))
        request = alerts.page_request(
            branch, state.id, PageKind.PAUSE_OVERRUN, Priority.HIGH,
            f"{counter.window} 窗口暂停已超时：{reason.name if reason else pause['reason']}，"
            f"预计 {pause['expected_minutes']} 分钟，已超出 {over_min} 分钟",
            {"reason": pause["reason"], "expected_minutes": pause["expected_minutes"], "since": pause["since"],
             "until": pause["until"], "pause_alert_id": pause.get("alert_id")},
        )
        paged += _page_once(r, keys.pause_overrun_paged(branch.id), pause.get("alert_id") or pause["since"], request)
    return paged


def vip_waits(r: redis.Redis, branch: Branch) -> int:
    """Page the manager once for each VIP ticket waiting longer than the branch's threshold."""
    threshold_ms = int(branch.vip_wait_threshold_minutes * 60_000)
    now_ms = clock.now_ms()
    lines = tickets.lines(r, branch)
    states = counters.load_all(r, branch)
    paged = 0
    for category in (c for c in branch.categories if c.vip):
        overdue = r.zrangebyscore(lines.key(category.id), "-inf", now_ms - threshold_ms, withscores=True)
        if not overdue:
            continue
        home = next((c for c in branch.counters if category.id in c.serves), branch.counters[0])
        for number, issued_ms in overdue:
            waited_s = int((now_ms - issued_ms) / 1000)
            request = alerts.page_request(
                branch, home.id, PageKind.VIP_WAIT, Priority.HIGH,
                f"{category.name}客户 {number} 已等候 {waited_s // 60} 分钟，{home.window} 窗口"
                f"{'暂停中' if states[home.id].status == counters.PAUSED else '尚未叫号'}",
                {"ticket": number, "category": category.id, "waited_s": waited_s,
                 "threshold_minutes": branch.vip_wait_threshold_minutes,
                 "counter_status": states[home.id].status},
            )
            paged += _page_once(r, keys.vip_wait_paged(branch.id, lines.day), number, request)
    return paged


def watch(r: redis.Redis | None = None) -> None:
    """Run every check on every branch (the counter worker does this each second)."""
    mine = branches_on(settings().redis_url) if r is None else list(branches().values())
    r = r or get_redis()
    for branch in mine:
        try:
            tickets.close_past_days(r, branch)
            pause_overruns(r, branch)
            vip_waits(r, branch)
        except redis.RedisError:
            log.exception("watch of branch %s failed", branch.id)
