"""An alarm people can trust: pages end with their problems, answers are never lost, and a retried request acts
once. Each test holds one defect a user trial or an adversarial run found.

The fake-clock tests run on a Redis of their own (`own_redis`), so that the session stack's pager workers, which
fire timers on the real clock, cannot act on them; the others run against the whole stack over HTTP.
"""

from __future__ import annotations

import json
import threading
import time
import uuid

import pytest
import redis
import requests

from services.domain import keys, pages, tickets, watch
from services.domain.contracts import PageRequest
from services.domain.desk import Desk
from services.kiosk import screen
from services.pager import delivery as jobs
from services.runtime.settings import Context
from tests.conftest import BRANCH, QUICK, bearer, issue, run_jobs
from tests.sse import eventually

MANAGER_NAMES = ("大堂经理", "副行长", "行长", "Lobby manager", "Deputy manager", "Branch manager")



def deliver_all(r: redis.Redis) -> list[str]:
    """Make the pages of every alert waiting in the outbox, as a pager worker would; return their ids."""
    branches = Context.from_env().branches
    made = []
    for branch_id in r.smembers(keys.outbox_branches()):
        for raw in r.hvals(keys.outbox(branch_id)):
            made.append(jobs.deliver(r, branches[branch_id], PageRequest.model_validate_json(raw)))
    return made


def page_of(r: redis.Redis, branch_id: str, kind: str) -> pages.Page:
    (found,) = [p for p in pages.list_pages(r, branch_id, "all") if p.kind == kind]
    return found


def device_changes(r: redis.Redis, branch_id: str, page_id: str) -> list[str | None]:
    changes = []
    for _, fields in r.xrange(keys.stream(branch_id, keys.DEVICE)):
        data = json.loads(fields["data"])
        if data.get("page", {}).get("id") == page_id:
            changes.append(data.get("change") if fields["type"] == pages.PAGE_UPDATED else "page")
    return changes


# Pages end with their problems


def test_a_pause_page_is_cleared_at_resume_and_never_escalates(own_redis, branch, fake_clock):
    for _ in range(3):
        issue(own_redis, branch, branch.category("vip"))
    Desk(own_redis, branch, "vip").pause("vault_transfer", 15, None)
    deliver_all(own_redis)
    pause = page_of(own_redis, BRANCH, "pause")
    assert (pause.status, pause.priority) == ("open", "high")

    fake_clock.advance(11)
    Desk(own_redis, branch, "vip").resume()
    cleared = pages.get(own_redis, BRANCH, pause.id)
    assert (cleared.status, cleared.resolution, cleared.resolved_by) == ("resolved", "cleared", None)
    assert cleared.audit[-1].event == "cleared"
    assert not any(m.startswith(pause.id) for m in own_redis.zrange(keys.timers(BRANCH), 0, -1)), "no timer left"
    assert pause.id not in own_redis.zrange(keys.pages_active(BRANCH), 0, -1)
    assert device_changes(own_redis, BRANCH, pause.id) == ["page", "cleared"], "every device hears it ended"

    fake_clock.advance(branch.escalation.high_s * 3)  # long past when it would have climbed to the deputy
    pages.fire_due(own_redis, [branch])
    assert pages.get(own_redis, BRANCH, pause.id) == cleared, "nothing more happens to it, ever"
    assert own_redis.hlen(keys.cleared(BRANCH)) == 0, "the mark is used up"


def test_a_pause_resumed_before_its_page_is_written_gets_a_page_born_cleared(own_redis, branch, fake_clock):
    Desk(own_redis, branch, "vip").pause("review", 5, None)
    Desk(own_redis, branch, "vip").resume()  # no pager worker has made the pause's page yet
    deliver_all(own_redis)
    pause = page_of(own_redis, BRANCH, "pause")
    assert (pause.status, pause.resolution) == ("resolved", "cleared")
    assert [e.event for e in pause.audit] == ["created", "cleared"]
    assert not any(m.startswith(pause.id) for m in own_redis.zrange(keys.timers(BRANCH), 0, -1))
    assert pause.id not in own_redis.zrange(keys.pages_active(BRANCH), 0, -1)


def test_a_pause_overrun_is_told_to_the_terminal_and_cleared_at_resume(own_redis, branch, fake_clock):
    desk = Desk(own_redis, branch, "vip")
    desk.pause("vault_transfer", 1, None)
    assert watch.pause_overruns(own_redis, branch) == 0, "not before its time"
    fake_clock.advance(2 * 60)
    assert watch.pause_overruns(own_redis, branch) == 1
    assert watch.pause_overruns(own_redis, branch) == 0, "once per pause"
    told = [json.loads(f["data"]) for _, f in own_redis.xrange(keys.terminal_stream(BRANCH, "vip"))
            if f["type"] == watch.PAUSE_OVERRUN]
    assert len(told) == 1 and told[0]["over_s"] >= 60, "the teller's terminal is told of its own overrun"
    assert desk.view().pause.overrun is True
    deliver_all(own_redis)
    pause, overrun = page_of(own_redis, BRANCH, "pause"), page_of(own_redis, BRANCH, "pause_overrun")
    assert overrun.status == "open"

    desk.resume()
    for page in (pause, overrun):
        assert pages.get(own_redis, BRANCH, page.id).resolution == "cleared", page.kind
    fake_clock.advance(branch.escalation.high_s * 3)
    assert pages.fire_due(own_redis, [branch]) == 0


def test_a_resumed_pause_is_not_paged_as_overrun(own_redis, branch, fake_clock, monkeypatch):
    """The watch read the pause before the resume: its write must find the pause over and page nothing."""
    desk = Desk(own_redis, branch, "vip")
    desk.pause("break", 1, None)
    fake_clock.advance(2 * 60)
    read = watch.counters.load_all

    def resume_meanwhile(r, b):  # the counter resumes right after the watch looked
        states = read(r, b)
        desk.resume()
        return states

    monkeypatch.setattr(watch.counters, "load_all", resume_meanwhile)
    assert watch.pause_overruns(own_redis, branch) == 0
    monkeypatch.undo()
    deliver_all(own_redis)
    assert [p.kind for p in pages.list_pages(own_redis, BRANCH, "all") if p.kind == "pause_overrun"] == []


def test_a_long_wait_page_is_cleared_when_the_customer_is_called(own_redis, branch, fake_clock):
    number = issue(own_redis, branch, branch.category("vip"))
    fake_clock.advance((branch.vip_wait_threshold_minutes + 1) * 60)
    assert watch.vip_waits(own_redis, branch) == 1
    deliver_all(own_redis)
    wait = page_of(own_redis, BRANCH, "vip_wait")
    assert wait.status == "open" and wait.details["ticket"] == number

    assert Desk(own_redis, branch, "vip").call_next().number == number
    called = pages.get(own_redis, BRANCH, wait.id)
    assert (called.status, called.resolution) == ("resolved", "cleared"), "cleared by the call itself"
    fake_clock.advance(branch.escalation.high_s * 3)
    assert pages.fire_due(own_redis, [branch]) == 0
    assert watch.vip_waits(own_redis, branch) == 0


def test_an_information_page_closes_by_itself(own_redis, quick_branch, fake_clock):
    desk = Desk(own_redis, quick_branch, "vip")
    desk.pause("review", 5, None)
    desk.resume()
    deliver_all(own_redis)
    resume = page_of(own_redis, QUICK, "resume")
    assert (resume.priority, resume.status) == ("low", "open")
    fake_clock.advance(quick_branch.escalation.info_close_s - 0.01)
    assert pages.fire_due(own_redis, [quick_branch]) == 0, "not before its time"
    fake_clock.advance(0.01)
    assert pages.fire_due(own_redis, [quick_branch]) == 1
    closed = pages.get(own_redis, QUICK, resume.id)
    assert (closed.status, closed.resolution, closed.escalation_level) == ("resolved", "expired", 0)
    assert closed.acknowledged_by is None, "nobody had to acknowledge it"


# Two actors at once


def _wait_page_of(live, alert_id: str, device: dict[str, str]) -> dict:
    def found() -> dict | None:
        got = requests.get(f"{live.url('counter')}/api/v1/branches/{BRANCH}/counters/2/alerts/{alert_id}",
                           headers=device, timeout=5).json()["alert"]
        return got if got.get("page_id") else None

    return eventually(found)


def test_an_answer_racing_repeat_presses_is_never_lost(live, r, token):
    """200 times: the teller presses distress again while the manager acknowledges (or answers): both stay.

    Distress, because it is never rate-limited: 800 presses in a minute are what this test is about."""
    teller, manager = bearer(token("counter", "2")), bearer(token("device", "lobby-manager"))
    counter_api = f"{live.url('counter')}/api/v1/branches/{BRANCH}/counters/2"
    pages_api = f"{live.url('pager')}/api/v1/branches/{BRANCH}/pages"
    lost = []
    for trial in range(200):
        answer_with = "ack" if trial % 2 else "reply"
        first = requests.post(f"{counter_api}/alerts", headers=teller, json={"kind": "distress"}, timeout=5)
        assert first.status_code == 202
        page_id = _wait_page_of(live, first.json()["alert"]["id"], teller)["page_id"]
        start = threading.Barrier(2)

        def press(start: threading.Barrier = start) -> None:
            start.wait()
            for _ in range(3):
                assert requests.post(f"{counter_api}/alerts", headers=teller, json={"kind": "distress"},
                                     timeout=5).status_code == 202

        def answer(start: threading.Barrier = start, how: str = answer_with, page_id: str = page_id) -> None:
            start.wait()
            body = {"preset": "coming"} if how == "reply" else None
            done = requests.post(f"{pages_api}/{page_id}/{how}", headers=manager, json=body, timeout=5)
            assert done.status_code == 200, done.text

        threads = [threading.Thread(target=press), threading.Thread(target=answer)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(10)

        def settled(page_id: str = page_id) -> dict | None:
            page = requests.get(f"{pages_api}/{page_id}", headers=manager, timeout=5).json()["page"]
            return page if page["presses"] == 4 else None

        page = eventually(settled)
        if page["status"] != "acknowledged" or page["acknowledged_by"] != "lobby-manager" or (
                answer_with == "reply" and [x["preset"] for x in page["replies"]] != ["coming"]):
            lost.append((trial, answer_with, page["status"], page["acknowledged_by"], page["replies"]))
        assert not any(m.startswith(page_id) for m in r.zrange(keys.timers(BRANCH), 0, -1)), "acknowledged: no timer"
        requests.post(f"{pages_api}/{page_id}/resolve", headers=manager, json={}, timeout=5)
    assert lost == []


# Distress stays discreet; a worsening situation raises the alarm again


def test_a_distress_terminal_never_learns_who_answered(live, r, token, sse):
    teller, deputy = bearer(token("counter", "2")), bearer(token("device", "deputy"))
    counter_api = f"{live.url('counter')}/api/v1/branches/{BRANCH}/counters/2"
    pages_api = f"{live.url('pager')}/api/v1/branches/{BRANCH}/pages"
    terminal = sse(f"{counter_api}/events", params={"token": token("counter", "2")})
    alert = requests.post(f"{counter_api}/alerts", headers=teller, json={"kind": "distress"}, timeout=5).json()["alert"]
    page_id = _wait_page_of(live, alert["id"], teller)["page_id"]
    assert requests.post(f"{pages_api}/{page_id}/ack", headers=deputy, timeout=5).status_code == 200
    free_text = requests.post(f"{pages_api}/{page_id}/reply", headers=deputy, json={"message": "副行长马上到"},
                              timeout=5)
    assert free_text.status_code == 422 and free_text.json()["error"]["code"] == "discreet_reply_only"
    preset = requests.post(f"{pages_api}/{page_id}/reply", headers=deputy, json={"preset": "coming"}, timeout=5)
    assert preset.status_code == 200 and preset.json()["page"]["replies"][-1]["by"] == "deputy", "the page knows"
    reply = terminal.wait_for(lambda e: e.type == "reply")
    assert (reply.data["message"], reply.data["preset"]) == ("马上到", "coming")
    stored = eventually(lambda: requests.get(f"{counter_api}/alerts/{alert['id']}", headers=teller,
                                             timeout=5).json()["alert"] if terminal.of_type("reply") else None)
    assert stored["status"] == "acknowledged" and stored["reply_preset"] == "coming"
    told = json.dumps([e.data for e in terminal.events] + [stored], ensure_ascii=False)
    for name in (*MANAGER_NAMES, "deputy", "lobby-manager"):
        assert name not in told, f"the terminal was told {name!r}"


def test_a_press_after_acknowledgement_alerts_every_device_again(live, r, token, sse):
    teller, manager = bearer(token("counter", "2")), bearer(token("device", "lobby-manager"))
    counter_api = f"{live.url('counter')}/api/v1/branches/{BRANCH}/counters/2"
    pages_api = f"{live.url('pager')}/api/v1/branches/{BRANCH}/pages"
    device = sse(f"{pages_api}/events", headers=manager)
    first = requests.post(f"{counter_api}/alerts", headers=teller, json={"kind": "distress"}, timeout=5).json()
    page_id = _wait_page_of(live, first["alert"]["id"], teller)["page_id"]
    requests.post(f"{pages_api}/{page_id}/ack", headers=manager, timeout=5)
    again = requests.post(f"{counter_api}/alerts", headers=teller, json={"kind": "distress"}, timeout=5).json()
    alarm = device.wait_for(lambda e: e.data.get("change") == "pressed_again")
    assert alarm.data["page"]["presses"] == 2 and alarm.data["page"]["status"] == "acknowledged"
    fate = eventually(lambda: (lambda a: a if a["status"] == "acknowledged" else None)(
        requests.get(f"{counter_api}/alerts/{again['alert']['id']}", headers=teller, timeout=5).json()["alert"]))
    assert fate["page_id"] == page_id, "the terminal learns that this press, too, was taken"


def test_the_terminal_names_who_did_each_thing(live, r, token):
    teller = bearer(token("counter", "2"))
    lobby, deputy, boss = (bearer(token("device", m)) for m in ("lobby-manager", "deputy", "branch-manager"))
    counter_api = f"{live.url('counter')}/api/v1/branches/{BRANCH}/counters/2"
    pages_api = f"{live.url('pager')}/api/v1/branches/{BRANCH}/pages"
    alert = requests.post(f"{counter_api}/alerts", headers=teller, json={"kind": "ask_supervisor", "note": "限额？"},
                          timeout=5).json()["alert"]
    page_id = _wait_page_of(live, alert["id"], teller)["page_id"]
    assert requests.post(f"{pages_api}/{page_id}/ack", headers=lobby, timeout=5).status_code == 200
    assert requests.post(f"{pages_api}/{page_id}/reply", headers=deputy, json={"message": "五千以内"},
                         timeout=5).status_code == 200
    resolved = requests.post(f"{pages_api}/{page_id}/resolve", headers=boss, json={}, timeout=5).json()["page"]
    assert (resolved["resolved_by"], resolved["resolution"]) == ("branch-manager", "resolved")

    def final() -> dict | None:
        got = requests.get(f"{counter_api}/alerts/{alert['id']}", headers=teller, timeout=5).json()["alert"]
        return got if got["status"] == "resolved" and got["reply"] else None

    got = eventually(final)
    assert (got["acknowledged_by"], got["replied_by"], got["resolved_by"]) == ("大堂经理", "副行长", "行长")


# Facts on screens


def test_a_pause_reports_the_lines_of_the_counter_that_paused(own_redis, branch, fake_clock):
    for category, n in (("vip", 3), ("corporate", 2)):
        for _ in range(n):
            issue(own_redis, branch, branch.category(category))
    fake_clock.advance(120)
    Desk(own_redis, branch, "4").pause("break", 10, None)
    (raw,) = own_redis.hvals(keys.outbox(BRANCH))
    request = PageRequest.model_validate_json(raw)
    assert (request.details["waiting"], request.details["vip_waiting"]) == (2, 0)
    assert request.details["lines"] == [{"category": "corporate", "waiting": 2, "longest_wait_s": 120}]
    assert "对公业务 2 位" in request.message and "贵宾" not in request.message


def test_a_redirect_never_sends_customers_to_a_counter_that_is_not_open(own_redis, branch, fake_clock):
    number = issue(own_redis, branch, branch.category("vip"))
    Desk(own_redis, branch, "3").pause("break", 10, None)
    Desk(own_redis, branch, "vip").pause("vault_transfer", 15, None)
    reader = tickets.TicketReader(own_redis, branch)
    ticket = reader.get(number)
    assert ticket.redirect is not None and ticket.redirect.window is None, "window 3 is paused too: nowhere to go"
    (notice,) = screen.notices(reader)
    assert notice.window is None and notice.tickets == [number]
    pause = page_of_request(own_redis, "pause", "vip")
    assert pause.details["redirect_window"] is None and pause.details["no_redirect"] is True
    assert "请引导至" not in pause.message

    Desk(own_redis, branch, "3").resume()
    assert tickets.TicketReader(own_redis, branch).get(number).redirect.window == "3", "window 3 takes them again"
    assert Desk(own_redis, branch, "3").call_next().number == number


def page_of_request(r: redis.Redis, kind: str, counter: str) -> PageRequest:
    (found,) = [req for req in (PageRequest.model_validate_json(raw) for raw in r.hvals(keys.outbox(BRANCH)))
                if req.kind == kind and req.counter == counter]
    return found


# Errors that break the contract: limits, replays, text


def test_the_alert_limit_holds_under_concurrency_and_a_replay_wins_over_it(live, r, token):
    if time.time() % 60 > 50:  # the limit counts per minute: keep the burst inside one window
        time.sleep(61 - time.time() % 60)
    teller = bearer(token("counter", "3"))
    url = f"{live.url('counter')}/api/v1/branches/{BRANCH}/counters/3/alerts"
    first_key = uuid.uuid4().hex
    first = requests.post(url, headers={**teller, "Idempotency-Key": first_key}, json={"kind": "help"}, timeout=5)
    assert first.status_code == 202
    start = threading.Barrier(45)
    codes: list[int] = []

    def press() -> None:
        start.wait()
        codes.append(requests.post(url, headers=teller, json={"kind": "help"}, timeout=10).status_code)

    threads = [threading.Thread(target=press) for _ in range(45)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(20)
    assert sorted(codes) == [202] * 29 + [429] * 16, "30 a minute from one terminal, the first press included"
    replay = requests.post(url, headers={**teller, "Idempotency-Key": first_key}, json={"kind": "help"}, timeout=5)
    assert replay.status_code == 202 and replay.headers.get("Idempotent-Replayed") == "true"
    assert replay.json() == first.json()
    assert requests.post(url, headers=teller, json={"kind": "distress"}, timeout=5).status_code == 202, \
        "a distress call is never limited"


def test_a_retry_after_the_work_was_done_but_not_answered_acts_no_more(clients, token, r, monkeypatch):
    """The request wrote its alert, then failed before answering (its replica confirmation timed out): the retry
    with its key answers with that alert, and writes no second one."""
    from services.domain import alerts

    headers = {"Authorization": f"Bearer {token('counter', '2')}", "Idempotency-Key": "press-1"}
    url = f"/api/v1/branches/{BRANCH}/counters/2/alerts"
    real, failures = alerts.replicated, []

    def lost_on_the_way(client: redis.Redis) -> None:
        if not failures:
            failures.append(1)
            raise redis.ConnectionError("the answer was lost after the write")
        real(client)

    monkeypatch.setattr(alerts, "replicated", lost_on_the_way)
    assert clients["counter"].post(url, headers=headers, json={"kind": "distress"}).status_code == 503
    retried = clients["counter"].post(url, headers=headers, json={"kind": "distress"})
    assert retried.status_code == 202 and "Idempotent-Replayed" not in retried.headers
    stored = list(r.scan_iter(f"{keys.branch(BRANCH)}:alert:*"))
    assert [key.rsplit(":", 1)[1] for key in stored] == [retried.json["alert"]["id"]], "one alert, not two"
    again = clients["counter"].post(url, headers=headers, json={"kind": "distress"})
    assert again.json == retried.json and again.headers["Idempotent-Replayed"] == "true"


def test_a_ticket_retried_after_its_answer_was_lost_is_the_same_ticket(clients, r, monkeypatch):
    real, failures = tickets.TicketReader.view, []

    def lost_on_the_way(self, raw, position):
        if not failures:
            failures.append(1)
            raise redis.ConnectionError("the answer was lost after the write")
        return real(self, raw, position)

    monkeypatch.setattr(tickets.TicketReader, "view", lost_on_the_way)
    url, headers = f"/api/v1/branches/{BRANCH}/tickets", {"Idempotency-Key": "tap-1"}
    assert clients["kiosk"].post(url, headers=headers, json={"category": "vip"}).status_code == 503
    retried = clients["kiosk"].post(url, headers=headers, json={"category": "vip"})
    assert retried.status_code == 201 and retried.json["ticket"]["number"] == "V001"
    assert clients["kiosk"].post(url, json={"category": "vip"}).json["ticket"]["number"] == "V002", \
        "the retry issued nothing more"


def test_the_same_request_with_its_keys_reordered_is_the_same_request(clients, token):
    headers = {"Authorization": f"Bearer {token('counter', '4')}", "Idempotency-Key": "pause-1",
               "Content-Type": "application/json"}
    url = f"/api/v1/branches/{BRANCH}/counters/4/pause"
    first = clients["counter"].post(url, headers=headers, data='{"reason": "break", "expected_minutes": 5}')
    assert first.status_code == 200
    same = clients["counter"].post(url, headers=headers, data='{ "expected_minutes":5,"reason":"break" }')
    assert same.status_code == 200 and same.headers["Idempotent-Replayed"] == "true"
    other = clients["counter"].post(url, headers=headers, data='{"reason": "break", "expected_minutes": 6}')
    assert other.status_code == 422 and other.json["error"]["code"] == "idempotency_key_reused"


@pytest.mark.parametrize(("note", "stored"), [
    ("客户\u202e要求\u202c退款", "客户要求退款"),  # a right-to-left override would reorder what the manager reads
    ("打\u200b印\u2060机\ufeff卡纸", "打印机卡纸"),  # zero-width characters and a stray BOM
    ("第一行\n第二行\t结束  ", "第一行 第二行 结束"),  # a note shows on one line
])
def test_notes_are_stored_as_a_person_reads_them(clients, token, r, note, stored):
    headers = {"Authorization": f"Bearer {token('counter', '2')}"}
    answer = clients["counter"].post(f"/api/v1/branches/{BRANCH}/counters/2/alerts", headers=headers,
                                     json={"kind": "help", "note": note})
    assert answer.status_code == 202
    run_jobs(r)
    (page,) = pages.list_pages(r, BRANCH, "open")
    assert page.details["note"] == stored and page.message == f"2 窗口需要协助：{stored}"


@pytest.mark.parametrize("note", ["a\x00b", "\x1b[31mred", "\u200b\u200c"])
def test_notes_with_control_characters_or_nothing_visible_are_refused(clients, token, r, note):
    headers = {"Authorization": f"Bearer {token('counter', '2')}"}
    before = sorted(r.scan_iter("lobby:*"))
    answer = clients["counter"].post(f"/api/v1/branches/{BRANCH}/counters/2/alerts", headers=headers,
                                     json={"kind": "help", "note": note})
    assert answer.status_code == 422 and answer.json["error"]["code"] == "invalid_request"
    assert sorted(k for k in r.scan_iter("lobby:*") if ":token:" not in k and not k.endswith(":tokens")) == \
        [k for k in before if ":token:" not in k and not k.endswith(":tokens")], "nothing changed"


def test_a_question_asked_again_keeps_every_question_and_names_who_took_it(live, r, token):
    teller, manager = bearer(token("counter", "2")), bearer(token("device", "lobby-manager"))
    counter_api = f"{live.url('counter')}/api/v1/branches/{BRANCH}/counters/2"
    pages_api = f"{live.url('pager')}/api/v1/branches/{BRANCH}/pages"
    first = requests.post(f"{counter_api}/alerts", headers=teller, json={"kind": "ask_supervisor", "note": "限额？"},
                          timeout=5).json()["alert"]
    page_id = _wait_page_of(live, first["id"], teller)["page_id"]
    assert requests.post(f"{pages_api}/{page_id}/ack", headers=manager, timeout=5).status_code == 200
    again = requests.post(f"{counter_api}/alerts", headers=teller,
                          json={"kind": "ask_supervisor", "note": "外币呢？"}, timeout=5).json()["alert"]

    def taken() -> dict | None:
        got = requests.get(f"{counter_api}/alerts/{again['id']}", headers=teller, timeout=5).json()["alert"]
        return got if got["status"] == "acknowledged" else None

    assert eventually(taken)["acknowledged_by"] == "大堂经理", "the later press says who has the page"
    page = requests.get(f"{pages_api}/{page_id}", headers=manager, timeout=5).json()["page"]
    assert page["details"]["questions"] == ["限额？", "外币呢？"]
