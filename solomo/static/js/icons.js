// Small line icons drawn as SVG (no icon font, no emoji: they render the same on every phone).

import { svg } from "./dom.js";

const PATHS = {
  home: "M3 11l9-7 9 7v9a1 1 0 0 1-1 1h-5v-6h-6v6H4a1 1 0 0 1-1-1z",
  pin: "M12 21s-7-6.2-7-11.5A7 7 0 0 1 19 9.5C19 14.8 12 21 12 21zM12 12.2a2.7 2.7 0 1 0 0-5.4 2.7 2.7 0 0 0 0 5.4z",
  hash: "M9 3L7 21M17 3l-2 18M4 8.5h17M3 15.5h17",
  ticket: "M3 7h18v3.5a2 2 0 0 0 0 3V17H3v-3.5a2 2 0 0 0 0-3zM14 7v10",
  user: "M12 12a4.5 4.5 0 1 0 0-9 4.5 4.5 0 0 0 0 9zM3.5 21a8.5 8.5 0 0 1 17 0",
  store: "M3 9l2-5h14l2 5M3 9v0a3 3 0 0 0 6 0 3 3 0 0 0 6 0 3 3 0 0 0 6 0M5 12v9h14v-9M10 21v-5h4v5",
  shield: "M12 3l8 3v6c0 4.5-3.4 8.2-8 9-4.6-.8-8-4.5-8-9V6z",
  words: "M4 6h16M4 12h10M4 18h13",
  log: "M6 3h9l4 4v14H6zM9 11h7M9 15h7M9 7h3",
  ban: "M12 21a9 9 0 1 0 0-18 9 9 0 0 0 0 18zM5.6 5.6l12.8 12.8",
  comment: "M4 5h16v11H9l-5 4z",
  repost: "M17 2l4 4-4 4M3 11V9a3 3 0 0 1 3-3h15M7 22l-4-4 4-4M21 13v2a3 3 0 0 1-3 3H3",
};

export function icon(name, size = 22) {
  return svg("svg", { class: `icon icon-${name}`, viewBox: "0 0 24 24", width: size, height: size,
    fill: "none", stroke: "currentColor", "stroke-width": 1.8, "stroke-linecap": "round",
    "stroke-linejoin": "round", "aria-hidden": "true" }, svg("path", { d: PATHS[name] || PATHS.hash }));
}
