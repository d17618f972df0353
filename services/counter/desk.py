"""What a teller does at a counter: call, recall, finish, pause and resume.

Pausing follows the branch's first rule: the lobby manager is paged with the reason, the expected
minutes and how many VIP customers wait (and for how long), and the paused counter's customers are
redirected to its partner window, which calls them first until the counter resumes.
"""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import redis

from services.common import clock, contracts, counters, keys, streams, tickets
from services.common.config import Branch
from services.common.contracts import SCREEN_CHANGED, TICKET_CALLED, PageKind, Priority, ScreenChanged, TicketCalled
from services.common.counters import OPEN, PAUSED
from services.common.errors import Conflict, Unprocessable
from services.common.lines import CounterNotOpen
from services.common.schemas import Counter, Pause, Ticket
from services.counter import alerts


class Desk:
    """One counter of one branch, as its terminal sees it."""

    def __init__(self, r: redis.Redis, branch: Branch, counter_id: str):
        self.r = r
        self.branch = branch
        counter = branch.counter(counter_id)
        assert counter is not None, "the API checks the counter exists"
        self.config = counter
        self.id = counter_id

    # Reading

    def view(self) -> Counter:
        state = counters.load(self.r, self.branch, self.id)
        reader = tickets.TicketReader(self.r, self.branch)
        pause = None
        if state.pause:
            pause = Pause(**{k: state.pause.get(k) for k in ("reason", "note", "expected_minutes", "since",
                                                              "until")})
        return Counter(
            id=self.id, window=self.config.window, status=state.status,
            serving=reader.get(state.serving) if state.serving else None, pause=pause,
            serves=counters.call_order(self.branch, self.id, reader.rules),
        )

    # Calling

    def call_next(self) -> Ticket | None:
        order = counters.call_order(self.branch, self.id, counters.redirects(self.r, self.branch))
        reader_lines = tickets.lines(self.r, self.branch)
        now = clock.local_iso(self.branch)
        try:
            number = reader_lines.call_next(self.id, self.config.window, order, now)
        except CounterNotOpen as exc:
            state = counters.load(self.r, self.branch, self.id)
            raise Conflict(f"counter {self.id} is {state.status}; resume it before calling",
                           code=f"counter_{state.status}") from exc
        ticket = tickets.TicketReader(self.r, self.branch).get(number) if number else None
        if ticket is not None:
            self._announce(ticket, recall=False)
        self._counter_changed()
        return ticket

    def recall(self) -> Ticket:
        ticket = self._serving_or_409("recall")
        self._announce(ticket, recall=True)
        return ticket

    def finish(self, status: str) -> Ticket:
        """End the current ticket as served or no_show."""
        number = tickets.lines(self.r, self.branch).finish(self.id, status, clock.local_iso(self.branch))
        if number is None:
            raise Conflict(f"counter {self.id} is not serving a ticket", code="not_serving")
        ticket = tickets.TicketReader(self.r, self.branch).get(number)
        assert ticket is not None
        self._counter_changed()
        return ticket

    def _serving_or_409(self, action: str) -> Ticket:
        state = counters.load(self.r, self.branch, self.id)
        ticket = tickets.TicketReader(self.r, self.branch).get(state.serving) if state.serving else None
        if ticket is None:
            raise Conflict(f"counter {self.id} has no ticket to {action}", code="not_serving")
        return ticket

    def _announce(self, ticket: Ticket, *, recall: bool) -> None:
        contracts.enqueue(TICKET_CALLED, TicketCalled(
            branch=self.branch.id, number=ticket.number, category=ticket.category, counter=self.id,
            window=self.config.window, called_at=ticket.called_at or clock.local_iso(self.branch),
            recall=recall,
        ))

    # Pausing (rule 1)

    def pause(self, reason: str, expected_minutes: int, note: str | None) -> Counter:
        reason_cfg = self.branch.pause_reason(reason)
        if reason_cfg is None:
            raise Unprocessable(f"unknown pause reason {reason!r}; this branch has "
                                f"{', '.join(r.id for r in self.branch.pause_reasons)}", code="unknown_reason")
        moment = clock.now()
        since = clock.local_iso(self.branch, moment)
        until = clock.local_iso(self.branch, moment + timedelta(minutes=expected_minutes))
        waiting, longest_s = self._waiting(moment, self.config.serves)
        vip_waiting, longest_vip_s = self._waiting(moment, [c.id for c in self.branch.categories if c.vip])
        target = self.branch.counter(self.config.pause_redirect) if self.config.pause_redirect else None
        details: dict[str, Any] = {
            "reason": reason, "reason_name": reason_cfg.name, "reason_name_en": reason_cfg.name_en,
            "expected_minutes": expected_minutes, "note": note, "vip_waiting": vip_waiting,
            "longest_vip_wait_s": longest_vip_s, "waiting": waiting, "longest_wait_s": longest_s,
            "since": since, "until": until,
            "redirect_window": target.window if target else None,
        }
        request = alerts.page_request(
            self.branch, self.id, PageKind.PAUSE, Priority.HIGH if waiting else Priority.NORMAL,
            _pause_message(self.config.window, reason_cfg.name, expected_minutes, waiting, longest_s,
                           target.window if target else None),
            details,
        )
        pause = {"reason": reason, "note": note, "expected_minutes": expected_minutes, "since": since,
                 "until": until, "alert_id": request.alert_id}

        def write(pipe: redis.client.Pipeline) -> None:
            status = pipe.hget(keys.counter(self.branch.id, self.id), "status") or OPEN
            if status != OPEN:
                raise Conflict(f"counter {self.id} is already {status}", code=f"counter_{status}")
            pipe.multi()
            pipe.hset(keys.counter(self.branch.id, self.id), mapping={"status": PAUSED,
                                                                       "pause": json.dumps(pause)})
            if target is not None:
                for category in self.config.serves:
                    rule = {"category": category, "from_counter": self.id, "to_counter": target.id,
                            "window": target.window, "since": since}
                    pipe.hset(keys.redirects(self.branch.id), category, json.dumps(rule))
            alerts.stage(pipe, request)

        self.r.transaction(write, keys.counter(self.branch.id, self.id))
        alerts.dispatch(request)
        self._screen_changed("pause")
        self._counter_changed()
        return self.view()

    def resume(self) -> Counter:
        moment = clock.now()
        state: dict[str, Any] = {}

        def write(pipe: redis.client.Pipeline) -> None:
            raw = pipe.hgetall(keys.counter(self.branch.id, self.id))
            if (raw.get("status") or OPEN) != PAUSED:
                raise Conflict(f"counter {self.id} is not paused", code="not_paused")
            pause = json.loads(raw["pause"])
            paused_s = int((moment - clock.parse_iso(pause["since"])).total_seconds())
            request = alerts.page_request(
                self.branch, self.id, PageKind.RESUME, Priority.LOW,
                f"{self.config.window} 窗口恢复服务（暂停 {max(1, round(paused_s / 60))} 分钟，"
                f"预计 {pause['expected_minutes']} 分钟）",
                {"reason": pause["reason"], "expected_minutes": pause["expected_minutes"],
                 "paused_s": paused_s, "pause_alert_id": pause.get("alert_id")},
            )
            state["request"] = request
            pipe.multi()
            pipe.hset(keys.counter(self.branch.id, self.id), "status", OPEN)
            pipe.hdel(keys.counter(self.branch.id, self.id), "pause")
            for category in self.config.serves:
                pipe.hdel(keys.redirects(self.branch.id), category)
            alerts.stage(pipe, request)

        self.r.transaction(write, keys.counter(self.branch.id, self.id))
        alerts.dispatch(state["request"])
        self._screen_changed("resume")
        self._counter_changed()
        return self.view()

    def _waiting(self, moment: Any, categories: list[str]) -> tuple[int, int | None]:
        """Count the customers waiting in these categories and the longest wait (s)."""
        heads = tickets.lines(self.r, self.branch).heads(categories)
        count = sum(h.count for h in heads.values())
        oldest = [h.oldest_ms for h in heads.values() if h.oldest_ms is not None]
        longest = int(moment.timestamp() - min(oldest) / 1000) if oldest else None
        return count, longest

    # Telling others

    def _screen_changed(self, reason: str) -> None:
        contracts.enqueue(SCREEN_CHANGED, ScreenChanged(branch=self.branch.id, reason=reason))

    def _counter_changed(self) -> None:
        streams.append(self.r, keys.terminal_stream(self.branch.id, self.id), alerts.COUNTER_EVENT,
                       {"counter": self.view().model_dump(mode="json")})


def _pause_message(window: str, reason: str, minutes: int, waiting: int, longest_s: int | None,
                   redirect: str | None) -> str:
    text = f"{window} 窗口暂停：{reason}，约 {minutes} 分钟"
    if waiting:
        text += f"；{waiting} 位客户等候，最长已等 {max(1, round((longest_s or 0) / 60))} 分钟"
    else:
        text += "；暂无客户等候"
    if redirect:
        text += f"；请引导至 {redirect} 号窗口"
    return text

