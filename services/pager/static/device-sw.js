/* The device's service worker: it keeps the page's shell (the page and its assets) so that a phone that lost
 * the network, or was restarted without it, still opens the page, which then reconnects by itself; and it shows
 * the page's system notifications (a phone's browser refuses `new Notification` from a page).
 *
 * The shell is fetched from the network first, the copy kept for when the network is gone. The page's API and
 * its event streams are never touched here: they go to the network as they would without a worker.
 * SHELL (the addresses to keep) is set above this file by the service that serves it.
 */
/* global SHELL */
"use strict";

const CACHE = "lobby-device-shell-v1";

self.addEventListener("install", function (event) {
  event.waitUntil(caches.open(CACHE).then((cache) => cache.addAll(SHELL)).then(() => self.skipWaiting()));
});

self.addEventListener("activate", function (event) {
  event.waitUntil(caches.keys()
    .then((names) => Promise.all(names.filter((n) => n !== CACHE).map((n) => caches.delete(n))))
    .then(() => self.clients.claim()));
});

/** The address a request is kept under, if it is the shell's (the page, whatever its query: a token comes
 *  once), else null: nothing else (the daily report, the API) is ever kept. */
function shellKey(request) {
  const url = new URL(request.url);
  if (url.origin !== self.location.origin || request.method !== "GET") return null;
  return SHELL.indexOf(url.pathname) >= 0 ? url.pathname : null;
}

self.addEventListener("fetch", function (event) {
  const key = shellKey(event.request);
  if (!key) return;
  event.respondWith(fetch(event.request).then(function (response) {
    if (response.ok) {
      const copy = response.clone();
      caches.open(CACHE).then((cache) => cache.put(key, copy));
    }
    return response;
  }).catch(() => caches.match(key).then((kept) => kept || Response.error())));
});

self.addEventListener("notificationclick", function (event) {
  event.notification.close();
  event.waitUntil(self.clients.matchAll({ type: "window" }).then(function (windows) {
    if (windows.length) return windows[0].focus();
    return self.clients.openWindow(SHELL[0]);
  }));
});
