// Small hand-written SVG charts: a (stacked) daily bar chart and a daily line chart.
// Every mark carries data-day / data-series / data-value, and a <title> for hover text.

const SVG = "http://www.w3.org/2000/svg";
const MARGIN = { top: 12, right: 12, bottom: 28, left: 44 };

export const PALETTE = ["#3b6fd8", "#e07b39", "#2f9e77", "#c0457f", "#8c6bd1", "#9aa0a6"];

function el(name, attrs = {}, text) {
  const node = document.createElementNS(SVG, name);
  for (const [key, value] of Object.entries(attrs)) node.setAttribute(key, String(value));
  if (text != null) node.textContent = text;
  return node;
}

/** Round tick values from 0 to at least `max`, about `count` of them. */
export function niceTicks(max, count = 4) {
  if (!(max > 0)) return [0, 1];
  const raw = max / count;
  const magnitude = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 5, 10].map((m) => m * magnitude).find((s) => s >= raw);
  const ticks = [];
  for (let v = 0; v < max + step; v += step) ticks.push(Math.round(v * 1e6) / 1e6);
  return ticks;
}

function shortDay(day) {
  const date = new Date(`${day}T00:00:00Z`);
  return date.toLocaleDateString(undefined, { month: "short", day: "numeric", timeZone: "UTC" });
}

function frame(box, days, maxValue, label) {
  const width = Math.max(280, Math.floor(box.clientWidth || 600));
  const height = width < 480 ? 200 : 240;
  const svg = el("svg", { width, height, viewBox: `0 0 ${width} ${height}`, role: "img", "aria-label": label, class: "chart-svg" });
  const plotW = width - MARGIN.left - MARGIN.right;
  const plotH = height - MARGIN.top - MARGIN.bottom;
  const ticks = niceTicks(maxValue, height < 220 ? 3 : 4);
  const top = ticks[ticks.length - 1];
  const y = (v) => MARGIN.top + plotH - (v / top) * plotH;
  const axis = el("g", { class: "axis" });
  for (const t of ticks) {
    axis.append(el("line", { x1: MARGIN.left, x2: width - MARGIN.right, y1: y(t), y2: y(t), class: t === 0 ? "baseline" : "grid" }));
    axis.append(el("text", { x: MARGIN.left - 6, y: y(t) + 4, "text-anchor": "end" }, t.toLocaleString()));
  }
  const slot = plotW / Math.max(1, days.length);
  const every = Math.max(1, Math.ceil(days.length / Math.floor(plotW / 56)));
  days.forEach((day, i) => {
    if (i % every) return;
    axis.append(el("text", { x: MARGIN.left + slot * (i + 0.5), y: height - 8, "text-anchor": "middle" }, shortDay(day)));
  });
  svg.append(axis);
  return { svg, y, slot, plotH };
}

/**
 * Bars per day; several series are stacked in order.
 * series: [{ key, label, values: number[] (one per day), color }]
 */
export function barChart(box, days, series, unit) {
  const totals = days.map((_, i) => series.reduce((sum, s) => sum + (s.values[i] || 0), 0));
  const { svg, y, slot } = frame(box, days, Math.max(0, ...totals), `${unit} per day`);
  const barW = Math.max(2, Math.min(48, slot * 0.7));
  days.forEach((day, i) => {
    let base = 0;
    const x = MARGIN.left + slot * i + (slot - barW) / 2;
    for (const s of series) {
      const value = s.values[i] || 0;
      if (value > 0) {
        const rect = el("rect", {
          x, y: y(base + value), width: barW, height: Math.max(1, y(base) - y(base + value)),
          fill: s.color, "data-day": day, "data-series": s.key, "data-value": value, class: "bar",
        });
        rect.append(el("title", {}, `${day} · ${s.label}: ${value.toLocaleString()} ${unit}`));
        svg.append(rect);
      }
      base += value;
    }
    const hit = el("rect", { x: MARGIN.left + slot * i, y: MARGIN.top, width: slot, height: y(0) - MARGIN.top, class: "hit", "data-day": day, "data-total": totals[i] });
    hit.append(el("title", {}, `${day}: ${totals[i].toLocaleString()} ${unit}`));
    svg.append(hit);
  });
  box.replaceChildren(svg);
}

/** One line with a dot per day. Days with a null value (unknown) leave a gap. */
export function lineChart(box, days, values, unit, color = PALETTE[2]) {
  const { svg, y, slot } = frame(box, days, Math.max(0, ...values.map((v) => v || 0)), `${unit} per day`);
  const x = (i) => MARGIN.left + slot * (i + 0.5);
  let path = "";
  values.forEach((v, i) => {
    if (v == null) return;
    path += `${path && values[i - 1] != null ? "L" : "M"}${x(i).toFixed(1)},${y(v).toFixed(1)}`;
  });
  svg.append(el("path", { d: path, fill: "none", stroke: color, "stroke-width": 2, class: "line" }));
  values.forEach((v, i) => {
    if (v == null) return;
    const dot = el("circle", { cx: x(i), cy: y(v), r: days.length > 45 ? 2 : 3.5, fill: color, "data-day": days[i], "data-series": "users", "data-value": v, class: "dot" });
    dot.append(el("title", {}, `${days[i]}: ${v.toLocaleString()} ${unit}`));
    svg.append(dot);
  });
  box.replaceChildren(svg);
}
