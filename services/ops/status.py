"""`lobby status`: what an operator checks first. The RQ queues and failed jobs, the streams between services
(page requests, page news) and who holds what, the workers and their heartbeats, the web processes' live
streams and the Redis connections by who holds them, each branch's open pages, how
far its archive is behind, and where each of its screens, terminals and devices stands (live, offline, or never
heard of: unsupervised).

Read-only: it reads Redis as the services do, so it works from any host that reaches Redis.
"""

from __future__ import annotations

import json
import time
from typing import Any
from urllib.parse import urlsplit

import redis
from rq.registry import FailedJobRegistry, ScheduledJobRegistry, StartedJobRegistry

from services.domain import contracts, counters, held_days, keys, presence, tickets
from services.domain.branch import Branch
from services.domain.pages import PRIORITY_ORDER
from services.runtime import consumer, messages
from services.runtime import redis as clients
from services.runtime.settings import Context
from services.runtime.worker import running
from services.web import hub


def collect(ctx: Context) -> dict[str, Any]:
    """Gather the status as plain data (the --json output), from every Redis the branches live on."""
    urls = ctx.urls()
    found: dict[str, Any] = {"queues": [], "streams": [], "workers": [], "live": [], "connections": [],
                             "branches": []}
    for url in urls:
        shard = _shard(ctx.redis(url), ctx.rq(url), ctx.on(url))
        for part in found:
            found[part] += [{**item, "redis": _public(url)} if len(urls) > 1 else item for item in shard[part]]
    return found


def _public(url: str) -> str:
    """Return a Redis URL without its password, for display."""
    parts = urlsplit(url)
    return parts._replace(netloc=parts.netloc.rpartition("@")[2]).geturl()


def _shard(r: redis.Redis, rq: redis.Redis, branches: list[Branch]) -> dict[str, Any]:
    now = time.time()
    queues = []
    for name in contracts.QUEUES:
        queue = messages.queue(name, rq)
        failed = FailedJobRegistry(queue=queue)
        recent = []
        for job_id in failed.get_job_ids(0, 4):
            job = queue.fetch_job(job_id)
            if job is not None:
                last = (job.latest_result().exc_string or "").strip().splitlines() if job.latest_result() else []
                recent.append({"id": job_id, "function": job.func_name, "error": last[-1] if last else None})
        queues.append({"queue": name, "queued": queue.count, "started": StartedJobRegistry(queue=queue).count,
                       "scheduled": ScheduledJobRegistry(queue=queue).count, "failed": failed.count,
                       "recent_failures": recent})
    workers = [{"name": w["name"], "service": w["service"], "heartbeat_s_ago": round(now - float(w["beat"]), 1),
                "pid": int(w["pid"]), "host": w["host"]} for w in running(r)]
    live = [{"service": service, **held} for service, held in sorted(hub.by_service(r).items())]
    connections = [{"role": role, "connections": n} for role, n in sorted(clients.connections(r).items())]
    return {"queues": queues, "streams": [consumer.backlog(r, channel) for channel in contracts.CHANNELS],
            "workers": sorted(workers, key=lambda w: w["name"]), "live": live, "connections": connections,
            "branches": [_branch(r, branch, now) for branch in branches]}


def _branch(r: redis.Redis, branch: Branch, now: float) -> dict[str, Any]:
    active = r.zrange(keys.pages_active(branch.id), 0, -1, withscores=True)
    raws = r.mget([keys.page(branch.id, page_id) for page_id, _ in active]) if active else []
    open_pages: dict[str, int] = {}
    oldest_s = None
    for (_, created_ms), raw in zip(active, raws, strict=True):
        if not raw:
            continue
        page = json.loads(raw)
        if page["status"] != "open":
            continue
        open_pages[page["priority"]] = open_pages.get(page["priority"], 0) + 1
        age = now - created_ms / 1000
        oldest_s = age if oldest_s is None else max(oldest_s, age)
    states = counters.load_all(r, branch)
    heads = tickets.TicketReader(r, branch).lines.category_heads([c.id for c in branch.categories])
    lag = held_days.lag(r, branch)
    held, _ = held_days.closed(r, branch)
    now_ms = int(now * 1000)
    endpoints = [{"endpoint": p.endpoint, "state": p.state,
                  "seen_s_ago": round((now_ms - p.seen_ms) / 1000) if p.seen_ms is not None else None,
                  "offline_since_s": round((now_ms - p.offline_since_ms) / 1000)
                  if p.offline_since_ms is not None else None}
                 for p in presence.of(r, branch, presence.endpoints(branch), now_ms)]
    return {
        "branch": branch.id,
        "open_pages": dict(sorted(open_pages.items(), key=lambda kv: PRIORITY_ORDER[kv[0]])),
        "oldest_open_page_s": round(oldest_s) if oldest_s is not None else None,
        "acknowledged_pages": len(active) - sum(open_pages.values()),
        "outbox": r.hlen(keys.outbox(branch.id)),
        "counters": {c: s.status for c, s in states.items()},
        "waiting": {c: h.count for c, h in heads.items()},
        "endpoints": endpoints,
        "archive": {"waiting_days": lag.days, "oldest_waiting": lag.oldest, "oldest_age_days": lag.oldest_age_days,
                    "closed_days_in_redis": len(held)},
    }


def render(status: dict[str, Any]) -> str:
    """Format the status as text for a terminal."""
    out = ["QUEUE      QUEUED  STARTED  SCHEDULED  FAILED"]
    for q in status["queues"]:
        out.append(f"{q['queue']:<10} {q['queued']:>6}  {q['started']:>7}  {q['scheduled']:>9}  {q['failed']:>6}")
        out += [f"  failed {f['id']}: {f['function']}: {f['error']}" for f in q["recent_failures"]]
    out.append("")
    # Unread: no worker of the reading service has taken them yet. In hand: taken by a worker, not yet done.
    out.append("STREAM                 READ BY  UNREAD  IN HAND")
    for stream in status["streams"]:
        where = f"  {stream['redis']}" if "redis" in stream else ""
        out.append(f"{stream['stream']:<22} {stream['group']:<8} {stream['lag']:>6}  {stream['pending']:>7}{where}")
        out += [f"  consumer {c['name']:<40} in hand {c['pending']:>4}  idle {c['idle_s']} s"
                for c in stream["consumers"]]
    out.append("")
    out.append(f"WORKERS ({len(status['workers'])})")
    if not status["workers"]:
        out.append("  none: no worker is running")
    for w in status["workers"]:
        out.append(f"  {w['name']:<40} {w['service']:<8} pid {w['pid']:<7} heartbeat {w['heartbeat_s_ago']} s ago")
    out.append("")
    # Each web process reads each stream once for all its clients: connections follow streams and processes.
    out.append("LIVE       PROCESSES  CLIENTS  STREAMS  READERS")
    if not status["live"]:
        out.append("  none: no web process has served a live stream since it started")
    for live in status["live"]:
        where = f"  {live['redis']}" if "redis" in live else ""
        out.append(f"{live['service']:<10} {live['processes']:>9}  {live['clients']:>7}  {live['streams']:>7}  "
                   f"{live['readers']:>7}{where}")
    out.append("")
    total = sum(c["connections"] for c in status["connections"])
    out.append(f"REDIS CONNECTIONS ({total})")
    for c in status["connections"]:
        where = f"  {c['redis']}" if "redis" in c else ""
        out.append(f"  {c['role']:<16} {c['connections']:>5}{where}")
    out.append("")
    out.append("BRANCH        OPEN PAGES                      OLDEST  ACKED  OUTBOX  COUNTERS  WAITING")
    for b in status["branches"]:
        pages = ", ".join(f"{n} {p}" for p, n in b["open_pages"].items()) or "none"
        oldest = f"{b['oldest_open_page_s']} s" if b["oldest_open_page_s"] is not None else "-"
        states = [s for s in b["counters"].values()]
        summary = f"{states.count('open')} open" + (f", {states.count('paused')} paused" if "paused" in states else "")
        summary += f", {states.count('closed')} closed" if "closed" in states else ""
        out.append(f"{b['branch']:<13} {pages:<31} {oldest:>6}  {b['acknowledged_pages']:>5}  {b['outbox']:>6}  "
                   f"{summary}  {sum(b['waiting'].values())}")
    out.append("")
    # Closed days wait in Redis until the records database holds them (the pager's archive job).
    out.append("BRANCH        ARCHIVE")
    for b in status["branches"]:
        a = b["archive"]
        behind = (f"{a['waiting_days']} closed day(s) not archived, oldest {a['oldest_waiting']} "
                  f"({a['oldest_age_days']} days ago)" if a["waiting_days"] else "every closed day archived")
        out.append(f"{b['branch']:<13} {behind}; Redis holds {a['closed_days_in_redis']} closed day(s)")
    out.append("")
    out.append("BRANCH        ENDPOINT                        STATE         SINCE")
    for b in status["branches"]:
        for e in b["endpoints"]:
            since = (f"offline {e['offline_since_s']} s" if e["offline_since_s"] is not None
                     else f"heard {e['seen_s_ago']} s ago" if e["seen_s_ago"] is not None else "-")
            out.append(f"{b['branch']:<13} {e['endpoint']:<31} {e['state']:<13} {since}")
    return "\n".join(out)
