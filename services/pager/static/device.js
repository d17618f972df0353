/* The manager's device (a phone): open pages, most urgent first, then oldest; acknowledge, reply, resolve.
 *
 * Urgent pages that nobody has acknowledged sound an alarm (Web Audio) and vibrate, again and again, and
 * raise a system notification where permitted. The feed reconnects by itself from the last event it saw
 * (Last-Event-ID, or ?since= on a new connection) and the list is fetched again on every reconnection, so
 * an outage costs nothing. The token comes once in the address (?token=) and the page keeps it.
 */
(function () {
  "use strict";
  const L = window.Lobby;
  const data = L.data();
  const branch = data.branch;
  const storageKey = "lobby.device." + branch.id;
  const base = "/api/v1/branches/" + encodeURIComponent(branch.id) + "/pages";
  const PRIORITY = { urgent: 0, high: 1, normal: 2, low: 3 };
  const PRIORITY_WORDS = { urgent: ["紧急", "Urgent"], high: ["高", "High"], normal: ["普通", "Normal"],
                           low: ["低", "Low"] };
  const KIND = {
    distress: ["紧急求助", "Distress"], help: ["需要协助", "Help"], ask_supervisor: ["请示主管", "Question"],
    pause: ["窗口暂停", "Counter paused"], pause_overrun: ["暂停超时", "Pause overrun"],
    resume: ["恢复服务", "Counter resumed"], vip_wait: ["贵宾久等", "VIP waiting long"],
  };
  const ALARM_EVERY_MS = 3000;
  const REFRESH_MS = 30000;

  let token = L.keepToken(storageKey);
  const pages = new Map(); // id -> {page, seen}
  const cards = new Map(); // id -> card elements
  const notified = new Set();
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

  function who(id) { return managers[id] || { name: id || "", name_en: id || "" }; }

  // Enrolment.

  function enroll(reason) {
    if (stream) { stream.close(); stream = null; }
    L.$("#board").hidden = true;
    L.$("#enroll").hidden = false;
    if (reason) L.text(L.$("#enroll-reason"), reason);
    stopAlarm();
  }

  const refused = L.enrolment(storageKey, {
    use(value) { token = value; }, start, enroll,
    forbidden: "此令牌不能查看本支行的呼叫。This token may not read this branch's pages.",
  });

  // The pages.

  function version(page) { return (page.audit || []).length; }

  /** Keep the newer of two copies of a page (a list fetched while events arrive may be older). */
  function upsert(page, live) {
    const known = pages.get(page.id);
    if (known && version(known.page) > version(page)) return false;
    if (gone.has(page.id) && gone.get(page.id) >= version(page)) return false;
    if (page.status === "resolved") {
      pages.delete(page.id);
      gone.set(page.id, version(page));
      return true;
    }
    pages.set(page.id, { page, seen: Date.now() });
    if (!notified.has(page.id)) {
      notified.add(page.id);
      if (page.status === "open") announce(page, live);
    }
    return true;
  }

  function sorted() {
    return Array.from(pages.values()).map((p) => p.page).sort(function (a, b) {
      const byPriority = (PRIORITY[a.priority] ?? 9) - (PRIORITY[b.priority] ?? 9);
      return byPriority || Date.parse(a.created_at) - Date.parse(b.created_at);
    });
  }

  function detailRows(page) {
    const d = page.details || {};
    const rows = [];
    if (page.kind === "pause" || page.kind === "pause_overrun") {
      const r = reasons[d.reason] || { name: d.reason_name || d.reason, name_en: d.reason_name_en || "" };
      if (d.reason) rows.push(["原因", r.name + (r.name_en ? " · " + r.name_en : "")]);
      if (d.expected_minutes) rows.push(["预计", d.expected_minutes + " 分钟 · " + d.expected_minutes + " min"]);
      if (d.vip_waiting !== undefined && d.vip_waiting !== null) {
        let text = d.vip_waiting + " 位 · " + d.vip_waiting + " waiting";
        if (d.vip_waiting && d.longest_vip_wait_s !== null && d.longest_vip_wait_s !== undefined) {
          text += "，最长 " + Math.max(1, Math.round(d.longest_vip_wait_s / 60)) + " 分钟";
        }
        rows.push(["贵宾等候", text]);
      }
      if (d.redirect_window) rows.push(["引导至", L.windowName(d.redirect_window).zh + " · " +
                                        L.windowName(d.redirect_window).en]);
    }
    if (page.kind === "ask_supervisor") {
      const questions = (d.questions && d.questions.length) ? d.questions : (d.question ? [d.question] : []);
      questions.forEach((q) => rows.push(["问题", q]));
    } else if (d.note) {
      rows.push(["备注", d.note]);
    }
    return rows;
  }

  function makeCard(page) {
    const c = {};
    c.root = L.el("li", { class: "pg", id: "page-" + page.id, "data-page": page.id });
    c.prio = L.el("span", { class: "pg-prio" });
    c.kind = L.el("span", { class: "pg-kind" });
    c.ago = L.el("span", { class: "pg-ago num" });
    c.where = L.el("p", { class: "pg-where" });
    c.message = L.el("p", { class: "pg-message" });
    c.details = L.el("dl", { class: "pg-details" });
    c.meta = L.el("p", { class: "pg-meta" });
    c.ack = L.el("p", { class: "pg-acked" });
    c.replies = L.el("ul", { class: "pg-replies" });
    c.ackButton = L.el("button", { class: "btn btn-primary pg-ack", type: "button", onclick: () => act(page.id, "ack") },
      "确认前往", L.el("span", { lang: "en", text: "On my way" }));
    c.replyButton = L.el("button", { class: "btn pg-reply-toggle", type: "button", "aria-expanded": "false",
                                     onclick: () => toggleReply(c, true) },
      "回复", L.el("span", { lang: "en", text: "Reply" }));
    c.resolveButton = L.el("button", { class: "btn pg-resolve", type: "button", onclick: () => act(page.id, "resolve") },
      "处理完毕", L.el("span", { lang: "en", text: "Resolve" }));
    const inputId = "reply-" + page.id;
    c.input = L.el("input", { class: "input", id: inputId, type: "text", maxlength: "500", autocomplete: "off",
                              placeholder: "回复窗口 Reply" });
    c.form = L.el("form", { class: "pg-reply", hidden: true },
      L.el("label", { class: "visually-hidden", for: inputId, text: "回复 Reply" }),
      c.input,
      L.el("button", { class: "btn btn-primary", type: "submit" }, "发送", L.el("span", { lang: "en", text: "Send" })));
    c.form.addEventListener("submit", function (event) {
      event.preventDefault();
      const message = c.input.value.trim();
      if (message) act(page.id, "reply", message);
    });
    c.root.append(
      L.el("div", { class: "pg-head" }, c.prio, c.kind, c.ago),
      c.where, c.message, c.details, c.meta, c.ack, c.replies,
      L.el("div", { class: "pg-actions" }, c.ackButton, c.replyButton, c.resolveButton), c.form);
    return c;
  }

  function toggleReply(c, open) {
    c.form.hidden = !open;
    c.replyButton.setAttribute("aria-expanded", open ? "true" : "false");
    if (open) c.input.focus();
  }

  function fillCard(c, page) {
    c.root.dataset.priority = page.priority;
    c.root.dataset.status = page.status;
    c.root.dataset.kind = page.kind;
    const p = PRIORITY_WORDS[page.priority] || [page.priority, page.priority];
    L.text(c.prio, p[0] + " " + p[1]);
    const k = KIND[page.kind] || [page.kind, page.kind];
    L.text(c.kind, k[0] + " · " + k[1]);
    const ago = L.ago(page.created_at);
    L.text(c.ago, ago.zh);
    c.ago.title = ago.en + " · " + L.time(page.created_at, branch.timezone);
    const where = L.windowName(page.window);
    L.text(c.where, where.zh + " · " + where.en);
    const rows = detailRows(page);
    L.text(c.message, page.message);
    c.message.hidden = page.kind === "pause" && rows.length > 1; // the rows below say it, in both languages
    c.details.replaceChildren();
    rows.forEach(function (row) {
      c.details.append(L.el("div", { class: "pg-row" }, L.el("dt", { text: row[0] }), L.el("dd", { text: row[1] })));
    });
    const meta = [];
    if (page.presses > 1) meta.push("按了 " + page.presses + " 次 · pressed " + page.presses + "×");
    if (page.repeats > 0) meta.push("已重复提醒 " + page.repeats + " 次");
    if (page.escalation_level > 0) {
      const top = page.paged && page.paged.length ? who(page.paged[page.paged.length - 1]) : null;
      meta.push("已升级" + (top ? "至 " + top.name : "") + " · escalated" + (top ? " to " + top.name_en : ""));
    }
    L.text(c.meta, meta.join(" · "));
    c.meta.hidden = meta.length === 0;
    if (page.acknowledged_by) {
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
    c.ackButton.hidden = page.status !== "open";
    c.ackButton.disabled = !!busy[page.id];
    c.resolveButton.disabled = !!busy[page.id];
    c.replyButton.disabled = !!busy[page.id];
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
    L.$("#empty").hidden = order.length > 0;
    updateAlarm();
  }

  // Alarm, vibration, notification.

  function ring() {
    L.sound.alarm();
    if (navigator.vibrate) navigator.vibrate([400, 200, 400, 200, 400]);
  }

  function stopAlarm() {
    if (alarmTimer) { clearInterval(alarmTimer); alarmTimer = null; }
    if (navigator.vibrate) navigator.vibrate(0);
  }

  function updateAlarm() {
    const urgent = sorted().some((p) => p.priority === "urgent" && p.status === "open");
    document.body.classList.toggle("has-urgent", urgent);
    if (urgent && !alarmTimer) {
      ring();
      alarmTimer = setInterval(ring, ALARM_EVERY_MS);
    } else if (!urgent && alarmTimer) {
      stopAlarm();
    }
  }

  function announce(page, live) {
    if (page.priority !== "urgent" && live) {
      L.sound.notify();
      if (navigator.vibrate) navigator.vibrate(200);
    }
    if ((page.priority === "urgent" || page.priority === "high") && "Notification" in window &&
        Notification.permission === "granted") {
      const k = KIND[page.kind] || [page.kind, page.kind];
      try {
        new Notification(k[0] + " · " + L.windowName(page.window).zh, {
          body: page.message, tag: page.id, requireInteraction: page.priority === "urgent",
        });
      } catch (err) { /* a phone's browser may only notify through a service worker */ }
    }
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

  async function act(id, action, message) {
    if (busy[id]) return;
    busy[id] = true;
    render();
    const opts = { method: "POST", token, key: L.newKey() };
    if (action === "reply") opts.body = { message };
    if (action === "resolve") opts.body = {};
    const answer = await L.api(base + "/" + encodeURIComponent(id) + "/" + action, opts);
    busy[id] = false;
    if (refused(answer)) return;
    if (answer.ok && answer.data && answer.data.page) {
      upsert(answer.data.page, false);
      const c = cards.get(id);
      if (action === "reply" && c) { c.input.value = ""; toggleReply(c, false); }
      say({ ack: "已确认，窗口已收到您正在赶来 · Acknowledged: the counter knows you are coming",
            reply: "已回复 · Reply sent", resolve: "已处理完毕 · Resolved" }[action], "ok");
    } else {
      const error = answer.error || {};
      if (error.page) upsert(error.page, false);
      if (error.code === "already_acknowledged" && error.page) {
        const m = who(error.page.acknowledged_by);
        say("已由 " + m.name + " 确认 · Already taken by " + m.name_en, "error");
      } else {
        say((error.message || "操作失败") + " · " + (answer.status || "offline"), "error");
      }
    }
    render();
  }

  // Loading and following.

  async function fetchList() {
    const askedAt = Date.now();
    const answers = await Promise.all([L.api(base + "?status=open", { token }),
                                       L.api(base + "?status=acknowledged", { token })]);
    for (const answer of answers) if (refused(answer)) return "refused";
    listOk = answers.every((a) => a.ok);
    setOffline();
    if (!listOk) return;
    const present = new Set();
    answers.forEach((a) => (a.data.pages || []).forEach((p) => { present.add(p.id); upsert(p, false); }));
    // Gone from both lists (resolved while we were away), unless an event told us of it since we asked.
    pages.forEach((entry, id) => { if (!present.has(id) && entry.seen < askedAt) pages.delete(id); });
    render();
  }

  function setOffline() {
    L.showLive(streamLive && listOk && navigator.onLine !== false);
  }

  async function start() {
    if (!token) { enroll(); return; }
    L.$("#enroll").hidden = true;
    L.$("#board").hidden = false;
    if (await fetchList() === "refused") return;
    if (stream) stream.close();
    stream = L.follow(base + "/events?token=" + encodeURIComponent(token), {
      page: (event) => { if (event.page) { upsert(event.page, true); render(); } },
      page_updated: (event) => { if (event.page) { upsert(event.page, true); render(); } },
    }, {
      onState: (live) => { streamLive = live; setOffline(); },
      onOpen: () => { if (started) fetchList(); started = true; },
    });
    clearInterval(refreshTimer);
    refreshTimer = setInterval(fetchList, REFRESH_MS);
  }

  L.clock(L.$("#clock"), branch.timezone);
  L.soundPrompt(L.$("#sound"));
  setupNotifications();
  setInterval(function () { cards.forEach((c, id) => { const e = pages.get(id); if (e) L.text(c.ago, L.ago(e.page.created_at).zh); }); }, 15000);
  window.addEventListener("online", setOffline);
  window.addEventListener("offline", setOffline);
  start();
})();
