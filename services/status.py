"""`lobby status`: what an operator checks first. Queues, the page-request stream, workers, failed jobs, and each
branch's open pages.

Read-only: it reads Redis as the services do, so it works from any host that reaches Redis.
"""

from __future__ import annotations

import json
import time
from typing import Any
from urllib.parse import urlsplit

import redis
from rq import Worker
from rq.registry import FailedJobRegistry, ScheduledJobRegistry, StartedJobRegistry

from services.common import contracts, counters, keys, tickets
from services.common.config import Branch, by_redis
from services.common.redis import get_redis, get_rq_redis
from services.pager.pages import PRIORITY_ORDER


def collect(branches: dict[str, Branch], default_url: str) -> dict[str, Any]:
    """Gather the status as plain data (the --json output), from every Redis the branches live on."""
    by_url = by_redis(branches.values(), default_url)
    urls = sorted(set(by_url) | {default_url})
    found: dict[str, Any] = {"queues": [], "page_requests": [], "workers": [], "branches": []}
    for url in urls:
        shard = _shard(get_redis(url), get_rq_redis(url), by_url.get(url, []))
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
        queue = contracts.queue(name, rq)
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
    workers = []
    for worker in Worker.all(connection=rq):
        beat = worker.last_heartbeat.timestamp() if worker.last_heartbeat else None
        workers.append({"name": worker.name, "queues": worker.queue_names(), "state": worker.get_state(),
                        "heartbeat_s_ago": round(now - beat, 1) if beat else None,
                        "current_job": worker.get_current_job_id()})
    # Pages no longer travel as RQ jobs: the pager queue's depth says nothing of them, the stream's backlog does.
    return {"queues": queues, "page_requests": [contracts.page_request_backlog(r)],
            "workers": sorted(workers, key=lambda w: w["name"]),
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
    heads = tickets.lines(r, branch).category_heads([c.id for c in branch.categories])
    return {
        "branch": branch.id,
        "open_pages": dict(sorted(open_pages.items(), key=lambda kv: PRIORITY_ORDER[kv[0]])),
        "oldest_open_page_s": round(oldest_s) if oldest_s is not None else None,
        "acknowledged_pages": len(active) - sum(open_pages.values()),
        "outbox": r.hlen(keys.outbox(branch.id)),
        "counters": {c: s.status for c, s in states.items()},
        "waiting": {c: h.count for c, h in heads.items()},
    }


def render(status: dict[str, Any]) -> str:
    """Format the status as text for a terminal."""
    out = ["QUEUE      QUEUED  STARTED  SCHEDULED  FAILED"]
    for q in status["queues"]:
        out.append(f"{q['queue']:<10} {q['queued']:>6}  {q['started']:>7}  {q['scheduled']:>9}  {q['failed']:>6}")
        out += [f"  failed {f['id']}: {f['function']}: {f['error']}" for f in q["recent_failures"]]
    out.append("")
    # Unread: no pager worker has taken them yet. In hand: taken by a worker, pages not yet out.
    out.append("PAGE REQUESTS          UNREAD  IN HAND")
    for stream in status["page_requests"]:
        where = f"  {stream['redis']}" if "redis" in stream else ""
        out.append(f"{stream['stream']:<22} {stream['lag']:>6}  {stream['pending']:>7}{where}")
        out += [f"  consumer {c['name']:<40} in hand {c['pending']:>4}  idle {c['idle_s']} s"
                for c in stream["consumers"]]
    out.append("")
    out.append(f"WORKERS ({len(status['workers'])})")
    if not status["workers"]:
        out.append("  none: nothing is working the queues")
    for w in status["workers"]:
        beat = f"{w['heartbeat_s_ago']} s ago" if w["heartbeat_s_ago"] is not None else "never"
        out.append(f"  {w['name']:<40} {','.join(w['queues']):<8} {w['state']:<10} heartbeat {beat}"
                   + (f"  job {w['current_job']}" if w["current_job"] else ""))
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
    return "\n".join(out)
