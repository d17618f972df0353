"""The `lobby` command: run the system, run a worker, manage tokens."""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from types import FrameType

import redis

from services.common import auth
from services.common.config import Settings, load_branches
from services.common.contracts import COUNTER, KIOSK, PAGER, QUEUES
from services.common.redis import get_redis


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="lobby", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    up = sub.add_parser("up", help="run every service and worker (and Redis when REDIS_URL is unset)")
    up.add_argument("--host", default="127.0.0.1", help="address the web services listen on")
    up.add_argument("--var", default="var", type=Path, help="where the embedded Redis keeps its data")
    up.add_argument("--redis-port", type=int, default=6390, help="port of the embedded Redis")
    up.set_defaults(func=cmd_up)

    worker = sub.add_parser("worker", help="run the RQ worker (with the scheduler) of one service")
    worker.add_argument("queue", choices=QUEUES)
    worker.add_argument("--burst", action="store_true", help="stop when the queue is empty")
    worker.set_defaults(func=cmd_worker)

    tokens = sub.add_parser("tokens", help="issue, list and revoke bearer tokens")
    tsub = tokens.add_subparsers(dest="action", required=True)
    issue = tsub.add_parser("issue", help="print a fresh token, and nothing else")
    issue.add_argument("--branch", required=True)
    who = issue.add_mutually_exclusive_group(required=True)
    who.add_argument("--counter", help="a counter's terminal")
    who.add_argument("--device", help="a manager's device (the manager's id)")
    issue.set_defaults(func=cmd_tokens_issue)
    revoke = tsub.add_parser("revoke", help="revoke a token (whole, or its id); effective at once")
    revoke.add_argument("--branch", required=True)
    revoke.add_argument("token")
    revoke.set_defaults(func=cmd_tokens_revoke)
    listing = tsub.add_parser("list", help="list a branch's tokens (ids, never secrets)")
    listing.add_argument("--branch", required=True)
    listing.set_defaults(func=cmd_tokens_list)

    status = sub.add_parser("status", help="queues, workers, failed jobs and open pages per branch")
    status.add_argument("--json", action="store_true", help="print the status as JSON")
    status.set_defaults(func=cmd_status)

    args = parser.parse_args(argv)
    return args.func(args) or 0


def _fail(message: str) -> int:
    print(f"lobby: {message}", file=sys.stderr)
    return 2


def _branch_redis(branch_id: str) -> redis.Redis:
    """Return the client of the Redis a branch lives on (the default one for a branch not configured)."""
    settings = Settings.from_env()
    branch = load_branches(settings.config_path).get(branch_id)
    return get_redis(branch.lives_on(settings.redis_url) if branch else settings.redis_url)


def cmd_tokens_issue(args: argparse.Namespace) -> int:
    settings = Settings.from_env()
    branch = load_branches(settings.config_path).get(args.branch)
    if branch is None:
        return _fail(f"unknown branch {args.branch!r}")
    if args.counter is not None:
        if branch.counter(args.counter) is None:
            return _fail(f"unknown counter {args.counter!r} in branch {branch.id}")
        kind, subject = auth.COUNTER, args.counter
    else:
        if branch.manager(args.device) is None:
            return _fail(f"unknown manager {args.device!r} in branch {branch.id}")
        kind, subject = auth.DEVICE, args.device
    print(auth.issue(get_redis(branch.lives_on(settings.redis_url)), branch.id, kind, subject))
    return 0


def cmd_tokens_revoke(args: argparse.Namespace) -> int:
    if not auth.revoke(_branch_redis(args.branch), args.branch, args.token):
        return _fail("no such token")
    print("revoked")
    return 0


def cmd_tokens_list(args: argparse.Namespace) -> int:
    for token in auth.list_tokens(_branch_redis(args.branch), args.branch):
        print(f"{token['id']}\t{token['kind']}\t{token['subject']}\t{token['issued_at']}")
    return 0


def cmd_status(args: argparse.Namespace) -> int:
    import json

    from services import status

    settings = Settings.from_env()
    try:
        found = status.collect(load_branches(settings.config_path), settings.redis_url)
    except redis.RedisError as exc:
        return _fail(f"cannot reach Redis at {settings.redis_url}: {exc}")
    print(json.dumps(found, indent=2, ensure_ascii=False) if args.json else status.render(found))
    return 0


def cmd_worker(args: argparse.Namespace) -> int:
    from services.common import logs, worker

    logs.setup(f"{args.queue}-worker")
    periodic: list[tuple[float, Callable[[], object]]] = []
    background: list[Callable[[threading.Event], object]] = []
    if args.queue == PAGER:
        from services.pager import intake
        from services.pager.escalation import POLL_S
        from services.pager.jobs import fire_timers, sweep
        from services.pager.retention import sweep_all

        periodic.append((POLL_S, fire_timers))
        periodic.append((1.0, sweep))
        periodic.append((60.0, sweep_all))
        if args.burst:
            intake.drain()  # the page requests waiting now, then the queue's jobs
        else:
            background.append(intake.consume)  # pages come by the page-request stream, not by RQ jobs
    elif args.queue == COUNTER:
        from services.counter.watch import watch

        periodic.append((1.0, watch))
    elif args.queue == KIOSK:
        from services.kiosk.jobs import REDRAW_EVERY_S, redraw_stale_screens

        periodic.append((REDRAW_EVERY_S, redraw_stale_screens))
    worker.run(args.queue, periodic=periodic, background=background, burst=args.burst)
    return 0


def cmd_up(args: argparse.Namespace) -> int:
    from services.stack import Stack

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    settings = Settings.from_env()
    stack = Stack(ports=settings.ports, redis_url=os.environ.get("REDIS_URL") or None,
                  config_path=settings.config_path, host=args.host, var_dir=args.var, redis_port=args.redis_port)
    stopping = False

    def stop(signum: int, frame: FrameType | None) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGTERM, stop)
    stack.start()
    _print_demo(stack, settings)
    try:
        while not stopping:
            stack.supervise_once()
            time.sleep(0.5)
    finally:
        print("\nstopping…", flush=True)
        stack.stop()
    return 0


def _print_demo(stack: object, settings: Settings) -> None:
    from services.stack import Stack

    assert isinstance(stack, Stack) and stack.redis_url
    shown = "localhost" if stack.host in ("0.0.0.0", "127.0.0.1") else stack.host
    lines = [f"Redis: {stack.redis_url}"]
    for branch in load_branches(settings.config_path).values():
        r = get_redis(branch.lives_on(stack.redis_url))
        kiosk = f"http://{shown}:{stack.ports['kiosk']}"
        counter = f"http://{shown}:{stack.ports['counter']}"
        pager = f"http://{shown}:{stack.ports['pager']}"
        base = f"/api/v1/branches/{branch.id}"
        pages = f"/branches/{branch.id}"
        lines += [
            "",
            f"Branch {branch.id} ({branch.name})",
            f"  Kiosk (touchscreen):  {kiosk}{pages}/kiosk",
            f"  Lobby display:        {kiosk}{pages}/screen",
            f"  A customer's ticket:  {kiosk}{pages}/tickets/V001   (the QR code on each printed ticket)",
            f"  Take a ticket:  curl -X POST {kiosk}{base}/tickets -H 'Content-Type: application/json' "
            "-d '{\"category\": \"vip\"}'",
            f"  Lobby screen:   {kiosk}{base}/screen   (live: {kiosk}{base}/screen/events)",
            "  Terminals and devices: open each page once with its token; the page keeps it and drops it from"
            " the address.",
        ]
        for c in branch.counters:
            token = auth.issue(r, branch.id, auth.COUNTER, c.id)
            lines.append(f"  Counter {c.id:<4} terminal  {counter}{pages}/counters/{c.id}/terminal?token={token}")
            lines.append(f"  Counter {c.id:<4} API       {counter}{base}/counters/{c.id}   "
                         f"Authorization: Bearer {token}")
        for m in branch.managers:
            token = auth.issue(r, branch.id, auth.DEVICE, m.id)
            lines.append(f"  Device {m.id:<15} page  {pager}{pages}/device?token={token}")
            lines.append(f"  Device {m.id:<15} API   {pager}{base}/pages/events?token={token}")
            lines.append(f"  Device {m.id:<15} daily report  {pager}{pages}/report?token={token}")
    lines += ["", "Ctrl-C stops everything."]
    print("\n".join(lines), flush=True)


if __name__ == "__main__":
    sys.exit(main())
