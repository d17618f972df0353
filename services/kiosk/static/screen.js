/* The lobby display: the ticket just called, the last calls, who waits, redirect notices.
 *
 * Each call is announced: a chime (Web Audio), then the call in Chinese, then in English (speechSynthesis).
 * The display follows the public screen stream, which only ever carries screen, ticket_called, waiting
 * and notice events, and reconnects by itself, showing plainly while it is not live.
 */
(function () {
  "use strict";
  const L = window.Lobby;
  const data = L.data();
  const branch = data.branch;
  const api = "/api/v1/branches/" + encodeURIComponent(branch.id);
  const RECENT = 6;
  const ANNOUNCE_WITHIN_MS = 120000; // a call replayed after an outage longer than this is shown, not spoken
  const DIGITS_ZH = "零一二三四五六七八九";

  const state = { calls: [], waiting: {}, notices: [] };
  const categories = {};
  branch.categories.forEach((c) => { categories[c.id] = c; });

  // Rendering.

  function renderCurrent() {
    const call = state.calls[0];
    if (!call) return;
    const where = L.windowName(call.window);
    L.text(L.$("#current-number"), call.number);
    L.text(L.$("#current-where"), "请到 " + where.zh);
    L.text(L.$("#current-where-en"), "Please go to " + where.en);
  }

  function renderRecent() {
    const body = L.$("#recent");
    body.replaceChildren();
    state.calls.slice(0, RECENT).forEach(function (call, i) {
      body.append(L.el("tr", { class: i === 0 ? "is-latest" : "" },
        L.el("td", { class: "num recent-number", text: call.number }),
        L.el("td", { class: "recent-window", text: L.windowName(call.window).zh }),
        L.el("td", { class: "num recent-time", text: L.time(call.called_at, branch.timezone) })));
    });
    for (let i = state.calls.length; i < RECENT; i++) {
      body.append(L.el("tr", { class: "is-empty" }, L.el("td", { text: "—" }), L.el("td"), L.el("td")));
    }
  }

  function renderWaiting() {
    const list = L.$("#waiting");
    list.replaceChildren();
    branch.categories.forEach(function (c) {
      const w = state.waiting[c.id] || { count: 0, estimated_wait_s: null };
      const wait = L.wait(w.estimated_wait_s);
      list.append(L.el("article", { class: "waiting-card" + (c.vip ? " is-vip" : ""), "data-category": c.id },
        L.el("span", { class: "waiting-prefix", "aria-hidden": "true", text: c.prefix }),
        L.el("div", { class: "waiting-names" },
          L.el("h3", { class: "waiting-name", text: c.name }),
          L.el("p", { class: "waiting-name-en en", lang: "en", text: c.name_en })),
        L.el("div", { class: "waiting-figures" },
          L.el("p", { class: "waiting-count" },
            L.el("span", { class: "num waiting-number", text: String(w.count) }),
            L.el("span", { class: "waiting-unit", text: " 人等候" }),
            L.el("span", { class: "waiting-unit en", lang: "en", text: " waiting" })),
          L.el("p", { class: "waiting-eta" }, wait.zh, L.el("span", { class: "en", lang: "en", text: " · " + wait.en })))));
    });
  }

  function renderNotices() {
    const host = L.$("#notices");
    host.replaceChildren();
    state.notices.filter((n) => n.kind === "vip_redirect").forEach(function (notice) {
      const c = categories[notice.category] || { name: "贵宾", name_en: "VIP" };
      const tickets = L.el("ul", { class: "notice-tickets", "aria-label": "号码 Tickets" });
      (notice.tickets || []).forEach((n) => tickets.append(L.el("li", { class: "num", text: n })));
      // Paused or closed, the notice does not say which: "not serving now" is true of both.
      let title, titleEn, empty;
      if (notice.window) {
        const where = L.windowName(notice.window);
        title = c.name + "窗口暂不办理，" + c.name + "客户请到 " + where.zh;
        titleEn = "The " + c.name_en + " counter is not serving now: " + c.name_en + " customers, please go to " + where.en;
        empty = "新到客户请直接前往 " + where.zh;
      } else {
        // No open counter serves them now: nobody is sent anywhere.
        title = c.name + "窗口暂不办理，暂无其他窗口可办理，" + L.noCounter.zh;
        titleEn = "The " + c.name_en + " counter is not serving now and no other counter is open for " + c.name_en +
          " customers. " + L.noCounter.en;
        empty = L.noCounter.zh;
      }
      host.append(L.el("article", { class: "notice", role: "status", "data-kind": notice.kind,
                                    "data-window": notice.window || "none" },
        L.el("div", { class: "notice-icon", "aria-hidden": "true", text: notice.window ? "➜" : "i" }),
        L.el("div", { class: "notice-body" },
          L.el("h2", { class: "notice-title", text: title }),
          L.el("p", { class: "notice-title-en en", lang: "en", text: titleEn }),
          (notice.tickets || []).length ? tickets : L.el("p", { class: "notice-empty", text: empty }))));
    });
    document.body.classList.toggle("has-notice", host.childElementCount > 0);
  }

  function renderAll() { renderCurrent(); renderRecent(); renderWaiting(); renderNotices(); }

  // Announcing: chime, Chinese, English; one call after another.

  const queue = [];
  let announcing = false;

  function spellZh(number) {
    return String(number).replace(/[0-9]/g, (d) => DIGITS_ZH[Number(d)]);
  }

  function spellEn(number) {
    return String(number).split("").join(" ");
  }

  function phrases(call) {
    const numbered = /^[0-9]+$/.test(String(call.window));
    const zhWhere = numbered ? call.window + "号窗口" : call.window + "窗口";
    const enWhere = numbered ? "window " + call.window : "the " + call.window + " counter";
    return [
      { lang: "zh-CN", text: (call.recall ? "再次呼叫，" : "") + "请" + spellZh(call.number) + "号，到" + zhWhere },
      { lang: "en-US", text: (call.recall ? "Calling again. " : "") + "Ticket " + spellEn(call.number) +
                             ", please go to " + enWhere + "." },
    ];
  }

  function voiceFor(lang) {
    const synth = window.speechSynthesis;
    if (!synth || !synth.getVoices) return null;
    const voices = synth.getVoices() || [];
    const prefix = lang.slice(0, 2);
    return voices.find((v) => v.lang === lang) || voices.find((v) => (v.lang || "").startsWith(prefix)) || null;
  }

  function speak(phrase) {
    return new Promise(function (resolve) {
      const synth = window.speechSynthesis;
      if (!synth || !window.SpeechSynthesisUtterance) { resolve(); return; }
      const utterance = new SpeechSynthesisUtterance(phrase.text);
      utterance.lang = phrase.lang;
      utterance.rate = 0.9;
      const voice = voiceFor(phrase.lang);
      if (voice) utterance.voice = voice;
      let done = false;
      const finish = () => { if (!done) { done = true; resolve(); } };
      utterance.onend = finish;
      utterance.onerror = finish;
      setTimeout(finish, 15000); // a voice that never ends must not stop the next call
      synth.speak(utterance);
    });
  }

  async function announceNext() {
    const call = queue.shift();
    if (!call) { announcing = false; return; }
    announcing = true;
    await L.sleep(L.sound.chime());
    for (const phrase of phrases(call)) await speak(phrase);
    await L.sleep(500);
    announceNext();
  }

  function announce(call) {
    queue.push(call);
    if (!announcing) announceNext();
  }

  // The stream.

  function called(event) {
    const call = { number: event.number, window: event.window, called_at: event.called_at,
                   recall: !!event.recall };
    state.calls = [call].concat(state.calls.filter((c) => c.number !== call.number)).slice(0, RECENT);
    renderCurrent();
    renderRecent();
    const current = L.$("#current");
    current.classList.remove("is-new");
    void current.offsetWidth; // restart the highlight for a recall of the same number
    current.classList.add("is-new");
    const age = L.now() - Date.parse(call.called_at);
    if (Number.isNaN(age) || age < ANNOUNCE_WITHIN_MS) announce(call);
  }

  function snapshot(screen) {
    state.calls = (screen.now_serving || []).slice(0, RECENT);
    state.waiting = screen.waiting || {};
    state.notices = screen.notices || [];
    renderAll();
  }

  let opened = 0;
  async function resync() {
    // A reconnection replays what was missed; a fresh copy of the screen makes sure of it.
    opened += 1;
    if (opened === 1) return;
    const answer = await L.api(api + "/screen");
    if (answer.ok && answer.data) snapshot(answer.data);
  }

  renderAll();
  L.clock(L.$("#clock"), branch.timezone);
  L.soundPrompt(L.$("#sound"));
  L.api(api + "/screen"); // learn the server's clock before the first call is judged fresh or not
  const supervised = L.superviseScreen("display", branch.id, branch.heartbeat_s);
  L.follow(api + "/screen/events" + supervised.query, {
    screen: snapshot,
    ticket_called: called,
    waiting: (event) => { state.waiting = event.waiting || {}; renderWaiting(); },
    notice: (event) => { state.notices = event.notices || []; renderNotices(); },
  }, { onState: L.showLive, onOpen: resync, onRevoked: supervised.onRevoked });
})();
