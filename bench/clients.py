"""Load generators for the benchmarks: HTTP/1.1 and Server-Sent Events over raw asyncio sockets.

Each public `run_*` function is the body of one load process (started by the harness with
multiprocessing, spawn): it does its work, then puts one picklable result on the queue it was given.
Times are `time.monotonic_ns()` (CLOCK_MONOTONIC, one clock for every process of the machine) or, to
compare with a stream id (Redis's wall clock in ms), `time.time()`.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import random
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import redis

CONNECT_TIMEOUT_S = 10.0


@dataclass
class Reply:
    status: int
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


class HttpConnection:
    """One keep-alive HTTP/1.1 connection: one request at a time, body read by length or chunks."""

    def __init__(self, base_url: str):
        parts = urlsplit(base_url)
        self.host, self.port = parts.hostname or "127.0.0.1", parts.port or 80
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def open(self) -> None:
        self.reader, self.writer = await asyncio.wait_for(asyncio.open_connection(self.host, self.port),
                                                          CONNECT_TIMEOUT_S)

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
        self.reader = self.writer = None

    async def request(self, method: str, path: str, body: Any = None, headers: dict[str, str] | None = None
                      ) -> Reply:
        """Send one request and read the whole answer; reconnect once if the server closed the connection."""
        for attempt in (0, 1):
            if self.writer is None:
                await self.open()
            try:
                return await self._exchange(method, path, body, headers or {})
            except (ConnectionError, asyncio.IncompleteReadError):
                self.close()
                if attempt:
                    raise
        raise AssertionError("unreachable")

    async def _exchange(self, method: str, path: str, body: Any, headers: dict[str, str]) -> Reply:
        assert self.reader is not None and self.writer is not None
        payload = b"" if body is None else json.dumps(body).encode()
        head = [f"{method} {path} HTTP/1.1", f"Host: {self.host}:{self.port}", "Connection: keep-alive"]
        if body is not None:
            head += ["Content-Type: application/json", f"Content-Length: {len(payload)}"]
        head += [f"{k}: {v}" for k, v in headers.items()]
        self.writer.write(("\r\n".join(head) + "\r\n\r\n").encode() + payload)
        status, response_headers = await read_head(self.reader)
        if "content-length" in response_headers:
            data = await self.reader.readexactly(int(response_headers["content-length"]))
        elif response_headers.get("transfer-encoding", "").lower() == "chunked":
            data = b"".join([chunk async for chunk in read_chunks(self.reader)])
        else:
            data = await self.reader.read()
        if response_headers.get("connection", "").lower() == "close":
            self.close()
        return Reply(status, data)


async def read_head(reader: asyncio.StreamReader) -> tuple[int, dict[str, str]]:
    """Read a status line and headers; return the status and lower-cased headers."""
    line = await reader.readline()
    if not line:
        raise ConnectionError("connection closed before a response")
    status = int(line.split()[1])
    headers: dict[str, str] = {}
    while True:
        line = await reader.readline()
        if line in (b"\r\n", b"\n", b""):
            return status, headers
        name, _, value = line.decode("latin-1").partition(":")
        headers[name.strip().lower()] = value.strip()


async def read_chunks(reader: asyncio.StreamReader) -> AsyncIterator[bytes]:
    """Yield the chunks of a chunked body until its last (empty) chunk."""
    while True:
        size_line = await reader.readline()
        if not size_line:
            raise asyncio.IncompleteReadError(b"", None)
        size = int(size_line.split(b";")[0], 16)
        if size == 0:
            await reader.readline()
            return
        chunk = await reader.readexactly(size + 2)
        yield chunk[:-2]


@dataclass
class SSEEvent:
    id: str | None
    type: str
    data: str
    received_ns: int
    received_wall_ms: float


@dataclass
class SSEStream:
    """One Server-Sent Events subscription; calls on_event for each event, in arrival order."""

    url: str
    on_event: Callable[[int, SSEEvent], None]
    index: int = 0
    opened: bool = False
    ended: bool = False
    error: str | None = None
    events: int = 0
    task: asyncio.Task[None] | None = field(default=None, repr=False)
    _writer: asyncio.StreamWriter | None = field(default=None, repr=False)

    async def run(self, ready: asyncio.Event | None = None) -> None:
        parts = urlsplit(self.url)
        path = parts.path + (f"?{parts.query}" if parts.query else "")
        try:
            reader, writer = await asyncio.wait_for(
                asyncio.open_connection(parts.hostname, parts.port), CONNECT_TIMEOUT_S)
            self._writer = writer
            writer.write((f"GET {path} HTTP/1.1\r\nHost: {parts.hostname}:{parts.port}\r\n"
                          "Accept: text/event-stream\r\nCache-Control: no-cache\r\n\r\n").encode())
            status, headers = await asyncio.wait_for(read_head(reader), CONNECT_TIMEOUT_S)
            if status != 200:
                self.error = f"status {status}"
                return
            self.opened = True
            if ready is not None:
                ready.set()
            buffer = b""
            chunked = headers.get("transfer-encoding", "").lower() == "chunked"
            source = read_chunks(reader) if chunked else _raw(reader)
            async for chunk in source:
                buffer += chunk
                while b"\n\n" in buffer:
                    block, buffer = buffer.split(b"\n\n", 1)
                    self._dispatch(block)
            self.error = "server ended the stream"
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # a dropped client is a result, not a crash of the load process
            self.error = f"{type(exc).__name__}: {exc}"
        finally:
            self.ended = True
            if ready is not None:
                ready.set()

    def _dispatch(self, block: bytes) -> None:
        fields: dict[str, str] = {}
        for line in block.decode("utf-8").split("\n"):
            if not line or line.startswith(":"):
                continue
            name, _, value = line.partition(":")
            value = value[1:] if value.startswith(" ") else value
            fields[name] = fields[name] + "\n" + value if name == "data" and name in fields else value
        if "data" not in fields:
            return
        self.events += 1
        self.on_event(self.index, SSEEvent(fields.get("id"), fields.get("event", "message"), fields["data"],
                                           time.monotonic_ns(), time.time() * 1000))

    def close(self) -> None:
        if self._writer is not None:
            with contextlib.suppress(Exception):
                self._writer.close()
        if self.task is not None:
            self.task.cancel()


async def _raw(reader: asyncio.StreamReader) -> AsyncIterator[bytes]:
    while True:
        data = await reader.read(65536)
        if not data:
            return
        yield data


async def open_streams(urls: list[str], on_event: Callable[[int, SSEEvent], None], *,
                       concurrency: int = 50) -> list[SSEStream]:
    """Open every stream (at most `concurrency` handshakes at once) and return them once all answered."""
    streams = [SSEStream(url, on_event, index=i) for i, url in enumerate(urls)]
    gate = asyncio.Semaphore(concurrency)

    async def start(stream: SSEStream) -> None:
        async with gate:
            ready = asyncio.Event()
            stream.task = asyncio.create_task(stream.run(ready))
            await asyncio.wait_for(ready.wait(), CONNECT_TIMEOUT_S + 5)

    await asyncio.gather(*(start(s) for s in streams), return_exceptions=True)
    return streams


async def _wait_flag(flag: Any, poll_s: float = 0.02) -> None:
    while not flag.is_set():
        await asyncio.sleep(poll_s)


# B0: Redis alone ---------------------------------------------------------------------------------


def run_redis_reader(redis_url: str, stream: str, count: int, ready: Any, results: Any) -> None:
    """Read `count` entries with a blocking XREAD; put the write-to-read latencies (ns) on results."""
    r = redis.Redis.from_url(redis_url)
    latencies: list[int] = []
    position = "$"
    ready.set()
    deadline = time.monotonic() + 120
    while len(latencies) < count and time.monotonic() < deadline:
        batch = r.xread({stream: position}, count=100, block=1000)
        now = time.monotonic_ns()
        for entry_id, fields in batch[0][1] if batch else []:
            position = entry_id
            latencies.append(now - int(fields[b"t"]))
    results.put(("reader", latencies))


def run_redis_writer(redis_url: str, stream: str, count: int, interval_s: float, results: Any) -> None:
    """XADD `count` entries stamped with their send time, one every interval (jittered)."""
    r = redis.Redis.from_url(redis_url)
    for _ in range(count):
        r.xadd(stream, {"t": time.monotonic_ns()}, maxlen=10_000, approximate=True)
        time.sleep(interval_s * random.uniform(0.5, 1.5))
    results.put(("writer", count))


# B1 / B2: press, then watch the stream ------------------------------------------------------------


def run_listener(urls: list[str], mode: str, ready: Any, stop: Any, results: Any) -> None:
    """Listen to SSE streams until stop is set; put what arrived (per mode) and who dropped on results.

    mode "pages": {alert id: (received ns, event type, ms from XADD to arrival)} from page and page_updated events.
    mode "notices": per stream, [(received ns, has a vip_redirect notice)] for each notice event.
    mode "delivery": stream-id-to-client latencies (ms) of every live event, per event type.
    mode "region": all three, its notices by the branch of the stream.
    """
    results.put(asyncio.run(_listen(urls, mode, ready, stop)))


async def _listen(urls: list[str], mode: str, ready: Any, stop: Any) -> dict[str, Any]:
    arrivals: dict[str, tuple[int, str, float]] = {}
    notices: dict[Any, list[tuple[int, bool]]] = {}
    delivery: dict[str, list[float]] = {}
    regional = mode == "region"

    def on_event(index: int, event: SSEEvent) -> None:
        if mode == "region":
            if event.type in ("page", "page_updated", "notice"):
                record("pages" if event.type != "notice" else "notices", index, event)
            record("delivery", index, event)
        else:
            record(mode, index, event)

    def record(mode: str, index: int, event: SSEEvent) -> None:
        if mode == "pages" and event.type in ("page", "page_updated"):
            page = json.loads(event.data).get("page", {})
            delivery_ms = event.received_wall_ms - int((event.id or "0-0").split("-")[0])
            for alert_id in page.get("details", {}).get("alert_ids", []):
                arrivals.setdefault(alert_id, (event.received_ns, event.type, delivery_ms))
        elif mode == "notices" and event.type == "notice":
            kinds = [n.get("kind") for n in json.loads(event.data).get("notices", [])]
            key = urls[index].split("/branches/")[1].split("/")[0] if regional else index
            notices.setdefault(key, []).append((event.received_ns, "vip_redirect" in kinds))
        elif mode == "delivery" and event.id and event.type not in ("screen", "counter", "floor"):
            sent_ms = int(event.id.split("-")[0])
            delivery.setdefault(event.type, []).append(event.received_wall_ms - sent_ms)

    started = time.monotonic()
    streams = await open_streams(urls, on_event)
    connect_s = time.monotonic() - started
    ready.set()
    await _wait_flag(stop)
    dropped = [{"url": s.url.split("?")[0], "error": s.error} for s in streams if s.ended or not s.opened]
    events = sum(s.events for s in streams)
    for s in streams:
        s.close()
    await asyncio.sleep(0)
    return {"arrivals": arrivals, "notices": notices, "delivery": delivery, "connected": sum(s.opened for s in streams),
            "dropped": dropped, "events": events, "connect_s": connect_s}


def run_presses(base_url: str, presses: list[dict[str, Any]], rate_per_s: float, concurrency: int,
                results: Any) -> None:
    """Send each request ({path, body, token, base?, method?}) at an even rate, `concurrency` at most at once;
    put, in order, (sent ns, answered ns, status, JSON answer) for each."""
    results.put(asyncio.run(send_paced(base_url, presses, rate_per_s, concurrency)))


async def send_paced(base_url: str, presses: list[dict[str, Any]], rate_per_s: float, concurrency: int
                     ) -> dict[str, Any]:
    """Send requests at an even rate over keep-alive connections (per base URL); return what each got."""
    idle: dict[str, list[HttpConnection]] = {}
    gate = asyncio.Semaphore(concurrency)
    sent: list[Any] = [None] * len(presses)
    begin = time.monotonic()

    async def press(i: int, spec: dict[str, Any]) -> None:
        await asyncio.sleep(max(0.0, begin + i / rate_per_s - time.monotonic()))
        base = spec.get("base", base_url)
        async with gate:
            pool = idle.setdefault(base, [])
            conn = pool.pop() if pool else HttpConnection(base)
            try:
                t0 = time.monotonic_ns()
                headers = {"Authorization": f"Bearer {spec['token']}"} if spec.get("token") else {}
                reply = await conn.request(spec.get("method", "POST"), spec["path"], spec.get("body"), headers)
                sent[i] = (t0, time.monotonic_ns(), reply.status, reply.json() if reply.body else None)
            except Exception as exc:
                conn.close()
                sent[i] = (0, 0, 0, {"error": f"{type(exc).__name__}: {exc}"})
            pool.append(conn)

    await asyncio.gather(*(press(i, spec) for i, spec in enumerate(presses)))
    for pool in idle.values():
        for conn in pool:
            conn.close()
    return {"sent": sent, "elapsed_s": time.monotonic() - begin}


# B3 / B6: closed-loop load ------------------------------------------------------------------------


def run_load(base_url: str, method: str, paths: list[str], body: Any, clients: int, duration_s: float,
             max_requests: int | None, results: Any) -> None:
    """Keep `clients` connections busy (closed loop) for duration_s or max_requests; put the counts."""
    results.put(asyncio.run(_load(base_url, method, paths, body, clients, duration_s, max_requests)))


async def _load(base_url: str, method: str, paths: list[str], body: Any, clients: int, duration_s: float,
                max_requests: int | None) -> dict[str, Any]:
    latencies: list[int] = []
    statuses: dict[int, int] = {}
    budget = [max_requests if max_requests is not None else 1 << 62]
    begin = time.monotonic()
    end = begin + duration_s

    async def client(n: int) -> None:
        conn = HttpConnection(base_url)
        i = n
        try:
            while time.monotonic() < end and budget[0] > 0:
                budget[0] -= 1
                t0 = time.monotonic_ns()
                reply = await conn.request(method, paths[i % len(paths)], body)
                latencies.append(time.monotonic_ns() - t0)
                statuses[reply.status] = statuses.get(reply.status, 0) + 1
                i += clients
        finally:
            conn.close()

    outcomes = await asyncio.gather(*(client(n) for n in range(clients)), return_exceptions=True)
    elapsed = time.monotonic() - begin
    errors = [repr(o) for o in outcomes if isinstance(o, BaseException)]
    return {"requests": len(latencies), "elapsed_s": elapsed, "latencies_ns": latencies, "statuses": statuses,
            "errors": errors[:5]}
