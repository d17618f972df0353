"""Supervision as the lobby manager meets it, in Chromium: a lobby display closed or frozen pages the manager,
and its return clears that page by itself; a press while the lobby manager's phone is off reaches the deputy at
once, and the terminal says so; the floor tab follows the branch live; a drill of the silent call goes the whole
way marked as a test; the device keeps its screen awake, opens without the network, and sounds an alarm of its own
when its connection is lost; and a web service restart is no outage. On the `watched` test branch a screen is
offline after 3 s unheard (heartbeats every second)."""

from __future__ import annotations

import os
import time

from playwright.sync_api import expect

from tests import crash
from tests.conftest import WATCHED, bearer
from tests.e2e.conftest import DISPLAY, PHONE, TERMINAL, post, recorded, take_ticket, wait_recorded

OFFLINE_S = 3



def display_url(live, token: str) -> str:
    return f"{live.url('kiosk')}/branches/{WATCHED}/screen?token={token}"


def device_stream(live, sse, token):
    return sse(f"{live.url('pager')}/api/v1/branches/{WATCHED}/pages/events",
               headers=bearer(token("device", "lobby-manager", WATCHED)))


def offline_page(device):
    return device.wait_for(lambda e: e.type == "page" and e.data["page"]["kind"] == "endpoint_offline",
                           timeout=OFFLINE_S + 15).data["page"]


def cleared(device, page_id: str):
    return device.wait_for(lambda e: e.type == "page_updated" and e.data["page"]["id"] == page_id
                           and e.data.get("change") == "cleared", timeout=15).data["page"]


def test_a_closed_display_pages_the_manager_and_its_return_clears_the_page(live, browse, token, sse):
    device = device_stream(live, sse, token)
    display = browse.open(display_url(live, token("screen", "lobby", WATCHED)), DISPLAY)
    expect(display).to_have_url(f"{live.url('kiosk')}/branches/{WATCHED}/screen")  # the token is kept, not shown
    closed_at = time.monotonic()
    display.close()
    page = offline_page(device)
    took_s = time.monotonic() - closed_at
    assert took_s <= OFFLINE_S + 5, f"paged {took_s:.1f} s after the display closed"
    assert (page["priority"], page["details"]["endpoint_kind"], page["details"]["endpoint"]) == (
        "normal", "display", "lobby")
    assert "大堂叫号屏" in page["message"]
    phone = browse.open(f"{live.url('pager')}/branches/{WATCHED}/device?token="
                        + token("device", "lobby-manager", WATCHED), PHONE, touch=True)
    card = phone.locator('.pg[data-kind="endpoint_offline"]')
    expect(card.locator(".pg-details")).to_contain_text("大堂叫号屏 · Lobby display")
    expect(card.locator(".pg-details")).to_contain_text("offline since")
    expect(card.locator(".pg-where")).to_be_hidden()
    if os.environ.get("LOBBY_SHOTS_DIR"):
        phone.screenshot(path=os.path.join(os.environ["LOBBY_SHOTS_DIR"], "device-offline.png"))

    browse.open(display_url(live, token("screen", "lobby", WATCHED)), DISPLAY)
    back = cleared(device, page["id"])
    assert (back["status"], back["resolution"]) == ("resolved", "cleared")
    assert "back online after 0:0" in back["audit"][-1]["note"]


def test_a_frozen_display_with_its_socket_open_counts_as_offline(live, browse, token, sse):
    device = device_stream(live, sse, token)
    display = browse.open(display_url(live, token("screen", "lobby", WATCHED)), DISPLAY, clock=True)
    now_ms = display.evaluate("Date.now()")
    display.clock.pause_at(now_ms + 100)  # its timers stop, heartbeats with them; its EventSource stays open
    page = offline_page(device)
    expect(display.locator("#live")).not_to_have_class("is-off")  # the page still believes it is connected
    display.clock.resume()
    assert cleared(device, page["id"])["resolution"] == "cleared"


def test_a_press_while_the_lobby_managers_phone_is_off_reaches_the_deputy_at_once(live, browse, urls, token):
    deputy = browse.open(urls.device(token("device", "deputy")), PHONE, touch=True)
    terminal = browse.open(urls.terminal("2", token("counter", "2")), TERMINAL)
    terminal.locator("#help").click()
    card = terminal.locator('.al-item[data-kind="help"] .al-state')
    expect(card).to_contain_text("大堂经理设备离线，已呼叫副行长")
    expect(card).to_contain_text("Lobby manager's device offline: the deputy manager was paged")
    expect(deputy.locator('.pg[data-kind="help"]')).to_be_visible()
    wait_recorded(deputy, "rec.audio.length > 0 || rec.vibrate.length > 0")  # it rings there, not 45 s later
    assert recorded(deputy)["audio"], "the deputy's phone sounds at once"


def test_a_distress_call_that_reaches_no_device_says_so_discreetly_with_the_number_to_ring(live, browse, urls,
                                                                                           token):
    terminal = browse.open(urls.terminal("2", token("counter", "2")), TERMINAL)
    terminal.locator("#distress").click()
    quiet = terminal.locator("#quiet-ack")
    expect(quiet).to_contain_text("未送达，请致电 8001")
    for name in ("大堂经理", "副行长", "行长"):
        expect(quiet).not_to_contain_text(name)


def test_the_floor_tab_follows_a_pause_a_call_and_a_redirect_live(live, browse, urls, token):
    phone = browse.open(urls.device(token("device", "lobby-manager")), PHONE, touch=True)
    phone.locator("#tab-floor").click()
    expect(phone.locator("#view-pages")).to_be_hidden()
    counters = phone.locator("#floor-counters")
    expect(counters.locator('[data-counter="vip"]')).to_contain_text("服务中")
    expect(phone.locator("#floor-redirects")).to_be_hidden()

    post(live, "counter", "/counters/vip/pause", token("counter", "vip"),
         {"reason": "vault_transfer", "expected_minutes": 15})
    vip = counters.locator('[data-counter="vip"]')
    expect(vip).to_contain_text("暂停 · 现金出入库")
    expect(vip.locator(".fl-side")).to_contain_text("剩 14:")
    expect(phone.locator("#floor-redirects")).to_contain_text("贵宾 引导至 3 号窗口")

    take_ticket(live, "vip")
    expect(phone.locator('#floor-lines [data-category="vip"]')).to_contain_text("1 人等候")
    post(live, "counter", "/counters/3/call-next", token("counter", "3"))
    expect(counters.locator('[data-counter="3"]')).to_contain_text("办理 V001")
    expect(phone.locator('#floor-lines [data-category="vip"]')).to_contain_text("0 人等候")
    expect(phone.locator('#floor-endpoints [data-endpoint="device:lobby-manager"]')).to_contain_text("在线")
    width = phone.evaluate("document.documentElement.scrollWidth")
    assert width <= PHONE["width"], f"the floor is {width} px wide on a {PHONE['width']} px phone"
    if os.environ.get("LOBBY_SHOTS_DIR"):
        phone.screenshot(path=os.path.join(os.environ["LOBBY_SHOTS_DIR"], "device-floor.png"), full_page=True)


def test_a_drill_of_the_silent_call_goes_the_whole_way_marked_as_a_test(live, browse, urls, token):
    device = browse.open(urls.device(token("device", "lobby-manager")), PHONE, touch=True)
    terminal = browse.open(urls.terminal("2", token("counter", "2")), TERMINAL)
    expect(terminal.locator("#drill")).to_be_hidden()  # in the closed settings, never next to the real button
    terminal.locator(".term-settings summary").click()
    terminal.locator("#drill").click()
    card = device.locator('.pg[data-kind="distress"][data-test="true"]')
    expect(card.locator(".pg-test")).to_have_text("演练 TEST")
    wait_recorded(device, "rec.audio.length > 0")  # it rings like the real call
    card.locator(".pg-ack").click()
    expect(terminal.locator("#quiet-ack")).to_contain_text("演练 TEST · ")
    expect(terminal.locator("#quiet-ack")).to_contain_text("已收到")
    if os.environ.get("LOBBY_SHOTS_DIR"):
        terminal.screenshot(path=os.path.join(os.environ["LOBBY_SHOTS_DIR"], "terminal-drill.png"), full_page=True)

    report = browse.open(f"{urls.pager}/branches/zhongnan/report?token={token('device', 'deputy')}",
                         {"width": 1280, "height": 900}, wait_live=False)
    expect(report.locator("#tests-summary")).to_contain_text("演练 1 次，已确认 1 次")
    expect(report.locator('#t-pages tr[data-kind="distress"] td').first).to_have_text("0")


def test_the_device_is_a_pager_a_manager_can_carry(live, browse, urls, token):
    """Installable, its screen kept awake, its notifications shown through its service worker, and it opens
    without the network from the shell it keeps, then reconnects by itself."""
    device = browse.open(urls.device(token("device", "lobby-manager")), PHONE, touch=True)
    manifest = device.evaluate("() => fetch(document.querySelector('link[rel=manifest]').href).then(r => r.json())")
    assert manifest["display"] == "standalone" and manifest["start_url"] == "/branches/zhongnan/device"
    assert recorded(device)["wakeLocks"] == ["screen"]
    assert device.evaluate("() => navigator.serviceWorker.ready.then(r => r.active !== null)")

    post(live, "counter", "/counters/2/alerts", token("counter", "2"), {"kind": "help"})
    expect(device.locator('.pg[data-kind="help"]')).to_be_visible()
    wait_recorded(device, "rec.notifications.some(n => n.worker)")

    device.context.set_offline(True)
    device.reload()
    expect(device.locator("#board")).to_be_visible()  # the kept shell, with the token the page kept
    expect(device.locator("#offline")).to_be_visible()
    device.context.set_offline(False)
    expect(device.locator("#live")).not_to_have_class("is-off", timeout=20_000)
    expect(device.locator('.pg[data-kind="help"]')).to_be_visible()


def test_a_device_that_loses_its_connection_sounds_an_alarm_of_its_own(live, browse, urls, token):
    device = browse.open(urls.device(token("device", "lobby-manager")), PHONE, touch=True, clock=True)
    crash.kill(live, "pager-web")
    try:
        expect(device.locator("#offline")).to_be_visible()
        device.clock.run_for(11_000)
        expect(device.locator("#lost")).to_be_visible()
        wait_recorded(device, "rec.audio.some(a => a.frequency === 988) && rec.vibrate.some(v => v !== 0)")
        assert any("连接中断" in n["title"] for n in recorded(device)["notifications"])
    finally:
        crash.restart(live)
        live.wait_ready(30)
    device.clock.run_for(5_000)  # its reconnection timers
    expect(device.locator("#lost")).to_be_hidden(timeout=20_000)
    sounded = len(recorded(device)["audio"])
    device.clock.run_for(4 * 3000)
    assert len(recorded(device)["audio"]) == sounded, "the alarm stops once it is back"


def test_alarms_that_cannot_sound_are_a_warning_across_the_screen(live, browse, urls, token):
    device = browse.open(urls.device(token("device", "lobby-manager")), PHONE, touch=True)
    expect(device.locator("#sound-warning")).to_be_hidden()  # this browser may sound without a tap
    device.evaluate("() => { window.__ready = Lobby.sound.ready; Lobby.sound.ready = () => false; }")
    expect(device.locator("#sound-warning")).to_be_visible(timeout=5_000)
    box = device.locator("#sound-warning").bounding_box()
    assert box["width"] >= PHONE["width"] - 1, "across the whole screen"
    device.evaluate("() => { Lobby.sound.ready = window.__ready; }")
    device.locator("#sound-warning").click()
    expect(device.locator("#sound-warning")).to_be_hidden()


def test_a_web_service_restart_is_no_outage(live, browse, urls, token, r):
    """Every endpoint stays open while the pager's web service restarts: they reconnect within the threshold, no
    endpoint_offline page is made, and a call pressed meanwhile still goes to the lobby manager."""
    from services.domain import keys, presence
    from services.domain.clock import SYSTEM
    from services.runtime.settings import Context

    branch = Context.from_env().branches["zhongnan"]
    device = browse.open(urls.device(token("device", "lobby-manager")), PHONE, touch=True)
    browse.open(urls.terminal("2", token("counter", "2")), TERMINAL)
    browse.open(f"{urls.kiosk}/branches/zhongnan/screen?token={token('screen', 'lobby')}", DISPLAY)
    crash.kill(live, "pager-web")
    try:
        expect(device.locator("#offline")).to_be_visible()
        states = {p.endpoint: p.state for p in presence.of(r, branch, presence.endpoints(branch), SYSTEM.now_ms())}
        assert states["device:lobby-manager"] == "live", "reconnecting, not gone"
        press = post(live, "counter", "/counters/2/alerts", token("counter", "2"), {"kind": "help"})
    finally:
        crash.restart(live)
        live.wait_ready(30)
    expect(device.locator("#offline")).to_be_hidden(timeout=20_000)
    page = device.locator('.pg[data-kind="help"]')
    expect(page).to_be_visible()
    alert = r.hgetall(keys.alert("zhongnan", press["alert"]["id"]))
    assert '"live": true' in alert.get("paged", "") and "deputy" not in alert["paged"], alert
    states = {p.endpoint: p.state for p in presence.of(r, branch, presence.endpoints(branch), SYSTEM.now_ms())}
    assert [states[e] for e in ("device:lobby-manager", "terminal:2", "display:lobby")] == ["live"] * 3
    assert not r.hgetall(keys.incidents("zhongnan")), "no outage was found"
