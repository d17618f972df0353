/* The branch manager's daily report. The server draws everything (tables, SVG charts); this script only
 * keeps the device token the way the manager's device page does, so it leaves the address bar, and prints.
 *
 * Refused for want of a token, the page uses the one this browser keeps for the branch's device page,
 * once; a token the server called invalid is forgotten.
 */
(function () {
  "use strict";
  const L = window.Lobby;
  const data = L.data();
  const storageKey = "lobby.device." + data.branch.id;

  function stored() {
    try { return window.localStorage.getItem(storageKey); } catch (err) { return null; }
  }

  const refused = ["missing_token", "invalid_token", "wrong_branch", "wrong_token_kind", "unknown_manager"];
  if (refused.includes(data.problem)) {
    const url = new URL(window.location.href);
    if (data.problem === "missing_token" && stored()) {
      url.searchParams.set("token", stored());
      window.location.replace(url.toString());
      return;
    }
    if (data.problem === "invalid_token") L.forgetToken(storageKey);
    if (url.searchParams.has("token")) {  // a refused token does not stay in the address bar
      url.searchParams.delete("token");
      window.history.replaceState(window.history.state, "", url.pathname + url.search + url.hash);
    }
    return;
  }

  L.keepToken(storageKey);
  const print = L.$("#rp-print");
  if (print) print.addEventListener("click", () => window.print());
})();
