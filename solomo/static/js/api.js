// The HTTP side of the public API v1: JSON in and out, the bearer token, and the contract's
// error body turned into an ApiError whose `words` are the client's own sentence for its code.

import { has, t } from "./i18n.js";
import { session } from "./session.js";

export class ApiError extends Error {
  constructor(status, code, message, details) {
    super(message || code);
    this.status = status;
    this.code = code;
    this.details = details || [];
  }

  get words() {
    return has(`err.${this.code}`) ? t(`err.${this.code}`) : (this.message || t("common.error"));
  }
}

let onUnauthorized = () => {};

export function setUnauthorizedHandler(fn) {
  onUnauthorized = fn;
}

// A write is sent with an Idempotency-Key and, when the network drops it, sent again with the same
// key (at most twice more): the server answers a repeat with the first answer, never a second write.
const WRITE_RETRIES = 2;

function newKey() {
  if (globalThis.crypto && crypto.randomUUID) return crypto.randomUUID();
  return `${Date.now().toString(36)}-${Math.random().toString(36).slice(2)}`;
}

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
  if (body !== undefined) headers["Content-Type"] = "application/json";
  if (auth && session.token) headers.Authorization = `Bearer ${session.token}`;
  const write = method === "POST" && auth;
  if (write) headers["Idempotency-Key"] = newKey();
  let resp;
  for (let attempt = 0; ; attempt++) {
    try {
      resp = await fetch(url, { method, headers, signal, body: body === undefined ? undefined : JSON.stringify(body) });
      break;
    } catch {
      if (!write || attempt >= WRITE_RETRIES) throw new ApiError(0, "network", t("err.network"));
    }
  }
  if (resp.status === 204) return null;
  let data = null;
  const text = await resp.text();
  if (text) {
    try {
      data = JSON.parse(text);
    } catch {
      data = null;
    }
  }
  if (!resp.ok) {
    const err = data && data.error ? data.error : { code: `http_${resp.status}`, message: resp.statusText };
    const error = new ApiError(resp.status, err.code, err.message, err.details);
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
