// Moderators: the queue (reported and flagged posts) with single and bulk actions, the comments
// held for review, user suspension, the word lists and the audit log.

import { api, ApiError, enc } from "../api.js";
import { busy, field, h, pagedList, toast } from "../dom.js";
import { formatDateTime, formatTime, has, t } from "../i18n.js";
import { postCard, richText, userLink } from "./posts.js";

const ACTIONS = ["approve", "hide", "remove", "restore"];

async function moderatePost(postId, action, reason) {
  return api.post(`/v1/moderation/posts/${enc(postId)}`, { action, reason });
}

// The bulk route decides each id on its own; items come back as {id, ok, post | error}.
async function moderateMany(ids, action, reason) {
  const res = await api.post("/v1/moderation/posts/bulk", { ids: ids.slice(0, 100), action, reason });
  return res.items;
}

export async function suspendUser(userId, action, reason) {
  return api.post(`/v1/moderation/users/${enc(userId)}`, { action, reason });
}

// A reason field and one button per action; a button with a reason runs `decide(action, reason)`,
// then `onDone()`. Shared by the post and offer items of the queue.
function decisionControls(actions, decide, onDone) {
  const reason = h("input", { name: "reason", placeholder: t("mod.reason"), maxlength: "500" });
  const buttons = actions.map((action) => h(`button.small.act-${action}`, {
    type: "button",
    onclick: async (e) => {
      if (!reason.value.trim()) {
        toast(t("mod.reason_required"), "error");
        reason.focus();
        return;
      }
      try {
        await busy(e.currentTarget, decide(action, reason.value.trim()));
        onDone();
      } catch (err) {
        toast(err.words, "error");
      }
    },
  }, t(`mod.${action}`)));
  return { reason, buttons };
}

// A known word in the user's language, else the server's own (a source or action added later).
const named = (key, raw) => (has(key) ? t(key) : raw);

function flagList(item) {
  return (item.flags || []).map((f) => h("li", {}, typeof f === "string" ? f
    : [named(`mod.flag.${f.source}`, f.source), (f.words || []).join(", ")].filter(Boolean).join(": ")));
}

// An offer held for review (a review word in its title or description): approve pushes it,
// remove ends it. It is not part of the bulk selection (that route decides posts).
function offerItem(item, onDone) {
  const { offer } = item;
  const { reason, buttons } = decisionControls(["approve", "remove"],
    (action, why) => api.post(`/v1/moderation/offers/${enc(offer.id)}`, { action, reason: why }),
    () => onDone(offer.id));
  const flags = flagList(item);
  return h("div.queue-item.offer-item", { dataset: { offerId: offer.id } },
    h("div.card.offer-held", {}, h("div.muted.small", {}, `${t("mod.held_offer")} · ${offer.store.name}`),
      h("strong", {}, offer.title), offer.description ? h("p", {}, offer.description) : null),
    flags.length ? h("div.small", {}, h("strong", {}, t("mod.flags")), h("ul", {}, flags)) : null,
    reason, h("div.row.wrap.actions", {}, buttons));
}

function queueItem(item, selection, onDone) {
  if (item.offer) return offerItem(item, onDone);
  const { post } = item;
  const check = h("input", { type: "checkbox", class: "select", "aria-label": post.id });
  check.addEventListener("change", () => {
    if (check.checked) selection.add(post.id);
    else selection.delete(post.id);
    selection.changed();
  });
  const { reason, buttons } = decisionControls(ACTIONS, (action, why) => moderatePost(post.id, action, why),
    () => onDone(post.id));
  const suspend = h("button.small.link.suspend-author", {
    type: "button",
    onclick: async (e) => {
      if (!reason.value.trim()) {
        toast(t("mod.reason_required"), "error");
        return;
      }
      try {
        await busy(e.currentTarget, suspendUser(post.author.id, "suspend", reason.value.trim()));
        toast(`${t("user.suspend")}: @${post.author.username}`);
      } catch (err) {
        toast(err.words, "error");
      }
    },
  }, t("mod.suspend_author"));
  const reports = (item.reports || []).map((r) => h("li", {}, `${t(`report.${r.reason}`)}${r.note ? ": " : ""}`,
    r.note || ""));
  const flags = flagList(item);
  return h("div.queue-item", { dataset: { postId: post.id } },
    h("div.row", {}, check, h("div.grow", {}, postCard(post, { actions: false }))),
    reports.length ? h("div.small", {}, h("strong", {}, `${t("mod.reports")} (${reports.length})`), h("ul", {}, reports))
      : null,
    flags.length ? h("div.small", {}, h("strong", {}, t("mod.flags")), h("ul", {}, flags)) : null,
    reason, h("div.row.wrap.actions", {}, buttons, suspend));
}

export async function queueView(root) {
  const selection = new Set();
  const list = h("div.queue");
  const pages = pagedList(list, (cursor) => api.get("/v1/moderation/queue", { cursor }),
    (item) => queueItem(item, selection, remove), t("mod.empty"));
  const selectAll = h("input", { type: "checkbox", class: "select-all" });
  const bulkAction = h("select", { name: "bulk_action" }, ACTIONS.map((a) => h("option", { value: a }, t(`mod.${a}`))));
  bulkAction.value = "remove";
  const bulkReason = h("input", { name: "bulk_reason", placeholder: t("mod.reason"), maxlength: "500" });
  const bulkBtn = h("button.primary.bulk-apply", { type: "button", disabled: true }, t("mod.bulk", { n: 0 }));
  selection.changed = () => {
    bulkBtn.textContent = t("mod.bulk", { n: selection.size });
    bulkBtn.disabled = selection.size === 0;
  };
  function remove(id) { // a decided post or offer leaves the list
    selection.delete(id);
    selection.changed();
    list.querySelector(`[data-post-id="${CSS.escape(id)}"], [data-offer-id="${CSS.escape(id)}"]`)?.remove();
    pages.settle();
  }
  selectAll.addEventListener("change", () => {
    for (const box of list.querySelectorAll("input.select")) {
      box.checked = selectAll.checked;
      box.dispatchEvent(new Event("change"));
    }
  });
  bulkBtn.addEventListener("click", async () => {
    if (!bulkReason.value.trim()) {
      toast(t("mod.reason_required"), "error");
      return;
    }
    const ids = [...selection];
    try {
      const results = await busy(bulkBtn, moderateMany(ids, bulkAction.value, bulkReason.value.trim()));
      const done = results.filter((r) => r.ok);
      done.forEach((r) => remove(r.id));
      const failed = results.filter((r) => !r.ok);
      toast(t("mod.done", { n: done.length }), failed.length ? "error" : "info");
      if (failed.length) toast(`${failed[0].id}: ${failed[0].error.message}`, "error");
    } catch (err) {
      toast(err.words, "error");
    }
  });

  root.append(h("div.page.moderation", {}, queueSwitch(false), h("h2", {}, t("mod.queue")),
    h("div.bulk-bar", {}, h("label.check", {}, selectAll, " ", t("mod.select_all")), bulkAction, bulkReason, bulkBtn),
    list, pages.more));
  await pages.load();
}

// The two queues: posts and offers, and comments held for review.
function queueSwitch(comments) {
  const link = (href, on, label, queue) => h(`a.seg-item${on ? ".active" : ""}`,
    { href, dataset: { queue }, "aria-current": on ? "page" : null }, label);
  return h("nav.seg.queue-switch", { "aria-label": t("mod.queues") },
    link("#/mod/queue", !comments, t("mod.queue_posts"), "posts"),
    link("#/mod/queue/comments", comments, t("mod.queue_comments"), "comments"));
}

// A comment held for review (a review word in it), with what it answers: approve publishes it,
// remove takes it away for good.
function heldCommentItem(item, onDone) {
  const { comment, post } = item;
  const { reason, buttons } = decisionControls(["approve", "remove"],
    (action, why) => api.post(`/v1/moderation/comments/${enc(comment.id)}`, { action, reason: why }),
    () => onDone(comment.id));
  const flags = flagList(item);
  const on = post
    ? h("a.small.held-on", { href: `#/post/${enc(post.id)}` },
      t("mod.comment_on", { name: post.author.display_name || post.author.username }),
      post.text ? h("span.muted", {}, ` “${post.text.length > 80 ? `${post.text.slice(0, 80)}…` : post.text}”`) : null)
    : h("div.muted.small.held-on", {}, t("mod.comment_post_gone"));
  return h("div.queue-item.comment-item", { dataset: { commentId: comment.id } }, on,
    h("div.post.held-comment", {}, h("header.post-head", {}, userLink(comment.author),
      h("time", { datetime: comment.created_at, title: formatDateTime(comment.created_at) },
        formatTime(comment.created_at))),
    h("p.text", {}, richText(comment.text))),
    flags.length ? h("div.small", {}, h("strong", {}, t("mod.flags")), h("ul", {}, flags)) : null,
    reason, h("div.row.wrap.actions", {}, buttons));
}

export async function heldCommentsView(root) {
  const list = h("div.queue.held-comments");
  const pages = pagedList(list, (cursor) => api.get("/v1/moderation/comments", { cursor }),
    (item) => heldCommentItem(item, remove), t("mod.comments_empty"));
  function remove(id) { // a decided comment leaves the list
    list.querySelector(`[data-comment-id="${CSS.escape(id)}"]`)?.remove();
    pages.settle();
  }
  root.append(h("div.page.moderation", {}, queueSwitch(true), h("h2", {}, t("mod.held_comments")),
    h("p.muted.small", {}, t("mod.held_comments_hint")), list, pages.more));
  await pages.load();
}

export async function wordsView(root) {
  const block = h("textarea", { name: "block", rows: "6" });
  const review = h("textarea", { name: "review", rows: "6" });
  const save = h("button.primary", { type: "submit" }, t("mod.save"));
  const form = h("form.stack.words-form", {}, h("p.muted.small", {}, t("mod.one_per_line")),
    field(t("mod.block"), block), field(t("mod.review"), review), save);
  root.append(h("div.page", {}, h("h2", {}, t("mod.words")), form));
  const lines = (text) => text.split("\n").map((w) => w.trim()).filter(Boolean);
  try {
    const words = await api.get("/v1/moderation/words");
    block.value = (words.block || []).join("\n");
    review.value = (words.review || []).join("\n");
  } catch (err) {
    toast(err.words, "error");
  }
  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    try {
      const words = await busy(save, api.put("/v1/moderation/words", { block: lines(block.value),
        review: lines(review.value) }));
      block.value = (words.block || []).join("\n");
      review.value = (words.review || []).join("\n");
      toast(t("mod.saved"));
    } catch (err) {
      toast(err.words, "error");
    }
  });
}

export async function auditView(root) {
  const list = h("ol.audit");
  const more = h("button.more", { type: "button", hidden: true }, t("feed.more"));
  root.append(h("div.page", {}, h("h2", {}, t("mod.audit")), list, more));
  let cursor = null;
  const load = async () => {
    try {
      const res = await busy(more, api.get("/v1/moderation/audit", { cursor }));
      for (const e of res.items) {
        list.append(h("li.audit-entry", { dataset: { id: e.id } },
          h("div", {}, h("strong", {}, named(`mod.log.${e.action}`, e.action)), " ",
            named(`mod.target.${e.target_type}`, e.target_type), " ", h("span.muted.small", {}, e.target_id)),
          h("div.small", {}, e.reason),
          h("div.muted.small", {}, `${formatDateTime(e.created_at)} · ${e.moderator_id}`)));
      }
      cursor = res.next_cursor;
      more.hidden = !cursor;
      if (!list.childElementCount) list.append(h("li.empty", {}, t("feed.empty")));
    } catch (err) {
      list.append(h("li.empty", {}, err.words));
    }
  };
  more.addEventListener("click", load);
  await load();
}

// A user named as the moderator knows them: "@name" or "name" (looked up through user search, the
// exact username only), or an id (a profile's "Suspend" link brings one).
async function userIdOf(named) {
  const text = named.trim().replace(/^@/, "");
  const wanted = text.toLowerCase();
  // the username's own tier comes first and holds every name it starts: read on while the page
  // still is that tier (a short name many longer ones start with), a few pages at most
  let cursor;
  for (let pages = 0; pages < 10; pages++) {
    const found = await api.get("/v1/search/users", { q: text, limit: 50, cursor });
    const user = found.items.find((u) => u.username.toLowerCase() === wanted);
    if (user) return user.id;
    const stillPrefixed = found.items.length && found.items.every((u) => u.username.toLowerCase().startsWith(wanted));
    if (!found.next_cursor || !stillPrefixed) break;
    cursor = found.next_cursor;
  }
  if (/^[0-9a-f]{24}$/.test(text)) return text; // nobody has it as a name: an id (a profile's link)
  throw new ApiError(404, "not_found", "no user has this name");
}

export function usersView(root, presetId = "") {
  const id = h("input", { name: "user_id", value: presetId, required: true, autocomplete: "off",
    autocapitalize: "none", placeholder: t("mod.user_hint") });
  const reason = h("input", { name: "reason", required: true, maxlength: "500" });
  const result = h("p.small", { role: "status" });
  const go = (action) => async (e) => {
    if (!id.value.trim() || !reason.value.trim()) {
      toast(t("mod.reason_required"), "error");
      return;
    }
    try {
      const user = await busy(e.currentTarget,
        userIdOf(id.value).then((uid) => suspendUser(uid, action, reason.value.trim())));
      result.textContent = `${t(`user.${action}`)}: @${user.username}`;
    } catch (err) {
      result.textContent = err.words;
    }
  };
  root.append(h("div.page", {}, h("h2", {}, t("mod.users")),
    h("div.stack", {}, field(t("mod.user_id"), id), field(t("mod.reason"), reason),
      h("div.row", {}, h("button.primary", { type: "button", onclick: go("suspend") }, t("user.suspend")),
        h("button", { type: "button", onclick: go("unsuspend") }, t("user.unsuspend"))), result)));
}
