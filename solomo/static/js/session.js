// Who is signed in and where they are, kept in localStorage so a reload keeps both.

const TOKEN = "solomo.token";
const USER = "solomo.user";
const LOCATION = "solomo.location";
const FOLLOWS = "solomo.follows";

export const PLACES = [
  { key: "place.peoples_square", lat: 31.2304, lng: 121.4737 },
  { key: "place.bund", lat: 31.2400, lng: 121.4900 },
  { key: "place.jingan", lat: 31.2233, lng: 121.4459 },
  { key: "place.xintiandi", lat: 31.2196, lng: 121.4751 },
];

function readJson(key, fallback) {
  try {
    const raw = localStorage.getItem(key);
    return raw ? JSON.parse(raw) : fallback;
  } catch {
    return fallback;
  }
}

const listeners = new Set();

export const session = {
  token: localStorage.getItem(TOKEN),
  user: readJson(USER, null),
  location: readJson(LOCATION, null),

  signIn(user, token) {
    this.user = user;
    this.token = token;
    localStorage.setItem(TOKEN, token);
    localStorage.setItem(USER, JSON.stringify(user));
  },

  updateUser(user) {
    this.user = user;
    localStorage.setItem(USER, JSON.stringify(user));
  },

  signOut() {
    this.user = null;
    this.token = null;
    localStorage.removeItem(TOKEN);
    localStorage.removeItem(USER);
    // Where the user was (their device's fix, or what they typed) is theirs: whoever signs in
    // next on this browser starts from the default place, and the device is asked again.
    this.setLocation(PLACES[0].lat, PLACES[0].lng, "default");
  },

  get role() {
    return this.user ? this.user.role : null;
  },

  // source: "device" (geolocation), "picked" (the picker) or "default"
  setLocation(lat, lng, source, accuracy = 20) {
    this.location = { lat: Number(lat), lng: Number(lng), source, accuracy: Math.round(accuracy) };
    localStorage.setItem(LOCATION, JSON.stringify(this.location));
    for (const fn of listeners) fn(this.location);
  },

  onLocation(fn) {
    listeners.add(fn);
    return () => listeners.delete(fn);
  },

  // The contract has no "do I follow X" field; the client remembers what this browser did.
  // Follow and unfollow are idempotent on the server, so a stale memory costs nothing.
  follows() {
    return readJson(`${FOLLOWS}.${this.user ? this.user.id : "anon"}`, {});
  },

  isFollowing(kind, id) {
    return Boolean(this.follows()[`${kind}:${id}`]);
  },

  rememberFollow(kind, id, on) {
    const all = this.follows();
    if (on) all[`${kind}:${id}`] = 1;
    else delete all[`${kind}:${id}`];
    localStorage.setItem(`${FOLLOWS}.${this.user ? this.user.id : "anon"}`, JSON.stringify(all));
  },
};

// Ask the device for a position (resolves null when refused or unavailable).
export function deviceLocation(timeoutMs = 8000) {
  return new Promise((resolve) => {
    if (!navigator.geolocation) {
      resolve(null);
      return;
    }
    navigator.geolocation.getCurrentPosition(
      (pos) => resolve({ lat: pos.coords.latitude, lng: pos.coords.longitude, accuracy: pos.coords.accuracy }),
      () => resolve(null),
      { enableHighAccuracy: true, timeout: timeoutMs, maximumAge: 60000 },
    );
  });
}

export function distanceM(a, b) {
  // Haversine, for display only; the server decides with geodesic distances.
  const R = 6371008.8;
  const rad = Math.PI / 180;
  const dLat = (b.lat - a.lat) * rad;
  const dLng = (b.lng - a.lng) * rad;
  const s = Math.sin(dLat / 2) ** 2 + Math.cos(a.lat * rad) * Math.cos(b.lat * rad) * Math.sin(dLng / 2) ** 2;
  return 2 * R * Math.asin(Math.sqrt(s));
}
