"""What `lobby simulate` writes, opened in Chromium over file:// as someone would open it from a folder.

The committed VIP-pause scenario is run with one policy compared (`--compare pause_redirect=none`); the base
day's report.html must then read on its own, away from the pager service: its stylesheets are files in assets/
beside it and are applied, nothing fails to load and nothing throws, it fits a desk (1280×900) and a phone
(390×844) without scrolling sideways, it says it is a simulated day, it draws its charts, its CSV links lead to
files that exist, and it has neither the service's date form nor its print button. The comparison chart
(comparison.svg) must load as an image and name both policies in its description.

Screenshots go to the test's folder, or to LOBBY_SIMULATE_SHOTS when set (to be looked at).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import unquote, urlparse

import pytest
from playwright.sync_api import Browser, expect

from services.ops import cli
from tests.e2e.conftest import PHONE, REPO, WAIT_MS, assert_fits

SCENARIO = REPO / "scenarios" / "vip-pause.toml"
POLICY = "pause_redirect=none"
DESK = {"width": 1280, "height": 900}
# The report's tables, each a CSV beside the page (services/pager/report/csv.py TABLES).
CSV_FILES = {"hours.csv", "categories.csv", "vip_waits.csv", "pauses.csv", "pages.csv", "supervision.csv",
             "test_calls.csv"}


@pytest.fixture(scope="module")
def simulated(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Run the scenario and its comparison once for the module; return the folder written."""
    out = tmp_path_factory.mktemp("simulated")
    assert cli.main(["simulate", str(SCENARIO), "--compare", POLICY, "--out", str(out)]) == 0
    return out


@pytest.fixture
def shots(tmp_path: Path) -> Path:
    folder = Path(os.environ["LOBBY_SIMULATE_SHOTS"]) if os.environ.get("LOBBY_SIMULATE_SHOTS") else tmp_path
    folder.mkdir(parents=True, exist_ok=True)
    return folder


class Opened:
    """A page opened in a fresh context, with everything that went wrong while it loaded and ran."""

    def __init__(self, browser: Browser, url: str, viewport: dict[str, int]):
        self.problems: list[str] = []
        self.context = browser.new_context(viewport=viewport, device_scale_factor=1, locale="zh-CN",
                                           timezone_id="Asia/Shanghai", reduced_motion="reduce")
        self.context.set_default_timeout(WAIT_MS)
        self.page = self.context.new_page()
        page = self.page
        page.on("console", lambda m: self.problems.append(f"console {m.type}: {m.text}")
                if m.type == "error" else None)
        page.on("pageerror", lambda e: self.problems.append(f"uncaught: {e}"))
        page.on("requestfailed", lambda r: self.problems.append(f"failed: {r.url} {r.failure}"))
        page.goto(url, wait_until="load")
        page.evaluate("() => document.fonts.ready.then(() => true)")


@pytest.fixture
def opener(browser: Browser) -> Iterator[list[Opened]]:
    opened: list[Opened] = []
    yield opened
    for each in opened:
        each.context.close()


def open_page(browser: Browser, opened: list[Opened], url: str, viewport: dict[str, int]) -> Opened:
    page = Opened(browser, url, viewport)
    opened.append(page)
    return page


def local_path(url: str) -> Path:
    parsed = urlparse(url)
    assert parsed.scheme == "file", url
    return Path(unquote(parsed.path))


@pytest.mark.parametrize("viewport", [DESK, PHONE], ids=["desk", "phone"])
def test_the_simulated_report_reads_from_its_folder(browser, opener, simulated, shots, viewport):
    report = simulated / "base" / "report.html"
    opened = open_page(browser, opener, report.as_uri(), viewport)
    page = opened.page

    # Its stylesheets are the files beside it, and they are applied: lobby.css's font and colours, report.css's
    # grid of sections.
    sheets = page.evaluate("() => Array.from(document.styleSheets, (s) => s.href)")
    assert {local_path(h) for h in sheets if h} >= {report.parent / "assets" / "lobby.css",
                                                    report.parent / "assets" / "report.css"}, sheets
    missing = [n for n in ("lobby.css", "report.css") if not (report.parent / "assets" / n).is_file()]
    assert not missing, f"stylesheets missing from assets/: {missing}"
    assert "Noto Sans CJK SC" in page.evaluate("() => getComputedStyle(document.body).fontFamily")
    main = page.evaluate("() => { const s = getComputedStyle(document.querySelector('.rp-main'));"
                         " return {display: s.display, maxWidth: s.maxWidth}; }")
    assert main == {"display": "grid", "maxWidth": "1120px"}, main
    assert page.evaluate("() => getComputedStyle(document.querySelector('.rp-section-head'))"
                         ".borderBottomStyle") == "solid"
    # Chinese in a CJK font, not boxes.
    assert page.evaluate("document.fonts.check('16px \"Noto Sans CJK SC\"', '营业日报')")

    # What it is: a simulated day, said where it is seen.
    note = page.locator("[role=note]", has_text="模拟营业日")
    expect(note).to_be_visible()
    expect(note).to_contain_text(SCENARIO.name)
    expect(page.locator("h1")).to_contain_text("营业日报")

    # The charts are drawn: the one for this width shown, with marks in it.
    charts = page.locator("svg.chart")
    assert charts.count() > 0
    visible = [charts.nth(i) for i in range(charts.count()) if charts.nth(i).is_visible()]
    assert visible, "no chart is visible"
    for chart in visible:
        box = chart.bounding_box()
        assert box and box["height"] > 50 and box["x"] >= 0 and box["x"] + box["width"] <= viewport["width"], box
    expect(page.locator("svg.chart:visible rect").first).to_be_attached()

    # Each table's CSV link leads to a file beside the page; the JSON link too.
    hrefs = page.evaluate("() => Array.from(document.querySelectorAll('a.rp-csv'), (a) => a.href)")
    assert {local_path(h).name for h in hrefs} == CSV_FILES, hrefs
    for href in hrefs:
        assert local_path(href).parent == report.parent and local_path(href).is_file(), href
    json_href = page.locator('a[href="report.json"]').evaluate("(a) => a.href")
    assert local_path(json_href).is_file()

    # What only the service can do is not offered: no date form to fetch another day, no print button.
    expect(page.locator("form")).to_have_count(0)
    expect(page.locator("input[type=date]")).to_have_count(0)
    expect(page.locator("#rp-print")).to_have_count(0)
    expect(page.get_by_role("button", name="打印")).to_have_count(0)

    assert_fits(page, viewport)
    name = "desk" if viewport is DESK else "phone"
    page.screenshot(path=str(shots / f"simulated-report-{name}.png"), animations="disabled", caret="hide")
    page.screenshot(path=str(shots / f"simulated-report-{name}-full.png"), full_page=True, animations="disabled",
                    caret="hide")
    assert not opened.problems, "\n".join(opened.problems)


def test_the_comparison_chart_loads_and_names_both_policies(browser, opener, simulated, shots, tmp_path):
    svg = simulated / "comparison.svg"
    assert svg.is_file()
    # As an image in a page, as a document or a mail would show it.
    frame = tmp_path / "comparison.html"
    frame.write_text(f'<!doctype html><meta charset="utf-8"><title>comparison</title>'
                     f'<img id="chart" alt="comparison" src="{svg.as_uri()}">', encoding="utf-8")
    opened = open_page(browser, opener, frame.as_uri(), {"width": 1040, "height": 900})
    size = opened.page.locator("#chart").evaluate("(img) => [img.complete, img.naturalWidth, img.naturalHeight]")
    assert size[0] and size[1] == 1000 and size[2] > 300, size
    opened.page.screenshot(path=str(shots / "comparison-img.png"), full_page=True)
    assert not opened.problems, "\n".join(opened.problems)

    # Opened itself: its description says both policies' figures.
    direct = open_page(browser, opener, svg.as_uri(), {"width": 1000, "height": 900})
    desc = direct.page.locator("desc").first.text_content() or ""
    assert "base" in desc and POLICY in desc, desc
    title = direct.page.locator("title").first.text_content() or ""
    assert "base" in title and POLICY in title, title
    assert not direct.problems, "\n".join(direct.problems)
