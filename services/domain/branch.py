"""A branch as its TOML file describes it: categories, counters, managers, pause reasons, timeouts, limits."""

from __future__ import annotations

import tomllib
from collections.abc import Iterable
from functools import cached_property
from pathlib import Path
from typing import Annotated, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StringConstraints, field_validator, model_validator

DEMO_CONFIG = Path(__file__).with_name("zhongnan.toml")

# Ids appear in URLs, Redis keys and tokens: keep them to a safe alphabet (no dots, slashes, braces).
ID_PATTERN = r"^[a-z0-9][a-z0-9_-]{0,31}$"
Ident = Annotated[str, StringConstraints(pattern=ID_PATTERN)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Category(_Strict):
    id: Ident
    prefix: Annotated[str, StringConstraints(pattern=r"^[A-Z]{1,2}$")]
    name: str
    name_en: str
    service_minutes: float = Field(default=5, gt=0, le=240)
    # VIP customers are counted apart in pause pages and watched for waiting too long.
    vip: bool = False
    # A ticket of this category waiting longer than this is called first, whatever the weights
    # (None: the branch's wait_limit_minutes).
    wait_limit_minutes: float | None = Field(default=None, gt=0, le=24 * 60)
    # Serving one ticket longer than this pages the manager (None: 3 × service_minutes).
    long_service_minutes: float | None = Field(default=None, gt=0, le=24 * 60)

    @property
    def long_service_ms(self) -> int:
        return int((self.long_service_minutes or 3 * self.service_minutes) * 60_000)


class CounterConfig(_Strict):
    id: Ident
    window: Annotated[str, StringConstraints(min_length=1, max_length=16)]
    serves: list[Ident] = Field(min_length=1)
    # Calls per round from each category served, e.g. {vip = 2, personal = 1} calls two VIP tickets for
    # each personal one while both wait. Without weights a counter calls its categories in order.
    weights: dict[Ident, Annotated[int, Field(ge=1, le=100)]] = Field(default_factory=dict)
    # The counter whose window takes this counter's customers first while this one is paused or closed.
    pause_redirect: Ident | None = None


class Manager(_Strict):
    id: Ident
    name: str
    name_en: str
    # Told to a terminal whose call reached no live device, to ring instead.
    phone: Annotated[str, StringConstraints(min_length=1, max_length=32)] | None = None


class Screen(_Strict):
    """A lobby display or a kiosk: supervised once its page runs with a screen token (`lobby tokens issue --screen`)."""

    id: Ident
    kind: Literal["display", "kiosk"]
    name: str
    name_en: str


class PauseReason(_Strict):
    id: Ident
    name: str
    name_en: str


class Escalation(_Strict):
    """Seconds unacknowledged before the next level is paged, per priority (0 = never escalate)."""

    urgent_s: float = Field(default=20, ge=0)
    high_s: float = Field(default=45, ge=0)
    normal_s: float = Field(default=120, ge=0)
    low_s: float = Field(default=0, ge=0)
    repeat_urgent_s: float = Field(default=15, ge=0)
    # A low-priority page is information (a counter resumed): nobody acknowledges it; it closes after this.
    info_close_s: float = Field(default=120, gt=0)


def _rate(value: str) -> str:
    from limits import parse_many

    try:
        parse_many(value)
    except ValueError as exc:
        raise ValueError(f"not a rate limit like '30/minute': {value!r}") from exc
    return value


Rate = Annotated[str, AfterValidator(_rate)]


class Supervision(_Strict):
    """How the branch watches its own devices and terminals (services/domain/presence.py)."""

    # An endpoint not heard of for this long, or with no stream open, is offline: a new page skips a manager
    # whose device is.
    offline_after_s: float = Field(default=60, ge=2, le=3600)
    # How often a page says it is alive; well inside offline_after_s.
    heartbeat_s: float = Field(default=15, ge=0.5, le=600)

    @model_validator(mode="after")
    def _inside(self) -> Supervision:
        if self.heartbeat_s * 2 > self.offline_after_s:
            raise ValueError("supervision.heartbeat_s must be at most half of offline_after_s: one lost heartbeat "
                             "must not make an endpoint offline")
        return self


class RateLimits(_Strict):
    """Requests allowed per client: tickets per kiosk address, alert presses per terminal (not distress)."""

    tickets: Rate = "30/minute;300/hour"
    alerts: Rate = "30/minute"


class Branch(_Strict):
    model_config = ConfigDict(extra="forbid", frozen=True, ignored_types=(cached_property,))

    id: Ident
    name: str
    name_en: str
    timezone: str = "Asia/Shanghai"
    vip_wait_threshold_minutes: float = Field(default=10, gt=0)
    # A ticket waiting longer than this is called before any other (0: no limit); see Category.
    wait_limit_minutes: float = Field(default=30, ge=0, le=24 * 60)
    # A line whose longest wait passes this pages the manager once, until it is back under (0: never).
    wait_alert_minutes: float = Field(default=15, ge=0, le=24 * 60)
    # How many times a teller may call the same ticket again before marking it a no-show.
    recall_limit: int = Field(default=3, ge=0, le=20)
    # Wait estimates average the last this many service times of a category today.
    estimate_samples: int = Field(default=20, ge=1, le=500)
    # Days of history (tickets, calls, pauses, pages, alerts) kept for reports: in the records database, and in
    # Redis for a day never archived.
    history_days: int = Field(default=1826, ge=1, le=3650)
    # Closed days Redis keeps besides today once they are archived (services/pager/retention.py).
    redis_days: int = Field(default=7, ge=0, le=3650)
    categories: list[Category] = Field(min_length=1)
    counters: list[CounterConfig] = Field(min_length=1)
    managers: list[Manager] = Field(min_length=1)
    pause_reasons: list[PauseReason] = Field(min_length=1)
    screens: list[Screen] = Field(default_factory=list)
    escalation: Escalation = Escalation()
    supervision: Supervision = Supervision()
    rate_limits: RateLimits = RateLimits()
    # Entries each of its live streams keeps (screen, device, terminals): enough to replay a long disconnection.
    stream_maxlen: int = Field(default=10_000, ge=100)
    # The Redis this branch lives on, when not the deployment's default (REDIS_URL): redis://host:port/db,
    # or sentinel://<master name>/<db> for a master the deployment's Sentinels (REDIS_SENTINELS) watch.
    redis_url: Annotated[str, StringConstraints(pattern=r"^(redis|rediss|sentinel)://")] | None = None

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"unknown time zone {value!r}") from exc
        return value

    @model_validator(mode="after")
    def _consistent(self) -> Branch:
        for kind, items in (
            ("category", self.categories),
            ("counter", self.counters),
            ("manager", self.managers),
            ("pause reason", self.pause_reasons),
            ("screen", self.screens),
        ):
            ids = [item.id for item in items]
            if len(ids) != len(set(ids)):
                raise ValueError(f"duplicate {kind} id in branch {self.id}")
        prefixes = [c.prefix for c in self.categories]
        if len(prefixes) != len(set(prefixes)):
            raise ValueError(f"duplicate ticket prefix in branch {self.id}")
        categories = {c.id for c in self.categories}
        counters = {c.id for c in self.counters}
        for counter in self.counters:
            unknown = set(counter.serves) - categories
            if unknown:
                raise ValueError(f"counter {counter.id} serves unknown categories {sorted(unknown)}")
            stray = set(counter.weights) - set(counter.serves)
            if stray:
                raise ValueError(f"counter {counter.id} weighs categories it does not serve: {sorted(stray)}")
            if counter.pause_redirect == counter.id:
                raise ValueError(f"counter {counter.id} redirects to itself: name another counter")
            if counter.pause_redirect is not None and counter.pause_redirect not in counters - {counter.id}:
                raise ValueError(f"counter {counter.id} redirects to unknown counter {counter.pause_redirect}")
        unserved = categories - {cat for counter in self.counters for cat in counter.serves}
        if unserved:
            raise ValueError(f"no counter serves categories {sorted(unserved)} in branch {self.id}")
        return self

    @property
    def history_ttl_s(self) -> int:
        """Return how long a day's keys live: the history, and one day more so the last day stays whole."""
        return (self.history_days + 1) * 86_400

    @cached_property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    def category(self, category_id: str) -> Category | None:
        return next((c for c in self.categories if c.id == category_id), None)

    def counter(self, counter_id: str) -> CounterConfig | None:
        return next((c for c in self.counters if c.id == counter_id), None)

    def manager(self, manager_id: str) -> Manager | None:
        return next((m for m in self.managers if m.id == manager_id), None)

    def screen(self, screen_id: str) -> Screen | None:
        return next((s for s in self.screens if s.id == screen_id), None)

    def pause_reason(self, reason_id: str) -> PauseReason | None:
        return next((r for r in self.pause_reasons if r.id == reason_id), None)

    def wait_limit_ms(self, category_id: str) -> int:
        """Return how long a ticket of this category may wait before it is called first (0: no limit)."""
        category = self.category(category_id)
        minutes = category.wait_limit_minutes if category and category.wait_limit_minutes else self.wait_limit_minutes
        return int(minutes * 60_000)

    def lives_on(self, default_url: str) -> str:
        """Return the Redis this branch lives on: its own redis_url, else the deployment's default."""
        return self.redis_url or default_url

    def category_for_number(self, number: str) -> Category | None:
        """Return the category whose prefix starts a ticket number such as V007."""
        letters = number.rstrip("0123456789")
        return next((c for c in self.categories if c.prefix == letters), None)


class BranchFile(_Strict):
    branches: list[Branch] = Field(min_length=1)

    @model_validator(mode="after")
    def _unique(self) -> BranchFile:
        ids = [b.id for b in self.branches]
        if len(ids) != len(set(ids)):
            raise ValueError("duplicate branch id")
        return self


def by_redis(branches: Iterable[Branch], default_url: str) -> dict[str, list[Branch]]:
    """Group branches by the Redis they live on."""
    groups: dict[str, list[Branch]] = {}
    for branch in branches:
        groups.setdefault(branch.lives_on(default_url), []).append(branch)
    return groups


def load_branches(path: Path) -> dict[str, Branch]:
    """Read and validate a branch TOML file."""
    with open(path, "rb") as fh:
        parsed = BranchFile.model_validate(tomllib.load(fh))
    return {b.id: b for b in parsed.branches}
