"""The day's customers, drawn before it starts: when each comes, for what, how long they take, whether they come
to the counter when called.

Every customer is drawn from the seed alone, before any policy acts, and each kind of draw has its own random
stream: two policies compared on one seed meet the same customers with the same needs (common random numbers),
so what differs between them is the policy's doing, not chance.
"""

from __future__ import annotations

import math
import random
import statistics
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta

from services.domain.branch import Branch
from services.simulate.scenario import (
    MAX_RATE,
    MAX_SERVICE_S,
    Arrivals,
    Scenario,
    ScenarioError,
    Service,
    clock_time,
    read_rows,
)


@dataclass(frozen=True)
class Customer:
    """One customer: arrives at `at_ms`, for a category, needs `service_ms` at the counter; absent: does not come
    when called."""

    at_ms: int
    category: str
    service_ms: int
    absent: bool


def customers(scenario: Scenario, branch: Branch, start_ms: int) -> list[Customer]:
    """Draw the day's customers, in order of arrival."""
    arrivals = random.Random(f"{scenario.seed}:arrivals")
    needs = random.Random(f"{scenario.seed}:service")
    presence = random.Random(f"{scenario.seed}:absent")
    hours = scenario.hours
    times: list[tuple[int, str]] = []
    for category, plan in sorted(scenario.arrivals.items()):
        times += [(start_ms + offset, category)
                  for offset in _arrival_offsets(scenario, category, plan, hours, arrivals)]
    times.sort()
    samplers = {c.id: _sampler(scenario, scenario.service.get(c.id, Service()), c.service_minutes)
                for c in branch.categories}
    return [Customer(at_ms=at, category=category, service_ms=max(1, round(samplers[category](needs))),
                     absent=presence.random() < scenario.tellers.absent)
            for at, category in times]


def mean_service_ms(scenario: Scenario, branch: Branch) -> dict[str, float]:
    """Return each category's true mean service time (ms): what the best knowable estimate knows."""
    means = {}
    for category in branch.categories:
        service = scenario.service.get(category.id, Service())
        if service.distribution == "samples":
            means[category.id] = statistics.fmean(_samples(scenario, service))
        else:
            means[category.id] = (service.mean_minutes or category.service_minutes) * 60_000
    return means


def _arrival_offsets(scenario: Scenario, category: str, plan: Arrivals, hours: float,
                     rng: random.Random) -> list[int]:
    """Return the ms after opening at which customers of one category come."""
    if plan.csv is not None:
        rows = read_rows(scenario.path(plan.csv))
        if rows and "time" in rows[0]:
            return _listed(scenario, plan.csv, [(n, row) for n, row in enumerate(rows, start=2)
                                                if row.get("category", category) == category])
        if rows and "hour" in rows[0]:
            return _poisson(_hourly_rates(scenario, plan.csv, rows, category), hours, rng)
        raise ScenarioError(f"{plan.csv}: no `time` column (arrival times) nor `hour` column (a report's hours CSV)")
    assert plan.per_hour is not None, "a plan has a rate or a CSV"
    return _poisson(plan.per_hour, hours, rng)


def _poisson(rates: list[float], hours: float, rng: random.Random) -> list[int]:
    """Draw a Poisson process whose rate per hour is rates[h] in the h-th hour (the last rate holds on)."""
    offsets, t = [], 0.0
    end = hours * 3_600_000
    while True:
        hour = min(int(t // 3_600_000), len(rates) - 1)
        rate_per_ms = rates[hour] / 3_600_000
        if rate_per_ms <= 0:
            t = (int(t // 3_600_000) + 1) * 3_600_000.0  # nobody comes this hour
            if t >= end or hour == len(rates) - 1:
                return offsets
            continue
        step = rng.expovariate(rate_per_ms)
        boundary = (int(t // 3_600_000) + 1) * 3_600_000.0
        if t + step >= boundary and hour < len(rates) - 1:
            t = boundary  # memoryless: draw afresh at the new hour's rate
            continue
        t += step
        if t >= end:
            return offsets
        offsets.append(int(t))


def _listed(scenario: Scenario, name: str, rows: list[tuple[int, dict[str, str]]]) -> list[int]:
    """Read arrival times (each row's `time`, HH:MM[:SS] on the scenario's day, within its hours)."""
    opens, closes = scenario.at(scenario.opens), scenario.at(scenario.closes)
    offsets = []
    for line, row in rows:
        text = (row.get("time") or "").strip()
        try:
            moment = scenario.at(text)
        except ValueError:
            raise ScenarioError(f"{name}, line {line}: an arrival time {text!r} is not HH:MM[:SS]") from None
        if moment.tzinfo is not None or not opens <= moment < closes:
            raise ScenarioError(f"{name}, line {line}: an arrival at {text}, outside {scenario.opens}–"
                                f"{scenario.closes} (times are the branch's local time, with no offset)")
        offsets.append(int((moment - opens) / timedelta(milliseconds=1)))
    return sorted(offsets)


def _hourly_rates(scenario: Scenario, name: str, rows: list[dict[str, str]], category: str) -> list[float]:
    """Read a report's hours CSV as one category's rate in each hour from the scenario's opening (an hour the
    report lacks: nobody came)."""
    if category not in rows[0]:
        raise ScenarioError(f"{name}: no column for category {category!r}")
    counts: dict[int, float] = {}
    for line, row in enumerate(rows, start=2):
        try:
            hour, count = int(row["hour"]), float(row[category] or 0)
        except ValueError:
            raise ScenarioError(f"{name}, line {line}: an hour or a count is not a number") from None
        if not (0 <= hour <= 23 and math.isfinite(count) and 0 <= count <= MAX_RATE):
            raise ScenarioError(f"{name}, line {line}: an hour is 0–23 and a count 0–{MAX_RATE}")
        counts[hour] = count
    first = clock_time(scenario.opens).hour
    last = clock_time(scenario.closes).hour
    return [counts.get(hour, 0.0) for hour in range(first, last + 1)]


def _sampler(scenario: Scenario, service: Service, configured_minutes: float) -> Callable[[random.Random], float]:
    """Return a function drawing one service time (ms) from a random stream."""
    mean_ms = (service.mean_minutes or configured_minutes) * 60_000
    if service.distribution == "exponential":
        return lambda rng: rng.expovariate(1 / mean_ms)
    if service.distribution == "lognormal":
        sigma = service.sigma
        mu = math.log(mean_ms) - sigma * sigma / 2  # so that the mean is mean_ms
        return lambda rng: rng.lognormvariate(mu, sigma)
    samples = _samples(scenario, service)
    return lambda rng: rng.choice(samples)


def _samples(scenario: Scenario, service: Service) -> list[float]:
    """Read service times (ms) from a CSV's `service_s` column."""
    assert service.samples_csv is not None
    name = service.samples_csv
    rows = read_rows(scenario.path(name))
    if not rows or "service_s" not in rows[0]:
        raise ScenarioError(f"{name}: no `service_s` column (service times in seconds)")
    samples = []
    for line, row in enumerate(rows, start=2):
        text = (row.get("service_s") or "").strip()
        if not text:
            continue
        try:
            seconds = float(text)
        except ValueError:
            raise ScenarioError(f"{name}, line {line}: a service time {text!r} is not a number") from None
        if not (math.isfinite(seconds) and 0 < seconds <= MAX_SERVICE_S):
            raise ScenarioError(f"{name}, line {line}: a service time is over 0 and at most {MAX_SERVICE_S} s, "
                                f"not {text}")
        samples.append(seconds * 1000)
    if not samples:
        raise ScenarioError(f"{name}: no service times in its `service_s` column")
    return samples
