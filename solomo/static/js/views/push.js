// The installable app, page side: registers the service worker (/sw.js), says when the device is
// offline, opens an offer from a notification (#/offer/<id>), and the me page's "enable
// notifications" switch: Web Push subscribed with the server's VAPID key (GET /v1/push/key), the
// subscription sent to POST /v1/push/subscriptions. Signing out removes it (DELETE) and unsubscribes
// the browser, so the next person on this device gets nothing meant for the previous one.

import { api, ApiError, enc, request } from "../api.js";
import { h } from "../dom.js";
import { t } from "../i18n.js";
import { distanceM, session } from "../session.js";
import { offerPopup } from "./offers.js";
import { storeView } from "./stores.js";

const PUSH_WORDS = ["push.app", "push.mention", "push.comment", "push.reply", "push.follow", "push.other",
  "push.someone"];
let knownEndpoint = null; // this user's subscription on this device, as the server has it

export function pushSupported() {
  return "serviceWorker" in navigator && "PushManager" in window && "Notification" in window;
}

function b64urlBytes(text) {
  const b64 = text.replace(/-/g, "+").replace(/_/g, "/") + "=".repeat((4 - (text.length % 4)) % 4);
  return Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
}

function sameKey(a, b) {
  if (!a || !b) return false;
  const x = new Uint8Array(a);
  return x.length === b.length && x.every((v, i) => v === b[i]);
}

// The service worker shows notifications in the page's language: it is sent the words.
async function sendWords() {
  const reg = await navigator.serviceWorker.ready;
  const strings = Object.fromEntries(PUSH_WORDS.map((key) => [key, t(key)]));
  if (reg.active) reg.active.postMessage({ type: "strings", strings });
}

function offlineBar() {
  const bar = h("div.offline-bar", { role: "status", hidden: true });
  document.body.append(bar);
  const update = () => {
    const offline = !navigator.onLine;
    document.body.dataset.offline = offline ? "1" : "";
    bar.hidden = !offline;
    bar.textContent = t("push.offline");
  };
  window.addEventListener("online", update);
  window.addEventListener("offline", update);
  new MutationObserver(update).observe(document.documentElement, { attributes: true, attributeFilter: ["lang"] });
  update();
}

// Once per page load, from app.js.
export async function initPwa() {
  offlineBar();
  if (!("serviceWorker" in navigator)) return;
  try {
    await navigator.serviceWorker.register("/sw.js", { scope: "/" });
  } catch {
    return; // not installable here (an insecure origin other than localhost): the app works without it
  }
  document.body.dataset.sw = "registered";
  sendWords().catch(() => {});
  new MutationObserver(() => sendWords().catch(() => {}))
    .observe(document.documentElement, { attributes: true, attributeFilter: ["lang"] });
  if (session.token) refreshSubscription().catch(() => {});
}

async function currentSubscription() {
  if (!pushSupported()) return null;
  const reg = await navigator.serviceWorker.ready;
  return reg.pushManager.getSubscription();
}

// A browser may renew its subscription; the server learns the current one at each start.
async function refreshSubscription() {
  if (!pushSupported() || Notification.permission !== "granted") return;
  const sub = await currentSubscription();
  if (!sub) return;
  await api.post("/v1/push/subscriptions", sub.toJSON());
  knownEndpoint = sub.endpoint;
}

async function enablePush() {
  const permission = await Notification.requestPermission();
  if (permission !== "granted") throw Object.assign(new Error("denied"), { words: t("push.denied") });
  const reg = await navigator.serviceWorker.ready;
  const { public_key: key } = await api.get("/v1/push/key");
  const serverKey = b64urlBytes(key);
  let sub = await reg.pushManager.getSubscription();
  if (sub && !sameKey(sub.options.applicationServerKey, serverKey)) {
    await sub.unsubscribe(); // made with another server key: useless now
    sub = null;
  }
  if (!sub) sub = await reg.pushManager.subscribe({ userVisibleOnly: true, applicationServerKey: serverKey });
  await api.post("/v1/push/subscriptions", sub.toJSON());
  knownEndpoint = sub.endpoint;
}

async function disablePush() {
  const sub = await currentSubscription();
  if (!sub) return;
  await request("DELETE", "/v1/push/subscriptions", { endpoint: sub.endpoint });
  knownEndpoint = null;
  await sub.unsubscribe();
}

// Called by app.js while the token is still valid (the request takes it at once).
export function pushSignOut() {
  if (knownEndpoint) request("DELETE", "/v1/push/subscriptions", { endpoint: knownEndpoint }).catch(() => {});
  knownEndpoint = null;
  currentSubscription().then((sub) => sub && sub.unsubscribe()).catch(() => {});
}

// The me page's switch.
export function pushSwitch() {
  const input = h("input.switch", { type: "checkbox", role: "switch", name: "push" });
  const status = h("span.muted.small.push-status", { "aria-live": "polite" });
  const wrap = h("div.stack.push-setting", {},
    h("label.row.spread", {}, h("span", {}, t("push.enable")), input), status);
  if (!pushSupported()) {
    input.disabled = true;
    status.textContent = t("push.unsupported");
    return wrap;
  }
  if (Notification.permission === "denied") {
    input.disabled = true;
    status.textContent = t("push.denied");
  }
  currentSubscription().then((sub) => {
    input.checked = Boolean(sub) && Notification.permission === "granted";
    status.textContent = input.checked ? t("push.on") : status.textContent;
  }).catch(() => {});
  input.addEventListener("change", async () => {
    const want = input.checked;
    input.disabled = true;
    try {
      if (want) await enablePush();
      else await disablePush();
      status.textContent = t(want ? "push.on" : "push.off");
    } catch (err) {
      input.checked = !want;
      status.textContent = (err instanceof ApiError ? err.words : t("push.failed"));
    } finally {
      input.disabled = Notification.permission === "denied";
    }
  });
  return wrap;
}

// #/offer/<id>: where a tapped offer notification leads — its store, with the offer on top.
export async function offerPage(root, offerId) {
  let offer;
  try {
    offer = await api.get(`/v1/offers/${enc(offerId)}`);
  } catch (err) {
    root.append(h("div.page", {}, h("p.error", { role: "alert" }, (err instanceof ApiError ? err.words : t("push.failed")))));
    return;
  }
  await storeView(root, offer.store.id);
  const here = session.location;
  const distance = here ? distanceM(here, { lat: offer.store.lat, lng: offer.store.lng }) : null;
  if (offer.status === "live") offerPopup({ ...offer, distance_m: distance });
}
