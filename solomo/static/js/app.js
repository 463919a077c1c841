// The shell: header, role-aware bottom navigation, the hash router, and the live socket whose
// events update whatever is on screen (new posts, removed posts, notifications, offers).

import { api, enc, setUnauthorizedHandler } from "./api.js";
import { h, mount, runLeave, toast } from "./dom.js";
import { lang, setLanguage, t } from "./i18n.js";
import { icon } from "./icons.js";
import { LiveSocket } from "./realtime.js";
import { session } from "./session.js";
import { authView } from "./views/auth.js";
import { homeFeedOnScreen, homeView, localView } from "./views/feeds.js";
import { shutOutListView } from "./views/blocking.js";
import { initLocation, locationLabel, openLocationPicker } from "./views/location.js";
import { deleteAccountView, passwordView, profileEditView, storeEditView, storeOffersView } from "./views/manage.js";
import { insightsView } from "./views/insights.js";
import { merchantHome } from "./views/merchant.js";
import { bell, inboxView, onNotification, refreshUnread, refreshUnreadSoon } from "./views/notifications.js";
import { auditView, heldCommentsView, queueView, usersView, wordsView } from "./views/moderation.js";
import { offerPopup } from "./views/offers.js";
import { meView, peopleListView, userView } from "./views/people.js";
import { postPage } from "./views/posts.js";
import { onPoints, walletPage } from "./views/loyalty.js";
import { initPwa, offerPage, pushSignOut } from "./views/push.js";
import { searchLink, searchView } from "./views/search.js";
import { nearbyView, storeView } from "./views/stores.js";
import { hotTopicsView, topicView } from "./views/topics.js";

const NAV = {
  user: [["home", "home"], ["nearby", "pin"], ["topics", "hash"], ["wallet", "ticket"], ["me", "user"]],
  merchant: [["stores", "store", "#/merchant"], ["home", "home"], ["nearby", "pin"], ["topics", "hash"],
    ["me", "user"]],
  moderator: [["queue", "shield", "#/mod/queue"], ["words", "words", "#/mod/words"], ["audit", "log", "#/mod/audit"],
    ["users", "ban", "#/mod/users"], ["me", "user"]],
};
const HOME_OF = { user: "#/home", merchant: "#/merchant", moderator: "#/mod/queue" };

const ROUTES = [
  [/^#\/home$/, (root) => homeView(root)],
  [/^#\/local$/, (root) => localView(root)],
  [/^#\/nearby$/, (root) => nearbyView(root)],
  [/^#\/topics$/, (root) => hotTopicsView(root)],
  [/^#\/topics\/near$/, (root) => hotTopicsView(root, true)],
  [/^#\/topic\/([^/]+)\/near$/, (root, m) => topicView(root, decodeURIComponent(m[1]), true)],
  [/^#\/topic\/(.+)$/, (root, m) => topicView(root, decodeURIComponent(m[1]))],
  [/^#\/post\/([^/]+)$/, (root, m) => postPage(root, decodeURIComponent(m[1]))],
  [/^#\/user\/([^/]+)$/, (root, m) => userView(root, decodeURIComponent(m[1]))],
  [/^#\/user\/([^/]+)\/(followers|following)$/, (root, m) => peopleListView(root, decodeURIComponent(m[1]), m[2])],
  [/^#\/store\/([^/]+)$/, (root, m) => storeView(root, decodeURIComponent(m[1]))],
  [/^#\/wallet$/, (root) => walletPage(root)],
  [/^#\/offer\/([^/]+)$/, (root, m) => offerPage(root, decodeURIComponent(m[1]))],
  [/^#\/search$/, (root) => searchView(root)],
  [/^#\/notifications$/, (root) => inboxView(root)],
  [/^#\/me$/, (root) => meView(root, { onLanguage: switchLanguage, onLogout: logout })],
  [/^#\/me\/(blocks|mutes)$/, (root, m) => shutOutListView(root, m[1])],
  [/^#\/me\/profile$/, (root) => profileEditView(root)],
  [/^#\/me\/password$/, (root) => passwordView(root)],
  [/^#\/me\/delete$/, (root) => deleteAccountView(root, { onDeleted: leaveDeleted })],
  [/^#\/store\/([^/]+)\/edit$/, (root, m) => storeEditView(root, decodeURIComponent(m[1])), ["merchant"]],
  [/^#\/store\/([^/]+)\/offers$/, (root, m) => storeOffersView(root, decodeURIComponent(m[1]))],
  [/^#\/store\/([^/]+)\/insights$/, (root, m) => insightsView(root, decodeURIComponent(m[1])), ["merchant"]],
  [/^#\/merchant$/, (root) => merchantHome(root), ["merchant"]],
  [/^#\/mod\/queue$/, (root) => queueView(root), ["moderator"]],
  [/^#\/mod\/queue\/comments$/, (root) => heldCommentsView(root), ["moderator"]],
  [/^#\/mod\/words$/, (root) => wordsView(root), ["moderator"]],
  [/^#\/mod\/audit$/, (root) => auditView(root), ["moderator"]],
  [/^#\/mod\/users(?:\/([^/]+))?$/, (root, m) => usersView(root, m[1] ? decodeURIComponent(m[1]) : ""), ["moderator"]],
];

let socket = null;
let unseenHome = 0;

function navHref(item) {
  return item[2] || `#/${item[0]}`;
}

function header() {
  const live = h("span.live-dot", { title: t("socket.closed"), "aria-label": t("socket.closed") });
  const loc = h("button.loc-chip", { type: "button", onclick: openLocationPicker }, icon("pin", 14),
    h("span.loc-text", {}, locationLabel()));
  const langBtn = h("button.lang-switch", { type: "button", onclick: switchLanguage }, t("lang.switch"));
  return h("header.topbar", {}, h("a.logo", { href: "#/" }, t("app.name")), live,
    session.user && session.role !== "moderator" ? loc : null, session.user ? searchLink() : null,
    session.user ? bell() : null, langBtn);
}

function nav(current) {
  const items = NAV[session.role] || NAV.user;
  return h("nav.tabs", {}, items.map((item) => {
    const href = navHref(item);
    const badge = item[0] === "home" && unseenHome ? h("span.badge.count", {}, String(unseenHome)) : null;
    const active = current === href || current.startsWith(`${href}/`);
    return h(`a.tab${active ? ".active" : ""}`, { href, dataset: { tab: item[0] } },
      icon(item[1]), h("span.tab-label", {}, t(`nav.${item[0]}`)), badge);
  }));
}

function updateSocketStatus(state) {
  if (state === "open" && document.body.dataset.socket !== "open") refreshUnread(); // missed while away
  document.body.dataset.socket = state;
  const dot = document.querySelector(".live-dot");
  if (dot) {
    dot.classList.toggle("on", state === "open");
    dot.title = t(state === "open" ? "socket.open" : "socket.closed");
    dot.setAttribute("aria-label", dot.title);
  }
}

async function render() {
  runLeave();
  const app = document.getElementById("app");
  const hash = location.hash || "";
  if (!session.token) {
    const mode = hash === "#/register" ? "register" : "login";
    if (hash !== `#/${mode}`) history.replaceState(null, "", `#/${mode}`);
    const root = h("main.view");
    mount(app, header(), root);
    document.body.dataset.role = "";
    authView(root, mode, signedIn);
    return;
  }
  let match = null;
  for (const [re, view, roles] of ROUTES) {
    const m = hash.match(re);
    if (m && (!roles || roles.includes(session.role))) {
      match = [view, m];
      break;
    }
  }
  if (!match) {
    location.replace(HOME_OF[session.role] || "#/home");
    return;
  }
  if (hash === "#/home") unseenHome = 0;
  const root = h("main.view");
  mount(app, header(), root, nav(hash));
  document.body.dataset.role = session.role;
  updateSocketStatus(socket && socket.ws && socket.ws.readyState === WebSocket.OPEN ? "open" : "closed");
  document.body.dataset.view = "loading";
  try {
    await match[0](root, match[1]);
  } catch (err) { // a view that failed to draw says so, in the user's words (never a blank screen)
    if (root.isConnected) root.replaceChildren(h("p.error.view-error", { role: "alert" }, err.words));
  } finally {
    if (root.isConnected) document.body.dataset.view = hash;
  }
}

function switchLanguage() {
  setLanguage(lang() === "zh" ? "en" : "zh");
  render();
}

function signedIn(user, token) {
  session.signIn(user, token);
  if (session.location && session.location.source === "default") initLocation();  // reset by a sign-out
  startSocket();
  location.hash = HOME_OF[user.role] || "#/home";
}

function logout() {
  pushSignOut();
  api.post("/v1/auth/logout").catch(() => {});
  stopSocket();
  session.signOut();
  location.hash = "#/login";
  render();
}

// The account is gone (its tokens too): forget it here without calling logout.
function leaveDeleted() {
  stopSocket();
  session.signOut();
  location.hash = "#/login";
  render();
}

function forceSignOut(words) {
  stopSocket();
  session.signOut();
  toast(words, "error", 6000);
  location.hash = "#/login";
  render();
}

// The event types and their fields are documented in docs/design.md ("Real-time events"); the
// catalogue in solomo/core/eventtypes.py defines them; only those fields are read here.
async function onEvent(frame) {
  const data = frame.data || {};
  switch (frame.type) {
    case "feed.new": {
      const home = homeFeedOnScreen();
      if (home) {
        if (home.has(data.post_id)) return;
        try {
          home.prepend(await api.get(`/v1/posts/${enc(data.post_id)}`));
        } catch {
          // gone again before we fetched it
        }
      } else {
        unseenHome += 1;
        const tab = document.querySelector('.tab[data-tab="home"]');
        if (tab) {
          tab.querySelector(".badge")?.remove();
          tab.append(h("span.badge.count", {}, String(unseenHome)));
        }
      }
      break;
    }
    case "post.deleted":
      for (const el of document.querySelectorAll(`article.post[data-post-id="${CSS.escape(String(data.post_id))}"]`)) {
        el.classList.add("vanishing");
        el.remove();
      }
      break;
    case "notification":
      onNotification(data); // the Notification plus the unread total: bell, toast, open inbox
      break;
    case "offer":
      if (session.role === "user" || session.role === "merchant") offerPopup(data);
      refreshUnreadSoon(); // a delivered offer is also in the inbox (its record is written just after)
      break;
    case "points":
      onPoints(data); // the balance and the entry that moved it: the wallet updates, a toast says so
      break;
    default:
      break;
  }
}

function startSocket() {
  stopSocket();
  if (!session.token || !session.user) return;
  socket = new LiveSocket({
    token: session.token,
    userId: session.user.id,
    onEvent,
    onStatus: updateSocketStatus,
    onRefused: (code) => forceSignOut(code === 4403 ? t("err.account_suspended") : t("err.unauthorized")),
    getLocation: () => session.location,
  }).start();
  window.solomo.socket = socket;
}

function stopSocket() {
  if (socket) socket.stop();
  socket = null;
  window.solomo.socket = null;
  updateSocketStatus("closed");
}

async function main() {
  // A handle for developers and the browser tests (e.g. solomo.socket.drop() to test resuming).
  window.solomo = { socket: null, session };
  setLanguage(lang());
  setUnauthorizedHandler((err) => forceSignOut(err.words));
  session.onLocation(() => {
    const chip = document.querySelector(".loc-chip .loc-text");
    if (chip) chip.textContent = locationLabel();
    if (socket) socket.sendLocation();
    if (/^#\/(nearby|local)$/.test(location.hash)) render();
  });
  window.addEventListener("hashchange", render);
  initPwa();
  const located = initLocation();
  if (!session.location) await located;
  if (session.token) {
    startSocket();
    api.get("/v1/me").then((u) => session.updateUser(u), () => {});
  }
  await render();
  document.body.dataset.ready = "1";
}

main();
