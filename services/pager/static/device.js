/* The manager's device (a phone): open pages, most urgent first, then oldest; acknowledge, reply, resolve.
 *
 * A page alerts the managers it is paged to (page.paged, the escalation order so far): an urgent open page
 * sounds an alarm (Web Audio) and vibrates, again and again, on their devices and raises a system notification
 * where permitted; the other devices show it silently until it escalates to them. A press after someone
 * acknowledged (`pressed_again`) alerts every device. Low-priority pages are information: no sound, no
 * buttons, and they go when they close by themselves.
 *
 * The feed reconnects by itself from the last event it saw (Last-Event-ID, or ?since= on a new connection)
 * and the list is fetched again on every reconnection, so an outage costs nothing. The token comes once in the
 * address (?token=) and the page keeps it.
 */
(function () {
  "use strict";
  const L = window.Lobby;
  const data = L.data();
  const branch = data.branch;
  const KINDS = data.kinds || {};
  const PRIORITIES = data.priorities || {};
  const PRESETS = data.reply_presets || {};
  const storageKey = "lobby.device." + branch.id;
  const api = "/api/v1/branches/" + encodeURIComponent(branch.id);
  const base = api + "/pages";
  // The priority that is information only, and the calls whose terminal a customer can read (answered with a
  // preset, never free text): the server's contract, in the page data.
  const INFORMATION = data.information;
  const CALLS = data.calls; // what a teller's buttons raise
  const DISCREET = data.discreet;
  const ALARM_EVERY_MS = 3000;
  const REFRESH_MS = 30000;
  // News older than this (an event replayed after an outage) is shown, not sounded.
  const FRESH_MS = 60000;
  const ACT_RETRY_MS = 8000;
  // The discreet replies from the least to the most committal; any other the server adds comes after.
  const presetKeys = ["seen", "coming", "wait"].filter((k) => PRESETS[k])
    .concat(Object.keys(PRESETS).filter((k) => ["seen", "coming", "wait"].indexOf(k) < 0));

  const HEARTBEAT_S = branch.heartbeat_s;

  // The device's own connection lost this long is an alarm.
  const LOST_ALARM_MS = 10000;

  let token = L.keepToken(storageKey);
  let stopHeartbeat = () => {};
  let lostTimer = null;
  let lostAlarm = null;
  let wakeLock = null;
  let worker = null; // the service worker's registration, once it is ready
  let me = null; // {id, name, name_en}: whose device this is (GET …/device)
  const pages = new Map(); // id -> {page, seen}
  const cards = new Map(); // id -> card elements
  const gone = new Map(); // id -> version at which it was resolved: an older copy must not bring it back
  const busy = {};
  let stream = null;
  let streamLive = false;
  let listOk = true;
  let alarmTimer = null;
  let refreshTimer = null;
  let started = false;

  const managers = {};
  branch.managers.forEach((m) => { managers[m.id] = m; });
  const reasons = {};
  branch.pause_reasons.forEach((r) => { reasons[r.id] = r; });
  const categories = {};
  branch.categories.forEach((c) => { categories[c.id] = c; });
  const screens = {};
  (branch.screens || []).forEach((s) => { screens[s.id] = s; });
  const COUNTER_STATUS = { paused: ["暂停", "paused"], closed: ["关闭", "closed"] };

  function who(id) { return managers[id] || { name: id || "", name_en: id || "" }; }
  function kindOf(page) { return KINDS[page.kind] || { name: page.kind, name_en: page.kind }; }
  function rank(priority) { return PRIORITIES[priority] ? PRIORITIES[priority].rank : 9; }
  function minutes(seconds) { return Math.max(1, Math.round(seconds / 60)); }

  // Enrolment.

  function enroll(reason) {
    if (stream) { stream.close(); stream = null; }
    L.$("#board").hidden = true;
    L.$("#enroll").hidden = false;
    if (reason) L.text(L.$("#enroll-reason"), reason);
    stopAlarm();
  }

  const refused = L.enrolment(storageKey, {
    use(value) { token = value; me = null; }, start, enroll,
    forbidden: "此令牌不能查看本支行的呼叫。This token may not read this branch's pages.",
  });

  /** Learn whose device this is: it decides which pages sound here. */
  async function learnWhoIAm() {
    const answer = await L.api(api + "/device", { token });
    if (refused(answer)) return "refused";
    if (answer.ok && answer.data && answer.data.device) {
      me = answer.data.device.manager;
      const node = L.$("#me");
      node.replaceChildren("本机 " + me.name + " ", L.el("span", { class: "en", lang: "en", text: "This device: " + me.name_en }));
      node.hidden = false;
    }
    return answer.ok;
  }

  // The pages.

  function version(page) { return (page.audit || []).length; }

  /** Keep the newer of two copies of a page (a list fetched while events arrive may be older); say whether
   *  this copy was taken. */
  function upsert(page) {
    const known = pages.get(page.id);
    if (known && version(known.page) > version(page)) return false;
    if (gone.has(page.id) && gone.get(page.id) >= version(page)) return false;
    if (page.status === "resolved") {
      pages.delete(page.id);
      gone.set(page.id, version(page));
      return true;
    }
    pages.set(page.id, { page, seen: Date.now() });
    return true;
  }

  function sorted() {
    return Array.from(pages.values()).map((p) => p.page).sort(function (a, b) {
      return rank(a.priority) - rank(b.priority) || Date.parse(a.created_at) - Date.parse(b.created_at);
    });
  }

  /** Is this manager paged for the page? Until the device knows whose it is, every page is (better loud). */
  function mine(page) {
    if (!me) return true;
    const paged = page.paged || [];
    return paged.length === 0 || paged.indexOf(me.id) >= 0;
  }

  /** Presses after the page was acknowledged. */
  function pressedAgain(page) {
    const audit = page.audit || [];
    const taken = audit.findIndex((e) => e.event === "acknowledged");
    return taken < 0 ? 0 : audit.slice(taken + 1).filter((e) => e.event === "pressed").length;
  }

  function recent(page) {
    const audit = page.audit || [];
    const last = audit.length ? Date.parse(audit[audit.length - 1].at) : Date.parse(page.created_at);
    return !(L.now() - last > FRESH_MS);
  }

  /** The questions of a page, each once: the first press's, then those of presses folded into it. */
  function questions(d) {
    const all = [d.question].concat(d.questions || []).filter((q) => q);
    return all.filter((q, i) => all.indexOf(q) === i);
  }

  function detailRows(page) {
    const d = page.details || {};
    const rows = [];
    if (page.kind === "pause" || page.kind === "pause_overrun") {
      const r = reasons[d.reason] || { name: d.reason_name || d.reason, name_en: d.reason_name_en || "" };
      if (d.reason) rows.push(["原因", r.name + (r.name_en ? " · " + r.name_en : "")]);
      if (d.expected_minutes) rows.push(["预计", d.expected_minutes + " 分钟 · " + d.expected_minutes + " min"]);
    }
    if (page.kind === "pause_overrun" && d.until) {
      const over = Math.max(0, (L.now() - Date.parse(d.until)) / 1000);
      rows.push(["超出", minutes(over) + " 分钟 · over by " + minutes(over) + " min"]);
    }
    if (page.kind === "pause") {
      // The paused counter's own lines: who waits there, and since when.
      (d.lines || []).forEach(function (line) {
        const c = categories[line.category] || { name: line.category, name_en: line.category };
        let text = line.waiting + " 位等候";
        let en = c.name_en + ": " + line.waiting + " waiting";
        if (line.waiting && line.longest_wait_s !== null && line.longest_wait_s !== undefined) {
          const under = line.longest_wait_s < 60;
          text += under ? "，最长不到 1 分钟" : "，最长 " + minutes(line.longest_wait_s) + " 分钟";
          en += under ? ", longest under 1 min" : ", longest " + minutes(line.longest_wait_s) + " min";
        }
        rows.push([c.name, text + " · " + en]);
      });
      if (!d.lines && d.vip_waiting !== undefined && d.vip_waiting !== null) {
        rows.push(["贵宾等候", d.vip_waiting + " 位 · " + d.vip_waiting + " waiting"]);
      }
      if (d.redirect_window) {
        const where = L.windowName(d.redirect_window);
        rows.push(["引导至", where.zh + " · " + where.en]);
      } else if (d.no_redirect) {
        rows.push(["引导至", "暂无开放窗口可接待 · no open counter for them"]);
      }
    }
    if (page.kind === "endpoint_offline") {
      if (d.endpoint_kind === "terminal") {
        const where = L.windowName(page.window);
        rows.push(["设备", where.zh + "终端 · " + where.en + " terminal"]);
      } else {
        const s = screens[d.endpoint] || { name: d.endpoint, name_en: d.endpoint };
        rows.push(["设备", s.name + " · " + s.name_en]);
      }
      if (d.offline_since) {
        const at = L.time(d.offline_since, branch.timezone);
        rows.push(["离线自", at + " · offline since " + at]);
      }
      if (d.vip_redirect) rows.push(["影响", "贵宾引导提示无人看到 · the VIP redirect notice is not being seen"]);
    }
    if (page.kind === "long_service") {
      const c = categories[d.category] || { name: d.category, name_en: d.category };
      const serving = (d.serving_s || 0) + Math.max(0, (L.now() - Date.parse(page.created_at)) / 1000);
      rows.push(["号票", d.ticket + " · " + c.name + " · " + c.name_en]);
      rows.push(["已办理", minutes(serving) + " 分钟 · serving for " + minutes(serving) + " min"]);
    }
    if (page.kind === "queue_long") {
      const c = categories[d.category] || { name: d.category, name_en: d.category };
      rows.push(["业务", c.name + " · " + c.name_en]);
      rows.push(["等候", d.waiting + " 位，最长 " + minutes(d.longest_wait_s || 0) + " 分钟 · " + d.waiting +
                 " waiting, longest " + minutes(d.longest_wait_s || 0) + " min"]);
      const idle = (d.idle_counters || []).map(function (i) {
        const where = L.windowName(i.window);
        const status = COUNTER_STATUS[i.status] || [i.status, i.status];
        return [where.zh + status[0], where.en + " " + status[1]];
      });
      if (idle.length) {
        rows.push(["可开窗口", idle.map((i) => i[0]).join("、") + " · " + idle.map((i) => i[1]).join(", ")]);
      }
    }
    if (page.kind === "ask_supervisor") {
      questions(d).forEach((q) => rows.push(["问题", q]));
    } else if (d.note) {
      rows.push(["备注", d.note]);
    }
    return rows;
  }

  /** The message says again what the head, the window and the rows say for these: print it once. */
  function messageShown(page, rows) {
    if (CALLS.indexOf(page.kind) >= 0) return false;
    if (["endpoint_offline", "long_service", "queue_long"].indexOf(page.kind) >= 0) return rows.length === 0;
    if (page.kind === "pause" || page.kind === "pause_overrun") return rows.length <= 1;
    return true;
  }

  function button(cls, zh, en, onclick, extra) {
    return L.el("button", Object.assign({ class: "btn " + cls, type: "button", onclick }, extra || {}),
      zh, L.el("span", { lang: "en", text: en }));
  }

  function makeCard(page) {
    const c = {};
    const id = page.id;
    c.root = L.el("li", { class: "pg", id: "page-" + id, "data-page": id });
    c.prio = L.el("span", { class: "pg-prio" });
    c.kind = L.el("span", { class: "pg-kind" });
    c.test = L.el("span", { class: "pg-test", text: "演练 TEST", hidden: true });
    c.ago = L.el("span", { class: "pg-ago num" });
    c.where = L.el("p", { class: "pg-where" });
    c.message = L.el("p", { class: "pg-message" });
    c.details = L.el("dl", { class: "pg-details" });
    c.again = L.el("p", { class: "pg-again", role: "status" });
    c.meta = L.el("p", { class: "pg-meta" });
    c.ack = L.el("p", { class: "pg-acked" });
    c.replies = L.el("ul", { class: "pg-replies" });
    c.ackButton = button("btn-primary pg-ack", "确认前往", "On my way", () => act(id, "ack"));
    c.replyButton = button("pg-reply-toggle", "回复", "Reply", () => toggleReply(c, true), { "aria-expanded": "false" });
    c.resolveButton = button("pg-resolve", "处理完毕", "Resolve", () => act(id, "resolve"));
    c.presets = L.el("div", { class: "pg-presets", role: "group", "aria-label": "快捷回复 Discreet replies" });
    c.presetButtons = presetKeys.map(function (key) {
      const b = button("pg-preset", PRESETS[key].name, PRESETS[key].name_en, () => act(id, "reply", { preset: key }),
                       { "data-preset": key });
      c.presets.append(b);
      return b;
    });
    c.actions = L.el("div", { class: "pg-actions" }, c.ackButton, c.presets, c.replyButton, c.resolveButton);
    const inputId = "reply-" + id;
    c.input = L.el("input", { class: "input", id: inputId, type: "text", maxlength: "500", autocomplete: "off",
                              placeholder: "回复窗口 Reply" });
    c.form = L.el("form", { class: "pg-reply", hidden: true },
      L.el("label", { class: "visually-hidden", for: inputId, text: "回复 Reply" }),
      c.input,
      L.el("button", { class: "btn btn-primary", type: "submit" }, "发送", L.el("span", { lang: "en", text: "Send" })));
    c.form.addEventListener("submit", function (event) {
      event.preventDefault();
      const message = c.input.value.trim();
      if (message) act(id, "reply", { message });
    });
    c.root.append(
      L.el("div", { class: "pg-head" }, c.prio, c.test, c.kind, c.ago),
      c.where, c.message, c.details, c.again, c.meta, c.ack, c.replies, c.actions, c.form);
    return c;
  }

  function toggleReply(c, open) {
    c.form.hidden = !open;
    c.replyButton.setAttribute("aria-expanded", open ? "true" : "false");
    if (open) c.input.focus();
  }

  function fillCard(c, page) {
    const info = page.priority === INFORMATION;
    const discreet = DISCREET.indexOf(page.kind) >= 0;
    c.root.dataset.priority = page.priority;
    c.root.dataset.status = page.status;
    c.root.dataset.kind = page.kind;
    const p = PRIORITIES[page.priority] || { name: page.priority, name_en: page.priority };
    L.text(c.prio, p.name + " " + p.name_en);
    const k = kindOf(page);
    L.text(c.kind, k.name + " · " + k.name_en);
    c.test.hidden = !(page.details || {}).test;
    c.root.dataset.test = (page.details || {}).test ? "true" : "false";
    const ago = L.ago(page.created_at);
    L.text(c.ago, ago.zh);
    c.ago.title = ago.en + " · " + L.time(page.created_at, branch.timezone);
    const where = L.windowName(page.window);
    L.text(c.where, page.window ? where.zh + " · " + where.en : "");
    c.where.hidden = !page.window; // a screen or a line, not a counter's
    const rows = detailRows(page);
    L.text(c.message, page.message);
    c.message.hidden = !messageShown(page, rows);
    c.details.replaceChildren();
    rows.forEach(function (row) {
      c.details.append(L.el("div", { class: "pg-row" }, L.el("dt", { text: row[0] }), L.el("dd", { text: row[1] })));
    });
    const again = pressedAgain(page);
    c.root.dataset.again = again ? "true" : "false";
    L.text(c.again, again ? "再次按下 " + again + " 次 · Pressed again " + again + "× since acknowledged" : "");
    c.again.hidden = !again;
    const meta = [];
    if (page.presses > 1) meta.push("按了 " + page.presses + " 次 · pressed " + page.presses + "×");
    if (page.repeats > 0) meta.push("已重复提醒 " + page.repeats + " 次 · repeated " + page.repeats + "×");
    if (page.escalation_level > 0) {
      const top = page.paged && page.paged.length ? who(page.paged[page.paged.length - 1]) : null;
      meta.push("已升级" + (top ? "至 " + top.name : "") + " · escalated" + (top ? " to " + top.name_en : ""));
    }
    L.text(c.meta, meta.join(" · "));
    c.meta.hidden = meta.length === 0;
    if (page.acknowledged_by && !info) {
      const m = who(page.acknowledged_by);
      L.text(c.ack, "✓ " + m.name + " 已确认 " + L.time(page.acknowledged_at, branch.timezone) + " · " + m.name_en +
        " is on the way");
      c.ack.hidden = false;
    } else {
      c.ack.hidden = true;
    }
    c.replies.replaceChildren();
    (page.replies || []).forEach(function (r) {
      c.replies.append(L.el("li", {}, L.el("span", { class: "pg-reply-by", text: (r.by_name || who(r.by).name) + "：" }),
        L.el("span", { text: r.message })));
    });
    // Information: nobody has to act on it.
    c.actions.hidden = info;
    if (info) c.form.hidden = true;
    const waiting = !!busy[page.id];
    c.ackButton.hidden = page.status !== "open";
    c.ackButton.disabled = waiting;
    c.presets.hidden = !discreet;
    c.presetButtons.forEach((b) => { b.disabled = waiting; });
    c.replyButton.hidden = discreet || !page.counter; // a screen's or a line's page has no terminal to answer
    c.replyButton.disabled = waiting;
    c.resolveButton.disabled = waiting;
    if (discreet) c.form.hidden = true;
  }

  function render() {
    const list = L.$("#pages");
    const order = sorted();
    order.forEach(function (page, i) {
      let c = cards.get(page.id);
      if (!c) { c = makeCard(page); cards.set(page.id, c); }
      fillCard(c, page);
      if (list.children[i] !== c.root) list.insertBefore(c.root, list.children[i] || null);
    });
    cards.forEach(function (c, id) {
      if (!pages.has(id)) { c.root.remove(); cards.delete(id); }
    });
    L.text(L.$("#count"), String(order.length));
    L.text(L.$("#tab-count"), order.length ? String(order.length) : "");
    L.$("#empty").hidden = order.length > 0;
    updateAlarm();
  }

  // Alarm, vibration, notification.

  function ring() {
    L.sound.alarm();
    if (navigator.vibrate) navigator.vibrate([400, 200, 400, 200, 400]);
  }

  function chime() {
    L.sound.notify();
    if (navigator.vibrate) navigator.vibrate(200);
  }

  function stopAlarm() {
    if (alarmTimer) { clearInterval(alarmTimer); alarmTimer = null; }
    if (navigator.vibrate) navigator.vibrate(0);
  }

  /** The alarm sounds while an urgent page paged to this manager is open. */
  function updateAlarm() {
    const open = sorted().filter((p) => p.priority === "urgent" && p.status === "open");
    document.body.classList.toggle("has-urgent", open.length > 0);
    const sounding = open.some(mine);
    if (sounding && !alarmTimer) {
      ring();
      alarmTimer = setInterval(ring, ALARM_EVERY_MS);
    } else if (!sounding && alarmTimer) {
      stopAlarm();
    }
  }

  function notifySystem(page, again) {
    const k = kindOf(page);
    const title = ((page.details || {}).test ? "演练 TEST · " : "") + (again ? "再次按下 · " : "") + k.name +
      (page.window ? " · " + L.windowName(page.window).zh : "");
    showNotice(title, { body: page.message, tag: page.id + ":" + version(page),
                        requireInteraction: page.priority === "urgent" });
  }

  /** Show a system notification: through the service worker where there is one (a phone's browser refuses
   *  `new Notification` from a page), else from the page. */
  function showNotice(title, options) {
    if (!("Notification" in window) || Notification.permission !== "granted") return;
    if (worker) {
      worker.showNotification(title, options).catch(function () { pageNotice(title, options); });
      return;
    }
    pageNotice(title, options);
  }

  function pageNotice(title, options) {
    try {
      new Notification(title, options);
    } catch (err) {
      say("系统通知不可用，请留意本页的声音与震动 · System notifications are unavailable here: mind this page's sound",
          "error");
    }
  }

  /** Sound, vibrate and notify for a page's news, on the devices it concerns. change: the event's `change`
   *  ("created" for a new page, null for a copy from the list); live: it came by the stream. */
  function alertFor(page, change, first, live) {
    if (page.status === "resolved" || page.priority === INFORMATION) return;
    if (change === "pressed_again") {
      // The teller pressed after someone took it: every manager hears of it.
      if (live && recent(page)) { ring(); notifySystem(page, true); }
      return;
    }
    if (page.status !== "open" || !mine(page)) return;
    const urgent = page.priority === "urgent"; // the alarm (updateAlarm) sounds for these
    if (first) {
      if (live && !urgent) chime();
      if (urgent || page.priority === "high") notifySystem(page);
      return;
    }
    if (!live || !recent(page)) return;
    if (change === "escalated" && me && page.paged[page.paged.length - 1] === me.id) {
      if (!urgent) chime();
      notifySystem(page);
    } else if ((change === "repeated" || change === "pressed") && !urgent) {
      chime();
    }
  }

  function onPage(page, change, live) {
    const first = !pages.has(page.id) && !gone.has(page.id);
    if (!upsert(page)) return;
    render();
    alertFor(page, change, first, live);
  }

  function setupNotifications() {
    const button = L.$("#notify");
    if (!("Notification" in window) || Notification.permission !== "default") return;
    button.hidden = false;
    button.addEventListener("click", async function () {
      try { await Notification.requestPermission(); } catch (err) { /* refused */ }
      button.hidden = Notification.permission === "default";
    });
  }

  // Actions.

  function say(text, kind) {
    const node = L.$("#message");
    L.text(node, text);
    node.dataset.kind = kind || "info";
  }

  async function act(id, action, body) {
    if (busy[id]) return;
    busy[id] = true;
    render();
    const opts = { method: "POST", token, key: L.newKey(), body: action === "ack" ? undefined : body || {} };
    const answer = await L.apiRetrying(base + "/" + encodeURIComponent(id) + "/" + action, opts,
                                       { within: ACT_RETRY_MS });
    busy[id] = false;
    listOk = L.reached(answer);
    setOffline();
    if (refused(answer)) return;
    if (answer.ok && answer.data && answer.data.page) {
      upsert(answer.data.page);
      const c = cards.get(id);
      if (action === "reply" && c) { c.input.value = ""; toggleReply(c, false); }
      const preset = body && body.preset && PRESETS[body.preset];
      say(preset ? "已回复：" + preset.name + " · Replied: " + preset.name_en
        : { ack: "已确认，窗口已收到您正在赶来 · Acknowledged: the counter knows you are coming",
            reply: "已回复 · Reply sent", resolve: "已处理完毕 · Resolved" }[action], "ok");
    } else {
      const error = answer.error || {};
      if (error.page) upsert(error.page);
      if (error.code === "already_acknowledged" && error.page) {
        const m = who(error.page.acknowledged_by);
        say("已由 " + m.name + " 确认 · Already taken by " + m.name_en, "error");
      } else if (answer.status === 0) {
        say("网络中断，未能送出，请重试 · Offline: not sent, try again", "error");
      } else {
        say((error.message || "操作失败") + " · " + answer.status, "error");
      }
    }
    render();
  }

  // Loading and following.

  async function fetchList() {
    if (!token) return;
    const askedAt = Date.now();
    const answers = await Promise.all([L.api(base + "?status=open", { token }),
                                       L.api(base + "?status=acknowledged", { token }),
                                       me ? null : learnWhoIAm()]);
    for (const answer of answers.slice(0, 2)) if (refused(answer)) return "refused";
    if (answers[2] === "refused") return "refused";
    listOk = answers[0].ok && answers[1].ok;
    setOffline();
    if (!listOk) return;
    const present = new Set();
    answers.slice(0, 2).forEach((a) => (a.data.pages || []).forEach(function (p) {
      present.add(p.id);
      onPage(p, null, false);
    }));
    // Gone from both lists (resolved while we were away), unless an event told us of it since we asked.
    pages.forEach((entry, id) => { if (!present.has(id) && entry.seen < askedAt) pages.delete(id); });
    render();
  }

  function setOffline() {
    const live = Boolean(streamLive && listOk && navigator.onLine !== false);
    L.showLive(live);
    if (live) {
      clearTimeout(lostTimer);
      lostTimer = null;
      if (lostAlarm) stopLostAlarm();
    } else if (!lostTimer && !lostAlarm && token) {
      lostTimer = setTimeout(startLostAlarm, LOST_ALARM_MS);
    }
  }

  /** The device itself is in trouble: it has not reached the service for LOST_ALARM_MS. That is an alarm, with
   *  sound and vibration, until it is back: a page sent meanwhile cannot reach it. */
  function startLostAlarm() {
    lostTimer = null;
    L.$("#lost").hidden = false;
    ring();
    lostAlarm = setInterval(ring, ALARM_EVERY_MS);
    showNotice("连接中断 · Connection lost", { body: "新的呼叫到不了本机 · New pages cannot reach this device",
                                                 tag: "connection-lost", requireInteraction: true });
  }

  function stopLostAlarm() {
    clearInterval(lostAlarm);
    lostAlarm = null;
    L.$("#lost").hidden = true;
    if (navigator.vibrate) navigator.vibrate(0);
    if (alarmTimer) { clearInterval(alarmTimer); alarmTimer = null; }
    updateAlarm(); // a page that should still sound here sounds again
  }

  // The device as a pager: the screen kept awake, a shell that opens without the network, alarms that can sound.

  async function keepAwake() {
    if (!navigator.wakeLock || document.visibilityState !== "visible" || wakeLock) return;
    try {
      wakeLock = await navigator.wakeLock.request("screen");
      wakeLock.addEventListener("release", function () { wakeLock = null; });
    } catch (err) { /* refused (battery saver, not visible): the screen may sleep */ }
  }

  async function installWorker() {
    if (!navigator.serviceWorker) return;
    try {
      const root = "/branches/" + encodeURIComponent(branch.id);
      await navigator.serviceWorker.register(root + "/device-sw.js", { scope: root + "/device" });
      worker = await navigator.serviceWorker.ready;
    } catch (err) { worker = null; /* notifications come from the page, and there is no offline shell */ }
  }

  /** Alarms that cannot sound (the browser keeps audio off until the page is touched) are a warning of their
   *  own, across the screen, until a tap turns them on. */
  function checkSound() {
    L.$("#sound-warning").hidden = !token || L.sound.ready();
  }

  function revoked() {
    L.forgetToken(storageKey);
    stopHeartbeat();
    if (floorStream) { floorStream.close(); floorStream = null; }
    token = null;
    me = null;
    pages.clear();
    render();
    enroll("令牌已吊销，请重新登记。The token was revoked: enrol again.");
  }

  async function start() {
    if (!token) { enroll(); return; }
    L.$("#enroll").hidden = true;
    L.$("#board").hidden = false;
    if (await fetchList() === "refused") return;
    if (stream) stream.close();
    started = false;
    stream = L.follow(base + "/events?token=" + encodeURIComponent(token), {
      page: (event) => { if (event.page) onPage(event.page, "created", true); },
      page_updated: (event) => { if (event.page) onPage(event.page, event.change || null, true); },
    }, {
      onState: (live) => { streamLive = live; setOffline(); },
      // Every reconnection fetches the list again; so does the first, when the first fetch failed.
      onOpen: () => { if (started || !listOk) fetchList(); started = true; },
      onReset: fetchList,
      onRevoked: revoked,
    });
    clearInterval(refreshTimer);
    refreshTimer = setInterval(fetchList, REFRESH_MS);
    stopHeartbeat();
    stopHeartbeat = L.heartbeat(api + "/device/heartbeat", token, HEARTBEAT_S);
  }


  // The floor: the whole branch at a glance (GET …/floor and its stream), on the second tab.

  const STATUS_WORDS = { open: ["服务中", "open"], paused: ["暂停", "paused"], closed: ["关闭", "closed"] };
  const ENDPOINT_STATES = { live: ["在线", "live"], offline: ["离线", "offline"], unsupervised: ["未监控", "not supervised"] };
  let floorStream = null;

  /** m:ss of a number of seconds (h:mm:ss past an hour). */
  function clockOf(seconds) {
    const s = Math.max(0, Math.round(seconds));
    const h = Math.floor(s / 3600);
    const m = Math.floor((s % 3600) / 60);
    const rest = String(s % 60).padStart(2, "0");
    return h ? h + ":" + String(m).padStart(2, "0") + ":" + rest : m + ":" + rest;
  }

  function floorItem(attrs, name, zh, en, side, sideAttrs) {
    return L.el("li", Object.assign({ class: "fl-item" }, attrs),
      L.el("span", { class: "fl-name", text: name }),
      L.el("span", { class: "fl-what" }, zh, L.el("span", { class: "en", lang: "en", text: en })),
      L.el("span", Object.assign({ class: "fl-side num", text: side || "" }, sideAttrs || {})));
  }

  function counterItem(c) {
    const where = L.windowName(c.window);
    const status = STATUS_WORDS[c.status] || [c.status, c.status];
    let zh = status[0];
    let en = status[1];
    let side = "";
    const attrs = { "data-status": c.status, "data-counter": c.id };
    const sideAttrs = {};
    if (c.pause) {
      const r = reasons[c.pause.reason] || { name: c.pause.reason, name_en: c.pause.reason };
      zh += " · " + r.name;
      en += " · " + r.name_en;
      const over = c.pause.left_s < 0;
      attrs["data-over"] = over ? "true" : "false";
      side = over ? "超时 " + clockOf(-c.pause.left_s) : "剩 " + clockOf(c.pause.left_s);
      en += over ? " · over by " + clockOf(-c.pause.left_s) : " · " + clockOf(c.pause.left_s) + " left";
    } else if (c.serving) {
      zh += " · 办理 " + c.serving.ticket;
      en += " · serving " + c.serving.ticket;
      if (c.serving.serving_s !== null) side = clockOf(c.serving.serving_s);
      sideAttrs["data-long"] = c.serving.long ? "true" : "false";
      if (c.serving.long) en += " · long";
    } else if (c.status === "open") {
      zh += " · 空闲";
      en += " · idle";
    }
    return floorItem(attrs, where.zh, zh, en, side, sideAttrs);
  }

  function lineItem(line) {
    const c = categories[line.category] || { name: line.category, name_en: line.category };
    const estimate = line.estimated_wait_s === null ? L.noCounter : L.wait(line.estimated_wait_s);
    const longest = line.longest_wait_s === null ? "" : "最长 " + clockOf(line.longest_wait_s);
    return floorItem({ "data-category": line.category }, c.name, line.waiting + " 人等候 · 新取号" + estimate.zh,
                     line.waiting + " waiting · a ticket now: " + estimate.en, longest, { title: "最长等候 longest wait" });
  }

  function endpointItem(e) {
    let name = e.subject;
    if (e.kind === "terminal") name = L.windowName((branch.counters.find((c) => c.id === e.subject) || {}).window || e.subject).zh;
    else if (e.kind === "device") name = (managers[e.subject] || { name: e.subject }).name;
    else name = (screens[e.subject] || { name: e.subject }).name;
    const kind = { display: ["叫号屏", "display"], kiosk: ["取号机", "kiosk"], terminal: ["终端", "terminal"],
                   device: ["设备", "device"] }[e.kind] || [e.kind, e.kind];
    const state = ENDPOINT_STATES[e.state] || [e.state, e.state];
    const since = e.since ? L.time(e.since, branch.timezone) : "";
    const zh = kind[0] + " · " + state[0] + (since ? " · 自 " + since : "");
    const en = kind[1] + " · " + state[1] + (since ? " since " + since : "");
    return floorItem({ "data-state": e.state, "data-endpoint": e.endpoint }, name, zh, en, "");
  }

  function renderFloor(floor) {
    const redirects = (floor.redirects || []).map(function (r) {
      const c = categories[r.category] || { name: r.category, name_en: r.category };
      if (!r.to_window) return c.name + "：暂无开放窗口 · " + c.name_en + ": no open counter";
      const to = L.windowName(r.to_window);
      return c.name + " 引导至 " + to.zh + " · " + c.name_en + " to " + to.en;
    });
    L.text(L.$("#floor-redirects"), redirects.join("；"));
    L.$("#floor-counters").replaceChildren(...floor.counters.map(counterItem));
    L.$("#floor-lines").replaceChildren(...floor.lines.map(lineItem));
    L.$("#floor-endpoints").replaceChildren(...floor.endpoints.filter((e) => e.state !== "unsupervised")
      .concat(floor.endpoints.filter((e) => e.state === "unsupervised")).map(endpointItem));
    L.text(L.$("#floor-at"), "更新于 " + L.time(floor.at, branch.timezone, true) + " · updated");
  }

  function followFloor() {
    if (floorStream || !token) return;
    floorStream = L.follow(api + "/floor/events?token=" + encodeURIComponent(token), { floor: renderFloor },
                           { resume: false, onRevoked: revoked });
  }

  function showTab(name) {
    const floorShown = name === "floor";
    L.$("#view-pages").hidden = floorShown;
    L.$("#view-floor").hidden = !floorShown;
    L.$("#tab-pages").setAttribute("aria-selected", floorShown ? "false" : "true");
    L.$("#tab-floor").setAttribute("aria-selected", floorShown ? "true" : "false");
    if (floorShown) followFloor();
  }

  L.$("#tab-pages").addEventListener("click", () => showTab("pages"));
  L.$("#tab-floor").addEventListener("click", () => showTab("floor"));

  L.$("#sound-warning").addEventListener("click", function () { L.sound.unlock(); setTimeout(checkSound, 200); });
  document.addEventListener("pointerdown", function () { setTimeout(checkSound, 200); });
  setInterval(checkSound, 2000);
  document.addEventListener("visibilitychange", keepAwake);
  keepAwake();
  installWorker();
  L.clock(L.$("#clock"), branch.timezone);
  L.soundPrompt(L.$("#sound"));
  setupNotifications();
  // Ages and overruns move with the clock.
  setInterval(function () { if (pages.size) render(); }, 15000);
  window.addEventListener("online", setOffline);
  window.addEventListener("offline", setOffline);
  start();
})();
