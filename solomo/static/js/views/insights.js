// A merchant's insights for one store (GET /v1/stores/{id}/insights): the numbers, the daily
// check-ins line, the hours bars, the offer funnels and the top topics, for 7 to 365 days.

import { api, enc } from "../api.js";
import { h } from "../dom.js";
import { funnelChart, hourBars, lineChart } from "../chart.js";
import { t } from "../i18n.js";

const PERIODS = [7, 30, 90, 365];

function tile(cls, value, label) {
  return h(`div.tile.${cls}`, {}, h("div.tile-value", {}, String(value)), h("div.tile-label", {}, label));
}

function sum(rows, key) {
  return rows.reduce((n, r) => n + r[key], 0);
}

function render(body, data) {
  const rows = data.days;
  const visits = sum(rows, "checkins");
  const newcomers = sum(rows, "new_visitors");
  const funnels = data.offers.map((o) => ({ title: o.title, pushed: o.pushed, claimed: o.claimed,
    redeemed: o.redeemed }));
  body.replaceChildren(
    h("div.tiles", {},
      tile("checkins", visits, t("insights.checkins")),
      tile("new", newcomers, t("insights.new")),
      tile("repeat", `${Math.round(data.repeat_rate * 1000) / 10}%`, t("insights.repeat")),
      tile("points", `${data.points.issued} / ${data.points.spent}`, t("insights.points"))),
    h("p.muted.small.repeat-help", {}, t("insights.repeat_help")),
    h("section.card.daily", {}, h("h3", {}, t("insights.daily")), lineChart(rows),
      h("div.legend.muted.small", {}, t("insights.daily_legend", {
        unique: sum(rows, "unique_visitors"), returning: sum(rows, "returning_visitors") }))),
    h("section.card.hours", {}, h("h3", {}, t("insights.hours")), hourBars(data.hours)),
    h("section.card.offers", {}, h("h3", {}, t("insights.offers")),
      funnels.length ? funnelChart(funnels) : h("p.empty", {}, t("merchant.no_offers"))),
    h("section.card.topics", {}, h("h3", {}, t("insights.topics")),
      data.top_topics.length
        ? h("ol.top-topics", {}, data.top_topics.map((x) => h("li", {},
          h("a", { href: `#/topic/${enc(x.topic)}` }, `#${x.topic}`), h("span.muted", {}, ` ${x.post_count}`))))
        : h("p.empty", {}, t("insights.no_topics"))));
}

export async function insightsView(root, storeId) {
  let store;
  try {
    store = await api.get(`/v1/stores/${enc(storeId)}`);
  } catch (err) {
    root.append(h("p.empty", {}, err.words));
    return;
  }
  const body = h("div.insights-body", { "aria-live": "polite" });
  const picker = h("div.period", { role: "group" });
  const page = h("div.page.insights", { dataset: { storeId } },
    h("div.row.spread", {}, h("h2", {}, t("insights.title", { name: store.name })),
      h("a.button.small", { href: `#/store/${enc(storeId)}` }, t("insights.back"))),
    h("p.muted.small.tz", {}, t("insights.timezone", { tz: store.timezone })), picker, body);
  root.append(page);
  const load = async (days) => {
    for (const b of picker.children) b.classList.toggle("active", Number(b.dataset.days) === days);
    page.dataset.ready = "";
    try {
      render(body, await api.get(`/v1/stores/${enc(storeId)}/insights`, { days }));
    } catch (err) {
      body.replaceChildren(h("p.empty", {}, err.words));
    }
    page.dataset.ready = String(days);
  };
  for (const days of PERIODS) {
    picker.append(h("button.small", { type: "button", dataset: { days: String(days) }, onclick: () => load(days) },
      t("insights.days", { n: days })));
  }
  await load(30);
}
