"""The Lua scripts of the domain (services/domain/lua/*.lua), loaded one way and run by SHA.

A script file may begin with `-- requires: a, b`: the functions those files define come before it. `$NAME`
stands for a constant of the domain (the wait histogram's bounds). A script run for a request is wrapped by
once.lua, which makes it act once per Idempotency-Key (services/domain/once.py).

Scripts run by SHA in a pipeline, with no SCRIPT EXISTS round trip first: a Redis that does not know them (it
restarted or failed over) answers NOSCRIPT before running any, so they are loaded and the pipeline run once more.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import redis

from services.domain import counts, once

LUA = Path(__file__).with_name("lua")
REQUIRES = re.compile(r"^-- requires: (.+)$", re.M)
CONSTANTS = {"WAIT_BUCKETS_S": ", ".join(str(b) for b in counts.WAIT_BUCKETS_S)}


@dataclass(frozen=True)
class Script:
    name: str
    source: str
    once: bool

    @property
    def sha(self) -> str:
        return hashlib.sha1(self.source.encode()).hexdigest()


def _text(name: str) -> str:
    text = (LUA / f"{name}.lua").read_text(encoding="utf-8")
    found = REQUIRES.search(text)
    required = [part.strip() for part in found.group(1).split(",")] if found else []
    text = "".join(_text(r) + "\n" for r in required) + text
    return re.sub(r"\$([A-Z_]+)", lambda m: CONSTANTS.get(m.group(1), m.group(0)), text)


@cache
def load(name: str, *, made_once: bool = False) -> Script:
    """Return a script by its file's name; made_once wraps it to act once per key (once.lua)."""
    body = _text(name)
    if made_once:
        body = _text("once").replace("$BODY", body)
    return Script(name, body, made_once)


_LOADED: list[Script] = []


def register(script: Script) -> Script:
    """Note a script so that a Redis that has forgotten the scripts is given all of them again."""
    _LOADED.append(script)
    return script


def queue(pipe: redis.client.Pipeline, script: Script, script_keys: Sequence[str], args: Sequence[Any],
          once_: once.Once | None = None) -> None:
    """Queue a script by SHA on a pipeline given to `run`; a script made once takes the Once last."""
    if script.once:
        once_key, once_ttl = (once_.key, once_.ttl_s) if once_ else ("", 0)
        script_keys, args = [*script_keys, once_key], [*args, once_ttl]
    pipe.evalsha(script.sha, len(script_keys), *script_keys, *args)


def run(r: redis.Redis, build: Callable[[redis.client.Pipeline], None]) -> list[Any]:
    """Run a pipeline in one round trip, its scripts called by SHA; errors are left in the replies."""
    for attempt in range(2):
        pipe = r.pipeline(transaction=False)
        build(pipe)
        replies = pipe.execute(raise_on_error=False)
        if attempt or not any(isinstance(x, redis.exceptions.NoScriptError) for x in replies):
            return replies
        for script in _LOADED:
            r.script_load(script.source)
    raise AssertionError("unreachable")


def unwrap(script: Script, reply: Any) -> tuple[Any, bool]:
    """Return a script's result and whether it ran now (False: kept from an earlier run with the same Once)."""
    if not script.once:
        return reply, True
    ran, result = reply
    return result, bool(ran)
