"""A scenario: the branch, the day, who comes and when, how long they take, and what the staff do.

A scenario is a TOML file (scenarios/*.toml); every time in it is the branch's local time. What it may say:

    branch = "zhongnan"            # a branch of branch_file (default: the demo branch's file)
    branch_file = "my-branch.toml" # relative to the scenario
    date = "2026-03-02"            # the business day simulated
    opens = "09:00"                # arrivals from...
    closes = "12:00"               # ...to; those waiting then are still served
    seed = 7                       # the same seed, the same day, byte for byte

    [arrivals.personal]            # per category: a Poisson rate per hour...
    per_hour = 40                  # ...or a list, one rate per hour from `opens`
    [arrivals.vip]
    csv = "arrivals.csv"           # ...or times from a CSV: a `time` (HH:MM[:SS]) and a `category` column;
                                   # or a report's hours CSV (columns `hour` and one per category): its counts
                                   # become that hour's rate

    [service.personal]             # per category: minutes a service takes
    distribution = "exponential"   # exponential | lognormal (with `sigma`, the log's deviation) | samples
    mean_minutes = 4               # default: the category's service_minutes
    # samples_csv = "times.csv"    # with distribution = "samples": a `service_s` column

    [[counters_open]]              # counters open from an hour on (default: every counter all day)
    from = "12:00"
    counters = ["vip", "1", "3", "4"]

    [[pauses]]
    counter = "vip"
    at = "10:00"                   # the teller pauses once the customer then served is done
    reason = "vault_transfer"
    expected_minutes = 15
    actual_minutes = 18

    [tellers]
    absent = 0.03                  # a called customer does not come, with this probability
    recall_after_s = 30            # the teller calls again after this long...
    recalls = 1                    # ...this many times, then marks a no-show

    [managers]
    response_mean_s = 40           # a page is acknowledged after this long on average (exponential)
    responds = true                # false: nobody ever acknowledges (pages escalate to the end)

A policy (`--compare key=value`) changes the branch, not the scenario: see `with_policy`.
"""

from __future__ import annotations

import csv
import math
import tomllib
from datetime import date as Date
from datetime import datetime, time, timedelta
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from services.domain.branch import DEMO_CONFIG, Branch, load_branches

LocalTime = Annotated[str, Field(pattern=r"^([01]\d|2[0-3]):[0-5]\d(:[0-5]\d)?$")]


class ScenarioError(ValueError):
    """A scenario or a policy that cannot be run; the message says why."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


# Customers an hour of one category, at most: ten a second.
MAX_RATE = 36_000
Rate = Annotated[float, Field(ge=0, le=MAX_RATE, allow_inf_nan=False)]
# The longest a service may take (as a category's service_minutes).
MAX_SERVICE_S = 4 * 3600


class Arrivals(_Strict):
    per_hour: Annotated[list[Rate], Field(min_length=1)] | None = Field(default=None)
    csv: str | None = None

    @field_validator("per_hour", mode="before")
    @classmethod
    def _one_rate_all_day(cls, value: Any) -> Any:
        return [value] if isinstance(value, int | float) else value

    @model_validator(mode="after")
    def _one(self) -> Arrivals:
        if (self.per_hour is None) == (self.csv is None):
            raise ValueError("give either per_hour or csv")
        return self


class Service(_Strict):
    distribution: Literal["exponential", "lognormal", "samples"] = "exponential"
    mean_minutes: float | None = Field(default=None, gt=0, le=240)
    sigma: float = Field(default=0.5, gt=0, le=3)
    samples_csv: str | None = None

    @model_validator(mode="after")
    def _samples(self) -> Service:
        if (self.distribution == "samples") != (self.samples_csv is not None):
            raise ValueError("distribution = 'samples' goes with samples_csv, and only it")
        return self


class CountersOpen(_Strict):
    from_: LocalTime = Field(alias="from")
    counters: list[str]


class PlannedPause(_Strict):
    counter: str
    at: LocalTime
    reason: str
    expected_minutes: int = Field(ge=1, le=240)
    actual_minutes: float = Field(gt=0, le=480)
    note: str | None = None


class Tellers(_Strict):
    absent: float = Field(default=0.0, ge=0, le=1)
    recall_after_s: float = Field(default=30, gt=0, le=600)
    recalls: int = Field(default=1, ge=0, le=20)


class Managers(_Strict):
    response_mean_s: float = Field(default=40, gt=0, le=3600)
    responds: bool = True


class Scenario(_Strict):
    branch: str | None = None
    branch_file: str | None = None
    date: Date = Date(2026, 3, 2)
    opens: LocalTime = "09:00"
    closes: LocalTime = "17:00"
    seed: int = 1
    arrivals: dict[str, Arrivals] = Field(min_length=1)
    service: dict[str, Service] = Field(default_factory=dict)
    counters_open: list[CountersOpen] = Field(default_factory=list)
    pauses: list[PlannedPause] = Field(default_factory=list)
    tellers: Tellers = Tellers()
    managers: Managers = Managers()
    # Where relative paths in the scenario are read from (its own folder).
    base: Path = Field(default=Path("."), exclude=True)

    @model_validator(mode="after")
    def _ordered(self) -> Scenario:
        opens, closes = clock_time(self.opens), clock_time(self.closes)
        if closes <= opens:
            raise ValueError("closes must be after opens")
        hours = math.ceil(self.hours)
        for category, plan in self.arrivals.items():
            if plan.per_hour is not None and len(plan.per_hour) > hours:
                raise ValueError(f"arrivals.{category}: {len(plan.per_hour)} hourly rates for a day of {hours} "
                                 "hours")
        for pause in self.pauses:
            if not opens <= clock_time(pause.at) < closes:
                raise ValueError(f"a pause of counter {pause.counter} at {pause.at}, outside {self.opens}–"
                                 f"{self.closes}")
        return self

    def path(self, name: str) -> Path:
        return (self.base / name).resolve()

    def load_branch(self) -> Branch:
        """Return the branch the scenario runs, checked against what the scenario says of it."""
        source = self.path(self.branch_file) if self.branch_file else DEMO_CONFIG
        try:
            branches = load_branches(source)
        except OSError as exc:
            raise ScenarioError(f"cannot read the branch file {source}: {exc.strerror or exc}") from exc
        except tomllib.TOMLDecodeError as exc:
            raise ScenarioError(f"the branch file {source} is not valid TOML: {exc}") from exc
        except ValidationError as exc:
            raise ScenarioError(f"the branch file {source} is not a branch file: {_problems(exc)}") from exc
        branch = branches.get(self.branch) if self.branch else next(iter(branches.values()))
        if branch is None:
            raise ScenarioError(f"no branch {self.branch!r} in {source}; it has {', '.join(branches)}")
        self.check(branch)
        return branch

    def check(self, branch: Branch) -> None:
        """Raise ScenarioError when the scenario names a category, counter or reason the branch lacks."""
        categories = {c.id for c in branch.categories}
        counter_ids = {c.id for c in branch.counters}
        problems = [f"arrivals of unknown category {c!r}" for c in self.arrivals if c not in categories]
        problems += [f"service of unknown category {c!r}" for c in self.service if c not in categories]
        for plan in self.counters_open:
            problems += [f"counters_open names unknown counter {c!r}" for c in plan.counters if c not in counter_ids]
        for pause in self.pauses:
            if pause.counter not in counter_ids:
                problems.append(f"a pause of unknown counter {pause.counter!r}")
            if branch.pause_reason(pause.reason) is None:
                problems.append(f"a pause for unknown reason {pause.reason!r}")
        if problems:
            raise ScenarioError(f"the scenario does not fit branch {branch.id}: " + "; ".join(problems))

    @property
    def hours(self) -> float:
        """Return how long the day is open, in hours."""
        return (self.at(self.closes) - self.at(self.opens)) / timedelta(hours=1)

    def at(self, clock: str) -> datetime:
        """Return a local time of the scenario's day as an aware datetime (the branch's zone comes later)."""
        return datetime.combine(self.date, clock_time(clock))


def clock_time(value: str) -> time:
    return time.fromisoformat(value if value.count(":") == 2 else value + ":00")


def load(path: Path) -> Scenario:
    """Read and check a scenario file."""
    try:
        with open(path, "rb") as fh:
            raw = tomllib.load(fh)
    except OSError as exc:
        raise ScenarioError(f"cannot read {path}: {exc.strerror or exc}") from exc
    except tomllib.TOMLDecodeError as exc:
        raise ScenarioError(f"{path} is not valid TOML: {exc}") from exc
    try:
        return Scenario.model_validate({**raw, "base": path.resolve().parent})
    except ValidationError as exc:
        raise ScenarioError(f"{path}: {_problems(exc)}") from exc


def _problems(exc: ValidationError, data: dict[str, Any] | None = None) -> str:
    """Say what a validation found, once each; an item of a list of the branch is named by its id."""
    said: list[str] = []
    for error in exc.errors():
        loc, where, node = list(error["loc"]), [], data
        for part in loc:
            if isinstance(part, int) and isinstance(node, list) and part < len(node) and isinstance(node[part], dict) \
                    and "id" in node[part]:
                where.append(str(node[part]["id"]))
            else:
                where.append(str(part))
            node = node[part] if isinstance(node, (dict, list)) and _has(node, part) else None
        text = f"{'.'.join(where) or 'scenario'}: {error['msg']}"
        if text not in said:
            said.append(text)
    return "; ".join(said)


def _has(node: dict[str, Any] | list[Any], part: str | int) -> bool:
    return part in node if isinstance(node, dict) else isinstance(part, int) and part < len(node)


def read_rows(path: Path) -> list[dict[str, str]]:
    """Read a CSV (a report's own, with its byte order mark and `名称 field` headers, or a plain one) as rows
    keyed by each header's last word."""
    try:
        with open(path, encoding="utf-8-sig", newline="") as fh:
            rows = list(csv.reader(fh))
    except OSError as exc:
        raise ScenarioError(f"cannot read {path}: {exc.strerror or exc}") from exc
    except (UnicodeDecodeError, csv.Error) as exc:
        raise ScenarioError(f"{path} is not a UTF-8 CSV file: {exc}") from exc
    if not rows:
        raise ScenarioError(f"{path} is empty")
    header = [cell.split()[-1] if cell.split() else "" for cell in rows[0]]
    return [dict(zip(header, row, strict=False)) for row in rows[1:] if any(row)]


# A policy: what `--compare` may change, and how the path reads.
POLICY_HELP = """\
key=value, on the branch the scenario runs (value: a number, true/false, none, a list, or text):
  wait_limit_minutes=20                 a field of the branch
  categories.vip.wait_limit_minutes=10  a field of one category
  counters.3.serves='["personal","vip"]'  a field of one counter
  counters.3.weights.vip=2              one weight (a category it did not serve, it now serves)
  pause_redirect=none                   a counter field without a counter: every counter"""
# Fields whose values are ids: a number given for one is that id (counters.vip.pause_redirect=3).
ID_FIELDS = {"pause_redirect", "serves", "window"}
SINGULAR = {"categories": "category", "counters": "counter"}


def with_policy(branch: Branch, policy: str) -> Branch:
    """Return the branch with one policy applied (POLICY_HELP); raise ScenarioError for one that does not fit."""
    key, sep, text = policy.partition("=")
    path = [p for p in key.strip().split(".") if p]
    if not sep or not path:
        raise ScenarioError(f"a policy is key=value, not {policy!r}\n{POLICY_HELP}")
    value = _value(text.strip())
    data = branch.model_dump()
    counter_fields = {"serves", "weights", "pause_redirect"}
    if path[0] in ("categories", "counters"):
        if len(path) < 3:
            raise ScenarioError(f"{key}: name the {SINGULAR[path[0]]} and its field, e.g. {path[0]}.<id>.<field>")
        items = [item for item in data[path[0]] if item["id"] == path[1]]
        if not items:
            known = ", ".join(item["id"] for item in data[path[0]])
            raise ScenarioError(f"{key}: no {SINGULAR[path[0]]} {path[1]!r} (the branch has {known})")
        targets, rest = items, path[2:]
    elif path[0] in counter_fields:
        targets, rest = data["counters"], path
    elif path[0] in data and not isinstance(data[path[0]], list):
        targets, rest = [data], path
    else:
        raise ScenarioError(f"{key}: the branch has no such setting\n{POLICY_HELP}")
    if rest[-1] in ID_FIELDS:
        value = [str(v) for v in value] if isinstance(value, list) else value if value is None else str(value)
    for target in targets:
        _put(target, rest, value, key)
    try:
        return Branch.model_validate(data)
    except ValidationError as exc:
        raise ScenarioError(f"{policy}: {_problems(exc, data)}") from exc


def _put(target: dict[str, Any], path: list[str], value: Any, key: str) -> None:
    if len(path) == 2 and path[0] == "weights" and "serves" in target and path[1] not in target["serves"]:
        target["serves"] = [*target["serves"], path[1]]  # a weight for a category: the counter calls it too
    for i, name in enumerate(path[:-1]):
        nested = target.get(name)
        if not isinstance(nested, dict):
            raise ScenarioError(f"{key}: {'.'.join(path[:i + 1])} holds no settings")
        target = nested
    if path[-1] not in target and not (len(path) > 1 and path[-2] == "weights"):
        raise ScenarioError(f"{key}: no setting {path[-1]!r} there")
    target[path[-1]] = value


def _value(text: str) -> Any:
    if text.lower() in ("none", "null"):
        return None
    try:
        return tomllib.loads(f"v = {text}")["v"]
    except tomllib.TOMLDecodeError:
        return text
