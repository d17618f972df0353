/* The kiosk touchscreen: one large button per category; a ticket is shown, then printed.
 *
 * A double tap never issues two tickets: the buttons are disabled while a request is in flight, and each tap
 * is one request with its own Idempotency-Key. When its answer is lost (no answer, the service unavailable,
 * the same request still running) the kiosk sends that same request again for a while, so the customer gets
 * the one ticket it made; then it says plainly that no ticket can be issued now, and the next tap is a new
 * request.
 */
(function () {
  "use strict";
  const L = window.Lobby;
  const data = L.data();
  const branch = data.branch;
  const api = "/api/v1/branches/" + encodeURIComponent(branch.id);
  const RETURN_AFTER_MS = 20000;
  // How long one tap keeps asking for its ticket before the customer is told to ask the lobby manager. An
  // attempt whose answer was lost may hold its request for up to 10 s (services/web/idempotency.py).
  const TAKE_WITHIN_MS = 20000;

  const TEXT = {
    zh: {
      choose: "请选择业务类型", choose_sub: "轻触下方按钮取号，请留意叫号屏幕和语音",
      take_ticket: "请取走您的号票", printing: "号票正在打印，也可扫码在手机上查看排队进度",
      done: "完成", auto_return: "页面将在 20 秒后自动返回", foot: "如需帮助，请联系大堂经理",
      live: "实时", offline: "连接中断，正在重连", switch: "English", waiting: "人等候", issuing: "正在出票，请稍候",
      busy: "取号的人较多，请稍候再试", failed: "暂时无法取号，请联系大堂经理", vip: "贵宾",
      refused: "暂时无法取号，请重试或联系大堂经理",
      info_title: "办理须知", info_id: "请携带本人有效身份证件", info_vip: "贵宾客户请准备贵宾卡或手机银行贵宾凭证",
      info_missed: "请留意叫号，过号需重新取号",
    },
    en: {
      choose: "Choose a service", choose_sub: "Tap a button for your ticket, then watch the screen and listen",
      take_ticket: "Please take your ticket", printing: "Your ticket is printing. Scan the code to follow it on your phone",
      done: "Done", auto_return: "This screen returns in 20 seconds", foot: "Need help? Ask the lobby manager",
      live: "Live", offline: "Connection lost, reconnecting", switch: "中文", waiting: "waiting",
      issuing: "Printing your ticket…",
      busy: "Many customers right now, please try again in a moment",
      failed: "We cannot issue a ticket right now: please ask the lobby manager", vip: "VIP",
      refused: "We could not issue a ticket; please try again or ask the lobby manager",
      info_title: "Before you go to the counter", info_id: "Have your own valid ID with you",
      info_vip: "VIP customers: have your VIP card or mobile banking VIP pass ready",
      info_missed: "Listen for your number: a missed number needs a new ticket",
    },
  };

  let lang = "zh";
  let waiting = {};
  let notices = [];
  let busy = false;
  let statusKey = null; // what the line under the buttons says (a TEXT key), in the language shown
  let returnTimer = null;
  const buttons = {};

  const categories = L.$("#categories");
  const status = L.$("#status");

  function t(key) { return TEXT[lang][key]; }

  function buildButtons() {
    branch.categories.forEach(function (category) {
      const name = L.el("span", { class: "cat-name" });
      const alt = L.el("span", { class: "cat-alt" });
      const count = L.el("span", { class: "cat-count num" });
      const wait = L.el("span", { class: "cat-wait" });
      const button = L.el("button", {
        type: "button", class: "category" + (category.vip ? " is-vip" : ""), "data-category": category.id,
        onclick: function () { take(category); },
      },
      L.el("span", { class: "cat-prefix", "aria-hidden": "true", text: category.prefix }),
      L.el("span", { class: "cat-names" }, name, alt),
      L.el("span", { class: "cat-side" }, count, wait));
      buttons[category.id] = { button, name, alt, count, wait, category };
      categories.append(button);
    });
  }

  function render() {
    document.documentElement.lang = lang === "zh" ? "zh-CN" : "en";
    L.$$("[data-i18n]").forEach(function (node) { L.text(node, t(node.dataset.i18n)); });
    const switcher = L.$("#lang");
    L.text(switcher, t("switch"));
    switcher.lang = lang === "zh" ? "en" : "zh-CN";
    Object.values(buttons).forEach(function (b) {
      const c = b.category;
      L.text(b.name, lang === "zh" ? c.name : c.name_en);
      L.text(b.alt, lang === "zh" ? c.name_en : c.name);
      b.alt.lang = lang === "zh" ? "en" : "zh-CN";
      const w = waiting[c.id];
      L.text(b.count, w ? String(w.count) : "–");
      const estimate = w ? L.wait(w.estimated_wait_s)[lang] : "";
      L.text(b.wait, t("waiting") + (estimate ? " · " + estimate : ""));
      b.button.disabled = busy;
    });
    L.text(L.$("#today"), L.date(branch.timezone, lang));
    L.text(status, statusKey ? t(statusKey) : "");
    renderNotices();
  }

  function renderNotices() {
    const host = L.$("#kiosk-notice");
    const redirects = notices.filter((n) => n.kind === "vip_redirect");
    host.replaceChildren();
    redirects.forEach(function (n) {
      const c = branch.categories.find((x) => x.id === n.category) || { name: "贵宾", name_en: "VIP" };
      let text;
      if (n.window) {
        const where = L.windowName(n.window);
        text = lang === "zh" ? c.name + "窗口暂不办理，" + c.name + "客户请取号后到 " + where.zh + "办理"
          : "The " + c.name_en + " counter is not serving now: please take a ticket and go to " + where.en;
      } else {
        // No open counter serves them: nowhere to send them, so nobody is sent anywhere.
        text = lang === "zh" ? c.name + "窗口暂不办理，目前没有其他窗口可办理。" + c.name + "客户请取号，" + L.noCounter.zh
          : "The " + c.name_en + " counter is not serving now and no other counter can serve you. Please take a " +
            "ticket: " + L.noCounter.en.charAt(0).toLowerCase() + L.noCounter.en.slice(1);
      }
      host.append(L.el("p", { class: "kiosk-notice-line", text }));
    });
    host.hidden = redirects.length === 0;
  }

  async function take(category) {
    if (busy) return; // a second tap while the first is in flight does nothing
    busy = true;
    say("issuing", false);
    render();
    // One tap, one request: every attempt carries the same key, so the service issues one ticket at most.
    const answer = await L.apiRetrying(api + "/tickets", { method: "POST", body: { category: category.id },
                                                            key: L.newKey() }, { within: TAKE_WITHIN_MS });
    busy = false;
    if (answer.ok && answer.data && answer.data.ticket) {
      say(null, false);
      show(answer.data.ticket);
    } else {
      say(answer.status === 429 ? "busy" : L.worthRetrying(answer) ? "failed" : "refused", true);
    }
    render();
  }

  function say(key, error) {
    statusKey = key;
    status.className = "kiosk-status" + (error ? " is-error" : "");
    L.text(status, key ? t(key) : "");
  }

  function show(ticket) {
    const category = branch.categories.find((c) => c.id === ticket.category) || { name: "", name_en: "" };
    L.text(L.$("#r-cat"), category.name);
    L.text(L.$("#r-cat-en"), category.name_en);
    L.text(L.$("#r-number"), ticket.number);
    const ahead = ticket.position ? ticket.position - 1 : 0;
    L.text(L.$("#r-ahead"), ahead + " 位 · " + ahead + (ahead === 1 ? " person" : " people"));
    const wait = L.wait(ticket.estimated_wait_s);
    L.text(L.$("#r-wait"), wait.zh + " · " + wait.en);
    L.text(L.$("#r-time"), L.time(ticket.issued_at, branch.timezone, true));
    const redirect = L.$("#r-redirect");
    if (ticket.redirect) {
      const closed = ticket.redirect.reason === "counter_closed";
      const state = category.name + "窗口" + (closed ? "已关闭" : "暂停服务");
      const stateEn = category.name_en + " counter " + (closed ? "closed" : "paused");
      if (ticket.redirect.window) {
        const where = L.windowName(ticket.redirect.window);
        L.text(redirect, state + "，请到 " + where.zh + "办理 · " + stateEn + ": please go to " + where.en);
      } else {
        L.text(redirect, state + "，暂无其他窗口可办理，" + L.noCounter.zh + " · " + stateEn +
          ", no other counter open for you. " + L.noCounter.en);
      }
      redirect.hidden = false;
    } else {
      redirect.hidden = true;
    }
    const qr = L.$("#r-qr");
    qr.alt = "二维码：在手机上查看 " + ticket.number + " 号排队进度 (QR code: follow ticket " + ticket.number + ")";
    const printWhenReady = function () {
      qr.removeEventListener("load", printWhenReady);
      qr.removeEventListener("error", printWhenReady);
      setTimeout(function () { window.print(); }, 50);
    };
    qr.addEventListener("load", printWhenReady);
    qr.addEventListener("error", printWhenReady);
    qr.src = "/branches/" + encodeURIComponent(branch.id) + "/tickets/" + encodeURIComponent(ticket.number) +
      "/qr.svg";
    L.$("#choose").hidden = true;
    L.$("#ticket").hidden = false;
    L.$("#done").focus();
    clearTimeout(returnTimer);
    returnTimer = setTimeout(back, RETURN_AFTER_MS);
  }

  function back() {
    clearTimeout(returnTimer);
    L.$("#ticket").hidden = true;
    L.$("#choose").hidden = false;
    if (lang !== "zh") { lang = "zh"; } // the next customer starts in Chinese
    render();
  }

  function setLive(live) {
    const node = L.$("#live");
    node.dataset.i18n = live ? "live" : "offline";
    node.classList.toggle("is-off", !live);
    L.text(node, t(node.dataset.i18n));
  }

  buildButtons();
  render();
  L.clock(L.$("#clock"), branch.timezone);
  L.$("#lang").addEventListener("click", function () { lang = lang === "zh" ? "en" : "zh"; render(); });
  L.$("#done").addEventListener("click", back);
  const supervised = L.superviseScreen("kiosk", branch.id, branch.heartbeat_s);
  L.follow(api + "/screen/events" + supervised.query, {
    screen: function (snapshot) { waiting = snapshot.waiting || {}; notices = snapshot.notices || []; render(); },
    waiting: function (event) { waiting = event.waiting || {}; render(); },
    notice: function (event) { notices = event.notices || []; render(); },
  }, { onState: setLive, resume: false, onRevoked: supervised.onRevoked });
})();
