"""What a teller does at a counter: call, recall, finish, transfer, pause and resume, open and close.

Pausing follows the branch's first rule: the lobby manager is paged with the reason, the expected
minutes and how many VIP customers wait (and for how long), and the paused counter's customers are
redirected to its partner window, which calls them first until the counter resumes.
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from typing import Any

import redis

from services.domain import alerts, counters, feeds, keys, once, pages, tickets
from services.domain.branch import Branch
from services.domain.clock import SYSTEM, Clock, business_day, local_iso, parse_iso, to_ms
from services.domain.contracts import (
    SCREEN_CHANGED,
    TICKET_CALLED,
    JobSpec,
    PageKind,
    Payload,
    Priority,
    ScreenChanged,
    TicketCalled,
)
from services.domain.counters import CLOSED, OPEN, PAUSED, RedirectRule
from services.domain.durable import replicated
from services.domain.errors import Conflict, Unprocessable
from services.domain.lines import CounterNotOpen, Finished, NotServing, OldTicket, RecallLimit
from services.domain.once import Once
from services.domain.schemas import Counter, Pause, Ticket


class Desk:
    """One counter of one branch, as its terminal sees it.

    What the lobby screen must hear of its actions (a ticket called, a pause, a transfer) collects in `messages`,
    for the caller to send (the counter service enqueues them for the kiosk, contracts.py item 3).
    """

    def __init__(self, r: redis.Redis, branch: Branch, counter_id: str, clock: Clock = SYSTEM, *,
                 tell_terminal: bool = True):
        self.r = r
        self.branch = branch
        counter = branch.counter(counter_id)
        assert counter is not None, "the API checks the counter exists"
        self.config = counter
        self.id = counter_id
        self.clock = clock
        # A simulated day has no terminal to tell what its counter looks like after each action.
        self.tell_terminal = tell_terminal
        self.messages: list[tuple[JobSpec, Payload]] = []

    def _reader(self, day: str | None = None) -> tickets.TicketReader:
        return tickets.TicketReader(self.r, self.branch, day or business_day(self.branch, self.clock.now()))

    # Reading

    def view(self) -> Counter:
        reader = self._reader()  # reads every counter's state and the redirects
        state = reader.states[self.id]
        pause = None
        if state.pause:
            pause = Pause(**{k: state.pause.get(k) for k in ("reason", "note", "expected_minutes", "since", "until")},
                          overrun=bool(state.pause.get("overrun_alert_id")))
        serving = None
        if state.serving:
            day_reader = reader if state.serving_day in (None, reader.lines.day) else self._reader(state.serving_day)
            serving = day_reader.get(state.serving)
        order = counters.call_order(self.branch, self.id, reader.targets)
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

    def call_next(self, once_: Once | None = None) -> Ticket | None:
        moment = self.clock.now()
        day_lines = tickets.lines(self.r, self.branch, business_day(self.branch, moment))
        pipe = self.r.pipeline(transaction=False)
        counters.queue_routing_state(pipe, self.branch)
        states, rules = counters.routing_state(self.branch, iter(pipe.execute()))
        targets = counters.redirect_targets(self.branch, states, rules)
        lanes = counters.routing(self.branch, self.id, targets, day_lines)
        try:
            called = day_lines.call_next(self.id, self.config.window, lanes, local_iso(self.branch, moment),
                                         to_ms(moment), weighted=bool(self.config.weights), once_=once_)
        except CounterNotOpen as exc:
            state = counters.load(self.r, self.branch, self.id)
            raise Conflict(f"counter {self.id} is {state.status}; open or resume it before calling",
                           code=f"counter_{state.status}") from exc
        if called is not None and called.cleared:
            pages.clear(self.r, self.branch, [called.cleared], self.clock)  # its long wait was paged: that is over
        # The states read before the call serve to read the ticket called: a called ticket has no place in a
        # line, so neither its estimate nor a redirect (what they would change) is read.
        reader = tickets.TicketReader(self.r, self.branch, day_lines.day, states=states, rules=rules, clock=self.clock)
        ticket = reader.get(called.number) if called else None
        if ticket is not None:
            self._announce(ticket, recall=False)
        self._counter_changed()
        return ticket

    def recall(self, once_: Once | None = None) -> Ticket:
        """Call the current ticket again, at most the branch's recall_limit times."""
        try:
            moment = self.clock.now()
            current = tickets.lines(self.r, self.branch, business_day(self.branch, moment)).recall(
                self.id, self.branch.recall_limit, local_iso(self.branch, moment), once_)
        except NotServing as exc:
            raise Conflict(f"counter {self.id} has no ticket to recall", code="not_serving") from exc
        except RecallLimit as exc:
            raise Conflict(f"this ticket was called again {self.branch.recall_limit} times already; "
                           "mark it no-show or complete it", code="recall_limit") from exc
        ticket = self._read(current)
        self._announce(ticket, recall=True)
        self._counter_changed()
        return ticket

    def finish(self, status: str, once_: Once | None = None) -> Ticket:
        """End the current ticket as served or no_show."""
        moment = self.clock.now()
        finished = tickets.lines(self.r, self.branch, business_day(self.branch, moment)).finish(
            self.id, status, local_iso(self.branch, moment), to_ms(moment), once_)
        if finished is None:
            raise Conflict(f"counter {self.id} is not serving a ticket", code="not_serving")
        ticket = self._read(finished)
        self._counter_changed()
        return ticket

    def transfer(self, *, category: str | None = None, to_counter: str | None = None,
                 once_: Once | None = None) -> Ticket:
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
        moment = self.clock.now()
        day_lines = tickets.lines(self.r, self.branch, business_day(self.branch, moment))
        try:
            number = day_lines.transfer(self.id, local_iso(self.branch, moment), category=category,
                                        to_counter=to_counter, once_=once_)
        except NotServing as exc:
            raise Conflict(f"counter {self.id} has no ticket to transfer", code="not_serving") from exc
        except OldTicket as exc:
            raise Conflict("this ticket is from an earlier day; complete it or mark it no-show",
                           code="old_ticket") from exc
        ticket = self._reader(day_lines.day).get(number)
        assert ticket is not None
        self._screen_changed("transfer")
        self._counter_changed()
        if to_counter is not None:
            Desk(self.r, self.branch, to_counter, self.clock, tell_terminal=self.tell_terminal)._counter_changed()
        return ticket

    def _read(self, finished: Finished) -> Ticket:
        ticket = self._reader(finished.day).get(finished.number)
        assert ticket is not None, "a counter only serves tickets that exist"
        return ticket

    def _announce(self, ticket: Ticket, *, recall: bool) -> None:
        self.messages.append((TICKET_CALLED, TicketCalled(
            branch=self.branch.id, number=ticket.number, category=ticket.category, counter=self.id,
            window=self.config.window, called_at=ticket.called_at or local_iso(self.branch, self.clock.now()),
            recall=recall,
        )))

    # Opening and closing

    def close(self, once_: Once | None = None) -> Counter:
        """Close the counter: it takes no calls and leaves the estimates; its redirect, if any, applies."""
        since = local_iso(self.branch, self.clock.now())

        def write(pipe: redis.client.Pipeline) -> None:
            if once.kept(pipe, once_) is not once.MISSING:
                return
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
            once.keep(pipe, once_, CLOSED)

        self.r.transaction(write, keys.counter(self.branch.id, self.id))
        self._screen_changed("close")
        self._counter_changed()
        return self.view()

    def open(self, once_: Once | None = None) -> Counter:
        """Open a closed counter: it calls again and counts in the estimates."""

        def write(pipe: redis.client.Pipeline) -> None:
            if once.kept(pipe, once_) is not once.MISSING:
                return
            status = pipe.hget(keys.counter(self.branch.id, self.id), "status") or OPEN
            if status != CLOSED:
                raise Conflict(f"counter {self.id} is {status}, not closed", code=f"counter_{status}")
            pipe.multi()
            pipe.hset(keys.counter(self.branch.id, self.id), "status", OPEN)
            pipe.hdel(keys.counter(self.branch.id, self.id), "closed_at")
            self._unredirect(pipe)
            once.keep(pipe, once_, OPEN)

        self.r.transaction(write, keys.counter(self.branch.id, self.id))
        self._screen_changed("open")
        self._counter_changed()
        return self.view()

    def _redirect(self, pipe: redis.client.Pipeline, since: str, reason: str) -> None:
        """Send this counter's categories to its partner window first (rule 1), if it has one.

        The rule names the partner; which open counter takes them at any moment is decided when read
        (counters.redirect_targets), so a partner that pauses too hands them on rather than hiding them.
        """
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

    def _redirect_window(self, since: str) -> str | None:
        """Return the window this counter's customers go to while it pauses (None: none is open for them)."""
        if self.config.pause_redirect is None:
            return None
        states = counters.load_all(self.r, self.branch)
        rules = {c: RedirectRule(category=c, from_counter=self.id, to_counter=self.config.pause_redirect,
                                 window="", since=since) for c in self.config.serves}
        targets = counters.redirect_targets(self.branch, states, rules)
        found = next((t for t in (targets[c] for c in self.config.serves) if t), None)
        counter = self.branch.counter(found) if found else None
        return counter.window if counter else None

    # Pausing (rule 1)

    def pause(self, reason: str, expected_minutes: int, note: str | None, once_: Once | None = None) -> Counter:
        """Pause the counter: page the lobby manager with what waits here, and redirect its customers."""
        reason_cfg = self.branch.pause_reason(reason)
        if reason_cfg is None:
            raise Unprocessable(f"unknown pause reason {reason!r}; this branch has "
                                f"{', '.join(r.id for r in self.branch.pause_reasons)}", code="unknown_reason")
        moment = self.clock.now()
        since = local_iso(self.branch, moment)
        until = local_iso(self.branch, moment + timedelta(minutes=expected_minutes))
        own = self.config.serves
        lines_here = self._waiting_per_category(moment, own)
        waiting = sum(n for n, _ in lines_here.values())
        longest_s = max((s for _, s in lines_here.values() if s is not None), default=None)
        vip = [c.id for c in self.branch.categories if c.vip and c.id in own]
        vip_waiting = sum(lines_here[c][0] for c in vip)
        longest_vip_s = max((lines_here[c][1] for c in vip if lines_here[c][1] is not None), default=None)
        redirect_window = self._redirect_window(since)
        details: dict[str, Any] = {
            "reason": reason, "reason_name": reason_cfg.name, "reason_name_en": reason_cfg.name_en,
            "expected_minutes": expected_minutes, "note": note,
            # Only the lines this counter calls: a corporate counter's pause says nothing of the VIP line.
            "vip_waiting": vip_waiting, "longest_vip_wait_s": longest_vip_s,
            "waiting": waiting, "longest_wait_s": longest_s,
            "lines": [{"category": c, "waiting": n, "longest_wait_s": s} for c, (n, s) in lines_here.items()],
            "since": since, "until": until,
            "redirect_window": redirect_window,
            "no_redirect": self.config.pause_redirect is not None and redirect_window is None,
        }
        request = alerts.page_request(
            self.branch, self.id, PageKind.PAUSE, Priority.HIGH if waiting else Priority.NORMAL,
            _pause_message(self.branch, self.config.window, reason_cfg.name, expected_minutes, lines_here,
                           redirect_window, self.config.pause_redirect is not None),
            details, moment,
        )
        pause = {"reason": reason, "note": note, "expected_minutes": expected_minutes, "since": since,
                 "until": until, "alert_id": request.alert_id}

        def write(pipe: redis.client.Pipeline) -> None:
            if once.kept(pipe, once_) is not once.MISSING:
                return
            status = pipe.hget(keys.counter(self.branch.id, self.id), "status") or OPEN
            if status != OPEN:
                raise Conflict(f"counter {self.id} is already {status}", code=f"counter_{status}")
            pipe.multi()
            pipe.hset(keys.counter(self.branch.id, self.id), mapping={"status": PAUSED,
                                                                       "pause": json.dumps(pause)})
            self._redirect(pipe, since, counters.REDIRECT_REASON)
            alerts.stage(pipe, request)
            once.keep(pipe, once_, request.alert_id)

        self.r.transaction(write, keys.counter(self.branch.id, self.id))
        replicated(self.r)
        self._screen_changed("pause")
        self._counter_changed()
        return self.view()

    def resume(self, once_: Once | None = None) -> Counter:
        """Resume the counter: the redirect ends, the pause's pages are cleared, and the manager is told."""
        moment = self.clock.now()

        def write(pipe: redis.client.Pipeline) -> None:
            if once.kept(pipe, once_) is not once.MISSING:
                return
            raw = pipe.hgetall(keys.counter(self.branch.id, self.id))
            if (raw.get("status") or OPEN) != PAUSED:
                raise Conflict(f"counter {self.id} is not paused", code="not_paused")
            pause = json.loads(raw["pause"])
            # The pause and its overrun are over: their pages are cleared in this same transaction.
            ended = [a for a in (pause.get("alert_id"), pause.get("overrun_alert_id")) if a]
            open_pages = pages.watch_for_clear(pipe, self.branch, ended)
            paused_s = int((moment - parse_iso(pause["since"])).total_seconds())
            request = alerts.page_request(
                self.branch, self.id, PageKind.RESUME, Priority.LOW,
                f"{self.config.window} 窗口恢复服务（暂停 {max(1, round(paused_s / 60))} 分钟，"
                f"预计 {pause['expected_minutes']} 分钟）",
                {"reason": pause["reason"], "expected_minutes": pause["expected_minutes"],
                 "paused_s": paused_s, "pause_alert_id": pause.get("alert_id")},
                moment,
            )
            record = {"counter": self.id, "window": self.config.window, "reason": pause["reason"],
                      "note": pause.get("note"), "expected_minutes": pause["expected_minutes"],
                      "since": pause["since"], "resumed_at": local_iso(self.branch, moment),
                      "actual_s": paused_s, "alert_id": pause.get("alert_id")}
            pipe.multi()
            day = business_day(self.branch, moment)
            day_pauses = keys.pauses(self.branch.id, day)
            pipe.rpush(day_pauses, json.dumps(record))
            pipe.expire(day_pauses, self.branch.history_ttl_s)
            pipe.sadd(keys.days(self.branch.id), day)  # the day a pause ended is closed and archived like any
            pipe.hset(keys.counter(self.branch.id, self.id), "status", OPEN)
            pipe.hdel(keys.counter(self.branch.id, self.id), "pause")
            self._unredirect(pipe)
            pages.queue_clear(pipe, self.branch, ended, open_pages, "resumed", moment)
            alerts.stage(pipe, request)
            once.keep(pipe, once_, request.alert_id)

        self.r.transaction(write, keys.counter(self.branch.id, self.id))
        replicated(self.r)
        self._screen_changed("resume")
        self._counter_changed()
        return self.view()

    def _waiting_per_category(self, moment: datetime, categories: list[str]) -> dict[str, tuple[int, int | None]]:
        """Return, per category, how many wait and the longest wait (s)."""
        heads = tickets.lines(self.r, self.branch, business_day(self.branch, moment)).category_heads(categories)
        return {c: (h.count, int(moment.timestamp() - h.oldest_ms / 1000) if h.oldest_ms is not None else None)
                for c, h in heads.items()}

    # Telling others

    def _screen_changed(self, reason: str) -> None:
        self.messages.append((SCREEN_CHANGED, ScreenChanged(branch=self.branch.id, reason=reason)))

    def _counter_changed(self) -> None:
        if not self.tell_terminal:
            return
        feeds.append(self.r, self.branch, keys.terminal(self.id), alerts.COUNTER_EVENT,
                     {"counter": self.view().model_dump(mode="json")})


def _pause_message(branch: Branch, window: str, reason: str, minutes: int,
                   lines_here: dict[str, tuple[int, int | None]], redirect: str | None, redirects: bool) -> str:
    """Say a pause in one line: the reason and minutes, who waits in this counter's own lines, where they go."""
    text = f"{window} 窗口暂停：{reason}，约 {minutes} 分钟"
    waiting = {c: (n, s) for c, (n, s) in lines_here.items() if n}
    if waiting:
        names = {c.id: c.name for c in branch.categories}
        parts = [f"{names.get(c, c)} {n} 位" for c, (n, _) in waiting.items()]
        longest = max((s or 0) for _, s in waiting.values())
        text += f"；{'、'.join(parts)}客户等候，最长已等 {max(1, round(longest / 60))} 分钟"
    else:
        text += "；暂无客户等候"
    if redirect:
        text += f"；请引导至 {redirect} 号窗口" if redirect.isdigit() else f"；请引导至 {redirect} 窗口"
    elif redirects:
        text += "；可接待的窗口均未开放，请安排接待"
    return text
