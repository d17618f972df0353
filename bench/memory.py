"""Where a live client's memory goes in a web process (BENCHMARKS.md, B4c): `python -m bench.memory [clients]`.

The kiosk app under gevent's WSGI server in this one process, on a Redis of its own, with tracemalloc on; a
child process opens `clients` lobby-screen streams and holds them. The growth of what Python allocates from
before to after, grouped by the file that allocated it, per client. (gunicorn's gevent worker serves the same
app on the same gevent sockets; its own bookkeeping is not counted here.)
"""

from gevent import monkey

monkey.patch_all()

import socket  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import tracemalloc  # noqa: E402
from pathlib import Path  # noqa: E402

import gevent  # noqa: E402
from gevent.pywsgi import WSGIServer  # noqa: E402

from services.ops.redis_server import RedisServer  # noqa: E402
from services.runtime.settings import Context, Settings  # noqa: E402

HOLD = '''
import socket, sys, time
held = []
for i in range(int(sys.argv[1])):
    s = socket.create_connection(("127.0.0.1", int(sys.argv[2])))
    s.sendall(b"GET /api/v1/branches/zhongnan/screen/events HTTP/1.1\\r\\nHost: bench\\r\\n\\r\\n")
    held.append(s)
    if i % 200 == 199:
        time.sleep(0.05)
time.sleep(3600)
'''


def rss_kib() -> int:
    return int(Path("/proc/self/status").read_text().split("VmRSS:")[1].split()[0])


def main(clients: int) -> None:
    """Serve, open `clients` streams, print the growth per client by allocating file."""
    from services.kiosk.app import create_app

    with tempfile.TemporaryDirectory(prefix="lobby-memory-") as scratch:
        redis = RedisServer(Path(scratch), appendonly=False).start()
        try:
            app = create_app({"CONTEXT": Context.of(Settings(redis_url=redis.url))})
            listener = socket.socket()
            listener.bind(("127.0.0.1", 0))
            listener.listen(4096)
            port = listener.getsockname()[1]
            WSGIServer(listener, app, log=None, error_log=None).start()
            # One client first: the app's first-request costs are not any client's.
            holders = [subprocess.Popen([sys.executable, "-c", HOLD, "1", str(port)])]
            gevent.sleep(3)
            tracemalloc.start(1)
            before, rss_before = tracemalloc.take_snapshot(), rss_kib()
            holders.append(subprocess.Popen([sys.executable, "-c", HOLD, str(clients), str(port)]))
            gevent.sleep(10 + clients / 500)
            after, rss_after = tracemalloc.take_snapshot(), rss_kib()
            growth = after.compare_to(before, "filename")
            total = sum(s.size_diff for s in growth)
            print(f"{clients} clients: Python's allocations grew {total / clients / 1024:.1f} KiB a client; the "
                  f"process's RSS {(rss_after - rss_before) / clients:.1f} KiB a client (tracemalloc's own included)")
            for stat in growth[:10]:
                name = stat.traceback[0].filename.split("site-packages/")[-1].split("/work/main/")[-1]
                print(f"  {stat.size_diff / clients / 1024:6.2f} KiB  {name}")
            for holder in holders:
                holder.kill()
        finally:
            redis.stop()


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 2000)
