"""The manager's device: pages by priority then age; acknowledge, reply, resolve; and a reconnection after
the pager service went away that misses nothing, behind a visible offline banner."""

from __future__ import annotations

import json
import re
import time

import redis
from playwright.sync_api import expect

from services.domain import keys
from tests.e2e.conftest import PHONE, TERMINAL, list_pages, post, recorded
from tests.sse import eventually


def test_pages_come_most_urgent_first_then_oldest(live, browse, urls, token):
    manager = token("device", "lobby-manager")
    device = browse.open(urls.device(manager), PHONE, touch=True)
    tokens = {c: token("counter", c) for c in ("vip", "1", "2", "4")}
    cards = device.locator(".pg")

    post(live, "counter", "/counters/vip/pause", tokens["vip"], {"reason": "review", "expected_minutes": 5})  # normal
    expect(cards).to_have_count(1)
    post(live, "counter", "/counters/1/alerts", tokens["1"], {"kind": "help"})  # high
    expect(cards).to_have_count(2)
    post(live, "counter", "/counters/4/alerts", tokens["4"], {"kind": "ask_supervisor", "note": "能否加急？"})  # high
    expect(cards).to_have_count(3)
    post(live, "counter", "/counters/2/alerts", tokens["2"], {"kind": "distress"})  # urgent, newest
    expect(cards).to_have_count(4)

    kinds = [cards.nth(i).get_attribute("data-kind") for i in range(4)]
    assert kinds == ["distress", "help", "ask_supervisor", "pause"], kinds
    first = cards.first
    expect(first.locator(".pg-where")).to_have_text("2 号窗口 · window 2")
    expect(first.locator(".pg-ago")).to_have_text("刚刚")
    expect(first.locator(".pg-prio")).to_have_text("紧急 Urgent")

    # Pressed again, the distress folds into its page: the device says how many times.
    post(live, "counter", "/counters/2/alerts", tokens["2"], {"kind": "distress"})
    expect(first.locator(".pg-meta")).to_contain_text("按了 2 次")
    expect(cards).to_have_count(4)

    # Reply to the question: it acknowledges the page; the terminal shows the answer.
    terminal = browse.open(urls.terminal("4", tokens["4"]), TERMINAL)
    question = device.locator('.pg[data-kind="ask_supervisor"]')
    question.locator(".pg-reply-toggle").click()
    question.locator(".pg-reply input").fill("可以，走绿色通道。")
    question.locator(".pg-reply input").press("Enter")
    expect(question.locator(".pg-replies")).to_contain_text("可以，走绿色通道。")
    expect(question.locator(".pg-acked")).to_contain_text("大堂经理 已确认")
    expect(terminal.locator("body")).to_contain_text("可以，走绿色通道。")

    # Resolve the help page: it leaves the list on the device.
    device.locator('.pg[data-kind="help"] .pg-resolve').click()
    expect(cards).to_have_count(3)
    assert [p["kind"] for p in list_pages(live, manager, "resolved")] == ["help"]


def test_a_reconnection_after_the_pager_went_away_misses_nothing(live, browse, urls, token):
    manager = token("device", "lobby-manager")
    device = browse.open(urls.device(manager), PHONE, touch=True)
    counter = token("counter", "1")
    post(live, "counter", "/counters/1/alerts", counter, {"kind": "help", "note": "before"})
    expect(device.locator(".pg")).to_have_count(1)
    offline = device.locator("#offline")
    expect(offline).to_be_hidden()

    # The pager's web service goes away (a crash, a deploy). Its worker still makes pages.
    web = live.child("pager-web")
    web.process.terminate()
    web.process.wait(15)
    try:
        expect(offline).to_be_visible()
        expect(device.locator("#live")).to_have_class(re.compile(r"\bis-off\b"))
        post(live, "counter", "/counters/2/alerts", token("counter", "2"), {"kind": "distress"})
        missed = eventually(lambda: next((p for p in list_pages_direct(live, manager) if p["kind"] == "distress"),
                                         None), timeout=10)
    finally:
        live.supervise_once()
        live.wait_ready(30)

    # Back: the banner goes, and the page made meanwhile arrives, replayed from the last event seen.
    expect(offline).to_be_hidden()
    expect(device.locator('.pg[data-kind="distress"]')).to_be_visible()
    expect(device.locator(".pg").first).to_have_attribute("data-kind", "distress")
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        replayed = [e for e in recorded(device)["events"] if e["type"] == "page" and missed["id"] in e["data"]]
        if replayed:
            break
        time.sleep(0.1)
    assert replayed, "the page made while the device was away came through the stream's replay"


def list_pages_direct(live, manager: str) -> list[dict]:
    """Read the pages from Redis while the pager's web service is down."""
    r = redis.Redis.from_url(live.redis_url, decode_responses=True)
    ids = r.zrange(keys.pages_active("zhongnan"), 0, -1)
    return [json.loads(raw) for raw in r.mget([keys.page("zhongnan", i) for i in ids]) if raw] if ids else []
