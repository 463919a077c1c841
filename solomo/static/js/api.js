// The HTTP side of the public API v1: JSON in and out, the bearer token, and the contract's
// error body turned into an ApiError whose `words` are the client's own sentence for its code.

import { has, t } from "./i18n.js";
import { session } from "./session.js";

export class ApiError extends Error {
  constructor(status, code, message, details, retryAfter = null) {
    super(message || code);
    this.status = status;
    this.code = code;
    this.details = details || [];
    this.retryAfter = retryAfter; // seconds, from the answer's Retry-After (429, 503, 409 in progress)
  }

  // Always the client's own sentence, in the user's language: the server's message (English, for
  // developers) is never shown. A code without one reads by its kind of failure.
  get words() {
    if (this.status === 429 && this.retryAfter >= 60) { // a cap of minutes or hours: say how long
      const wait = this.retryAfter >= 5400 ? t("err.wait_h", { n: Math.round(this.retryAfter / 3600) })
        : t("err.wait_min", { n: Math.ceil(this.retryAfter / 60) });
      if (this.code === "rate_limited" || !has(`err.${this.code}`)) return t("err.rate_limited_wait", { wait });
      return `${t(`err.${this.code}`)} ${t("err.try_again_in", { wait })}`; // checkin_too_soon
    }
    if (has(`err.${this.code}`)) return t(`err.${this.code}`);
    if (this.status === 0) return t("err.network");
    if (this.status === 429) return t("err.rate_limited");
    if (this.status >= 500) return t("err.unavailable");
    return t("err.client");
  }
}

// Any other error (a body cut off, a bug in a view) has words too: screens show `err.words` of
// whatever they caught, and a blank line or "undefined" tells the user nothing.
Object.defineProperty(Error.prototype, "words", {
  configurable: true,
  get() {
    return t("common.error");
  },
});

let onUnauthorized = () => {};

export function setUnauthorizedHandler(fn) {
  onUnauthorized = fn;
}

// For requests made without `request` (the photo upload's XMLHttpRequest): a 401 signs out the same way.
export function reportUnauthorized(error) {
  onUnauthorized(error);
}

// A write is sent with an Idempotency-Key and, when the network drops it, sent again with the same
// key (at most twice more): the server answers a repeat with the first answer, never a second write.
// The key also outlives the call: a write whose outcome is unknown (no answer, a 5xx, or the first
// request still running) keeps its key, so the user's next tap on the same form with the same
// content is the same request to the server, and cannot post, check in or charge points twice. A
// definite answer (a success or a refusal) frees it.
// Kept for ten minutes at most: a user coming back to the same form later means a new write (a
// check-in with the same words the next day is not the unanswered one), and a key the server
// holds "in progress" for good (its process died after committing) must not block the form.
const WRITE_RETRIES = 2;
const IN_PROGRESS_WAITS = 3;
const KEY_KEEP_MS = 10 * 60 * 1000;
const unsettled = new Map(); // "METHOD path body" → {key, at} of a write whose outcome is unknown

function newKey() {
  if (globalThis.crypto && crypto.randomUUID) return crypto.randomUUID();
  return `${Date.now().toString(36)}-${Math.random().toString(36).slice(2)}`;
}

function retryAfterOf(resp) {
  const raw = resp.headers.get("Retry-After");
  const n = raw === null ? NaN : Number(raw);
  return Number.isFinite(n) && n >= 0 ? n : null;
}

const sleep = (s) => new Promise((resolve) => setTimeout(resolve, s * 1000));

export async function request(method, path, body, { auth = true, query, signal } = {}) {
  let url = path;
  if (query) {
    const params = new URLSearchParams();
    for (const [k, v] of Object.entries(query)) {
      if (v !== null && v !== undefined && v !== "") params.set(k, String(v));
    }
    const qs = params.toString();
    if (qs) url += (url.includes("?") ? "&" : "?") + qs;
  }
  const headers = { Accept: "application/json" };
  const payload = body === undefined ? undefined : JSON.stringify(body);
  if (body !== undefined) headers["Content-Type"] = "application/json";
  if (auth && session.token) headers.Authorization = `Bearer ${session.token}`;
  const write = method === "POST" && auth;
  const same = `${method} ${url} ${payload || ""}`;
  if (write) {
    const kept = unsettled.get(same);
    if (!kept || Date.now() - kept.at > KEY_KEEP_MS) unsettled.set(same, { key: newKey(), at: Date.now() });
    headers["Idempotency-Key"] = unsettled.get(same).key;
    for (const [other, { at }] of unsettled) if (Date.now() - at > KEY_KEEP_MS) unsettled.delete(other);
  }
  let resp;
  for (let attempt = 0, waits = 0; ; attempt++) {
    try {
      resp = await fetch(url, { method, headers, signal, body: payload });
    } catch {
      if (!write || attempt >= WRITE_RETRIES) throw new ApiError(0, "network", t("err.network"));
      continue;
    }
    if (write && resp.status === 409 && waits < IN_PROGRESS_WAITS
        && (resp.headers.get("Content-Type") || "").includes("json")) {
      const peek = await resp.clone().json().catch(() => null);
      if (peek && peek.error && peek.error.code === "idempotency_in_progress") {
        waits++; // the first request is still running: its answer comes back to the same key
        await sleep(Math.min(5, retryAfterOf(resp) ?? 1));
        attempt--;
        continue;
      }
    }
    break;
  }
  if (resp.status === 204) {
    if (write) unsettled.delete(same);
    return null;
  }
  let data = null;
  let text = "";
  try {
    text = await resp.text();
  } catch {
    throw new ApiError(0, "network", t("err.network")); // the body was cut off: as if no answer came
  }
  if (text) {
    try {
      data = JSON.parse(text);
    } catch {
      data = null;
    }
  }
  const err = resp.ok ? null : (data && data.error ? data.error : { code: `http_${resp.status}`,
                                                                      message: resp.statusText });
  // settled: a success, or a refusal (the server keeps a 4xx for the key: content fixed is a new
  // request anyway, and "try again" must not replay the refusal); not while the first still runs
  if (write && resp.status < 500 && !(err && err.code === "idempotency_in_progress")) unsettled.delete(same);
  if (err) {
    const error = new ApiError(resp.status, err.code, err.message, err.details, retryAfterOf(resp));
    if (resp.status === 401 && auth) onUnauthorized(error);
    throw error;
  }
  return data;
}

export const api = {
  // `signal` (an AbortController's) cancels a read nobody waits for any more (search as you type)
  get: (path, query, signal = undefined) => request("GET", path, undefined, { query, signal }),
  post: (path, body = undefined) => request("POST", path, body),
  put: (path, body) => request("PUT", path, body),
  del: (path) => request("DELETE", path),
  publicPost: (path, body) => request("POST", path, body, { auth: false }),
};

export const enc = encodeURIComponent;
