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
