"""The container deployment (Dockerfile, docker-compose.yml) agrees with the code it runs.

No Docker engine is needed: the files are parsed, and what they name is imported, built or parsed
by the project's own code (the app factories, the `lobby` CLI, the settings).
"""

from __future__ import annotations

import fnmatch
import importlib
import json
import os
import re
import shlex
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml
from gunicorn.workers.ggevent import GeventWorker

from services.ops.cli import main as lobby_main
from services.ops.stack import SERVICES, gunicorn_command
from services.runtime.settings import DEFAULT_PORTS, Settings
from services.web import serving

ROOT = Path(__file__).resolve().parent.parent
COMPOSE_FILE = ROOT / "docker-compose.yml"
DOCKERFILE = ROOT / "Dockerfile"
WORKERS = {f"{service}-worker": service for service in SERVICES}
APP_SERVICES = (*SERVICES, *WORKERS)


# ---------------------------------------------------------------------------------------------- helpers


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    # safe_load resolves the anchors and `<<` merge keys, so each service is its merged mapping.
    loaded = yaml.safe_load(COMPOSE_FILE.read_text(encoding="utf-8"))
    assert isinstance(loaded, dict), "docker-compose.yml is not a mapping"
    return loaded


@pytest.fixture(scope="module")
def all_services(compose: dict[str, Any]) -> dict[str, dict[str, Any]]:
    found = compose.get("services")
    assert isinstance(found, dict) and found, "docker-compose.yml has no services"
    return found


@pytest.fixture(scope="module")
def services(all_services: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """The services `docker compose up` starts: those of no profile."""
    return {name: svc for name, svc in all_services.items() if not svc.get("profiles")}


def argv(command: str | list[str]) -> list[str]:
    """A compose `command` or healthcheck `test` as an argument list (either form compose accepts)."""
    return shlex.split(command) if isinstance(command, str) else [str(arg) for arg in command]


def option(args: list[str], name: str) -> str:
    """The value of `--name value` or `--name=value` in an argument list."""
    for i, arg in enumerate(args):
        if arg == name:
            assert i + 1 < len(args), f"{name} has no value in {args}"
            return args[i + 1]
        if arg.startswith(f"{name}="):
            return arg.split("=", 1)[1]
    raise AssertionError(f"{name} missing from {args}")


def depends_on(service: dict[str, Any]) -> dict[str, dict[str, Any]]:
    deps = service.get("depends_on") or {}
    # The short form is a list of names, which waits only for the container to start.
    return {name: {} for name in deps} if isinstance(deps, list) else deps


def environment(service: dict[str, Any]) -> dict[str, str]:
    env = service.get("environment") or {}
    if isinstance(env, list):
        return dict(item.split("=", 1) for item in env)
    return {key: str(value) for key, value in env.items()}


def published_port(mapping: str | int) -> tuple[int, int]:
    """(host port default, container port) of a short-syntax port such as "${KIOSK_PORT:-5001}:5001"."""
    match = re.fullmatch(r"(?:[\d.]+:)?(?:\$\{\w+:-(\d+)\}|(\d+)):(\d+)(?:/tcp)?", str(mapping))
    assert match, f"unexpected port mapping {mapping!r}"
    host = match.group(1) or match.group(2)
    return int(host), int(match.group(3))


def healthcheck_code(test: str | list[str]) -> str:
    """The Python source a `python -c` healthcheck runs."""
    args = argv(test)
    if args[0] in ("CMD", "CMD-SHELL"):
        args = args[1:]
    assert args[:2] == ["python", "-c"], f"healthcheck does not run python -c: {args}"
    return args[2]


def dockerfile_instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) pairs, with line continuations joined and comments dropped."""
    instructions: list[tuple[str, str]] = []
    pending = ""
    for raw in DOCKERFILE.read_text(encoding="utf-8").splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        keyword, _, rest = (pending + line).partition(" ")
        instructions.append((keyword.upper(), rest.strip()))
        pending = ""
    assert not pending, "Dockerfile ends inside a line continuation"
    return instructions


def dockerfile_values(keyword: str) -> list[str]:
    return [rest for name, rest in dockerfile_instructions() if name == keyword]


def factory_of(command: list[str]) -> str:
    """The `module:callable` gunicorn is told to load (the last argument), without the call parentheses."""
    target = command[-1]
    assert ":" in target, f"no gunicorn app target in {command}"
    return target.removesuffix("()")


# ---------------------------------------------------------------------------------------------- compose


def test_compose_runs_every_service_and_a_worker_for_every_service(services: dict[str, dict[str, Any]]) -> None:
    # A service without its worker silently piles up work: pages would never be sent, nor their answers heard.
    assert set(services) == {"redis", "postgres", "migrate", *APP_SERVICES}


def test_the_records_live_in_postgresql_on_a_volume_with_a_healthcheck(compose: dict[str, Any]) -> None:
    postgres = compose["services"]["postgres"]
    assert str(postgres["image"]).startswith("postgres:")
    assert "pg_isready" in argv(postgres["healthcheck"]["test"])
    name, _, mount = str(postgres["volumes"][0]).partition(":")
    assert mount == "/var/lib/postgresql/data" and name in (compose.get("volumes") or {})
    assert set(postgres["networks"]) == {"back"}, "never on the front"


def test_the_tables_are_migrated_once_the_database_is_healthy_and_before_any_app(
        services: dict[str, dict[str, Any]]) -> None:
    migrate = services["migrate"]
    assert argv(migrate["command"]) == ["lobby", "migrate", "--grant", "lobby_app"] and migrate["restart"] == "no"
    assert depends_on(migrate)["postgres"]["condition"] == "service_healthy"
    for name in APP_SERVICES:
        assert depends_on(services[name])["migrate"]["condition"] == "service_completed_successfully", name


@pytest.mark.parametrize("name", ["migrate", *APP_SERVICES])
def test_app_services_reach_the_records_database_by_service_name(services: dict[str, dict[str, Any]],
                                                                  name: str) -> None:
    url = environment(services[name]).get("DATABASE_URL", "")
    assert urlsplit(url).scheme == "postgresql" and urlsplit(url).hostname == "postgres"
    assert Settings.from_env({"DATABASE_URL": url}).database_url == url
    # The owner migrates; the services connect as the role it grants reading and inserting to, and no more.
    assert urlsplit(url).username == ("lobby" if name == "migrate" else "lobby_app")


def test_the_services_role_is_made_when_the_database_is_first_created(compose: dict[str, Any]) -> None:
    postgres = compose["services"]["postgres"]
    mounted = {str(v).split(":")[1]: str(v).split(":")[0] for v in postgres["volumes"]}
    init = ROOT / mounted["/docker-entrypoint-initdb.d"]
    script = (init / "10-app-role.sh").read_text(encoding="utf-8")
    assert "CREATE ROLE lobby_app LOGIN" in script and os.access(init / "10-app-role.sh", os.X_OK)


def test_ops_profile_adds_rq_dashboard_on_loopback_only(all_services: dict[str, dict[str, Any]]) -> None:
    dashboard = all_services["rq-dashboard"]
    assert dashboard["profiles"] == ["ops"]
    assert dashboard["environment"]["RQ_DASHBOARD_REDIS_URL"] == "redis://redis:6379/0"
    assert all(str(port).startswith("127.0.0.1:") for port in dashboard["ports"]), "never on the LAN"
    assert dashboard["depends_on"]["redis"]["condition"] == "service_healthy"


def test_redis_persists_jobs_in_an_append_only_file(compose: dict[str, Any]) -> None:
    redis = compose["services"]["redis"]
    args = argv(redis["command"])
    assert args[0] == "redis-server"
    assert option(args, "--appendonly") == "yes"
    assert option(args, "--appendfsync") == "everysec"
    volumes = [str(v) for v in redis.get("volumes", [])]
    data = [v for v in volumes if v.split(":")[1:2] == ["/data"]]
    assert data, f"nothing is mounted on /data: {volumes}"
    name = data[0].split(":")[0]
    assert name in (compose.get("volumes") or {}), f"/data is not on a named volume: {data[0]}"


def test_redis_has_a_ping_healthcheck(services: dict[str, dict[str, Any]]) -> None:
    check = services["redis"].get("healthcheck") or {}
    assert not check.get("disable")
    args = argv(check["test"])
    assert args[0] in ("CMD", "CMD-SHELL")
    assert "redis-cli" in " ".join(args[1:]) and "ping" in args[-1]


@pytest.mark.parametrize("name", APP_SERVICES)
def test_app_services_wait_for_a_healthy_redis(services: dict[str, dict[str, Any]], name: str) -> None:
    assert depends_on(services[name]).get("redis", {}).get("condition") == "service_healthy"


def test_depends_on_names_only_existing_services(services: dict[str, dict[str, Any]]) -> None:
    for name, service in services.items():
        missing = set(depends_on(service)) - set(services)
        assert not missing, f"{name} depends on undefined services {sorted(missing)}"


@pytest.mark.parametrize("name", APP_SERVICES)
def test_app_services_reach_redis_by_service_name(services: dict[str, dict[str, Any]], name: str) -> None:
    url = environment(services[name]).get("REDIS_URL", "")
    assert urlsplit(url).hostname == "redis" and "redis" in services
    assert Settings.from_env({"REDIS_URL": url}).redis_url == url


@pytest.mark.parametrize("name", ["redis", "postgres", *APP_SERVICES])
def test_every_service_restarts_unless_stopped(services: dict[str, dict[str, Any]], name: str) -> None:
    assert services[name].get("restart") == "unless-stopped"


def test_app_services_share_the_image_built_from_this_dockerfile(services: dict[str, dict[str, Any]]) -> None:
    builds = {json.dumps(services[name].get("build"), sort_keys=True) for name in APP_SERVICES}
    images = {services[name].get("image") for name in APP_SERVICES}
    assert len(builds) == 1 and len(images) == 1, f"app services differ in build {builds} or image {images}"
    build = services[SERVICES[0]]["build"]
    context = build if isinstance(build, str) else build.get("context", ".")
    dockerfile = "Dockerfile" if isinstance(build, str) else build.get("dockerfile", "Dockerfile")
    assert (ROOT / context / dockerfile).resolve() == DOCKERFILE


def test_networks_keep_redis_and_workers_off_the_front(compose: dict[str, Any]) -> None:
    services = compose["services"]
    assert {"front", "back"} <= set(compose.get("networks") or {})
    assert set(services["redis"]["networks"]) == {"back"}
    for name in SERVICES:
        assert set(services[name]["networks"]) == {"front", "back"}, name
    for name in WORKERS:
        assert set(services[name]["networks"]) == {"back"}, name


# ------------------------------------------------------------------------------------------ web services


@pytest.mark.parametrize("svc", SERVICES)
def test_web_command_loads_an_app_factory_that_serves(services: dict[str, dict[str, Any]], svc: str) -> None:
    command = argv(services[svc]["command"])
    assert command[:3] == ["python", "-m", "gunicorn"]
    target = factory_of(command)
    assert target == f"services.{svc}.app:create_app"
    module_name, attr = target.split(":")
    factory = getattr(importlib.import_module(module_name), attr)
    assert callable(factory)
    # Building the app needs no Redis; /healthz proves gunicorn would get the right service.
    response = factory().test_client().get("/healthz")
    assert response.status_code == 200 and response.get_json()["service"] == svc


@pytest.mark.parametrize("svc", SERVICES)
def test_web_command_runs_gunicorn_like_lobby_up(services: dict[str, dict[str, Any]], svc: str) -> None:
    # A Server-Sent Events client holds its connection for as long as it listens: gevent's worker, several per
    # service, and the settings `lobby up` runs (which answer gunicorn's own refusals as JSON), from one module.
    command = argv(services[svc]["command"])
    assert option(command, "--config") == option(gunicorn_command("app", "127.0.0.1:0"), "--config")
    assert option(command, "--config") == "python:services.web.serving"
    module, _, name = serving.worker_class.rpartition(".")
    assert issubclass(getattr(importlib.import_module(module), name), GeventWorker)
    assert serving.workers >= 2, "one process per core at least"
    assert not {"--worker-class", "--workers", "--threads"} & set(command), "settings live in one place"


@pytest.mark.parametrize("svc", SERVICES)
def test_web_binds_the_published_and_default_port(services: dict[str, dict[str, Any]], svc: str) -> None:
    service = services[svc]
    host, _, port = option(argv(service["command"]), "--bind").rpartition(":")
    assert host == "0.0.0.0", "a container must listen on all interfaces to be published"
    mappings = [published_port(p) for p in service.get("ports", [])]
    assert mappings == [(DEFAULT_PORTS[svc], int(port))]
    assert int(port) == DEFAULT_PORTS[svc]


@pytest.mark.parametrize("svc", SERVICES)
def test_web_healthcheck_asks_readyz_on_its_own_port(services: dict[str, dict[str, Any]], svc: str) -> None:
    check = services[svc].get("healthcheck") or {}
    assert not check.get("disable")
    code = healthcheck_code(check["test"])
    compile(code, f"<{svc} healthcheck>", "exec")
    assert f"http://127.0.0.1:{DEFAULT_PORTS[svc]}/readyz" in code


# --------------------------------------------------------------------------------------------- workers


def test_lobby_console_script_is_the_cli() -> None:
    (script,) = [ep for ep in entry_points(group="console_scripts") if ep.name == "lobby"]
    assert script.load() is lobby_main


@pytest.mark.parametrize(("name", "service"), WORKERS.items())
def test_worker_command_names_a_service_with_a_worker(services: dict[str, dict[str, Any]], name: str,
                                                      service: str) -> None:
    assert argv(services[name]["command"]) == ["lobby", "worker", service]
    # --help stops argparse after it has checked the service against its choices: no worker runs.
    with pytest.raises(SystemExit) as stopped:
        lobby_main(["worker", service, "--help"])
    assert stopped.value.code == 0
    assert callable(importlib.import_module(f"services.{service}.worker").work), "what `lobby worker` looks up"


def test_cli_rejects_an_unknown_service() -> None:
    # The check above would be vacuous if --help won over an invalid choice.
    with pytest.raises(SystemExit) as stopped:
        lobby_main(["worker", "no-such-service", "--help"])
    assert stopped.value.code == 2


@pytest.mark.parametrize("name", WORKERS)
def test_workers_do_not_inherit_the_http_healthcheck(services: dict[str, dict[str, Any]], name: str) -> None:
    # The image's healthcheck asks a port that a worker never opens.
    assert (services[name].get("healthcheck") or {}).get("disable") is True
    assert not services[name].get("ports")


# ------------------------------------------------------------------------------------------ Dockerfile


def test_dockerfile_builds_on_python_311() -> None:
    (base,) = dockerfile_values("FROM")
    assert fnmatch.fnmatch(base.split()[0], "python:3.11*")


def test_dockerfile_copies_and_installs_the_project_without_extras() -> None:
    copied: set[str] = set()
    for rest in dockerfile_values("COPY"):
        *sources, _dest = shlex.split(rest)
        sources = [s for s in sources if not s.startswith("--")]
        matched = [s for s in sources if any(ROOT.glob(s.rstrip("/")))]
        assert matched, f"COPY {rest} copies nothing that exists"
        copied.update(s.rstrip("/") for s in matched)
    assert {"pyproject.toml", "services"} <= copied
    installs = [run for run in dockerfile_values("RUN") if re.search(r"\bpip install\b", run)]
    assert any(re.search(r"pip install --no-cache-dir \.(\s|$)", run) for run in installs), installs
    assert not any(re.search(r"\[test\]|\s-e\s|--editable", run) for run in installs), installs


def test_dockerfile_exposes_the_three_service_ports() -> None:
    exposed = {int(p.split("/")[0]) for rest in dockerfile_values("EXPOSE") for p in rest.split()}
    assert exposed == set(DEFAULT_PORTS.values())


def test_dockerfile_runs_as_a_non_root_user() -> None:
    users = dockerfile_values("USER")
    assert users and users[-1].split(":")[0] not in ("root", "0")


def test_dockerfile_default_command_is_the_compose_kiosk(services: dict[str, dict[str, Any]]) -> None:
    (cmd,) = dockerfile_values("CMD")
    assert json.loads(cmd) == argv(services["kiosk"]["command"])


def test_dockerfile_healthcheck_asks_readyz_through_python() -> None:
    (check,) = dockerfile_values("HEALTHCHECK")
    _options, _, command = check.partition("CMD ")
    code = healthcheck_code(json.loads(command))
    compile(code, "<Dockerfile healthcheck>", "exec")
    assert "/readyz" in code and "127.0.0.1" in code


def test_scale_profile_has_two_shards_a_sentinel_trio_and_workers_on_each(
        all_services: dict[str, dict[str, Any]]) -> None:
    from services.domain.branch import load_branches

    scale = {name: svc for name, svc in all_services.items() if svc.get("profiles") == ["scale"]}
    for shard in ("a", "b"):
        replica = argv(scale[f"redis-{shard}-replica"]["command"])
        assert option(replica, "--replicaof") == f"redis-{shard}" and option(replica, "--appendonly") == "yes"
        for service in SERVICES:
            worker = scale[f"{service}-worker-{shard}"]
            assert argv(worker["command"]) == ["lobby", "worker", service]
            assert worker["environment"]["REDIS_URL"] == f"sentinel://shard-{shard}/0"
    sentinels = [svc for name, svc in scale.items() if name.startswith("sentinel-")]
    assert len(sentinels) == 3
    for sentinel in sentinels:
        script = argv(sentinel["command"])[-1]
        assert "--sentinel" in script
        for shard in ("a", "b"):
            assert f"sentinel monitor shard-{shard} redis-{shard} 6379 2" in script
    for web in ("kiosk-scaled", "counter-scaled", "pager-scaled"):
        env = scale[web]["environment"]
        assert env["REDIS_SENTINELS"].count(":26379") == 3 and env["REDIS_SENTINEL_MASTER"] == "shard-a"
        mount = next(v for v in scale[web]["volumes"] if v.endswith(env["LOBBY_CONFIG"] + ":ro"))
        branches = load_branches(ROOT / mount.split(":")[0])
        masters = {b.redis_url for b in branches.values()} - {None}
        assert masters == {"sentinel://shard-b/0"}, "one branch on each shard"
