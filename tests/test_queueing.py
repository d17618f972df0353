"""Queueing: weights, the wait limit, recall, no-show, transfer, open and close, estimates, the day's end."""

from __future__ import annotations

import pytest

from services.domain import counters, tickets
from services.domain.desk import Desk
from services.domain.errors import Conflict, Unprocessable
from services.kiosk import screen
from tests.conftest import BLEND, BRANCH, issue


def _issue(r, branch, category: str, n: int) -> list[str]:
    return [issue(r, branch, branch.category(category)) for _ in range(n)]


def _numbers(desk: Desk, n: int) -> list[str | None]:
    return [t.number if t else None for t in (desk.call_next() for _ in range(n))]


def test_weights_interleave_two_vip_calls_per_personal_call(r, blend_branch, fake_clock):
    _issue(r, blend_branch, "personal", 5)
    _issue(r, blend_branch, "vip", 8)
    desk = Desk(r, blend_branch, "1")
    called = _numbers(desk, 14)
    # Two VIP for each personal while both wait; then what is left, in order; then nobody.
    assert called == ["V001", "A001", "V002", "V003", "A002", "V004", "V005", "A003", "V006", "V007", "A004",
                      "V008", "A005", None]


def test_without_weights_a_counter_calls_its_categories_in_order(r, branch, fake_clock):
    _issue(r, branch, "personal", 2)
    _issue(r, branch, "vip", 2)
    # Counter 3 serves personal only; while the VIP counter is paused, VIP is called there first.
    Desk(r, branch, "vip").pause("vault_transfer", 10, None)
    assert _numbers(Desk(r, branch, "3"), 5) == ["V001", "V002", "A001", "A002", None]


def test_a_ticket_past_the_wait_limit_is_called_first_whatever_the_weights(r, blend_branch, fake_clock):
    _issue(r, blend_branch, "personal", 2)  # A001, A002 at 09:00
    fake_clock.advance(19 * 60)
    _issue(r, blend_branch, "vip", 4)
    desk = Desk(r, blend_branch, "1")
    assert _numbers(desk, 1) == ["V001"], "under the limit, the weights decide: VIP first"
    fake_clock.advance(61)  # the personal tickets have now waited 20 minutes and a second
    assert _numbers(desk, 2) == ["A001", "A002"], "past the 20-minute limit, personal goes first"
    assert _numbers(desk, 4) == ["V002", "V003", "V004", None]


def test_the_wait_limit_beats_a_redirect_too(r, blend_branch, fake_clock):
    _issue(r, blend_branch, "personal", 1)
    fake_clock.advance(21 * 60)
    _issue(r, blend_branch, "vip", 1)
    Desk(r, blend_branch, "vip").pause("review", 10, None)
    assert _numbers(Desk(r, blend_branch, "3"), 3) == ["A001", "V001", None]


def test_recall_is_limited_and_no_show_takes_the_ticket_out_of_the_line(r, blend_branch, fake_clock):
    _issue(r, blend_branch, "personal", 2)
    desk = Desk(r, blend_branch, "2")
    assert desk.call_next().number == "A001"
    assert desk.recall().recalls == 1
    assert desk.recall().recalls == 2
    with pytest.raises(Conflict) as refused:
        desk.recall()
    assert refused.value.code == "recall_limit"
    gone = desk.finish("no_show")
    assert (gone.number, gone.status, gone.position) == ("A001", "no_show", None)
    with pytest.raises(Conflict) as nothing:
        desk.recall()
    assert nothing.value.code == "not_serving"
    assert desk.call_next().number == "A002", "the no-show is not called again"
    assert desk.finish("served").status == "served"
    assert desk.call_next() is None


def test_transfer_to_a_category_keeps_the_place_by_issue_time(r, branch, fake_clock):
    _issue(r, branch, "personal", 2)  # A001, A002
    fake_clock.advance(60)
    _issue(r, branch, "corporate", 2)  # B001, B002, a minute later
    desk = Desk(r, branch, "1")
    assert desk.call_next().number == "A001"
    moved = desk.transfer(category="corporate")
    assert (moved.status, moved.category, moved.position, moved.transfers) == ("waiting", "corporate", 1, 1)
    assert desk.view().serving is None
    # A001 was issued before B001, so the corporate counter calls it first.
    assert _numbers(Desk(r, branch, "4"), 4) == ["A001", "B001", "B002", None]
    assert desk.call_next().number == "A002"


def test_transfer_to_a_counter_goes_first_there_and_only_there(r, branch, fake_clock):
    _issue(r, branch, "personal", 3)
    _issue(r, branch, "corporate", 1)
    assert Desk(r, branch, "1").call_next().number == "A001"
    moved = Desk(r, branch, "1").transfer(to_counter="4")
    assert (moved.status, moved.window, moved.position) == ("waiting", "4", 1)
    assert Desk(r, branch, "4").view().waiting == {"corporate": 1, counters.TRANSFERS: 1}
    assert _numbers(Desk(r, branch, "2"), 1) == ["A002"], "another personal counter does not take it"
    assert _numbers(Desk(r, branch, "4"), 3) == ["A001", "B001", None]


def test_bad_transfers_change_nothing(r, branch, fake_clock):
    _issue(r, branch, "personal", 1)
    desk = Desk(r, branch, "1")
    with pytest.raises(Conflict):
        desk.transfer(category="corporate")  # serving nothing yet
    desk.call_next()
    for kwargs, code in (({"category": "mortgages"}, "unknown_category"), ({"to_counter": "9"}, "unknown_counter"),
                         ({"to_counter": "1"}, "same_counter")):
        with pytest.raises(Unprocessable) as refused:
            desk.transfer(**kwargs)
        assert refused.value.code == code
    Desk(r, branch, "4").close()
    with pytest.raises(Conflict) as closed:
        desk.transfer(to_counter="4")
    assert closed.value.code == "counter_closed"
    assert desk.view().serving.number == "A001"


def test_closed_counters_take_no_calls_and_leave_the_estimates(r, branch, fake_clock):
    _issue(r, branch, "personal", 6)
    service_s = 4 * 60  # the demo's configured personal service time; nobody served yet today

    def estimate() -> int:
        return tickets.TicketReader(r, branch).get("A006").estimated_wait_s

    assert estimate() == 6 * service_s / 3, "three personal counters open"
    Desk(r, branch, "2").pause("break", 15, None)
    assert estimate() == 6 * service_s / 2, "a paused counter does not count"
    Desk(r, branch, "3").close()
    assert estimate() == 6 * service_s, "nor does a closed one"
    with pytest.raises(Conflict) as closed:
        Desk(r, branch, "3").call_next()
    assert closed.value.code == "counter_closed"
    Desk(r, branch, "2").resume()
    assert estimate() == 6 * service_s / 2
    Desk(r, branch, "3").open()
    assert estimate() == 6 * service_s / 3, "the estimate falls as counters open"
    Desk(r, branch, "1").close()
    Desk(r, branch, "2").close()
    Desk(r, branch, "3").close()
    assert tickets.TicketReader(r, branch).get("A006").estimated_wait_s is None, "nobody serves personal now"


def test_closing_needs_the_current_ticket_done_and_the_vip_counter_redirects(r, branch, fake_clock):
    _issue(r, branch, "vip", 2)
    vip = Desk(r, branch, "vip")
    vip.call_next()
    with pytest.raises(Conflict) as busy:
        vip.close()
    assert busy.value.code == "still_serving"
    vip.finish("served")
    assert vip.close().status == "closed"
    v002 = tickets.TicketReader(r, branch).get("V002")
    assert v002.redirect is not None and (v002.redirect.window, v002.redirect.reason) == ("3", "counter_closed")
    notice = screen.snapshot(r, branch).notices[0]
    assert (notice.window, notice.reason, notice.tickets) == ("3", "counter_closed", ["V002"])
    assert Desk(r, branch, "3").call_next().number == "V002"
    with pytest.raises(Conflict):
        vip.close()
    assert vip.open().status == "open"
    assert counters.redirects(r, branch) == {}


def test_estimates_follow_the_days_actual_service_times(r, branch, fake_clock):
    _issue(r, branch, "personal", 9)
    desk = Desk(r, branch, "1")
    desk.call_next()
    for _ in range(3):  # three customers served in 10 minutes each
        fake_clock.advance(600)
        desk.call_next()
    desk.finish("no_show")  # a no-show says nothing about service time
    for other in ("2", "3"):
        Desk(r, branch, other).call_next()  # A005, A006
    desk.call_next()  # A007: every counter calling personal customers is busy
    # The average counts the configured 4 minutes as PRIOR_SAMPLES services more.
    average = (3 * 600 + tickets.PRIOR_SAMPLES * 240) / (3 + tickets.PRIOR_SAMPLES)
    reader = tickets.TicketReader(r, branch)
    assert reader.service_s("personal") == average
    assert reader.get("A009").estimated_wait_s == -(-2 * average // 3)  # position 2, three busy counters
    assert reader.service_s("vip") == 6 * 60, "no VIP served yet: the configured time"
    Desk(r, branch, "2").finish("no_show")
    freed = tickets.TicketReader(r, branch)
    assert freed.get("A008").estimated_wait_s == 0, "a counter is free for the first in line: next up"
    assert freed.get("A009").estimated_wait_s == -(-2 * average // 3), "the second still waits its turn"
    assert freed.estimate("vip", 1) == 0, "the VIP counter is idle: a VIP customer is next up, not minutes away"


def test_numbers_restart_each_day_and_yesterdays_waiting_tickets_expire(r, branch, fake_clock):
    fake_clock.advance(8 * 3600)  # 17:00
    yesterday = tickets.TicketReader(r, branch).lines.day
    _issue(r, branch, "personal", 3)
    desk = Desk(r, branch, "1")
    assert desk.call_next().number == "A001"
    fake_clock.advance(16 * 3600)  # 09:00 the next day
    assert tickets.close_past_days(r, branch) == 2
    old = tickets.TicketReader(r, branch, yesterday)
    assert [old.get(n).status for n in ("A001", "A002", "A003")] == ["called", "expired", "expired"]
    assert _issue(r, branch, "personal", 1) == ["A001"], "numbering restarts at 001"
    # The counter still serves yesterday's A001: finishing it ends that ticket, not today's.
    assert desk.view().serving.number == "A001" and desk.view().serving.issued_at.startswith(yesterday)
    done = desk.finish("served")
    assert done.issued_at.startswith(yesterday) and done.status == "served"
    today = desk.call_next()
    assert today.number == "A001" and not today.issued_at.startswith(yesterday)
    assert tickets.close_past_days(r, branch) == 0, "each day is closed once"


def test_counter_endpoints_open_close_transfer_and_recall_over_http(clients, token, r):
    kiosk, counter = clients["kiosk"], clients["counter"]
    api = f"/api/v1/branches/{BLEND}"
    auth = {"Authorization": f"Bearer {token('counter', '2', BLEND)}"}
    for _ in range(2):
        assert kiosk.post(f"{api}/tickets", json={"category": "personal"}).status_code == 201
    base = f"{api}/counters/2"
    assert counter.post(f"{base}/call-next", headers=auth).json["ticket"]["number"] == "A001"
    assert counter.post(f"{base}/recall", headers=auth).json["ticket"]["recalls"] == 1
    assert counter.post(f"{base}/recall", headers=auth).json["ticket"]["recalls"] == 2
    third = counter.post(f"{base}/recall", headers=auth)
    assert third.status_code == 409 and third.json["error"]["code"] == "recall_limit"
    for body in ({}, {"category": "corporate", "counter": "4"}, {"category": "Corporate"}, {"counter": 4}):
        refused = counter.post(f"{base}/transfer", headers=auth, json=body)
        assert refused.status_code == 422, body
    assert counter.get(base, headers=auth).json["counter"]["serving"]["number"] == "A001"
    moved = counter.post(f"{base}/transfer", headers=auth, json={"counter": "4"})
    assert moved.status_code == 200 and moved.json["ticket"]["window"] == "4"
    busy = counter.post(f"{base}/close", headers=auth)
    assert busy.status_code == 200 and busy.json["counter"]["status"] == "closed"
    assert counter.post(f"{base}/call-next", headers=auth).json["error"]["code"] == "counter_closed"
    assert counter.post(f"{base}/close", headers=auth).status_code == 409
    assert counter.post(f"{base}/open", headers=auth).json["counter"]["status"] == "open"
    other = counter.post(f"{api}/counters/3/close", headers=auth)
    assert other.status_code == 403, "a counter's token closes only that counter"
    zhongnan = counter.post(f"/api/v1/branches/{BRANCH}/counters/2/close", headers=auth)
    assert zhongnan.status_code == 403, "nor a counter of another branch"
