// Merchants: their stores, and per store a console to post to followers, broadcast an offer,
// redeem a code typed at the counter, and watch each offer's funnel.

import { api, enc } from "../api.js";
import { busy, field, h, toast } from "../dom.js";
import { funnelChart } from "../chart.js";
import { t } from "../i18n.js";
import { loyaltyCards } from "./loyalty.js";
import { audiencePicker } from "./audience.js";
import { categoryName, createStoreDialog } from "./stores.js";

export async function merchantHome(root) {
  const list = h("ul.stores.mine");
  const create = h("button.primary.create-store-open", { type: "button" }, `+ ${t("merchant.create")}`);
  root.append(h("div.page.merchant", {}, h("div.row.spread", {}, h("h2", {}, t("merchant.stores")), create), list));
  create.addEventListener("click", () => createStoreDialog((store) => { location.hash = `#/store/${store.id}`; }));
  try {
    const res = await api.get("/v1/me/stores", { limit: 100 });
    if (!res.items.length) list.append(h("li.empty", {}, t("merchant.none")));
    for (const s of res.items) {
      list.append(h("li.store", { dataset: { storeId: s.id } },
        h("div.store-main", {}, h("a.store-name", { href: `#/store/${enc(s.id)}` }, s.name),
          h("div.muted.small", {}, [categoryName(s.category), s.address].filter(Boolean).join(" · ")),
          h("div.muted.small", {}, t("stores.checkins", { n: s.checkins_count }), " · ",
            t("stores.followers", { n: s.followers_count }))),
        h("div.stack.store-actions", {}, h("a.button.small", { href: `#/store/${enc(s.id)}` }, t("merchant.console")),
          h("a.button.small.insights-link", { href: `#/store/${enc(s.id)}/insights` }, t("insights.link")))));
    }
  } catch (err) {
    list.append(h("li.empty", {}, err.words));
  }
}

function postForm(store) {
  const text = h("textarea", { name: "text", rows: "2", maxlength: "2000", placeholder: t("merchant.post_text") });
  const send = h("button.primary", { type: "submit" }, t("feed.publish"));
  const form = h("form.stack.store-post", {}, text, send);
  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    if (!text.value.trim()) return;
    try {
      await busy(send, api.post("/v1/posts", { text: text.value, store_id: store.id }));
      text.value = "";
      toast(t("feed.posted"));
    } catch (err) {
      toast(err.words, "error");
    }
  });
  return form;
}

function offerForm(store, onSent) {
  const title = h("input", { name: "title", required: true, maxlength: "100" });
  const description = h("input", { name: "description", maxlength: "500" });
  const radius = h("input", { name: "radius_m", type: "number", min: "50", max: "5000", value: "500", required: true });
  const stock = h("input", { name: "stock", type: "number", min: "1", placeholder: "∞" });
  const hours = h("input", { name: "hours", type: "number", min: "1", max: "720", value: "24", required: true });
  const send = h("button.primary", { type: "submit" }, t("merchant.offer_send"));
  const audience = audiencePicker(store, radius);
  const form = h("form.stack.offer-form", {}, field(t("merchant.offer_title"), title),
    field(t("merchant.offer_description"), description),
    h("div.row", {}, field(t("merchant.offer_radius"), radius), field(t("merchant.offer_stock"), stock)),
    field(t("merchant.offer_hours"), hours), audience.element, send);
  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    const body = {
      title: title.value,
      radius_m: Number(radius.value),
      expires_at: new Date(Date.now() + Number(hours.value) * 3600 * 1000).toISOString(),
      stock: stock.value ? Number(stock.value) : null,
      ...audience.values(),
    };
    if (description.value.trim()) body.description = description.value;
    try {
      const offer = await busy(send, api.post(`/v1/stores/${enc(store.id)}/offers`, body));
      toast(t(offer.status === "pending_review" ? "merchant.offer_held" : "merchant.offer_sent"));
      form.reset();
      audience.reset();
      onSent(offer);
    } catch (err) {
      toast(err.words, "error");
    }
  });
  return form;
}

function redeemForm(store) {
  const code = h("input", { name: "code", required: true, autocomplete: "off", autocapitalize: "characters" });
  const send = h("button.primary", { type: "submit" }, t("merchant.redeem_send"));
  const result = h("p.redeem-result", { role: "status" });
  const form = h("form.stack.redeem-form", {}, field(t("merchant.redeem_code"), code), send, result);
  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    result.className = "redeem-result";
    try {
      const res = await busy(send, api.post(`/v1/stores/${enc(store.id)}/redemptions`, { code: code.value.trim() }));
      result.textContent = t("merchant.redeemed", { code: res.voucher.code });
      result.classList.add("ok");
      code.value = "";
    } catch (err) {
      // the owner at their own counter: the only refusal of the store left is a voucher of another
      result.textContent = err.status === 403 ? t("merchant.other_store") : err.words;
      result.classList.add("error");
    }
  });
  return form;
}

async function statsSection(store, box) {
  const titles = new Map();
  const render = async () => {
    try {
      const stats = await api.get(`/v1/stores/${enc(store.id)}/stats`);
      const rows = [];
      for (const o of stats.offers) {
        if (!titles.has(o.offer_id)) {
          titles.set(o.offer_id, await api.get(`/v1/offers/${enc(o.offer_id)}`).then((x) => x.title, () => o.offer_id));
        }
        rows.push({ title: titles.get(o.offer_id), pushed: o.pushed, claimed: o.claimed, redeemed: o.redeemed });
      }
      box.replaceChildren(
        h("div.muted.small", {}, t("merchant.stats", {
          checkins: stats.checkins, visitors: stats.unique_visitors, followers: stats.followers })),
        rows.length ? funnelChart(rows) : h("p.empty", {}, t("merchant.no_offers")));
    } catch (err) {
      box.replaceChildren(h("p.empty", {}, err.words));
    }
  };
  await render();
  return render;
}

export function merchantConsole(store) {
  const statsBox = h("div.stats");
  let refresh = async () => {};
  const el = h("div.console", {},
    h("section.card", {}, h("h3", {}, t("merchant.funnel")), statsBox),
    h("section.card", {}, h("h3", {}, t("merchant.redeem")), redeemForm(store)),
    ...loyaltyCards(store),
    h("section.card", {}, h("h3", {}, t("merchant.offer")),
      offerForm(store, () => refresh())),
    h("section.card", {}, h("h3", {}, t("merchant.post")), postForm(store)));
  statsSection(store, statsBox).then((fn) => { refresh = fn; });
  return el;
}
