// The per-offer funnel (pushed → claimed → redeemed) as an SVG bar chart, scaled per offer so
// each funnel reads on its own; conversion percentages sit beside the bars.

import { svg } from "./dom.js";
import { t } from "./i18n.js";

const STEPS = [["pushed", "#8aa4ff"], ["claimed", "#4c6ef5"], ["redeemed", "#2b8a3e"]];

export function funnelChart(rows, width = 340) {
  // rows: [{title, pushed, claimed, redeemed}]
  const labelW = 84;
  const barMax = width - labelW - 70;
  const barH = 16;
  const gap = 6;
  const groupH = 22 + STEPS.length * (barH + gap) + 8;
  const height = Math.max(1, rows.length) * groupH;
  const root = svg("svg", { class: "funnel", viewBox: `0 0 ${width} ${height}`, width: "100%", role: "img" });
  rows.forEach((row, i) => {
    const y0 = i * groupH;
    root.append(svg("text", { x: 0, y: y0 + 14, class: "funnel-title" }, row.title));
    const top = Math.max(1, row.pushed, row.claimed, row.redeemed);
    STEPS.forEach(([step, color], j) => {
      const value = Number(row[step] || 0);
      const y = y0 + 22 + j * (barH + gap);
      const w = Math.max(value > 0 ? 2 : 0, (value / top) * barMax);
      const prev = j === 0 ? null : Number(row[STEPS[j - 1][0]] || 0);
      const pct = prev ? ` (${Math.round((value / prev) * 100)}%)` : "";
      root.append(
        svg("text", { x: 0, y: y + barH - 4, class: "funnel-label" }, t(`funnel.${step}`)),
        svg("rect", { x: labelW, y, width: w.toFixed(1), height: barH, rx: 3, fill: color,
          "data-step": step, "data-value": value }),
        svg("text", { x: labelW + w + 6, y: y + barH - 4, class: "funnel-value" }, `${value}${pct}`),
      );
    });
  });
  return root;
}

// Store insights: a daily line and the hours bars, plain SVG scaled to the data (no library, no CDN).

function niceMax(value) {
  // the axis top: 1, 2 or 5 times a power of ten, at least the data's maximum
  if (value <= 0) return 1;
  const step = 10 ** Math.floor(Math.log10(value));
  return [1, 2, 5, 10].map((m) => m * step).find((m) => m >= value);
}

export function lineChart(points, { width = 340, height = 150, key = "checkins", color = "#e8590c" } = {}) {
  // points: [{date, [key]: n}], oldest first; a dot marks each day when there are few
  const pad = { left: 30, right: 8, top: 10, bottom: 20 };
  const w = width - pad.left - pad.right;
  const hgt = height - pad.top - pad.bottom;
  const top = niceMax(Math.max(0, ...points.map((p) => p[key])));
  const x = (i) => pad.left + (points.length > 1 ? (i / (points.length - 1)) * w : w / 2);
  const y = (v) => pad.top + hgt - (v / top) * hgt;
  const root = svg("svg", { class: "chart line-chart", viewBox: `0 0 ${width} ${height}`, width: "100%", role: "img",
    "data-points": points.length });
  for (const v of top % 2 === 0 ? [0, top / 2, top] : [0, top]) {
    root.append(svg("line", { x1: pad.left, x2: width - pad.right, y1: y(v), y2: y(v), class: "grid" }),
      svg("text", { x: pad.left - 4, y: y(v) + 3, class: "axis", "text-anchor": "end" }, String(Math.round(v))));
  }
  const path = points.map((p, i) => `${i ? "L" : "M"}${x(i).toFixed(1)},${y(p[key]).toFixed(1)}`).join(" ");
  if (points.length) {
    const area = `${path} L${x(points.length - 1).toFixed(1)},${y(0)} L${x(0).toFixed(1)},${y(0)} Z`;
    root.append(svg("path", { d: area, fill: color, opacity: 0.12 }),
      svg("path", { d: path, fill: "none", stroke: color, "stroke-width": 2, "stroke-linejoin": "round",
        class: "line" }));
    if (points.length <= 31) {
      points.forEach((p, i) => root.append(svg("circle", { cx: x(i), cy: y(p[key]), r: 2.5, fill: color })));
    }
    const first = points[0].date;
    const last = points[points.length - 1].date;
    root.append(svg("text", { x: pad.left, y: height - 4, class: "axis" }, first.slice(5)),
      svg("text", { x: width - pad.right, y: height - 4, class: "axis", "text-anchor": "end" }, last.slice(5)));
  }
  return root;
}

export function hourBars(counts, { width = 340, height = 130, color = "#4c6ef5" } = {}) {
  // counts: 24 numbers by local hour; every sixth hour is labelled
  const pad = { left: 4, right: 4, top: 8, bottom: 18 };
  const slot = (width - pad.left - pad.right) / 24;
  const hgt = height - pad.top - pad.bottom;
  const top = Math.max(1, ...counts);
  const root = svg("svg", { class: "chart hour-bars", viewBox: `0 0 ${width} ${height}`, width: "100%", role: "img" });
  counts.forEach((n, hour) => {
    const bh = (n / top) * hgt;
    const x = pad.left + hour * slot;
    root.append(svg("rect", { x: (x + 1).toFixed(1), y: (pad.top + hgt - bh).toFixed(1), width: (slot - 2).toFixed(1),
      height: Math.max(n > 0 ? 1 : 0, bh).toFixed(1), rx: 2, fill: color, "data-hour": hour, "data-value": n },
    svg("title", {}, `${hour}:00 · ${n}`)));
    if (hour % 6 === 0) {
      root.append(svg("text", { x: x + 1, y: height - 4, class: "axis" }, `${hour}h`));
    }
  });
  root.append(svg("line", { x1: pad.left, x2: width - pad.right, y1: pad.top + hgt, y2: pad.top + hgt, class: "grid" }));
  return root;
}
