"""What a user trial found, in browsers: calls that must get through, distress that stays discreet, devices that
ring for whoever is responsible, pages that read once and fit a phone, a kiosk that survives a frozen Redis, and
customers told plainly when they are next or when no counter is open for them."""

from __future__ import annotations

import json
import os
import re
import signal
import time
from typing import Any

import requests
from playwright.sync_api import Page, expect

from services.domain import keys
from services.web import auth
from tests import crash
from tests.conftest import QUICK
from tests.e2e.conftest import (
    API,
    DISPLAY,
    KIOSK,
    PHONE,
    TERMINAL,
    list_pages,
    post,
    recorded,
    take_ticket,
    wait_recorded,
)
from tests.sse import eventually

# Every name a terminal could show for a manager (the demo branch's three, in both languages).
MANAGER_NAMES = ("大堂经理", "副行长", "行长", "Lobby manager", "Deputy", "Branch manager", "lobby manager")
ALARM_HZ = 988


def quick_post(live, service: str, path: str, token: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
    response = requests.post(f"{live.url(service)}/api/v1/branches/{QUICK}{path}", json=body,
                             headers={"Authorization": f"Bearer {token}"}, timeout=5)
    assert response.ok, response.text
    return response.json()


def quick_device(live, browse, token: str, clock: bool = False) -> Page:
    return browse.open(f"{live.url('pager')}/branches/{QUICK}/device?token={token}", PHONE, touch=True,
                       clock=clock)


def pump_until(page: Page, condition, timeout_s: float = 15) -> None:
    """Wait until a condition on what a page's listeners collected holds (they run while playwright waits)."""
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, "condition not met"
        page.wait_for_timeout(100)


def alarms(page: Page) -> tuple[int, int]:
    """How many alarm tones and vibrations a page has made (a vibrate(0) only stops one)."""
    rec = recorded(page)
    return (sum(1 for a in rec["audio"] if a["frequency"] == ALARM_HZ),
            sum(1 for v in rec["vibrate"] if v not in (0, [])))


def alert_keys(r, counter: str) -> list[dict[str, str]]:
    return [r.hgetall(k) for k in r.scan_iter(keys.alert("zhongnan", "*"))
            if r.hget(k, "counter") == counter]


def test_alerts_pressed_while_the_counter_service_is_down_are_sent_once_when_it_is_back(live, browse, urls, token, r):
    manager = token("device", "lobby-manager")
    browse.open(urls.device(manager), PHONE, touch=True)  # the lobby manager's phone is on: the calls reach it
    terminal = browse.open(urls.terminal("2", token("counter", "2")), TERMINAL, clock=True)
    sent: list[tuple[str, str]] = []
    terminal.on("request", lambda req: sent.append((json.loads(req.post_data or "{}").get("kind"),
                                                     req.headers.get("idempotency-key", "")))
                if req.method == "POST" and req.url.endswith("/alerts") else None)
    quiet = terminal.locator("#quiet-ack")
    help_state = terminal.locator(".al-item[data-kind='help'] .al-state")

    crash.kill(live, "counter-web")
    try:
        terminal.keyboard.press("F9")
        terminal.keyboard.press("F7")
        expect(quiet).to_contain_text("未发送，正在重试")
        expect(help_state).to_contain_text("未发送，正在重试 · Not sent, retrying")
        expect(terminal.locator("#offline")).to_be_visible()
        # Kept with their keys, so a reload meanwhile would send them too.
        kept = json.loads(terminal.evaluate("() => localStorage.getItem('lobby.terminal.zhongnan.2.alerts')"))
        assert sorted(c["kind"] for c in kept if c["state"] == "queued") == ["distress", "help"], kept
        assert all(c["key"] for c in kept), kept
        pump_until(terminal, lambda: len(sent) >= 4)  # tried, and tried again
        assert not alert_keys(r, "2"), "nothing reached Redis while the service was down"
    finally:
        crash.restart(live)
        live.wait_ready(30)

    # Back: both go through, and the terminal says so; the banner goes by itself.
    expect(quiet).to_contain_text(re.compile("已发出|已送达"), timeout=45_000)
    expect(help_state).to_contain_text("等待回应", timeout=45_000)
    expect(terminal.locator("#offline")).to_be_hidden()
    pages = eventually(lambda: (lambda found: found if len(found) == 2 else None)(list_pages(live, manager)),
                       timeout=10)
    assert sorted((p["kind"], p["presses"]) for p in pages) == [("distress", 1), ("help", 1)], pages
    assert sorted(a["kind"] for a in alert_keys(r, "2")) == ["distress", "help"]
    expect(quiet).to_contain_text("已送达")
    for kind in ("distress", "help"):
        assert len({key for k, key in sent if k == kind}) == 1, f"every attempt of {kind} had the same key: {sent}"
    # Nothing is sent again once through: every timer the terminal has (its longest retry wait is 30 s) fires
    # and sends nothing.
    tries = len(sent)
    terminal.clock.run_for(40_000)
    assert len(sent) == tries, sent[tries:]
    assert len(alert_keys(r, "2")) == 2
    assert [p["presses"] for p in list_pages(live, manager)] == [1, 1]


def test_a_call_left_in_the_outbox_goes_out_after_a_reload(live, browse, urls, token, r):
    manager = token("device", "lobby-manager")
    browse.open(urls.device(manager), PHONE, touch=True)  # the lobby manager's phone is on: the call reaches it
    terminal = browse.open(urls.terminal("4", token("counter", "4")), TERMINAL)
    crash.kill(live, "counter-web")
    try:
        terminal.locator("#ask-note").fill("客户要求开具存款证明，需要几天？")
        terminal.locator("#ask").click()
        expect(terminal.locator(".al-item[data-kind='ask_supervisor'] .al-state")).to_contain_text("正在重试")
        terminal.goto("about:blank")  # the terminal is closed before the service is back
    finally:
        crash.restart(live)
        live.wait_ready(30)
    assert not alert_keys(r, "4")

    terminal.goto(urls.terminal("4"))
    card = terminal.locator(".al-item[data-kind='ask_supervisor']")
    expect(card.locator(".al-note")).to_have_text("客户要求开具存款证明，需要几天？")
    expect(card.locator(".al-state")).to_contain_text("等待回应")
    question = eventually(lambda: next(iter(list_pages(live, manager)), None), timeout=10)
    assert question["kind"] == "ask_supervisor" and question["presses"] == 1
    assert len(alert_keys(r, "4")) == 1


def test_distress_stays_discreet_whoever_answers(live, browse, urls, token):
    deputy = token("device", "deputy")
    browse.open(urls.device(deputy), PHONE, touch=True)  # on duty, and the only device on: the calls go to it
    terminal = browse.open(urls.terminal("2", token("counter", "2")), TERMINAL)
    loaded = len(recorded(terminal)["texts"])  # the page as it was served (its own labels) is not under test
    quiet = terminal.locator("#quiet-ack")

    terminal.keyboard.press("F9")
    expect(quiet).to_contain_text("已送达")
    terminal.keyboard.press("F9")
    page = eventually(lambda: next((p for p in list_pages(live, deputy) if p["presses"] == 2), None), timeout=10)

    # The deputy takes it: the terminal says it was seen, never by whom.
    post(live, "pager", f"/pages/{page['id']}/ack", deputy)
    expect(quiet).to_contain_text("已收到")
    # A press after that is acknowledged at once, and says so.
    terminal.keyboard.press("F9")
    eventually(lambda: next((p for p in list_pages(live, deputy, "acknowledged") if p["presses"] == 3), None),
               timeout=10)
    expect(quiet).to_contain_text("已收到")
    calls = json.loads(terminal.evaluate("() => localStorage.getItem('lobby.terminal.zhongnan.2.alerts')"))
    assert [c["status"] for c in calls if c["kind"] == "distress"] == ["acknowledged"] * 3, calls

    # The only answer a distress call takes is a discreet preset; free text is refused.
    refused = requests.post(f"{live.url('pager')}{API}/pages/{page['id']}/reply", json={"message": "副行长马上到"},
                            headers={"Authorization": f"Bearer {deputy}"}, timeout=5)
    assert refused.status_code == 422 and refused.json()["error"]["code"] == "discreet_reply_only"
    post(live, "pager", f"/pages/{page['id']}/reply", deputy, {"preset": "wait"})
    expect(quiet).to_contain_text("请稍候")

    # Small, grey, plain: nothing a customer across the counter would notice.
    style = quiet.evaluate("n => { const s = getComputedStyle(n); return [s.fontSize, s.color, s.fontWeight]; }")
    assert float(style[0].rstrip("px")) <= 14 and style[1] == "rgb(82, 94, 109)" and style[2] == "400", style
    expect(terminal.locator("#alerts .al-item")).to_have_count(0)
    shown = "\n".join(recorded(terminal)["texts"][loaded:]) + "\n" + terminal.locator("#alerts").inner_text()
    for word in (*MANAGER_NAMES, "静默呼叫", "Silent call", "正在赶来", "is coming", "马上到"):
        assert word not in shown, f"the terminal showed {word!r} for a distress call"
    assert recorded(terminal)["audio"] == [] and recorded(terminal)["dialogs"] == 0


def test_an_urgent_page_rings_only_the_managers_it_is_paged_to(live, browse, token):
    lobby = quick_device(live, browse, token("device", "lobby-manager", QUICK), clock=True)
    deputy = quick_device(live, browse, token("device", "deputy", QUICK), clock=True)
    # Each device knows whose it is.
    expect(lobby.locator("#me")).to_contain_text("大堂经理")
    expect(deputy.locator("#me")).to_contain_text("副行长")

    quick_post(live, "counter", "/counters/2/alerts", token("counter", "2", QUICK), {"kind": "distress"})
    for device in (lobby, deputy):
        expect(device.locator('.pg[data-kind="distress"]')).to_be_visible()
    wait_recorded(lobby, f"rec.audio.some(a => a.frequency === {ALARM_HZ}) && rec.vibrate.some(v => v !== 0)")
    # Not escalated yet (3 s on the quick branch): the deputy sees it, silently.
    assert deputy.locator('.pg[data-kind="distress"] .pg-meta').inner_text().find("已升级") < 0
    assert alarms(deputy) == (0, 0), recorded(deputy)["audio"]
    assert recorded(deputy)["notifications"] == []

    # Unacknowledged, it escalates to the deputy: now it rings there too, and still on the lobby manager's.
    expect(deputy.locator('.pg[data-kind="distress"] .pg-meta')).to_contain_text("已升级至 副行长")
    wait_recorded(deputy, f"rec.audio.some(a => a.frequency === {ALARM_HZ}) && rec.vibrate.some(v => v !== 0)")
    assert any("紧急求助" in n["title"] for n in recorded(deputy)["notifications"])
    before = alarms(lobby)[0]
    wait_recorded(lobby, f"rec.audio.filter(a => a.frequency === {ALARM_HZ}).length > {before}")

    # The deputy takes it: both fall silent.
    deputy.locator('.pg[data-kind="distress"] .pg-ack').click()
    expect(lobby.locator('.pg[data-kind="distress"] .pg-acked')).to_contain_text("副行长 已确认")
    for device in (lobby, deputy):
        expect(device.locator("body")).not_to_have_class(re.compile(r"\bhas-urgent\b"))
    quiet = (alarms(lobby), alarms(deputy))
    for device in (lobby, deputy):
        device.clock.run_for(4 * 3000)  # four alarm periods
    assert (alarms(lobby), alarms(deputy)) == quiet


def test_a_press_after_acknowledgement_rings_every_device(live, browse, urls, token):
    lobby = browse.open(urls.device(token("device", "lobby-manager")), PHONE, touch=True)
    deputy = browse.open(urls.device(token("device", "deputy")), PHONE, touch=True)
    counter = token("counter", "1")
    post(live, "counter", "/counters/1/alerts", counter, {"kind": "help"})
    for device in (lobby, deputy):
        expect(device.locator('.pg[data-kind="help"]')).to_be_visible()
    lobby.locator('.pg[data-kind="help"] .pg-ack').click()
    expect(deputy.locator('.pg[data-kind="help"] .pg-acked')).to_contain_text("大堂经理 已确认")
    assert alarms(deputy) == (0, 0)
    before = {"lobby": alarms(lobby), "deputy": alarms(deputy)}

    post(live, "counter", "/counters/1/alerts", counter, {"kind": "help"})
    for name, device in (("lobby", lobby), ("deputy", deputy)):
        card = device.locator('.pg[data-kind="help"]')
        expect(card.locator(".pg-again")).to_have_text("再次按下 1 次 · Pressed again 1× since acknowledged")
        expect(card).to_have_attribute("data-again", "true")
        tones, shakes = before[name]
        wait_recorded(device, f"rec.audio.filter(a => a.frequency === {ALARM_HZ}).length > {tones} && "
                              f"rec.vibrate.filter(v => v !== 0).length > {shakes}")
        assert any(n["title"].startswith("再次按下") for n in recorded(device)["notifications"])


def test_an_information_page_asks_nothing_and_goes_by_itself(live, browse, token):
    device = quick_device(live, browse, token("device", "lobby-manager", QUICK))
    vip = token("counter", "vip", QUICK)
    quick_post(live, "counter", "/counters/vip/pause", vip, {"reason": "break", "expected_minutes": 5})
    expect(device.locator('.pg[data-kind="pause"]')).to_be_visible()
    quick_post(live, "counter", "/counters/vip/resume", vip)
    info = device.locator('.pg[data-kind="resume"]')
    expect(info).to_be_visible()
    sounds = len(recorded(device)["audio"])
    expect(info.locator(".pg-prio")).to_have_text("仅供知悉 For information")
    assert info.locator("button:visible").count() == 0
    expect(info.locator(".pg-actions")).to_be_hidden()
    expect(device.locator('.pg[data-kind="pause"]')).to_have_count(0)  # the resume cleared the pause page
    # It closes by itself (info_close_s = 3 on the quick branch), and leaves the list.
    expect(info).to_have_count(0, timeout=10_000)
    expect(device.locator("#empty")).to_be_visible()
    assert len(recorded(device)["audio"]) == sounds, "an information page makes no sound"


def test_a_distress_page_offers_discreet_replies_only(live, browse, urls, token):
    device = browse.open(urls.device(token("device", "lobby-manager")), PHONE, touch=True)
    terminal = browse.open(urls.terminal("2", token("counter", "2")), TERMINAL)
    terminal.keyboard.press("F9")
    card = device.locator('.pg[data-kind="distress"]')
    expect(card.locator(".pg-preset")).to_have_text(["已收到Seen", "马上到On the way", "请稍候Hold on"])
    expect(card.locator(".pg-reply-toggle")).to_be_hidden()
    expect(card.locator("input")).to_be_hidden()
    card.locator('.pg-preset[data-preset="coming"]').click()
    expect(card.locator(".pg-replies")).to_contain_text("马上到")
    expect(card.locator(".pg-acked")).to_contain_text("大堂经理 已确认")
    expect(terminal.locator("#quiet-ack")).to_contain_text("马上到 On the way")


def test_the_device_header_fits_a_phone_with_both_buttons(live, browse, urls, token, tmp_path):
    device = browse.open(urls.device(token("device", "lobby-manager")), PHONE, touch=True)
    # A phone that has neither sound nor notifications allowed yet shows both buttons.
    device.evaluate("() => { document.getElementById('sound').hidden = false; "
                    "document.getElementById('notify').hidden = false; }")
    measure = """() => ['sound', 'notify'].map(id => {
        const box = document.getElementById(id).getBoundingClientRect(); return [box.height, box.width];
    })"""
    for height, width in device.evaluate(measure):
        assert height <= 40 and width >= 80, (height, width)  # one line each, not a column of characters
    # With whose device it is shown under the title too.
    expect(device.locator("#me")).to_have_text("本机 大堂经理 This device: Lobby manager")
    for height, width in device.evaluate(measure):
        assert height <= 40 and width >= 80, (height, width)
    title = device.locator(".dev-title").bounding_box()
    assert title["height"] <= 32, title
    widest = device.evaluate("() => Math.max(...Array.from(document.querySelectorAll('body *'))"
                             ".map(n => n.getBoundingClientRect().right))")
    assert widest <= PHONE["width"], widest
    assert device.evaluate("() => document.documentElement.scrollWidth") <= PHONE["width"]
    tools = device.locator(".dev-tools").bounding_box()
    assert tools["height"] <= 90, tools
    device.screenshot(path=str(tmp_path / "device-header.png"))


def test_a_long_question_or_note_is_printed_once(live, browse, urls, token):
    question = ("客户持有一张三年期大额存单，现在想提前支取其中一半用于购房首付，另一半继续按原利率存满期限，"
                "请问能否部分提前支取，需要客户本人带哪些证件和材料，是否需要预约？")
    note = "客户情绪激动，坚持要求立即办理挂失并补卡，已解释需要本人身份证原件，客户表示证件在车上。"
    post(live, "counter", "/counters/4/alerts", token("counter", "4"), {"kind": "ask_supervisor", "note": question})
    post(live, "counter", "/counters/1/alerts", token("counter", "1"), {"kind": "help", "note": note})
    device = browse.open(urls.device(token("device", "lobby-manager")), PHONE, touch=True)
    for kind, text in (("ask_supervisor", question), ("help", note)):
        card = device.locator(f'.pg[data-kind="{kind}"]')
        expect(card).to_be_visible()
        assert card.inner_text().count(text) == 1, card.inner_text()


def test_a_pause_page_reads_the_paused_counters_own_lines(live, browse, urls, token):
    for category in ("vip", "vip", "personal"):
        take_ticket(live, category)
    device = browse.open(urls.device(token("device", "lobby-manager")), PHONE, touch=True)
    post(live, "counter", "/counters/3/close", token("counter", "3"))
    post(live, "counter", "/counters/vip/pause", token("counter", "vip"),
         {"reason": "vault_transfer", "expected_minutes": 15})
    rows = device.locator('.pg[data-kind="pause"] .pg-row')
    expect(rows.filter(has_text="贵宾")).to_have_text("贵宾2 位等候，最长不到 1 分钟 · VIP: 2 waiting, "
                                                      "longest under 1 min")
    expect(rows.filter(has_text="个人业务")).to_have_count(0)  # not this counter's line
    expect(rows.filter(has_text="引导至")).to_contain_text("暂无开放窗口可接待 · no open counter for them")


def test_the_terminal_shows_its_own_pause_overrun(live, browse, urls, token, r):
    terminal = browse.open(urls.terminal("vip", token("counter", "vip")), TERMINAL)
    terminal.locator("#pause-reason").select_option("vault_transfer")
    terminal.locator("#pause-minutes").fill("1")
    terminal.locator("#pause").click()
    expect(terminal.locator("#paused-text")).to_contain_text("约 1 分钟")
    expect(terminal.locator("#paused-over")).to_be_hidden()
    # Ninety seconds later, as far as the counter worker can tell: it pages the overrun and tells the terminal.
    key = keys.counter("zhongnan", "vip")
    pause = json.loads(r.hget(key, "pause"))
    since = time.time() - 150
    stamp = lambda s: time.strftime("%Y-%m-%dT%H:%M:%S+08:00", time.gmtime(s + 8 * 3600))  # noqa: E731
    pause.update(since=stamp(since), until=stamp(since + 60))
    r.hset(key, "pause", json.dumps(pause))
    over = terminal.locator("#paused-over")
    expect(over).to_have_text("已超出预计时间 2 分钟，已通知大堂经理 · Over the expected time by 2 min; "
                              "the lobby manager has been told")
    terminal.reload()
    expect(over).to_contain_text("已通知大堂经理")


def test_a_revoked_token_sends_the_terminal_and_the_device_back_to_enrolment(live, browse, urls, token, r):
    counter, manager = token("counter", "1"), token("device", "lobby-manager")
    terminal = browse.open(urls.terminal("1", counter), TERMINAL)
    device = browse.open(urls.device(manager), PHONE, touch=True)
    auth.revoke(r, "zhongnan", counter)
    auth.revoke(r, "zhongnan", manager)
    for page, stored in ((terminal, "lobby.terminal.zhongnan.1"), (device, "lobby.device.zhongnan")):
        expect(page.locator("#enroll")).to_be_visible(timeout=20_000)
        expect(page.locator("#enroll-reason")).to_contain_text("吊销")
        assert page.evaluate(f"() => localStorage.getItem('{stored}')") is None


def test_the_kiosk_issues_one_ticket_through_a_frozen_redis(live, browse, urls, stack_redis):
    kiosk = browse.open(urls.kiosk_page(), KIOSK, touch=True, clock=True)
    tried: list[str] = []
    answers: list[str] = []
    kiosk.on("request", lambda req: tried.append(req.headers.get("idempotency-key", ""))
             if req.method == "POST" else None)
    kiosk.on("response", lambda res: answers.append(f"{res.status} {res.text()[:80]}")
             if res.request.method == "POST" else None)
    kiosk.on("requestfailed", lambda req: answers.append(f"failed {req.failure}"))
    pid = stack_redis.process.pid
    os.kill(pid, signal.SIGSTOP)
    try:
        kiosk.locator('button[data-category="vip"]').click()
        expect(kiosk.locator("#status")).to_have_text("正在出票，请稍候")
        kiosk.wait_for_timeout(3000)
    finally:
        os.kill(pid, signal.SIGCONT)
    try:
        expect(kiosk.locator("#r-number")).to_have_text("V001", timeout=30_000)
    except AssertionError as exc:
        raise AssertionError(f"{exc}\nanswers: {answers}") from None
    wait_recorded(kiosk, "rec.printed === 1")
    assert len(tried) >= 2 and len(set(tried)) == 1, tried
    # Every timer the kiosk has short of its return to the start (20 s) fires: no attempt more, no print more.
    attempts = len(tried)
    kiosk.clock.run_for(15_000)
    assert len(tried) == attempts and recorded(kiosk)["printed"] == 1, "shown and printed once"
    assert requests.get(f"{live.url('kiosk')}{API}/tickets/V002", timeout=5).status_code == 404

    # The next tap is a new request, and works at once.
    kiosk.locator("#done").click()
    kiosk.locator('button[data-category="vip"]').click()
    expect(kiosk.locator("#r-number")).to_have_text("V002")
    assert len(set(tried)) == 2


def test_an_idle_counter_means_next_up(live, browse, urls):
    kiosk = browse.open(urls.kiosk_page(), KIOSK, touch=True)
    personal = kiosk.locator('button[data-category="personal"] .cat-wait')
    expect(personal).to_have_text("人等候 · 即将叫号")
    kiosk.locator('button[data-category="personal"]').click()
    expect(kiosk.locator("#r-wait")).to_have_text("即将叫号 · Next up")
    phone = browse.open(urls.ticket("A001"), PHONE, touch=True)
    expect(phone.locator("#t-wait")).to_have_text("即将叫号Next up")
    display = browse.open(urls.screen(), DISPLAY)
    expect(display.locator('.waiting-card[data-category="personal"] .waiting-eta')).to_have_text("即将叫号 · Next up")


def test_customers_are_told_plainly_when_no_counter_is_open_for_them(live, browse, urls, token):
    post(live, "counter", "/counters/3/close", token("counter", "3"))
    post(live, "counter", "/counters/vip/pause", token("counter", "vip"),
         {"reason": "vault_transfer", "expected_minutes": 15})
    take_ticket(live, "vip")
    display = browse.open(urls.screen(), DISPLAY)
    notice = display.locator('.notice[data-kind="vip_redirect"]')
    expect(notice.locator(".notice-title")).to_have_text("贵宾窗口暂不办理，暂无其他窗口可办理，请稍候，工作人员将为您安排")
    expect(notice).not_to_contain_text("请到")
    expect(notice.locator("li")).to_have_text(["V001"])

    kiosk = browse.open(urls.kiosk_page(), KIOSK, touch=True)
    expect(kiosk.locator("#kiosk-notice")).to_contain_text("请稍候，工作人员将为您安排")
    kiosk.locator('button[data-category="vip"]').click()
    expect(kiosk.locator("#r-number")).to_have_text("V002")
    expect(kiosk.locator("#r-redirect")).to_contain_text("请稍候，工作人员将为您安排")
    expect(kiosk.locator("#r-redirect")).not_to_contain_text("请到")

    phone = browse.open(urls.ticket("V001"), PHONE, touch=True)
    expect(phone.locator("#t-redirect-title")).to_contain_text("请稍候")
    expect(phone.locator("#t-redirect-text")).to_contain_text("目前没有其他窗口可办理")
    expect(phone.locator("#t-redirect")).not_to_contain_text("null")
