// Post cards (text with linked #topics# and @mentions), likes, reports, deletion, and the
// post page with comments and replies.

import { api, enc } from "../api.js";
import { busy, clear, field, h, modal, toast } from "../dom.js";
import { formatTime, t } from "../i18n.js";
import { icon } from "../icons.js";
import { session } from "../session.js";
import { photoGrid } from "./photos.js";
import { originalEmbed, repostButton, repostsSection, repostText } from "./reposts.js";

// Splits post text into text, topic and mention pieces. Weibo topics are "#…#" (1..32 chars,
// one line, no space just inside); "#tag" is a run of letters, digits or _; mentions "@name".
const TOKEN_RE = /#([^#\n\r]{1,32})#|#([\p{L}\p{N}_]+)|(?<![\w@])@([A-Za-z0-9_]{3,32})(?![A-Za-z0-9_])/gu;

export function richText(text) {
  const out = [];
  let last = 0;
  for (const m of text.matchAll(TOKEN_RE)) {
    const [whole, weibo, tag, mention] = m;
    if (weibo !== undefined && weibo !== weibo.trim()) continue;
    if (m.index > last) out.push(text.slice(last, m.index));
    if (mention) {
      out.push(h("span.mention", {}, whole));
    } else {
      const topic = weibo !== undefined ? weibo : tag;
      out.push(h("a.topic", { href: `#/topic/${enc(topic)}` }, whole));
    }
    last = m.index + whole.length;
  }
  if (last < text.length) out.push(text.slice(last));
  return out;
}

export function userLink(user) {
  return h("a.author", { href: `#/user/${enc(user.id)}` },
    h("strong", {}, user.display_name || user.username), " ", h("span.muted", {}, `@${user.username}`));
}

export function postCard(post, { onRemoved, compact = false, actions = true, embed = true } = {}) {
  const card = h("article.post", { dataset: { postId: post.id, status: post.status } });
  const likeBtn = h("button.like", { type: "button", "aria-pressed": String(Boolean(post.liked_by_me)) });
  const renderLike = () => {
    likeBtn.textContent = `${post.liked_by_me ? "♥" : "♡"} ${post.like_count}`;
    likeBtn.setAttribute("aria-pressed", String(Boolean(post.liked_by_me)));
    likeBtn.classList.toggle("on", Boolean(post.liked_by_me));
  };
  renderLike();
  likeBtn.addEventListener("click", async () => {
    const want = !post.liked_by_me;
    try {
      const res = await busy(likeBtn, want ? api.post(`/v1/posts/${enc(post.id)}/like`)
        : api.del(`/v1/posts/${enc(post.id)}/like`));
      post.like_count = res.like_count;
      post.liked_by_me = res.liked_by_me;
      renderLike();
    } catch (err) {
      toast(err.words, "error");
    }
  });

  const head = h("header.post-head", {}, userLink(post.author),
    h("time", { datetime: post.created_at, title: post.created_at }, formatTime(post.created_at)));
  const meta = [];
  if (post.store) {
    meta.push(h("a.store-chip", { href: `#/store/${enc(post.store.id)}` }, icon("pin", 14),
      `${post.kind === "checkin" ? t("post.checkin") + " · " : ""}${post.store.name}`));
  }
  if (post.status && post.status !== "published") {
    meta.push(h(`span.badge.status-${post.status}`, {}, t(`post.status.${post.status}`)));
  }
  card.append(head, h("p.text", {}, post.repost_of ? repostText(post) : richText(post.text)));
  if (post.media && post.media.length) card.append(photoGrid(post.media));
  if (post.repost_of && embed) card.append(originalEmbed(post.repost_of));
  if (meta.length) card.append(h("div.post-meta", {}, meta));
  if (!actions) return card;

  const bar = h("footer.post-actions", {}, likeBtn, repostButton(post),
    h("a.comments-link", { href: `#/post/${enc(post.id)}` }, icon("comment", 16),
      t("post.comments", { n: post.comment_count })));
  const mine = session.user && post.author.id === session.user.id;
  if (mine) {
    bar.append(h("button.link.delete", {
      type: "button",
      onclick: async () => {
        if (!window.confirm(t("post.confirm_delete"))) return;
        try {
          await api.del(`/v1/posts/${enc(post.id)}`);
          card.remove();
          if (onRemoved) onRemoved(post);
        } catch (err) {
          toast(err.words, "error");
        }
      },
    }, t("post.delete")));
  } else if (!compact) {
    bar.append(h("button.link.report", { type: "button", onclick: () => reportDialog(post) }, t("post.report")));
  }
  card.append(bar);
  return card;
}

function reportDialog(post) {
  const reason = h("select", { name: "reason" },
    ["spam", "abuse", "illegal", "other"].map((r) => h("option", { value: r }, t(`report.${r}`))));
  const note = h("input", { name: "note", maxlength: "500" });
  const send = h("button.primary", { type: "submit" }, t("report.send"));
  const form = h("form.stack", {}, field(t("report.reason"), reason), field(t("report.note"), note), send);
  const dlg = modal(t("post.report"), form);
  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    const body = { reason: reason.value };
    if (note.value.trim()) body.note = note.value.trim();
    try {
      await busy(send, api.post(`/v1/posts/${enc(post.id)}/reports`, body));
      toast(t("post.reported"));
      dlg.close();
    } catch (err) {
      toast(err.words, "error");
    }
  });
}

// A paged list of posts: `load(cursor)` returns a contract page. Returns {el, prepend, reload}.
export function postList(load, { empty = t("feed.empty"), card: cardOptions = {} } = {}) {
  const list = h("div.post-list");
  const more = h("button.more", { type: "button", hidden: true }, t("feed.more"));
  const emptyEl = h("p.empty", { hidden: true }, empty);
  const el = h("section.feed", {}, list, emptyEl, more);
  let cursor = null;
  const ids = new Set();

  const add = (post, atTop = false) => {
    if (ids.has(post.id)) return;
    ids.add(post.id);
    const card = postCard(post, { ...cardOptions, onRemoved: () => ids.delete(post.id) });
    if (atTop) list.prepend(card);
    else list.append(card);
    emptyEl.hidden = true;
  };

  const page = async (first) => {
    try {
      const res = await busy(more, load(first ? null : cursor));
      if (first) {
        clear(list);
        ids.clear();
      }
      for (const post of res.items) add(post);
      cursor = res.next_cursor;
      more.hidden = !cursor;
      emptyEl.hidden = list.childElementCount > 0;
    } catch (err) {
      emptyEl.hidden = false;
      emptyEl.textContent = err.words;
    }
  };
  more.addEventListener("click", () => page(false));
  const ready = page(true);
  return { el, ready, prepend: (post) => add(post, true), reload: () => page(true), has: (id) => ids.has(id) };
}

export async function postPage(root, postId) {
  const wrap = h("div.page");
  root.append(wrap);
  let post;
  try {
    post = await api.get(`/v1/posts/${enc(postId)}`);
  } catch (err) {
    wrap.append(h("p.empty", {}, err.status === 404 ? t("post.deleted") : err.words));
    return;
  }
  wrap.append(postCard(post, { onRemoved: () => { location.hash = "#/home"; } }));
  const commentsEl = h("div.comments");
  const moreBtn = h("button.more", { type: "button", hidden: true }, t("feed.more"));
  const byId = new Map();
  let cursor = null;
  let replyTo = null;

  const replyLabel = h("div.reply-to", { hidden: true });
  const text = h("textarea", { name: "text", maxlength: "500", rows: "2", placeholder: t("comment.write") });
  const send = h("button.primary", { type: "submit" }, t("comment.send"));
  const form = h("form.compose.comment-form", {}, replyLabel, text, send);

  const setReply = (comment) => {
    replyTo = comment;
    clear(replyLabel);
    replyLabel.hidden = !comment;
    if (comment) {
      replyLabel.append(t("comment.reply_to", { name: comment.author.username }), " ",
        h("button.link", { type: "button", onclick: () => setReply(null) }, t("comment.cancel")));
      text.focus();
    }
  };

  const renderComment = (c) => {
    byId.set(c.id, c);
    const parent = c.reply_to ? byId.get(c.reply_to) : null;
    // held for review (seen by its author and moderators only) or removed (moderators only)
    const held = c.status && c.status !== "published";
    const row = h(`div.comment${c.reply_to ? ".reply" : ""}`, { dataset: { commentId: c.id, status: c.status || "" } },
      h("div.comment-head", {}, userLink(c.author),
        h("time", { datetime: c.created_at }, formatTime(c.created_at))),
      parent ? h("div.muted.small", {}, t("comment.in_reply", { name: parent.author.username })) : null,
      h("p.text", {}, richText(c.text)),
      held ? h("div.post-meta", {}, h(`span.badge.comment-status.status-${c.status}`, {},
        t(`comment.status.${c.status}`)), c.status === "pending_review" ? h("span.muted", {}, t("comment.held_note"))
        : null) : null,
      h("div.row.comment-actions", {},
        held ? null : h("button.link.small", { type: "button", onclick: () => setReply(c) }, t("comment.reply")),
        mayDelete(c) ? h("button.link.small.comment-delete", { type: "button", onclick: (e) => remove(c, e) },
          t("comment.delete")) : null));
    commentsEl.append(row);
  };

  // the comment's author, the post's author or a moderator (the contract's three)
  const mayDelete = (c) => session.user && (c.author.id === session.user.id
    || post.author.id === session.user.id || session.role === "moderator");
  const remove = async (c, e) => {
    if (!window.confirm(t("comment.delete_confirm"))) return;
    try {
      await busy(e.currentTarget, api.del(`/v1/comments/${enc(c.id)}`));
      // its replies go with it on the server (a thread's replies point at its first comment)
      for (const el of commentsEl.querySelectorAll(".comment")) {
        const shown = byId.get(el.dataset.commentId);
        if (shown && (shown.id === c.id || shown.reply_to === c.id)) el.remove();
      }
      toast(t("comment.deleted"));
      if (!commentsEl.childElementCount) commentsEl.append(h("p.empty.none", {}, t("comment.none")));
    } catch (err) {
      toast(err.words, "error");
    }
  };

  const load = async () => {
    try {
      const res = await busy(moreBtn, api.get(`/v1/posts/${enc(postId)}/comments`, { cursor }));
      res.items.forEach(renderComment);
      cursor = res.next_cursor;
      moreBtn.hidden = !cursor;
      if (!commentsEl.childElementCount) commentsEl.append(h("p.empty.none", {}, t("comment.none")));
    } catch (err) {
      commentsEl.append(h("p.empty", {}, err.words));
    }
  };
  moreBtn.addEventListener("click", load);

  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    const body = { text: text.value };
    if (replyTo) body.reply_to = replyTo.id;
    try {
      const c = await busy(send, api.post(`/v1/posts/${enc(postId)}/comments`, body));
      commentsEl.querySelector(".none")?.remove();
      renderComment(c);
      if (c.status === "pending_review") toast(t("comment.held_toast"));
      text.value = "";
      setReply(null);
    } catch (err) {
      toast(err.words, "error");
    }
  });

  wrap.append(h("h3", {}, t("comment.title")), commentsEl, moreBtn, form, repostsSection(post));
  await load();
}
