/* The branch manager's daily report, and the trends page that shares it. The server draws everything (tables,
 * SVG charts); this script keeps the device's token, opens the reading session with it, and prints.
 *
 * A token never goes into an address or a form. A first visit's ?token= is kept (localStorage, as the device
 * page keeps it) and taken out of the address bar; the page, its other days and its CSV and JSON are then read
 * with a session cookie the server sets (HttpOnly: this script never sees it). When the page answers that it
 * has no session, or that it ended, the script asks for one with the kept token in the Authorization header
 * and loads the page again; a token the server refuses is forgotten, and the form asks for another.
 */
(function () {
  "use strict";
  const L = window.Lobby;
  const data = L.data();
  const storageKey = "lobby.device." + data.branch.id;
  // When this tab last got a session: a page that still has none right after means cookies are refused.
  const triedKey = "lobby.report.session." + data.branch.id;
  // What the page is called in what this script says: the daily report, unless the page names itself.
  const reading = data.reading || { zh: "日报", en: "report" };
  const REFUSED = ["missing_token", "session_expired", "invalid_token", "wrong_branch", "wrong_token_kind",
                   "unknown_manager"];
  const FORBIDDEN = "此令牌不能查看本支行的" + reading.zh + "。This token may not read this branch's " + reading.en + ".";
  const INVALID = "令牌无效或已吊销，请重新输入。The token is not valid or was revoked: enter it again.";

  function stored() {
    try { return window.localStorage.getItem(storageKey); } catch (err) { return null; }
  }

  function keep(token) {
    try { window.localStorage.setItem(storageKey, token); } catch (err) { /* private mode: this visit only */ }
  }

  function triedJustNow() {
    try { return Date.now() - Number(window.sessionStorage.getItem(triedKey) || 0) < 10000; }
    catch (err) { return false; }
  }

  function markTried(on) {
    try {
      if (on) window.sessionStorage.setItem(triedKey, String(Date.now()));
      else window.sessionStorage.removeItem(triedKey);
    } catch (err) { /* nothing kept */ }
  }

  const print = L.$("#rp-print");
  if (print) print.addEventListener("click", () => window.print());

  if (!REFUSED.includes(data.problem)) {  // the report, or a date to choose again: this device may read it
    L.keepToken(storageKey);
    markTried(false);
    return;
  }

  // Refused: a token given in the address is not kept, and leaves the address bar.
  const url = new URL(window.location.href);
  const given = url.searchParams.get("token");
  if (given) {
    url.searchParams.delete("token");
    window.history.replaceState(window.history.state, "", url.pathname + url.search + url.hash);
  }
  if (data.problem === "invalid_token" && (!given || given === stored())) L.forgetToken(storageKey);

  const form = L.$("#gate-form");
  const input = L.$("#gate-token");
  const reason = L.$("#gate-reason");

  function say(text) { L.text(reason, text); }

  /** Ask for a session with a token (Authorization header); on success load the page again, now with it. */
  async function exchange(token, typed) {
    const button = form && form.querySelector("button");
    if (button) button.disabled = true;
    const answer = await L.api(data.session_url, { method: "POST", token });
    if (button) button.disabled = false;
    if (answer.ok) {
      if (typed) keep(token);
      markTried(true);
      window.location.reload();
      return;
    }
    if (answer.status === 401) {
      if (!typed) L.forgetToken(storageKey);
      say(INVALID);
    } else if (answer.status === 403) {
      say(FORBIDDEN);
    } else {
      say("暂时无法打开" + reading.zh + "，请稍后再试。The " + reading.en + " cannot be opened just now: try again shortly.");
    }
    if (input) input.focus();
  }

  if (form) {
    form.addEventListener("submit", function (event) {
      event.preventDefault();
      const value = input.value.trim();
      input.value = "";
      if (value) exchange(value, true);
    });
  }

  if (data.problem === "missing_token" || data.problem === "session_expired") {
    if (triedJustNow()) {
      say("此浏览器未保存" + reading.zh + "的会话 cookie，请允许本站使用 cookie。" +
          "This browser did not keep the session cookie of the " + reading.en + ": allow cookies for this site.");
    } else if (stored()) {
      say("正在打开" + reading.zh + "… Opening the " + reading.en + "…");
      exchange(stored(), false);
    }
  }
})();
