"""A branch day, run event by event on a simulated clock through the domain code the services run.

Customers take tickets (`tickets.take`, the issue script), tellers call, recall, complete, mark no-shows,
pause, resume, open and close (`desk.Desk`, the same Lua scripts, routing, redirects and wait limits), the
watch pages what it finds (`watch`, `supervision`), pages are made, escalate and are acknowledged (`pages`), all
on a private Redis, at the moments the scenario gives. Nothing sleeps: the clock jumps from one event to the
next.

How the people behave:
- a teller calls the next customer the moment the last one is done, and an idle teller the moment a customer
  it may call arrives (the one idle longest first);
- a planned pause or a closing waits for the customer being served; a resumed or opened counter calls at once;
- a customer who is absent is called again after `recall_after_s`, `recalls` times, then marked a no-show;
- the manager whose device a page reaches (the first, escalating on) acknowledges it after a random time.

The watch runs at the moments a finding can begin (a VIP ticket reaching the threshold, a line reaching the
wait alert, a service reaching its long-service time, a pause reaching its expected end) and, while an incident
is open, after every call; page timers fire when due. The kiosk's screen, the terminals' and the devices' live
streams have nobody watching, so only what they would be sent from is written.
"""

from __future__ import annotations

import heapq
import itertools
import random
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime

import redis

from services.domain import keys, pages, supervision, tickets, watch
from services.domain.branch import Branch
from services.domain.clock import Clock, business_day, to_ms
from services.domain.contracts import INFORMATION, PageRequest
from services.domain.counters import CLOSED, OPEN, PAUSED
from services.domain.desk import Desk
from services.domain.presence import Paged
from services.simulate.draws import Customer, customers, mean_service_ms
from services.simulate.scenario import PlannedPause, Scenario

# Past closing, the day stops this long after, whatever still runs (a pause never resumed, say).
OVERTIME_MS = 6 * 3_600_000
# While an incident is open, calls may end it: the watch looks again this long after its last look, at most.
RECHECK_MS = 5_000


class SimClock(Clock):
    """A clock the simulation moves: `now` is whatever moment it was set to."""

    def __init__(self, ms: int):
        self.ms = ms

    def now(self) -> datetime:
        return datetime.fromtimestamp(self.ms / 1000, UTC)

    def now_ms(self) -> int:
        return self.ms


@dataclass
class TicketRecord:
    """One ticket's day: when issued, what it was told, what the best knowable estimate was, when called."""

    number: str
    category: str
    issued_ms: int
    estimate_s: int | None
    best_s: float | None
    called_ms: int | None = None
    counter: str | None = None

    @property
    def waited_s(self) -> float | None:
        return None if self.called_ms is None else (self.called_ms - self.issued_ms) / 1000


@dataclass
class Teller:
    """A counter as the simulation runs it: what the teller does next."""

    id: str
    status: str = OPEN
    serving: str | None = None
    idle_since: int | None = 0
    then: PlannedPause | str | None = None  # a pause, or "close", once the customer served is done
    recalls: int = 0


@dataclass
class Day:
    """What happened: every ticket, every call, each counter's idle spells and pauses, and the Redis it is in."""

    branch: Branch
    scenario: Scenario
    day: str
    start_ms: int
    closes_ms: int
    end_ms: int
    tickets: dict[str, TicketRecord] = field(default_factory=dict)
    calls: list[tuple[int, str, str]] = field(default_factory=list)  # ms, counter, number
    idle: dict[str, list[tuple[int, int]]] = field(default_factory=dict)  # counter → [from, to) while open
    pauses: list[tuple[str, int, int]] = field(default_factory=list)  # counter, from, to
    pages_made: int = 0
    skipped: list[str] = field(default_factory=list)  # what the scenario planned that could not happen, said


class Simulation:
    """One scenario's day on one branch, on a Redis of its own (it must hold nothing of that branch)."""

    def __init__(self, r: redis.Redis, branch: Branch, scenario: Scenario):
        self.r = r
        self.branch = branch
        self.scenario = scenario
        self.rng = random.Random(f"{scenario.seed}:managers")
        opens = scenario.at(scenario.opens).replace(tzinfo=branch.zone)
        closes = scenario.at(scenario.closes).replace(tzinfo=branch.zone)
        self.start_ms, self.closes_ms = to_ms(opens), to_ms(closes)
        self.clock = SimClock(self.start_ms)
        self.day = business_day(branch, opens)
        self.customers = customers(scenario, branch, self.start_ms)
        self.mean_ms = mean_service_ms(scenario, branch)
        self.tellers = {c.id: Teller(c.id, idle_since=self.start_ms) for c in branch.counters}
        self.desks = {c.id: Desk(r, branch, c.id, self.clock, tell_terminal=False) for c in branch.counters}
        self.record = Day(branch, scenario, self.day, self.start_ms, self.closes_ms, self.start_ms,
                          idle={c.id: [] for c in branch.counters})
        self._events: list[tuple[int, int, str, object]] = []
        self._order = itertools.count()
        self._checks: set[tuple[int, tuple[object, ...] | None]] = set()
        self._timer_at: int | None = None
        self._incidents = 0
        self._last_check = 0
        self._arrived = 0
        self._staffed: set[str] | None = None  # the counters the staffing plan wants open now (None: every one)
        self._by_number: dict[str, Customer] = {}
        self._first_manager = [Paged(manager=branch.managers[0].id, live=True)]

    # Running

    def run(self, progress: Callable[[int, int], None] | None = None) -> Day:
        """Run the day to its end; call progress(customers arrived, customers) as it goes."""
        for i, customer in enumerate(self.customers):
            self._at(customer.at_ms, "arrive", i)
        for plan in self.scenario.counters_open:
            self._at(max(self.start_ms, self._local_ms(plan.from_)), "staff", plan.counters)
        for pause in self.scenario.pauses:
            self._at(self._local_ms(pause.at), "pause", pause)
        handlers: dict[str, Callable[[object], None]] = {
            "arrive": self._arrive, "done": self._done, "recall": self._recall, "no_show": self._no_show,
            "pause": self._pause, "resume": self._resume, "staff": self._staff, "check": self._check,
            "timer": self._timer, "ack": self._ack,
        }
        stop = self.closes_ms + OVERTIME_MS
        while self._events:
            ms, _, kind, arg = heapq.heappop(self._events)
            if ms > stop:
                break
            self.clock.ms = max(self.clock.ms, ms)
            handlers[kind](arg)
            if kind == "arrive" and progress is not None:
                progress(self._arrived, len(self.customers))
        for teller in self.tellers.values():
            self._busy(teller)  # close the idle spells still open
        self.record.end_ms = self.clock.ms
        return self.record

    def _at(self, ms: int, kind: str, arg: object = None) -> None:
        heapq.heappush(self._events, (ms, next(self._order), kind, arg))

    def _local_ms(self, clock: str) -> int:
        return to_ms(self.scenario.at(clock).replace(tzinfo=self.branch.zone))

    # Customers

    def _arrive(self, index: object) -> None:
        assert isinstance(index, int)
        customer = self.customers[index]
        self._arrived += 1
        category = self.branch.category(customer.category)
        assert category is not None
        ticket, seen = tickets.issue(self.r, self.branch, category, clock=self.clock)
        calling = seen.calling(category.id)
        self.record.tickets[ticket.number] = TicketRecord(
            number=ticket.number, category=category.id, issued_ms=self.clock.ms,
            estimate_s=ticket.estimated_wait_s, best_s=self._best_s(category.id, ticket.position or 1, calling))
        self._by_number[ticket.number] = customer
        waiting = ("waiting", ticket.number)
        if category.vip:
            self._check_at(self.clock.ms + int(self.branch.vip_wait_threshold_minutes * 60_000), waiting)
        if self.branch.wait_alert_minutes:
            self._check_at(self.clock.ms + int(self.branch.wait_alert_minutes * 60_000), waiting)
        idle = [self.tellers[c] for c in calling if self._idle(self.tellers[c])]
        if idle:
            self._call(min(idle, key=lambda t: t.idle_since or 0))

    def _best_s(self, category: str, position: int, calling: list[str]) -> float | None:
        """The best estimate knowable at issue: 0 with a counter free for it; else position × the true mean
        service ÷ the counters calling its category."""
        if not calling:
            return None
        if any(self._idle(self.tellers[c]) for c in calling):
            return 0.0
        return position * self.mean_ms[category] / 1000 / len(calling)

    # Tellers

    def _idle(self, teller: Teller) -> bool:
        return teller.status == OPEN and teller.serving is None

    def _busy(self, teller: Teller) -> None:
        if teller.idle_since is not None:
            if self.clock.ms > teller.idle_since:
                self.record.idle[teller.id].append((teller.idle_since, self.clock.ms))
            teller.idle_since = None

    def _call(self, teller: Teller) -> None:
        """The teller presses call next: the customer served (if any) is done, and the next one called."""
        desk = self.desks[teller.id]
        ticket = desk.call_next()
        desk.messages.clear()  # the lobby screen has nobody to tell
        teller.serving, teller.recalls = None, 0
        if ticket is None:
            if teller.idle_since is None:
                teller.idle_since = self.clock.ms
            return
        self._busy(teller)
        teller.serving = ticket.number
        record = self.record.tickets[ticket.number]
        record.called_ms, record.counter = self.clock.ms, teller.id
        self.record.calls.append((self.clock.ms, teller.id, ticket.number))
        customer = self._by_number[ticket.number]
        if customer.absent:
            self._at(self.clock.ms + int(self.scenario.tellers.recall_after_s * 1000), "recall", teller.id)
        else:
            self._at(self.clock.ms + customer.service_ms, "done", teller.id)
        category = self.branch.category(ticket.category)
        assert category is not None
        self._check_at(self.clock.ms + category.long_service_ms + 1, ("serving", teller.id, ticket.number))
        if self._incidents:  # a call may end one: look again soon, once for a burst of calls
            self._check_at(max(self.clock.ms, self._last_check + RECHECK_MS))

    def _done(self, counter: object) -> None:
        teller = self.tellers[str(counter)]
        if teller.then is None:
            self._call(teller)
            return
        self.desks[teller.id].finish("served")
        self._after_customer(teller)

    def _recall(self, counter: object) -> None:
        teller = self.tellers[str(counter)]
        if teller.recalls >= self.scenario.tellers.recalls:
            self._no_show(counter)
            return
        desk = self.desks[teller.id]
        desk.recall()
        desk.messages.clear()
        teller.recalls += 1
        kind = "recall" if teller.recalls < self.scenario.tellers.recalls else "no_show"
        self._at(self.clock.ms + int(self.scenario.tellers.recall_after_s * 1000), kind, teller.id)

    def _no_show(self, counter: object) -> None:
        teller = self.tellers[str(counter)]
        self.desks[teller.id].finish("no_show")
        self._after_customer(teller)

    def _after_customer(self, teller: Teller) -> None:
        """The customer served has left: do what was planned for then, else call the next."""
        teller.serving, teller.recalls = None, 0
        planned, teller.then = teller.then, None
        if isinstance(planned, PlannedPause):
            self._start_pause(teller, planned)
        elif planned == "close":
            self._close(teller)
        else:
            self._call(teller)

    # Pauses, openings and closings

    def _pause(self, plan: object) -> None:
        assert isinstance(plan, PlannedPause)
        teller = self.tellers[plan.counter]
        if teller.status != OPEN or isinstance(teller.then, PlannedPause):
            self.record.skipped.append(f"the pause of counter {plan.counter} at {plan.at} did not happen: the "
                                       f"counter was {'about to pause' if teller.status == OPEN else teller.status}")
            return
        if teller.serving is not None:
            teller.then = plan
            return
        self._start_pause(teller, plan)

    def _start_pause(self, teller: Teller, plan: PlannedPause) -> None:
        self._busy(teller)
        desk = self.desks[teller.id]
        desk.pause(plan.reason, plan.expected_minutes, plan.note)
        desk.messages.clear()
        teller.status = PAUSED
        self.record.pauses.append((teller.id, self.clock.ms, self.clock.ms + int(plan.actual_minutes * 60_000)))
        self._at(self.clock.ms + int(plan.actual_minutes * 60_000), "resume", teller.id)
        self._check_at(self.clock.ms + plan.expected_minutes * 60_000 + 1, ("paused", teller.id, self.clock.ms))
        self._deliver()
        self._call_idle()  # the redirect may give an idle counter customers

    def _resume(self, counter: object) -> None:
        teller = self.tellers[str(counter)]
        desk = self.desks[teller.id]
        desk.resume()
        desk.messages.clear()
        teller.status = OPEN
        teller.idle_since = self.clock.ms
        self._deliver()
        if self._staffed is not None and teller.id not in self._staffed:
            self._close(teller)  # its teller was due off while away
        else:
            self._call(teller)

    def _staff(self, wanted: object) -> None:
        assert isinstance(wanted, list)
        self._staffed = set(wanted)
        for teller in self.tellers.values():
            if teller.id in wanted and teller.status == CLOSED:
                desk = self.desks[teller.id]
                desk.open()
                desk.messages.clear()
                teller.status, teller.idle_since = OPEN, self.clock.ms
                self._call(teller)
            elif teller.id not in wanted and teller.status == OPEN:
                if teller.serving is None:
                    self._close(teller)
                elif not isinstance(teller.then, PlannedPause):
                    teller.then = "close"
        self._call_idle()

    def _close(self, teller: Teller) -> None:
        self._busy(teller)
        desk = self.desks[teller.id]
        desk.close()
        desk.messages.clear()
        teller.status = CLOSED

    def _call_idle(self) -> None:
        for teller in sorted(self.tellers.values(), key=lambda t: t.idle_since or 0):
            if self._idle(teller):
                self._call(teller)

    # The watch and the pages

    def _check_at(self, ms: int, still: tuple[object, ...] | None = None) -> None:
        """Have the watch look at a moment, if what may be found then (`still`) still holds."""
        if (ms, still) not in self._checks:
            self._checks.add((ms, still))
            self._at(ms, "check", (ms, still))

    def _holds(self, still: tuple[object, ...] | None) -> bool:
        """Whether what a look was planned for still holds: a ticket waits, a counter serves it, a pause runs."""
        if still is None:
            return True
        if still[0] == "waiting":
            return self.record.tickets[str(still[1])].called_ms is None
        if still[0] == "serving":
            return self.tellers[str(still[1])].serving == still[2]
        teller = self.tellers[str(still[1])]
        return teller.status == PAUSED and any(c == teller.id and start == still[2]
                                               for c, start, _ in self.record.pauses)

    def _check(self, planned: object) -> None:
        if planned is not None:
            assert isinstance(planned, tuple)
            self._checks.discard(planned)
            if not self._holds(planned[1]):
                return
        self._last_check = self.clock.ms
        watch.pause_overruns(self.r, self.branch, self.clock)
        watch.vip_waits(self.r, self.branch, self.clock)
        paged, cleared = supervision.check(self.r, self.branch, self.clock)
        self._incidents += paged - cleared
        self._deliver()

    def _deliver(self) -> None:
        """Make the pages of the alerts staged (the pager's intake), and have their managers answer in time."""
        staged = self.r.hgetall(keys.outbox(self.branch.id))
        for raw in sorted(staged.values()):
            request = PageRequest.model_validate_json(raw)
            page, outcome = pages.create(self.r, self.branch, request, self.clock, self._first_manager)
            if outcome == "created":
                self.record.pages_made += 1
                if page.priority != INFORMATION and self.scenario.managers.responds:
                    delay = self.rng.expovariate(1 / (self.scenario.managers.response_mean_s * 1000))
                    self._at(self.clock.ms + int(delay), "ack", page.id)
        if staged:
            self._next_timer()

    def _next_timer(self) -> None:
        due = self.r.zrange(keys.timers(self.branch.id), 0, 0, withscores=True)
        if due and (self._timer_at is None or int(due[0][1]) < self._timer_at):
            self._timer_at = int(due[0][1])
            self._at(self._timer_at, "timer")

    def _timer(self, _: object) -> None:
        self._timer_at = None
        pages.fire_due(self.r, [self.branch], self.clock)
        self._next_timer()

    def _ack(self, page_id: object) -> None:
        page = pages.get(self.r, self.branch.id, str(page_id))
        if page.status != pages.OPEN:
            return  # cleared by the system first
        manager = self.branch.managers[min(page.escalation_level, len(self.branch.managers) - 1)]
        pages.acknowledge(self.r, self.branch, page.id, manager, clock=self.clock)


def run(r: redis.Redis, branch: Branch, scenario: Scenario,
        progress: Callable[[int, int], None] | None = None) -> Day:
    """Run a scenario's day on a branch, on an empty Redis."""
    return Simulation(r, branch, scenario).run(progress)

