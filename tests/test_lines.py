"""Waiting lines: first in, first out, and never one ticket for two counters."""

from __future__ import annotations

import threading
from collections import Counter

import requests

from services.domain import tickets
from services.domain.desk import Desk
from tests.conftest import BRANCH, issue

API = f"/api/v1/branches/{BRANCH}"


def test_tickets_are_numbered_per_category_and_called_in_order(r, branch):
    personal, vip = branch.category("personal"), branch.category("vip")
    issued = [issue(r, branch, c) for c in (personal, vip, personal, vip, personal)]
    assert issued == ["A001", "V001", "A002", "V002", "A003"]
    calls = [Desk(r, branch, "1").call_next() for _ in range(4)]
    assert [t.number if t else None for t in calls] == ["A001", "A002", "A003", None]
    assert Desk(r, branch, "vip").call_next().number == "V001"
    reader = tickets.TicketReader(r, branch)
    assert reader.get("A003").status == "served", "calling the next ticket finishes the current one"
    assert reader.get("V001").status == "called" and reader.get("V001").window == "VIP"
    assert reader.get("V002").position == 1


def test_twenty_counters_calling_at_once_never_share_a_ticket(live, token, r, branch):
    """Twenty threads call next on a line of 500 tickets: every ticket is called exactly once."""
    for _ in range(500):  # straight into the line: the kiosk would rate-limit one client taking 500
        issue(r, branch, branch.category("personal"))
    headers = {"Authorization": f"Bearer {token('counter', '1')}"}
    url = f"{live.url('counter')}{API}/counters/1/call-next"
    called: list[str] = []
    errors: list[str] = []
    lock = threading.Lock()
    start = threading.Barrier(20)

    def teller() -> None:
        mine = requests.Session()
        start.wait()
        while True:
            response = mine.post(url, headers=headers, timeout=10)
            if response.status_code != 200:
                with lock:
                    errors.append(response.text)
                return
            ticket = response.json()["ticket"]
            if ticket is None:
                return
            with lock:
                called.append(ticket["number"])

    threads = [threading.Thread(target=teller) for _ in range(20)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert errors == []
    counts = Counter(called)
    assert len(called) == 500 and set(counts.values()) == {1}
    assert set(called) == {f"A{i:03d}" for i in range(1, 501)}
