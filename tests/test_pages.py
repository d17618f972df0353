"""Pages are certain: written once per alert however often asked, and never lost from the outbox."""

from __future__ import annotations

from services.domain import alerts, keys, pages
from services.domain.clock import SYSTEM
from services.domain.contracts import PageKind, Priority
from services.pager import delivery as jobs
from tests.conftest import BRANCH, run_jobs


def _request(branch, kind=PageKind.HELP, priority=Priority.HIGH):
    return alerts.page_request(branch, "2", kind, priority, "2 窗口需要协助", {"note": None}, SYSTEM.now())


def test_one_page_per_alert_however_often_delivered(r, branch):
    request = _request(branch)
    alerts.raise_alert(r, request)
    first = jobs.deliver(r, branch, request)
    again = jobs.deliver(r, branch, request)
    assert first == again
    assert r.zcard(keys.pages_all(BRANCH)) == 1
    assert r.xlen(keys.stream(BRANCH, keys.DEVICE)) == 1, "announced once"
    assert r.hlen(keys.outbox(BRANCH)) == 0, "delivered alerts leave the outbox"


def test_sweeper_delivers_an_alert_whose_page_request_was_lost(r, branch, ctx):
    request = _request(branch, PageKind.DISTRESS, Priority.URGENT)
    pipe = r.pipeline()
    # Recorded, but no pager worker ever handles its page request (one killed after taking the entry, or every
    # pager worker down while the stream was trimmed).
    alerts.record(pipe, request)
    pipe.execute()
    assert jobs.sweep_outbox(r, ctx.branches, grace_s=60) == 0, "a fresh alert is left to the pager workers' intake"
    assert jobs.sweep_outbox(r, ctx.branches, grace_s=0) == 1
    found = pages.list_pages(r, BRANCH, "open")
    assert [(p.kind, p.priority, p.details["alert_id"]) for p in found] == [
        ("distress", "urgent", request.alert_id)]
    assert jobs.sweep_outbox(r, ctx.branches, grace_s=0) == 0


def test_page_reaches_terminal_through_the_workers(r, branch):
    """Created, acknowledged, replied: each news reaches the alert and the counter's terminal stream."""
    request = _request(branch, PageKind.ASK_SUPERVISOR)
    alerts.raise_alert(r, request)
    run_jobs(r)
    alert = alerts.load(r, BRANCH, request.alert_id)
    assert alert.page_id and alert.status == "sent"
    manager = branch.manager("lobby-manager")
    pages.reply(r, branch, alert.page_id, manager, "可以办理，按流程走")
    run_jobs(r)
    alert = alerts.load(r, BRANCH, request.alert_id)
    assert alert.status == "acknowledged" and alert.acknowledged_by == "大堂经理"
    assert alert.reply == "可以办理，按流程走"
    kinds = [fields["type"] for _, fields in r.xrange(keys.terminal_stream(BRANCH, "2"))]
    assert kinds == ["alert", "alert_acknowledged", "reply"]


def test_acknowledge_is_first_come_and_audited(r, branch):
    request = _request(branch)
    alerts.raise_alert(r, request)
    page_id = jobs.deliver(r, branch, request)
    lobby, deputy = branch.manager("lobby-manager"), branch.manager("deputy")
    taken = pages.acknowledge(r, branch, page_id, lobby)
    assert taken.acknowledged_by == "lobby-manager"
    assert pages.acknowledge(r, branch, page_id, lobby).acknowledged_at == taken.acknowledged_at, "idempotent"
    try:
        pages.acknowledge(r, branch, page_id, deputy)
    except Exception as exc:
        assert getattr(exc, "status", None) == 409
        assert exc.extra["page"]["acknowledged_by"] == "lobby-manager"
    else:
        raise AssertionError("a second manager cannot take an acknowledged page")
    done = pages.resolve(r, branch, page_id, deputy, "客户已安抚")
    assert done.status == "resolved" and done.resolution_note == "客户已安抚"
    assert [a.event for a in done.audit] == ["created", "acknowledged", "resolved"]
    assert pages.list_pages(r, BRANCH, "open") == [] and len(pages.list_pages(r, BRANCH, "resolved")) == 1
