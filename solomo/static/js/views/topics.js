// Hot topics, everywhere or around the user (同城热门), and a topic's posts everywhere or near the
// user. "Near" uses the client's current location (the header's chip: device, picked or default);
// the scope is in the address (#/topics/near, #/topic/<topic>/near) so a reload or a shared link
// keeps it.

import { api, enc } from "../api.js";
import { clear, h, onLeave } from "../dom.js";
import { t } from "../i18n.js";
import { session } from "../session.js";
import { locationLabel, openLocationPicker } from "./location.js";
import { postList } from "./posts.js";

// Radii the server uses by default (contract: Feeds); shown to the user, not sent.
const HOT_RADIUS_KM = 20;
const POSTS_RADIUS_KM = 5;

// Two links that switch between everywhere and near me; the active one is marked for screen readers.
function scopeSwitch(everywhereHref, nearHref, near, labels) {
  const link = (href, on, label, scope) => h(`a.seg-item${on ? ".active" : ""}`,
    { href, dataset: { scope }, "aria-current": on ? "page" : null }, label);
  return h("nav.seg", { "aria-label": t("lt.scope") },
    link(everywhereHref, !near, labels[0], "everywhere"), link(nearHref, near, labels[1], "near"));
}

// Where "near" is, with a button to change it; calls onChange when the location changes.
function whereBar(radiusKm, onChange) {
  const text = h("span.lt-where-text", {}, t("lt.around", { km: radiusKm, where: locationLabel() }));
  const change = h("button.link", { type: "button", onclick: openLocationPicker }, t("lt.change"));
  onLeave(session.onLocation(() => {
    text.textContent = t("lt.around", { km: radiusKm, where: locationLabel() });
    onChange();
  }));
  return h("div.lt-where.muted", {}, text, change);
}

function topicSearch() {
  const input = h("input", { name: "topic", placeholder: t("topics.placeholder"), maxlength: "32" });
  const open = h("button", { type: "submit" }, t("topics.open"));
  const form = h("form.row.topic-search", {}, h("span.hash", {}, "#"), input, open);
  form.addEventListener("submit", (e) => {
    e.preventDefault();
    const topic = input.value.trim().replace(/^#|#$/g, "");
    if (topic) location.hash = `#/topic/${enc(topic)}`;
  });
  return form;
}

export async function hotTopicsView(root, near = false) {
  const listEl = h("ol.hot-topics", { dataset: { scope: near ? "near" : "everywhere" } });
  const load = async () => {
    const params = { limit: 20 };
    const loc = session.location;
    if (near && loc) Object.assign(params, { lat: loc.lat, lng: loc.lng });
    try {
      const res = await api.get("/v1/topics/hot", params);
      clear(listEl);
      if (!res.items.length) listEl.append(h("li.empty", {}, t(near ? "lt.none_near" : "topics.none")));
      for (const item of res.items) {
        const href = `#/topic/${enc(item.topic)}${near ? "/near" : ""}`;
        listEl.append(h("li", {}, h("a.topic", { href }, `#${item.topic}#`),
          h("span.muted", {}, t("topics.posts", { n: item.post_count }))));
      }
    } catch (err) {
      clear(listEl);
      listEl.append(h("li.empty", {}, err.words));
    }
  };
  root.append(h("div.page.hot-page", {}, topicSearch(),
    scopeSwitch("#/topics", "#/topics/near", near, [t("lt.everywhere"), t("lt.nearby")]),
    near ? whereBar(HOT_RADIUS_KM, load) : null,
    h("h2", {}, t(near ? "lt.hot_near" : "topics.hot")), listEl));
  await load();
}

export function topicView(root, topic, near = false) {
  const base = `#/topic/${enc(topic)}`;
  const load = (cursor) => {
    const loc = session.location;
    const params = { cursor };
    if (near && loc) Object.assign(params, { lat: loc.lat, lng: loc.lng });
    return api.get(`/v1/topics/${enc(topic)}/posts`, params);
  };
  const list = postList(load, { empty: t(near ? "lt.empty_near" : "feed.empty") });
  list.el.dataset.scope = near ? "near" : "everywhere";
  root.append(h("div.page.topic-page", {}, h("h2.topic-title", {}, `#${topic}#`),
    scopeSwitch(base, `${base}/near`, near, [t("lt.everywhere"), t("lt.near_me")]),
    near ? whereBar(POSTS_RADIUS_KM, () => list.reload()) : null, list.el));
  return list.ready;
}
