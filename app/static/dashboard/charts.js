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

function frame(box, days, maxValue, label, format = (t) => t.toLocaleString()) {
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
    axis.append(el("text", { x: MARGIN.left - 6, y: y(t) + 4, "text-anchor": "end" }, format(t)));
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
export function barChart(box, days, series, unit, previous = null) {
  const totals = days.map((_, i) => series.reduce((sum, s) => sum + (s.values[i] || 0), 0));
  const { svg, y, slot } = frame(box, days, Math.max(0, ...totals, ...(previous || [])), `${unit} per day`);
  if (previous) {
    // the previous period, day i against day i, as a faint wider bar behind
    const prevW = Math.max(3, Math.min(56, slot * 0.9));
    previous.forEach((value, i) => {
      if (!(value > 0)) return;
      const rect = el("rect", {
        x: MARGIN.left + slot * i + (slot - prevW) / 2, y: y(value), width: prevW, height: Math.max(1, y(0) - y(value)),
        class: "prev-bar", "data-day": days[i], "data-value": value,
      });
      rect.append(el("title", {}, `previous period, day ${i + 1}: ${value.toLocaleString()} ${unit}`));
      svg.append(rect);
    });
  }
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

/**
 * Several lines over the days (one per series). A series with `faint` is drawn thin and
 * dashed (the previous period). Dots carry data-series / data-value and a <title>; `hover`
 * (optional, per series) gives each dot's hover text instead of the value.
 * series: [{ key, label, values: (number|null)[], color, faint?, hover?: string[] }]
 */
export function linesChart(box, days, series, unit, { format = (v) => v.toLocaleString(), max } = {}) {
  const top = max ?? Math.max(0, ...series.flatMap((s) => s.values.map((v) => v || 0)));
  const { svg, y, slot } = frame(box, days, top, `${unit} per day`, format);
  const x = (i) => MARGIN.left + slot * (i + 0.5);
  for (const s of series) {
    let path = "";
    s.values.forEach((v, i) => {
      if (v == null) return;
      path += `${path && s.values[i - 1] != null ? "L" : "M"}${x(i).toFixed(1)},${y(v).toFixed(1)}`;
    });
    svg.append(el("path", {
      d: path, fill: "none", stroke: s.color, "stroke-width": s.faint ? 1.5 : 2,
      "stroke-dasharray": s.faint ? "4 3" : "none", opacity: s.faint ? 0.55 : 1, class: s.faint ? "line prev" : "line",
    }));
    s.values.forEach((v, i) => {
      if (v == null) return;
      const dot = el("circle", {
        cx: x(i), cy: y(v), r: s.faint ? 2 : days.length > 45 ? 2 : 3, fill: s.color, opacity: s.faint ? 0.55 : 1,
        "data-day": days[i], "data-series": s.key, "data-value": v, class: s.faint ? "prev-dot" : "dot",
      });
      dot.append(el("title", {}, `${days[i]} · ${s.label}: ${s.hover ? s.hover[i] : `${format(v)} ${unit}`}`));
      svg.append(dot);
    });
  }
  box.replaceChildren(svg);
}

/**
 * Horizontal bars, one per labelled item (property values, funnel steps).
 * items: [{ key, label, value, note? }] ; the note is drawn after the value (e.g. a drop-off).
 */
export function categoryBars(box, items, unit, color = PALETTE[0]) {
  const width = Math.max(280, Math.floor(box.clientWidth || 600));
  const row = 30;
  const labelW = Math.min(180, Math.floor(width * 0.35));
  const height = Math.max(row, items.length * row) + 8;
  const svg = el("svg", { width, height, viewBox: `0 0 ${width} ${height}`, role: "img", "aria-label": `${unit} by item`, class: "chart-svg" });
  const max = Math.max(1, ...items.map((i) => i.value));
  const plotW = width - labelW - 150;
  items.forEach((item, i) => {
    const y0 = 4 + i * row;
    const label = item.label.length > 24 ? `${item.label.slice(0, 23)}…` : item.label;
    svg.append(el("text", { x: labelW - 6, y: y0 + 18, "text-anchor": "end" }, label));
    const w = Math.max(item.value > 0 ? 2 : 0, (item.value / max) * plotW);
    const rect = el("rect", { x: labelW, y: y0 + 4, width: w, height: row - 10, fill: color, class: "cat-bar", "data-key": item.key, "data-value": item.value });
    rect.append(el("title", {}, `${item.label}: ${item.value.toLocaleString()} ${unit}${item.note ? ` (${item.note})` : ""}`));
    svg.append(rect);
    svg.append(el("text", { x: labelW + w + 6, y: y0 + 18 }, `${item.value.toLocaleString()}${item.note ? ` · ${item.note}` : ""}`));
  });
  box.replaceChildren(svg);
}
