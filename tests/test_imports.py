"""The layers of services/, read from every import statement in the tree (top-level and inside functions).

    domain   the branch's rules and records: imports no other layer
    runtime  process wiring (settings, Redis clients, consumers, the worker loop): the domain
    web      the plumbing the three web apps share: the domain and runtime
    records  the records database of closed days (tables, migrations, export): the domain and runtime
    kiosk, counter, pager   one service each: the three layers above and itself, never another service
    ops      the operations tools (cli, the stack `lobby up` runs, status): the layers above, and the services only
             by name (a module path in a string), so that no service internals are linked into the CLI
    simulate `lobby simulate`: a branch day through the domain, its report drawn by the pager's report code; the
             CLI finds it by name as it finds the services
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SERVICES = ("kiosk", "counter", "pager")
LAYERS = ("domain", "runtime", "web", "records", "ops", "simulate", *SERVICES)
ALLOWED: dict[str, set[str]] = {
    "domain": set(),
    "runtime": {"domain"},
    "web": {"domain", "runtime"},
    "records": {"domain", "runtime"},
    "ops": {"domain", "runtime", "web", "records"},
    "simulate": {"domain", "runtime", "web", "records", "pager"},
    **{svc: {"domain", "runtime", "web", "records"} for svc in SERVICES},
}


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imported(path: Path, module: str | None = None) -> Iterator[tuple[int, str]]:
    """Yield (line, absolute module) for every import in a file (named `module`), relative ones resolved."""
    package = (module or module_name(path)).split(".")
    if path.name != "__init__.py":
        package = package[:-1]
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[:len(package) - (node.level - 1)]
                module = ".".join(base + ([node.module] if node.module else []))
            else:
                module = node.module or ""
            yield node.lineno, module
            if module == "services":  # `from services import kiosk` names the layer as an attribute
                for alias in node.names:
                    yield node.lineno, f"services.{alias.name}"


def layer_of(module: str) -> str | None:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 and parts[0] == "services" else None


def violations(layer: str, path: Path, module: str | None = None) -> list[str]:
    """Return the imports of one file of `layer` that reach a layer it may not."""
    return [f"{path.name}:{line} imports {target}" for line, target in imported(path, module)
            if (other := layer_of(target)) is not None and other != layer and other not in ALLOWED[layer]]


def python_files(*tops: str) -> list[Path]:
    return sorted(p for top in tops for p in (ROOT / top).rglob("*.py") if "node_modules" not in p.parts)


def test_every_module_of_services_belongs_to_a_layer() -> None:
    stray = [str(p.relative_to(ROOT)) for p in python_files("services")
             if layer_of(module_name(p)) not in LAYERS and p != ROOT / "services" / "__init__.py"]
    assert stray == []


@pytest.mark.parametrize("layer", LAYERS)
def test_a_layer_imports_only_the_layers_beneath_it(layer: str) -> None:
    assert [v for path in python_files(f"services/{layer}") for v in violations(layer, path)] == []


# Libraries of the web and of process wiring; the domain speaks Redis and pydantic, not HTTP or RQ.
NOT_IN_THE_DOMAIN = ("flask", "flask_openapi3", "werkzeug", "gunicorn", "jinja2", "rq", "prometheus_client")


def test_the_domain_imports_no_web_framework_nor_job_runner() -> None:
    broken = [f"{path.relative_to(ROOT)}:{line} imports {module}" for path in python_files("services/domain")
              for line, module in imported(path) if module.split(".")[0] in NOT_IN_THE_DOMAIN]
    assert broken == []


def test_nothing_but_the_operations_tools_tests_and_bench_imports_ops() -> None:
    broken = [f"{path.relative_to(ROOT)}:{line} imports {module}"
              for path in python_files("services") if layer_of(module_name(path)) != "ops"
              for line, module in imported(path) if layer_of(module) == "ops"]
    assert broken == []


def test_the_walker_sees_every_form_of_import(tmp_path: Path) -> None:
    """A service reaching another, or the domain reaching the web, is caught however it is written."""
    bad = tmp_path / "bad.py"
    bad.write_text("import services.pager.delivery\n"
                   "from services.kiosk import screen\n"
                   "from services import pager\n"
                   "from ..pager import intake\n"
                   "def later():\n"
                   "    from services.web.app import context\n", encoding="utf-8")
    assert len(violations("counter", bad, "services.counter.bad")) == 4
    assert violations("domain", bad, "services.domain.bad") == [
        "bad.py:1 imports services.pager.delivery", "bad.py:2 imports services.kiosk",
        "bad.py:3 imports services.pager", "bad.py:4 imports services.pager",
        "bad.py:6 imports services.web.app"]
    assert violations("pager", bad, "services.pager.bad") == ["bad.py:2 imports services.kiosk"]


def test_the_walker_reads_the_real_tree() -> None:
    found = {module for path in python_files("services") for _, module in imported(path)}
    assert {"services.domain", "services.domain.branch", "services.runtime.settings", "services.web.app"} <= found
