"""Property tests of the waiting lines: random days of issue, call, recall, no-show, transfer, pause and resume.

Whatever the sequence: no ticket is called by two counters, none is lost, each line is first in first
out, a ticket past the wait limit is called before any other, and weights hold over long runs.
"""

from __future__ import annotations

import json
from datetime import datetime
from zoneinfo import ZoneInfo

from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule, run_state_machine_as_test

from services.domain import clock, counters, keys, tickets
from services.domain.desk import Desk
from services.domain.errors import Conflict, Unprocessable
from services.domain.lines import EstimateTerms, Lane, Lines
from services.domain.scripts import run
from tests.conftest import BLEND, FakeClock, issue, today_at_nine

# The counters whose routing mixes lines: the VIP counter, counter 1 (VIP and personal, weighted 2:1),
# counter 3 (personal, and VIP while the VIP counter pauses); counter 4 only takes transfers here.
COUNTERS = ["vip", "1", "3"]
TARGETS = ["vip", "1", "3", "4"]
CATEGORIES = ["vip", "personal", "corporate"]
DONE = {"served", "no_show"}

# A moment of the day the estimate test's tickets are issued on.
FIXED = FakeClock(datetime(2026, 11, 28, 10, 0, tzinfo=ZoneInfo("Asia/Shanghai")))
# Lines filled by hand, with no counter to estimate a wait from.
NO_COUNTERS = EstimateTerms(prior_s=60.0, prior_n=3, counters=())


def _wipe(r, branch_id: str) -> None:
    for key in r.scan_iter(f"{keys.branch(branch_id)}:*", count=1000):
        r.delete(key)


def test_random_days_keep_every_promise_of_the_lines(r, blend_branch, fake_clock):
    branch = blend_branch

    class Day(RuleBasedStateMachine):
        def __init__(self) -> None:
            super().__init__()
            _wipe(r, BLEND)
            fake_clock.moment = today_at_nine()
            self.issued: set[str] = set()

        def lines(self) -> Lines:
            return tickets.TicketReader(r, branch).lines

        @initialize(arrivals=st.lists(st.tuples(st.sampled_from(CATEGORIES[:2]), st.integers(0, 5 * 60)),
                                      min_size=3, max_size=25))
        def morning(self, arrivals: list[tuple[str, int]]) -> None:
            for category, gap_s in arrivals:
                fake_clock.advance(gap_s)
                self.issue(category, 1)

        @rule(category=st.sampled_from(CATEGORIES), count=st.integers(1, 4))
        def issue(self, category: str, count: int) -> None:
            for _ in range(count):
                self.issued.add(issue(r, branch, branch.category(category)))

        @rule(seconds=st.integers(0, 15 * 60))  # 40 steps stay within one business day
        def time_passes(self, seconds: int) -> None:
            fake_clock.advance(seconds)

        @rule(counter=st.sampled_from(COUNTERS))
        def call_next(self, counter: str) -> None:
            status = counters.load(r, branch, counter).status
            allowed = self._allowed_next(counter)
            try:
                ticket = Desk(r, branch, counter).call_next()
            except Conflict:
                assert status != counters.OPEN, "only a paused or closed counter refuses to call"
                return
            assert status == counters.OPEN
            number = ticket.number if ticket else None
            assert number in allowed, f"{counter} called {number}, routing allows {allowed}"

        def _allowed_next(self, counter: str) -> set[str | None]:
            """Return what the routing rules allow this counter to call next (several only for weights)."""
            day_lines = self.lines()
            targets = counters.redirect_targets(branch, counters.load_all(r, branch), counters.redirects(r, branch))
            assert all(counters.load(r, branch, t).status == counters.OPEN for t in targets.values() if t), \
                "a redirect never sends customers to a counter that is not open"
            lanes = counters.routing(branch, counter, targets, day_lines)
            heads = []
            for lane in lanes:
                head = r.zrange(lane.key, 0, 0, withscores=True)
                if head:
                    heads.append((lane, head[0][0], head[0][1]))
            if not heads:
                return {None}
            now_ms = clock.SYSTEM.now_ms()
            overdue = [(score, number) for lane, number, score in heads
                       if lane.wait_limit_ms and now_ms - score >= lane.wait_limit_ms]
            if overdue:
                event(f"overdue among {len(heads)} lanes")
                oldest = min(score for score, _ in overdue)
                return {number for score, number in overdue if score == oldest}
            first = [number for lane, number, _ in heads if lane.priority]
            if first:
                return {first[0]}
            if branch.counter(counter).weights:
                return {number for _, number, _ in heads}
            return {heads[0][1]}

        @rule(counter=st.sampled_from(COUNTERS))
        def recall(self, counter: str) -> None:
            serving = counters.load(r, branch, counter).serving
            try:
                assert Desk(r, branch, counter).recall().number == serving
            except Conflict as exc:
                assert exc.code in {"not_serving", "recall_limit"}
                assert serving is None or exc.code == "recall_limit"

        @rule(counter=st.sampled_from(COUNTERS), status=st.sampled_from(["served", "no_show"]))
        def finish(self, counter: str, status: str) -> None:
            serving = counters.load(r, branch, counter).serving
            try:
                ticket = Desk(r, branch, counter).finish(status)
            except Conflict:
                assert serving is None
                return
            assert (ticket.number, ticket.status) == (serving, status)

        @rule(counter=st.sampled_from(COUNTERS),
              where=st.one_of(st.sampled_from(CATEGORIES).map(lambda c: {"category": c}),
                               st.sampled_from(TARGETS).map(lambda c: {"to_counter": c})))
        def transfer(self, counter: str, where: dict[str, str]) -> None:
            serving = counters.load(r, branch, counter).serving
            try:
                ticket = Desk(r, branch, counter).transfer(**where)
            except (Conflict, Unprocessable):
                return
            assert ticket.number == serving and ticket.status == "waiting"

        @rule(counter=st.sampled_from(COUNTERS), reason=st.sampled_from(["vault_transfer", "review", "break"]))
        def pause(self, counter: str, reason: str) -> None:
            try:
                Desk(r, branch, counter).pause(reason, 10, None)
            except Conflict:
                assert counters.load(r, branch, counter).status != counters.OPEN

        @rule(counter=st.sampled_from(COUNTERS))
        def resume(self, counter: str) -> None:
            try:
                Desk(r, branch, counter).resume()
            except Conflict:
                assert counters.load(r, branch, counter).status != counters.PAUSED

        @invariant()
        def every_ticket_is_in_exactly_one_place(self) -> None:
            day_lines = self.lines()
            line_keys = [day_lines.key(c) for c in CATEGORIES] + [day_lines.counter_key(c) for c in TARGETS]
            pipe = r.pipeline(transaction=False)
            for key in line_keys:
                pipe.zrange(key, 0, -1)
            waiting = [n for members in pipe.execute() for n in members]
            serving = [s.serving for s in counters.load_all(r, branch).values() if s.serving]
            assert len(waiting) == len(set(waiting)), "no ticket waits in two lines"
            assert len(serving) == len(set(serving)), "no ticket is called by two counters"
            assert not set(waiting) & set(serving)
            pipe = r.pipeline(transaction=False)
            for number in sorted(self.issued):
                pipe.hget(keys.ticket(BLEND, day_lines.day, number), "status")
            statuses = dict(zip(sorted(self.issued), pipe.execute(), strict=True))
            assert {n for n, s in statuses.items() if s == "waiting"} == set(waiting), "none lost"
            assert {n for n, s in statuses.items() if s == "called"} == set(serving)
            assert all(s in DONE | {"waiting", "called"} for s in statuses.values())

    run_state_machine_as_test(Day, settings=settings(
        max_examples=60, stateful_step_count=40, deadline=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much]))


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(weights=st.lists(st.integers(1, 5), min_size=2, max_size=4), rounds=st.integers(1, 6))
def test_weights_hold_over_long_runs(r, weights, rounds):
    """With every line full, each round of sum(weights) calls takes exactly w calls from each line,
    and at no moment is a line more than one call ahead of or behind its share."""
    _wipe(r, "weights")
    lines = Lines(r, "weights", "2026-11-28")
    names = [f"c{i}" for i in range(len(weights))]
    total = sum(weights)
    for i, (name, weight) in enumerate(zip(names, weights, strict=True)):
        for _ in range(weight * rounds + 1):
            run(r, lambda pipe, name=name, i=i: lines.queue_add(pipe, name, "ABCD"[i], "2026-11-28T09:00:00+08:00",
                                                               1_000, NO_COUNTERS))
    lanes = [Lane(name=n, key=lines.key(n), weight=w) for n, w in zip(names, weights, strict=True)]
    taken = dict.fromkeys(names, 0)
    for t in range(1, total * rounds + 1):
        called = lines.call_next("w", "W", lanes, "2026-11-28T09:00:00+08:00", 2_000, weighted=True)
        taken[called.lane] += 1
        for name, weight in zip(names, weights, strict=True):
            assert abs(taken[name] - t * weight / total) < 2, (weights, t, taken)
    assert [taken[n] for n in names] == [w * rounds for w in weights]


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_the_wait_told_at_issue_is_the_readers_estimate(r, blend_branch, data):
    """The issue script works the estimate out itself (to keep it on the ticket in the same round trip); whatever
    the counters' states, redirects and service times, it is the estimate the reader gives that ticket."""
    branch = blend_branch
    _wipe(r, branch.id)
    day = tickets.lines(r, branch, "2026-11-28").day
    ids = [c.id for c in branch.counters]
    for counter in ids:
        status = data.draw(st.sampled_from(["open", "open", "paused", "closed", ""]), label=f"status {counter}")
        serving = data.draw(st.sampled_from(["", "A001"]), label=f"serving {counter}")
        r.hset(keys.counter(branch.id, counter), mapping={"status": status, "serving": serving})
    for category in branch.categories:
        if data.draw(st.booleans(), label=f"redirect {category.id}"):
            rule = {"category": category.id, "from_counter": data.draw(st.sampled_from(ids)),
                    "to_counter": data.draw(st.sampled_from([*ids, "gone"])), "window": "3", "since": "x"}
            r.hset(keys.redirects(branch.id), category.id, json.dumps(rule))
        times = data.draw(st.lists(st.integers(0, 3_600_000), max_size=25), label=f"times {category.id}")
        if times:
            r.rpush(keys.service_times(branch.id, day, category.id), *times)
    category = data.draw(st.sampled_from(branch.categories), label="category")
    for _ in range(data.draw(st.integers(0, 4), label="ahead")):
        tickets.issue(r, branch, category, clock=FIXED)
    ticket, reader = tickets.issue(r, branch, category, clock=FIXED)
    assert ticket.estimated_wait_s == reader.estimate(category.id, ticket.position)
    kept = r.hget(keys.ticket(branch.id, day, ticket.number), "estimate_s")
    assert kept == (None if ticket.estimated_wait_s is None else str(ticket.estimated_wait_s))
