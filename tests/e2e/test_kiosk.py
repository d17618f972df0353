"""The kiosk touchscreen: a double tap is one ticket, a lost answer is retried as the same request (then the
kiosk says it cannot issue one, and the next tap is a new request), the language switches, and the printed
ticket is a receipt 80 mm wide with a QR code to the ticket's page."""

from __future__ import annotations

import re

import requests
from playwright.sync_api import Route, expect

from tests.e2e.conftest import API, KIOSK, recorded, wait_recorded


def ticket_exists(live, number: str) -> bool:
    return requests.get(f"{live.url('kiosk')}{API}/tickets/{number}", timeout=5).status_code == 200


def test_a_double_tap_issues_one_ticket(live, browse, urls):
    kiosk = browse.open(urls.kiosk_page(), KIOSK, touch=True)
    posts: list[dict[str, str]] = []
    kiosk.on("request", lambda req: posts.append(req.headers) if req.method == "POST" else None)

    # Two taps in the same instant (no await between them), as a nervous finger does.
    kiosk.evaluate("() => { const b = document.querySelector('button[data-category=\"vip\"]'); b.click(); b.click(); }")
    expect(kiosk.locator("#r-number")).to_have_text("V001")
    kiosk.locator("#done").click()
    # And a double tap through the touchscreen.
    kiosk.locator('button[data-category="personal"]').dblclick()
    expect(kiosk.locator("#r-number")).to_have_text("A001")

    assert len(posts) == 2, f"one request per tap burst, got {len(posts)}"
    keys = [headers.get("idempotency-key") for headers in posts]
    assert all(keys) and len(set(keys)) == 2, keys
    assert not ticket_exists(live, "V002") and not ticket_exists(live, "A002")


def test_a_lost_answer_is_retried_with_the_same_idempotency_key(live, browse, urls):
    kiosk = browse.open(urls.kiosk_page(), KIOSK, touch=True)
    keys: list[str] = []

    def lose_the_first_answer(route: Route) -> None:
        keys.append(route.request.headers.get("idempotency-key", ""))
        if len(keys) == 1:
            route.fetch()  # the server issues the ticket...
            route.abort("connectionreset")  # ...and the answer never reaches the kiosk
        else:
            route.continue_()

    kiosk.route(re.compile(r".*/api/v1/branches/[^/]+/tickets$"), lose_the_first_answer)
    # One tap: the kiosk asks again by itself, as the same request, and gets the ticket the first one made.
    kiosk.locator('button[data-category="vip"]').click()
    expect(kiosk.locator("#r-number")).to_have_text("V001")
    assert len(keys) == 2 and keys[0] == keys[1] != "", keys
    assert not ticket_exists(live, "V002"), "the retry issued a second ticket"


def test_a_kiosk_that_gets_no_answer_says_so_and_the_next_tap_is_a_new_request(live, browse, urls):
    kiosk = browse.open(urls.kiosk_page(), KIOSK, touch=True)
    keys: list[str] = []
    down = {"on": True}

    def unreachable(route: Route) -> None:
        keys.append(route.request.headers.get("idempotency-key", ""))
        if down["on"]:
            route.fulfill(status=503, headers={"Retry-After": "1"}, content_type="application/json",
                          body='{"error": {"code": "unavailable", "message": "try again"}}')
        else:
            route.continue_()

    kiosk.route(re.compile(r".*/api/v1/branches/[^/]+/tickets$"), unreachable)
    button = kiosk.locator('button[data-category="vip"]')
    button.click()
    expect(kiosk.locator("#status")).to_have_text("正在出票，请稍候")
    expect(button).to_be_disabled()
    expect(kiosk.locator("#status")).to_have_text("暂时无法取号，请联系大堂经理", timeout=30_000)
    expect(kiosk.locator("#status")).to_have_class(re.compile(r"\bis-error\b"))
    expect(button).to_be_enabled()
    first = set(keys)
    assert len(keys) >= 3 and len(first) == 1, keys

    down["on"] = False
    button.click()
    expect(kiosk.locator("#r-number")).to_have_text("V001")
    assert keys[-1] not in first, "a new tap is a new request"


def test_language_switch_receipt_print_and_qr(live, browse, urls):
    kiosk = browse.open(urls.kiosk_page(), KIOSK, touch=True)
    vip = kiosk.locator('button[data-category="vip"]')
    expect(kiosk.locator("#choose-title")).to_have_text("请选择业务类型")
    expect(vip.locator(".cat-name")).to_have_text("贵宾")
    expect(vip.locator(".cat-alt")).to_have_text("VIP")
    kiosk.locator("#lang").click()
    expect(kiosk.locator("#choose-title")).to_have_text("Choose a service")
    expect(vip.locator(".cat-name")).to_have_text("VIP")
    expect(kiosk.locator("html")).to_have_attribute("lang", "en")

    kiosk.locator('button[data-category="corporate"]').click()
    expect(kiosk.locator("#r-number")).to_have_text("B001")
    expect(kiosk.locator("#r-cat")).to_have_text("对公业务")
    expect(kiosk.locator("#r-ahead")).to_contain_text("0 位")
    expect(kiosk.locator("#r-time")).to_have_text(re.compile(r"^\d{2}:\d{2}:\d{2}$"))
    wait_recorded(kiosk, "rec.printed === 1")
    assert recorded(kiosk)["printed"] == 1, "printed once, after the QR code loaded"

    # The QR code is made by our own service (no CDN) and leads to the ticket's page.
    src = kiosk.locator("#r-qr").get_attribute("src")
    assert src == "/branches/zhongnan/tickets/B001/qr.svg"
    svg = requests.get(f"{live.url('kiosk')}{src}", timeout=5)
    assert svg.status_code == 200 and svg.headers["Content-Type"].startswith("image/svg+xml")
    assert f"<title>{urls.ticket('B001')}</title>" in svg.text
    assert kiosk.locator("#r-qr").evaluate("img => img.naturalWidth") > 0

    # Printed, only the receipt shows, 72 mm of an 80 mm roll (96 px per inch).
    kiosk.emulate_media(media="print")
    assert kiosk.locator(".bar").is_hidden() and kiosk.locator("#done").is_hidden()
    width_mm = kiosk.locator("#receipt").evaluate("n => n.getBoundingClientRect().width") * 25.4 / 96
    assert 70 <= width_mm <= 80, width_mm
    kiosk.emulate_media(media="screen")

    # Done: back to the buttons, in Chinese for the next customer.
    kiosk.locator("#done").click()
    expect(kiosk.locator("#choose-title")).to_have_text("请选择业务类型")
    expect(kiosk.locator('button[data-category="corporate"] .cat-count')).to_have_text("1")
