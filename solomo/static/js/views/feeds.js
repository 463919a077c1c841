// Home (people and stores you follow, with a composer and live arrivals) and local feeds; topics
// are in topics.js.

import { api } from "../api.js";
import { busy, h, toast } from "../dom.js";
import { t } from "../i18n.js";
import { session } from "../session.js";
import { photoPicker, photosReady } from "./photos.js";
import { postList } from "./posts.js";

// The home feed currently on screen, so live `feed.new` events can put posts into it.
let liveHome = null;

export function homeFeedOnScreen() {
  return liveHome && liveHome.el.isConnected ? liveHome : null;
}

function composer(onPosted) {
  const text = h("textarea", { name: "text", rows: "3", maxlength: "2000", placeholder: t("feed.compose") });
  const withLoc = h("input", { type: "checkbox", name: "with_location", checked: true });
  const send = h("button.primary", { type: "submit" }, t("feed.publish"));
  const photos = photoPicker();
  const form = h("form.compose", {}, text, photos.el,
    h("div.row.spread", {}, h("label.check", {}, withLoc, " ", t("feed.with_location")), send));
  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    if (!text.value.trim() && !photos.count()) return;
    if (!(await busy(send, photosReady(photos)))) return;
    const body = { text: text.value };
    if (photos.ids().length) body.media_ids = photos.ids();
    if (withLoc.checked && session.location) {
      body.lat = session.location.lat;
      body.lng = session.location.lng;
    }
    try {
      const post = await busy(send, api.post("/v1/posts", body));
      text.value = "";
      photos.reset();
      toast(t("feed.posted"));
      onPosted(post);
    } catch (err) {
      toast(err.words, "error");
    }
  });
  return form;
}

export function homeView(root) {
  const list = postList((cursor) => api.get("/v1/feed/home", { cursor }));
  liveHome = list;
  root.append(h("div.page.home", {}, composer((post) => list.prepend(post)), list.el));
  return list.ready;
}

export function localView(root) {
  const loc = session.location;
  const list = postList((cursor) => api.get("/v1/feed/local", { lat: loc.lat, lng: loc.lng, cursor }));
  root.append(h("div.page.local", {}, h("h2", {}, t("feed.local")), list.el));
  return list.ready;
}
