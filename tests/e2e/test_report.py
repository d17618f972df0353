"""The branch manager's daily report in Chromium, after a whole scripted business day.

The day (09:00 to 17:00, 152 customers, five pauses, six alert calls) is played in this process on the fake
clock, a week ahead so the running stack's workers (on the real clock) leave it alone, as in
tests/test_report.py; the stack's pager service then serves the page from the same Redis. It is checked
for its charts and tables, axe-core, printing, the CSV download, and photographed for README
(`LOBBY_SCREENSHOTS=1 .venv/bin/pytest tests/e2e/test_report.py` writes docs/screenshots/report.png).
"""

from __future__ import annotations

import heapq
import itertools
import os
import random
import re
from collections.abc import Callable
from datetime import datetime, time, timedelta
from pathlib import Path

from playwright.sync_api import expect

from services.common import contracts, keys, tickets
from services.common.contracts import PageRequest
from services.common.errors import ApiError
from services.counter import watch
from services.counter.desk import Desk
from services.pager import escalation, jobs, pages
from tests.conftest import BRANCH, today_at_nine
from tests.e2e.conftest import SCREENSHOTS, axe_violations, recorded
from tests.e2e.test_screenshots import png_size

DESK = {"width": 1280, "height": 900}
# Customers per hour and category (VIP, personal, corporate), 09:00 to 16:00: a busy day with a lunch dip.
ARRIVALS = {9: (3, 12, 2), 10: (5, 19, 3), 11: (4, 17, 3), 12: (2, 8, 1), 13: (3, 11, 2), 14: (4, 18, 3),
            15: (3, 15, 2), 16: (2, 9, 1)}
# Minutes a customer takes at the counter, by category: (shortest, longest).
SERVICE = {"vip": (6, 14), "personal": (7, 15), "corporate": (10, 22)}
# (counter, start, reason, expected minutes, actual minutes, note)
PAUSES = [("vip", "10:42", "vault_transfer", 15, 22, "上午现金入库"), ("2", "12:00", "break", 30, 28, None),
          ("3", "14:30", "review", 10, 13, "凭证复核"), ("4", "15:40", "corporate_cash", 20, 17, None),
          ("vip", "16:30", "vault_transfer", 20, 18, "日终现金入库")]
# (counter, time, kind, note)
ALERTS = [("2", "10:20", "help", None), ("4", "10:45", "ask_supervisor", "客户要求当日取现 60 万元，可否办理？"),
          ("1", "11:10", "distress", None), ("3", "14:05", "help", None),
          ("4", "15:20", "ask_supervisor", "企业账户变更需要行长签字吗？"), ("1", "16:10", "help", None)]
# Seconds until a manager takes a page, by kind: (soonest, latest).
ACK_AFTER = {"distress": (30, 55), "help": (20, 70), "ask_supervisor": (40, 95), "pause": (10, 40),
             "pause_overrun": (20, 80), "vip_wait": (20, 90), "resume": (60, 300)}
NO_TOKEN = re.compile(r"^(?!.*token=)")
CUSTOMERS = sum(sum(n) for n in ARRIVALS.values())


def play_busy_day(r, branch, fake_clock, monkeypatch) -> str:
    """Play a whole business day through the counters, the watch and the pager; return its date."""
    monkeypatch.setattr(contracts, "enqueue", lambda *args, **kwargs: None)
    monkeypatch.setattr(contracts, "request_page", lambda *args, **kwargs: None)
    rng = random.Random(8)
    day = (today_at_nine() + timedelta(days=7)).date()
    category = {c.id: c for c in branch.categories}
    desks = {c.id: Desk(r, branch, c.id) for c in branch.counters}
    lobby, deputy = branch.managers[0], branch.managers[1]
    events: list[tuple[datetime, int, Callable[[], None]]] = []
    order = itertools.count()
    paused: set[str] = set()
    chain = dict.fromkeys(desks, 0)  # a counter's current round of calls; a pause starts a new one

    def wall(text: str) -> datetime:
        hour, minute = (int(x) for x in text.split(":"))
        return datetime.combine(day, time(hour, minute), branch.zone)

    def later(moment: datetime, action: Callable[[], None]) -> None:
        heapq.heappush(events, (moment, next(order), action))

    def now() -> datetime:
        return fake_clock.moment

    def deliver_pages() -> None:
        for raw in r.hvals(keys.outbox(BRANCH)):
            page_id = jobs.deliver(r, PageRequest.model_validate_json(raw))
            after = ACK_AFTER[pages.get(r, BRANCH, page_id).kind]
            later(now() + timedelta(seconds=rng.randint(*after)), lambda p=page_id: take(p))

    def take(page_id: str) -> None:
        page = pages.get(r, BRANCH, page_id)
        if page.status == "open":
            pages.acknowledge(r, branch, page_id, deputy if page.escalation_level else lobby)

    def serve(counter: str, round_: int) -> None:
        if counter in paused or round_ != chain[counter]:
            return
        ticket = desks[counter].call_next()
        minutes = 1 / 3 if ticket is None else rng.uniform(*SERVICE[ticket.category])  # idle: look again in 20 s
        later(now() + timedelta(minutes=minutes), lambda: serve(counter, round_))

    def pause(counter: str, reason: str, expected: int, actual: int, note: str | None) -> None:
        if desks[counter].view().serving:
            desks[counter].finish("served")
        desks[counter].pause(reason, expected, note)
        paused.add(counter)
        chain[counter] += 1
        deliver_pages()
        later(now() + timedelta(minutes=actual), lambda: resume(counter))

    def resume(counter: str) -> None:
        desks[counter].resume()
        paused.discard(counter)
        chain[counter] += 1
        deliver_pages()
        serve(counter, chain[counter])

    def alert(counter: str, kind: str, note: str | None) -> None:
        from services.common.contracts import PageKind, Priority
        from services.counter import alerts

        priority = {"distress": Priority.URGENT}.get(kind, Priority.HIGH)
        label = {"distress": "紧急求助", "ask_supervisor": "请示主管", "help": "需要协助"}[kind]
        details = {"note": note, **({"question": note} if kind == "ask_supervisor" else {})}
        window = branch.counter(counter).window
        alerts.raise_alert(r, alerts.page_request(branch, counter, PageKind(kind), priority,
                                                  f"{window} 窗口{label}" + (f"：{note}" if note else ""), details))
        deliver_pages()

    def tick() -> None:
        """What the workers do: the counter worker's watch each minute, the pager's timers every 5 s."""
        escalation.sweep(r, branch, 0)
        if now().second == 0:
            watch.vip_waits(r, branch)
            watch.pause_overruns(r, branch)
            deliver_pages()
        if now() < wall("17:30"):
            later(now() + timedelta(seconds=5), tick)

    for hour, counts in ARRIVALS.items():
        for category_id, n in zip(("vip", "personal", "corporate"), counts, strict=True):
            for minute in sorted(rng.sample(range(60), n)):
                moment = datetime.combine(day, time(hour, minute, rng.randint(0, 59)), branch.zone)
                later(moment, lambda c=category_id: tickets.issue(r, branch, category[c]))
    for counter in desks:
        later(wall("09:01"), lambda c=counter: serve(c, 0))
    for counter, start, reason, expected, actual, note in PAUSES:
        later(wall(start), lambda a=(counter, reason, expected, actual, note): pause(*a))
    for counter, start, kind, note in ALERTS:
        later(wall(start) + timedelta(seconds=12), lambda a=(counter, kind, note): alert(*a))
    later(wall("09:00"), tick)

    while events:
        moment, _, action = heapq.heappop(events)
        if moment > wall("17:45"):
            break
        fake_clock.moment = max(fake_clock.moment, moment)
        try:
            action()
        except ApiError as exc:  # e.g. a counter that paused between its call and its next
            raise AssertionError(f"{moment:%H:%M:%S}: {exc.message}") from exc
    for desk in desks.values():
        if desk.view().serving:
            desk.finish("served")
    return day.isoformat()


def test_the_report_page_renders_its_charts_and_tables(live, browse, urls, r, branch, fake_clock, monkeypatch, token,
                                                       tmp_path):
    day = play_busy_day(r, branch, fake_clock, monkeypatch)
    manager = token("device", "branch-manager")
    page = browse.open(f"{urls.pager}/branches/{BRANCH}/report?date={day}&token={manager}", DESK,
                       wait_live=False, still=True)

    expect(page.locator("h1")).to_contain_text("营业日报")
    expect(page.locator("#kpi-issued")).to_have_text(str(CUSTOMERS))
    expect(page).to_have_url(NO_TOKEN)  # the token leaves the address bar
    for chart in ("#chart-hours", "#chart-waits", "#chart-pages"):
        expect(page.locator(chart)).to_be_visible()
        box = page.locator(chart).bounding_box()
        assert box and box["width"] > 600 and box["height"] > 100, (chart, box)
    expect(page.locator("#chart-hours rect")).not_to_have_count(0)
    expect(page.locator("#t-hours tbody tr")).to_have_count(len(ARRIVALS))
    expect(page.locator("#t-hours tfoot td").last).to_have_text(str(CUSTOMERS))
    expect(page.locator("#t-categories tbody tr")).to_have_count(3)
    expect(page.locator("#t-pauses tbody tr")).to_have_count(len(PAUSES))
    expect(page.locator("#t-pauses")).to_contain_text("现金出入库")
    expect(page.locator('#t-pages tr[data-kind="distress"] td').first).to_have_text("1")
    expect(page.locator("#t-vip tbody tr")).not_to_have_count(0)
    # Chinese renders in a CJK font: a Chinese heading is as wide as its characters, not tofu boxes.
    assert page.evaluate("document.fonts.check('16px \"Noto Sans CJK SC\"', '营业日报')")

    # Every table downloads as CSV from its link.
    with page.expect_download() as caught:
        page.locator("#sec-pauses .rp-csv").click()
    download = caught.value
    assert download.suggested_filename == f"{BRANCH}-report-{day}-pauses.csv"
    text = Path(download.path()).read_text(encoding="utf-8")
    assert text.startswith("\ufeffcounter,window,reason,") and "现金出入库" in text

    # Printing: the controls go, the sections stay.
    page.locator("#rp-print").click()
    assert recorded(page)["printed"] == 1
    page.emulate_media(media="print")
    expect(page.locator(".rp-tools")).to_be_hidden()
    expect(page.locator("#chart-pages")).to_be_visible()
    page.emulate_media(media="screen")

    folder = SCREENSHOTS if os.environ.get("LOBBY_SCREENSHOTS") == "1" else tmp_path
    folder.mkdir(parents=True, exist_ok=True)
    page.evaluate("document.activeElement && document.activeElement.blur()")
    path = folder / "report.png"
    page.screenshot(path=str(path), full_page=True, animations="disabled", caret="hide")
    width, height = png_size(path)
    assert width == DESK["width"] and height > DESK["height"] and path.stat().st_size > 80_000, (width, height)

    # axe-core is injected inline, so it reads a copy of the page opened without the CSP.
    checked = browse.open(f"{urls.pager}/branches/{BRANCH}/report?date={day}&token={manager}", DESK,
                          wait_live=False, still=True, bypass_csp=True)
    expect(checked.locator("#chart-pages")).to_be_visible()
    assert axe_violations(checked) == [], "axe-core: serious or critical violations on the report"


def test_the_report_asks_for_a_token_and_uses_the_devices(live, browse, urls, token):
    manager = token("device", "lobby-manager")
    gate = browse.open(f"{urls.pager}/branches/{BRANCH}/report", DESK, wait_live=False, still=True, bypass_csp=True)
    expect(gate.locator("#gate-token")).to_be_visible()
    assert axe_violations(gate) == [], "axe-core on the token form"
    gate.locator("#gate-token").fill(manager)
    gate.locator("#gate-token").press("Enter")
    expect(gate.locator("#kpi-issued")).to_have_text("0")
    expect(gate).to_have_url(NO_TOKEN)
    # The device keeps the token: the report opens without it next time, as the device page does.
    gate.goto(f"{urls.pager}/branches/{BRANCH}/report")
    expect(gate.locator("#chart-hours")).to_be_visible()
    expect(gate).to_have_url(NO_TOKEN)
    gate.goto(f"{urls.pager}/branches/{BRANCH}/report?date=2025-02-30")
    expect(gate.locator("#gate-title")).to_contain_text("日期有误")
