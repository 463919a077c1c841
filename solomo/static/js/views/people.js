// People: a user's page (follow, posts, followers/following) and "Me" (profile, language,
// location, log out).

import { api, enc } from "../api.js";
import { h, onLeave, pagedList } from "../dom.js";
import { formatDateTime, t } from "../i18n.js";
import { session } from "../session.js";
import { shutOutButtons, shutOutLinks } from "./blocking.js";
import { locationLabel, openLocationPicker } from "./location.js";
import { postList } from "./posts.js";
import { pushSwitch } from "./push.js";
import { followButton } from "./stores.js";

function profileCard(user, extra = []) {
  const name = user.display_name || user.username;
  const avatar = user.avatar_url
    ? h("img.profile-avatar", { src: user.avatar_url, alt: "", width: "64", height: "64" })
    : h("span.profile-avatar.initial", { "aria-hidden": "true" }, name.slice(0, 1));
  return h("section.card.profile", { dataset: { userId: user.id } },
    h("div.profile-head", {}, avatar, h("div.profile-names", {}, h("h2", {}, name),
      h("div.muted", {}, `@${user.username} · ${t(`auth.role.${user.role}`)}`))),
    user.bio ? h("p.profile-bio", {}, user.bio) : null,
    h("div.row.counts", {},
      h("a", { href: `#/user/${enc(user.id)}/followers` }, h("strong", {}, String(user.followers_count)), " ",
        t("follow.followers")),
      h("a", { href: `#/user/${enc(user.id)}/following` }, h("strong", {}, String(user.following_count)), " ",
        t("follow.following"))),
    extra);
}

export async function userView(root, userId) {
  const wrap = h("div.page");
  root.append(wrap);
  let user;
  try {
    user = await api.get(`/v1/users/${enc(userId)}`);
  } catch (err) {
    wrap.append(h("p.empty", {}, err.words));
    return;
  }
  const self = session.user && session.user.id === user.id;
  const extra = [];
  if (!self) extra.push(followButton("user", user.id));
  if (!self && user.role !== "moderator") extra.push(shutOutButtons(user));
  if (session.role === "moderator" && !self) {
    extra.push(h("a.button.small", { href: `#/mod/users/${enc(user.id)}` }, t("user.suspend")));
  }
  wrap.append(profileCard(user, h("div.row", {}, extra)));
  const list = postList((cursor) => api.get(`/v1/users/${enc(user.id)}/posts`, { cursor }));
  const visits = checkinList(user.id);
  visits.el.hidden = true;
  const tabs = h("div.inbox-kinds.user-tabs", { role: "tablist" }, [["posts", list.el], ["checkins", visits.el]]
    .map(([name, el]) => h(`button.chip${name === "posts" ? ".on" : ""}`, { type: "button", dataset: { tab: name },
      onclick: (e) => {
        for (const chip of tabs.children) chip.classList.toggle("on", chip === e.currentTarget);
        list.el.hidden = el !== list.el;
        visits.el.hidden = el !== visits.el;
        if (el === visits.el) visits.start();
      } }, t(`user.${name}`))));
  wrap.append(tabs, list.el, visits.el);
  await list.ready;
}

// Where a user checked in, newest first (GET /v1/users/{id}/checkins: each with its store), read
// when the tab is first opened.
function checkinList(userId) {
  const items = h("ul.stores.checkin-history");
  const pages = pagedList(items, (cursor) => api.get(`/v1/users/${enc(userId)}/checkins`, { cursor }), (c) => {
    const where = c.store ? h("a.store-name", { href: `#/store/${enc(c.store.id)}` }, c.store.name)
      : h("span.muted", {}, t("user.store_gone"));
    return h("li.store.checkin-row", { dataset: { checkinId: c.id } },
      h("div.store-main", {}, where, h("div.muted.small", {}, formatDateTime(c.created_at))));
  }, t("user.no_checkins"));
  let started = false;
  return {
    el: h("section.checkins", {}, items, pages.more),
    start() {
      if (!started) {
        started = true;
        pages.load();
      }
    },
  };
}

export async function peopleListView(root, userId, which) {
  const list = h("ul.people");
  const more = h("button.more", { type: "button", hidden: true }, t("feed.more"));
  root.append(h("div.page", {}, h("h2", {}, t(`follow.${which}`)), list, more));
  let cursor = null;
  const load = async () => {
    try {
      const res = await api.get(`/v1/users/${enc(userId)}/${which}`, { cursor });
      for (const u of res.items) {
        list.append(h("li.person", {},
          h("a", { href: `#/user/${enc(u.id)}` }, h("strong", {}, u.display_name || u.username), " ",
            h("span.muted", {}, `@${u.username}`)),
          session.user && u.id !== session.user.id ? followButton("user", u.id) : null));
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

export async function meView(root, { onLanguage, onLogout }) {
  let user = session.user;
  try {
    user = await api.get("/v1/me");
    session.updateUser(user);
  } catch {
    // keep the cached profile
  }
  const loc = h("span.loc-label", {}, locationLabel());
  const off = session.onLocation(() => { loc.textContent = locationLabel(); });
  const wrap = h("div.page.me", {},
    profileCard(user),
    h("section.card.stack", {},
      h("div.row.spread", {}, h("span", {}, t("me.language")),
        h("button.lang-switch", { type: "button", onclick: onLanguage }, t("lang.switch"))),
      h("div.row.spread", {}, h("span", {}, t("me.location")),
        h("button.link", { type: "button", onclick: openLocationPicker }, loc)),
      pushSwitch(),
      h("a.button", { href: `#/user/${enc(user.id)}` }, t("user.posts")),
      shutOutLinks(),
      h("a.button.edit-profile", { href: "#/me/profile" }, t("manage.profile")),
      h("button.danger.logout", { type: "button", onclick: onLogout }, t("auth.logout"))));
  root.append(wrap);
  onLeave(off);
}
