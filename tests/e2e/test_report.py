"""The branch manager's daily report in Chromium, after a whole scripted business day.

The day (09:00 to 17:00, 152 customers, five pauses with long notes, six alert calls, and every kind of page)
is played in this process on the fake clock, a week ahead so the running stack's workers (on the real clock)
leave it alone, as in tests/test_report.py; the stack's pager service then serves the page from the same Redis.
It is checked on the manager's phone (390×844), at a desk (1366×900) and as printed on A4: nothing wider than
the screen, charts and tables, durations as m:ss, axe-core, printing, the CSV download, and no token in any
address. It is photographed for README (`LOBBY_SCREENSHOTS=1 .venv/bin/pytest tests/e2e/test_report.py`
writes docs/screenshots/report.png at a desk and report-phone.png on the phone).
"""

from __future__ import annotations

import heapq
import itertools
import os
import random
import re
from collections.abc import Callable
from datetime import date, datetime, time, timedelta
from pathlib import Path

from playwright.sync_api import expect

from services.domain import contracts, keys, pages, watch
from services.domain.clock import SYSTEM
from services.domain.contracts import PageRequest
from services.domain.desk import Desk
from services.domain.errors import ApiError
from services.pager import delivery as jobs
from services.web import auth
from tests.conftest import BRANCH, issue, today_at_nine
from tests.e2e.conftest import PHONE, SCREENSHOTS, TERMINAL, assert_fits, axe_violations, recorded
from tests.e2e.test_screenshots import png_size

DESK = TERMINAL  # a manager's desk: 1366×900
# What A4 portrait prints on, at 96 px to the inch: 210 mm less the page's 11 mm margins, 297 less 12.
A4 = {"width": 710, "height": 1031}
# Customers per hour and category (VIP, personal, corporate), 09:00 to 16:00: a busy day with a lunch dip.
ARRIVALS = {9: (3, 12, 2), 10: (5, 19, 3), 11: (4, 17, 3), 12: (2, 8, 1), 13: (3, 11, 2), 14: (4, 18, 3),
            15: (3, 15, 2), 16: (2, 9, 1)}
# Minutes a customer takes at the counter, by category: (shortest, longest).
SERVICE = {"vip": (6, 14), "personal": (7, 15), "corporate": (10, 22)}
# (counter, start, reason, expected minutes, actual minutes, note)
# Notes as long as tellers write them, one with a seal number no line can break, so the page has to wrap them
# on a phone and on A4.
PAUSES = [("vip", "10:42", "vault_transfer", 15, 22, "上午现金入库：押运车晚到约七分钟，金库双人复核后开柜"),
          ("2", "12:00", "break", 30, 28, "午休（已告知大堂经理，3 号窗口代办个人业务）"),
          ("3", "14:30", "review", 10, 13, "凭证复核：对公开户资料补件（营业执照副本、法定代表人身份证复印件）"),
          ("4", "15:40", "corporate_cash", 20, 17,
           "对公大额现金清点 Corporate cash count, 2 bags, 封签号 SH2025031400012345678901234567890123"),
          ("vip", "16:30", "vault_transfer", 20, 18, "日终现金入库")]
# (counter, time, kind, note)
ALERTS = [("2", "10:20", "help", None), ("4", "10:45", "ask_supervisor", "客户要求当日取现 60 万元，可否办理？"),
          ("1", "11:10", "distress", None), ("3", "14:05", "help", None),
          ("4", "15:20", "ask_supervisor", "企业账户变更需要行长签字吗？"), ("1", "16:10", "help", None)]
# Seconds until a manager takes a page, by kind: (soonest, latest).
ACK_AFTER = {"distress": (30, 55), "help": (20, 70), "ask_supervisor": (40, 95), "pause": (10, 40),
             "pause_overrun": (20, 80), "vip_wait": (20, 90), "resume": (60, 300)}
NO_TOKEN = re.compile(r"^(?!.*token=)")
# What a page of the information priority is called, in Chinese and in English.
INFORMATION_NAMES = contracts.PRIORITY_NAMES[contracts.INFORMATION]
CUSTOMERS = sum(sum(n) for n in ARRIVALS.values())


def play_busy_day(r, branch, fake_clock, monkeypatch) -> str:
    """Play a whole business day through the counters, the watch and the pager; return its date."""
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
            page_id = jobs.deliver(r, branch, PageRequest.model_validate_json(raw))
            after = ACK_AFTER[pages.get(r, BRANCH, page_id).kind]
            later(now() + timedelta(seconds=rng.randint(*after)), lambda p=page_id: take(p))

    def take(page_id: str) -> None:
        page = pages.get(r, BRANCH, page_id)
        if page.status == "open" and page.priority != contracts.INFORMATION:  # information closes by itself
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
        from services.domain import alerts
        from services.domain.contracts import PageKind, Priority

        priority = {"distress": Priority.URGENT}.get(kind, Priority.HIGH)
        label = contracts.KIND_NAMES[PageKind(kind)][0]
        details = {"note": note, **({"question": note} if kind == "ask_supervisor" else {})}
        window = branch.counter(counter).window
        alerts.raise_alert(r, alerts.page_request(branch, counter, PageKind(kind), priority,
                                                  f"{window} 窗口{label}" + (f"：{note}" if note else ""), details,
                                                  SYSTEM.now()))
        deliver_pages()

    def tick() -> None:
        """What the workers do: the counter worker's watch each minute, the pager's timers every 5 s."""
        pages.fire_due(r, [branch], grace_s=0)
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
                later(moment, lambda c=category_id: issue(r, branch, category[c]))
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


# What a page shows, measured in the browser.


def token_bearers(page) -> list[str]:
    """Every address in the page (href, src, action) and form field that carries a token."""
    return page.evaluate("""() => [
        ...Array.from(document.querySelectorAll('[href], [src], [action]'), (e) =>
            e.getAttribute('href') || e.getAttribute('src') || e.getAttribute('action')),
        ...Array.from(document.querySelectorAll('input[name], select[name], textarea[name]'), (e) =>
            'field ' + e.name),
    ].filter((value) => /token/i.test(value))""")


BARE_NEGATIVE = re.compile(r"(?<![\w.:/-])[-−]\d")
OVERRUN = re.compile(r"^(\+\d+:\d\d|0:00|提前 \d+:\d\d · early|尚余 \d+:\d\d · left)$")


def assert_units(page) -> None:
    """Durations as m:ss: every overrun cell, and no bare negative number anywhere on the page."""
    cells = page.locator("#t-pauses td.over-cell").all_inner_texts()
    assert len(cells) == len(PAUSES) and all(OVERRUN.match(" ".join(c.split())) for c in cells), cells
    assert "提前 2:00 · early" in [" ".join(c.split()) for c in cells], "the lunch break ended 2 minutes early"
    text = page.locator("body").inner_text()
    assert not BARE_NEGATIVE.findall(text), BARE_NEGATIVE.findall(text)


def test_the_report_fits_a_phone_and_never_puts_the_token_in_an_address(live, browse, urls, r, branch, fake_clock,
                                                                        monkeypatch, token, tmp_path):
    day = play_busy_day(r, branch, fake_clock, monkeypatch)
    manager = token("device", "branch-manager")
    page = browse.open(f"{urls.pager}/branches/{BRANCH}/report?date={day}&token={manager}", PHONE,
                       wait_live=False, still=True, touch=True)
    expect(page.locator("#kpi-issued")).to_have_text(str(CUSTOMERS))
    expect(page).to_have_url(NO_TOKEN)  # the token leaves the address bar
    assert "token" not in page.evaluate("window.location.href")
    assert token_bearers(page) == []
    assert_fits(page, PHONE)
    # Charts drawn for the phone: the compact ones, as wide as the card, their text as large as the tables'.
    for chart in ("#chart-hours", "#chart-waits", "#chart-pages"):
        expect(page.locator(chart)).to_be_hidden()
        expect(page.locator(f"{chart}-compact")).to_be_visible()
        box = page.locator(f"{chart}-compact").bounding_box()
        assert box and 300 < box["width"] <= PHONE["width"] - 20 and box["x"] >= 0, (chart, box)
    # Every page kind is in the table, and wide tables scroll in their own box, not the page.
    for kind in ("distress", "help", "ask_supervisor", "pause", "pause_overrun", "vip_wait", "resume"):
        expect(page.locator(f'#t-pages tr[data-kind="{kind}"] td').first).not_to_have_text("0")
    expect(page.locator('#t-pages tr[data-kind="resume"] td.info')).to_contain_text(INFORMATION_NAMES[0])
    boxes = page.evaluate("() => Array.from(document.querySelectorAll('.rp-scroll'), "
                          "(e) => [e.scrollWidth, e.clientWidth])")
    assert boxes and any(scroll > client for scroll, client in boxes), "the pages table scrolls in its box"
    assert all(client <= PHONE["width"] for _, client in boxes)
    assert_units(page)

    # README shows the phone's first screen; the whole page goes to the test's folder, to be looked at.
    folder = SCREENSHOTS if os.environ.get("LOBBY_SCREENSHOTS") == "1" else tmp_path
    folder.mkdir(parents=True, exist_ok=True)
    page.evaluate("document.activeElement && document.activeElement.blur()")
    shot = folder / "report-phone.png"
    page.screenshot(path=str(shot), animations="disabled", caret="hide")
    assert png_size(shot) == (PHONE["width"], PHONE["height"])
    whole = tmp_path / "report-phone-full.png"
    page.screenshot(path=str(whole), full_page=True, animations="disabled", caret="hide")
    assert png_size(whole)[0] == PHONE["width"], "nothing wider than the phone, to the bottom of the page"

    # The days around, by their links and by the date form: no token anywhere, the session reads them.
    page.locator('a[rel="next"]').click()
    expect(page).to_have_url(re.compile(rf"date={(date.fromisoformat(day) + timedelta(days=1)).isoformat()}$"))
    expect(page.locator("#kpi-issued")).to_have_text("0")
    assert token_bearers(page) == [] and "token" not in page.url
    page.locator('a[rel="prev"]').click()
    expect(page.locator("#kpi-issued")).to_have_text(str(CUSTOMERS))
    page.locator("#rp-date").fill((date.fromisoformat(day) - timedelta(days=1)).isoformat())
    page.locator(".rp-date button[type=submit]").click()
    expect(page.locator("#kpi-issued")).to_have_text("0")
    expect(page).to_have_url(NO_TOKEN)
    page.go_back()
    expect(page.locator("#kpi-issued")).to_have_text(str(CUSTOMERS))
    # A CSV file still downloads from its link, its header in both languages.
    with page.expect_download() as caught:
        page.locator("#sec-pages .rp-csv").click()
    assert caught.value.suggested_filename == f"{BRANCH}-report-{day}-pages.csv"
    text = Path(caught.value.path()).read_text(encoding="utf-8")
    header = f"\ufeff类型 kind,名称 name,英文名称 name_en,呼叫 pages,{INFORMATION_NAMES[0]} information,"
    assert text.startswith(header), text[:120]

    # Revoked, the token reads nothing more: the next page asks for a token, and the CSV is refused.
    csv_url = page.locator("#sec-pauses .rp-csv").get_attribute("href")
    assert auth.revoke(r, BRANCH, manager)
    page.locator('a[rel="next"]').click()
    expect(page.locator("#gate-title")).to_contain_text("请登记经理设备")
    expect(page.locator("#gate-reason")).to_contain_text("吊销")
    expect(page.locator("#kpi-issued")).to_have_count(0)
    assert page.evaluate(f"() => fetch({csv_url!r}).then((answer) => answer.status)") == 401
    assert page.evaluate(f"() => localStorage.getItem('lobby.device.{BRANCH}')") is None, "a revoked token is forgotten"
    assert_fits(page, PHONE)


def test_the_report_page_renders_its_charts_and_tables(live, browse, urls, r, branch, fake_clock, monkeypatch, token,
                                                       tmp_path):
    day = play_busy_day(r, branch, fake_clock, monkeypatch)
    manager = token("device", "branch-manager")
    page = browse.open(f"{urls.pager}/branches/{BRANCH}/report?date={day}&token={manager}", DESK,
                       wait_live=False, still=True)

    expect(page.locator("h1")).to_contain_text("营业日报")
    expect(page.locator("#kpi-issued")).to_have_text(str(CUSTOMERS))
    expect(page).to_have_url(NO_TOKEN)  # the token leaves the address bar
    assert token_bearers(page) == []
    assert_fits(page, DESK)
    for chart in ("#chart-hours", "#chart-waits", "#chart-pages"):
        expect(page.locator(chart)).to_be_visible()
        expect(page.locator(f"{chart}-compact")).to_be_hidden()
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
    boxes = page.evaluate("() => Array.from(document.querySelectorAll('.rp-scroll'), "
                          "(e) => e.scrollWidth - e.clientWidth)")
    assert boxes and max(boxes) <= 0, "at a desk every table fits its card"
    assert_units(page)
    # Chinese renders in a CJK font: a Chinese heading is as wide as its characters, not tofu boxes.
    assert page.evaluate("document.fonts.check('16px \"Noto Sans CJK SC\"', '营业日报')")

    # Every table downloads as CSV from its link.
    with page.expect_download() as caught:
        page.locator("#sec-pauses .rp-csv").click()
    download = caught.value
    assert download.suggested_filename == f"{BRANCH}-report-{day}-pauses.csv"
    text = Path(download.path()).read_text(encoding="utf-8")
    assert text.startswith("\ufeff柜台 counter,窗口 window,原因 reason,") and "现金出入库" in text

    # Printing: the controls go, the sections stay, and the wide charts fit A4.
    page.locator("#rp-print").click()
    assert recorded(page)["printed"] == 1
    page.emulate_media(media="print")
    expect(page.locator(".rp-tools")).to_be_hidden()
    expect(page.locator("#chart-pages")).to_be_visible()
    page.set_viewport_size(A4)
    assert_fits(page, A4)
    for chart in ("#chart-hours", "#chart-waits", "#chart-pages"):
        expect(page.locator(chart)).to_be_visible()
        expect(page.locator(f"{chart}-compact")).to_be_hidden()
    page.screenshot(path=str(tmp_path / "report-a4.png"), full_page=True, animations="disabled", caret="hide")
    page.emulate_media(media="screen")
    page.set_viewport_size(DESK)

    folder = SCREENSHOTS if os.environ.get("LOBBY_SCREENSHOTS") == "1" else tmp_path
    folder.mkdir(parents=True, exist_ok=True)
    page.evaluate("document.activeElement && document.activeElement.blur()")
    path = folder / "report.png"
    page.screenshot(path=str(path), full_page=True, animations="disabled", caret="hide")
    width, height = png_size(path)
    assert width == DESK["width"] and height > DESK["height"] and path.stat().st_size > 80_000, (width, height)

    # axe-core is injected inline, so it reads a copy of the page opened without the CSP; on the phone too.
    for viewport in (DESK, PHONE):
        checked = browse.open(f"{urls.pager}/branches/{BRANCH}/report?date={day}&token={manager}", viewport,
                              wait_live=False, still=True, bypass_csp=True)
        expect(checked.locator("#kpi-issued")).to_have_text(str(CUSTOMERS))
        assert axe_violations(checked) == [], f"axe-core: serious or critical violations on the report at {viewport}"


def test_the_report_asks_for_a_token_and_uses_the_devices(live, browse, urls, token):
    manager = token("device", "lobby-manager")
    gate = browse.open(f"{urls.pager}/branches/{BRANCH}/report", PHONE, wait_live=False, still=True,
                       bypass_csp=True)
    expect(gate.locator("#gate-token")).to_be_visible()
    assert token_bearers(gate) == [], "the form never sends the token in an address"
    assert axe_violations(gate) == [], "axe-core on the token form"
    assert_fits(gate, PHONE)
    gate.locator("#gate-token").fill(manager)
    gate.locator("#gate-token").press("Enter")
    expect(gate.locator("#kpi-issued")).to_have_text("0")
    expect(gate).to_have_url(NO_TOKEN)
    # The session reads the report again; once it is gone, the token the device keeps opens a new one.
    gate.goto(f"{urls.pager}/branches/{BRANCH}/report")
    expect(gate.locator("#chart-hours-compact")).to_be_visible()
    gate.context.clear_cookies()
    gate.goto(f"{urls.pager}/branches/{BRANCH}/report")
    expect(gate.locator("#chart-hours-compact")).to_be_visible()
    expect(gate).to_have_url(NO_TOKEN)
    gate.goto(f"{urls.pager}/branches/{BRANCH}/report?date=2025-02-30")
    expect(gate.locator("#gate-title")).to_contain_text("日期有误")
    assert token_bearers(gate) == []
