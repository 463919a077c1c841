// Reposts (转发): the repost button and its compose sheet (a comment is optional), a repost's text
// with its //@ chain shown Weibo-style, the original embedded in the card (or "unavailable"), and
// the reposts list on a post's page.

import { api, enc } from "../api.js";
import { busy, h, modal, toast } from "../dom.js";
import { t } from "../i18n.js";
import { icon } from "../icons.js";
import { homeFeedOnScreen } from "./feeds.js";
import { postList, richText, userLink } from "./posts.js";

// A repost's stored text is "own text //@name: their text //@name2: …"; each "//@…" part after
// the first is someone earlier in the chain.
const CHAIN_RE = /(?=\/\/@[A-Za-z0-9_]{3,32}:)/;

export function repostText(post) {
  const [own, ...chain] = post.text.split(CHAIN_RE);
  const ownText = own.trim() ? richText(own.trimEnd()) : (chain.length ? [] : [t("repost.default")]);
  const parts = chain.map((part) => h("span.chain", {}, richText(part.trimEnd())));
  return ownText.length && parts.length ? [...ownText, " ", ...parts] : [...ownText, ...parts];
}

export function originalEmbed(original) {
  if (!original || original.status === "unavailable") {
    return h("div.repost-original.unavailable", {}, t("repost.unavailable"));
  }
  return h("a.repost-original", { href: `#/post/${enc(original.id)}`, dataset: { originalId: original.id } },
    h("div.original-head", {}, h("strong", {}, `@${original.author.display_name || original.author.username}`)),
    h("p.text", {}, richText(original.text)),
    original.store ? h("div.muted.small", {}, icon("pin", 12), original.store.name) : null,
    h("div.original-counts.muted.small", {}, t("repost.counts", {
      reposts: original.repost_count, comments: original.comment_count, likes: original.like_count })));
}

// Only published posts whose original is still there can be reposted (the server says 404/422 else).
function canRepost(post) {
  return post.status === "published" && !(post.repost_of && post.repost_of.status === "unavailable");
}

// The button in a post's action bar: the count, and the sheet on tap (greyed out, count still
// shown, when the post cannot be reposted).
export function repostButton(post) {
  const btn = h("button.repost-btn", { type: "button", "aria-label": t("repost.button"), disabled: !canRepost(post) });
  const render = () => {
    btn.replaceChildren(icon("repost", 16), ` ${post.repost_count || 0}`);
  };
  render();
  btn.addEventListener("click", () => repostSheet(post, () => {
    post.repost_count = (post.repost_count || 0) + 1;
    render();
  }));
  return btn;
}

export function repostSheet(post, onReposted) {
  const original = post.repost_of && post.repost_of.status !== "unavailable" ? post.repost_of : post;
  const text = h("textarea", { name: "text", rows: "3", maxlength: "2000", placeholder: t("repost.comment") });
  const send = h("button.primary", { type: "submit" }, t("repost.send"));
  const preview = h("div.repost-preview", {},
    post.repost_of ? h("p.chain-preview.muted.small", {}, `//@${post.author.username}: `, richText(post.text)) : null,
    originalEmbed(original));
  const form = h("form.stack.repost-form", {}, text, preview, send);
  const dlg = modal(t("repost.title"), form, { className: "repost-sheet" });
  text.focus();
  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    try {
      const made = await busy(send, api.post(`/v1/posts/${enc(post.id)}/repost`, { text: text.value }));
      dlg.close();
      toast(t("repost.done"));
      if (onReposted) onReposted(made);
      const home = homeFeedOnScreen();
      if (home) home.prepend(made);
    } catch (err) {
      toast(err.words, "error");
    }
  });
}

// The reposts of a post, under it on its page (each embeds the same original: not repeated).
export function repostsSection(post) {
  const list = postList((cursor) => api.get(`/v1/posts/${enc(post.id)}/reposts`, { cursor }),
    { empty: t("repost.none"), card: { embed: false, compact: true } });
  return h("section.reposts", {}, h("h3", {}, t("repost.list"), " ", h("span.muted", {}, String(post.repost_count))),
    list.el);
}
