"""Prometheus metrics: each service's /metrics parses with prometheus-client's parser and moves with the day."""

from __future__ import annotations

from datetime import date, timedelta

import requests
from prometheus_client.parser import text_string_to_metric_families

from services.domain import keys
from services.domain.clock import SYSTEM, business_day
from services.web import hub
from tests.conftest import BRANCH, QUICK, settle
from tests.sse import eventually

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def scrape(live, service: str) -> Samples:
    """Return every sample of a service's /metrics, keyed by name and sorted labels."""
    response = requests.get(f"{live.url(service)}/metrics", timeout=5)
    assert response.status_code == 200 and response.headers["Content-Type"].startswith("text/plain")
    samples: Samples = {}
    for family in text_string_to_metric_families(response.text):
        for sample in family.samples:
            samples[sample.name, tuple(sorted(sample.labels.items()))] = sample.value
    return samples


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


def test_metrics_move_with_a_scripted_morning(live, r, token, sse):
    before = {s: scrape(live, s) for s in ("kiosk", "counter", "pager")}
    api = f"/api/v1/branches/{BRANCH}"
    for category in ("vip", "vip", "vip", "personal", "personal"):
        assert requests.post(f"{live.url('kiosk')}{api}/tickets", json={"category": category},
                             timeout=5).status_code == 201
    vip = {"Authorization": f"Bearer {token('counter', 'vip')}"}
    one = {"Authorization": f"Bearer {token('counter', '1')}"}
    for headers, counter in ((vip, "vip"), (vip, "vip"), (one, "1")):
        assert requests.post(f"{live.url('counter')}{api}/counters/{counter}/call-next", headers=headers,
                             timeout=5).json()["ticket"] is not None
    device = {"Authorization": f"Bearer {token('device', 'lobby-manager')}"}
    feed = sse(f"{live.url('pager')}{api}/pages/events", headers=device)
    distress = requests.post(f"{live.url('counter')}{api}/counters/1/alerts", headers=one,
                             json={"kind": "distress"}, timeout=5).json()["alert"]["id"]
    page = feed.wait_for(lambda e: e.type == "page" and e.data["page"]["details"]["alert_id"] == distress)
    assert requests.post(f"{live.url('pager')}{api}/pages/{page.data['page']['id']}/ack", headers=device,
                         timeout=5).status_code == 200
    # A help call at the quick branch goes unanswered: it escalates after 2 s there.
    quick_help = requests.post(f"{live.url('counter')}/api/v1/branches/{QUICK}/counters/3/alerts",
                               headers={"Authorization": f"Bearer {token('counter', '3', QUICK)}"},
                               json={"kind": "help"}, timeout=5)
    assert quick_help.status_code == 202
    settle()
    # Each process says what it holds within a second of a change.
    eventually(lambda: hub.by_service(r).get("pager", {}).get("audiences", {}).get("device"))

    after = {s: scrape(live, s) for s in ("kiosk", "counter", "pager")}

    def moved(service: str, name: str, **labels: str) -> float:
        return value(after[service], name, **labels) - value(before[service], name, **labels)

    assert moved("kiosk", "lobby_tickets_issued_total", branch=BRANCH, category="vip") == 3
    assert moved("kiosk", "lobby_tickets_issued_total", branch=BRANCH, category="personal") == 2
    assert moved("counter", "lobby_tickets_called_total", branch=BRANCH, category="vip") == 2
    assert moved("counter", "lobby_tickets_called_total", branch=BRANCH, category="personal") == 1
    assert moved("counter", "lobby_ticket_wait_seconds_count", branch=BRANCH, category="vip") == 2
    assert moved("counter", "lobby_ticket_wait_seconds_bucket", branch=BRANCH, category="vip", le="60.0") == 2, \
        "called within seconds of being taken"
    assert moved("counter", "lobby_ticket_wait_seconds_bucket", branch=BRANCH, category="vip", le="+Inf") == 2
    assert moved("pager", "lobby_pages_total", branch=BRANCH, kind="distress", priority="urgent") == 1
    assert moved("pager", "lobby_pages_total", branch=QUICK, kind="help", priority="high") == 1
    assert moved("pager", "lobby_page_ack_seconds_count", branch=BRANCH, kind="distress") == 1
    # All the pager's processes together, as each says: the device feed is a client of one, read by its reader.
    assert value(after["pager"], "lobby_live_clients", audience="device") >= 1, "the open device feed counts"
    assert value(after["pager"], "lobby_live_readers") >= 1
    assert value(after["pager"], "lobby_web_processes") >= 1
    assert value(after["pager"], "lobby_redis_connections", role="pager-web") >= 1, "Redis counts by role"
    assert value(after["pager"], "lobby_endpoints", branch=BRANCH, kind="device", state="live") == 1, \
        "the lobby manager's device, its feed open"
    assert value(after["pager"], "lobby_endpoints", branch=BRANCH, kind="device", state="unsupervised") == 2
    assert value(after["pager"], "lobby_endpoints", branch=BRANCH, kind="display", state="unsupervised") == 1
    for service in ("kiosk", "counter", "pager"):
        assert value(after[service], "process_resident_memory_bytes") > 0
    assert ("lobby_rq_queue_depth", (("queue", "kiosk"),)) in after["kiosk"]
    assert value(after["kiosk"], "lobby_rq_failed_jobs", queue="kiosk") == 0
    assert ("lobby_rq_queue_depth", (("queue", "pager"),)) in after["pager"], "the archive's queue"
    assert value(after["pager"], "lobby_archive_lag_days", branch=BRANCH) == 0
    # Pages come by the page-request stream, and their news by the page-news stream, whose backlogs their readers
    # export: everything read and done.
    for service, stream in (("pager", "page_requests"), ("counter", "page_news")):
        assert (value(after[service], f"lobby_{stream}_lag"), value(after[service], f"lobby_{stream}_pending")) \
            == (0, 0) and (f"lobby_{stream}_lag", ()) in after[service]
    assert ("lobby_page_requests_lag", ()) not in after["counter"], "only the pager exports it"
    assert ("lobby_tickets_issued_total", (("branch", BRANCH), ("category", "vip"))) not in after["counter"], \
        "each service exports what it owns, so nothing is counted twice across services"

    # Unanswered, the quick branch's page climbs to the deputy: the escalation counter moves.
    eventually(lambda: value(scrape(live, "pager"), "lobby_escalations_total", branch=QUICK, kind="help") >= 1,
               timeout=15)


def test_the_archive_lag_shows_closed_days_the_records_database_does_not_hold_yet(clients, r, branch):
    today = date.fromisoformat(business_day(branch, SYSTEM.now()))
    old, recent = (today - timedelta(days=3)).isoformat(), (today - timedelta(days=1)).isoformat()

    def lag() -> tuple[float, float]:
        text = clients["pager"].get("/metrics").get_data(as_text=True)
        samples = {(s.name, tuple(sorted(s.labels.items()))): s.value
                   for family in text_string_to_metric_families(text) for s in family.samples}
        return (value(samples, "lobby_archive_lag_days", branch=BRANCH),
                value(samples, "lobby_archive_oldest_waiting_days", branch=BRANCH))

    assert lag() == (0, 0)
    r.sadd(keys.closed_days(BRANCH), old, recent)
    assert lag() == (2, 3)
    r.hset(keys.archived(BRANCH), old, "{}")
    assert lag() == (1, 1)
    r.hset(keys.archived(BRANCH), recent, "{}")
    assert lag() == (0, 0)
