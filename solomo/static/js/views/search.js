// Search as you type: stores (with distance from the client's location), users, posts and topics.
// Typing waits for a pause (DEBOUNCE_MS) and a newer query aborts the request still in flight, so
// the list always shows the latest query's answer and never an older one arriving late.

import { api, enc } from "../api.js";
import { h, onLeave, svg } from "../dom.js";
import { t } from "../i18n.js";
import { session } from "../session.js";
import { postCard } from "./posts.js";
import { categoryName, formatDistance } from "./stores.js";

const DEBOUNCE_MS = 250;
const Q_MAX = 64; // the contract's limit after trimming
const TABS = ["stores", "users", "posts", "topics"];
const STATE = "solomo.search";

// The magnifier for the header's link to this page (drawn here: the icon set has no search glyph).
export function searchLink() {
  const glass = svg("svg", { class: "icon icon-search", viewBox: "0 0 24 24", width: 20, height: 20, fill: "none",
    stroke: "currentColor", "stroke-width": 1.9, "stroke-linecap": "round", "aria-hidden": "true" },
  svg("path", { d: "M10.5 18a7.5 7.5 0 1 0 0-15 7.5 7.5 0 0 0 0 15zM16 16l5 5" }));
  return h("a.search-link", { href: "#/search", title: t("search.title"), "aria-label": t("search.title") }, glass);
}

function storeRow(store) {
  return h("li.store.search-store", { dataset: { storeId: store.id } },
    h("div.store-main", {},
      h("a.store-name", { href: `#/store/${enc(store.id)}` }, store.name),
      h("div.muted.small", {}, [categoryName(store.category), store.address].filter(Boolean).join(" · "))),
    h("div.store-side", {}, h("span.distance", {}, formatDistance(store.distance_m))));
}

function userRow(user) {
  return h("li.person.search-user", { dataset: { userId: user.id } },
    h("a", { href: `#/user/${enc(user.id)}` }, h("strong", {}, user.display_name || user.username), " ",
      h("span.muted", {}, `@${user.username}`)),
    h("span.muted.small", {}, t("stores.followers", { n: user.followers_count })));
}

function topicRow(item) {
  return h("li.search-topic", {}, h("a.topic", { href: `#/topic/${enc(item.topic)}` }, `#${item.topic}#`),
    h("span.muted", {}, t("topics.posts", { n: item.post_count })));
}

const ROW = { stores: storeRow, users: userRow, posts: (p) => postCard(p), topics: topicRow };

export function searchView(root) {
  const saved = JSON.parse(sessionStorage.getItem(STATE) || "{}");
  let tab = TABS.includes(saved.tab) ? saved.tab : "stores";
  const input = h("input.search-input", { type: "search", name: "q", maxlength: String(Q_MAX), autocomplete: "off",
    enterkeyhint: "search", placeholder: t("search.placeholder"), value: saved.q || "" });
  const tabButtons = TABS.map((name) => h("button.search-tab", { type: "button", role: "tab", dataset: { tab: name },
    onclick: () => { tab = name; paint(); run(0); } }, t(`search.tab.${name}`)));
  const results = h("div.search-results", { "aria-live": "polite" });
  const more = h("button.more", { type: "button", hidden: true }, t("feed.more"));
  const status = h("p.empty.search-status");
  root.append(h("div.page.search-page", {},
    h("form.search-box", { role: "search", onsubmit: (e) => { e.preventDefault(); run(0); } }, input),
    h("div.search-tabs", { role: "tablist" }, tabButtons), status, results, more));

  let timer = null;
  let inflight = null;
  let cursor = null;

  const paint = () => {
    for (const b of tabButtons) {
      b.classList.toggle("active", b.dataset.tab === tab);
      b.setAttribute("aria-selected", String(b.dataset.tab === tab));
    }
    sessionStorage.setItem(STATE, JSON.stringify({ tab, q: input.value }));
  };

  const query = (q, next) => {
    const params = { q, limit: 20, cursor: next };
    const loc = session.location;
    if (tab === "stores" && loc) Object.assign(params, { lat: loc.lat, lng: loc.lng });
    return params;
  };

  // Sends the query now (after `wait` ms); whatever was in flight or pending is dropped.
  const run = (wait, next = null) => {
    clearTimeout(timer);
    if (inflight) inflight.abort();
    inflight = null;
    const q = input.value.trim();
    paint();
    if (!q) {
      results.replaceChildren();
      more.hidden = true;
      status.textContent = t("search.hint");
      status.hidden = false;
      return;
    }
    timer = setTimeout(async () => {
      const ctl = new AbortController();
      inflight = ctl;
      const asked = tab;
      if (!next) status.textContent = t("common.loading");
      try {
        const res = await api.get(`/v1/search/${asked}`, query(q.slice(0, Q_MAX), next), ctl.signal);
        if (ctl.signal.aborted) return;
        if (!next) results.replaceChildren(h(asked === "posts" ? "div.post-list" : "ul.search-list"));
        results.firstChild.append(...res.items.map(ROW[asked]));
        cursor = res.next_cursor;
        more.hidden = !cursor;
        status.hidden = results.firstChild.childElementCount > 0;
        status.textContent = t("search.none");
        document.body.dataset.search = `${asked}:${q}`; // what the list shows (tests wait on it)
      } catch (err) {
        if (ctl.signal.aborted) return;
        status.hidden = false;
        status.textContent = err.words;
      } finally {
        if (inflight === ctl) inflight = null;
      }
    }, wait);
  };

  input.addEventListener("input", () => run(DEBOUNCE_MS));
  more.addEventListener("click", () => run(0, cursor));
  // a position that arrives (or changes) after the list was drawn re-sorts the stores by distance
  const offLocation = session.onLocation(() => { if (tab === "stores") run(0); });
  onLeave(() => {
    offLocation();
    clearTimeout(timer);
    if (inflight) inflight.abort();
  });
  paint();
  run(0);
  input.focus();
}
