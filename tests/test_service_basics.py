"""What every service offers: health, readiness, its OpenAPI document, JSON errors, Idempotency-Key."""

from __future__ import annotations

import time

import pytest
import requests

from services.ops.redis_server import free_port
from tests.conftest import BRANCH, settle

API = f"/api/v1/branches/{BRANCH}"
SERVICES = ("kiosk", "counter", "pager")


@pytest.mark.parametrize("service", SERVICES)
def test_health_readiness_and_openapi(live, service):
    base = live.url(service)
    assert requests.get(f"{base}/healthz", timeout=5).json()["status"] == "ok"
    assert requests.get(f"{base}/readyz", timeout=5).status_code == 200
    doc = requests.get(f"{base}/openapi.json", timeout=5).json()
    assert doc["openapi"].startswith("3.")
    assert all(path.startswith("/api/v1/branches/{branch}") for path in doc["paths"])
    assert doc["paths"], "the document lists the service's operations"
    missing = requests.get(f"{base}/api/v1/nothing-here", timeout=5)
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "not_found"


def test_openapi_lists_the_contract_of_api_md(live):
    expected = {
        "kiosk": {("post", "/tickets"), ("get", "/tickets/{number}"), ("get", "/screen"), ("get", "/screen/events")},
        "counter": {(m, f"/counters/{{counter}}{p}") for m, p in [
            ("get", ""), ("post", "/call-next"), ("post", "/recall"), ("post", "/complete"), ("post", "/no-show"),
            ("post", "/pause"), ("post", "/resume"), ("post", "/alerts"), ("get", "/alerts/{alert_id}"),
            ("get", "/events")]},
        "pager": {("get", "/pages"), ("get", "/pages/{page_id}"), ("post", "/pages/{page_id}/ack"),
                  ("post", "/pages/{page_id}/resolve"), ("post", "/pages/{page_id}/reply"),
                  ("get", "/pages/events")},
    }
    for service, operations in expected.items():
        doc = requests.get(f"{live.url(service)}/openapi.json", timeout=5).json()
        offered = {(method, path.removeprefix("/api/v1/branches/{branch}"))
                   for path, item in doc["paths"].items() for method in item}
        assert operations <= offered, (service, operations - offered)
    pause = doc = requests.get(f"{live.url('counter')}/openapi.json", timeout=5).json()
    schema_ref = pause["paths"]["/api/v1/branches/{branch}/counters/{counter}/pause"]["post"]["requestBody"]
    assert "PauseRequest" in str(schema_ref)
    assert doc["components"]["schemas"]["PauseRequest"]["properties"]["expected_minutes"]["maximum"] == 240


def test_idempotency_key_repeats_the_first_answer_and_does_nothing_again(live, token):
    url = f"{live.url('kiosk')}{API}/tickets"
    first = requests.post(url, json={"category": "vip"}, headers={"Idempotency-Key": "tap-1"}, timeout=5)
    again = requests.post(url, json={"category": "vip"}, headers={"Idempotency-Key": "tap-1"}, timeout=5)
    assert first.status_code == again.status_code == 201
    assert first.json() == again.json() and again.headers.get("Idempotent-Replayed") == "true"
    other = requests.post(url, json={"category": "vip"}, headers={"Idempotency-Key": "tap-2"}, timeout=5)
    assert other.json()["ticket"]["number"] == "V002"
    reused = requests.post(url, json={"category": "personal"}, headers={"Idempotency-Key": "tap-1"}, timeout=5)
    assert reused.status_code == 422 and reused.json()["error"]["code"] == "idempotency_key_reused"

    headers = {"Authorization": f"Bearer {token('counter', 'vip')}", "Idempotency-Key": "pause-7"}
    pause = f"{live.url('counter')}{API}/counters/vip/pause"
    body = {"reason": "review", "expected_minutes": 10}
    assert requests.post(pause, json=body, headers=headers, timeout=5).status_code == 200
    repeat = requests.post(pause, json=body, headers=headers, timeout=5)
    assert repeat.status_code == 200, "a retried pause is answered as the first, not 409"
    device = {"Authorization": f"Bearer {token('device', 'lobby-manager')}"}
    settle()
    pages = requests.get(f"{live.url('pager')}{API}/pages", headers=device, timeout=5).json()["pages"]
    assert [p["kind"] for p in pages] == ["pause"], "one page, not two"


def test_apis_answer_503_fast_when_redis_is_down(monkeypatch):
    monkeypatch.setenv("REDIS_URL", f"redis://127.0.0.1:{free_port()}/0")
    from services.kiosk.app import create_app

    client = create_app({"TESTING": True}).test_client()
    started = time.monotonic()
    ready = client.get("/readyz")
    response = client.post(f"{API}/tickets", json={"category": "vip"})
    assert time.monotonic() - started < 4
    assert ready.status_code == 503 and ready.json["redis"] == "unreachable"
    assert response.status_code == 503 and response.json["error"]["code"] == "unavailable"
    assert client.get("/healthz").status_code == 200, "the process itself is up"
