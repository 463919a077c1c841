// The service worker, served as /sw.js (scope "/"). solomo/api/web.py puts two lines before this
// text: SHELL (the app's own files) and SHELL_VERSION (a hash of them).
//
// - The shell is cached on install; pages load from the network when it answers and from the
//   cache when it does not, so the app opens offline (and says so: views/push.js). API calls
//   (/v1/...) and the socket are never cached: their data must be current.
// - A Web Push message's body is an event frame {id, type, data}, the one a socket would carry.
//   It is shown as a notification; tapping it opens the offer or the post.
/* global SHELL, SHELL_VERSION */

const CACHE = `solomo-shell-${SHELL_VERSION}`;
const STRINGS_CACHE = "solomo-strings";
const STRINGS_URL = "/__solomo/push-strings"; // the page's words for notifications, in its language

self.addEventListener("install", (event) => {
  event.waitUntil(caches.open(CACHE).then((cache) => cache.addAll(SHELL)).then(() => self.skipWaiting()));
});

self.addEventListener("activate", (event) => {
  event.waitUntil((async () => {
    for (const name of await caches.keys()) {
      if (name.startsWith("solomo-shell-") && name !== CACHE) await caches.delete(name);
    }
    await self.clients.claim();
  })());
});

self.addEventListener("fetch", (event) => {
  const req = event.request;
  if (req.method !== "GET") return;
  const url = new URL(req.url);
  if (url.origin !== self.location.origin) return;
  if (req.mode === "navigate") {
    event.respondWith(fetch(req).catch(async () => (await caches.match("/", { cacheName: CACHE }))
      || Response.error()));
    return;
  }
  if (url.pathname.startsWith("/static/") || url.pathname === "/manifest.webmanifest") {
    // the cache is per version (a new deploy is a new worker and a new cache): cached first
    event.respondWith(caches.match(req, { cacheName: CACHE }).then((hit) => hit || fetch(req)));
  }
});

self.addEventListener("message", (event) => {
  const msg = event.data || {};
  if (msg.type === "strings" && msg.strings && typeof msg.strings === "object") {
    const body = new Response(JSON.stringify(msg.strings), { headers: { "Content-Type": "application/json" } });
    event.waitUntil(caches.open(STRINGS_CACHE).then((cache) => cache.put(STRINGS_URL, body)));
  }
});

async function words() {
  try {
    const hit = await caches.match(STRINGS_URL, { cacheName: STRINGS_CACHE });
    return hit ? await hit.json() : {};
  } catch {
    return {};
  }
}

function fill(text, params) {
  return String(text).replace(/\{(\w+)\}/g, (m, name) => (name in params ? String(params[name]) : m));
}

// What a notification says and where tapping it leads, from the event frame.
function describe(frame, strings) {
  const data = (frame && frame.data) || {};
  const app = strings["push.app"] || "SoLoMo";
  if (frame && frame.type === "offer" && data.id) {
    const store = data.store ? data.store.name : app;
    return { title: data.title || app, body: data.description ? `${store} · ${data.description}` : store,
      url: `/#/offer/${encodeURIComponent(data.id)}`, tag: `offer-${data.id}` };
  }
  if (frame && frame.type === "notification") {
    const actor = data.actors && data.actors.length ? data.actors[0] : data.user;
    const who = (actor && (actor.display_name || actor.username)) || strings["push.someone"] || "SoLoMo";
    const kind = data.kind === "comment" && data.reply ? "reply" : data.kind;
    const body = fill(strings[`push.${kind}`] || strings["push.other"] || "{user}", { user: who });
    let url = "/#/home";
    const postId = data.post ? data.post.id : data.post_id;
    if (postId) url = `/#/post/${encodeURIComponent(postId)}`;
    else if (actor) url = `/#/user/${encodeURIComponent(actor.id)}`;
    return { title: app, body, url, tag: frame.id ? `event-${frame.id}` : undefined };
  }
  return { title: app, body: strings["push.other"] || "", url: "/#/home" };
}

self.addEventListener("push", (event) => {
  let frame = null;
  try {
    frame = event.data ? event.data.json() : null;
  } catch {
    frame = null;
  }
  event.waitUntil((async () => {
    const what = describe(frame, await words());
    await self.registration.showNotification(what.title, {
      body: what.body, tag: what.tag, icon: "/static/icons/icon-192.png", badge: "/static/icons/badge-96.png",
      data: { url: what.url, eventId: frame && frame.id },
    });
  })());
});

self.addEventListener("notificationclick", (event) => {
  event.notification.close();
  const target = new URL((event.notification.data && event.notification.data.url) || "/", self.location.origin);
  event.waitUntil((async () => {
    const windows = await self.clients.matchAll({ type: "window", includeUncontrolled: true });
    for (const win of windows) {
      if (new URL(win.url).origin === target.origin) {
        await win.focus();
        return win.navigate(target.href);
      }
    }
    return self.clients.openWindow(target.href);
  })());
});
