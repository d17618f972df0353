"""A small Server-Sent Events reader for tests: a thread that parses a live stream into events."""

from __future__ import annotations

import contextlib
import json
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import requests


@dataclass(frozen=True)
class Event:
    id: str | None
    type: str
    data: dict[str, Any]

    @property
    def seq(self) -> tuple[int, int]:
        """The stream id as numbers, for ordering ("10-0" comes after "9-5")."""
        return stream_seq(self.id or "0-0")


def stream_seq(event_id: str) -> tuple[int, int]:
    ms, _, n = event_id.partition("-")
    return int(ms), int(n or 0)


class SSEClient:
    """Read one SSE stream in the background; events collect in `events` in arrival order."""

    def __init__(self, url: str, *, headers: dict[str, str] | None = None, params: dict[str, str] | None = None):
        self.url = url
        self.headers = headers or {}
        self.params = params or {}
        self.events: list[Event] = []
        self.comments = 0
        self.status: int | None = None
        self.response: requests.Response | None = None
        self._cond = threading.Condition()
        self._closed = False
        self._thread = threading.Thread(target=self._run, daemon=True)
        self.ended = False

    def start(self) -> SSEClient:
        self._thread.start()
        with self._cond:
            self._cond.wait_for(lambda: self.status is not None or self.ended, timeout=10)
        return self

    def _run(self) -> None:
        try:
            with requests.get(self.url, headers=self.headers, params=self.params, stream=True,
                              timeout=(5, 60)) as response:
                self.response = response
                with self._cond:
                    self.status = response.status_code
                    self._cond.notify_all()
                if response.status_code != 200:
                    return
                fields: dict[str, str] = {}
                for raw in response.iter_lines(decode_unicode=True):
                    if self._closed:
                        return
                    if raw is None:
                        continue
                    if raw == "":
                        if "data" in fields:
                            event = Event(fields.get("id"), fields.get("event", "message"), json.loads(fields["data"]))
                            with self._cond:
                                self.events.append(event)
                                self._cond.notify_all()
                        fields = {}
                    elif raw.startswith(":"):
                        self.comments += 1
                    else:
                        name, _, value = raw.partition(":")
                        value = value[1:] if value.startswith(" ") else value
                        fields[name] = fields[name] + "\n" + value if name == "data" and name in fields else value
        except (requests.RequestException, ValueError, AttributeError):
            pass
        finally:
            with self._cond:
                self.ended = True
                self._cond.notify_all()

    def wait_for(self, predicate: Callable[[Event], bool], timeout: float = 10.0) -> Event:
        """Return the first event (old or new) that satisfies predicate; fail after timeout."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                for event in self.events:
                    if predicate(event):
                        return event
                left = deadline - time.monotonic()
                if left <= 0 or self.ended:
                    kinds = [(e.type, e.id) for e in self.events]
                    raise AssertionError(f"no matching event within {timeout}s on {self.url}; saw {kinds}")
                self._cond.wait(left)

    def of_type(self, kind: str) -> list[Event]:
        with self._cond:
            return [e for e in self.events if e.type == kind]

    def close(self) -> None:
        """Drop the connection now (the server sees the client go), not at the next keepalive."""
        self._closed = True
        if self.response is None:
            return
        connection = getattr(self.response.raw, "connection", None)
        sock = getattr(connection, "sock", None)
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
        self._thread.join(5)


def eventually(probe: Callable[[], Any], timeout: float = 10.0, interval: float = 0.05) -> Any:
    """Return probe()'s first truthy value, polling until timeout; fail with the last value."""
    deadline = time.monotonic() + timeout
    while True:
        value = probe()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout}s; last value {value!r}")
        time.sleep(interval)
