/* The teller's terminal: call, recall, complete, no-show; pause and resume; the three alert buttons.
 *
 * Keyboard: F1 call next, F2 recall, F3 complete, F4 no-show, F7 help, F8 ask a supervisor, F9 silent call
 * (distress), so a teller can call for help without reaching for the mouse.
 *
 * Every alert press goes through an outbox kept in localStorage with its Idempotency-Key: it is shown at
 * once, sent, and sent again with the same key (1 s, 2 s, 4 s… up to 30 s apart, never sooner than the
 * service's Retry-After) until the service answers, across reloads. The same key every time means the
 * service acts on it once however often it is sent.
 *
 * A distress call is read across the counter: it gets no card, never a manager's name, never free text.
 * One small grey line says what became of the latest press (not sent yet, sent, delivered, seen, or the
 * manager's discreet preset reply).
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
  const KINDS = data.kinds || {};
  const PRESETS = data.reply_presets || {};
  const storageKey = "lobby.terminal." + branch.id + "." + counterCfg.id;
  const callsKey = storageKey + ".alerts";
  const base = "/api/v1/branches/" + encodeURIComponent(branch.id) + "/counters/" + encodeURIComponent(counterCfg.id);
  const waitingUrl = "/branches/" + encodeURIComponent(branch.id) + "/counters/" + encodeURIComponent(counterCfg.id) +
    "/terminal/waiting";
  const ACTIONS = { F1: "call-next", F2: "recall", F3: "complete", F4: "no-show" };
  // A shift: calls older than this are not shown again (nor sent) after a restart.
  const KEEP_WITHIN_MS = 12 * 3600 * 1000;
  const KEEP_CALLS = 30;
  const CARDS = 6;
  // Calls that get a card; a distress call gets only the quiet line.
  const CARD_KINDS = ["help", "ask_supervisor", "pause"];
  const DISTRESS = "distress";
  const RETRY_FIRST_MS = 1000;
  const RETRY_MAX_MS = 30000;
  // How long a calling button's lost answer is asked for again (same key) before the teller is told.
  const ACT_RETRY_MS = 10000;
  const ERRORS = {
    counter_paused: "窗口暂停中，请先恢复服务 · The counter is paused: resume it first",
    counter_closed: "窗口已关闭 · The counter is closed",
    not_serving: "当前没有客户 · No customer at this counter",
    not_paused: "窗口未暂停 · The counter is not paused",
    recall_limit: "已达重呼次数上限，请完成或过号 · Recall limit reached: complete it or mark it no-show",
    still_serving: "请先完成当前客户再关闭窗口 · Finish the current customer before closing",
    same_counter: "不能转给本窗口 · Not to this counter",
    rate_limited: "按得太频繁，请稍候 · Too many presses: wait a moment",
    offline: "网络中断，请稍后重试 · Offline: try again in a moment",
    unavailable: "服务暂时不可用，请稍后重试 · The service is unavailable: try again in a moment",
  };

  let token = L.keepToken(storageKey);
  let counter = null;
  let waiting = {};
  let calls = []; // every alert this terminal raised or heard of, oldest first (see newCall)
  let acting = false;
  const busy = {};
  let streams = [];
  let streamLive = null; // null until the stream first opens or fails
  let reachable = true; // the last request got an answer from the service
  let overrunUntil = null; // the `until` of the pause a pause_overrun event was about
  let refreshTimer = null;
  let stopHeartbeat = () => {};

  const managers = {};
  branch.managers.forEach((m) => { managers[m.id] = m; managers[m.name] = m; });
  // Who is paged first: the lobby manager (a role, so a common noun in English).
  const lobbyManager = branch.managers[0] || { name: "大堂经理", name_en: "Lobby manager" };
  const theLobbyManager = "the " + lobbyManager.name_en.toLowerCase();
  const categories = {};
  branch.categories.forEach((c) => { categories[c.id] = c; });

  function person(name) { return managers[name] || { name: name, name_en: name }; }

  // Enrolment: the token.

  function enroll(reason) {
    streams.forEach((s) => s.close());
    streams = [];
    stopHeartbeat();
    L.$("#desk").hidden = true;
    L.$("#enroll").hidden = false;
    if (reason) L.text(L.$("#enroll-reason"), reason);
    L.$("#enroll-token").focus();
  }

  const refused = L.enrolment(storageKey, {
    use(value) { token = value; }, start, enroll,
    forbidden: "此令牌不属于本窗口。This token belongs to another counter or branch.",
  });

  // Connection: the header's dot and the offline banner follow the stream and the last request.

  function showConnection() {
    if (streamLive === null && reachable) return; // still connecting: the header says so
    L.showLive(streamLive === true && reachable);
  }

  function heard(answer) {
    reachable = L.reached(answer);
    showConnection();
    return answer;
  }

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
    renderOverrun();
    renderWaiting();
  }

  /** Past its expected end, the paused panel says by how much, and whether the lobby manager was paged. */
  function renderOverrun() {
    const node = L.$("#paused-over");
    const pause = counter && counter.status === "paused" ? counter.pause : null;
    const overMs = pause ? L.now() - Date.parse(pause.until) : NaN;
    if (!(overMs > 0)) { node.hidden = true; return; }
    const minutes = Math.max(1, Math.round(overMs / 60000));
    const told = pause.overrun || overrunUntil === pause.until;
    L.text(node, "已超出预计时间 " + minutes + " 分钟" + (told ? "，已通知" + lobbyManager.name : "") +
      " · Over the expected time by " + minutes + " min" + (told ? "; " + theLobbyManager + " has been told" : ""));
    node.hidden = false;
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
        L.el("span", { class: "tw-wait" }, wait.zh, L.el("span", { class: "en", lang: "en", text: wait.en }))));
    });
  }

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

  /** Read the counter; "refused" when the token is not this counter's (the page is back at enrolment). */
  async function refreshCounter() {
    if (!token) return false;
    const answer = heard(await L.api(base, { token }));
    if (refused(answer)) return "refused";
    if (answer.ok && answer.data) {
      applyCounter(answer.data.counter);
      flushSoon();
    }
    return answer.ok;
  }

  function say(text, kind) {
    const node = L.$("#message");
    L.text(node, text);
    node.dataset.kind = kind || "info";
  }

  function errorText(answer) {
    const code = answer.status === 0 ? "offline" : answer.error && answer.error.code;
    return ERRORS[code] || (answer.error && answer.error.message) || ("出错了 Error " + answer.status);
  }

  /** POST one of the teller's requests; a lost answer is asked for again with the same Idempotency-Key. */
  async function send(path, body) {
    const answer = await L.apiRetrying(base + "/" + path, { method: "POST", token, key: L.newKey(), body }, {
      within: ACT_RETRY_MS,
      onRetry(lost) { heard(lost); say("未收到回应，正在重试… · No answer yet, retrying…", "info"); },
    });
    return heard(answer);
  }

  /** One calling action at a time: the next waits until the last is answered and shown. */
  async function act(action) {
    if (acting || !counter) return;
    const button = L.$("#" + action);
    if (button.disabled) return;
    acting = true;
    applyCounter(counter);
    const answer = await send(action);
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
    const answer = await send(path, body);
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
    const answer = await send("pause", body);
    busy.pause = false;
    if (refused(answer)) return;
    if (answer.ok) {
      L.$("#pause-note").value = "";
      say("已暂停，已通知" + lobbyManager.name + " · Paused; " + theLobbyManager + " has been told", "ok");
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
    const answer = await send("resume");
    busy.resume = false;
    L.$("#resume").disabled = false;
    if (refused(answer)) return;
    if (answer.ok) { say("已恢复服务 · Open again", "ok"); applyCounter(answer.data.counter); }
    else { say(errorText(answer), "error"); await refreshCounter(); }
  });

  // Alerts: the calls this terminal made (or heard of, for its pauses), kept across reloads.
  //
  // A call: {key: its Idempotency-Key (null for one the terminal did not send), id: the alert's id once the
  // service answered, kind, note, at: when it was pressed, state: "queued" (not through yet) | "failed" (refused:
  // error says why) | "sent", tries, and what the service says of its alert: status, page_id, acknowledged_by,
  // reply, replied_by, reply_preset, resolved_by, resolution}.

  const STATUS_ORDER = { sent: 0, acknowledged: 1, resolved: 2 };
  const early = new Map(); // alert id -> news of it that came before the answer naming it
  const ALERT_FIELDS = ["page_id", "acknowledged_by", "acknowledged_at", "reply", "replied_by", "reply_preset",
                        "resolved_by", "resolution"];

  function save() {
    const queued = calls.filter((c) => c.state === "queued");
    const rest = calls.filter((c) => c.state !== "queued").slice(-KEEP_CALLS);
    calls = calls.filter((c) => queued.indexOf(c) >= 0 || rest.indexOf(c) >= 0);
    try { localStorage.setItem(callsKey, JSON.stringify(calls)); } catch (err) { /* memory only */ }
  }

  function restore() {
    let kept = [];
    try { kept = JSON.parse(localStorage.getItem(callsKey) || "[]"); } catch (err) { kept = []; }
    // This shift's calls only: a terminal restarted tomorrow starts with an empty list and sends nothing old.
    const since = Date.now() - KEEP_WITHIN_MS;
    calls = (Array.isArray(kept) ? kept : []).filter((c) => c && c.kind && Date.parse(c.at) > since).map(function (c) {
      if (!c.state) c.state = c.id ? "sent" : "queued";
      return c;
    });
  }

  function byId(id) { return calls.find((c) => c.id === id) || null; }

  /** Record what the service says of an alert; news only adds (an older copy never takes any back). */
  function applyAlert(alert) {
    if (!alert || !alert.id) return null;
    if (CARD_KINDS.indexOf(alert.kind) < 0 && alert.kind !== DISTRESS) return null;
    let call = byId(alert.id);
    if (!call && calls.some((c) => c.state === "queued" && c.kind === alert.kind)) {
      // Most likely the answer to a press still on its way: kept until that answer names its alert.
      early.set(alert.id, (early.get(alert.id) || []).concat([alert]));
      return null;
    }
    if (!call) {
      call = { key: null, id: alert.id, kind: alert.kind, note: null, at: alert.created_at, state: "sent" };
      calls.push(call);
      calls.sort((a, b) => Date.parse(a.at) - Date.parse(b.at));
    }
    call.state = "sent";
    if (!call.status || (STATUS_ORDER[alert.status] || 0) > (STATUS_ORDER[call.status] || 0)) call.status = alert.status;
    ALERT_FIELDS.forEach(function (name) { if (alert[name]) call[name] = alert[name]; });
    if (alert.paged && alert.paged.length) call.paged = alert.paged;
    if (alert.test) call.test = true;
    return call;
  }

  /** Give a sent call its alert's id. The stream may have told of that alert before the answer came: what it
   *  told moves onto the call, and the copy it made goes. */
  function adopt(call, id) {
    const twin = calls.find((c) => c.id === id && c !== call);
    call.id = id;
    call.state = "sent";
    if (twin) {
      calls.splice(calls.indexOf(twin), 1);
      if (twin.status) applyAlert(Object.assign({ kind: call.kind, status: twin.status }, twin, { id }));
    }
    const news = early.get(id) || [];
    early.delete(id);
    news.forEach(applyAlert);
  }

  function newCall(kind, note, test) {
    const call = { key: L.newKey(), id: null, kind, note: note || null, at: new Date(L.now()).toISOString(),
                   state: "queued", tries: 0, test: Boolean(test) };
    calls.push(call);
    save();
    render();
    flush();
    return call;
  }

  // The outbox: queued calls go out in order, and again (same key) until the service answers.

  let flushing = false;
  let flushAgain = false;
  let retryTimer = null;
  let retryDelay = RETRY_FIRST_MS;

  function bodyOf(call) {
    const body = { kind: call.kind };
    if (call.note) body.note = call.note;
    if (call.test) body.test = true;
    return body;
  }

  async function flush() {
    if (flushing) { flushAgain = true; return; }
    if (!token) return;
    clearTimeout(retryTimer);
    retryTimer = null;
    flushing = true;
    let waitMs = 0;
    let through = false;
    for (const call of calls.filter((c) => c.state === "queued")) {
      const answer = heard(await L.api(base + "/alerts", { method: "POST", token, key: call.key, body: bodyOf(call),
                                                            timeout: 10000 }));
      if (call.state !== "queued") continue;
      if (answer.ok && answer.data && answer.data.alert) {
        adopt(call, answer.data.alert.id);
        applyAlert(answer.data.alert);
        through = true;
      } else if (answer.status === 401 || answer.status === 403) {
        // Nothing was done with this token: the call waits for the terminal to be enrolled again.
        flushing = false;
        save();
        render();
        refused(answer);
        return;
      } else if (L.worthRetrying(answer)) {
        call.tries = (call.tries || 0) + 1;
        waitMs = Math.max(waitMs, answer.retryAfterMs || 0);
        if (!L.reached(answer)) break; // the service is away: the others would fail the same way
      } else {
        call.state = "failed";
        call.error = errorText(answer);
      }
      save();
      render();
    }
    flushing = false;
    if (through) retryDelay = RETRY_FIRST_MS;
    if (flushAgain) { flushAgain = false; flush(); return; }
    if (calls.some((c) => c.state === "queued")) {
      retryTimer = setTimeout(flush, Math.max(retryDelay, waitMs));
      retryDelay = Math.min(RETRY_MAX_MS, retryDelay * 2);
    } else {
      retryDelay = RETRY_FIRST_MS;
    }
  }

  /** The service answered something: send what waits now rather than at the next retry. */
  function flushSoon() {
    if (!flushing && retryTimer && calls.some((c) => c.state === "queued")) flush();
  }

  /** Ask the service about every call not finished yet (after a reconnection, a reset, news of a page that
   *  other presses were folded into). */
  async function refreshAlerts() {
    const open = calls.filter((c) => c.id && c.state === "sent" && c.status !== "resolved");
    for (const call of open) {
      const answer = heard(await L.api(base + "/alerts/" + encodeURIComponent(call.id), { token }));
      if (refused(answer)) return;
      if (answer.ok && answer.data) applyAlert(answer.data.alert);
    }
    save();
    render();
  }

  function refreshAlertsSoon() {
    clearTimeout(refreshTimer);
    refreshTimer = setTimeout(refreshAlerts, 300);
  }

  function onAlertNews(event) {
    applyAlert(event.alert);
    save();
    render();
    refreshAlertsSoon(); // presses folded into the same page hear of it through their own alerts
  }

  // What the teller sees of the calls.

  /** The name of who acknowledged a call: its own alert's, or that of a press on the same page. */
  function acknowledger(call) {
    if (call.acknowledged_by) return call.acknowledged_by;
    const sibling = call.page_id && calls.find((c) => c.page_id === call.page_id && c.acknowledged_by);
    return sibling ? sibling.acknowledged_by : null;
  }

  /** [zh, en] of where a call stands. */
  function stateOf(call) {
    if (call.state === "queued") return ["未发送，正在重试", "Not sent, retrying"];
    if (call.state === "failed") return ["未发送：" + (call.error || ""), "Not sent"];
    if (call.status === "resolved") {
      if (call.resolution === "cleared" || call.resolution === "expired") return ["已结束", "Ended"];
      if (call.resolved_by) {
        const who = person(call.resolved_by);
        return [who.name + " 已处理", "resolved by " + who.name_en];
      }
      return ["已处理", "Resolved"];
    }
    if (call.reply && call.replied_by) {
      const who = person(call.replied_by);
      return [who.name + " 已答复", who.name_en + " answered"];
    }
    if (call.status === "acknowledged") {
      const name = acknowledger(call);
      if (!name) return call.kind === "pause" ? ["已知悉", "Seen"] : ["已确认，正在赶来", "Someone is coming"];
      const who = person(name);
      if (call.kind === "pause") return [who.name + " 已知悉", who.name_en + " has seen it"];
      return [who.name + " 正在赶来", who.name_en + " is coming"];
    }
    const reached = reachedWords(call);
    if (reached) return reached;
    if (call.page_id) return ["已送达，等待回应", "Delivered, waiting for an answer"];
    return ["已发送，等待回应", "Sent, waiting for an answer"];
  }

  /** [zh, en] of how to reach the lobby manager when no device is live: their phone, when the branch gives one. */
  function ringWords() {
    const phone = data.phone;
    return phone ? ["请致电 " + phone, "call " + phone] : ["请另行联系", "reach them another way"];
  }

  /** [zh, en] of whom the call's page went to, when that is news: a manager skipped for an offline device, or
   *  no device live at all; null otherwise. */
  function reachedWords(call) {
    const paged = call.paged || [];
    if (!paged.length) return null;
    const last = paged[paged.length - 1];
    if (!last.live) {
      const ring = ringWords();
      return ["经理设备均离线，" + ring[0], "No manager's device is online: " + ring[1]];
    }
    if (paged.length === 1) return null;
    const first = person(paged[0].manager);
    const to = person(last.manager);
    return [first.name + "设备离线，已呼叫" + to.name,
            first.name_en + "'s device offline: the " + to.name_en.toLowerCase() + " was paged"];
  }

  /** [zh, en] of a distress call's fate: never a name, never free text. */
  function fateOf(call) {
    if (call.state === "queued") return ["未发送，正在重试", "Not sent, retrying"];
    if (call.state === "failed") return ["未发送：" + (call.error || ""), "Not sent"];
    if (call.status === "resolved") {
      return call.resolution === "resolved" ? ["已处理", "Handled"] : ["已结束", "Ended"];
    }
    const preset = call.reply_preset && PRESETS[call.reply_preset];
    if (preset) return [preset.name, preset.name_en];
    if (call.status === "acknowledged") return ["已收到", "Seen"];
    const paged = call.paged || [];
    if (paged.length && !paged[paged.length - 1].live) {
      const ring = ringWords();
      return ["未送达，" + ring[0], "Not delivered: " + ring[1]];
    }
    if (call.page_id) return ["已送达", "Delivered"];
    return ["已发出", "Sent"];
  }

  function render() {
    renderQuiet();
    renderCards();
  }

  function renderQuiet() {
    const node = L.$("#quiet-ack");
    const latest = calls.filter((c) => c.kind === DISTRESS).pop();
    if (!latest) { node.replaceChildren(); return; }
    const fate = fateOf(latest);
    const drill = latest.test ? "演练 TEST · " : "";
    const text = drill + L.time(latest.at, branch.timezone) + " · " + fate[0] + " " + fate[1];
    if (node.textContent === text) return;
    node.replaceChildren(drill + L.time(latest.at, branch.timezone) + " · " + fate[0] + " ",
                         L.el("span", { lang: "en", text: fate[1] }));
    node.dataset.state = latest.state;
  }

  function renderCards() {
    const list = L.$("#alerts");
    list.replaceChildren();
    calls.filter((c) => CARD_KINDS.indexOf(c.kind) >= 0).slice(-CARDS).reverse().forEach(function (call) {
      const kind = KINDS[call.kind] || { name: call.kind, name_en: call.kind };
      const title = L.el("p", { class: "al-title" },
        L.el("span", { class: "al-kind" }, kind.name + " ", L.el("span", { lang: "en", text: kind.name_en })),
        L.el("span", { class: "al-time num", text: L.time(call.at, branch.timezone) }));
      const state = call.state === "sent" ? call.status || "sent" : call.state;
      const item = L.el("li", { class: "al-item", "data-kind": call.kind, "data-status": state }, title);
      if (call.note && call.kind === "ask_supervisor") item.append(L.el("p", { class: "al-note", text: call.note }));
      const words = stateOf(call);
      item.append(L.el("p", { class: "al-state", "data-role": "state" }, words[0] + " · ",
                       L.el("span", { lang: "en", text: words[1] })));
      if (call.reply) {
        const who = call.replied_by ? person(call.replied_by).name : "";
        item.append(L.el("p", { class: "al-reply" }, who ? L.el("span", { class: "al-reply-by", text: who + "：" }) : null,
          L.el("span", { class: "al-reply-text", text: call.reply })));
      }
      list.append(item);
    });
  }

  L.$$(".actions [data-action]").forEach(function (button) {
    button.addEventListener("click", () => act(button.dataset.action));
  });
  L.$("#help").addEventListener("click", () => newCall("help"));
  L.$("#distress").addEventListener("click", () => newCall(DISTRESS));
  L.$("#drill").addEventListener("click", () => newCall(DISTRESS, null, true));
  L.$("#ask-form").addEventListener("submit", function (event) {
    event.preventDefault();
    const input = L.$("#ask-note");
    const note = input.value.trim();
    if (!note) { input.focus(); return; }
    newCall("ask_supervisor", note);
    input.value = "";
  });

  // Keyboard.

  document.addEventListener("keydown", function (event) {
    if (L.$("#desk").hidden || event.repeat || event.ctrlKey || event.altKey || event.metaKey) return;
    if (ACTIONS[event.key]) { event.preventDefault(); act(ACTIONS[event.key]); }
    else if (event.key === "F7") { event.preventDefault(); newCall("help"); }
    else if (event.key === "F8") { event.preventDefault(); L.$("#ask-note").focus(); }
    else if (event.key === "F9") { event.preventDefault(); newCall(DISTRESS); }
  });

  // Connection.

  function revoked() {
    L.forgetToken(storageKey);
    token = null;
    enroll("令牌已吊销，请重新登记。The token was revoked: enrol again.");
  }

  async function start() {
    if (!token) { enroll(); return; }
    const ok = await refreshCounter();
    if (ok === "refused") return;
    L.$("#enroll").hidden = true;
    L.$("#desk").hidden = false;
    streams.forEach((s) => s.close());
    streamLive = null;
    streams = [
      L.follow(base + "/events?token=" + encodeURIComponent(token), {
        counter: (event) => applyCounter(event.counter),
        alert_acknowledged: onAlertNews,
        reply: onAlertNews,
        alert: onAlertNews,
        pause_overrun: (event) => { overrunUntil = event.until; renderOverrun(); refreshCounter(); },
      }, {
        onState(live) {
          streamLive = live;
          if (live) reachable = true; // the stream reached the service: so would a request
          showConnection();
        },
        onOpen() { refreshCounter(); refreshAlerts(); flushSoon(); },
        onReset() { refreshCounter(); refreshAlerts(); },
        onRevoked: revoked,
      }),
      L.follow(waitingUrl, { waiting: (event) => { waiting = event.waiting || {}; renderWaiting(); } },
               { resume: false }),
    ];
    stopHeartbeat();
    stopHeartbeat = L.heartbeat(base + "/heartbeat", token, branch.heartbeat_s);
    flush();
  }

  fillReasons();
  restore();
  render();
  L.clock(L.$("#clock"), branch.timezone);
  setInterval(renderOverrun, 1000);
  window.addEventListener("online", flushSoon);
  start();
})();
