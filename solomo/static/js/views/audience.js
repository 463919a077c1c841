// The audience picker of the offer form: who the offer is pushed to (followers, visitors of the last
// N days, regulars with k visit days in 90, anyone nearby), with a live preview read
// from GET /v1/stores/{id}/audience: how many users the audience holds and how many of them are
// reachable within the radius now. The preview follows every change (debounced; an older answer
// arriving late never overwrites a newer one).

import { api, enc } from "../api.js";
import { field, h } from "../dom.js";
import { t } from "../i18n.js";

const KINDS = ["followers", "visitors", "regulars", "nearby"];
const WAIT_MS = 250;

export function audiencePicker(store, radius) {
  const kind = h("select", { name: "audience" }, KINDS.map((k) => h("option", { value: k }, t(`audience.${k}`))));
  const days = h("input", { name: "audience_days", type: "number", min: "1", max: "365", value: "90" });
  const visits = h("input", { name: "min_visits", type: "number", min: "2", max: "90", value: "3" });
  const daysField = field(t("audience.days"), days);
  const visitsField = field(t("audience.min_visits"), visits);
  const hint = h("p.muted.small.audience-hint");
  const size = h("strong.audience-size", {}, "–");
  const online = h("strong.audience-online", {}, "–");
  const preview = h("div.audience-preview", { role: "status", "aria-live": "polite" },
    h("div", {}, size, h("span", {}, t("audience.size"))), h("div", {}, online, h("span", {}, t("audience.online"))));
  const element = h("fieldset.audience-picker", {}, h("legend", {}, t("audience.title")),
    field(t("audience.who"), kind), daysField, visitsField, hint, preview);

  function values() {
    const out = { audience: kind.value };
    if (kind.value === "visitors") out.audience_days = Number(days.value);
    if (kind.value === "regulars") out.min_visits = Number(visits.value);
    return out;
  }

  let timer = 0;
  let asked = 0;
  async function refresh() {
    const mine = ++asked;
    const params = { ...values() };
    if (radius.value) params.radius_m = Number(radius.value);
    preview.classList.add("loading");
    try {
      const res = await api.get(`/v1/stores/${enc(store.id)}/audience`, params);
      if (mine !== asked) return;
      size.textContent = String(res.size) + (res.capped ? "+" : "");
      online.textContent = String(res.online_in_radius);
      preview.classList.remove("invalid");
    } catch (err) {
      if (mine !== asked) return;
      size.textContent = "–";
      online.textContent = "–";
      preview.classList.add("invalid");
      hint.textContent = err.words;
      return;
    } finally {
      if (mine === asked) preview.classList.remove("loading");
    }
    hint.textContent = t(`audience.hint.${kind.value}`, { days: days.value, visits: visits.value });
  }

  function changed() {
    daysField.hidden = kind.value !== "visitors";
    visitsField.hidden = kind.value !== "regulars";
    clearTimeout(timer);
    timer = setTimeout(refresh, WAIT_MS);
  }

  for (const input of [kind, days, visits, radius]) input.addEventListener("input", changed);
  kind.addEventListener("change", changed);
  changed();
  return { element, values, reset: () => { kind.value = "followers"; days.value = "90"; visits.value = "3"; changed(); } };
}
