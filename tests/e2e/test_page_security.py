"""Every page and asset is ours and locked down: a CSP without inline script, no framing, no request to
another origin, no script or style inline in the templates; `lobby up` prints page addresses that work."""

from __future__ import annotations

import re
from pathlib import Path
from urllib.parse import urlsplit

import requests
from playwright.sync_api import expect

from services.ops.cli import _print_demo
from services.runtime.settings import Context, Settings
from tests.e2e.conftest import KIOSK, PHONE, REPO, TERMINAL

SERVICES = REPO / "services"
TEMPLATES = sorted(SERVICES.glob("*/templates/*.html"))
STATIC = sorted(p for p in SERVICES.glob("*/static/*") if p.is_file())


def test_pages_and_assets_send_the_security_headers(live, urls, token):
    addresses = [
        urls.kiosk_page(), urls.screen(), urls.ticket("V001"), urls.ticket("V001") + "/qr.svg",
        urls.terminal("vip"), urls.device(), f"{urls.kiosk}/branches/nowhere/kiosk",
        f"{urls.counter}/branches/zhongnan/counters/9/terminal",
    ]
    for service, path in (("kiosk", "kiosk/static"), ("counter", "counter/static"), ("pager", "pager/static"),
                          ("kiosk", "web/static")):
        base = getattr(urls, service)
        name = "common" if path.startswith("web") else service
        addresses += [f"{base}/assets/{name}/{p.name}" for p in (SERVICES / path).iterdir()]
    for address in addresses:
        response = requests.get(address, timeout=5)
        assert response.status_code in (200, 404), (address, response.status_code)
        csp = response.headers.get("Content-Security-Policy", "")
        for directive in ("default-src 'self'", "script-src 'self'", "frame-ancestors 'none'", "object-src 'none'"):
            assert directive in csp, (address, csp)
        assert "unsafe-inline" not in csp and "unsafe-eval" not in csp, address
        assert response.headers.get("X-Frame-Options") == "DENY", address
        assert response.headers.get("X-Content-Type-Options") == "nosniff", address
    # An unknown branch or counter is a page too, not a JSON error or a stack trace.
    missing = requests.get(f"{urls.kiosk}/branches/nowhere/screen", timeout=5)
    assert missing.status_code == 404 and missing.headers["Content-Type"].startswith("text/html")


def test_templates_and_assets_hold_no_inline_code_and_no_outside_address():
    assert len(TEMPLATES) >= 7 and len(STATIC) >= 10
    for template in TEMPLATES:
        html = template.read_text(encoding="utf-8")
        for tag in re.findall(r"<script\b[^>]*>", html):
            assert "src=" in tag or 'type="application/json"' in tag, f"inline script in {template.name}: {tag}"
        assert "<style" not in html and " style=" not in html, f"inline style in {template.name}"
        assert not re.search(r"\son[a-z]+\s*=", html), f"inline handler in {template.name}"
        assert ".innerHTML" not in html
    for asset in STATIC:
        text = asset.read_text(encoding="utf-8")
        outside = [u for u in re.findall(r"https?://[^\s\"')]+", text) if not u.startswith("http://www.w3.org/")]
        assert not outside, f"{asset.name} names an outside address: {outside}"
        if asset.suffix == ".js":
            assert not re.search(r"\.(innerHTML|outerHTML)\s*=|insertAdjacentHTML|document\.write", text), asset.name


def test_lobby_up_prints_page_addresses_with_working_tokens(live, browse, capsys):
    _print_demo(live, Context.of(Settings.from_env().model_copy(update={"redis_url": live.redis_url})))
    printed = capsys.readouterr().out
    kiosk = re.search(r"Kiosk \(touchscreen\):\s+(\S+)", printed).group(1)
    display = re.search(r"Lobby display:\s+(\S+)", printed).group(1)
    terminal = re.search(r"Counter vip\s+terminal\s+(\S+)", printed).group(1)
    device = re.search(r"Device lobby-manager\s+page\s+(\S+)", printed).group(1)
    assert len(re.findall(r"Counter \S+\s+terminal\s+\S+/branches/zhongnan/\S+\?token=lby\.", printed)) == 5
    assert re.search(r"Counter vip .* Bearer (\S+)", printed), "the API lines stay for scripts"

    seen: set[str] = set()
    for address, size in ((kiosk, KIOSK), (display, KIOSK), (terminal, TERMINAL), (device, PHONE)):
        page = browse.open(address.replace("localhost", "127.0.0.1"), size)
        page.on("request", lambda request: seen.add(urlsplit(request.url).netloc))
        page.reload()
        expect(page.locator("#live")).not_to_have_class(re.compile(r"\bis-off\b"))
        assert "token=" not in page.url
        if "terminal" in address or "device" in address:
            expect(page.locator("#enroll")).to_be_hidden()
    hosts = {urlsplit(live.url(s)).netloc for s in ("kiosk", "counter", "pager")}
    assert seen and seen <= hosts, f"a page asked another origin: {seen - hosts}"


def test_no_template_or_asset_is_left_out_of_the_package():
    import tomllib

    data = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))
    patterns = data["tool"]["setuptools"]["package-data"]["*"]
    for path in [*TEMPLATES, *STATIC]:
        relative = Path(path.parent.name) / path.name
        assert any(relative.match(p) for p in patterns), f"{relative} would not ship in the wheel"
