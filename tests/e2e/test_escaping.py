"""Markup in a note, a question or a reply shows as text on the device and the terminal: never an element,
never a script."""

from __future__ import annotations

from playwright.sync_api import Page, expect

from tests.e2e.conftest import PHONE, TERMINAL, post, recorded

MARKUP = '<img src=x onerror=alert(1)><b>x</b><script>alert(2)</script>'


def assert_inert(page: Page, where: str) -> None:
    scope = page.locator(where)
    assert scope.locator("img").count() == 0, f"markup became an <img> in {where}"
    assert scope.locator("b").count() == 0, f"markup became a <b> in {where}"
    assert page.locator("body script:not([src]):not([type='application/json'])").count() == 0
    assert recorded(page)["dialogs"] == 0


def test_markup_in_notes_questions_and_replies_shows_as_text(live, browse, urls, token):
    manager = token("device", "lobby-manager")
    device = browse.open(urls.device(manager), PHONE, touch=True)
    terminal = browse.open(urls.terminal("1", token("counter", "1")), TERMINAL)

    # The teller asks a question that contains markup, from the terminal's own form.
    terminal.keyboard.press("F8")
    terminal.keyboard.type(MARKUP)
    terminal.keyboard.press("Enter")
    question = device.locator('.pg[data-kind="ask_supervisor"]')
    expect(question.locator(".pg-details dd")).to_have_text(MARKUP)
    expect(question.locator(".pg-message")).to_contain_text(MARKUP)
    expect(terminal.locator(".al-note")).to_have_text(MARKUP)

    # The manager answers with markup too, from the device.
    question.locator(".pg-reply-toggle").click()
    question.locator(".pg-reply input").fill(MARKUP)
    question.locator(".pg-reply button[type=submit]").click()
    expect(question.locator(".pg-replies li")).to_have_text("大堂经理：" + MARKUP)
    expect(terminal.locator(".al-reply-text")).to_have_text(MARKUP)

    # A pause note with markup, on both screens.
    post(live, "counter", "/counters/vip/pause", token("counter", "vip"),
         {"reason": "other", "expected_minutes": 5, "note": MARKUP})
    expect(device.locator('.pg[data-kind="pause"] .pg-details')).to_contain_text(MARKUP)
    vip = browse.open(urls.terminal("vip", token("counter", "vip")), TERMINAL)
    expect(vip.locator("#paused-note")).to_have_text("备注 Note: " + MARKUP)

    for page, where in ((device, "#pages"), (terminal, "#alerts"), (vip, "#paused")):
        assert_inert(page, where)
