"""The `lobby` command: run the system, run a service's worker, manage tokens, see the status, simulate a day,
archive and export the records.

Each command reads its environment once (services/runtime/settings.py, Context) and hands the context on. A
worker is whatever services/<service>/worker.py says it runs: the command finds it by the service's name.
"""

from __future__ import annotations

import argparse
import importlib
import itertools
import logging
import os
import signal
import sys
import time
from pathlib import Path
from types import FrameType

import redis

from services.domain.contracts import SERVICES
from services.runtime.settings import Context
from services.web import auth

# The simulator, found by name: it links the domain and the pager's report, which the CLI itself never imports.
SIMULATE = "services.simulate.command"
# The pager's archive of closed days and its retention, found by name as the simulator is.
ARCHIVE, RETENTION = "services.pager.archive", "services.pager.retention"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="lobby", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    up = sub.add_parser("up", help="run every service and worker (and Redis when REDIS_URL is unset)")
    up.add_argument("--host", default="127.0.0.1", help="address the web services listen on")
    up.add_argument("--var", default="var", type=Path,
                    help="where the embedded Redis keeps its data and `lobby up` its pid file (default ./var)")
    up.add_argument("--redis-port", type=_port, default=os.environ.get("LOBBY_REDIS_PORT") or "6390",
                    help="port of the embedded Redis (default LOBBY_REDIS_PORT, else 6390)")
    up.set_defaults(func=cmd_up)

    worker = sub.add_parser("worker", help="run one service's worker (its jobs, consumers and periodic tasks)")
    worker.add_argument("service", choices=SERVICES)
    worker.add_argument("--burst", action="store_true", help="do what is waiting, then stop")
    worker.set_defaults(func=cmd_worker)

    tokens = sub.add_parser("tokens", help="issue, list and revoke bearer tokens")
    tsub = tokens.add_subparsers(dest="action", required=True)
    issue = tsub.add_parser("issue", help="print a fresh token, and nothing else")
    issue.add_argument("--branch", required=True)
    who = issue.add_mutually_exclusive_group(required=True)
    who.add_argument("--counter", help="a counter's terminal")
    who.add_argument("--device", help="a manager's device (the manager's id)")
    who.add_argument("--screen", help="a lobby display or kiosk, as the branch's [[branches.screens]] names it")
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

    simulate = sub.add_parser("simulate", help="run a scenario's business day in seconds, through the real domain "
                                                "code on a private Redis; write its daily report",
                              formatter_class=argparse.RawTextHelpFormatter)
    importlib.import_module(SIMULATE).add_arguments(simulate)
    simulate.set_defaults(func=cmd_simulate)

    database_help = "the records database (default DATABASE_URL, else the SQLite file `lobby up` keeps: var/lobby.db)"
    migrate = sub.add_parser("migrate", help="create or bring up to date the records database's tables")
    migrate.add_argument("--database", help=database_help)
    migrate.add_argument("--grant", metavar="ROLE", help="PostgreSQL: let this role (the services') read and insert "
                                                         "records, and nothing else")
    migrate.set_defaults(func=cmd_migrate)

    archive = sub.add_parser("archive", help="copy a closed business day from Redis into the records database "
                                              "(again: nothing changes)")
    archive.add_argument("--branch", required=True)
    archive.add_argument("--day", type=_day, help="the business day, YYYY-MM-DD (default: every closed day "
                                                  "not archived yet)")
    archive.add_argument("--database", help=database_help)
    archive.set_defaults(func=cmd_archive)

    export = sub.add_parser("export", help="write archived pages, tickets or pauses as CSV or JSON Lines")
    export.add_argument("--branch", required=True)
    export.add_argument("--from", dest="first", type=_day, required=True, help="first day, YYYY-MM-DD")
    export.add_argument("--to", dest="last", type=_day, required=True, help="last day, YYYY-MM-DD (included)")
    export.add_argument("--what", choices=("pages", "tickets", "pauses"), required=True)
    export.add_argument("--format", choices=("csv", "jsonl"), default="csv")
    export.add_argument("--out", type=Path, help="the file to write (default: standard output)")
    export.add_argument("--database", help=database_help)
    export.set_defaults(func=cmd_export)

    args = parser.parse_args(argv)
    return args.func(args, Context.from_env()) or 0


def cmd_simulate(args: argparse.Namespace, ctx: Context) -> int:
    """Start a private Redis (never the system's), run the simulation on it, stop it."""
    import tempfile

    from services.ops.redis_server import RedisServer, StartError

    with tempfile.TemporaryDirectory(prefix="lobby-simulate-") as folder:
        socket = f"{folder}/redis.sock"
        server = RedisServer(Path(folder), appendonly=False,
                             extra_args=("--unixsocket", socket, "--unixsocketperm", "700"))
        try:
            server.start()
        except StartError as exc:
            return _fail(str(exc))
        previous = signal.signal(signal.SIGTERM, _interrupt)  # so the folder and the server go on SIGTERM too
        try:
            return importlib.import_module(SIMULATE).main(args, f"unix://{socket}")
        except KeyboardInterrupt:
            print("\nlobby simulate: interrupted; nothing more was written", file=sys.stderr)
            return 130
        finally:
            signal.signal(signal.SIGTERM, previous)
            server.stop()


def _interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt


def _fail(message: str) -> int:
    print(f"lobby: {message}", file=sys.stderr)
    return 2


def cmd_tokens_issue(args: argparse.Namespace, ctx: Context) -> int:
    branch = ctx.branches.get(args.branch)
    if branch is None:
        return _fail(f"unknown branch {args.branch!r}")
    if args.counter is not None:
        if branch.counter(args.counter) is None:
            return _fail(f"unknown counter {args.counter!r} in branch {branch.id}")
        kind, subject = auth.COUNTER, args.counter
    elif args.screen is not None:
        if branch.screen(args.screen) is None:
            known = ", ".join(s.id for s in branch.screens) or "none"
            return _fail(f"unknown screen {args.screen!r} in branch {branch.id} (its screens: {known})")
        kind, subject = auth.SCREEN, args.screen
    else:
        if branch.manager(args.device) is None:
            return _fail(f"unknown manager {args.device!r} in branch {branch.id}")
        kind, subject = auth.DEVICE, args.device
    print(auth.issue(ctx.for_branch(branch.id), branch.id, kind, subject))
    return 0


def cmd_tokens_revoke(args: argparse.Namespace, ctx: Context) -> int:
    if not auth.revoke(ctx.for_branch(args.branch), args.branch, args.token):
        return _fail("no such token")
    print("revoked")
    return 0


def cmd_tokens_list(args: argparse.Namespace, ctx: Context) -> int:
    for token in auth.list_tokens(ctx.for_branch(args.branch), args.branch):
        print(f"{token['id']}\t{token['kind']}\t{token['subject']}\t{token['issued_at']}")
    return 0


def _database(args: argparse.Namespace, ctx: Context) -> str:
    from services.records import database

    return args.database or ctx.settings.database_url or database.sqlite_url(Path("var") / DATABASE_FILE)


def _unknown_branch(branch_id: str, ctx: Context) -> int:
    return _fail(f"unknown branch {branch_id!r}; the branch file has {', '.join(sorted(ctx.branches))}")


# What a records database that cannot be reached, or a URL that names none, raises as we connect or first read.
def _database_errors() -> tuple[type[BaseException], ...]:
    from sqlalchemy.exc import SQLAlchemyError

    from services.records.database import NoDatabase

    return SQLAlchemyError, NoDatabase, ImportError, OSError


def cmd_migrate(args: argparse.Namespace, ctx: Context) -> int:
    from services.records import database

    url = _database(args, ctx)
    try:
        db = database.connect(url)
        database.migrate(db, grant_to=args.grant)
        print(f"records database at revision {database.current(db)}: {db.url.render_as_string()}"
              + (f"; {args.grant} may read and insert records" if args.grant else ""))
    except ValueError as exc:
        return _fail(str(exc))
    except _database_errors() as exc:
        return _fail(f"cannot migrate the records database: {exc}")
    return 0


def cmd_archive(args: argparse.Namespace, ctx: Context) -> int:
    from services.domain import held_days
    from services.records import database

    branch = ctx.branches.get(args.branch)
    if branch is None:
        return _unknown_branch(args.branch, ctx)
    archive = importlib.import_module(ARCHIVE)
    retention = importlib.import_module(RETENTION)
    r = ctx.for_branch(branch.id)
    try:
        db = database.connect(_database(args, ctx), create=False)
        if database.current(db) != database.head():
            return _fail("the records database is not migrated: run `lobby migrate` first")
        days = [args.day] if args.day else held_days.waiting(r, branch)
        for day in days:
            active = retention.still_active(r, branch, day)
            done = archive.archive_day(r, db, branch, day)
            counts = ", ".join(f"{n} {name}" for name, n in done.counts.items())
            print(f"{branch.id} {day}: {'archived' if done.written else 'already archived, unchanged'} ({counts})")
            if done.written and active:
                print(f"  {active} page(s) of the day were not resolved yet: archived as they stood")
    except ValueError as exc:
        return _fail(str(exc))
    except redis.RedisError as exc:
        return _fail(f"cannot reach Redis at {ctx.url_of(branch.id)}: {exc}")
    except _database_errors() as exc:
        return _fail(f"cannot archive into the records database: {exc}")
    if not days:
        print(f"{branch.id}: every closed day is archived")
    return 0


def cmd_export(args: argparse.Namespace, ctx: Context) -> int:
    """Write what the database holds, and nothing at all when it cannot be read: a file is written beside the
    one asked for and takes its place only once whole."""
    import tempfile

    from services.records import database, export

    if args.branch not in ctx.branches:
        return _unknown_branch(args.branch, ctx)
    if args.last < args.first:
        return _fail(f"--to {args.last} is before --from {args.first}")
    if args.out is not None and (args.out.is_dir() or not args.out.parent.is_dir()):
        return _fail(f"cannot write {args.out}: " + ("it is a folder" if args.out.is_dir() else "no such folder"))
    part: Path | None = None
    try:
        db = database.connect(_database(args, ctx), create=False)
        rows = export.records(db, args.branch, args.first, args.last, args.what)
        first = next(rows, None)  # the database answers before anything is written
        rows = itertools.chain([first] if first is not None else [], rows)
        if args.out is None:
            export.write(rows, args.what, args.format, sys.stdout)
            return 0
        with tempfile.NamedTemporaryFile("w", encoding="utf-8", newline="", dir=args.out.parent,
                                         prefix=f".{args.out.name}.", delete=False) as out:
            part = Path(out.name)
            count = export.write(rows, args.what, args.format, out)
        os.replace(part, args.out)
        part = None
        print(f"wrote {count} {args.what} to {args.out}", file=sys.stderr)
    except _database_errors() as exc:
        return _fail(f"cannot export from the records database: {exc}")
    finally:
        if part is not None:
            part.unlink(missing_ok=True)
    return 0


def cmd_status(args: argparse.Namespace, ctx: Context) -> int:
    import json

    from services.ops import status

    try:
        found = status.collect(ctx)
    except redis.RedisError as exc:
        return _fail(f"cannot reach Redis at {ctx.settings.redis_url}: {exc}")
    print(json.dumps(found, indent=2, ensure_ascii=False) if args.json else status.render(found))
    return 0


def cmd_worker(args: argparse.Namespace, ctx: Context) -> int:
    from services.runtime import logs, worker

    logs.setup(f"{args.service}-worker")
    service = importlib.import_module(f"services.{args.service}.worker")
    worker.run(ctx, service.work(ctx), burst=args.burst)
    return 0


def _port(text: str) -> int:
    """Read a TCP port number (argparse type)."""
    try:
        port = int(text)
    except ValueError:
        port = 0
    if not 0 < port < 65536:
        raise argparse.ArgumentTypeError(f"not a port number: {text!r}")
    return port


# The file under --var where `lobby up` records its pid and its children's.
PID_FILE = "lobby.pid"
# The records database `lobby up` keeps under --var when DATABASE_URL is unset.
DATABASE_FILE = "lobby.db"


def _day(text: str) -> str:
    """Read a business day, YYYY-MM-DD (argparse type)."""
    from datetime import date

    try:
        if len(text) != len("YYYY-MM-DD"):
            raise ValueError(text)
        return date.fromisoformat(text).isoformat()
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a day as YYYY-MM-DD: {text!r}") from None


def _port_hint(role: str) -> str:
    """Return how to choose another port for the embedded Redis or a web service."""
    if role == "redis":
        return "choose another with --redis-port (or LOBBY_REDIS_PORT)"
    return f"it is the {role} service's port: choose another with {role.upper()}_PORT"


def cmd_up(args: argparse.Namespace, ctx: Context) -> int:
    from services.ops.redis_server import PortTaken, StartError
    from services.ops.stack import Stack

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    logging.getLogger("alembic").setLevel(logging.WARNING)
    settings = ctx.settings
    var = args.var.resolve()
    stack = Stack(ports=settings.ports, redis_url=os.environ.get("REDIS_URL") or None,
                  config_path=settings.config_path, host=args.host, var_dir=var, redis_port=args.redis_port,
                  pid_file=var / PID_FILE, database_url=settings.database_url)
    stopping = False

    def stop(signum: int, frame: FrameType | None) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGTERM, stop)
    try:
        stack.start()
    except PortTaken as exc:
        return _fail(f"{exc}; {_port_hint(exc.role)}")
    except StartError as exc:
        return _fail(str(exc))
    assert stack.redis_url
    _print_demo(stack, Context.of(settings.model_copy(update={"redis_url": stack.redis_url})))
    try:
        while not stopping:
            stack.supervise_once()
            time.sleep(0.5)
    finally:
        print("\nstopping…", flush=True)
        stack.stop()
    return 0


def _print_demo(stack: object, ctx: Context) -> None:
    """Print where each page and API is, with a fresh token for every screen, terminal and device."""
    from services.ops.stack import Stack

    assert isinstance(stack, Stack)
    shown = "localhost" if stack.host in ("0.0.0.0", "127.0.0.1") else stack.host
    from sqlalchemy.engine import make_url

    records = make_url(stack.database_url).render_as_string(hide_password=True) if stack.database_url else "none"
    lines = [f"Redis: {stack.redis_url}", f"Records database: {records}"]
    for branch in ctx.branches.values():
        r = ctx.for_branch(branch.id)
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
            "  Screens, terminals and devices: open each page once with its token; the page keeps it and drops it"
            " from the address. A screen opened so is supervised: the manager is paged when it goes offline.",
        ]
        for s in branch.screens:
            token = auth.issue(r, branch.id, auth.SCREEN, s.id)
            page = "screen" if s.kind == "display" else "kiosk"
            lines.append(f"  Screen {s.id:<8} {s.kind:<8}  {kiosk}{pages}/{page}?token={token}")
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
            lines.append(f"  Device {m.id:<15} trends  {pager}{pages}/trends?token={token}")
    lines += ["", "Ctrl-C stops everything."]
    print("\n".join(lines), flush=True)


if __name__ == "__main__":
    sys.exit(main())
