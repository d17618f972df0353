"""What a teller does at a counter: call, recall, finish, transfer, pause and resume, open and close.

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
from services.common.counters import CLOSED, OPEN, PAUSED
from services.common.errors import Conflict, Unprocessable
from services.common.lines import CounterNotOpen, Finished, NotServing, OldTicket, RecallLimit
from services.common.redis import replicated
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
        reader = tickets.TicketReader(self.r, self.branch)  # reads every counter's state and the redirects
        state = reader.states[self.id]
        pause = None
        if state.pause:
            pause = Pause(**{k: state.pause.get(k) for k in ("reason", "note", "expected_minutes", "since",
                                                              "until")})
        serving = None
        if state.serving:
            day_reader = reader if state.serving_day in (None, reader.lines.day) else tickets.TicketReader(
                self.r, self.branch, state.serving_day)
            serving = day_reader.get(state.serving)
        order = counters.call_order(self.branch, self.id, reader.rules)
        return Counter(
            id=self.id, window=self.config.window, status=state.status, serving=serving, pause=pause,
            serves=order, weights=dict(self.config.weights), waiting=self._waiting_here(reader, order),
        )

    def _waiting_here(self, reader: tickets.TicketReader, order: list[str]) -> dict[str, int]:
        """Count who waits for this counter: per category it calls (in order), and those transferred to it."""
        line_keys = {c: reader.lines.key(c) for c in order}
        line_keys[counters.TRANSFERS] = reader.lines.counter_key(self.id)
        return {name: head.count for name, head in reader.lines.heads(line_keys).items()}

    # Calling

    def call_next(self) -> Ticket | None:
        day_lines = tickets.lines(self.r, self.branch)
        lanes = counters.routing(self.branch, self.id, counters.redirects(self.r, self.branch), day_lines)
        moment = clock.now()
        try:
            called = day_lines.call_next(self.id, self.config.window, lanes, clock.local_iso(self.branch, moment),
                                         int(moment.timestamp() * 1000), weighted=bool(self.config.weights))
        except CounterNotOpen as exc:
            state = counters.load(self.r, self.branch, self.id)
            raise Conflict(f"counter {self.id} is {state.status}; open or resume it before calling",
                           code=f"counter_{state.status}") from exc
        ticket = tickets.TicketReader(self.r, self.branch).get(called.number) if called else None
        if ticket is not None:
            self._announce(ticket, recall=False)
        self._counter_changed()
        return ticket

    def recall(self) -> Ticket:
        """Call the current ticket again, at most the branch's recall_limit times."""
        try:
            current = tickets.lines(self.r, self.branch).recall(self.id, self.branch.recall_limit,
                                                                clock.local_iso(self.branch))
        except NotServing as exc:
            raise Conflict(f"counter {self.id} has no ticket to recall", code="not_serving") from exc
        except RecallLimit as exc:
            raise Conflict(f"this ticket was called again {self.branch.recall_limit} times already; "
                           "mark it no-show or complete it", code="recall_limit") from exc
        ticket = self._read(current)
        self._announce(ticket, recall=True)
        self._counter_changed()
        return ticket

    def finish(self, status: str) -> Ticket:
        """End the current ticket as served or no_show."""
        moment = clock.now()
        finished = tickets.lines(self.r, self.branch).finish(
            self.id, status, clock.local_iso(self.branch, moment), int(moment.timestamp() * 1000))
        if finished is None:
            raise Conflict(f"counter {self.id} is not serving a ticket", code="not_serving")
        ticket = self._read(finished)
        self._counter_changed()
        return ticket

    def transfer(self, *, category: str | None = None, to_counter: str | None = None) -> Ticket:
        """Send the current ticket back to wait for another category or counter, keeping its place."""
        if category is not None and self.branch.category(category) is None:
            raise Unprocessable(f"unknown category {category!r}", code="unknown_category")
        if to_counter is not None:
            if self.branch.counter(to_counter) is None:
                raise Unprocessable(f"unknown counter {to_counter!r}", code="unknown_counter")
            if to_counter == self.id:
                raise Unprocessable("a ticket cannot be transferred to the counter serving it", code="same_counter")
            if counters.load(self.r, self.branch, to_counter).status == CLOSED:
                raise Conflict(f"counter {to_counter} is closed", code="counter_closed")
        day_lines = tickets.lines(self.r, self.branch)
        try:
            number = day_lines.transfer(self.id, clock.local_iso(self.branch), category=category,
                                        to_counter=to_counter)
        except NotServing as exc:
            raise Conflict(f"counter {self.id} has no ticket to transfer", code="not_serving") from exc
        except OldTicket as exc:
            raise Conflict("this ticket is from an earlier day; complete it or mark it no-show",
                           code="old_ticket") from exc
        ticket = tickets.TicketReader(self.r, self.branch).get(number)
        assert ticket is not None
        self._screen_changed("transfer")
        self._counter_changed()
        if to_counter is not None:
            Desk(self.r, self.branch, to_counter)._counter_changed()
        return ticket

    def _read(self, finished: Finished) -> Ticket:
        ticket = tickets.TicketReader(self.r, self.branch, finished.day).get(finished.number)
        assert ticket is not None, "a counter only serves tickets that exist"
        return ticket

    def _announce(self, ticket: Ticket, *, recall: bool) -> None:
        contracts.enqueue(TICKET_CALLED, TicketCalled(
            branch=self.branch.id, number=ticket.number, category=ticket.category, counter=self.id,
            window=self.config.window, called_at=ticket.called_at or clock.local_iso(self.branch),
            recall=recall,
        ))

    # Opening and closing

    def close(self) -> Counter:
        """Close the counter: it takes no calls and leaves the estimates; its redirect, if any, applies."""
        since = clock.local_iso(self.branch)

        def write(pipe: redis.client.Pipeline) -> None:
            raw = pipe.hgetall(keys.counter(self.branch.id, self.id))
            status = raw.get("status") or OPEN
            if status != OPEN:
                raise Conflict(f"counter {self.id} is {status}; only an open counter closes", code=f"counter_{status}")
            if raw.get("serving"):
                raise Conflict(f"counter {self.id} still serves {raw['serving']}; complete it first",
                               code="still_serving")
            pipe.multi()
            pipe.hset(keys.counter(self.branch.id, self.id), mapping={"status": CLOSED, "closed_at": since})
            self._redirect(pipe, since, counters.CLOSED_REASON)

        self.r.transaction(write, keys.counter(self.branch.id, self.id))
        self._screen_changed("close")
        self._counter_changed()
        return self.view()

    def open(self) -> Counter:
        """Open a closed counter: it calls again and counts in the estimates."""

        def write(pipe: redis.client.Pipeline) -> None:
            status = pipe.hget(keys.counter(self.branch.id, self.id), "status") or OPEN
            if status != CLOSED:
                raise Conflict(f"counter {self.id} is {status}, not closed", code=f"counter_{status}")
            pipe.multi()
            pipe.hset(keys.counter(self.branch.id, self.id), "status", OPEN)
            pipe.hdel(keys.counter(self.branch.id, self.id), "closed_at")
            self._unredirect(pipe)

        self.r.transaction(write, keys.counter(self.branch.id, self.id))
        self._screen_changed("open")
        self._counter_changed()
        return self.view()

    def _redirect(self, pipe: redis.client.Pipeline, since: str, reason: str) -> None:
        """Send this counter's categories to its partner window first (rule 1), if it has one."""
        target = self.branch.counter(self.config.pause_redirect) if self.config.pause_redirect else None
        if target is None:
            return
        for category in self.config.serves:
            rule = {"category": category, "from_counter": self.id, "to_counter": target.id,
                    "window": target.window, "since": since, "reason": reason}
            pipe.hset(keys.redirects(self.branch.id), category, json.dumps(rule))

    def _unredirect(self, pipe: redis.client.Pipeline) -> None:
        for category in self.config.serves:
            pipe.hdel(keys.redirects(self.branch.id), category)

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
            self._redirect(pipe, since, counters.REDIRECT_REASON)
            alerts.stage(pipe, request)

        self.r.transaction(write, keys.counter(self.branch.id, self.id))
        replicated(self.r)
        self._screen_changed("pause")
        self._counter_changed()
        return self.view()

    def resume(self) -> Counter:
        moment = clock.now()

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
            record = {"counter": self.id, "window": self.config.window, "reason": pause["reason"],
                      "note": pause.get("note"), "expected_minutes": pause["expected_minutes"],
                      "since": pause["since"], "resumed_at": clock.local_iso(self.branch, moment),
                      "actual_s": paused_s, "alert_id": pause.get("alert_id")}
            pipe.multi()
            day_pauses = keys.pauses(self.branch.id, clock.business_day(self.branch, moment))
            pipe.rpush(day_pauses, json.dumps(record))
            pipe.expire(day_pauses, self.branch.history_ttl_s)
            pipe.hset(keys.counter(self.branch.id, self.id), "status", OPEN)
            pipe.hdel(keys.counter(self.branch.id, self.id), "pause")
            self._unredirect(pipe)
            alerts.stage(pipe, request)

        self.r.transaction(write, keys.counter(self.branch.id, self.id))
        replicated(self.r)
        self._screen_changed("resume")
        self._counter_changed()
        return self.view()

    def _waiting(self, moment: Any, categories: list[str]) -> tuple[int, int | None]:
        """Count the customers waiting in these categories and the longest wait (s)."""
        heads = tickets.lines(self.r, self.branch).category_heads(categories)
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

