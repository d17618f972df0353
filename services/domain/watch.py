"""What the counter worker watches every second: the day's end, pauses that overrun, VIP customers waiting, and
the branch's own screens, terminals and lines (services/domain/supervision.py).

Each finding is paged once, and only while it is still true: the mark that it was paged and the alert with its
outbox entry are written in one MULTI, under a WATCH of what the finding is about (the counter's pause, the
ticket's line). So a crash cannot page twice or not at all, and a pause resumed or a customer called in the
meantime is not paged.
"""

from __future__ import annotations

import json
import logging

import redis

from services.domain import alerts, counters, feeds, keys, supervision, tickets
from services.domain.branch import Branch
from services.domain.clock import SYSTEM, Clock, business_day, parse_iso
from services.domain.contracts import PageKind, Priority
from services.domain.lines import Lines

log = logging.getLogger("lobby.watch")
# Terminal stream event: this counter's pause has overrun and the lobby manager was paged.
PAUSE_OVERRUN = "pause_overrun"


def pause_overruns(r: redis.Redis, branch: Branch, clock: Clock = SYSTEM) -> int:
    """Page the manager once for each pause that has outlasted its expected minutes; tell its terminal."""
    now = clock.now()
    paged = 0
    for state in counters.load_all(r, branch).values():
        pause = state.pause
        if state.status != counters.PAUSED or not pause or pause.get("overrun_alert_id"):
            continue
        if parse_iso(pause["until"]) > now:
            continue
        paged += _page_overrun(r, branch, state.id, pause.get("alert_id"), clock)
    return paged


def _page_overrun(r: redis.Redis, branch: Branch, counter_id: str, pause_alert_id: str | None,
                  clock: Clock) -> bool:
    counter_key = keys.counter(branch.id, counter_id)
    counter = branch.counter(counter_id)
    assert counter is not None

    def write(pipe: redis.client.Pipeline) -> bool:
        raw = pipe.hgetall(counter_key)
        pause = json.loads(raw["pause"]) if raw.get("pause") else None
        if raw.get("status") != counters.PAUSED or not pause or pause.get("alert_id") != pause_alert_id \
                or pause.get("overrun_alert_id"):
            return False  # resumed, paused again, or paged already
        now = clock.now()
        over_s = int((now - parse_iso(pause["until"])).total_seconds())
        reason = branch.pause_reason(pause["reason"])
        request = alerts.page_request(
            branch, counter_id, PageKind.PAUSE_OVERRUN, Priority.HIGH,
            f"{counter.window} 窗口暂停已超时：{reason.name if reason else pause['reason']}，"
            f"预计 {pause['expected_minutes']} 分钟，已超出 {max(1, round(over_s / 60))} 分钟",
            {"reason": pause["reason"], "expected_minutes": pause["expected_minutes"], "since": pause["since"],
             "until": pause["until"], "over_s": over_s, "pause_alert_id": pause_alert_id},
            now,
        )
        pause["overrun_alert_id"] = request.alert_id
        pipe.multi()
        pipe.hset(counter_key, "pause", json.dumps(pause))
        alerts.stage(pipe, request)
        feeds.append(pipe, branch, keys.terminal(counter_id), PAUSE_OVERRUN,
                       {"until": pause["until"], "over_s": over_s, "alert_id": request.alert_id})
        return True

    return bool(r.transaction(write, counter_key, value_from_callable=True))


def vip_waits(r: redis.Redis, branch: Branch, clock: Clock = SYSTEM) -> int:
    """Page the manager once for each VIP ticket waiting longer than the branch's threshold."""
    threshold_ms = int(branch.vip_wait_threshold_minutes * 60_000)
    now_ms = clock.now_ms()
    lines = tickets.lines(r, branch, business_day(branch, clock.now()))
    paged_key = keys.vip_wait_paged(branch.id, lines.day)
    paged = 0
    for category in (c for c in branch.categories if c.vip):
        overdue = r.zrangebyscore(lines.key(category.id), "-inf", now_ms - threshold_ms)
        if not overdue:
            continue
        already = set(r.hkeys(paged_key))
        for number in overdue:
            if number not in already:
                paged += _page_vip_wait(r, branch, lines, category.id, number, paged_key, clock)
    return paged


def _page_vip_wait(r: redis.Redis, branch: Branch, lines: Lines, category_id: str, number: str,
                   paged_key: str, clock: Clock) -> bool:
    category = branch.category(category_id)
    assert category is not None
    home = next((c for c in branch.counters if category_id in c.serves), branch.counters[0])
    line_key = lines.key(category_id)

    def write(pipe: redis.client.Pipeline) -> bool:
        issued_ms = pipe.zscore(line_key, number)
        if issued_ms is None or pipe.hexists(paged_key, number):
            return False  # called meanwhile, or paged already
        status = counters.load(pipe, branch, home.id).status
        moment = clock.now()
        waited_s = int((clock.now_ms() - issued_ms) / 1000)
        request = alerts.page_request(
            branch, home.id, PageKind.VIP_WAIT, Priority.HIGH,
            f"{category.name}客户 {number} 已等候 {waited_s // 60} 分钟，{home.window} 窗口"
            f"{'暂停中' if status == counters.PAUSED else '尚未叫号'}",
            {"ticket": number, "category": category_id, "waited_s": waited_s,
             "threshold_minutes": branch.vip_wait_threshold_minutes, "counter_status": status},
            moment,
        )
        pipe.multi()
        # Calling the ticket (the call-next script) marks this alert cleared, which clears its page.
        pipe.hset(paged_key, number, request.alert_id)
        pipe.expire(paged_key, 3 * 24 * 3600)
        alerts.stage(pipe, request)
        return True

    return bool(r.transaction(write, line_key, paged_key, value_from_callable=True))


def watch(r: redis.Redis, branches: list[Branch], clock: Clock = SYSTEM) -> None:
    """Run every check on these branches (the counter worker does this each second for the branches of its
    Redis); one branch's failure does not hold up the others."""
    for branch in branches:
        try:
            tickets.close_past_days(r, branch, clock)
            pause_overruns(r, branch, clock)
            vip_waits(r, branch, clock)
            supervision.check(r, branch, clock)
        except redis.RedisError:
            log.exception("watch of branch %s failed", branch.id)
