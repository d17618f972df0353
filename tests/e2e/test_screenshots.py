"""Screenshots of every page at the size it is used at, from a branch in the middle of a busy morning.

`LOBBY_SCREENSHOTS=1 .venv/bin/pytest tests/e2e/test_screenshots.py` writes them to docs/screenshots/
(README's "Screens" shows them); a plain run writes them to a temporary folder and checks them there,
so the suite never dirties the checkout.
"""

from __future__ import annotations

import os
import re
import struct
from pathlib import Path

from playwright.sync_api import Page, expect

from tests.conftest import BRANCH
from tests.e2e.conftest import (
    DISPLAY,
    DISPLAY_PORTRAIT,
    KIOSK,
    PHONE,
    REPO,
    SCREENSHOTS,
    TERMINAL,
    list_pages,
    post,
    take_ticket,
)
from tests.sse import eventually

SHOTS = {
    "kiosk.png": KIOSK,
    "kiosk-ticket.png": KIOSK,
    "display-landscape.png": DISPLAY,
    "display-portrait.png": DISPLAY_PORTRAIT,
    "ticket.png": PHONE,
    "terminal.png": TERMINAL,
    "device.png": PHONE,
    "device-floor.png": PHONE,
}


def png_size(path: Path) -> tuple[int, int]:
    """Width and height of a PNG, from its IHDR chunk."""
    head = path.read_bytes()[:24]
    assert head[:8] == b"\x89PNG\r\n\x1a\n", f"{path} is not a PNG"
    return struct.unpack(">II", head[16:24])


def shoot(page: Page, folder: Path, name: str) -> Path:
    page.evaluate("document.activeElement && document.activeElement.blur()")
    path = folder / name
    page.screenshot(path=str(path), animations="disabled", caret="hide")
    return path


def test_screenshots_of_every_page_at_its_real_size(live, browse, urls, token, tmp_path):
    folder = SCREENSHOTS if os.environ.get("LOBBY_SCREENSHOTS") == "1" else tmp_path
    folder.mkdir(parents=True, exist_ok=True)
    tokens = {c: token("counter", c) for c in ("vip", "1", "2", "3", "4")}
    manager = token("device", "lobby-manager")

    # Mid-morning: customers wait in every line, three counters serve, the VIP counter goes to the vault.
    for category in ["vip"] * 4 + ["personal"] * 6 + ["corporate"] * 3:
        take_ticket(live, category)
    for counter in ("1", "2", "4"):
        post(live, "counter", f"/counters/{counter}/call-next", tokens[counter])
    post(live, "counter", "/counters/vip/pause", tokens["vip"],
         {"reason": "vault_transfer", "expected_minutes": 15, "note": "午间现金入库"})
    post(live, "counter", "/counters/3/call-next", tokens["3"])  # V001, redirected from the VIP counter
    post(live, "counter", "/counters/4/alerts", tokens["4"],
         {"kind": "ask_supervisor", "note": "客户要求当日取现 60 万元，未预约，可否办理？"})
    post(live, "counter", "/counters/2/alerts", tokens["2"], {"kind": "distress"})
    eventually(lambda: len(list_pages(live, manager)) >= 3, timeout=15)

    shots: list[Path] = []

    kiosk = browse.open(urls.kiosk_page(), KIOSK, touch=True)
    expect(kiosk.locator('button[data-category="personal"] .cat-count')).to_have_text("4")
    shots.append(shoot(kiosk, folder, "kiosk.png"))
    kiosk.locator('button[data-category="personal"]').click()
    expect(kiosk.locator("#r-number")).to_have_text(re.compile(r"^A\d{3}$"))
    kiosk.wait_for_function("() => document.getElementById('r-qr').complete && "
                            "document.getElementById('r-qr').naturalWidth > 0")
    shots.append(shoot(kiosk, folder, "kiosk-ticket.png"))

    for name, size in (("display-landscape.png", DISPLAY), ("display-portrait.png", DISPLAY_PORTRAIT)):
        display = browse.open(urls.screen(), size)
        expect(display.locator("#current-number")).to_have_text("V001")
        expect(display.locator('.notice[data-kind="vip_redirect"] li')).to_have_text(["V002", "V003", "V004"])
        shots.append(shoot(display, folder, name))

    ticket = browse.open(urls.ticket("V003"), PHONE, touch=True)
    expect(ticket.locator("#t-redirect")).to_be_visible()
    shots.append(shoot(ticket, folder, "ticket.png"))

    terminal = browse.open(urls.terminal("3", tokens["3"]), TERMINAL)
    expect(terminal.locator("#serving-number")).to_have_text("V001")
    terminal.locator("#ask-note").fill("V001 客户要办外币兑换，本窗口可以办理吗？")
    terminal.locator("#ask").click()
    question = eventually(lambda: next((p for p in list_pages(live, manager)
                                        if p["kind"] == "ask_supervisor" and p["counter"] == "3"), None), timeout=15)
    post(live, "pager", f"/pages/{question['id']}/reply", manager,
         {"message": "可以，按外币兑换流程办理，限额内无需审批。"})
    expect(terminal.locator(".al-reply")).to_be_visible()
    terminal.locator("#help").click()
    expect(terminal.locator("#alerts .al-item")).to_have_count(2)
    help_page = eventually(lambda: next((p for p in list_pages(live, manager)
                                         if p["kind"] == "help" and p["counter"] == "3"), None), timeout=15)
    post(live, "pager", f"/pages/{help_page['id']}/ack", manager)
    expect(terminal.locator("#alerts")).to_contain_text("大堂经理 正在赶来")
    terminal.locator("#alerts").scroll_into_view_if_needed()
    terminal.evaluate("window.scrollTo(0, 0)")
    shots.append(shoot(terminal, folder, "terminal.png"))

    device = browse.open(urls.device(manager), PHONE, touch=True)
    expect(device.locator(".pg").first).to_have_attribute("data-kind", "distress")
    expect(device.locator(".pg")).to_have_count(5)
    shots.append(shoot(device, folder, "device.png"))
    device.locator("#tab-floor").click()
    expect(device.locator('#floor-counters [data-counter="vip"]')).to_contain_text("暂停")
    shots.append(shoot(device, folder, "device-floor.png"))

    for path in shots:
        assert png_size(path) == (SHOTS[path.name]["width"], SHOTS[path.name]["height"]), path
        assert path.stat().st_size > 20_000, f"{path} looks blank"
    assert sorted(p.name for p in shots) == sorted(SHOTS)


def test_readme_shows_every_screenshot_at_its_size():
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    assert "## Screens" in readme
    section = readme[readme.index("## Screens"):]
    for name, size in SHOTS.items():
        assert f"docs/screenshots/{name}" in section, f"README's Screens section does not show {name}"
        path = SCREENSHOTS / name
        assert path.exists(), f"{path} is missing: LOBBY_SCREENSHOTS=1 .venv/bin/pytest tests/e2e/test_screenshots.py"
        assert png_size(path) == (size["width"], size["height"]), path
    assert BRANCH
