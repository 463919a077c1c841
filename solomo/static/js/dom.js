// Building the page safely: every piece of text goes in through text nodes or attributes,
// never through HTML parsing, so user content cannot become markup.

import { t } from "./i18n.js";

const SVG_NS = "http://www.w3.org/2000/svg";

// h("button.primary", {onclick, dataset: {id}}, "text", child, ...)
export function h(spec, attrs = {}, ...children) {
  const [tag, ...classes] = spec.split(".");
  const el = document.createElement(tag || "div");
  if (classes.length) el.className = classes.join(" ");
  applyAttrs(el, attrs);
  append(el, children);
  return el;
}

export function svg(tag, attrs = {}, ...children) {
  const el = document.createElementNS(SVG_NS, tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v !== null && v !== undefined) el.setAttribute(k, String(v));
  }
  append(el, children);
  return el;
}

function applyAttrs(el, attrs) {
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === null || v === undefined || v === false) continue;
    if (k.startsWith("on") && typeof v === "function") el.addEventListener(k.slice(2), v);
    else if (k === "dataset") Object.assign(el.dataset, v);
    else if (k === "class") el.className = v;
    else if (k === "value") el.value = v;
    else if (k === "checked") el.checked = Boolean(v);
    else if (k === "text") el.textContent = v;
    else el.setAttribute(k, v === true ? "" : String(v));
  }
}

function append(el, children) {
  for (const child of children.flat(Infinity)) {
    if (child === null || child === undefined || child === false) continue;
    el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
}

export function clear(el) {
  while (el.firstChild) el.removeChild(el.firstChild);
  return el;
}

export function mount(el, ...children) {
  clear(el);
  append(el, children);
  return el;
}

// Toasts: short messages at the top of the screen.
export function toast(message, kind = "info", ms = 3500) {
  const box = document.getElementById("toasts");
  const el = h(`div.toast.${kind}`, { role: kind === "error" ? "alert" : "status" }, message);
  box.append(el);
  setTimeout(() => el.remove(), ms);
  return el;
}

// A modal sheet; returns {el, close}. `onClose` runs once however it closes.
export function modal(title, body, { className = "", onClose } = {}) {
  const layer = document.getElementById("modals");
  let closed = false;
  const close = () => {
    if (closed) return;
    closed = true;
    wrap.remove();
    if (onClose) onClose();
  };
  const sheet = h(`div.sheet${className ? "." + className : ""}`, { role: "dialog", "aria-modal": "true" },
    h("div.sheet-head", {}, h("h2", {}, title),
      h("button.icon.close", { type: "button", "aria-label": t("common.close"), onclick: close }, "×")),
    body);
  const wrap = h("div.backdrop", { onclick: (e) => { if (e.target === wrap) close(); } }, sheet);
  layer.append(wrap);
  return { el: sheet, close };
}

// A labelled input; returns the <label> with the input inside (found via .querySelector("input")).
export function field(label, input) {
  return h("label.field", {}, h("span", {}, label), input);
}

export function busy(button, promise) {
  button.disabled = true;
  return promise.finally(() => { button.disabled = false; });
}

// One page loop for a list read page by page (`fetchPage(cursor)` → `{items, next_cursor}`): each
// page's items appended through `render`, a "more" button while there is a next cursor, and, in
// the list itself, its empty line when it holds nothing (`settle`, also after removing an item)
// or the failure in the user's words. Returns {more, load, settle}; the caller places `more`.
export function pagedList(list, fetchPage, render, emptyText) {
  const more = h("button.more", { type: "button", hidden: true }, t("feed.more"));
  const line = /^[OU]L$/.test(list.tagName) ? "li.empty" : "p.empty";
  let cursor = null;
  const clearLine = () => list.querySelector(":scope > .empty")?.remove();
  const settle = () => {
    clearLine();
    if (!list.childElementCount) list.append(h(line, {}, emptyText));
  };
  const load = async () => {
    try {
      const res = await busy(more, fetchPage(cursor));
      clearLine();
      for (const item of res.items) list.append(render(item));
      cursor = res.next_cursor;
      more.hidden = !cursor;
      settle();
    } catch (err) {
      clearLine();
      list.append(h(line, {}, err.words));
    }
  };
  more.addEventListener("click", load);
  return { more, load, settle };
}

export function formValues(form) {
  return Object.fromEntries(new FormData(form).entries());
}

// Clean-ups for the screen on show, run by the router before it draws the next one.
const leaving = [];

export function onLeave(fn) {
  leaving.push(fn);
}

export function runLeave() {
  while (leaving.length) {
    try {
      leaving.pop()();
    } catch (err) {
      console.warn("clean-up failed", err);
    }
  }
}
