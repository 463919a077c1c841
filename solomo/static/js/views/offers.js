// Offers that arrive over the socket pop up; claiming one shows the voucher's code and its QR
// code (an SVG drawn by the server from the code: /web/qr.svg). The wallet lists vouchers.

import { api, enc } from "../api.js";
import { busy, h, modal, toast } from "../dom.js";
import { formatDateTime, t } from "../i18n.js";
import { formatDistance } from "./stores.js";

const open = new Map(); // offer id -> dialog, so a replayed event does not stack pop-ups

export function qrImage(code, size = 220) {
  return h("img.qr", { src: `/web/qr.svg?text=${enc(code)}`, width: String(size), height: String(size),
    alt: `QR ${code}` });
}

export function voucherDialog(voucher, title) {
  const body = h("div.voucher", { dataset: { voucherId: voucher.id, status: voucher.status } },
    title ? h("h3", {}, title) : null,
    qrImage(voucher.qr || voucher.code),
    h("div.code-label", {}, t("voucher.code")),
    h("div.code", { "data-code": voucher.code }, voucher.code),
    h("div.muted", {}, t(`voucher.status.${voucher.status}`)),
    voucher.expires_at ? h("div.muted.small", {}, t("voucher.expires", { time: formatDateTime(voucher.expires_at) }))
      : null,
    h("p.small", {}, t("voucher.show_at_counter")));
  return modal(t("offer.claimed"), body, { className: "voucher-sheet" });
}

// `offer`: the data of an `offer` event (the Offer plus `distance_m`; docs/design.md).
export function offerPopup(offer) {
  if (open.has(offer.id)) return open.get(offer.id);
  const claim = h("button.primary.claim", { type: "button" }, t("offer.claim"));
  const dismiss = h("button.dismiss", { type: "button" }, t("offer.dismiss"));
  const stock = offer.stock === null ? t("offer.unlimited")
    : t("offer.stock", { left: Math.max(0, offer.stock - offer.claimed), stock: offer.stock });
  const errorEl = h("p.error", { role: "alert", hidden: true });
  const body = h("div.offer", { dataset: { offerId: offer.id } },
    h("div.offer-store", {}, h("a", { href: `#/store/${enc(offer.store.id)}` }, offer.store.name),
      h("span.muted", {}, ` · ${formatDistance(offer.distance_m)}`)),
    h("h3.offer-title", {}, offer.title),
    offer.description ? h("p", {}, offer.description) : null,
    h("div.muted.small", {}, stock, " · ", t("voucher.expires", { time: formatDateTime(offer.expires_at) })),
    errorEl,
    h("div.row", {}, claim, dismiss));
  const dlg = modal(t("offer.popup"), body, { className: "offer-sheet", onClose: () => open.delete(offer.id) });
  open.set(offer.id, dlg);
  dismiss.addEventListener("click", dlg.close);
  claim.addEventListener("click", async () => {
    try {
      const voucher = await busy(claim, api.post(`/v1/offers/${enc(offer.id)}/claim`));
      dlg.close();
      voucherDialog(voucher, offer.title);
    } catch (err) {
      errorEl.hidden = false;
      errorEl.textContent = err.words;
    }
  });
  return dlg;
}

export async function walletView(root) {
  const list = h("ul.vouchers");
  const more = h("button.more", { type: "button", hidden: true }, t("feed.more"));
  root.append(h("div.page", {}, h("h2", {}, t("wallet.title")), list, more));
  const titles = new Map();
  let cursor = null;
  const load = async () => {
    try {
      const res = await busy(more, api.get("/v1/me/vouchers", { cursor }));
      for (const v of res.items) {
        const title = h("strong", {}, "…");
        const row = h(`li.voucher-row.status-${v.status}`, { dataset: { voucherId: v.id } },
          h("div", {}, title, h("div.code.small", {}, v.code),
            h("div.muted.small", {}, t(`voucher.status.${v.status}`))),
          h("button.small", { type: "button", onclick: () => voucherDialog(v, title.textContent) }, t("wallet.show_qr")));
        list.append(row);
        if (!titles.has(v.offer_id)) {
          titles.set(v.offer_id, api.get(`/v1/offers/${enc(v.offer_id)}`).then((o) => o.title, () => ""));
        }
        titles.get(v.offer_id).then((text) => { title.textContent = text; });
      }
      cursor = res.next_cursor;
      more.hidden = !cursor;
      if (!list.childElementCount) list.append(h("li.empty", {}, t("wallet.none")));
    } catch (err) {
      toast(err.words, "error");
    }
  };
  more.addEventListener("click", load);
  await load();
}
