/* Lobby: what every page shares. Plain JavaScript, no build step, no framework.
 *
 * Data from the server is only ever put on screen with textContent (Lobby.el never parses markup),
 * so a note that contains markup shows as text.
 */
(function () {
  "use strict";

  const Lobby = {};

  /** The page's data: the JSON block the server rendered (never executed). */
  Lobby.data = function () {
    const node = document.getElementById("page-data");
    return node ? JSON.parse(node.textContent) : {};
  };

  /** Build an element. Attributes by name ("text" sets textContent, "on*" adds a listener); children are
   *  nodes or strings, and strings become text nodes, never markup. */
  Lobby.el = function (tag, attrs) {
    const node = document.createElement(tag);
    const props = attrs || {};
    for (const name of Object.keys(props)) {
      const value = props[name];
      if (value === null || value === undefined || value === false) continue;
      if (name === "class") node.className = value;
      else if (name === "text") node.textContent = String(value);
      else if (name.startsWith("on") && typeof value === "function") node.addEventListener(name.slice(2), value);
      else node.setAttribute(name, value === true ? "" : String(value));
    }
    for (let i = 2; i < arguments.length; i++) Lobby.append(node, arguments[i]);
    return node;
  };

  Lobby.append = function (node, child) {
    if (child === null || child === undefined || child === false) return;
    if (Array.isArray(child)) { child.forEach((c) => Lobby.append(node, c)); return; }
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  };

  /** Set a node's text only when it changes (no needless repaint, no flicker). */
  Lobby.text = function (node, value) {
    const text = value === null || value === undefined ? "" : String(value);
    if (node && node.textContent !== text) node.textContent = text;
  };

  Lobby.$ = (selector, root) => (root || document).querySelector(selector);
  Lobby.$$ = (selector, root) => Array.from((root || document).querySelectorAll(selector));
  Lobby.sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

  /** A random Idempotency-Key (crypto.getRandomValues works on plain http too, unlike randomUUID). */
  Lobby.newKey = function () {
    const bytes = new Uint8Array(16);
    crypto.getRandomValues(bytes);
    return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
  };

  // The server's clock, from the Date header of our own API answers: estimates and "how long ago" use it,
  // so a device whose clock is wrong still counts right.
  let clockOffsetMs = 0;
  Lobby.now = () => Date.now() + clockOffsetMs;

  /** JSON over fetch. Resolves {ok, status, data, error, retryAfterMs, replayed}; a network failure (or no
   *  answer within opts.timeout ms) is status 0, never a throw. retryAfterMs is the Retry-After header in ms
   *  (null without one); replayed says the answer is the first one, given again for a repeated
   *  Idempotency-Key. */
  Lobby.api = async function (url, options) {
    const opts = options || {};
    const headers = { Accept: "application/json" };
    if (opts.token) headers.Authorization = "Bearer " + opts.token;
    if (opts.key) headers["Idempotency-Key"] = opts.key;
    let body;
    if (opts.body !== undefined) {
      headers["Content-Type"] = "application/json";
      body = JSON.stringify(opts.body);
    }
    const abort = opts.timeout && window.AbortController ? new AbortController() : null;
    const timer = abort ? setTimeout(() => abort.abort(), opts.timeout) : null;
    let response;
    let data = null;
    try {
      response = await fetch(url, { method: opts.method || "GET", headers, body, cache: "no-store",
                                    credentials: "same-origin", signal: abort ? abort.signal : undefined });
      try { data = await response.json(); } catch (err) { data = null; }
    } catch (err) {
      return { ok: false, status: 0, data: null, error: { code: "offline", message: String(err) },
               retryAfterMs: null, replayed: false };
    } finally {
      if (timer) clearTimeout(timer);
    }
    const date = Date.parse(response.headers.get("Date") || "");
    if (!Number.isNaN(date)) clockOffsetMs = date - Date.now();
    const after = parseFloat(response.headers.get("Retry-After") || "");
    return { ok: response.ok, status: response.status, data, error: (data && data.error) || null,
             retryAfterMs: Number.isFinite(after) ? Math.max(0, after * 1000) : null,
             replayed: response.headers.get("Idempotent-Replayed") === "true" };
  };

  /** Say to the service that this page is running, every `seconds`, until the returned function is called. An
   *  open event stream alone does not prove it: a frozen tab keeps its socket open. */
  Lobby.heartbeat = function (url, token, seconds, onRefused) {
    const timer = setInterval(async function () {
      const answer = await Lobby.api(url, { method: "POST", token: token, timeout: 5000 });
      if ((answer.status === 401 || answer.status === 403) && onRefused) {
        clearInterval(timer);
        onRefused(answer);
      }
    }, Math.max(0.5, seconds) * 1000);
    return () => clearInterval(timer);
  };

  /** Supervise a screen (the lobby display, a kiosk) of a branch: opened once with ?token= (a screen token), the
   *  page keeps it, follows its stream with it and beats every heartbeatS, so the manager is paged when it goes
   *  offline. A token refused or revoked is forgotten and the page reloads unsupervised: a public screen never
   *  goes dark for want of a token. Returns the query its stream address takes, and what to do on `revoked`. */
  Lobby.superviseScreen = function (kind, branchId, heartbeatS) {
    const key = "lobby." + kind + "." + branchId;
    const token = Lobby.keepToken(key);
    if (!token) return { query: "", onRevoked: undefined };
    const drop = function () { Lobby.forgetToken(key); window.location.reload(); };
    Lobby.heartbeat("/api/v1/branches/" + encodeURIComponent(branchId) + "/screens/heartbeat", token, heartbeatS,
                    drop);
    return { query: "?token=" + encodeURIComponent(token), onRevoked: drop };
  };

  /** Whether a request may be sent again, with the same Idempotency-Key, for an answer: nothing came back
   *  (status 0), the service could not act now (5xx), the same request is still running (409
   *  request_in_progress, idempotency_retry) or too many came at once (429). Anything else is its answer. */
  Lobby.worthRetrying = function (answer) {
    if (answer.status === 0 || answer.status >= 500 || answer.status === 429) return true;
    const code = answer.error && answer.error.code;
    return answer.status === 409 && (code === "request_in_progress" || code === "idempotency_retry");
  };

  /** Send one request until it is answered: while Lobby.worthRetrying says so, the same request (the same
   *  Idempotency-Key, so the service acts on it once) goes again after 0.5 s, 1 s, 2 s… (never sooner than
   *  Retry-After, never later than policy.maxDelay), for at most policy.within ms in all. policy.onRetry(answer)
   *  runs before each new attempt. Resolves the last answer. */
  Lobby.apiRetrying = async function (url, options, policy) {
    const rules = policy || {};
    const deadline = Date.now() + (rules.within || 10000);
    const maxDelay = rules.maxDelay || 2000;
    let delay = 500;
    for (;;) {
      const left = deadline - Date.now();
      const answer = await Lobby.api(url, Object.assign({}, options, { timeout: Math.max(1000, Math.min(8000, left)) }));
      if (!Lobby.worthRetrying(answer)) return answer;
      const wait = Math.max(delay, answer.retryAfterMs || 0);
      if (Date.now() + wait >= deadline) return answer;
      if (rules.onRetry) rules.onRetry(answer);
      await Lobby.sleep(wait);
      delay = Math.min(maxDelay, delay * 2);
    }
  };

  /** Whether an answer came from the service itself (it is reachable), whatever it said. A gateway's 502 to
   *  504 or no answer at all mean it is not. */
  Lobby.reached = (answer) => answer.status > 0 && [502, 503, 504].indexOf(answer.status) < 0;

  /** Follow a Server-Sent Events stream and keep following it.
   *
   * The browser's EventSource retries by itself with Last-Event-ID; when it gives up (the server answered
   * an error, or went away for good) a new EventSource starts from the last id seen (?since=), after a
   * growing pause. onState(live) tells when the page is live and when it is not; onOpen runs on every
   * (re)connection, for a page to refetch what it shows. A `reset` event (what was missed is no longer kept)
   * calls onReset, for the page to reload what it shows; `revoked` (the token was revoked) ends the stream for
   * good and calls onRevoked. */
  Lobby.follow = function (url, handlers, options) {
    const opts = options || {};
    let source = null;
    let lastId = null;
    let retryTimer = null;
    let failures = 0;
    let live = null;
    let closed = false;

    function setLive(value) {
      if (live === value) return;
      live = value;
      if (opts.onState) opts.onState(value);
    }

    function open() {
      if (closed) return;
      const target = new URL(url, window.location.href);
      if (lastId && opts.resume !== false) target.searchParams.set("since", lastId);
      source = new EventSource(target.toString());
      source.onopen = function () {
        failures = 0;
        setLive(true);
        if (opts.onOpen) opts.onOpen();
      };
      source.onerror = function () {
        setLive(false);
        if (source.readyState === EventSource.CLOSED) schedule();
      };
      source.addEventListener("reset", function (event) {
        if (event.lastEventId) lastId = event.lastEventId;
        if (opts.onReset) opts.onReset();
      });
      source.addEventListener("revoked", function () {
        closed = true;
        source.close();
        setLive(false);
        if (opts.onRevoked) opts.onRevoked();
      });
      Object.keys(handlers).forEach(function (type) {
        source.addEventListener(type, function (event) {
          if (event.lastEventId) lastId = event.lastEventId;
          let data;
          try { data = JSON.parse(event.data); } catch (err) { return; }
          handlers[type](data, event);
        });
      });
    }

    function schedule() {
      if (retryTimer || closed) return;
      if (source) source.close();
      failures += 1;
      const delay = Math.min(30000, 1000 * Math.pow(2, Math.min(failures - 1, 5))) + Math.random() * 500;
      retryTimer = setTimeout(function () { retryTimer = null; open(); }, delay);
    }

    /** Drop the connection and open a new one now (the network came back). */
    function reconnect() {
      if (closed) return;
      if (retryTimer) { clearTimeout(retryTimer); retryTimer = null; }
      if (source) source.close();
      failures = 0;
      open();
    }

    window.addEventListener("online", function () { if (!live) reconnect(); });
    window.addEventListener("offline", function () { setLive(false); });
    open();
    return {
      reconnect,
      close() { closed = true; if (source) source.close(); },
      get live() { return live === true; },
    };
  };

  /** Keep a token given once in the address (?token=): store it, and take it out of the address bar. */
  Lobby.keepToken = function (storageKey) {
    const url = new URL(window.location.href);
    const given = url.searchParams.get("token");
    if (given) {
      try { window.localStorage.setItem(storageKey, given); } catch (err) { /* private mode: memory only */ }
      url.searchParams.delete("token");
      window.history.replaceState(window.history.state, "", url.pathname + url.search + url.hash);
      return given;
    }
    try { return window.localStorage.getItem(storageKey); } catch (err) { return null; }
  };

  /** Show whether the page is live: the header's dot (#live) and the offline banner (#offline). */
  Lobby.showLive = function (live) {
    Lobby.$("#offline").hidden = live;
    const dot = Lobby.$("#live");
    dot.classList.toggle("is-off", !live);
    dot.replaceChildren(live ? "实时 " : "离线 ", Lobby.el("span", { lang: "en", text: live ? "Live" : "Offline" }));
  };

  Lobby.forgetToken = function (storageKey) {
    try { window.localStorage.removeItem(storageKey); } catch (err) { /* nothing kept */ }
  };

  /** The enrolment form a token page (terminal, device) shows: a token typed in is kept and used, then the
   *  page starts. Returns refused(answer): on a 401 the token is forgotten, on a 403 the page says whose
   *  token it is not; both send the user back to the form, and refused says whether it did.
   *  page: {use(token), start(), enroll(reason), forbidden: text for a 403}. */
  Lobby.enrolment = function (storageKey, page) {
    Lobby.$("#enroll-form").addEventListener("submit", function (event) {
      event.preventDefault();
      const value = Lobby.$("#enroll-token").value.trim();
      if (!value) return;
      try { window.localStorage.setItem(storageKey, value); } catch (err) { /* memory only */ }
      Lobby.$("#enroll-token").value = "";
      page.use(value);
      page.start();
    });
    return function refused(answer) {
      if (answer.status === 401) {
        Lobby.forgetToken(storageKey);
        page.use(null);
        page.enroll("令牌无效或已吊销，请重新登记。The token is not valid or was revoked: enrol again.");
        return true;
      }
      if (answer.status === 403) {
        page.enroll(page.forbidden);
        return true;
      }
      return false;
    };
  };

  // Times: ISO 8601 with offset in, the branch's wall clock out.
  const formatters = {};
  function formatter(timeZone, seconds) {
    const key = timeZone + (seconds ? ":s" : "");
    if (!formatters[key]) {
      const opts = { hour: "2-digit", minute: "2-digit", hourCycle: "h23", timeZone };
      if (seconds) opts.second = "2-digit";
      try { formatters[key] = new Intl.DateTimeFormat("zh-CN", opts); }
      catch (err) { delete opts.timeZone; formatters[key] = new Intl.DateTimeFormat("zh-CN", opts); }
    }
    return formatters[key];
  }

  Lobby.time = function (value, timeZone, seconds) {
    if (!value) return "";
    const date = value instanceof Date ? value : new Date(value);
    if (Number.isNaN(date.getTime())) return "";
    return formatter(timeZone || "Asia/Shanghai", !!seconds).format(date);
  };

  Lobby.date = function (timeZone, lang) {
    const opts = { year: "numeric", month: "long", day: "numeric", weekday: "short",
                   timeZone: timeZone || "Asia/Shanghai" };
    return new Intl.DateTimeFormat(lang === "en" ? "en-GB" : "zh-CN", opts).format(new Date(Lobby.now()));
  };

  /** A live clock in a node, in the branch's time zone. */
  Lobby.clock = function (node, timeZone, seconds) {
    if (!node) return;
    const tick = () => Lobby.text(node, Lobby.time(new Date(Lobby.now()), timeZone, seconds));
    tick();
    setInterval(tick, 1000);
  };

  /** Minutes of an estimated wait, in words: {zh, en}. */
  Lobby.wait = function (seconds) {
    if (seconds === null || seconds === undefined) return { zh: "暂无估计", en: "no estimate" };
    // 0: a free counter is there for them.
    if (seconds <= 0) return { zh: "即将叫号", en: "Next up" };
    if (seconds < 60) return { zh: "不到 1 分钟", en: "under 1 min" };
    const minutes = Math.ceil(seconds / 60);
    if (minutes < 120) return { zh: "约 " + minutes + " 分钟", en: "about " + minutes + " min" };
    const hours = Math.round(minutes / 6) / 10;
    return { zh: "约 " + hours + " 小时", en: "about " + hours + " h" };
  };

  /** What a customer is told when the counter for them is not serving and no other open counter serves them. */
  Lobby.noCounter = {
    zh: "请稍候，工作人员将为您安排", en: "Please wait; staff will help you",
  };

  /** How long ago an ISO time was, in words: {zh, en}. */
  Lobby.ago = function (iso) {
    const seconds = Math.max(0, Math.round((Lobby.now() - Date.parse(iso)) / 1000));
    if (Number.isNaN(seconds)) return { zh: "", en: "" };
    if (seconds < 45) return { zh: "刚刚", en: "just now" };
    const minutes = Math.round(seconds / 60);
    if (minutes < 60) return { zh: minutes + " 分钟前", en: minutes + " min ago" };
    const hours = Math.floor(minutes / 60);
    return { zh: hours + " 小时 " + (minutes % 60) + " 分钟前", en: hours + " h " + (minutes % 60) + " min ago" };
  };

  /** Where to go: "3 号窗口" / "window 3", and "VIP 窗口" / "VIP counter" for a named window. */
  Lobby.windowName = function (name) {
    const numbered = /^[0-9]+$/.test(String(name));
    return {
      zh: numbered ? name + " 号窗口" : name + " 窗口",
      en: numbered ? "window " + name : name + " counter",
    };
  };

  /** Sound through Web Audio: a chime before a call, an alarm for an urgent page. Browsers start audio
   *  only after a user gesture unless the kiosk browser is started to allow it; Lobby.sound.ready() says. */
  Lobby.sound = (function () {
    let context = null;

    function ctx() {
      if (!context) {
        const Ctor = window.AudioContext || window.webkitAudioContext;
        if (!Ctor) return null;
        try { context = new Ctor(); } catch (err) { return null; }
      }
      if (context.state === "suspended" && context.resume) context.resume().catch(() => {});
      return context;
    }

    function tone(frequency, at, duration, type, peak) {
      const c = ctx();
      if (!c) return;
      const oscillator = c.createOscillator();
      const gain = c.createGain();
      oscillator.type = type || "sine";
      oscillator.frequency.value = frequency;
      const start = c.currentTime + at;
      gain.gain.setValueAtTime(0.0001, start);
      gain.gain.exponentialRampToValueAtTime(peak || 0.3, start + 0.02);
      gain.gain.exponentialRampToValueAtTime(0.0001, start + duration);
      oscillator.connect(gain);
      gain.connect(c.destination);
      oscillator.start(start);
      oscillator.stop(start + duration + 0.05);
    }

    return {
      ready() { const c = ctx(); return !!c && c.state === "running"; },
      unlock() { return ctx(); },
      /** Ding-dong before a call; returns how long it lasts (ms). */
      chime() { tone(659.25, 0, 0.9, "sine", 0.35); tone(523.25, 0.5, 1.1, "sine", 0.35); return 1400; },
      /** Three sharp beeps; returns how long they last (ms). */
      alarm() { for (let i = 0; i < 3; i++) tone(988, i * 0.28, 0.18, "square", 0.22); return 900; },
      /** A soft single note for a page that is not urgent. */
      notify() { tone(880, 0, 0.35, "sine", 0.25); return 400; },
    };
  })();

  /** Show a "turn the sound on" button while the browser keeps audio off until someone touches the page. */
  Lobby.soundPrompt = function (button) {
    if (!button) return;
    const check = () => { button.hidden = Lobby.sound.ready(); };
    button.addEventListener("click", () => { Lobby.sound.unlock(); setTimeout(check, 200); });
    document.addEventListener("pointerdown", () => { Lobby.sound.unlock(); setTimeout(check, 200); },
                              { once: true });
    Lobby.sound.unlock();
    setTimeout(check, 500);
  };

  window.Lobby = Lobby;
})();
