"""Browser fixtures: Debian's Chromium driven by playwright against the whole stack (tests/conftest.py).

No browser is ever downloaded: the tests launch /usr/bin/chromium (apt-get install chromium
fonts-noto-cjk). Every page is opened with a recorder (RECORDER below) that stands in for what a headless
machine cannot do or a test must see: speech, sound, vibration, system notifications and printing are
recorded, and so are every Server-Sent Event the page handles and every text that ever entered its DOM.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import requests
from playwright.sync_api import Browser, BrowserContext, Page, expect, sync_playwright

from tests.conftest import BRANCH

CHROMIUM = Path(os.environ.get("LOBBY_CHROMIUM", "/usr/bin/chromium"))
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    # As a lobby display or a kiosk is started: sound without a tap first.
    "--autoplay-policy=no-user-gesture-required",
]
HERE = Path(__file__).resolve().parent
AXE = HERE / "node_modules" / "axe-core" / "axe.min.js"
REPO = HERE.parents[1]
# The screenshots README shows. A test run writes them only when asked (LOBBY_SCREENSHOTS=1), so running
# the suite does not dirty the checkout; otherwise they go to a temporary folder and are checked there.
SCREENSHOTS = REPO / "docs" / "screenshots"
WAIT_MS = 15_000

API = f"/api/v1/branches/{BRANCH}"

# Sizes the pages are used at.
DISPLAY = {"width": 1920, "height": 1080}
DISPLAY_PORTRAIT = {"width": 1080, "height": 1920}
KIOSK = {"width": 1080, "height": 1920}
PHONE = {"width": 390, "height": 844}
TERMINAL = {"width": 1366, "height": 900}

RECORDER = r"""
(() => {
  const rec = window.__lobby = { spoken: [], audio: [], vibrate: [], notifications: [], printed: 0, events: [],
                                 texts: [], order: [], dialogs: 0, wakeLocks: [] };
  // Speech: record each utterance, and end it a moment later as a voice would.
  const synth = {
    speaking: false, pending: false, paused: false, onvoiceschanged: null,
    getVoices() { return []; }, cancel() {}, pause() {}, resume() {},
    addEventListener() {}, removeEventListener() {},
    speak(u) {
      rec.spoken.push({ text: u.text, lang: u.lang }); rec.order.push("speak:" + u.lang);
      setTimeout(() => { if (u.onend) u.onend(new Event("end")); }, 20);
    },
  };
  Object.defineProperty(window, "speechSynthesis", { value: synth, configurable: true });
  // Web Audio: the real thing, with every oscillator start recorded.
  const Real = window.AudioContext;
  if (Real) {
    class Recording extends Real {
      createOscillator() {
        const osc = super.createOscillator();
        const start = osc.start.bind(osc);
        osc.start = (...args) => { rec.audio.push({ frequency: osc.frequency.value, type: osc.type });
                                   rec.order.push("oscillator"); return start(...args); };
        return osc;
      }
    }
    window.AudioContext = Recording;
    window.webkitAudioContext = Recording;
  }
  Object.defineProperty(Navigator.prototype, "vibrate", { configurable: true, writable: true,
    value(pattern) { rec.vibrate.push(pattern); return true; } });
  class Notice {
    constructor(title, options) { rec.notifications.push({ title, body: options && options.body }); }
    static get permission() { return "granted"; }
    static requestPermission() { return Promise.resolve("granted"); }
    close() {}
  }
  window.Notification = Notice;
  // What the page asks to keep the screen awake.
  if (navigator.wakeLock) {
    const request = navigator.wakeLock.request.bind(navigator.wakeLock);
    navigator.wakeLock.request = (type) => { rec.wakeLocks.push(type); return request(type); };
  }
  // A notification shown through the service worker, as a phone's browser wants it, is recorded the same way.
  if (window.ServiceWorkerRegistration) {
    ServiceWorkerRegistration.prototype.showNotification = function (title, options) {
      rec.notifications.push({ title, body: options && options.body, worker: true });
      return Promise.resolve();
    };
  }
  window.print = () => { rec.printed += 1; };
  for (const name of ["alert", "confirm", "prompt"]) window[name] = () => { rec.dialogs += 1; };
  // Every Server-Sent Event the page handles.
  const listen = EventSource.prototype.addEventListener;
  EventSource.prototype.addEventListener = function (type, handler, options) {
    return listen.call(this, type, function (event) {
      rec.events.push({ type, data: event.data, url: this.url });
      return handler.apply(this, arguments);
    }, options);
  };
  // Every text that ever entered the DOM, even for a moment.
  new MutationObserver((mutations) => {
    for (const m of mutations) {
      if (m.type === "characterData") rec.texts.push(m.target.data);
      for (const node of m.addedNodes || []) if (node.textContent) rec.texts.push(node.textContent);
    }
  }).observe(document, { subtree: true, childList: true, characterData: true });
})();
"""


@pytest.fixture(scope="package")
def browser() -> Iterator[Browser]:
    """Debian's headless Chromium, one for these tests, closed before the rest of the suite runs."""
    if not CHROMIUM.exists():
        pytest.fail(f"{CHROMIUM} is missing: apt-get install -y chromium fonts-noto-cjk (never playwright install)")
    expect.set_options(timeout=WAIT_MS)
    with sync_playwright() as pw:
        launched = pw.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, timeout=60_000)
        yield launched
        launched.close()


@dataclass
class Browsing:
    """Opens pages in fresh browser contexts and closes them all at the end of the test."""

    browser: Browser
    contexts: list[BrowserContext] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    dialogs: list[str] = field(default_factory=list)

    def open(self, url: str, viewport: dict[str, int], *, bypass_csp: bool = False, record: bool = True,
             wait_live: bool = True, touch: bool = False, still: bool = False, clock: bool = False) -> Page:
        """Open a page at a size; wait until it is live (its stream connected) unless told not to.

        still: the browser asks for reduced motion, so no animation is caught halfway (axe reads colours).
        clock: the page's timers run on playwright's clock, which flows as time does until the test moves it
        (`page.clock.run_for`): what a page would do later is seen at once, and what it must never do again is
        proven over all its timers, not by waiting."""
        context = self.browser.new_context(viewport=viewport, device_scale_factor=1, locale="zh-CN",
                                           timezone_id="Asia/Shanghai", bypass_csp=bypass_csp, has_touch=touch,
                                           is_mobile=touch, reduced_motion="reduce" if still else "no-preference")
        context.set_default_timeout(WAIT_MS)
        self.contexts.append(context)
        if record:
            context.add_init_script(RECORDER)
        if clock:
            context.clock.install()
        page = context.new_page()
        page.on("pageerror", lambda error: self.problems.append(f"{url}: uncaught {error}"))
        page.on("console", lambda message: self._console(url, message.type, message.text))
        page.on("dialog", lambda dialog: (self.dialogs.append(dialog.message), dialog.dismiss()))
        page.goto(url)
        if wait_live:
            expect(page.locator("#live")).not_to_have_class(re.compile(r"\bis-off\b"))
        return page

    def _console(self, url: str, kind: str, text: str) -> None:
        if "Content Security Policy" in text or "Refused to" in text:
            self.problems.append(f"{url}: {text}")

    def close(self) -> None:
        for context in self.contexts:
            context.close()
        self.contexts.clear()


@pytest.fixture
def browse(browser: Browser, live: Any) -> Iterator[Browsing]:
    """Open pages against the live stack; at the end, none may have thrown or broken the CSP."""
    browsing = Browsing(browser)
    yield browsing
    browsing.close()
    assert not browsing.problems, "\n".join(browsing.problems)
    assert not browsing.dialogs, f"a page opened a dialog: {browsing.dialogs}"


@dataclass
class Urls:
    kiosk: str
    counter: str
    pager: str

    def kiosk_page(self) -> str:
        return f"{self.kiosk}/branches/{BRANCH}/kiosk"

    def screen(self) -> str:
        return f"{self.kiosk}/branches/{BRANCH}/screen"

    def ticket(self, number: str) -> str:
        return f"{self.kiosk}/branches/{BRANCH}/tickets/{number}"

    def terminal(self, counter: str, token: str | None = None) -> str:
        url = f"{self.counter}/branches/{BRANCH}/counters/{counter}/terminal"
        return f"{url}?token={token}" if token else url

    def device(self, token: str | None = None) -> str:
        url = f"{self.pager}/branches/{BRANCH}/device"
        return f"{url}?token={token}" if token else url


@pytest.fixture
def urls(live: Any) -> Urls:
    return Urls(live.url("kiosk"), live.url("counter"), live.url("pager"))


def recorded(page: Page) -> dict[str, Any]:
    """What the page's recorder saw: spoken, audio, vibrate, notifications, printed, events, texts, order."""
    return page.evaluate("window.__lobby")


def wait_recorded(page: Page, condition: str) -> None:
    """Wait until a JavaScript condition on the recorder (`rec`) holds."""
    # A function, not an expression: a string expression would be eval'd, which the pages' CSP forbids.
    page.wait_for_function(f"() => {{ const rec = window.__lobby; return {condition}; }}", timeout=WAIT_MS)


def take_ticket(live: Any, category: str) -> dict[str, Any]:
    """Take a ticket through the API (for the state a test starts from)."""
    response = requests.post(f"{live.url('kiosk')}{API}/tickets", json={"category": category}, timeout=5)
    assert response.status_code == 201, response.text
    return response.json()["ticket"]


def post(live: Any, service: str, path: str, token: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
    """POST to a service's API with a bearer token; fail on anything but 2xx."""
    response = requests.post(f"{live.url(service)}{API}{path}", json=body,
                             headers={"Authorization": f"Bearer {token}"}, timeout=5)
    assert response.ok, response.text
    return response.json()


def list_pages(live: Any, token: str, status: str = "open") -> list[dict[str, Any]]:
    """The manager's pages of a status, through the pager API."""
    response = requests.get(f"{live.url('pager')}{API}/pages", params={"status": status},
                            headers={"Authorization": f"Bearer {token}"}, timeout=5)
    assert response.ok, response.text
    return response.json()["pages"]


def widths(page: Page) -> dict[str, int]:
    """The document's scrolling width and the viewport's: more of the first is a page that scrolls sideways."""
    return page.evaluate("() => ({scroll: document.documentElement.scrollWidth, "
                         "client: document.documentElement.clientWidth, inner: window.innerWidth})")


def assert_fits(page: Page, viewport: dict[str, int]) -> None:
    """Fail, naming what sticks out, when the page scrolls sideways at this viewport."""
    page.evaluate("() => document.fonts.ready.then(() => true)")  # measured in the fonts it shows
    seen = widths(page)
    if seen["scroll"] <= seen["client"] <= viewport["width"]:
        return
    beyond = page.evaluate("""(width) => Array.from(document.querySelectorAll('body *'))
        .filter((e) => e.getBoundingClientRect().right > width)
        .slice(0, 8).map((e) => `${e.tagName}#${e.id}.${e.className} ${e.getBoundingClientRect().right}`)""",
                           viewport["width"])
    raise AssertionError(f"the page scrolls sideways: {seen}; past the edge: {beyond}")


def axe_violations(page: Page) -> list[dict[str, Any]]:
    """Inject axe-core into the page and return its serious and critical violations."""
    if not AXE.exists():
        pytest.fail(f"{AXE} is missing: npm ci --prefix tests/e2e")
    page.add_script_tag(path=str(AXE))
    result = page.evaluate("axe.run(document, {resultTypes: ['violations']})")
    return [
        {"id": v["id"], "impact": v["impact"], "help": v["help"],
         "nodes": [n["target"] for n in v["nodes"]][:5]}
        for v in result["violations"] if v["impact"] in ("serious", "critical")
    ]

