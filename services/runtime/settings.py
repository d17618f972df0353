"""What a process is told by its environment, read once when it starts, and the context it hands on.

Every process (a web service, a worker, a command) builds one `Context` at its start: its `Settings` from the
environment and the branches of the branch file they name. A web app keeps it on the app
(services/web/app.py), a worker on the worker (services/runtime/worker.py); nothing reads the environment
later, at a call site.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import redis
from pydantic import BaseModel, ConfigDict, Field

from services.domain.branch import DEMO_CONFIG, Branch, by_redis, load_branches
from services.runtime import redis as clients

DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/0"
DEFAULT_PORTS = {"kiosk": 5001, "counter": 5002, "pager": 5003}


class Settings(BaseModel):
    """Process settings, read from the environment."""

    model_config = ConfigDict(frozen=True)

    redis_url: str = DEFAULT_REDIS_URL
    # Redis Sentinels (host, port) to ask where each master is; with them, URLs may be sentinel://<master>/<db>.
    sentinels: tuple[tuple[str, int], ...] = ()
    config_path: Path = DEMO_CONFIG
    ports: dict[str, int] = dict(DEFAULT_PORTS)
    # How long an alert may sit in the outbox without a page before the sweeper sends it again.
    outbox_grace_s: float = 3.0
    # Entries each live stream keeps, for every branch (LOBBY_STREAM_MAXLEN); None: each branch's own setting.
    stream_maxlen: int | None = Field(default=None, ge=100)
    # The records database (DATABASE_URL; services/records/database.py); None: no day is archived.
    database_url: str | None = None
    # Reverse proxies in front of the web services (LOBBY_TRUSTED_PROXIES; 0: none): a client's address is the
    # one that many proxies back in X-Forwarded-For, and its scheme X-Forwarded-Proto. Never set it for a service
    # clients reach directly: they could then claim any address.
    trusted_proxies: int = Field(default=0, ge=0)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        env = os.environ if environ is None else environ
        ports = {name: int(env.get(f"{name.upper()}_PORT", port)) for name, port in DEFAULT_PORTS.items()}
        sentinels = tuple((host, int(port)) for host, _, port in
                          (item.strip().rpartition(":") for item in env.get("REDIS_SENTINELS", "").split(",")
                           if item.strip()))
        default_url = f"sentinel://{env.get('REDIS_SENTINEL_MASTER') or 'lobby'}/0" if sentinels else DEFAULT_REDIS_URL
        maxlen = env.get("LOBBY_STREAM_MAXLEN")
        return cls(
            redis_url=env.get("REDIS_URL") or default_url,
            sentinels=sentinels,
            config_path=Path(env.get("LOBBY_CONFIG") or DEMO_CONFIG),
            ports=ports,
            stream_maxlen=int(maxlen) if maxlen else None,
            database_url=env.get("DATABASE_URL") or None,
            trusted_proxies=int(env.get("LOBBY_TRUSTED_PROXIES") or 0),
        )


@dataclass(frozen=True)
class Context:
    """A process's settings and branches, built once, and the Redis clients they lead to."""

    settings: Settings
    branches: dict[str, Branch]

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Context:
        """Read the settings and the branch file they name (the process's one read of its environment)."""
        settings = Settings.from_env(environ)
        return cls.of(settings)

    @classmethod
    def of(cls, settings: Settings) -> Context:
        branches = load_branches(settings.config_path)
        if settings.stream_maxlen is not None:
            branches = {k: b.model_copy(update={"stream_maxlen": settings.stream_maxlen}) for k, b in branches.items()}
        return cls(settings, branches)

    def url_of(self, branch_id: str) -> str:
        """Return the Redis a branch lives on (the default one for a branch not configured)."""
        branch = self.branches.get(branch_id)
        return branch.lives_on(self.settings.redis_url) if branch else self.settings.redis_url

    def urls(self) -> list[str]:
        """Return the default Redis, then every other one a branch lives on."""
        default = self.settings.redis_url
        return [default, *sorted(set(by_redis(self.branches.values(), default)) - {default})]

    def on(self, url: str | None = None) -> list[Branch]:
        """Return the branches that live on one Redis (default: the process's own), which its workers serve."""
        return by_redis(self.branches.values(), self.settings.redis_url).get(url or self.settings.redis_url, [])

    def redis(self, url: str | None = None) -> redis.Redis:
        """Return the client for plain commands (str replies) of a Redis (default: the process's own)."""
        return clients.client(url or self.settings.redis_url, clients.PLAIN, self.settings.sentinels)

    def stream_redis(self, url: str | None = None) -> redis.Redis:
        """Return the client for blocking stream reads of a Redis."""
        return clients.client(url or self.settings.redis_url, clients.STREAM, self.settings.sentinels)

    def rq(self, url: str | None = None) -> redis.Redis:
        """Return the client RQ needs (bytes replies) of a Redis."""
        return clients.client(url or self.settings.redis_url, clients.RQ, self.settings.sentinels)

    def for_branch(self, branch_id: str) -> redis.Redis:
        """Return the plain client of the Redis a branch lives on."""
        return self.redis(self.url_of(branch_id))
