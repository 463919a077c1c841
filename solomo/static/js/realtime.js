// The WebSocket /v1/ws: events {"id","type","data"} pushed by the server; the client sends its
// live position and pings. After a drop it reconnects with backoff and `last_event_id`, so the
// server replays what was missed; ids already handled are skipped.

const PING_MS = 25000;
const MAX_BACKOFF_MS = 30000;

export class LiveSocket {
  constructor({ token, userId, onEvent, onStatus, onRefused, getLocation }) {
    this.token = token;
    this.key = `solomo.last_event.${userId}`;
    this.onEvent = onEvent;
    this.onStatus = onStatus || (() => {});
    this.onRefused = onRefused || (() => {});
    this.getLocation = getLocation || (() => null);
    this.ws = null;
    this.attempt = 0;
    this.stopped = false;
    this.seen = new Set();
    this.timer = null;
    this.pinger = null;
    this.replaced = false; // closed with 4409: waits for the page to be shown again
    this.onVisible = null;
  }

  get lastEventId() {
    return localStorage.getItem(this.key);
  }

  url() {
    const proto = location.protocol === "https:" ? "wss:" : "ws:";
    const params = new URLSearchParams({ token: this.token });
    const last = this.lastEventId;
    if (last) params.set("last_event_id", last);
    return `${proto}//${location.host}/v1/ws?${params}`;
  }

  start() {
    this.stopped = false;
    this.replaced = false;
    this.connect();
    if (!this.onVisible) {
      this.onVisible = () => {
        if (document.visibilityState === "visible" && this.replaced && !this.stopped && !this.ws) {
          this.replaced = false;
          this.connect();
        }
      };
      document.addEventListener("visibilitychange", this.onVisible);
    }
    return this;
  }

  connect() {
    if (this.stopped) return;
    let ws;
    try {
      ws = new WebSocket(this.url());
    } catch {
      this.scheduleReconnect();
      return;
    }
    this.ws = ws;
    ws.onopen = () => {
      this.attempt = 0;
      this.onStatus("open");
      this.sendLocation();
      clearInterval(this.pinger);
      this.pinger = setInterval(() => this.send({ type: "ping" }), PING_MS);
    };
    ws.onmessage = (msg) => this.handle(msg.data);
    ws.onclose = (ev) => {
      clearInterval(this.pinger);
      if (this.ws === ws) this.ws = null;
      this.onStatus("closed");
      if (ev.code === 4401 || ev.code === 4403) {
        this.stopped = true;
        this.onRefused(ev.code);
        return;
      }
      if (ev.code === 4400) localStorage.removeItem(this.key); // an id the server cannot resume from
      if (ev.code === 4409) { // a newer socket of this user took the slot (another tab, device)
        this.replaced = true; // taking it back at once would evict that one, and so on for ever:
        this.onStatus("closed"); // this page reconnects when the user comes back to it
        return;
      }
      this.scheduleReconnect();
    };
    ws.onerror = () => {
      // onclose follows and schedules the reconnect.
    };
  }

  scheduleReconnect() {
    if (this.stopped) return;
    const base = Math.min(MAX_BACKOFF_MS, 500 * 2 ** this.attempt);
    this.attempt += 1;
    clearTimeout(this.timer);
    this.timer = setTimeout(() => this.connect(), base / 2 + Math.random() * (base / 2));
  }

  handle(raw) {
    let frame;
    try {
      frame = JSON.parse(raw);
    } catch {
      return;
    }
    if (!frame || typeof frame.type !== "string" || frame.type === "pong") return;
    if (frame.id) {
      if (this.seen.has(frame.id)) return;
      this.seen.add(frame.id);
      if (this.seen.size > 500) this.seen.delete(this.seen.values().next().value);
      localStorage.setItem(this.key, frame.id);
    }
    try {
      this.onEvent(frame);
    } catch (err) {
      console.warn("event handler failed", err);
    }
  }

  send(obj) {
    if (this.ws && this.ws.readyState === WebSocket.OPEN) {
      this.ws.send(JSON.stringify(obj));
      return true;
    }
    return false;
  }

  sendLocation() {
    const loc = this.getLocation();
    if (loc) this.send({ type: "location", lat: loc.lat, lng: loc.lng });
  }

  // Drops the connection as a network failure would (used to test resuming).
  drop() {
    if (this.ws) this.ws.close(4000, "client drop");
  }

  stop() {
    this.stopped = true;
    if (this.onVisible) document.removeEventListener("visibilitychange", this.onVisible);
    this.onVisible = null;
    clearTimeout(this.timer);
    clearInterval(this.pinger);
    if (this.ws) this.ws.close(1000, "bye");
    this.ws = null;
  }
}
