"""README's first command, run as a new user runs it: a fresh clone of HEAD, its own virtualenv, `lobby up`.

It installs the project into a new virtualenv (pip's cache helps), so it takes minutes; run it alone with
`.venv/bin/pytest tests/test_readme.py`. What it clones is the commit HEAD names, not the working tree.
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess
import sys
import threading
from pathlib import Path

import pytest
import requests

from services.ops.redis_server import port_taken, started
from services.ops.stack import answers_ready, descendants
from tests.sse import eventually
from tests.test_up import BANNER_END, Ports, processes_in

ROOT = Path(__file__).resolve().parents[1]
INSTALL_S = 600  # a virtualenv and every dependency, from PyPI or pip's cache

pytestmark = pytest.mark.timeout(INSTALL_S + 180)


def first_sh_block(markdown: str) -> str:
    """Return the command of a Markdown text's first ```sh block, verbatim."""
    found = re.search(r"^```sh\n(.*?)\n```$", markdown, re.S | re.M)
    assert found, "README has a ```sh block"
    return found.group(1).strip()


def new_user_env(ports: Ports) -> dict[str, str]:
    """Return this environment as a new user's shell would have it: no virtualenv, no REDIS_URL; free ports."""
    env = {k: v for k, v in os.environ.items()
           if k not in ("REDIS_URL", "LOBBY_CONFIG", "VIRTUAL_ENV", "PYTHONPATH", "PYTHONHOME")}
    if sys.prefix != sys.base_prefix:  # leave out the virtualenv these tests run in, were it on PATH
        ours = str(Path(sys.prefix) / "bin")
        env["PATH"] = os.pathsep.join(p for p in env.get("PATH", "").split(os.pathsep) if p != ours)
    env.update(KIOSK_PORT=str(ports.kiosk), COUNTER_PORT=str(ports.counter), PAGER_PORT=str(ports.pager),
               LOBBY_REDIS_PORT=str(ports.redis), PIP_DISABLE_PIP_VERSION_CHECK="1", PYTHONUNBUFFERED="1")
    return env


def banner_url(banner: str, pattern: str) -> str:
    found = re.search(pattern, banner, re.M)
    assert found, f"the banner shows {pattern!r}:\n{banner}"
    return found.group(1)


def test_readme_first_command_runs_the_system_from_a_fresh_clone(tmp_path):
    command = first_sh_block((ROOT / "README.md").read_text(encoding="utf-8"))
    clone = tmp_path / "lobby"
    git = ["git", "-c", f"safe.directory={ROOT}"]
    head = subprocess.run([*git, "-C", str(ROOT), "rev-parse", "HEAD"], capture_output=True, text=True,
                          check=True).stdout.strip()
    subprocess.run([*git, "clone", "--quiet", "--no-checkout", str(ROOT), str(clone)], check=True, timeout=120)
    subprocess.run(["git", "-C", str(clone), "checkout", "--quiet", head], check=True, timeout=120)

    ports = Ports.free()
    # A process group of its own, like a terminal's job: Ctrl-C goes to the group, bash and `lobby up` alike.
    shell = subprocess.Popen(["bash", "-c", command], cwd=clone, env=new_user_env(ports), stdout=subprocess.PIPE,
                             stderr=subprocess.STDOUT, text=True, process_group=0)
    output: list[str] = []
    reader = threading.Thread(target=lambda: output.extend(shell.stdout), daemon=True)
    reader.start()
    seen: dict[int, int | None] = {}
    try:
        def banner_printed() -> bool:
            assert shell.poll() is None, f"README's command exited with {shell.returncode}:\n{''.join(output)[-5000:]}"
            return any(BANNER_END in line for line in output)

        eventually(banner_printed, timeout=INSTALL_S, interval=0.5)
        web = {name: f"http://127.0.0.1:{port}" for name, port in ports.web.items()}
        eventually(lambda: all(answers_ready(url) for url in web.values()), timeout=30)
        banner = "".join(output)
        assert f"redis://127.0.0.1:{ports.redis}/0" in banner, "LOBBY_REDIS_PORT chose the embedded Redis's port"

        pages = {
            "kiosk": banner_url(banner, r"Kiosk \(touchscreen\):\s+(\S+)"),
            "display": banner_url(banner, r"Lobby display:\s+(\S+)"),
            "terminal": banner_url(banner, r"Counter \S+\s+terminal\s+(\S+)"),
            "device": banner_url(banner, r"Device \S+\s+page\s+(\S+)"),
        }
        for name, url in pages.items():
            answer = requests.get(url, timeout=10)
            assert answer.status_code == 200, f"{name} page {url}: {answer.status_code}"
            assert answer.headers["Content-Type"].startswith("text/html"), f"{name} page {url}"

        family = [*descendants(shell.pid), *processes_in(clone)]
        seen.update({pid: started(pid) for pid in family})
        assert len(seen) >= 8, "bash's `lobby up`, Redis, three gunicorns and three workers at least"

        os.killpg(shell.pid, signal.SIGINT)
        assert shell.wait(60) == 0
        reader.join(10)
        assert "stopping…" in "".join(output)
        assert [pid for pid, ticks in seen.items() if ticks is not None and started(pid) == ticks] == []
        assert processes_in(clone) == []
        assert not any(port_taken("127.0.0.1", port) for port in (*ports.web.values(), ports.redis))
    finally:
        if shell.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(shell.pid, signal.SIGINT)
            try:
                shell.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(shell.pid, signal.SIGKILL)
                shell.wait()
        for pid in {*(p for p, t in seen.items() if t is not None and started(p) == t), *processes_in(clone)}:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
