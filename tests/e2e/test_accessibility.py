"""axe-core (from the npm registry, tests/e2e/package-lock.json) finds no serious or critical accessibility
violation on any page, in each state a person sees it in."""

from __future__ import annotations

import re

from playwright.sync_api import Page, expect

from tests.e2e.conftest import (
    DISPLAY,
    DISPLAY_PORTRAIT,
    KIOSK,
    PHONE,
    TERMINAL,
    axe_violations,
    list_pages,
    post,
    take_ticket,
)
from tests.sse import eventually


def test_no_serious_or_critical_violations_on_any_page(live, browse, urls, token):
    manager = token("device", "lobby-manager")
    tokens = {c: token("counter", c) for c in ("vip", "1", "2", "3")}
    for category in ("vip", "vip", "personal", "corporate"):
        take_ticket(live, category)
    post(live, "counter", "/counters/vip/pause", tokens["vip"], {"reason": "vault_transfer", "expected_minutes": 15,
                                                                 "note": "午间入库"})
    post(live, "counter", "/counters/3/call-next", tokens["3"])
    post(live, "counter", "/counters/2/alerts", tokens["2"], {"kind": "distress"})

    found: dict[str, list] = {}

    def check(name: str, page: Page) -> None:
        found[name] = axe_violations(page)

    def open_page(url: str, size: dict[str, int], **kwargs) -> Page:
        return browse.open(url, size, bypass_csp=True, still=True, **kwargs)  # axe is injected inline

    kiosk = open_page(urls.kiosk_page(), KIOSK, touch=True)
    check("kiosk", kiosk)
    kiosk.locator("#lang").click()
    check("kiosk in English", kiosk)
    kiosk.locator('button[data-category="personal"]').click()
    expect(kiosk.locator("#r-number")).to_have_text(re.compile(r"^A\d{3}$"))
    check("kiosk ticket", kiosk)

    display = open_page(urls.screen(), DISPLAY)
    expect(display.locator(".notice")).to_be_visible()
    check("display", display)
    check("display portrait", open_page(urls.screen(), DISPLAY_PORTRAIT))

    ticket = open_page(urls.ticket("V002"), PHONE, touch=True)
    expect(ticket.locator("#t-redirect")).to_be_visible()
    check("ticket", ticket)

    terminal = open_page(urls.terminal("1", tokens["1"]), TERMINAL)
    terminal.locator("#ask-note").fill("可以办理吗？")
    terminal.locator("#ask").click()
    question = eventually(lambda: next((p for p in list_pages(live, manager) if p["kind"] == "ask_supervisor"),
                                       None), timeout=10)
    post(live, "pager", f"/pages/{question['id']}/reply", manager, {"message": "可以。"})
    expect(terminal.locator(".al-reply")).to_be_visible()
    check("terminal", terminal)
    check("terminal paused", open_page(urls.terminal("vip", tokens["vip"]), TERMINAL))
    check("terminal enrolment", open_page(urls.terminal("4"), TERMINAL, wait_live=False))

    device = open_page(urls.device(manager), PHONE, touch=True)
    expect(device.locator(".pg")).to_have_count(3)
    device.locator('.pg[data-kind="ask_supervisor"] .pg-reply-toggle').click()
    check("device", device)
    check("device enrolment", open_page(urls.device(), PHONE, wait_live=False))

    check("not found", open_page(f"{urls.kiosk}/branches/nowhere/kiosk", PHONE, wait_live=False))

    bad = {name: violations for name, violations in found.items() if violations}
    assert not bad, "\n".join(f"{k}: {v}" for k, v in bad.items())
    assert len(found) == 12
