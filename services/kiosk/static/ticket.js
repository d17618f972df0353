/* A customer's ticket on their phone: status, place in line, estimated wait, where to go once called.
 * It asks the ticket API every few seconds while the ticket waits (cheaper than holding a stream open
 * for every phone in the lobby), and at once when the page comes back to the foreground. */
(function () {
  "use strict";
  const L = window.Lobby;
  const data = L.data();
  const branch = data.branch;
  const number = data.number;
  const url = "/api/v1/branches/" + encodeURIComponent(branch.id) + "/tickets/" + encodeURIComponent(number);
  const POLL_MS = 4000;
  const STATUS = {
    waiting: ["等候中", "Waiting"],
    called: ["请到窗口办理", "Your number is called"],
    served: ["已办理完毕，感谢光临", "Served, thank you"],
    no_show: ["已过号，请重新取号", "Missed: please take a new ticket"],
    expired: ["号票已失效，请重新取号", "Expired: please take a new ticket"],
  };
  let timer = null;
  let lastStatus = null;

  function show(ticket) {
    const category = branch.categories.find((c) => c.id === ticket.category);
    if (category) L.text(L.$("#t-category"), category.name + " · " + category.name_en);
    const words = STATUS[ticket.status] || [ticket.status, ticket.status];
    const status = L.$("#t-status");
    status.replaceChildren(words[0] + " ", L.el("span", { class: "en", lang: "en", text: words[1] }));
    status.dataset.status = ticket.status;
    document.body.dataset.status = ticket.status;

    const waiting = ticket.status === "waiting";
    L.$("#t-facts").hidden = !waiting;
    const ahead = ticket.position ? ticket.position - 1 : 0;
    L.$("#t-ahead").replaceChildren(waiting ? ahead + " 位" : "–",
      waiting ? L.el("span", { class: "en", lang: "en", text: ahead + " ahead" }) : "");
    const wait = L.wait(ticket.estimated_wait_s);
    L.$("#t-wait").replaceChildren(wait.zh, L.el("span", { class: "en", lang: "en", text: wait.en }));
    L.text(L.$("#t-issued"), L.time(ticket.issued_at, branch.timezone));

    const go = L.$("#t-go");
    if (ticket.status === "called" && ticket.window) {
      const where = L.windowName(ticket.window);
      L.text(L.$("#t-go-window"), where.zh);
      L.text(L.$("#t-go-window-en"), where.en);
      go.hidden = false;
      if (lastStatus && lastStatus !== "called" && navigator.vibrate) navigator.vibrate([300, 150, 300]);
    } else {
      go.hidden = true;
    }

    const redirect = L.$("#t-redirect");
    const title = L.$("#t-redirect-title");
    const name = category ? category.name : "";
    const nameEn = category ? category.name_en : "";
    // A transferred ticket waits for one window: named by its counter, or already by its window.
    let transferredTo = null;
    if (waiting && ticket.counter) transferredTo = branch.counters.find((c) => c.id === ticket.counter) || null;
    else if (waiting && ticket.window) transferredTo = { window: ticket.window };
    if (waiting && ticket.redirect) {
      const closed = ticket.redirect.reason === "counter_closed";
      const state = name + "窗口" + (closed ? "已关闭" : "暂停服务");
      const stateEn = "The " + nameEn + " counter is " + (closed ? "closed" : "paused");
      if (ticket.redirect.window) {
        const where = L.windowName(ticket.redirect.window);
        title.replaceChildren("请前往其他窗口 ", L.el("span", { class: "en", lang: "en", text: "Go to another window" }));
        L.text(L.$("#t-redirect-text"), state + "，叫号时请到 " + where.zh + "办理。");
        L.text(L.$("#t-redirect-text-en"), stateEn + ": when called, please go to " + where.en + ".");
      } else {
        // No open counter serves this ticket now: nowhere to send the customer.
        title.replaceChildren("请稍候 ", L.el("span", { class: "en", lang: "en", text: "Please wait" }));
        L.text(L.$("#t-redirect-text"), state + "，目前没有其他窗口可办理。" + L.noCounter.zh + "。");
        L.text(L.$("#t-redirect-text-en"), stateEn + " and no other counter is open for you now. " + L.noCounter.en + ".");
      }
      redirect.dataset.window = ticket.redirect.window || "none";
      redirect.hidden = false;
    } else if (transferredTo) {
      const where = L.windowName(transferredTo.window);
      title.replaceChildren("已为您转办 ", L.el("span", { class: "en", lang: "en", text: "Transferred" }));
      L.text(L.$("#t-redirect-text"), "您的业务已转至 " + where.zh + "，请留意叫号。");
      L.text(L.$("#t-redirect-text-en"), "Your ticket now waits for " + where.en + ": listen for your number.");
      redirect.hidden = false;
    } else {
      redirect.hidden = true;
    }
    lastStatus = ticket.status;
  }

  async function refresh() {
    clearTimeout(timer);
    const answer = await L.api(url);
    if (answer.ok && answer.data && answer.data.ticket) {
      L.showLive(true);
      show(answer.data.ticket);
      L.text(L.$("#t-updated"), "更新于 " + L.time(new Date(L.now()), branch.timezone, true) + " · Updated");
    } else if (answer.status === 404) {
      L.showLive(true);
      const status = L.$("#t-status");
      status.replaceChildren("未找到该号票 ", L.el("span", { class: "en", lang: "en", text: "Ticket not found" }));
      L.$("#t-facts").hidden = true;
      return; // not today's ticket: nothing to follow
    } else {
      L.showLive(false);
    }
    if (!["served", "no_show", "expired"].includes(lastStatus)) timer = setTimeout(refresh, POLL_MS);
  }

  document.addEventListener("visibilitychange", function () { if (!document.hidden) refresh(); });
  window.addEventListener("online", refresh);
  refresh();
})();
