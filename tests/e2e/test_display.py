"""The lobby display shows when it is not live and comes back by itself; a customer's ticket page follows
the ticket from waiting (with its redirect) to called, and says where to go."""

from __future__ import annotations

import re

from playwright.sync_api import Route, expect

from tests.e2e.conftest import DISPLAY_PORTRAIT, PHONE, post, recorded, take_ticket, wait_recorded


def test_the_display_shows_when_it_is_not_live_and_reconnects_by_itself(live, browse, urls, token):
    refusing = {"on": True}
    refused: list[str] = []

    def stream(route: Route) -> None:
        if refusing["on"]:
            refused.append(route.request.url)
            route.fulfill(status=503, content_type="application/json",
                          body='{"error": {"code": "unavailable", "message": "try again"}}')
        else:
            route.continue_()

    display = browse.open(urls.screen(), DISPLAY_PORTRAIT, wait_live=False)
    display.route(re.compile(r".*/screen/events.*"), stream)
    display.reload()
    expect(display.locator("#offline")).to_be_visible()
    expect(display.locator("#live")).to_have_class(re.compile(r"\bis-off\b"))
    expect(display.locator("#live")).to_contain_text("离线")
    take_ticket(live, "personal")

    refusing["on"] = False  # the service is back: the display reconnects without anyone touching it
    expect(display.locator("#offline")).to_be_hidden()
    expect(display.locator("#live")).not_to_have_class(re.compile(r"\bis-off\b"))
    assert refused, "the display's stream was refused while the service was away"
    expect(display.locator('.waiting-card[data-category="personal"] .waiting-number')).to_have_text("1")

    post(live, "counter", "/counters/2/call-next", token("counter", "2"))
    expect(display.locator("#current-number")).to_have_text("A001")
    expect(display.locator("#current-where-en")).to_have_text("Please go to window 2")
    wait_recorded(display, "rec.spoken.length >= 2")
    assert [s["lang"] for s in recorded(display)["spoken"]] == ["zh-CN", "en-US"]


def test_the_ticket_page_follows_the_ticket_and_its_redirect(live, browse, urls, token):
    take_ticket(live, "vip")
    take_ticket(live, "vip")
    phone = browse.open(urls.ticket("V002"), PHONE, touch=True)
    expect(phone.locator("#t-status")).to_contain_text("等候中")
    expect(phone.locator("#t-ahead")).to_contain_text("1 位")
    expect(phone.locator("#t-redirect")).to_be_hidden()

    # The VIP counter pauses: the page says where to go instead.
    post(live, "counter", "/counters/vip/pause", token("counter", "vip"), {"reason": "vault_transfer",
                                                                           "expected_minutes": 15})
    expect(phone.locator("#t-redirect")).to_be_visible()
    expect(phone.locator("#t-redirect-text")).to_contain_text("3 号窗口")

    # Window 3 calls V001, then V002: the page moves up, then says "go to window 3".
    window3 = token("counter", "3")
    post(live, "counter", "/counters/3/call-next", window3)
    expect(phone.locator("#t-ahead")).to_contain_text("0 位")
    post(live, "counter", "/counters/3/complete", window3)
    post(live, "counter", "/counters/3/call-next", window3)
    expect(phone.locator("#t-go")).to_be_visible()
    expect(phone.locator("#t-go-window")).to_have_text("3 号窗口")
    expect(phone.locator("#t-status")).to_have_attribute("data-status", "called")
    expect(phone.locator("#t-redirect")).to_be_hidden()
    expect(phone.locator("#t-facts")).to_be_hidden()

    # A number that was never issued today says so.
    nowhere = browse.open(urls.ticket("A999"), PHONE, touch=True)
    expect(nowhere.locator("#t-status")).to_contain_text("未找到该号票")
