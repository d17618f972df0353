"""Structured logs: one JSON object a line, with the ids of what it is about, and never a token."""

from __future__ import annotations

import io
import json
import logging

import pytest

from services.domain import alerts
from services.domain.clock import SYSTEM
from services.domain.contracts import PageKind, Priority
from services.pager import intake
from services.runtime import logs, messages, worker
from tests.conftest import BRANCH

API = f"/api/v1/branches/{BRANCH}"


@pytest.fixture
def log_lines():
    """Capture this process's log lines as the services write them; return a reader of parsed lines."""
    stream = io.StringIO()
    handler = logs.setup("test", stream=stream)
    yield lambda: [json.loads(line) for line in stream.getvalue().splitlines()]
    logging.getLogger().removeHandler(handler)
    logging.getLogger().setLevel(logging.WARNING)
    for name in ("rq.worker", "rq.scheduler"):
        logging.getLogger(name).handlers = []
        logging.getLogger(name).propagate = True


def test_request_lines_carry_ids_and_no_token(clients, token, log_lines, r):
    counter_token = token("counter", "vip")
    device_token = token("device", "lobby-manager")
    clients["kiosk"].post(f"{API}/tickets", json={"category": "vip"})
    called = clients["counter"].post(f"{API}/counters/vip/call-next", headers={
        "Authorization": f"Bearer {counter_token}", "X-Request-ID": "req-42"})
    assert called.headers["X-Request-ID"] == "req-42"
    clients["counter"].post(f"{API}/counters/vip/alerts", headers={"Authorization": f"Bearer {counter_token}"},
                            json={"kind": "distress"})
    clients["pager"].get(f"{API}/pages/events?token={device_token}x")  # a wrong token in the query: 401
    logging.getLogger("lobby.test").warning("a careless line quoting %s", device_token)

    lines = log_lines()
    assert lines, "the services log"
    text = "\n".join(json.dumps(line, ensure_ascii=False) for line in lines)
    for secret in (counter_token, device_token, counter_token.rsplit(".", 1)[1], device_token.rsplit(".", 1)[1]):
        assert secret not in text
    requests_logged = [line for line in lines if line["logger"] == "lobby.http"]
    call = next(line for line in requests_logged if line["path"].endswith("/call-next"))
    assert (call["request_id"], call["branch"], call["counter"], call["status"]) == ("req-42", BRANCH, "vip", 200)
    assert call["level"] == "INFO" and call["time"] and call["duration_ms"] >= 0
    stream = next(line for line in requests_logged if line["path"].endswith("/pages/events"))
    assert stream["status"] == 401 and "?" not in stream["path"], "paths are logged without their query"
    assert any("lby.<redacted>" in line["message"] for line in lines)
    assert all(line.get("request_id") for line in requests_logged)


def logging_job(payload: dict) -> None:
    """A job that says something, as the services' jobs do."""
    logging.getLogger("lobby.test").info("working for %s", payload["branch"])


def test_worker_lines_carry_the_job_and_its_branch(branch, log_lines, r, ctx):
    job = messages.queue("logtest", ctx.rq()).enqueue(f"{__name__}.logging_job", {"version": 1, "branch": BRANCH})
    worker.run(ctx, worker.Work(service="logtest", queue="logtest"), burst=True)
    job_lines = [line for line in log_lines() if line.get("job") == job.id]
    assert job_lines, "RQ's own lines about the job are JSON too, with the job's id"
    assert {line["branch"] for line in job_lines} == {BRANCH}
    assert any(line["logger"] == "lobby.test" for line in job_lines), "and so are ours"


def test_page_request_lines_carry_the_entry_its_branch_and_the_consumer(branch, log_lines, r):
    # Recorded without its stream entry, and handed to the intake here as the entry it would have read.
    request = alerts.page_request(branch, "3", PageKind.HELP, Priority.HIGH, "3 窗口需要协助", {}, SYSTEM.now())
    pipe = r.pipeline()
    alerts.record(pipe, request)
    pipe.execute()
    entry = ("1-1", {"branch": BRANCH, "alert": request.alert_id})
    intake.handler({BRANCH: branch})(r, [entry], "pager-logtest")
    (made,) = [line for line in log_lines() if request.alert_id in line["message"]]
    assert (made["logger"], made["job"], made["branch"], made["consumer"]) == (
        "lobby.pager", "page-request-1-1", BRANCH, "pager-logtest")
