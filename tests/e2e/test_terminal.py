"""The teller's terminal: the token given once is kept and leaves the address bar; the keyboard does
everything; pause and resume; waiting counts and the manager's replies arrive live."""

from __future__ import annotations

import re

from playwright.sync_api import expect

from tests.e2e.conftest import PHONE, TERMINAL, list_pages, post, take_ticket
from tests.sse import eventually


def test_the_token_is_kept_and_taken_out_of_the_address(live, browse, urls, token):
    secret = token("counter", "1")
    terminal = browse.open(urls.terminal("1", secret), TERMINAL)
    assert terminal.url == urls.terminal("1"), terminal.url
    assert "token" not in terminal.evaluate("() => location.href")
    assert terminal.evaluate("() => localStorage.getItem('lobby.terminal.zhongnan.1')") == secret
    expect(terminal.locator("#desk")).to_be_visible()

    # Opened again without the token (a restart, a reload), the terminal still works.
    terminal.goto(urls.terminal("1"))
    expect(terminal.locator("#live")).not_to_have_class(re.compile(r"\bis-off\b"))
    expect(terminal.locator("#status-pill")).to_have_text(re.compile("服务中"))

    # A token of another counter is refused with a reason, and a good one can be entered by hand.
    other = browse.open(urls.terminal("2", secret), TERMINAL, wait_live=False)
    expect(other.locator("#enroll")).to_be_visible()
    expect(other.locator("#enroll-reason")).to_contain_text("不属于本窗口")
    other.locator("#enroll-token").fill(token("counter", "2"))
    other.locator("#enroll-form button").click()
    expect(other.locator("#desk")).to_be_visible()
    expect(other.locator("#live")).not_to_have_class(re.compile(r"\bis-off\b"))

    # A revoked or made-up token sends the teller back to enrolment, and is forgotten.
    stranger = browse.open(urls.terminal("3", "lby.zhongnan.nope.nope"), TERMINAL, wait_live=False)
    expect(stranger.locator("#enroll-reason")).to_contain_text("令牌无效")
    assert stranger.evaluate("() => localStorage.getItem('lobby.terminal.zhongnan.3')") is None


def test_the_keyboard_calls_recalls_completes_and_marks_no_shows(live, browse, urls, token):
    for _ in range(2):
        take_ticket(live, "personal")
    terminal = browse.open(urls.terminal("1", token("counter", "1")), TERMINAL)
    waiting = terminal.locator(".term-waiting-item").filter(has_text="个人业务").locator(".tw-count")
    expect(waiting).to_have_text("2")

    def press(key: str, button: str) -> None:
        """Press a key once its button is ready (one action at a time, as the teller sees)."""
        expect(terminal.locator(f"#{button}")).to_be_enabled()
        terminal.keyboard.press(key)

    press("F1", "call-next")
    expect(terminal.locator("#serving-number")).to_have_text("A001")
    expect(waiting).to_have_text("1")
    press("F2", "recall")
    expect(terminal.locator("#message")).to_contain_text("已重呼 A001")
    press("F3", "complete")
    expect(terminal.locator("#message")).to_contain_text("A001 已完成")
    expect(terminal.locator("#serving-number")).to_have_text("—")
    press("F1", "call-next")
    expect(terminal.locator("#serving-number")).to_have_text("A002")
    press("F4", "no-show")
    expect(terminal.locator("#message")).to_contain_text("A002 已过号")
    press("F1", "call-next")
    expect(terminal.locator("#message")).to_contain_text("暂无等候客户")

    # A customer takes a ticket at the kiosk: the count on the terminal follows, live.
    take_ticket(live, "personal")
    expect(waiting).to_have_text("1")


def test_pause_resume_and_a_supervisor_reply_arrive_live(live, browse, urls, token):
    take_ticket(live, "vip")
    manager = token("device", "lobby-manager")
    vip = browse.open(urls.terminal("vip", token("counter", "vip")), TERMINAL)
    vip.locator("#pause-reason").select_option("break")
    vip.locator("#pause-minutes").fill("10")
    vip.locator("#pause").click()
    expect(vip.locator("#paused-text")).to_contain_text("休息")
    expect(vip.locator("#paused-text")).to_contain_text("约 10 分钟")
    expect(vip.locator("#call-next")).to_be_disabled()

    # The manager acknowledges the pause page: the terminal hears of it.
    pause = eventually(lambda: next(iter(list_pages(live, manager)), None), timeout=10)
    post(live, "pager", f"/pages/{pause['id']}/ack", manager)
    expect(vip.locator(".al-item[data-kind='pause']")).to_contain_text("大堂经理 已知悉")

    vip.locator("#resume").click()
    expect(vip.locator("#status-pill")).to_have_text(re.compile("服务中"))
    expect(vip.locator("#pause-form")).to_be_visible()

    # F8 goes to the question; Enter sends it; the manager's reply shows on the terminal.
    vip.keyboard.press("F8")
    expect(vip.locator("#ask-note")).to_be_focused()
    vip.keyboard.type("客户要办理大额存单提前支取，需要什么材料？")
    vip.keyboard.press("Enter")
    expect(vip.locator(".al-item[data-kind='ask_supervisor']")).to_contain_text("大额存单")
    question = eventually(lambda: next((p for p in list_pages(live, manager) if p["kind"] == "ask_supervisor"), None),
                          timeout=10)
    post(live, "pager", f"/pages/{question['id']}/reply", manager, {"message": "本人身份证和存单即可。"})
    item = vip.locator(".al-item[data-kind='ask_supervisor']")
    expect(item.locator(".al-reply")).to_have_text("大堂经理：本人身份证和存单即可。")
    expect(item.locator(".al-state")).to_contain_text("大堂经理 已答复")



def test_transfer_close_and_open(live, browse, urls, token):
    take_ticket(live, "personal")
    terminal = browse.open(urls.terminal("1", token("counter", "1")), TERMINAL)
    expect(terminal.locator("#transfer-form")).to_be_hidden()
    terminal.locator("#call-next").click()
    expect(terminal.locator("#serving-number")).to_have_text("A001")

    # The customer needs window 4: the ticket goes there, keeping its place, and the phone says so.
    terminal.locator("#transfer-to").select_option("counter:4")
    terminal.locator("#transfer").click()
    expect(terminal.locator("#message")).to_contain_text("A001 已转至 4 号窗口")
    expect(terminal.locator("#serving-number")).to_have_text("—")
    phone = browse.open(urls.ticket("A001"), PHONE, touch=True)
    expect(phone.locator("#t-redirect-title")).to_contain_text("已为您转办")
    expect(phone.locator("#t-redirect-text")).to_contain_text("4 号窗口")

    # Closing: no calls come here; opening again.
    terminal.locator("#close").click()
    expect(terminal.locator("#status-pill")).to_have_text(re.compile("已关闭"))
    expect(terminal.locator("#closed")).to_be_visible()
    expect(terminal.locator("#call-next")).to_be_disabled()
    expect(terminal.locator("#pause-form")).to_be_hidden()
    terminal.locator("#open").click()
    expect(terminal.locator("#status-pill")).to_have_text(re.compile("服务中"))
    expect(terminal.locator("#call-next")).to_be_enabled()


def test_a_restarted_terminal_keeps_its_calls_and_learns_what_happened_meanwhile(live, browse, urls, token):
    manager = token("device", "lobby-manager")
    browse.open(urls.device(manager), PHONE, touch=True)  # the lobby manager's phone is on: the call reaches it
    terminal = browse.open(urls.terminal("2", token("counter", "2")), TERMINAL)
    terminal.keyboard.press("F7")
    expect(terminal.locator(".al-item[data-kind='help'] .al-state")).to_contain_text("等待回应")

    terminal.goto("about:blank")  # the terminal is off while the manager acknowledges
    help_page = eventually(lambda: next(iter(list_pages(live, manager)), None), timeout=10)
    post(live, "pager", f"/pages/{help_page['id']}/ack", manager)

    terminal.goto(urls.terminal("2"))
    expect(terminal.locator(".al-item[data-kind='help'] .al-state")).to_contain_text("大堂经理 正在赶来")
