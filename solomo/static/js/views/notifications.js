// The notifications inbox: the bell in the header with the unread total (set by every
// `notification` event, whose `total` is the server's count, and asked of
// GET /v1/notifications/unread again when the socket (re)opens, or 1–3 s after an offer
// arrives), and the inbox page: entries newest first, likes and reposts of one post grouped
// ("小明 and 3 others liked your post"), tap → the post (the follower, the store), mark all read.
// Event fields: docs/design.md.

import { api, enc } from "../api.js";
import { busy, h, onLeave, svg, toast } from "../dom.js";
import { formatTime, t } from "../i18n.js";

const KINDS = ["like", "comment", "reply", "mention", "repost", "follow", "offer"];
const BELL = "M6 16.5V11a6 6 0 0 1 12 0v5.5l1.6 2H4.4zM10 21a2.2 2.2 0 0 0 4 0";

let unread = 0;
let onScreen = null; // the inbox page's list while it is shown: {upsert(n)}

function bellIcon() {
  return svg("svg", { class: "icon icon-bell", viewBox: "0 0 24 24", width: 22, height: 22, fill: "none",
    stroke: "currentColor", "stroke-width": 1.8, "stroke-linecap": "round", "stroke-linejoin": "round",
    "aria-hidden": "true" }, svg("path", { d: BELL }));
}

function countText(n) {
  return n > 99 ? "99+" : String(n);
}

// The header's bell; its badge follows `unread` wherever it is drawn.
export function bell() {
  return h("a.bell", { href: "#/notifications", title: t("inbox.title"), "aria-label": t("inbox.title") },
    bellIcon(), h("span.bell-count", { hidden: unread === 0 }, countText(unread)));
}

function setUnread(n) {
  unread = Math.max(0, Number(n) || 0);
  document.body.dataset.unread = String(unread);
  for (const badge of document.querySelectorAll(".bell .bell-count")) {
    badge.textContent = countText(unread);
    badge.hidden = unread === 0;
  }
}

export async function refreshUnread() {
  try {
    setUnread((await api.get("/v1/notifications/unread")).total);
  } catch {
    // offline or signed out: the next event or reconnect sets it
  }
}

// After a delivered offer: the server records the delivery for the inbox just after the offer's
// event goes out, so a count asked at once could miss it; and an offer reaches thousands of
// sockets at once, so each asks once, 1–3 s later (spread), however many offers arrive meanwhile.
let soon = null;
export function refreshUnreadSoon() {
  if (soon !== null) return;
  soon = setTimeout(() => {
    soon = null;
    refreshUnread();
  }, 1000 + Math.random() * 2000);
}

function who(n) {
  const first = n.actors[0];
  return first ? first.display_name || first.username : t("inbox.someone");
}

// "小明 liked your post" / "小明 and 3 others liked your post".
export function notificationText(n) {
  if (n.kind === "offer") return n.offer ? t("inbox.offer", { store: n.offer.store.name }) : t("inbox.offer_gone");
  const key = KINDS.includes(n.kind) ? n.kind : "other";
  const others = n.actor_count - 1;
  if (others > 0 && (n.kind === "like" || n.kind === "repost")) {
    return t(`inbox.${key}.${others === 1 ? "two" : "many"}`, { user: who(n), n: others, total: n.actor_count });
  }
  return t(`inbox.${key}`, { user: who(n) });
}

function target(n) {
  if (n.post) return `#/post/${enc(n.post.id)}`;
  if (n.kind === "offer" && n.offer) return `#/store/${enc(n.offer.store.id)}`;
  if (n.actors[0]) return `#/user/${enc(n.actors[0].id)}`;
  return null;
}

// A `notification` event: the badge takes the server's total; a toast says what happened (tap →
// the post); an open inbox shows the entry at the top.
export function onNotification(data) {
  setUnread(data.total);
  if (onScreen) onScreen.upsert(data);
  const el = toast(notificationText(data), "notification", 5000);
  const href = target(data);
  if (href) el.addEventListener("click", () => { location.hash = href; });
}

function excerpt(n) {
  const text = n.comment ? n.comment.text : n.post ? n.post.text : n.offer ? n.offer.title : "";
  if (!text) return n.post === null && (n.kind === "like" || n.kind === "repost") ? t("inbox.gone") : "";
  return text.length > 80 ? `${text.slice(0, 80)}…` : text;
}

function entry(n) {
  const initials = n.actors.slice(0, 3).map((a) =>
    h("span.avatar", { title: a.display_name }, (a.display_name || a.username || "?").slice(0, 1)));
  const href = target(n);
  const quote = excerpt(n);
  return h(`li.notif${n.read ? "" : ".unread"}`, { dataset: { id: n.id, kind: n.kind } },
    h(href ? "a.notif-link" : "div.notif-link", href ? { href } : {},
      h("div.avatars", {}, initials.length ? initials : h("span.avatar.store", {}, "¥")),
      h("div.notif-body", {},
        h("div.notif-text", {}, notificationText(n)),
        quote ? h("div.notif-quote", {}, quote) : null,
        h("time.muted.small", { datetime: n.updated_at }, formatTime(n.updated_at)))));
}

export async function inboxView(root) {
  let kind = "";
  let cursor = null;
  const list = h("ul.inbox");
  const empty = h("p.empty", { hidden: true }, t("inbox.empty"));
  const more = h("button.more", { type: "button", hidden: true }, t("feed.more"));
  const markAll = h("button.small.mark-all", { type: "button" }, t("inbox.mark_all"));
  const chips = h("div.inbox-kinds", { role: "tablist" }, ["", ...KINDS].map((k) =>
    h(`button.chip${k === kind ? ".on" : ""}`, { type: "button", dataset: { kind: k }, onclick: () => choose(k) },
      t(k ? `inbox.kind.${k}` : "inbox.kind.all"))));
  root.append(h("div.page.inbox-page", {},
    h("div.inbox-head", {}, h("h2", {}, t("inbox.title")), markAll), chips, list, empty, more));

  const load = async (first) => {
    try {
      const res = await busy(more, api.get("/v1/notifications", { kind: kind || undefined,
        cursor: first ? undefined : cursor }));
      if (first) list.replaceChildren();
      for (const n of res.items) {
        list.querySelector(`li.notif[data-id="${CSS.escape(n.id)}"]`)?.remove();
        list.append(entry(n));
      }
      cursor = res.next_cursor;
      more.hidden = !cursor;
      empty.hidden = list.childElementCount > 0;
      if (first && !kind && res.items.some((n) => !n.read)) seen(res.items[0].id);
    } catch (err) {
      empty.hidden = false;
      empty.textContent = err.words;
    }
  };
  // Opening the inbox reads what it shows (Weibo's way): the badge clears, while the entries keep
  // their "new" look on this screen; anything newer stays unread. Best effort: a failure leaves
  // them unread, as they were.
  const seen = (newest) => {
    api.post("/v1/notifications/read", { up_to: newest }).then(refreshUnread, () => {});
  };
  const choose = (k) => {
    kind = k;
    for (const chip of chips.children) chip.classList.toggle("on", chip.dataset.kind === k);
    load(true);
  };
  more.addEventListener("click", () => load(false));
  markAll.addEventListener("click", async () => {
    try {
      await busy(markAll, api.post("/v1/notifications/read", {}));
      for (const li of list.querySelectorAll("li.notif.unread")) li.classList.remove("unread");
      setUnread(0);
    } catch (err) {
      toast(err.words, "error");
    }
  });
  onScreen = {
    upsert(n) {
      if (kind && n.kind !== kind) return;
      list.querySelector(`li.notif[data-id="${CSS.escape(n.id)}"]`)?.remove();
      list.prepend(entry(n));
      empty.hidden = true;
    },
  };
  onLeave(() => { onScreen = null; });
  await load(true);
}
