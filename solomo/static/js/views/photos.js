// Photos: the picker of the compose forms (pick, preview, remove, upload progress), the Weibo
// nine-grid of a post card, the full-screen viewer (swipe), and BlurHash placeholders while
// pictures load (decoded here: a few dozen lines, no library).

import { ApiError, reportUnauthorized } from "../api.js";
import { h, toast } from "../dom.js";
import { t } from "../i18n.js";
import { session } from "../session.js";

export const MAX_PHOTOS = 9;

// --- BlurHash (https://blurha.sh: base-83 digits, a DC colour and AC cosine components) ----------
const B83 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz#$%*+,-.:;=?@[]^_{|}~";

function base83(str) {
  let v = 0;
  for (const c of str) {
    const d = B83.indexOf(c);
    if (d < 0) return NaN;
    v = v * 83 + d;
  }
  return v;
}

const toLinear = (v) => { const x = v / 255; return x <= 0.04045 ? x / 12.92 : ((x + 0.055) / 1.055) ** 2.4; };
const toSrgb = (v) => {
  const x = Math.max(0, Math.min(1, v));
  return Math.round((x <= 0.0031308 ? x * 12.92 : 1.055 * x ** (1 / 2.4) - 0.055) * 255);
};
const signPow = (v, e) => Math.sign(v) * Math.abs(v) ** e;

// RGBA pixels (width × height) of a BlurHash, or null if it is not one.
export function decodeBlurHash(hash, width, height) {
  if (typeof hash !== "string" || hash.length < 6) return null;
  const flag = base83(hash[0]);
  const nx = (flag % 9) + 1;
  const ny = Math.floor(flag / 9) + 1;
  if (hash.length !== 4 + 2 * nx * ny) return null;
  const maxAc = (base83(hash[1]) + 1) / 166;
  const dc = base83(hash.slice(2, 6));
  if (Number.isNaN(dc) || Number.isNaN(maxAc)) return null;
  const colours = [[toLinear(dc >> 16), toLinear((dc >> 8) & 255), toLinear(dc & 255)]];
  for (let i = 1; i < nx * ny; i++) {
    const v = base83(hash.slice(4 + i * 2, 6 + i * 2));
    if (Number.isNaN(v)) return null;
    colours.push([Math.floor(v / 361), Math.floor(v / 19) % 19, v % 19].map((q) => signPow((q - 9) / 9, 2) * maxAc));
  }
  const px = new Uint8ClampedArray(width * height * 4);
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      let r = 0, g = 0, b = 0;
      for (let j = 0; j < ny; j++) {
        for (let i = 0; i < nx; i++) {
          const basis = Math.cos((Math.PI * x * i) / width) * Math.cos((Math.PI * y * j) / height);
          const c = colours[i + j * nx];
          r += c[0] * basis; g += c[1] * basis; b += c[2] * basis;
        }
      }
      const k = 4 * (x + y * width);
      px[k] = toSrgb(r); px[k + 1] = toSrgb(g); px[k + 2] = toSrgb(b); px[k + 3] = 255;
    }
  }
  return px;
}

// A small canvas painted with the BlurHash; CSS stretches it under the picture.
function blurCanvas(hash) {
  const size = 24;
  const canvas = h("canvas.blur", { width: String(size), height: String(size), "aria-hidden": "true" });
  const px = decodeBlurHash(hash, size, size);
  if (px) canvas.getContext("2d").putImageData(new ImageData(px, size, size), 0, 0);
  return canvas;
}

// A picture over its placeholder: the placeholder shows until the bytes arrive.
function layered(className, hash, src, attrs = {}) {
  const img = h("img", { alt: "", decoding: "async", ...attrs });
  const box = h(className, {}, blurCanvas(hash), img);
  img.addEventListener("load", () => box.classList.add("loaded"));
  img.addEventListener("error", () => withToken(img), { once: true });
  if (src) img.src = src;
  return { box, img };
}

// Photos of a removed or deleted post answer 404 to everyone but moderators, who must send their
// token — which an <img> cannot: a moderator's page fetches such a picture and shows the blob.
async function withToken(img) {
  if (session.role !== "moderator" || !img.src || img.src.startsWith("blob:")) return;
  try {
    const resp = await fetch(img.src, { headers: { Authorization: `Bearer ${session.token}` } });
    if (resp.ok) img.src = URL.createObjectURL(await resp.blob());
  } catch {
    // the placeholder stays
  }
}

// --- the nine-grid ----------------------------------------------------------------------------
export function photoGrid(media) {
  const n = media.length;
  const layout = n === 1 ? "one" : n === 2 || n === 4 ? "two" : "three";
  const grid = h(`div.photo-grid.grid-${layout}`, { dataset: { count: String(n) } });
  media.forEach((m, i) => {
    const { box } = layered("span.photo-cell-inner", m.blurhash, m.thumb_url, { loading: "lazy" });
    const cell = h("button.photo-cell", {
      type: "button", "aria-label": t("photos.open", { i: i + 1, n }), onclick: () => openViewer(media, i),
    }, box);
    if (n === 1) {  // one photo keeps its shape, within bounds (Weibo)
      const ratio = Math.max(0.75, Math.min(1.78, m.width / Math.max(1, m.height)));
      cell.style.aspectRatio = String(ratio);
    }
    grid.append(cell);
  });
  return grid;
}

// --- the full-screen viewer -------------------------------------------------------------------
export function openViewer(media, start = 0) {
  let index = start;
  const slides = media.map((m) => layered("div.viewer-slide", m.blurhash, null));
  const track = h("div.viewer-track", {}, slides.map((s) => s.box));
  const counter = h("div.viewer-count", { "aria-live": "polite" });
  const prev = h("button.viewer-prev", { type: "button", "aria-label": t("photos.prev") }, "‹");
  const next = h("button.viewer-next", { type: "button", "aria-label": t("photos.next") }, "›");
  const closeBtn = h("button.viewer-close", { type: "button", "aria-label": t("common.close") }, "×");
  const layer = h("div.viewer", { role: "dialog", "aria-modal": "true", "aria-label": t("photos.viewer") },
    track, counter, prev, next, closeBtn);

  const show = (i, animate = true) => {
    index = Math.max(0, Math.min(media.length - 1, i));
    for (const j of [index - 1, index, index + 1]) {  // this picture and its neighbours
      const s = slides[j];
      if (s && !s.img.src) s.img.src = media[j].url;
    }
    track.style.transition = animate ? "transform 0.25s ease-out" : "none";
    track.style.transform = `translateX(${-index * 100}%)`;
    counter.textContent = media.length > 1 ? `${index + 1} / ${media.length}` : "";
    prev.hidden = index === 0;
    next.hidden = index === media.length - 1;
  };
  const close = () => {
    document.removeEventListener("keydown", onKey);
    layer.remove();
  };
  const onKey = (e) => {
    if (e.key === "Escape") close();
    else if (e.key === "ArrowLeft") show(index - 1);
    else if (e.key === "ArrowRight") show(index + 1);
  };

  // swipe: the track follows the finger; past a fifth of the width it moves to the next picture
  let downX = null;
  let moved = 0;
  track.addEventListener("pointerdown", (e) => {
    downX = e.clientX;
    moved = 0;
    track.setPointerCapture(e.pointerId);
  });
  track.addEventListener("pointermove", (e) => {
    if (downX === null) return;
    moved = e.clientX - downX;
    track.style.transition = "none";
    track.style.transform = `translateX(calc(${-index * 100}% + ${moved}px))`;
  });
  const release = () => {
    if (downX === null) return;
    downX = null;
    const width = track.clientWidth || 1;
    if (Math.abs(moved) > width / 5) show(index + (moved < 0 ? 1 : -1));
    else if (Math.abs(moved) < 6) close();  // a tap closes, as on Weibo
    else show(index);
  };
  track.addEventListener("pointerup", release);
  track.addEventListener("pointercancel", release);
  prev.addEventListener("click", () => show(index - 1));
  next.addEventListener("click", () => show(index + 1));
  closeBtn.addEventListener("click", close);
  document.addEventListener("keydown", onKey);
  document.getElementById("modals").append(layer);
  show(index, false);
  closeBtn.focus();
  return { el: layer, close, show: (i) => show(i) };
}

// --- uploading ----------------------------------------------------------------------------------
// XMLHttpRequest, not fetch: only it reports upload progress. Returns {promise, abort}.
export function uploadPhoto(file, onProgress) {
  const xhr = new XMLHttpRequest();
  const promise = new Promise((resolve, reject) => {
    xhr.open("POST", "/v1/media");
    xhr.setRequestHeader("Authorization", `Bearer ${session.token}`);
    xhr.setRequestHeader("Accept", "application/json");
    xhr.upload.addEventListener("progress", (e) => { if (e.lengthComputable) onProgress(e.loaded / e.total); });
    xhr.addEventListener("load", () => {
      let data = null;
      try {
        data = JSON.parse(xhr.responseText);
      } catch {
        data = null;
      }
      if (xhr.status === 201 && data) resolve(data);
      else {
        const err = data && data.error ? data.error : { code: `http_${xhr.status}`, message: xhr.statusText };
        // "too long" is the text's words for 413; a photo has its own
        const error = new ApiError(xhr.status, xhr.status === 413 ? "photo_too_large" : err.code, err.message);
        if (xhr.status === 401) reportUnauthorized(error); // signed out at once, as any other request
        reject(error);
      }
    });
    xhr.addEventListener("error", () => reject(new ApiError(0, "network", t("err.network"))));
    xhr.addEventListener("abort", () => reject(new ApiError(0, "aborted", "")));
    const form = new FormData();
    form.append("file", file);
    xhr.send(form);
  });
  return { promise, abort: () => xhr.abort() };
}

// The photo strip of a compose form: picked photos upload at once (with a progress bar each)
// and can be removed; `ids()` are the uploaded ones in order. `settle()` waits for uploads.
export function photoPicker({ onChange = () => {} } = {}) {
  const input = h("input.photo-input", { type: "file", accept: "image/*", multiple: true, hidden: true });
  const addBtn = h("button.photo-add", { type: "button", title: t("photos.add"), "aria-label": t("photos.add") },
    h("span", { "aria-hidden": "true" }, "+"), h("small", {}, t("photos.add")));
  const strip = h("div.photo-picks", {}, addBtn, input);
  const items = [];

  const refresh = () => {
    addBtn.hidden = items.length >= MAX_PHOTOS;
    strip.dataset.count = String(items.length);
    onChange();
  };
  const add = (file) => {
    const preview = URL.createObjectURL(file);
    const fill = h("span");
    const bar = h("div.photo-progress", { role: "progressbar", "aria-valuemin": "0", "aria-valuemax": "100" }, fill);
    const img = h("img", { src: preview, alt: "" });
    const remove = h("button.photo-remove", { type: "button", "aria-label": t("photos.remove") }, "×");
    const el = h("div.photo-pick.uploading", {}, img, bar, remove);
    const upload = uploadPhoto(file, (p) => {
      const pct = Math.round(p * 100);
      fill.style.width = `${pct}%`;
      bar.setAttribute("aria-valuenow", String(pct));
    });
    const item = { el, media: null, state: "uploading", promise: upload.promise };
    items.push(item);
    strip.insertBefore(el, addBtn);
    remove.addEventListener("click", () => {
      upload.abort();
      URL.revokeObjectURL(preview);
      items.splice(items.indexOf(item), 1);
      el.remove();
      refresh();
    });
    upload.promise.then((media) => {
      item.media = media;
      item.state = "done";
      img.src = media.thumb_url;  // HEIC does not preview in most browsers: show what the server made
      el.classList.replace("uploading", "done");
      el.dataset.mediaId = media.id;
    }, (err) => {
      if (err.code === "aborted") return;
      item.state = "failed";
      el.classList.replace("uploading", "failed");
      el.title = err.words;
      toast(err.words, "error");
    }).finally(refresh);
  };
  input.addEventListener("change", () => {
    const files = [...input.files];
    const room = MAX_PHOTOS - items.length;
    if (files.length > room) toast(t("photos.too_many", { n: MAX_PHOTOS }), "error");
    files.slice(0, Math.max(0, room)).forEach(add);
    input.value = "";
    refresh();
  });
  addBtn.addEventListener("click", () => input.click());

  return {
    el: strip,
    ids: () => items.filter((i) => i.media).map((i) => i.media.id),
    count: () => items.length,
    uploading: () => items.some((i) => i.state === "uploading"),
    failed: () => items.some((i) => i.state === "failed"),
    settle: () => Promise.allSettled(items.map((i) => i.promise)),
    reset: () => {
      for (const i of items) i.el.remove();
      items.length = 0;
      refresh();
    },
  };
}

// Before a compose form sends: waits for uploads still running; false (and a toast) if one failed.
export async function photosReady(picker) {
  if (picker.uploading()) {
    toast(t("photos.waiting"));
    await picker.settle();
  }
  if (picker.failed()) {
    toast(t("photos.remove_failed"), "error");
    return false;
  }
  return true;
}
