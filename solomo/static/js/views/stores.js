// Nearby stores with distances, a store's page (follow, check in, its posts) and, for its
// owner, the merchant console.

import { api, enc } from "../api.js";
import { busy, field, h, modal, toast } from "../dom.js";
import { has, t } from "../i18n.js";
import { session } from "../session.js";
import { merchantConsole } from "./merchant.js";
import { photoPicker, photosReady } from "./photos.js";
import { postList } from "./posts.js";

// The server's fixed set (checkins.stores.CATEGORIES); names are translated.
export const CATEGORIES = ["food", "cafe", "bar", "shopping", "grocery", "entertainment", "sports", "outdoors",
  "travel", "hotel", "services", "health", "education", "other"];

export function categoryName(c) {
  return c ? (has(`cat.${c}`) ? t(`cat.${c}`) : c) : "";
}
const RADII = [500, 1000, 2000, 5000, 20000];

export function followButton(kind, id) {
  const btn = h("button.follow", { type: "button", dataset: { kind, id } });
  const render = () => {
    const on = session.isFollowing(kind, id);
    btn.textContent = on ? t("follow.unfollow") : t("follow.follow");
    btn.classList.toggle("on", on);
  };
  render();
  btn.addEventListener("click", async () => {
    const on = !session.isFollowing(kind, id);
    const path = `/v1/${kind === "store" ? "stores" : "users"}/${enc(id)}/follow`;
    try {
      await busy(btn, on ? api.post(path) : api.del(path));
      session.rememberFollow(kind, id, on);
      render();
    } catch (err) {
      toast(err.words, "error");
    }
  });
  return btn;
}

export function formatDistance(m) {
  if (m === null || m === undefined) return "";
  return m < 1000 ? `${Math.round(m)} m` : `${(m / 1000).toFixed(1)} km`;
}

export function checkinDialog(store, onDone) {
  const text = h("textarea", { name: "text", rows: "2", maxlength: "2000", placeholder: t("checkin.text") });
  const send = h("button.primary", { type: "submit" }, t("checkin.button"));
  const errorEl = h("p.error", { role: "alert", hidden: true });
  const photos = photoPicker();
  const form = h("form.stack.checkin-form", {}, text, photos.el, errorEl, send);
  const dlg = modal(`${t("checkin.button")} · ${store.name}`, form);
  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    const loc = session.location;
    const body = { store_id: store.id, lat: loc.lat, lng: loc.lng, accuracy_m: Math.min(loc.accuracy || 20, 1000) };
    if (text.value.trim()) body.text = text.value;
    if (!(await busy(send, photosReady(photos)))) return;
    if (photos.ids().length) body.media_ids = photos.ids();
    try {
      const res = await busy(send, api.post("/v1/checkins", body));
      dlg.close();
      toast(t("checkin.done", { store: store.name }));
      if (onDone) onDone(res);
    } catch (err) {
      errorEl.hidden = false;
      // "get closer" is no help when the position was never the device's (refused, or picked)
      errorEl.textContent = err.code === "too_far" && loc.source !== "device" ? t("err.too_far_no_fix") : err.words;
    }
  });
}

function storeRow(store) {
  return h("li.store", { dataset: { storeId: store.id } },
    h("div.store-main", {},
      h("a.store-name", { href: `#/store/${enc(store.id)}` }, store.name),
      h("div.muted.small", {}, [categoryName(store.category), store.address].filter(Boolean).join(" · ")),
      h("div.muted.small", {}, t("stores.checkins", { n: store.checkins_count }), " · ",
        t("stores.followers", { n: store.followers_count }))),
    h("div.store-side", {},
      h("span.distance", {}, formatDistance(store.distance_m)),
      h("button.primary.small.checkin", { type: "button", onclick: () => checkinDialog(store) }, t("checkin.button"))));
}

export async function nearbyView(root) {
  const saved = JSON.parse(sessionStorage.getItem("solomo.nearby") || "{}");
  const category = h("select", { name: "category" }, h("option", { value: "" }, t("stores.all")),
    CATEGORIES.map((c) => h("option", { value: c }, categoryName(c))));
  category.value = saved.category || "";
  const radius = h("select", { name: "radius_m" }, RADII.map((r) => h("option", { value: String(r) }, formatDistance(r))));
  radius.value = String(saved.radius || 2000);
  const list = h("ul.stores");
  const localLink = h("a.button", { href: "#/local" }, t("feed.local"));
  root.append(h("div.page", {},
    h("div.row.spread", {}, h("h2", {}, t("stores.nearby")), localLink),
    h("div.row.filters", {}, category, radius), list));

  const load = async () => {
    sessionStorage.setItem("solomo.nearby", JSON.stringify({ category: category.value, radius: radius.value }));
    list.replaceChildren(h("li.empty", {}, t("common.loading")));
    const loc = session.location;
    try {
      const res = await api.get("/v1/stores/nearby",
        { lat: loc.lat, lng: loc.lng, radius_m: radius.value, category: category.value, limit: 50 });
      list.replaceChildren(...res.items.map(storeRow));
      if (!res.items.length) list.append(h("li.empty", {}, t("stores.none")));
    } catch (err) {
      list.replaceChildren(h("li.empty", {}, err.words));
    }
  };
  category.addEventListener("change", load);
  radius.addEventListener("change", load);
  await load();
}

export async function storeView(root, storeId) {
  const wrap = h("div.page.store-page");
  root.append(wrap);
  let store;
  try {
    store = await api.get(`/v1/stores/${enc(storeId)}`);
  } catch (err) {
    wrap.append(h("p.empty", {}, err.words));
    return;
  }
  const mine = session.user && session.user.id === store.owner_id;
  wrap.append(h("section.card.store-head", {},
    h("h2", {}, store.name),
    h("div.muted", {}, [categoryName(store.category), store.address].filter(Boolean).join(" · ")),
    h("div.small", {}, t("stores.checkins", { n: store.checkins_count }), " · ",
      t("stores.followers", { n: store.followers_count })),
    h("div.small", {}, store.mayor ? t("stores.mayor", { name: store.mayor.display_name || store.mayor.username })
      : t("stores.no_mayor")),
    h("div.row", {}, mine ? null : followButton("store", store.id),
      h("button.primary.checkin", { type: "button", onclick: () => checkinDialog(store) }, t("checkin.button")))));
  wrap.append(h("div.row.store-links", {},
    mine ? h("a.button.small.edit-store", { href: `#/store/${enc(store.id)}/edit` }, t("manage.store_edit")) : null,
    h("a.button.small.store-offers", { href: `#/store/${enc(store.id)}/offers` }, t("manage.offers_link")),
    mine ? h("a.button.small.insights-link", { href: `#/store/${enc(store.id)}/insights` }, t("insights.link")) : null));
  if (mine) wrap.append(merchantConsole(store));
  const list = postList((cursor) => api.get(`/v1/stores/${enc(store.id)}/posts`, { cursor }));
  wrap.append(h("h3", {}, t("stores.posts")), list.el);
  await list.ready;
}

// The store's calendar (contract: Store insights; its insights, the day's loyalty points and the
// regulars audience count its days): one control for the create and the edit form, any IANA name
// the browser knows, checked by the server.
export const DEFAULT_TIMEZONE = "Asia/Shanghai";
let zoneLists = 0;

export function timezoneField(value) {
  const zones = typeof Intl.supportedValuesOf === "function" ? Intl.supportedValuesOf("timeZone") : [];
  const id = `tz-names-${++zoneLists}`; // unique, should two forms ever share a page
  const input = h("input", { name: "timezone", list: id, maxlength: "64", autocomplete: "off",
    value: value || DEFAULT_TIMEZONE });
  const label = field(t("insights.timezone_field"), input);
  label.append(h("span.muted.small.timezone-hint", {}, t("merchant.timezone_hint")));
  return { input, nodes: [label, h("datalist", { id }, zones.map((z) => h("option", { value: z })))] };
}

export function createStoreForm(onCreated) {
  const loc = session.location;
  const name = h("input", { name: "name", required: true, maxlength: "80" }); // checkins.stores.NAME_MAX
  const category = h("select", { name: "category" }, CATEGORIES.map((c) => h("option", { value: c }, categoryName(c))));
  const address = h("input", { name: "address", maxlength: "200" });
  const radius = h("input", { name: "checkin_radius_m", type: "number", min: "20", max: "2000", value: "200" });
  const timezone = timezoneField(DEFAULT_TIMEZONE);
  const where = h("div.muted.small", {}, t("merchant.at_location", { lat: loc.lat.toFixed(5), lng: loc.lng.toFixed(5) }));
  const send = h("button.primary", { type: "submit" }, t("merchant.create"));
  const form = h("form.stack.create-store", {}, field(t("merchant.name"), name),
    field(t("merchant.category"), category), field(t("merchant.address"), address),
    field(t("merchant.radius"), radius), ...timezone.nodes, where, send);
  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    const here = session.location;
    const body = { name: name.value, lat: here.lat, lng: here.lng, category: category.value,
      checkin_radius_m: Number(radius.value), timezone: timezone.input.value.trim() || DEFAULT_TIMEZONE };
    if (address.value.trim()) body.address = address.value;
    try {
      const store = await busy(send, api.post("/v1/stores", body));
      toast(t("merchant.created"));
      onCreated(store);
    } catch (err) {
      toast(err.words, "error");
    }
  });
  return form;
}

export function createStoreDialog(onCreated) {
  const dlg = modal(t("merchant.create"), createStoreForm((store) => { dlg.close(); onCreated(store); }));
}
