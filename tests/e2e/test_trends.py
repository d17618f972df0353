"""The trends page in Chromium, over a quarter of archived days.

The days are written into a records database (SQLite) as the archive writes them: 13 weeks ending yesterday, the
branch open Monday to Saturday, some 300 customers a day with a lunch dip and longer waits on Monday mornings,
pauses of every reason and pages of every kind a teller raises. The pager service runs in this process on the
in-process Redis (where the test's tokens are), with that database, served over HTTP to the browser.

It is checked at a desk (1366×900), on the manager's phone (390×844) and as printed on A4: every chart drawn
(wide at a desk and on paper, compact on the phone), nothing wider than the screen, axe-core, and the way from
the daily report to the trends and back on the reading session. It is photographed for README
(`LOBBY_SCREENSHOTS=1 .venv/bin/pytest tests/e2e/test_trends.py` writes docs/screenshots/trends.png at a desk).
"""

from __future__ import annotations

import os
import random
import threading
from collections.abc import Iterator
from datetime import date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from playwright.sync_api import Browser, expect
from sqlalchemy import insert
from werkzeug.serving import make_server

from services.domain.clock import SYSTEM, business_day
from services.ops.redis_server import free_port
from services.records import database, tables
from services.runtime.settings import Context
from tests.conftest import BRANCH
from tests.e2e.conftest import PHONE, SCREENSHOTS, TERMINAL, Browsing, assert_fits, axe_violations, recorded
from tests.e2e.test_screenshots import png_size

DESK = TERMINAL
ZONE = ZoneInfo("Asia/Shanghai")
A4 = {"width": 710, "height": 1031}
WEEKS = 13
CHARTS = ("#chart-heat-vip", "#chart-heat-personal", "#chart-heat-corporate", "#chart-vip", "#chart-acks",
          "#chart-kinds", "#chart-pauses", "#chart-days")
# Customers an hour, 09:00 to 16:00, on an ordinary day; Mondays and Saturdays are busier.
ARRIVALS = {9: 38, 10: 52, 11: 48, 12: 22, 13: 30, 14: 46, 15: 40, 16: 24}
SHARE = {"vip": 0.08, "personal": 0.72, "corporate": 0.20}
PREFIX = {"vip": "V", "personal": "A", "corporate": "B"}
# Typical wait (seconds) per category; the busy hours and days stretch it.
WAIT = {"vip": 330, "personal": 420, "corporate": 560}
PAUSE_REASONS = (("vault_transfer", 15), ("corporate_cash", 20), ("review", 10), ("break", 30), ("other", 10))
KINDS = (("help", "high"), ("help", "high"), ("ask_supervisor", "high"), ("distress", "urgent"),
         ("pause", "normal"), ("pause_overrun", "high"), ("vip_wait", "high"), ("resume", "low"))


def iso(day: date, seconds: float) -> str:
    """Write the moment `seconds` after the start of a day in Shanghai as the live system writes times."""
    moment = datetime(day.year, day.month, day.day, tzinfo=ZONE) + timedelta(seconds=seconds)
    return moment.isoformat(timespec="milliseconds")


def write_quarter(db, branch_id: str, yesterday: date) -> int:
    """Archive WEEKS weeks of days ending yesterday, Sundays closed; return the tickets written."""
    rng = random.Random(18)
    written = 0
    with db.begin() as connection:
        for n in range(WEEKS * 7):
            day = yesterday - timedelta(days=WEEKS * 7 - 1 - n)
            if day.weekday() == 6:
                continue
            name = day.isoformat()
            busy = {0: 1.25, 5: 1.15}.get(day.weekday(), 1.0) * (1 + 0.1 * (n / (WEEKS * 7)))
            tickets, counts = [], dict.fromkeys(SHARE, 0)
            for hour, per_hour in ARRIVALS.items():
                for _ in range(round(per_hour * busy * rng.uniform(0.85, 1.15))):
                    category = rng.choices(list(SHARE), list(SHARE.values()))[0]
                    counts[category] += 1
                    issued = hour * 3600 + rng.uniform(0, 3599)
                    stretch = busy * (1.5 if hour in (10, 11, 14) else 0.8 if hour in (12, 16) else 1.0)
                    called = rng.random() > 0.02
                    wait = round(rng.gammavariate(2.2, WAIT[category] * stretch / 2.2), 3) if called else None
                    tickets.append({
                        "branch": branch_id, "day": name, "number": f"{PREFIX[category]}{counts[category]:03d}",
                        "category": category, "final_category": category,
                        "status": "served" if called else "expired", "issued_at": iso(day, issued),
                        "estimate_s": 300, "called_at": iso(day, issued + wait) if called else None,
                        "counter": "1", "window": "1", "recalls": 0, "recalled_at": None, "transfers": 0,
                        "transferred_from": None,
                        "transferred_to": None, "transferred_at": None, "finished_at": None,
                        "expired_at": None if called else iso(day, 17 * 3600), "wait_s": wait,
                        "weekday": day.weekday(), "hour": hour})
            pages = []
            for i in range(rng.randint(6, 14)):
                kind, priority = rng.choice(KINDS)
                created = rng.uniform(9, 17) * 3600
                ack = None if priority == "low" or rng.random() < 0.05 else round(rng.gammavariate(2, 22), 3)
                pages.append({
                    "branch": branch_id, "id": f"{name}-{i}", "day": name, "kind": kind, "priority": priority,
                    "counter": "1", "window": "1", "message": kind, "test": i == 0 and day.weekday() == 4,
                    "created_at": iso(day, created), "acknowledged_at": iso(day, created + ack) if ack else None,
                    "acknowledged_by": "lobby-manager" if ack else None, "ack_s": ack, "resolved_at": None,
                    "resolved_by": None, "resolution": None if ack or priority == "low" else "cleared",
                    "resolution_note": None, "escalation_level": 1 if ack and ack > 80 else 0, "presses": 1,
                    "repeats": 0, "page": {"id": f"{name}-{i}"}})
            pauses = []
            for counter in rng.sample(["vip", "1", "2", "3", "4"], rng.randint(2, 5)):
                reason, expected = rng.choice(PAUSE_REASONS)
                since = rng.uniform(10, 16) * 3600
                actual = round(expected * 60 * rng.uniform(0.7, 1.45))
                pauses.append({"branch": branch_id, "day": name, "counter": counter, "since": iso(day, since),
                               "window": counter, "reason": reason, "note": None, "expected_minutes": expected,
                               "resumed_at": iso(day, since + actual), "actual_s": actual})
            connection.execute(insert(tables.days), [{
                "branch": branch_id, "day": name, "archived_at": iso(day, 23 * 3600), "tickets": len(tickets),
                "pauses": len(pauses), "pages": len(pages), "page_events": 0, "alerts": 0, "outages": 0}])
            connection.execute(insert(tables.tickets), tickets)
            connection.execute(insert(tables.pages), pages)
            connection.execute(insert(tables.pauses), pauses)
            written += len(tickets)
    return written


@pytest.fixture
def pager_url(r, ctx: Context, tmp_path: Path) -> Iterator[str]:
    """The pager service in this process, over HTTP, with a records database holding a quarter of days."""
    from services.pager.app import create_app

    url = database.sqlite_url(tmp_path / "records.db")
    db = database.connect(url)
    database.migrate(db)
    yesterday = date.fromisoformat(business_day(ctx.branches[BRANCH], SYSTEM.now())) - timedelta(days=1)
    write_quarter(db, BRANCH, yesterday)
    db.dispose()
    app = create_app({"TESTING": True,
                      "CONTEXT": Context(ctx.settings.model_copy(update={"database_url": url}), ctx.branches)})
    server = make_server("127.0.0.1", free_port(), app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()
    thread.join(5)
    database.engine(url).dispose()


@pytest.fixture
def browse(browser: Browser) -> Iterator[Browsing]:
    """Open pages; at the end, none may have thrown or broken the CSP."""
    browsing = Browsing(browser)
    yield browsing
    browsing.close()
    assert not browsing.problems, "\n".join(browsing.problems)
    assert not browsing.dialogs, f"a page opened a dialog: {browsing.dialogs}"


def test_the_trends_page_draws_every_chart_at_a_desk_on_a_phone_and_on_paper(pager_url, browse, token, tmp_path):
    manager = token("device", "branch-manager")
    page = browse.open(f"{pager_url}/branches/{BRANCH}/trends?range=quarter&token={manager}", DESK,
                       wait_live=False, still=True)
    expect(page.locator("h1")).to_contain_text("趋势")
    expect(page).to_have_url(f"{pager_url}/branches/{BRANCH}/trends?range=quarter")  # the token leaves
    expect(page.locator('.tr-ranges [aria-current="page"]')).to_have_attribute("data-range", "quarter")
    expect(page.locator("#tr-span")).to_contain_text(f"已归档 {WEEKS * 6} 天")
    assert_fits(page, DESK)
    for chart in CHARTS:
        expect(page.locator(chart)).to_be_visible()
        expect(page.locator(f"{chart}-compact")).to_be_hidden()
        box = page.locator(chart).bounding_box()
        assert box and box["width"] > 600 and box["height"] > 100, (chart, box)
    expect(page.locator("#chart-heat-personal rect")).not_to_have_count(0)
    expect(page.locator("#chart-days rect")).not_to_have_count(0)
    expect(page.locator("#t-kinds tbody tr")).not_to_have_count(0)
    expect(page.locator("#sec-heat .rp-csv")).to_have_attribute(
        "href", f"/api/v1/branches/{BRANCH}/trends/heatmap.csv?range=quarter")
    assert page.evaluate("document.fonts.check('16px \"Noto Sans CJK SC\"', '趋势')")
    # A chart's CSV downloads from its link, its header in both languages.
    with page.expect_download() as caught:
        page.locator("#sec-vip .rp-csv").click()
    assert caught.value.suggested_filename.startswith(f"{BRANCH}-trends-quarter-")
    assert Path(caught.value.path()).read_text(encoding="utf-8").startswith("\ufeff周 week,开始 start,结束 end,")

    folder = SCREENSHOTS if os.environ.get("LOBBY_SCREENSHOTS") == "1" else tmp_path
    folder.mkdir(parents=True, exist_ok=True)
    page.evaluate("document.activeElement && document.activeElement.blur()")
    shot = folder / "trends.png"
    page.screenshot(path=str(shot), full_page=True, animations="disabled", caret="hide")
    width, height = png_size(shot)
    assert width == DESK["width"] and height > DESK["height"], (width, height)

    # Printed: the controls go, every chart stays, drawn wide, within A4.
    page.locator("#rp-print").click()
    assert recorded(page)["printed"] == 1
    page.emulate_media(media="print")
    page.set_viewport_size(A4)
    expect(page.locator(".rp-tools")).to_be_hidden()
    assert_fits(page, A4)
    for chart in CHARTS:
        expect(page.locator(chart)).to_be_visible()
        expect(page.locator(f"{chart}-compact")).to_be_hidden()
    page.screenshot(path=str(tmp_path / "trends-a4.png"), full_page=True, animations="disabled", caret="hide")
    page.emulate_media(media="screen")

    # The other ranges, by their links, on the session the first visit opened.
    page.set_viewport_size(DESK)
    page.locator('.tr-ranges [data-range="12m"]').click()
    expect(page.locator('.tr-ranges [aria-current="page"]')).to_have_attribute("data-range", "12m")
    expect(page.locator("#tr-span")).to_contain_text("共 365 天")
    page.locator('.tr-ranges [data-range="4w"]').click()
    expect(page.locator("#tr-span")).to_contain_text("共 28 天")

    phone = browse.open(f"{pager_url}/branches/{BRANCH}/trends?range=quarter&token={manager}", PHONE,
                        wait_live=False, still=True, touch=True)
    expect(phone.locator("#kpi-tickets")).not_to_have_text("0")
    assert_fits(phone, PHONE)
    for chart in CHARTS:
        expect(phone.locator(chart)).to_be_hidden()
        expect(phone.locator(f"{chart}-compact")).to_be_visible()
        box = phone.locator(f"{chart}-compact").bounding_box()
        assert box and 300 < box["width"] <= PHONE["width"] - 20 and box["x"] >= 0, (chart, box)
    phone.evaluate("document.activeElement && document.activeElement.blur()")
    whole = tmp_path / "trends-phone.png"
    phone.screenshot(path=str(whole), full_page=True, animations="disabled", caret="hide")
    assert png_size(whole)[0] == PHONE["width"], "nothing wider than the phone, to the bottom of the page"

    # axe-core is injected inline, so it reads a copy of the page opened without the CSP.
    for viewport in (DESK, PHONE):
        checked = browse.open(f"{pager_url}/branches/{BRANCH}/trends?range=quarter&token={manager}", viewport,
                              wait_live=False, still=True, bypass_csp=True)
        expect(checked.locator("#chart-days")).to_be_attached()
        assert axe_violations(checked) == [], f"axe-core: serious or critical violations at {viewport}"


def test_from_the_daily_report_to_the_trends_and_back_on_the_devices_token(pager_url, browse, token):
    manager = token("device", "lobby-manager")
    page = browse.open(f"{pager_url}/branches/{BRANCH}/report?token={manager}", PHONE, wait_live=False, still=True)
    expect(page.locator("#kpi-issued")).to_be_visible()
    # The report's session does not reach the trends' paths: the trends page opens its own with the token the
    # device keeps, then shows the trends.
    page.locator("#rp-trends").click()
    expect(page.locator("#chart-vip-compact")).to_be_visible()
    expect(page.locator("#kpi-tickets")).not_to_have_text("0")
    assert "token" not in page.url
    assert_fits(page, PHONE)
    page.locator("#tr-report").click()
    expect(page.locator("#kpi-issued")).to_be_visible()
    # A range that is none says so, with a form to choose one.
    page.goto(f"{pager_url}/branches/{BRANCH}/trends?range=1y")
    expect(page.locator("#gate-title")).to_contain_text("时段有误")
    page.locator("#gate-range").select_option("12m")
    page.locator(".rp-gate-form button[type=submit]").click()
    expect(page.locator("#tr-span")).to_contain_text("共 365 天")
    gate = browse.open(f"{pager_url}/branches/{BRANCH}/trends", PHONE, wait_live=False, still=True, bypass_csp=True)
    expect(gate.locator("#gate-token")).to_be_visible()
    assert axe_violations(gate) == [], "axe-core on the token form"
    assert_fits(gate, PHONE)
