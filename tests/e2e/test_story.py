"""The branch's whole story, in browsers: every person at the screen they use.

A customer takes VIP tickets at the kiosk; the lobby display shows them waiting; the VIP counter pauses
from its terminal; the manager's device shows the pause with reason and minutes and the display sends VIP
customers to window 3; window 3 calls V001 and the display shows it and speaks it, Chinese then English,
after a chime; a teller presses distress on the keyboard; the device shows it and sounds the alarm; the
manager acknowledges; the teller's terminal says it was seen (never by whom); the display never showed the
distress.
"""

from __future__ import annotations

import json
import re

from playwright.sync_api import expect

from tests.e2e.conftest import DISPLAY, KIOSK, PHONE, TERMINAL, recorded, wait_recorded

SCREEN_EVENTS = {"screen", "ticket_called", "waiting", "notice"}
NEVER_ON_SCREEN = ("紧急", "求助", "distress", "Distress", "请示", "supervisor", "协助")


def test_branch_story_in_browsers(live, browse, urls, token):
    manager = token("device", "lobby-manager")
    display = browse.open(urls.screen(), DISPLAY)
    device = browse.open(urls.device(manager), PHONE, touch=True)
    expect(device.locator("#empty")).to_be_visible()

    # A customer takes three VIP tickets at the kiosk; each is shown and printed.
    kiosk = browse.open(urls.kiosk_page(), KIOSK, touch=True)
    for number in ("V001", "V002", "V003"):
        kiosk.locator('button[data-category="vip"]').click()
        expect(kiosk.locator("#r-number")).to_have_text(number)
        expect(kiosk.locator("#r-cat")).to_have_text("贵宾")
        kiosk.locator("#done").click()
        expect(kiosk.locator("#choose")).to_be_visible()
    wait_recorded(kiosk, "rec.printed === 3")

    # The display shows them waiting.
    vip_waiting = display.locator('.waiting-card[data-category="vip"] .waiting-number')
    expect(vip_waiting).to_have_text("3")

    # The VIP counter pauses from its terminal: vault cash, 15 minutes.
    vip = browse.open(urls.terminal("vip", token("counter", "vip")), TERMINAL)
    assert "token=" not in vip.url, "the terminal takes its token out of the address bar"
    vip.locator("#pause-reason").select_option("vault_transfer")
    vip.locator("#pause-minutes").fill("15")
    vip.locator("#pause").click()
    expect(vip.locator("#paused-text")).to_contain_text("现金出入库")
    expect(vip.locator("#status-pill")).to_have_text(re.compile("暂停"))

    # The manager's device shows the pause page with its reason and minutes.
    pause = device.locator('.pg[data-kind="pause"]')
    expect(pause).to_contain_text("VIP 窗口")
    expect(pause).to_contain_text("现金出入库")
    expect(pause).to_contain_text("15 分钟")
    expect(pause.locator(".pg-details")).to_contain_text("3 位")

    # The display sends the VIP customers to window 3, listing their tickets.
    notice = display.locator('.notice[data-kind="vip_redirect"]')
    expect(notice).to_contain_text("请到 3 号窗口")
    expect(notice.locator("li")).to_have_text(["V001", "V002", "V003"])

    # Window 3 calls next from its terminal: V001, the VIP customer, first.
    window3 = browse.open(urls.terminal("3", token("counter", "3")), TERMINAL)
    window3.locator("#call-next").click()
    expect(window3.locator("#serving-number")).to_have_text("V001")

    # The display shows the call, large, with its window, and the notice no longer lists V001.
    expect(display.locator("#current-number")).to_have_text("V001")
    expect(display.locator("#current-where")).to_have_text("请到 3 号窗口")
    expect(display.locator("#recent tr.is-latest")).to_contain_text("V001")
    expect(notice.locator("li")).to_have_text(["V002", "V003"])

    # ...and speaks it after a chime: Chinese first, then English.
    wait_recorded(display, "rec.spoken.length >= 2")
    seen = recorded(display)
    zh, en = seen["spoken"][:2]
    assert zh["lang"] == "zh-CN" and zh["text"] == "请V零零一号，到3号窗口", zh
    assert en["lang"].startswith("en") and en["text"] == "Ticket V 0 0 1, please go to window 3.", en
    order = seen["order"]
    assert "oscillator" in order and order.index("oscillator") < order.index("speak:zh-CN") < order.index("speak:en-US")

    # A teller at window 2 presses distress without the mouse: F9.
    window2 = browse.open(urls.terminal("2", token("counter", "2")), TERMINAL)
    window2.keyboard.press("F9")
    quiet = window2.locator("#quiet-ack")
    expect(quiet).to_contain_text(re.compile("已发出|已送达"))
    # Discreet: a small grey line, no sound, no dialog, no red.
    style = quiet.evaluate("n => { const s = getComputedStyle(n); return [s.fontSize, s.color]; }")
    assert float(style[0].rstrip("px")) <= 14 and style[1] == "rgb(82, 94, 109)", style
    assert recorded(window2)["audio"] == [] and recorded(window2)["dialogs"] == 0

    # The device shows it first (urgent before high) and sounds the alarm, vibrates and notifies.
    distress = device.locator('.pg[data-kind="distress"]')
    expect(distress).to_contain_text("2 号窗口")
    expect(device.locator(".pg").first).to_have_attribute("data-kind", "distress")
    wait_recorded(device, "rec.audio.some(a => a.frequency === 988) && rec.vibrate.length > 0")
    assert any("紧急求助" in n["title"] for n in recorded(device)["notifications"])
    expect(device.locator("body")).to_have_class(re.compile(r"\bhas-urgent\b"))

    # The manager acknowledges; the alarm stops; the device says who is on the way.
    distress.locator(".pg-ack").click()
    expect(distress.locator(".pg-acked")).to_contain_text("大堂经理 已确认")
    expect(device.locator("body")).not_to_have_class(re.compile(r"\bhas-urgent\b"))

    # The teller's terminal says it was seen, in the same small grey line, and never by whom.
    expect(quiet).to_contain_text("已收到")
    expect(window2.locator("#alerts .al-item[data-kind='distress']")).to_have_count(0)
    assert "大堂经理" not in quiet.inner_text()

    # The display never showed the distress: not in any text that ever entered its page, not in any event.
    seen = recorded(display)
    everything = "\n".join(seen["texts"]) + "\n" + display.locator("body").inner_text()
    for word in NEVER_ON_SCREEN:
        assert word not in everything, f"the lobby display showed {word!r}"
    assert {e["type"] for e in seen["events"]} <= SCREEN_EVENTS, seen["events"]
    for event in seen["events"]:
        assert "distress" not in event["data"] and "紧急" not in event["data"], event
    assert any(e["type"] == "ticket_called" and json.loads(e["data"])["number"] == "V001" for e in seen["events"])
