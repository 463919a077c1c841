// Where the user is: the device's geolocation, or a picked place / typed coordinates (for
// testing and for desktops without GPS).

import { busy, field, h, modal, toast } from "../dom.js";
import { t } from "../i18n.js";
import { PLACES, deviceLocation, session } from "../session.js";

export function locationLabel() {
  const loc = session.location;
  if (!loc) return "—";
  return `${loc.lat.toFixed(4)}, ${loc.lng.toFixed(4)} · ${t(`loc.source.${loc.source}`)}`;
}

// On start: keep a picked place; otherwise ask the device; fall back to People's Square.
export async function initLocation() {
  if (session.location && session.location.source === "picked") return;
  const pos = await deviceLocation(5000);
  if (pos) session.setLocation(pos.lat, pos.lng, "device", pos.accuracy);
  else if (!session.location) session.setLocation(PLACES[0].lat, PLACES[0].lng, "default");
}

export function openLocationPicker() {
  const loc = session.location || PLACES[0];
  const lat = h("input", { name: "lat", type: "number", step: "any", min: "-90", max: "90", value: String(loc.lat) });
  const lng = h("input", { name: "lng", type: "number", step: "any", min: "-180", max: "180", value: String(loc.lng) });
  const device = h("button", { type: "button" }, t("loc.device"));
  const apply = h("button.primary", { type: "submit" }, t("loc.apply"));
  const presets = h("div.chips", {}, PLACES.map((p) => h("button.chip", {
    type: "button",
    onclick: () => { session.setLocation(p.lat, p.lng, "picked"); dlg.close(); },
  }, t(p.key))));
  const form = h("form.stack.location-form", {},
    h("div.muted", {}, t("loc.presets")), presets,
    h("div.row", {}, field(t("loc.lat"), lat), field(t("loc.lng"), lng)), apply, device);
  const dlg = modal(t("loc.title"), form);
  form.addEventListener("submit", (e) => {
    e.preventDefault();
    const a = Number(lat.value);
    const b = Number(lng.value);
    if (!Number.isFinite(a) || !Number.isFinite(b) || Math.abs(a) > 90 || Math.abs(b) > 180) {
      toast(t("err.invalid"), "error");
      return;
    }
    session.setLocation(a, b, "picked");
    dlg.close();
  });
  device.addEventListener("click", async () => {
    const pos = await busy(device, deviceLocation());
    if (!pos) {
      toast(t("loc.denied"), "error");
      return;
    }
    session.setLocation(pos.lat, pos.lng, "device", pos.accuracy);
    dlg.close();
  });
}
