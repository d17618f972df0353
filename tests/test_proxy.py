"""The scale profile's reverse proxy: deploy/nginx/lobby.conf, as docker-compose.yml runs it and as Debian's nginx
runs it here, in front of two real pager instances.

No Docker engine runs here. The live test generates its nginx configuration from the shipped file (only the
instances' addresses and the listening ports change), starts two gunicorn instances of the pager and nginx as
children in process groups of their own, and kills the instance that serves a device's event stream. The device
reconnects through nginx with its Last-Event-ID, as a browser's EventSource does, and gets every page once.
"""

from __future__ import annotations

import contextlib
import copy
import functools
import os
import re
import shutil
import signal
import subprocess
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import redis
import requests
import yaml

from services.domain import alerts, keys
from services.domain.branch import Branch
from services.domain.clock import SYSTEM
from services.domain.contracts import PageKind, Priority
from services.ops.redis_server import die_with_parent, free_port, listeners
from services.ops.stack import answers_ready, descendants, gunicorn_command
from services.pager import delivery
from services.runtime.settings import DEFAULT_PORTS
from services.web import auth
from services.web.sse import KEEPALIVE_S
from tests.conftest import BRANCH, bearer
from tests.sse import SSEClient, eventually, stream_seq

ROOT = Path(__file__).resolve().parent.parent
SHIPPED = ROOT / "deploy" / "nginx" / "lobby.conf"
COMPOSE_FILE = ROOT / "docker-compose.yml"
NGINX = Path("/usr/sbin/nginx")
# The instance that served a response (test configuration only: the shipped file does not tell clients).
UPSTREAM_HEADER = "X-Upstream"
# An event written reaches the client through nginx within this: it is passed on, not buffered.
UNBUFFERED_S = 2.0


# ------------------------------------------------------------------------------------- nginx configuration


@dataclass
class Directive:
    """One nginx directive: its name, its arguments and, for a block (`server {}`), what it holds."""

    name: str
    args: list[str]
    block: list[Directive] | None = None

    def children(self, name: str) -> list[Directive]:
        """Return the directives of this name the block holds."""
        return [d for d in self.block or [] if d.name == name]


TOKEN = re.compile(r"""#[^\n]*|"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'|[{};]|[^\s{};"'#]+""")


def parse(text: str) -> list[Directive]:
    """Parse nginx configuration text into its directives (comments dropped, quotes kept)."""
    top: list[Directive] = []
    stack, words = [top], []
    for token in TOKEN.findall(text):
        if token.startswith("#"):
            continue
        if token == ";":
            stack[-1].append(Directive(words[0], words[1:]))
            words = []
        elif token == "{":
            block = Directive(words[0], words[1:], [])
            stack[-1].append(block)
            stack.append(block.block)
            words = []
        elif token == "}":
            assert not words and len(stack) > 1, "unbalanced } in the nginx configuration"
            stack.pop()
        else:
            words.append(token)
    assert not words and len(stack) == 1, "the nginx configuration ends inside a directive or a block"
    return top


def render(directives: list[Directive], depth: int = 0) -> str:
    """Write directives back as nginx configuration text."""
    pad, out = "    " * depth, []
    for d in directives:
        head = pad + " ".join([d.name, *d.args])
        out.append(f"{head};\n" if d.block is None else f"{head} {{\n{render(d.block, depth + 1)}{pad}}}\n")
    return "".join(out)


def effective(levels: list[list[Directive]], name: str) -> list[list[str]]:
    """Return the arguments of every `name` nginx applies at the innermost level: the innermost of these levels
    that has one (nginx inherits a directive only into a level that does not set it)."""
    for level in reversed(levels):
        found = [d.args for d in level if d.name == name]
        if found:
            return found
    return []


def seconds(value: str) -> float:
    """Return an nginx time (`90`, `60s`, `1m`, `1h`) in seconds."""
    number, unit = re.fullmatch(r"(\d+)(ms|s|m|h|d)?", value).groups()
    return int(number) * {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400}[unit or "s"]


def proxied_service(server: Directive) -> str:
    """Return the upstream (service) a server block passes its requests to."""
    (location,) = server.children("location")
    assert location.args == ["/"], "one location, for everything the service serves"
    ((target,),) = [d.args for d in location.children("proxy_pass")]
    assert target.startswith("http://"), target
    return target.removeprefix("http://")


def shipped() -> list[Directive]:
    """Return the shipped file's directives (what goes in the `http {}` block)."""
    return parse(SHIPPED.read_text(encoding="utf-8"))


def test_shipped_config_proxies_each_service_on_its_own_port_with_sse_safe_settings() -> None:
    http = shipped()
    upstreams = {d.args[0]: d for d in http if d.name == "upstream"}
    servers = [d for d in http if d.name == "server"]
    assert set(upstreams) == set(DEFAULT_PORTS) and len(servers) == len(DEFAULT_PORTS)
    for server in servers:
        service = proxied_service(server)
        # The service's own port: every URL stays the same, only the host changes.
        assert [d.args for d in server.children("listen")] == [[str(DEFAULT_PORTS[service])]], service
        assert len(upstreams[service].children("server")) == 2, f"two instances of {service}"
        levels = [http, server.block or [], server.children("location")[0].block or []]
        headers = {args[0].lower(): args[1] for args in effective(levels, "proxy_set_header")}
        assert effective(levels, "proxy_http_version") == [["1.1"]]
        assert headers["connection"] == '""', "no `Connection: close` to the instance"
        assert headers["host"] == "$http_host", "the services compare a request's Origin with its Host"
        assert headers["x-forwarded-for"] == "$proxy_add_x_forwarded_for"
        assert headers["x-forwarded-proto"] == "$scheme"
        assert headers["last-event-id"] == "$http_last_event_id"
        assert effective(levels, "proxy_buffering") == [["off"]]
        assert effective(levels, "proxy_cache") == [["off"]]
        assert effective(levels, "gzip") in ([], [["off"]])
        (read_timeout,) = effective(levels, "proxy_read_timeout")
        assert seconds(read_timeout[0]) >= 3 * KEEPALIVE_S, "a quiet stream outlives several keepalives"
        assert {"error", "timeout"} <= set(effective(levels, "proxy_next_upstream")[0])
        assert not effective(levels, "proxy_ignore_headers"), "nothing the instances say is ignored"


# ------------------------------------------------------------------------------------- compose scale profile


def test_scale_profile_runs_two_instances_of_each_web_service_behind_nginx() -> None:
    services = yaml.safe_load(COMPOSE_FILE.read_text(encoding="utf-8"))["services"]
    proxy = services["nginx"]
    assert proxy["profiles"] == ["scale"] and str(proxy["image"]).startswith("nginx:")
    mounts = {str(v).split(":")[1]: str(v).split(":")[0] for v in proxy["volumes"]}
    assert (ROOT / mounts["/etc/nginx/conf.d/default.conf"]).resolve() == SHIPPED
    published = {int(str(p).rsplit(":", 1)[1]) for p in proxy["ports"]}
    assert published == set(DEFAULT_PORTS.values()) and proxy["networks"] == ["front"]
    upstreams = {d.args[0]: [s.args[0] for s in d.children("server")] for d in shipped() if d.name == "upstream"}
    for service, port in DEFAULT_PORTS.items():
        first, second = services[f"{service}-scaled"], services[f"{service}-scaled-2"]
        assert second == first, f"{service}-scaled-2 is {service}-scaled's copy, command and all"
        assert first["profiles"] == ["scale"] and "front" in first["networks"]
        assert not first.get("ports"), "reached through nginx only"
        command = [str(arg) for arg in first["command"]]
        if "--bind" in command:
            assert command[command.index("--bind") + 1] == f"0.0.0.0:{port}"
        assert upstreams[service] == [f"{service}-scaled:{port}", f"{service}-scaled-2:{port}"]
        assert {f"{service}-scaled", f"{service}-scaled-2"} <= set(proxy["depends_on"])


# ------------------------------------------------------------------------------------- processes


def nginx_or_skip() -> Path:
    """Return Debian's nginx; skip without it, unless LOBBY_REQUIRE_NGINX says it must be there (CI)."""
    on_path = shutil.which("nginx")
    found = NGINX if NGINX.exists() else Path(on_path) if on_path else None
    if found is None:
        message = f"no nginx at {NGINX} (Debian's nginx-light package)"
        if os.environ.get("LOBBY_REQUIRE_NGINX"):
            pytest.fail(f"{message}, and LOBBY_REQUIRE_NGINX is set")
        pytest.skip(message)
    return found


def group_alive(pgid: int) -> bool:
    """Say whether any living (not zombie) process is in a process group."""
    for stat in Path("/proc").glob("[0-9]*/stat"):
        with contextlib.suppress(OSError, ValueError, IndexError):
            text = stat.read_text()
            state, _ppid, group = text[text.rindex(")") + 2:].split()[:3]
            if int(group) == pgid and state not in ("Z", "X"):
                return True
    return False


@dataclass
class Children:
    """Processes this test starts, each the leader of a process group of its own, SIGKILLed whole at the end."""

    log_dir: Path
    started: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)

    def start(self, name: str, args: list[str], env: dict[str, str] | None = None) -> subprocess.Popen[bytes]:
        """Start a child in a new session (its own process group), its output in <name>.log."""
        with open(self.log_dir / f"{name}.log", "wb") as log:
            process = subprocess.Popen(args, cwd=ROOT, env=env, stdin=subprocess.DEVNULL, stdout=log,
                                       stderr=subprocess.STDOUT, start_new_session=True,
                                       preexec_fn=die_with_parent(signal.SIGKILL))
        self.started[name] = process
        return process

    def kill(self, name: str) -> None:
        """SIGKILL a child's whole process group; return once nothing of it lives."""
        process = self.started[name]
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait(10)
        eventually(lambda: not group_alive(process.pid), timeout=10)

    def log(self, name: str) -> str:
        """Return the tail of a child's output."""
        return (self.log_dir / f"{name}.log").read_text(errors="replace")[-3000:]

    def logs(self) -> str:
        """Return the tail of every child's output, for a failing assertion's message."""
        return "\n".join(f"== {name}\n{self.log(name)}" for name in self.started)


@pytest.fixture
def children(tmp_path: Path) -> Iterator[Children]:
    """The test's processes, every one SIGKILLed with its group when the test ends, passed or failed."""
    found = Children(tmp_path)
    try:
        yield found
    finally:
        for name in reversed(found.started):
            with contextlib.suppress(Exception):  # the others are killed whatever one of them does
                found.kill(name)


def start_pagers(children: Children, names: list[str], redis_url: str, config: Path) -> dict[str, str]:
    """Start pager instances as every service is served (gunicorn_command), all at once; return their addresses
    (instance names by address) once each answers."""
    env = {**os.environ, "REDIS_URL": redis_url, "LOBBY_CONFIG": str(config), "DATABASE_URL": "",
           "PYTHONUNBUFFERED": "1"}
    env.pop("REDIS_SENTINELS", None)
    ports = {name: free_port() for name in names}
    for name, port in ports.items():
        children.start(name, gunicorn_command("services.pager.app:create_app()", f"127.0.0.1:{port}"), env)

    def ready(name: str) -> bool:
        process, port = children.started[name], ports[name]
        assert process.poll() is None, f"{name} exited:\n{children.log(name)}"
        ours = listeners(port, among=[process.pid, *descendants(process.pid)])
        return bool(ours) and answers_ready(f"http://127.0.0.1:{port}")

    for name in names:
        eventually(functools.partial(ready, name), timeout=30, interval=0.1)
    return {f"127.0.0.1:{port}": name for name, port in ports.items()}


def proxy_config(work: Path, pagers: list[str]) -> tuple[str, int]:
    """Return nginx.conf for this test, made from the shipped file, and the port the pager's server listens on.

    Only addresses change: the pager's upstream lists the two instances here, the other upstreams a closed port,
    and every server listens on a free loopback port. The test adds the header naming the instance that served a
    response.
    """
    http = copy.deepcopy(shipped())
    closed = free_port()
    pager_port = 0
    for d in http:
        if d.name == "upstream":
            addresses = pagers if d.args[0] == "pager" else [f"127.0.0.1:{closed}"]
            d.block = [Directive("server", [a]) for a in addresses] + [s for s in d.block or [] if s.name != "server"]
        elif d.name == "server":
            port = free_port()
            pager_port = port if proxied_service(d) == "pager" else pager_port
            d.block = [Directive("listen", [f"127.0.0.1:{port}"])] + [s for s in d.block or [] if s.name != "listen"]
            for location in d.children("location"):
                assert location.block is not None
                location.block.append(Directive("add_header", [UPSTREAM_HEADER, "$upstream_addr", "always"]))
    temp = [Directive(f"{kind}_temp_path", [str(work / kind)])
            for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")]
    main = [
        # As root, nginx would run its worker as nobody, who cannot enter pytest's private temporary folder.
        *([Directive("user", ["root"])] if os.geteuid() == 0 else []),
        Directive("worker_processes", ["1"]),
        Directive("error_log", [str(work / "error.log"), "notice"]),
        Directive("events", [], [Directive("worker_connections", ["256"])]),
        Directive("http", [], [Directive("access_log", [str(work / "access.log")]), *temp, *http]),
    ]
    assert pager_port, "the shipped file has a server for the pager"
    return render(main), pager_port


def start_nginx(children: Children, binary: Path, work: Path, pagers: list[str]) -> str:
    """Run nginx in the foreground on the generated configuration; return its pager address once it answers."""
    work.mkdir()
    text, port = proxy_config(work, pagers)
    (work / "nginx.conf").write_text(text, encoding="utf-8")
    check = subprocess.run([str(binary), "-t", "-p", f"{work}/", "-c", "nginx.conf", "-e", "error.log",
                            "-g", f"pid {work}/nginx.pid;"], capture_output=True, text=True, timeout=30)
    assert check.returncode == 0, f"nginx refuses the configuration:\n{check.stderr}\n{text}"
    process = children.start("nginx", [str(binary), "-p", f"{work}/", "-c", "nginx.conf", "-e", "error.log",
                                       "-g", f"daemon off; pid {work}/nginx.pid;"])
    base = f"http://127.0.0.1:{port}"

    def ready() -> bool:
        assert process.poll() is None, f"nginx exited:\n{children.log('nginx')}"
        return answers_ready(base)

    eventually(ready, timeout=15, interval=0.1)
    return base


# ------------------------------------------------------------------------------------- failover


def page(r: redis.Redis, branch: Branch, counter: str) -> str:
    """Page the manager for a counter as the pager's worker does (its device feed gets a `page`); return its id."""
    request = alerts.page_request(branch, counter, PageKind.HELP, Priority.HIGH, f"{counter} 窗口需要协助",
                                  {"note": None}, SYSTEM.now())
    return delivery.deliver(r, branch, request)


def served_by(client: SSEClient) -> str:
    """Return the instance nginx finally passed a stream to ($upstream_addr lists every one it tried)."""
    assert client.response is not None
    return client.response.headers[UPSTREAM_HEADER].split(",")[-1].strip()


def pages_seen(client: SSEClient) -> list[tuple[str, str]]:
    """Return (event type, page id) of every event a client received, in order."""
    return [(e.type, e.data.get("page", {}).get("id", "")) for e in client.events]


def test_a_device_stream_survives_the_loss_of_its_instance(own_redis: redis.Redis, branch: Branch,
                                                           branch_file: Path, children: Children,
                                                           sse: Callable[..., SSEClient], tmp_path: Path) -> None:
    binary = nginx_or_skip()
    kw: dict[str, Any] = own_redis.connection_pool.connection_kwargs
    redis_url = f"redis://{kw['host']}:{kw['port']}/0"
    instances = start_pagers(children, ["pager-a", "pager-b"], redis_url, branch_file)
    proxy = start_nginx(children, binary, tmp_path / "nginx", list(instances))
    token = auth.issue(own_redis, BRANCH, auth.DEVICE, "lobby-manager")
    url = f"{proxy}/api/v1/branches/{BRANCH}/pages/events"

    # A state change from the page nginx serves is same-origin: the instance sees the Host the browser used.
    heartbeat = requests.post(f"{proxy}/api/v1/branches/{BRANCH}/device/heartbeat",
                              headers={**bearer(token), "Origin": proxy}, timeout=5)
    assert heartbeat.status_code == 204, heartbeat.text

    # The device has already shown an earlier page: it follows from there, so nothing depends on when the
    # instance reads the stream's end.
    earlier = page(own_redis, branch, "vip")
    cursor = own_redis.xrevrange(keys.stream(BRANCH, keys.DEVICE), count=1)[0][0]
    first = sse(url, headers={**bearer(token), "Last-Event-ID": cursor})
    assert first.status == 200, children.logs()
    victim = served_by(first)
    assert victim in instances, f"{victim} is not one of {sorted(instances)}"
    (survivor,) = set(instances) - {victim}

    # Page 1 arrives while the response is still open, well before any keepalive: nginx passes it on at once.
    written = [page(own_redis, branch, "1")]
    written_at = time.monotonic()
    first.wait_for(lambda e: e.data.get("page", {}).get("id") == written[0], timeout=5)
    assert time.monotonic() - written_at < UNBUFFERED_S and first.comments == 0 and not first.ended
    assert pages_seen(first) == [("page", written[0])], "from the cursor on, not the earlier page again"

    # The instance serving the stream dies whole; nginx ends the device's response.
    children.kill(instances[victim])
    eventually(lambda: first.ended, timeout=10)
    # Requests meanwhile reach the survivor, whichever instance nginx tries first.
    for _ in range(2):
        answer = requests.get(f"{proxy}/readyz", timeout=5)
        assert answer.status_code == 200 and answer.headers[UPSTREAM_HEADER].split(",")[-1].strip() == survivor

    # While the device is away, two more pages.
    written += [page(own_redis, branch, "2"), page(own_redis, branch, "3")]
    # It reconnects as EventSource does, through nginx, from the last event it saw.
    last_seen = first.events[-1].id
    assert last_seen is not None
    again = sse(url, headers={**bearer(token), "Last-Event-ID": last_seen})
    assert again.status == 200 and served_by(again) == survivor, children.logs()
    again.wait_for(lambda e: e.data.get("page", {}).get("id") == written[2], timeout=5)
    # Then a page written while it listens.
    written.append(page(own_redis, branch, "4"))
    again.wait_for(lambda e: e.data.get("page", {}).get("id") == written[3], timeout=5)

    assert earlier not in written
    received = pages_seen(first) + pages_seen(again)
    assert received == [("page", page_id) for page_id in written], "every page once, in order"
    ids = [e.id for e in first.events + again.events]
    assert len(ids) == len(set(ids)) and ids == sorted(ids, key=stream_seq)
