// Blocks and mutes: the buttons on a user's page (with a confirming sheet) and the "blocked" and
// "muted" lists of the me page, where each can be undone.

import { api, enc } from "../api.js";
import { busy, h, modal, toast } from "../dom.js";
import { t } from "../i18n.js";
import { session } from "../session.js";

// The toast's words once a block or mute is made or undone ("muteed" is no word: spelled out).
const DONE = {
  block: { done: "blocked", undone: "unblocked" },
  mute: { done: "muted", undone: "unmuted" },
};

// Re-draws the screen on show (the router listens to hashchange): the follow button and the posts
// list change with a block.
function redraw() {
  window.dispatchEvent(new HashChangeEvent("hashchange"));
}

function confirmSheet(title, text, action, run) {
  const go = h("button.danger.confirm-go", { type: "button" }, action);
  const cancel = h("button.confirm-cancel", { type: "button" }, t("common.cancel"));
  const dlg = modal(title, h("div.stack.confirm-sheet", {}, h("p", {}, text), h("div.row.spread", {}, cancel, go)));
  cancel.addEventListener("click", dlg.close);
  go.addEventListener("click", async () => {
    try {
      await busy(go, run());
      dlg.close();
    } catch (err) {
      toast(err.words, "error");
    }
  });
  return dlg;
}

// The block and mute buttons of `user`'s page, drawn once the relationship is known.
export function shutOutButtons(user) {
  const box = h("div.row.wrap.shut-out", { dataset: { userId: user.id } });
  const name = user.display_name || user.username;
  const draw = (rel) => {
    box.replaceChildren();
    if (rel.blocked_by) box.append(h("p.muted.small.blocked-by", {}, t("block.blocked_by")));
    for (const kind of ["block", "mute"]) {
      const on = kind === "block" ? rel.blocking : rel.muting;
      const path = `/v1/users/${enc(user.id)}/${kind}`;
      const btn = h(`button.small.${kind}-toggle${on ? ".on" : ""}`, { type: "button", dataset: { kind } },
        t(on ? `block.un${kind}` : `block.${kind}`));
      btn.addEventListener("click", () => {
        if (on) {
          busy(btn, api.del(path)).then(() => {
            toast(t(`block.${DONE[kind].undone}`, { name }));
            redraw();
          }, (err) => toast(err.words, "error"));
          return;
        }
        confirmSheet(t(`block.${kind}_title`, { name }), t(`block.${kind}_explain`), t(`block.${kind}`), async () => {
          await api.post(path);
          if (kind === "block") session.rememberFollow("user", user.id, false);
          toast(t(`block.${DONE[kind].done}`, { name }));
          redraw();
        });
      });
      box.append(btn);
    }
  };
  api.get(`/v1/users/${enc(user.id)}/relationship`).then(draw, () => {});
  return box;
}

// #/me/blocks and #/me/mutes: the users I shut out, each with its undo button.
export async function shutOutListView(root, which) {
  const kind = which === "blocks" ? "block" : "mute";
  const list = h("ul.people.shut-out-list", { dataset: { kind } });
  const more = h("button.more", { type: "button", hidden: true }, t("feed.more"));
  root.append(h("div.page", {}, h("h2", {}, t(`block.list_${which}`)), h("p.muted.small", {}, t(`block.list_${which}_hint`)),
    list, more));
  let cursor = null;
  const empty = () => {
    if (!list.querySelector("li.person")) list.replaceChildren(h("li.empty", {}, t(`block.none_${which}`)));
  };
  const load = async () => {
    try {
      const res = await api.get(`/v1/me/${which}`, { cursor });
      for (const u of res.items) {
        const undo = h("button.small.undo", { type: "button" }, t(`block.un${kind}`));
        const row = h("li.person", { dataset: { userId: u.id } },
          h("a", { href: `#/user/${enc(u.id)}` }, h("strong", {}, u.display_name || u.username), " ",
            h("span.muted", {}, `@${u.username}`)), undo);
        undo.addEventListener("click", async () => {
          try {
            await busy(undo, api.del(`/v1/users/${enc(u.id)}/${kind}`));
            row.remove();
            toast(t(`block.${DONE[kind].undone}`, { name: u.display_name || u.username }));
            empty();
          } catch (err) {
            toast(err.words, "error");
          }
        });
        list.append(row);
      }
      cursor = res.next_cursor;
      more.hidden = !cursor;
      empty();
    } catch (err) {
      list.append(h("li.empty", {}, err.words));
    }
  };
  more.addEventListener("click", load);
  await load();
}

// The me page's two links.
export function shutOutLinks() {
  return h("div.row.spread.shut-out-links", {},
    h("a.button.small", { href: "#/me/blocks" }, t("block.list_blocks")),
    h("a.button.small", { href: "#/me/mutes" }, t("block.list_mutes")));
}
