// Offers that arrive over the socket pop up; claiming one shows the voucher's code and its QR
// code (an SVG drawn by the server from the code: /web/qr.svg). The wallet lists vouchers. One
// claim function (claimOffer) serves the pop-up and the store's offers page (claimButton).

import { api, enc } from "../api.js";
import { busy, h, modal, toast } from "../dom.js";
import { formatDateTime, t } from "../i18n.js";
import { session } from "../session.js";
import { formatDistance } from "./stores.js";

const open = new Map(); // offer id -> dialog, so a replayed event does not stack pop-ups

// The vouchers this page has seen (listed in the wallet, found by a store's offers page, claimed
// here), by offer id. The claim route answers 201 with a new voucher and 200 with the one already
// held; the body does not say which, so an answer with a voucher seen before is "already claimed".
const seen = new Map();

function remember(voucher) {
  seen.set(voucher.offer_id, voucher);
}

// The voucher the signed-in user is known to hold for this offer, or null.
export function heldVoucher(offerId) {
  const v = seen.get(offerId);
  return v && session.user && v.user_id === session.user.id ? v : null;
}

// Reads my vouchers, newest first, back to `since` (no voucher of an offer created then or later
// is older), so heldVoucher knows them; a few pages at most.
export async function learnVouchers(since) {
  const oldest = Date.parse(since);
  let cursor = null;
  for (let pages = 0; pages < 3; pages++) {
    const res = await api.get("/v1/me/vouchers", { limit: 100, cursor });
    res.items.forEach(remember);
    cursor = res.next_cursor;
    const last = res.items[res.items.length - 1];
    if (!cursor || !last || Date.parse(last.created_at) < oldest) return;
  }
}

// The one way to claim: {voucher, fresh} (fresh: not claimed before); throws the ApiError of a
// refusal (sold_out, offer_expired, offer_ended, ...).
export async function claimOffer(offerId) {
  const before = heldVoucher(offerId);
  const voucher = await api.post(`/v1/offers/${enc(offerId)}/claim`);
  remember(voucher);
  return { voucher, fresh: !before || before.id !== voucher.id };
}

// What a claim shows: the voucher, headed "claimed" or "you already claimed this".
export function showClaimed({ voucher, fresh }, title) {
  return voucherDialog(voucher, title, fresh ? t("offer.claimed") : t("claim.already"));
}

// A Claim button for one live offer; once the user holds a voucher for it, it reads "My voucher"
// (pressing it claims again, which answers the voucher held). `onRefused(err)` gets a refusal,
// `onClaimed({voucher, fresh})` a success.
export function claimButton(offer, onRefused, onClaimed = () => {}) {
  const button = h("button.small.claim-offer", { type: "button" });
  const label = () => {
    const held = Boolean(heldVoucher(offer.id));
    button.textContent = held ? t("claim.mine") : t("offer.claim");
    button.classList.toggle("primary", !held);
    button.dataset.held = held ? "1" : "";
  };
  label();
  button.addEventListener("click", async () => {
    try {
      const res = await busy(button, claimOffer(offer.id));
      label();
      showClaimed(res, offer.title);
      onClaimed(res);
    } catch (err) {
      onRefused(err);
    }
  });
  return button;
}

export function qrImage(code, size = 220) {
  return h("img.qr", { src: `/web/qr.svg?text=${enc(code)}`, width: String(size), height: String(size),
    alt: `QR ${code}` });
}

export function voucherDialog(voucher, title, heading = t("offer.claimed")) {
  const body = h("div.voucher", { dataset: { voucherId: voucher.id, status: voucher.status } },
    title ? h("h3", {}, title) : null,
    qrImage(voucher.qr || voucher.code),
    h("div.code-label", {}, t("voucher.code")),
    h("div.code", { "data-code": voucher.code }, voucher.code),
    h("div.muted", {}, t(`voucher.status.${voucher.status}`)),
    voucher.expires_at ? h("div.muted.small", {}, t("voucher.expires", { time: formatDateTime(voucher.expires_at) }))
      : null,
    h("p.small", {}, t("voucher.show_at_counter")));
  return modal(heading, body, { className: "voucher-sheet" });
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
      const res = await busy(claim, claimOffer(offer.id));
      dlg.close();
      showClaimed(res, offer.title);
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
        remember(v);
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
