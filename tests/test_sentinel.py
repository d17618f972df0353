"""Redis Sentinel: the primary dies during a burst of alerts; after the failover every 2xx alert is a page.

Real processes on loopback ports: a primary, a replica, and three Sentinels (Debian's redis-server in
sentinel mode, the same binary as redis-sentinel), and the whole stack started with REDIS_SENTINELS.
"""

from __future__ import annotations

import json
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
import requests
from redis.sentinel import Sentinel

from services.domain import keys
from services.domain.branch import DEMO_CONFIG
from services.ops.redis_server import RedisServer, binary, free_port
from services.ops.stack import Stack
from services.web import auth
from tests.conftest import record_reliability
from tests.sse import SSEClient, eventually

MASTER = "lobby"
BRANCH = "zhongnan"


class SentinelTrio:
    """Three Sentinels watching one primary: quorum 2, down after 1 s."""

    def __init__(self, directory: Path, primary_port: int):
        self.directory = directory
        self.ports = [free_port() for _ in range(3)]
        self.primary_port = primary_port
        self.processes: list[subprocess.Popen[bytes]] = []

    def start(self) -> SentinelTrio:
        for i, port in enumerate(self.ports):
            conf = self.directory / f"sentinel-{i}.conf"
            conf.write_text("\n".join([
                f"port {port}", "bind 127.0.0.1", f"dir {self.directory}", f"logfile {self.directory}/s{i}.log",
                f"sentinel monitor {MASTER} 127.0.0.1 {self.primary_port} 2",
                f"sentinel down-after-milliseconds {MASTER} 1000",
                f"sentinel failover-timeout {MASTER} 5000",
                f"sentinel parallel-syncs {MASTER} 1", "",
            ]), encoding="utf-8")
            self.processes.append(subprocess.Popen([binary(), str(conf), "--sentinel"], stdout=subprocess.DEVNULL,
                                                   stderr=subprocess.DEVNULL))
        sentinel = Sentinel(self.addresses(), socket_timeout=0.5)
        eventually(lambda: _replicas_known(sentinel), timeout=20)
        return self

    def addresses(self) -> list[tuple[str, int]]:
        return [("127.0.0.1", port) for port in self.ports]

    def stop(self) -> None:
        for process in self.processes:
            process.terminate()
        for process in self.processes:
            process.wait(10)


def _replicas_known(sentinel: Sentinel) -> bool:
    try:
        return bool(sentinel.discover_slaves(MASTER)) and bool(sentinel.discover_master(MASTER))
    except redis.RedisError:
        return False


@pytest.fixture(scope="module")
def cluster(tmp_path_factory) -> Iterator[dict]:
    primary = RedisServer(tmp_path_factory.mktemp("primary")).start()
    replica = RedisServer(tmp_path_factory.mktemp("replica"),
                          extra_args=("--replicaof", "127.0.0.1", str(primary.port))).start()
    eventually(lambda: redis.Redis(port=replica.port).info("replication").get("master_link_status") == "up",
               timeout=20)
    trio = SentinelTrio(tmp_path_factory.mktemp("sentinels"), primary.port).start()
    config = tmp_path_factory.mktemp("sentinel-config") / "branches.toml"
    config.write_text(DEMO_CONFIG.read_text(encoding="utf-8"), encoding="utf-8")
    env = {"REDIS_SENTINELS": ",".join(f"{h}:{p}" for h, p in trio.addresses()), "REDIS_SENTINEL_MASTER": MASTER}
    stack = Stack(ports={s: free_port() for s in ("kiosk", "counter", "pager")}, redis_url=f"sentinel://{MASTER}/0",
                  config_path=config, extra_env=env, log_dir=tmp_path_factory.mktemp("sentinel-logs"),
                  var_dir=tmp_path_factory.mktemp("sentinel-var")).start()
    yield {"primary": primary, "replica": replica, "sentinels": trio, "stack": stack}
    stack.stop()
    trio.stop()
    replica.stop()
    primary.stop()


@pytest.mark.timeout(300)
def test_primary_killed_during_a_burst_loses_no_accepted_alert(cluster):
    stack, primary, replica = cluster["stack"], cluster["primary"], cluster["replica"]
    sentinel = Sentinel(cluster["sentinels"].addresses(), socket_timeout=0.5)
    master = sentinel.master_for(MASTER, decode_responses=True, socket_timeout=1)
    tokens = {c: auth.issue(master, BRANCH, auth.COUNTER, c) for c in ("vip", "1", "2", "3", "4")}
    device_token = auth.issue(master, BRANCH, auth.DEVICE, "lobby-manager")
    api = f"/api/v1/branches/{BRANCH}"
    device = SSEClient(f"{stack.url('pager')}{api}/pages/events", params={"token": device_token}).start()

    accepted: list[str] = []
    refused = 0
    lock = threading.Lock()
    quarter = threading.Event()

    def terminal(counter: str) -> None:
        nonlocal refused
        session = requests.Session()
        session.headers["Authorization"] = f"Bearer {tokens[counter]}"
        for _ in range(40):
            for _attempt in range(60):  # a terminal retries a refused press until it is accepted
                try:
                    response = session.post(f"{stack.url('counter')}{api}/counters/{counter}/alerts",
                                            json={"kind": "distress"}, timeout=5)
                except requests.RequestException:
                    response = None
                if response is not None and response.status_code == 202:
                    with lock:
                        accepted.append(response.json()["alert"]["id"])
                        if len(accepted) >= 50:
                            quarter.set()
                    break
                with lock:
                    refused += 1
                time.sleep(0.25)
            time.sleep(0.02)

    threads = [threading.Thread(target=terminal, args=(c,)) for c in tokens]
    for t in threads:
        t.start()
    assert quarter.wait(60)
    primary.process.kill()  # the primary dies; the Sentinels promote the replica
    killed_at = time.monotonic()
    for t in threads:
        t.join(180)
    assert len(accepted) == 200, f"every press was accepted in the end ({refused} refused while failing over)"
    new_master = sentinel.discover_master(MASTER)
    assert new_master[1] == replica.port, "the replica is the primary now"

    def paged() -> set[str]:
        return set(master.hkeys(keys.page_for_alert(BRANCH)))

    eventually(lambda: set(accepted) <= paged(), timeout=60)
    failover_s = time.monotonic() - killed_at
    ids = master.zrange(keys.pages_all(BRANCH), 0, -1)
    pages = [json.loads(raw) for raw in master.mget([keys.page(BRANCH, i) for i in ids])]
    in_pages = [a for p in pages for a in p["details"]["alert_ids"]]
    assert set(accepted) <= set(in_pages) and len(in_pages) == len(set(in_pages)), "every 2xx alert, once"

    # The device stream continues: reconnecting from its last event it gets what came after, live.
    device.close()
    last = device.events[-1].id if device.events else "0-0"
    again = SSEClient(f"{stack.url('pager')}{api}/pages/events", params={"token": device_token, "since": last}).start()
    response = requests.post(f"{stack.url('counter')}{api}/counters/vip/alerts", json={"kind": "help"},
                             headers={"Authorization": f"Bearer {tokens['vip']}"}, timeout=5)
    assert response.status_code == 202
    again.wait_for(lambda e: e.type == "page" and e.data["page"]["kind"] == "help", timeout=20)
    again.close()
    record_reliability("sentinel_failover", {
        "alerts_accepted": len(accepted), "refused_while_failing_over": refused,
        "pages": len(pages), "lost": 0, "all_paged_after_kill_s": round(failover_s, 1),
    })
