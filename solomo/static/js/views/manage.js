// Managing what is yours: the profile (name, bio), the password, leaving for good; for merchants
// a store's details and position, and its offers with their statuses and an end button (for
// everyone else, a claim button on each live offer).

import { enc, request } from "../api.js";
import { busy, field, h, onLeave, toast } from "../dom.js";
import { formatDateTime, t } from "../i18n.js";
import { session } from "../session.js";
import { openLocationPicker } from "./location.js";
import { claimButton, learnVouchers } from "./offers.js";
import { uploadPhoto } from "./photos.js";
import { CATEGORIES, categoryName, timezoneField } from "./stores.js";

const patch = (path, body) => request("PATCH", path, body);

// A wrong current password answers 403 invalid_credentials: say so in this screen's words.
function complain(err) {
  toast(err.code === "invalid_credentials" ? t("manage.wrong_password") : err.words, "error");
}

function page(title, back, ...children) {
  // the title takes the room left by the back button (a long store name wraps, not the button)
  return h("div.page.manage", {}, h("div.row.spread", {}, h("h2.grow", {}, title),
    h("a.button.small.back", { href: back }, t("manage.back"))), ...children);
}

export async function profileEditView(root) {
  let user = session.user;
  try {
    user = await request("GET", "/v1/me");
  } catch {
    // edit what this browser has
  }
  const name = h("input", { name: "display_name", required: true, maxlength: "32", value: user.display_name });
  const bio = h("textarea", { name: "bio", rows: "3", maxlength: "160" });
  bio.value = user.bio || "";
  const count = h("span.muted.small.bio-count", {}, `${bio.value.length}/160`);
  bio.addEventListener("input", () => { count.textContent = `${bio.value.length}/160`; });
  const unfollowed = h("input", { name: "offers_from_unfollowed", type: "checkbox",
    checked: user.offers_from_unfollowed !== false });
  const save = h("button.primary", { type: "submit" }, t("manage.save"));
  const form = h("form.stack.card.profile-form", {}, field(t("manage.display_name"), name),
    field(t("manage.bio"), bio), count,
    h("label.row.switch-row", {}, unfollowed, h("span", {}, t("manage.offers_from_unfollowed"))), save);
  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    try {
      const me = await busy(save, patch("/v1/me", { display_name: name.value, bio: bio.value,
        offers_from_unfollowed: unfollowed.checked }));
      session.updateUser({ ...session.user, ...me });
      toast(t("manage.saved"));
    } catch (err) {
      complain(err);
    }
  });
  root.append(page(t("manage.profile"), "#/me", avatarCard(user), form,
    h("section.card.stack", {},
      h("a.button.password-link", { href: "#/me/password" }, t("manage.password")),
      h("a.button.danger.delete-link", { href: "#/me/delete" }, t("manage.delete")))));
}

// The avatar: a photo uploaded as any other (POST /v1/media), then made the avatar by PATCH /v1/me
// (the server claims it, and lets the old one expire); removing it sets null.
function avatarCard(user) {
  const preview = h("span.avatar-preview");
  const status = h("span.muted.small.avatar-status", { role: "status" });
  const input = h("input.avatar-input", { type: "file", accept: "image/*", hidden: true });
  const pick = h("button.small.avatar-pick", { type: "button" }, t("manage.avatar_pick"));
  const remove = h("button.small.avatar-remove", { type: "button" }, t("manage.avatar_remove"));
  const show = (me) => {
    preview.replaceChildren(me.avatar_url
      ? h("img.profile-avatar", { src: me.avatar_url, alt: t("manage.avatar"), width: "64", height: "64" })
      : h("span.profile-avatar.initial", { "aria-hidden": "true" }, (me.display_name || me.username).slice(0, 1)));
    remove.hidden = !me.avatar_url;
  };
  const apply = async (button, mediaId) => {
    const me = await busy(button, patch("/v1/me", { avatar_media_id: mediaId }));
    session.updateUser({ ...session.user, ...me });
    show(me);
    status.textContent = "";
    toast(t("manage.saved"));
  };
  pick.addEventListener("click", () => input.click());
  input.addEventListener("change", async () => {
    const file = input.files && input.files[0];
    input.value = "";
    if (!file) return;
    try {
      const media = await busy(pick, uploadPhoto(file, (done) => {
        status.textContent = `${Math.round(done * 100)}%`;
      }).promise);
      await apply(pick, media.id);
    } catch (err) {
      status.textContent = "";
      toast(err.words, "error");
    }
  });
  remove.addEventListener("click", () => apply(remove, null).catch((err) => toast(err.words, "error")));
  show(user);
  return h("section.card.avatar-card", {}, h("div.profile-head", {}, preview,
    h("div.stack", {}, h("strong", {}, t("manage.avatar")), h("div.row", {}, pick, remove), status)), input);
}

export function passwordView(root) {
  const old = h("input", { name: "old_password", type: "password", required: true, autocomplete: "current-password" });
  const fresh = h("input", { name: "new_password", type: "password", required: true, minlength: "8",
    autocomplete: "new-password" });
  const save = h("button.primary", { type: "submit" }, t("manage.password_save"));
  const form = h("form.stack.card.password-form", {}, field(t("manage.old_password"), old),
    field(t("manage.new_password"), fresh), h("p.muted.small", {}, t("manage.password_note")), save);
  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    try {
      await busy(save, request("POST", "/v1/me/password", { old_password: old.value, new_password: fresh.value }));
      form.reset();
      toast(t("manage.password_saved"));
    } catch (err) {
      complain(err);
    }
  });
  root.append(page(t("manage.password"), "#/me/profile", form));
}

export function deleteAccountView(root, { onDeleted }) {
  const password = h("input", { name: "password", type: "password", required: true,
    autocomplete: "current-password" });
  const go = h("button.danger", { type: "submit" }, t("manage.delete_confirm"));
  const form = h("form.stack.card.delete-form", {},
    h("p", {}, t("manage.delete_what")), h("p.muted.small", {}, t("manage.delete_kept")),
    field(t("manage.password_confirm"), password), go);
  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    try {
      await busy(go, request("DELETE", "/v1/me", { password: password.value }));
      toast(t("manage.deleted"));
      onDeleted();
    } catch (err) {
      complain(err);
    }
  });
  root.append(page(t("manage.delete"), "#/me/profile", form));
}

export async function storeEditView(root, storeId) {
  let store;
  try {
    store = await request("GET", `/v1/stores/${enc(storeId)}`);
  } catch (err) {
    root.append(h("p.empty", {}, err.words));
    return;
  }
  const name = h("input", { name: "name", required: true, maxlength: "80", value: store.name });
  const category = h("select", { name: "category" },
    CATEGORIES.map((c) => h("option", { value: c, selected: c === store.category }, categoryName(c))));
  const address = h("input", { name: "address", maxlength: "200", value: store.address || "" });
  const radius = h("input", { name: "checkin_radius_m", type: "number", min: "20", max: "2000",
    value: String(store.checkin_radius_m) });
  const lat = h("input", { name: "lat", type: "number", step: "any", min: "-90", max: "90", value: String(store.lat) });
  const lng = h("input", { name: "lng", type: "number", step: "any", min: "-180", max: "180",
    value: String(store.lng) });
  // the location picker sets "where I am"; while this screen is open that is where the store goes
  const off = session.onLocation((loc) => {
    lat.value = String(loc.lat);
    lng.value = String(loc.lng);
  });
  onLeave(off);
  const here = h("button.pick-location", { type: "button", onclick: openLocationPicker }, t("manage.pick_location"));
  const timezone = timezoneField(store.timezone); // the store's calendar, as on the create form
  const save = h("button.primary", { type: "submit" }, t("manage.save"));
  const form = h("form.stack.card.store-edit", {}, field(t("merchant.name"), name),
    field(t("merchant.category"), category), field(t("merchant.address"), address),
    field(t("merchant.radius"), radius), ...timezone.nodes,
    h("div.row", {}, field(t("loc.lat"), lat), field(t("loc.lng"), lng)), here, save);
  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    const body = { name: name.value, category: category.value, address: address.value.trim() || null,
      checkin_radius_m: Number(radius.value), lat: Number(lat.value), lng: Number(lng.value),
      timezone: timezone.input.value.trim() };
    if (!Number.isFinite(body.lat) || !Number.isFinite(body.lng)) {
      toast(t("err.invalid"), "error");
      return;
    }
    try {
      store = await busy(save, patch(`/v1/stores/${enc(store.id)}`, body));
      toast(t("manage.saved"));
    } catch (err) {
      complain(err);
    }
  });
  root.append(page(t("manage.store_edit"), `#/store/${enc(store.id)}`, form));
}

// A claim refused for good changes the offer's status on screen.
const REFUSED_STATUS = { sold_out: "sold_out", offer_expired: "expired", offer_ended: "ended" };

// One offer: its status, stock and deadline; the owner can end it, anyone else claim it.
// `withStore`: name the store too (a list of several stores' offers).
export function offerRow(offer, mine, onEnded, { withStore = false } = {}) {
  const status = h(`span.badge.status.status-${offer.status}`, {}, t(`manage.status.${offer.status}`));
  const countsText = () => {
    const stock = offer.stock === null ? `${offer.claimed} · ${t("offer.unlimited")}` : `${offer.claimed}/${offer.stock}`;
    return `${t("manage.claimed")} ${stock} · ${t("manage.until")} ${formatDateTime(offer.expires_at)}`;
  };
  const counts = h("div.muted.small", {}, countsText());
  const endable = mine && (offer.status === "live" || offer.status === "pending_review");
  const end = endable ? h("button.small.danger.end-offer", { type: "button" }, t("manage.end")) : null;
  const refusal = h("p.error.small.claim-error", { role: "alert", hidden: true });
  const claimable = !mine && offer.status === "live" && session.role !== "moderator";
  const claim = claimable ? claimButton(offer, (err) => {
    refusal.hidden = false;
    refusal.textContent = err.words;
    const now = REFUSED_STATUS[err.code];
    if (!now) return;
    claim.remove();
    row.dataset.status = now;
    status.className = `badge status status-${now}`;
    status.textContent = t(`manage.status.${now}`);
  }, ({ fresh }) => {
    refusal.hidden = true;
    if (!fresh) return;
    offer.claimed += 1;
    counts.textContent = countsText();
  }) : null;
  const row = h("li.offer-row", { dataset: { offerId: offer.id, status: offer.status } },
    h("div.offer-main", {},
      withStore ? h("a.small.offer-store", { href: `#/store/${enc(offer.store.id)}` }, offer.store.name) : null,
      h("div", {}, h("strong", {}, offer.title)),
      offer.description && !mine ? h("div.small", {}, offer.description) : null,
      counts, refusal),
    h("div.offer-side", {}, status, end, claim));
  if (end) {
    end.addEventListener("click", async () => {
      if (!window.confirm(t("manage.end_confirm", { title: offer.title }))) return;
      try {
        const ended = await busy(end, request("POST", `/v1/offers/${enc(offer.id)}/end`));
        toast(t("manage.ended"));
        row.replaceWith(offerRow(ended, mine, onEnded, { withStore }));
        onEnded(ended);
      } catch (err) {
        complain(err);
      }
    });
  }
  return row;
}

export async function storeOffersView(root, storeId) {
  const list = h("ul.offer-list");
  const more = h("button.more", { type: "button", hidden: true }, t("feed.more"));
  let store;
  try {
    store = await request("GET", `/v1/stores/${enc(storeId)}`);
  } catch (err) {
    root.append(h("p.empty", {}, err.words));
    return;
  }
  const mine = session.user && session.user.id === store.owner_id;
  root.append(page(t("manage.offers", { name: store.name }), `#/store/${enc(store.id)}`, list, more));
  let cursor = null;
  const load = async () => {
    try {
      const res = await request("GET", `/v1/stores/${enc(store.id)}/offers`, undefined, { query: { cursor } });
      const live = res.items.filter((o) => o.status === "live");
      if (!mine && live.length) {
        // which of these the user already holds (their Claim button reads "My voucher")
        await learnVouchers(live.reduce((a, o) => (o.created_at < a ? o.created_at : a), live[0].created_at))
          .catch(() => {});
      }
      for (const offer of res.items) list.append(offerRow(offer, mine, () => {}));
      if (!list.children.length) list.append(h("li.empty", {}, t("merchant.no_offers")));
      cursor = res.next_cursor;
      more.hidden = !cursor;
    } catch (err) {
      list.append(h("li.empty", {}, err.words));
    }
  };
  more.addEventListener("click", () => busy(more, load()));
  await load();
}
