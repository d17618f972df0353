/* The teller's terminal: call, recall, complete, no-show; pause and resume; the three alert buttons.
 *
 * Keyboard: F1 call next, F2 recall, F3 complete, F4 no-show, F7 help, F8 ask a supervisor, F9 silent call
 * (distress), so a teller can call for help without reaching for the mouse. A distress call shows only a
 * small grey confirmation: no colour, no sound, no dialog.
 *
 * The token comes once in the address (?token=); the page keeps it (localStorage) and takes it out of the
 * address bar.
 */
(function () {
  "use strict";
  const L = window.Lobby;
  const data = L.data();
  const branch = data.branch;
  const counterCfg = data.counter;
  const storageKey = "lobby.terminal." + branch.id + "." + counterCfg.id;
  const alertsKey = storageKey + ".alerts";
  const base = "/api/v1/branches/" + encodeURIComponent(branch.id) + "/counters/" + encodeURIComponent(counterCfg.id);
  const waitingUrl = "/branches/" + encodeURIComponent(branch.id) + "/counters/" + encodeURIComponent(counterCfg.id) +
    "/terminal/waiting";
  const ACTIONS = { F1: "call-next", F2: "recall", F3: "complete", F4: "no-show" };
  const RESTORE_WITHIN_MS = 12 * 3600 * 1000;
  const KIND = {
    distress: ["静默呼叫", "Silent call"],
    help: ["需要协助", "Help"],
    ask_supervisor: ["请示主管", "Question"],
    pause: ["暂停通知", "Pause reported"],
    resume: ["恢复通知", "Resume reported"],
  };
  const ERRORS = {
    counter_paused: "窗口暂停中，请先恢复服务 · The counter is paused: resume it first",
    counter_closed: "窗口已关闭 · The counter is closed",
    not_serving: "当前没有客户 · No customer at this counter",
    not_paused: "窗口未暂停 · The counter is not paused",
    recall_limit: "已达重呼次数上限，请完成或过号 · Recall limit reached: complete it or mark it no-show",
    still_serving: "请先完成当前客户再关闭窗口 · Finish the current customer before closing",
    same_counter: "不能转给本窗口 · Not to this counter",
    offline: "网络中断，请稍后重试 · Offline: try again in a moment",
  };

  let token = L.keepToken(storageKey);
  let counter = null;
  let waiting = {};
  const alerts = new Map(); // id -> {id, kind, note, at, status, by, reply, replyBy}
  const busy = {};
  let acting = false;
  let streams = [];
  let quietTimer = null;

  const managers = {};
  branch.managers.forEach((m) => { managers[m.id] = m; managers[m.name] = m; });
  const categories = {};
  branch.categories.forEach((c) => { categories[c.id] = c; });

  // Enrolment: the token.

  function enroll(reason) {
    streams.forEach((s) => s.close());
    streams = [];
    L.$("#desk").hidden = true;
    L.$("#enroll").hidden = false;
    if (reason) L.text(L.$("#enroll-reason"), reason);
    L.$("#enroll-token").focus();
  }

  const refused = L.enrolment(storageKey, {
    use(value) { token = value; }, start, enroll,
    forbidden: "此令牌不属于本窗口。This token belongs to another counter or branch.",
  });

  // The counter.

  function applyCounter(next) {
    counter = next;
    const pill = L.$("#status-pill");
    const words = { open: "服务中 Open", paused: "暂停 Paused", closed: "已关闭 Closed" }[counter.status] || counter.status;
    L.text(pill, words);
    pill.dataset.status = counter.status;

    const serving = counter.serving;
    L.text(L.$("#serving-number"), serving ? serving.number : "—");
    if (serving) {
      const c = categories[serving.category];
      const parts = [c ? c.name + " " + c.name_en : serving.category];
      if (serving.called_at) parts.push("叫号 " + L.time(serving.called_at, branch.timezone) + " called");
      if (serving.recalls) parts.push("重呼 " + serving.recalls + " 次 · recalled " + serving.recalls + "×");
      L.text(L.$("#serving-detail"), parts.join(" · "));
    } else {
      L.text(L.$("#serving-detail"), "暂无客户 · No customer");
    }
    const open = counter.status === "open";
    L.$("#call-next").disabled = !open || acting;
    ["recall", "complete", "no-show"].forEach((a) => { L.$("#" + a).disabled = !serving || acting; });

    const paused = counter.status === "paused" && counter.pause;
    const closed = counter.status === "closed";
    L.$("#pause-form").hidden = !!paused || closed;
    L.$("#pause").disabled = !open;
    L.$("#close").disabled = !open || !!serving || acting;
    L.$("#paused").hidden = !paused;
    L.$("#closed").hidden = !closed;
    L.$("#transfer-form").hidden = !serving;
    L.$("#transfer").disabled = acting;
    if (serving) fillTransfer(serving);
    if (paused) {
      const reason = branch.pause_reasons.find((r) => r.id === counter.pause.reason);
      const name = reason ? reason.name + " " + reason.name_en : counter.pause.reason;
      L.text(L.$("#paused-text"), "已暂停：" + name + " · 约 " + counter.pause.expected_minutes + " 分钟，至 " +
        L.time(counter.pause.until, branch.timezone) + " · until " + L.time(counter.pause.until, branch.timezone));
      L.text(L.$("#paused-note"), counter.pause.note ? "备注 Note: " + counter.pause.note : "");
    }
    renderWaiting();
  }

  function renderWaiting() {
    const list = L.$("#waiting");
    list.replaceChildren();
    const serves = (counter && counter.serves && counter.serves.length) ? counter.serves : counterCfg.serves;
    serves.forEach(function (id) {
      const c = categories[id] || { name: id, name_en: id, prefix: "" };
      const w = waiting[id] || { count: 0, estimated_wait_s: null };
      const wait = L.wait(w.estimated_wait_s);
      const redirected = counterCfg.serves.indexOf(id) < 0;
      list.append(L.el("li", { class: "term-waiting-item" + (redirected ? " is-redirected" : "") },
        L.el("span", { class: "tw-prefix", "aria-hidden": "true", text: c.prefix }),
        L.el("span", { class: "tw-name" }, c.name + " ", L.el("span", { class: "en", lang: "en", text: c.name_en }),
          redirected ? L.el("span", { class: "tw-tag", text: "转入 redirected" }) : null),
        L.el("span", { class: "tw-count num", text: String(w.count) }),
        L.el("span", { class: "tw-wait", text: wait.zh })));
    });
  }

  /** Read the counter; "refused" when the token is not this counter's (the page is back at enrolment). */
  /** Where the ticket being served can go: another category's line, or another counter. */
  function fillTransfer(ticket) {
    const select = L.$("#transfer-to");
    const key = ticket.number + ":" + ticket.category;
    if (select.dataset.for === key) return;
    select.dataset.for = key;
    select.replaceChildren();
    const lines = L.el("optgroup", { label: "业务类型 Service" });
    branch.categories.filter((c) => c.id !== ticket.category).forEach(function (c) {
      lines.append(L.el("option", { value: "category:" + c.id, text: c.name + " · " + c.name_en }));
    });
    const desks = L.el("optgroup", { label: "窗口 Counter" });
    branch.counters.filter((c) => c.id !== counterCfg.id).forEach(function (c) {
      const where = L.windowName(c.window);
      desks.append(L.el("option", { value: "counter:" + c.id, text: where.zh + " · " + where.en }));
    });
    select.append(lines, desks);
  }

  async function refreshCounter() {
    const answer = await L.api(base, { token });
    if (refused(answer)) return "refused";
    if (answer.ok && answer.data) applyCounter(answer.data.counter);
    return answer.ok;
  }

  function say(text, kind) {
    const node = L.$("#message");
    L.text(node, text);
    node.dataset.kind = kind || "info";
  }

  function errorText(answer) {
    const code = answer.error && answer.error.code;
    return ERRORS[code] || (answer.error && answer.error.message) || ("出错了 Error " + answer.status);
  }

  /** One calling action at a time: the next waits until the last is answered and shown. */
  async function act(action) {
    if (acting || !counter) return;
    const button = L.$("#" + action);
    if (button.disabled) return;
    acting = true;
    applyCounter(counter);
    const answer = await L.api(base + "/" + action, { method: "POST", token, key: L.newKey() });
    if (refused(answer)) { acting = false; return; }
    if (answer.ok) {
      const ticket = answer.data && answer.data.ticket;
      if (action === "call-next") say(ticket ? "已叫号 " + ticket.number + " · Called " + ticket.number
        : "暂无等候客户 · Nobody is waiting", ticket ? "ok" : "info");
      else if (action === "recall") say("已重呼 " + ticket.number + " · Called again", "ok");
      else if (action === "complete") say(ticket.number + " 已完成 · Served", "ok");
      else if (action === "no-show") say(ticket.number + " 已过号 · No-show", "ok");
    } else {
      say(errorText(answer), "error");
    }
    await refreshCounter();
    acting = false;
    if (counter) applyCounter(counter);
  }

  /** Open, close, transfer: one request, then the counter as it is now. */
  async function change(path, body, done) {
    if (acting) return;
    acting = true;
    applyCounter(counter);
    const answer = await L.api(base + "/" + path, { method: "POST", token, key: L.newKey(), body });
    acting = false;
    if (refused(answer)) return;
    if (answer.ok) say(done(answer.data), "ok");
    else say(errorText(answer), "error");
    await refreshCounter();
  }

  L.$("#open").addEventListener("click", () => change("open", undefined, () => "窗口已开启 · Open"));
  L.$("#close").addEventListener("click", () => change("close", undefined, () => "窗口已关闭 · Closed"));
  L.$("#transfer-form").addEventListener("submit", function (event) {
    event.preventDefault();
    const [kind, id] = L.$("#transfer-to").value.split(":");
    const target = kind === "category" ? branch.categories.find((c) => c.id === id)
      : branch.counters.find((c) => c.id === id);
    const label = kind === "category" ? target.name : L.windowName(target.window).zh;
    change("transfer", kind === "category" ? { category: id } : { counter: id },
           (d) => (d && d.ticket ? d.ticket.number : "") + " 已转至 " + label + " · Transferred");
  });

  // Pause and resume.

  function fillReasons() {
    const select = L.$("#pause-reason");
    branch.pause_reasons.forEach(function (r) {
      select.append(L.el("option", { value: r.id, text: r.name + " · " + r.name_en }));
    });
  }

  L.$("#pause-form").addEventListener("submit", async function (event) {
    event.preventDefault();
    if (busy.pause) return;
    const minutes = parseInt(L.$("#pause-minutes").value, 10);
    if (!(minutes >= 1 && minutes <= 240)) { say("请填写 1 到 240 分钟 · Minutes: 1 to 240", "error"); return; }
    const body = { reason: L.$("#pause-reason").value, expected_minutes: minutes };
    const note = L.$("#pause-note").value.trim();
    if (note) body.note = note;
    busy.pause = true;
    L.$("#pause").disabled = true;
    const answer = await L.api(base + "/pause", { method: "POST", token, key: L.newKey(), body });
    busy.pause = false;
    if (refused(answer)) return;
    if (answer.ok) {
      L.$("#pause-note").value = "";
      say("已暂停，已通知大堂经理 · Paused; the lobby manager has been told", "ok");
      applyCounter(answer.data.counter);
    } else {
      say(errorText(answer), "error");
      await refreshCounter();
    }
  });

  L.$("#resume").addEventListener("click", async function () {
    if (busy.resume) return;
    busy.resume = true;
    L.$("#resume").disabled = true;
    const answer = await L.api(base + "/resume", { method: "POST", token, key: L.newKey() });
    busy.resume = false;
    L.$("#resume").disabled = false;
    if (refused(answer)) return;
    if (answer.ok) { say("已恢复服务 · Open again", "ok"); applyCounter(answer.data.counter); }
    else { say(errorText(answer), "error"); await refreshCounter(); }
  });

  // Alerts.

  function remember() {
    const kept = Array.from(alerts.values()).slice(-10).map((a) => ({ id: a.id, kind: a.kind, note: a.note, at: a.at }));
    try { localStorage.setItem(alertsKey, JSON.stringify(kept)); } catch (err) { /* memory only */ }
  }

  function mergeAlert(alert, extra) {
    const known = alerts.get(alert.id) || { id: alert.id, kind: alert.kind, at: alert.created_at };
    known.status = alert.status || known.status;
    if (alert.acknowledged_by) known.by = alert.acknowledged_by;
    if (alert.reply) known.reply = alert.reply;
    Object.assign(known, extra || {});
    alerts.set(alert.id, known);
    return known;
  }

  function renderAlerts() {
    const list = L.$("#alerts");
    list.replaceChildren();
    Array.from(alerts.values()).filter((a) => KIND[a.kind] && a.kind !== "resume").slice(-6).reverse()
      .forEach(function (a) {
        const words = KIND[a.kind];
        const title = L.el("p", { class: "al-title" },
          L.el("span", { class: "al-kind", text: words[0] + " " + words[1] }),
          L.el("span", { class: "al-time num", text: L.time(a.at, branch.timezone) }));
        const item = L.el("li", { class: "al-item", "data-kind": a.kind, "data-status": a.status || "sent" }, title);
        if (a.note && a.kind === "ask_supervisor") item.append(L.el("p", { class: "al-note", text: a.note }));
        let state;
        if (a.status === "acknowledged" || a.status === "resolved") {
          const who = managers[a.by] || { name: a.by || "大堂经理", name_en: "The lobby manager" };
          if (a.kind === "pause") state = who.name + " 已知悉 · " + who.name_en + " has seen it";
          else if (a.kind === "ask_supervisor" && a.reply && a.status !== "resolved") {
            state = who.name + " 已答复 · " + who.name_en + " answered";
          }
          else if (a.status === "resolved") state = who.name + " 已处理 · resolved by " + who.name_en;
          else state = who.name + " 正在赶来 · " + who.name_en + " is coming";
        } else {
          state = "已发送，等待回应 · Sent, waiting for an answer";
        }
        item.append(L.el("p", { class: "al-state", "data-role": "state", text: state }));
        if (a.reply) {
          const who = managers[a.replyBy] || { name: a.replyBy || "大堂经理" };
          item.append(L.el("p", { class: "al-reply" }, L.el("span", { class: "al-reply-by", text: who.name + "：" }),
            L.el("span", { class: "al-reply-text", text: a.reply })));
        }
        list.append(item);
      });
  }

  function quietly(text) {
    const node = L.$("#quiet-ack");
    L.text(node, text);
    clearTimeout(quietTimer);
    quietTimer = setTimeout(() => L.text(node, ""), 8000);
  }

  async function raise(kind, note) {
    if (busy[kind]) return;
    busy[kind] = true;
    const body = { kind };
    if (note) body.note = note;
    const answer = await L.api(base + "/alerts", { method: "POST", token, key: L.newKey(), body });
    busy[kind] = false;
    if (refused(answer)) return;
    if (answer.ok && answer.data && answer.data.alert) {
      mergeAlert(answer.data.alert, { note: note || null });
      remember();
      renderAlerts();
      if (kind === "distress") quietly("✓ " + L.time(new Date(L.now()), branch.timezone));
      else quietly("✓ 已通知大堂经理 · The lobby manager has been paged");
      return true;
    }
    if (kind === "distress") quietly("× " + L.time(new Date(L.now()), branch.timezone) + " 未发送，请重按 F9");
    else say(errorText(answer), "error");
    return false;
  }

  L.$$(".actions [data-action]").forEach(function (button) {
    button.addEventListener("click", () => act(button.dataset.action));
  });
  L.$("#help").addEventListener("click", () => raise("help"));
  L.$("#distress").addEventListener("click", () => raise("distress"));
  L.$("#ask-form").addEventListener("submit", async function (event) {
    event.preventDefault();
    const input = L.$("#ask-note");
    const note = input.value.trim();
    if (!note) { input.focus(); return; }
    if (await raise("ask_supervisor", note)) input.value = "";
  });

  function onAcknowledged(event) {
    const alert = event.alert;
    if (!alert) return;
    const by = event.by || alert.acknowledged_by;
    if (alerts.has(alert.id)) {
      mergeAlert(alert, { by });
    } else {
      // A press folded into an earlier page: the event names the page's first alert; mark ours of that kind.
      let matched = false;
      alerts.forEach((a) => { if (a.kind === alert.kind && a.status === "sent") { a.status = alert.status; a.by = by; matched = true; } });
      if (!matched) mergeAlert(alert, { by });
    }
    renderAlerts();
    remember();
  }

  function onReply(event) {
    const alert = event.alert;
    if (!alert) return;
    const extra = { reply: event.message, replyBy: event.by };
    if (alerts.has(alert.id)) mergeAlert(alert, extra);
    else {
      let matched = false;
      alerts.forEach((a) => { if (a.kind === alert.kind && a.status !== "resolved") { Object.assign(a, extra); matched = true; } });
      if (!matched) mergeAlert(alert, extra);
    }
    renderAlerts();
    remember();
  }

  function onAlert(event) {
    if (event.alert && alerts.has(event.alert.id)) { mergeAlert(event.alert); renderAlerts(); }
  }

  async function refreshAlerts() {
    const pending = Array.from(alerts.values()).filter((a) => a.status !== "resolved");
    for (const a of pending) {
      const answer = await L.api(base + "/alerts/" + encodeURIComponent(a.id), { token });
      if (answer.ok && answer.data && answer.data.alert) mergeAlert(answer.data.alert);
    }
    renderAlerts();
  }

  function restoreAlerts() {
    let kept = [];
    try { kept = JSON.parse(localStorage.getItem(alertsKey) || "[]"); } catch (err) { kept = []; }
    // This shift's calls only: a terminal restarted tomorrow starts with an empty list.
    const since = Date.now() - RESTORE_WITHIN_MS;
    kept.filter((a) => Date.parse(a.at) > since)
      .forEach((a) => alerts.set(a.id, { id: a.id, kind: a.kind, note: a.note, at: a.at, status: "sent" }));
  }

  // Keyboard.

  document.addEventListener("keydown", function (event) {
    if (L.$("#desk").hidden || event.repeat || event.ctrlKey || event.altKey || event.metaKey) return;
    if (ACTIONS[event.key]) { event.preventDefault(); act(ACTIONS[event.key]); }
    else if (event.key === "F7") { event.preventDefault(); raise("help"); }
    else if (event.key === "F8") { event.preventDefault(); L.$("#ask-note").focus(); }
    else if (event.key === "F9") { event.preventDefault(); raise("distress"); }
  });

  // Connection.

  async function start() {
    if (!token) { enroll(); return; }
    const ok = await refreshCounter();
    if (ok === "refused") return;
    L.$("#enroll").hidden = true;
    L.$("#desk").hidden = false;
    if (!ok) L.showLive(false);
    streams.forEach((s) => s.close());
    streams = [
      L.follow(base + "/events?token=" + encodeURIComponent(token), {
        counter: (event) => applyCounter(event.counter),
        alert_acknowledged: onAcknowledged,
        reply: onReply,
        alert: onAlert,
      }, { onState: L.showLive, onOpen: function () { refreshCounter(); refreshAlerts(); } }),
      L.follow(waitingUrl, { waiting: (event) => { waiting = event.waiting || {}; renderWaiting(); } },
               { resume: false }),
    ];
  }

  fillReasons();
  restoreAlerts();
  renderAlerts();
  L.clock(L.$("#clock"), branch.timezone);
  start();
})();
