// Loyalty points: the wallet's balance, history and "spend" QR code (a one-time code a partner
// store charges at the counter), kept live by the `points` event; and, in the merchant console,
// the store's programme settings and the counter's "charge points" form.

import { api, enc } from "../api.js";
import { busy, field, h, modal, toast } from "../dom.js";
import { formatDateTime, t } from "../i18n.js";
import { session } from "../session.js";
import { offerRow } from "./manage.js";
import { learnVouchers, qrImage, walletView } from "./offers.js";

let onScreen = null; // the wallet's points card while it is shown: {balance, history, seen}

function entryRow(e) {
  const sign = e.points > 0 ? "+" : "";
  return h(`li.points-entry.kind-${e.kind}`, { dataset: { entryId: e.id } },
    h("div", {}, h("strong", {}, e.store.name || "—"),
      h("div.muted.small", {}, t(`points.kind.${e.kind}`), " · ", formatDateTime(e.created_at))),
    h(`span.points-delta.${e.points > 0 ? "plus" : "minus"}`, {}, `${sign}${e.points}`));
}

function spendDialog() {
  const body = h("div.spend", {}, h("p.muted", {}, t("points.spend_wait")));
  const dlg = modal(t("points.spend_title"), body, { className: "spend-sheet" });
  api.post("/v1/me/points/spend-codes").then((res) => {
    body.replaceChildren(qrImage(res.qr || res.code),
      h("div.code-label", {}, t("points.spend_code")),
      h("div.code", { "data-code": res.code }, res.code),
      h("div.muted.small", {}, t("points.spend_until", { time: formatDateTime(res.expires_at) })),
      h("p.small", {}, t("points.spend_hint")));
  }, (err) => body.replaceChildren(h("p.error", { role: "alert" }, err.words)));
  return dlg;
}

// The wallet: points first, then the vouchers (offers.js).
export async function walletPage(root) {
  const amount = h("span.points-balance", {}, "…");
  const totals = h("div.muted.small.points-totals");
  const history = h("ul.points-history");
  const more = h("button.more", { type: "button", hidden: true }, t("feed.more"));
  const spend = h("button.primary.spend-open", { type: "button", onclick: () => spendDialog() }, t("points.spend"));
  const card = h("section.card.points-card", {},
    h("div.row.spread", {}, h("div", {}, h("div.muted.small", {}, t("points.title")), amount), spend),
    totals, h("h3", {}, t("points.history")), history, more);
  root.append(h("div.page.points-page", {}, card));
  const seen = new Set();
  onScreen = { amount, totals, history, seen, card };
  let cursor = null;
  const loadMore = async () => {
    try {
      const page = await busy(more, api.get("/v1/me/points/history", { cursor }));
      for (const e of page.items) {
        if (seen.has(e.id)) continue;
        seen.add(e.id);
        history.append(entryRow(e));
      }
      cursor = page.next_cursor;
      more.hidden = !cursor;
      if (!history.childElementCount) history.append(h("li.empty", {}, t("points.none")));
    } catch (err) {
      toast(err.words, "error");
    }
  };
  more.addEventListener("click", loadMore);
  try {
    showBalance(await api.get("/v1/me/points"));
  } catch (err) {
    toast(err.words, "error");
  }
  await loadMore();
  await walletView(root);
  await nearbyOffers(root);
}

// Live offers whose radius covers where I am (GET /v1/offers/nearby, nearest store first), each
// with its Claim button: what the pop-up would have offered, for whoever missed it.
async function nearbyOffers(root) {
  const here = session.location;
  if (!here) return;
  const list = h("ul.offer-list.nearby-offers");
  root.append(h("div.page", {}, h("h2", {}, t("claim.nearby")), list));
  try {
    const res = await api.get("/v1/offers/nearby", { lat: here.lat, lng: here.lng, limit: 20 });
    if (res.items.length) {
      await learnVouchers(res.items.reduce((a, o) => (o.created_at < a ? o.created_at : a), res.items[0].created_at))
        .catch(() => {});
    }
    for (const offer of res.items) list.append(offerRow(offer, false, () => {}, { withStore: true }));
    if (!list.childElementCount) list.append(h("li.empty", {}, t("claim.nearby_none")));
  } catch (err) {
    list.append(h("li.empty", {}, err.words));
  }
}

function showBalance(b) {
  if (!onScreen || !onScreen.card.isConnected) return;
  onScreen.amount.textContent = String(b.balance);
  onScreen.amount.dataset.balance = String(b.balance);
  onScreen.totals.textContent = t("points.totals", { earned: b.earned, spent: b.spent });
}

// The `points` event (docs/design.md): the new balance and the entry that moved it.
export function onPoints(data) {
  const delta = data.entry.points > 0 ? `+${data.entry.points}` : String(data.entry.points);
  toast(t("points.moved", { delta, balance: data.balance }));
  if (!onScreen || !onScreen.card.isConnected) return;
  showBalance(data);
  if (onScreen.seen.has(data.entry.id)) return;
  onScreen.seen.add(data.entry.id);
  onScreen.history.querySelector(".empty")?.remove();
  onScreen.history.prepend(entryRow(data.entry));
}

function settingsForm(store) {
  const enabled = h("input", { name: "enabled", type: "checkbox" });
  const checkin = h("input", { name: "checkin_points", type: "number", min: "0", max: "1000", step: "1", value: "0" });
  const redemption = h("input", { name: "redemption_points", type: "number", min: "0", max: "1000", step: "1",
    value: "0" });
  const save = h("button.primary", { type: "submit" }, t("points.save"));
  const form = h("form.stack.loyalty-form", {},
    h("label.check", {}, enabled, h("span", {}, t("points.enabled"))),
    h("div.row", {}, field(t("points.checkin_points"), checkin), field(t("points.redemption_points"), redemption)),
    save);
  api.get(`/v1/stores/${enc(store.id)}/loyalty`).then((s) => {
    enabled.checked = s.enabled;
    checkin.value = String(s.checkin_points);
    redemption.value = String(s.redemption_points);
  }, () => {});
  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    const body = { enabled: enabled.checked, checkin_points: Number(checkin.value),
      redemption_points: Number(redemption.value) };
    try {
      await busy(save, api.put(`/v1/stores/${enc(store.id)}/loyalty`, body));
      toast(t("points.saved"));
    } catch (err) {
      toast(err.words, "error");
    }
  });
  return form;
}

function chargeForm(store) {
  const code = h("input", { name: "code", required: true, autocomplete: "off", autocapitalize: "characters" });
  const points = h("input", { name: "points", type: "number", min: "1", max: "100000", step: "1", required: true });
  const send = h("button.primary", { type: "submit" }, t("points.charge_send"));
  const result = h("p.charge-result", { role: "status" });
  const form = h("form.stack.charge-form", {}, field(t("points.charge_code"), code),
    field(t("points.charge_points"), points), send, result);
  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    result.className = "charge-result";
    try {
      // api.post sends an Idempotency-Key, kept until the charge has a definite answer: a resend after a
      // dropped connection, or the merchant tapping again, never charges twice
      const res = await busy(send, api.post(`/v1/stores/${enc(store.id)}/points/charge`,
        { code: code.value.trim(), points: Number(points.value) }));
      result.textContent = t("points.charged", { points: res.points });
      result.classList.add("ok");
      code.value = "";
      points.value = "";
    } catch (err) {
      result.textContent = err.words;
      result.classList.add("error");
    }
  });
  return form;
}

// A day of the store's calendar (its time zone, as the ledger's days are), `back` days ago.
function storeDay(store, back = 0) {
  const at = new Date(Date.now() - back * 86400000);
  try {
    return new Intl.DateTimeFormat("en-CA", { timeZone: store.timezone || "Asia/Shanghai" }).format(at);
  } catch {
    return at.toISOString().slice(0, 10); // an unknown zone: UTC's day
  }
}

// What the programme settles with the store, per store-local day (GET …/points/ledger): the last
// 30 days first, any range of the API's up to the merchant.
function ledgerForm(store) {
  const from = h("input", { name: "from", type: "date", required: true, value: storeDay(store, 29) });
  const to = h("input", { name: "to", type: "date", required: true, value: storeDay(store) });
  const show = h("button", { type: "submit" }, t("points.ledger_show"));
  const result = h("div.ledger-result", { role: "status" });
  const form = h("form.stack.ledger-form", {}, h("div.row", {}, field(t("points.ledger_from"), from),
    field(t("points.ledger_to"), to)), show, result);
  const load = async () => {
    try {
      const res = await busy(show, api.get(`/v1/stores/${enc(store.id)}/points/ledger`,
        { from: from.value, to: to.value }));
      const active = res.days.filter((d) => d.issued || d.spent).reverse();
      result.replaceChildren(
        h("p.ledger-totals", {}, t("points.ledger_totals", { issued: res.issued, spent: res.spent, net: res.net })),
        active.length
          ? h("ul.ledger-days", {}, active.map((d) => h("li.row.spread", { dataset: { date: d.date } },
            h("span", {}, d.date), h("span.muted", {}, `+${d.issued} / −${d.spent}`))))
          : h("p.muted", {}, t("points.ledger_none")));
    } catch (err) {
      result.replaceChildren(h("p.error", { role: "alert" }, err.words));
    }
  };
  form.addEventListener("submit", (e) => {
    e.preventDefault();
    load();
  });
  load();
  return form;
}

// The merchant console's cards: charging points at the counter, the programme settings, and what
// the programme settles with the store.
export function loyaltyCards(store) {
  return [
    h("section.card.points-counter", {}, h("h3", {}, t("points.charge")), chargeForm(store)),
    h("section.card.loyalty-settings", {}, h("h3", {}, t("points.programme")), settingsForm(store)),
    h("section.card.points-ledger", {}, h("h3", {}, t("points.ledger")), ledgerForm(store)),
  ];
}
