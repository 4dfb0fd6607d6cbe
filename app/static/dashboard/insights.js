// The insight tabs: Properties (propertyCatalogue, propertyBreakdown, propertyAggregates),
// Adoption (adoption, one call per event type) and Funnel (funnel). Each reads the shared
// app and window from the filter form; its own choices live in the URL's query string with
// the rest of the view (never the token). README "Dashboard and browser tracker".

import { ADOPTION_QUERY, FUNNEL_QUERY, PROPERTY_KEYS_QUERY, PROPERTY_VIEW_QUERY, graphql } from "./api.js";
import { PALETTE, categoryBars, linesChart } from "./charts.js";
import { fillTable } from "./table.js";

export const TABS = ["overview", "properties", "adoption", "funnel"];
const DAY_MS = 86_400_000;
const TOP_VALUES = 20;
const MAX_STEPS = 10;
const FUNNEL_DIMENSIONS = { DEVICE_TYPE: "device type", BROWSER_FAMILY: "browser", OS_FAMILY: "operating system", ROUTE: "route", APP_NAME: "app" };

const $ = (id) => document.getElementById(id);
const fmt = new Intl.NumberFormat();
const view = { pType: "", pPath: "", aTypes: [], aProp: "", steps: [], countBy: "SESSION", within: "", fnBy: "" };
let deps = null; // { reload, types, onError } from main.js
let redraw = null; // re-draws the active tab's charts (after a resize)

// ---- the view <-> URL -------------------------------------------------------------------------

export function readInsightView(q) {
  view.pType = q.get("ptype") || "";
  view.pPath = q.get("prop") || "";
  view.aTypes = (q.get("atypes") || "").split(",").filter(Boolean);
  view.aProp = q.get("aprop") || "";
  view.steps = (q.get("steps") || "").split(",").filter(Boolean).slice(0, MAX_STEPS);
  view.countBy = q.get("count") === "USER_DAY" ? "USER_DAY" : "SESSION";
  view.within = /^\d+$/.test(q.get("within") || "") ? q.get("within") : "";
  view.fnBy = FUNNEL_DIMENSIONS[q.get("fby")] ? q.get("fby") : "";
}

/** The insight tabs' choices as query parameters (every tab's, so switching tabs keeps them). */
export function insightParams() {
  const out = [];
  if (view.pType) out.push(["ptype", view.pType]);
  if (view.pPath) out.push(["prop", view.pPath]);
  if (view.aTypes.length) out.push(["atypes", view.aTypes.join(",")]);
  if (view.aProp) out.push(["aprop", view.aProp]);
  if (view.steps.length) out.push(["steps", view.steps.join(",")]);
  if (view.countBy !== "SESSION") out.push(["count", view.countBy]);
  if (view.within) out.push(["within", view.within]);
  if (view.fnBy) out.push(["fby", view.fnBy]);
  return out;
}

// ---- helpers ------------------------------------------------------------------------------------

const addDays = (day, n) => new Date(Date.parse(`${day}T00:00:00Z`) + n * DAY_MS).toISOString().slice(0, 10);
function dayRange(from, to) {
  const days = [];
  for (let d = from; d <= to && days.length <= 366; d = addDays(d, 1)) days.push(d);
  return days;
}
const dayOf = (iso) => new Date(/(Z|[+-]\d\d:?\d\d)$/i.test(iso) ? iso : `${iso}Z`).toISOString().slice(0, 10);
const windowOf = (f) => {
  const filter = { from: `${f.from}T00:00:00Z`, to: `${addDays(f.to, 1)}T00:00:00Z` };
  if (f.app) filter.appName = f.app;
  return filter;
};
const pct = (rate) => ({ text: rate == null ? "–" : `${(rate * 100).toFixed(1)}%`, value: rate, className: "num" });
const seconds = (s) => ({
  text: s == null ? "–" : s < 120 ? `${s.toFixed(1)} s` : `${fmt.format(Math.round(s))} s (${(s / 60).toFixed(1)} min)`, value: s, className: "num",
});
const num = (v) => ({ text: v == null ? "–" : v.toLocaleString(undefined, { maximumFractionDigits: 2 }), value: v, className: "num" });

function options(select, items, chosen, first) {
  const opts = items.map(({ value, label, disabled }) => Object.assign(new Option(label, value), { disabled: Boolean(disabled) }));
  select.replaceChildren(...(first ? [new Option(first, "")] : []), ...opts);
  if (chosen && !items.some((i) => i.value === chosen)) select.append(new Option(chosen, chosen));
  select.value = chosen;
}

function legend(list, series) {
  list.replaceChildren(...series.map((s) => {
    const li = document.createElement("li");
    const swatch = Object.assign(document.createElement("span"), { className: "swatch" });
    swatch.style.background = s.color;
    li.append(swatch, s.label);
    return li;
  }));
}

/** "path=value": an EQ property filter; the value is JSON when it parses (1, true, "x"), else a string. */
export function propertyCondition(text) {
  const i = text.indexOf("=");
  if (i <= 0) return null;
  const raw = text.slice(i + 1).trim();
  let value = raw;
  try {
    value = JSON.parse(raw);
  } catch (_) {
    value = raw;
  }
  return { path: text.slice(0, i).trim(), op: "EQ", value };
}

// ---- loading: each returns a function that renders the answer (after the overview's) ------------

export async function loadInsight(tab, f, token) {
  if (tab === "properties") return loadProperties(f, token);
  if (tab === "adoption") return loadAdoption(f, token);
  if (tab === "funnel") return loadFunnel(f, token);
  return null;
}

async function loadProperties(f, token) {
  const filter = windowOf(f);
  if (view.pType) filter.eventTypes = [view.pType];
  const catalogue = (await graphql(PROPERTY_KEYS_QUERY, { filter }, token)).propertyCatalogue;
  const key = catalogue.keys.find((k) => k.path === view.pPath && !k.valuesHidden);
  const numeric = Boolean(key && key.types.some((t) => t.type === "NUMBER"));
  const answer = key ? await graphql(PROPERTY_VIEW_QUERY, { filter, property: key.path, top: TOP_VALUES, numeric }, token) : null;
  return () => renderProperties(f, catalogue, key, answer);
}

function renderProperties(f, catalogue, key, answer) {
  options($("p-type"), deps.types().map((t) => ({ value: t, label: t })), view.pType, "Any");
  options($("p-path"), catalogue.keys.map((k) => ({
    value: k.path,
    label: `${k.path} (${fmt.format(k.events)} events${k.valuesHidden ? ", personal: values hidden" : ""})`,
    disabled: k.valuesHidden,
  })), key ? key.path : "", "Pick a property");
  $("p-note").textContent = `Keys from the newest ${fmt.format(catalogue.sampledEvents)} matching events (at most ${fmt.format(catalogue.scanLimit)}).`
    + (view.pPath && !key ? ` "${view.pPath}" does not occur there.` : "");
  const values = answer ? answer.propertyBreakdown.values : [];
  const aggregates = answer?.propertyAggregates?.buckets || null;
  const days = dayRange(f.from, f.to);
  const draw = () => {
    categoryBars($("p-values").querySelector(".chart-box"), values.map((v) => ({ key: v.label, label: v.label, value: v.events })), "events");
    if (aggregates) {
      const byDay = new Map(aggregates.map((b) => [dayOf(b.start), b]));
      const series = [["avg", "average", PALETTE[0]], ["p50", "median (p50)", PALETTE[2]], ["p95", "95th percentile", PALETTE[1]]].map(([k, label, color]) => ({
        key: k, label, color, values: days.map((d) => (byDay.has(d) ? byDay.get(d)[k] : null)),
      }));
      linesChart($("p-numbers").querySelector(".chart-box"), days, series, view.pPath);
      legend($("p-numbers").querySelector(".legend"), series);
    }
  };
  redraw = draw;
  draw();
  fillTable($("p-values-table"), ["Value", "Kind", "Events", "Summed daily users"],
    values.map((v) => [v.label, v.kind, v.events, v.summedDailyUsers]),
    { name: `property-${view.pPath || "none"}-values`, empty: key ? "No events match." : "Pick a property." });
  $("p-numbers").hidden = !aggregates;
  if (aggregates) {
    fillTable($("p-numbers-table"), ["Day (UTC)", "Numbers", "Average", "Median (p50)", "95th percentile"],
      aggregates.map((b) => [dayOf(b.start), b.count, num(b.avg), num(b.p50), num(b.p95)]),
      { name: `property-${view.pPath}-numbers` });
  }
}

async function loadAdoption(f, token) {
  const population = windowOf(f);
  const condition = view.aProp ? propertyCondition(view.aProp) : null;
  const answers = await Promise.all(view.aTypes.map((type) => {
    const target = { eventTypes: [type], ...(condition ? { properties: [condition] } : {}) };
    return graphql(ADOPTION_QUERY, { population, target }, token).then((d) => d.adoption);
  }));
  return () => renderAdoption(f, answers, condition);
}

function renderAdoption(f, answers, condition) {
  const box = $("a-types");
  const names = [...new Set([...deps.types(), ...view.aTypes])];
  box.replaceChildren(box.querySelector("legend"), ...names.map((name) => {
    const label = Object.assign(document.createElement("label"), { className: "chip" });
    const input = Object.assign(document.createElement("input"), { type: "checkbox", value: name, checked: view.aTypes.includes(name) });
    label.append(input, ` ${name}`);
    return label;
  }));
  $("a-prop").value = view.aProp;
  const days = answers[0]?.days.map((d) => d.day) || dayRange(f.from, f.to);
  const series = view.aTypes.map((type, i) => ({
    key: type, label: `${type}${condition ? ` (${view.aProp})` : ""}`, color: PALETTE[i % 5],
    values: answers[i].days.map((d) => (d.userRate == null ? null : d.userRate * 100)),
    hover: answers[i].days.map((d) => `${fmt.format(d.targetUsers)} of ${fmt.format(d.activeUsers)} active users (${d.userRate == null ? "–" : `${(d.userRate * 100).toFixed(1)}%`})`),
  }));
  const draw = () => {
    linesChart($("a-chart").querySelector(".chart-box"), days, series, "% of active users", { format: (v) => `${v}%` });
    legend($("a-chart").querySelector(".legend"), series);
  };
  redraw = draw;
  draw();
  const head = ["Day (UTC)", "Active users", ...view.aTypes.flatMap((t) => [`${t}: users`, `${t}: share`])];
  const rows = !answers.length ? [] : days.map((day, i) => [day, answers[0].days[i].activeUsers, ...answers.flatMap((a) => [a.days[i].targetUsers, pct(a.days[i].userRate)])]);
  if (answers.length) {
    rows.push(["Summed over the days (not people)", answers[0].totals.summedDailyActiveUsers,
      ...answers.flatMap((a) => [a.totals.summedDailyTargetUsers, pct(a.totals.userRate)])]);
  }
  fillTable($("a-table"), head, answers.length ? rows : [], { name: "adoption", empty: "Tick at least one event type." });
}

async function loadFunnel(f, token) {
  if (view.steps.length < 2) return () => renderFunnel(null);
  const variables = {
    filter: windowOf(f),
    steps: view.steps.map((t) => ({ eventTypes: [t] })),
    countBy: view.countBy,
    within: view.within ? Number(view.within) : null,
    breakdown: view.fnBy || null,
  };
  const answer = (await graphql(FUNNEL_QUERY, variables, token)).funnel;
  return () => renderFunnel(answer);
}

function stepEditor() {
  const types = [...new Set([...deps.types(), ...view.steps])];
  const list = $("fn-steps");
  list.replaceChildren(...view.steps.map((type, i) => {
    const li = document.createElement("li");
    const select = Object.assign(document.createElement("select"), { className: "fn-step" });
    select.setAttribute("aria-label", `Step ${i + 1} event type`);
    options(select, types.map((t) => ({ value: t, label: t })), type);
    select.addEventListener("change", () => {
      view.steps[i] = select.value;
      deps.reload();
    });
    const button = (text, label, action, disabled) => {
      const b = Object.assign(document.createElement("button"), { type: "button", textContent: text, disabled });
      b.setAttribute("aria-label", `${label} step ${i + 1}`);
      b.addEventListener("click", () => {
        action();
        deps.reload();
      });
      return b;
    };
    const swap = (j) => { [view.steps[i], view.steps[j]] = [view.steps[j], view.steps[i]]; };
    li.append(select,
      button("↑", "Move up", () => swap(i - 1), i === 0),
      button("↓", "Move down", () => swap(i + 1), i === view.steps.length - 1),
      button("Remove", "Remove", () => view.steps.splice(i, 1), false));
    return li;
  }));
  $("fn-add").disabled = view.steps.length >= MAX_STEPS || !types.length;
  $("fn-count").value = view.countBy;
  $("fn-within").value = view.within;
  $("fn-by").value = view.fnBy;
}

function renderFunnel(answer) {
  stepEditor();
  const steps = answer ? answer.steps : [];
  const items = steps.map((s, i) => ({
    key: String(s.step), label: `${s.step}. ${view.steps[i]}`, value: s.entered,
    note: s.dropped == null ? `${(s.conversionFromStart * 100).toFixed(1)}% of step 1` : `−${fmt.format(s.dropped)} drop`,
  }));
  const draw = () => categoryBars($("fn-chart").querySelector(".chart-box"), items, view.countBy === "SESSION" ? "sessions" : "user-days", PALETTE[4]);
  redraw = draw;
  draw();
  fillTable($("fn-table"),
    ["Step", "Event type", "Entered", "Converted", "Dropped", "From step 1", "From previous", "Median seconds from previous", "Median seconds from step 1"],
    steps.map((s, i) => [s.step, view.steps[i], s.entered, num(s.converted), num(s.dropped), pct(s.conversionFromStart), pct(s.conversionFromPrevious),
      seconds(s.medianSecondsFromPrevious), seconds(s.medianSecondsFromStart)]),
    { name: "funnel", empty: "Add at least two steps." });
  const groups = answer && answer.breakdown !== undefined ? answer.groups : answer?.groups || [];
  $("fn-groups").hidden = !(view.fnBy && groups.length);
  if (!$("fn-groups").hidden) {
    $("fn-groups").querySelector(".by-name").textContent = FUNNEL_DIMENSIONS[view.fnBy];
    const last = steps.length;
    fillTable($("fn-groups-table"),
      [FUNNEL_DIMENSIONS[view.fnBy], ...view.steps.map((t, i) => `${i + 1}. ${t}`), "Conversion"],
      groups.map((g) => [g.value ?? "(none)", ...g.steps.map((s) => s.entered), pct(g.steps[last - 1]?.conversionFromStart ?? null)]),
      { name: `funnel-by-${view.fnBy.toLowerCase()}` });
  }
}

export function renderInsightCharts() {
  if (redraw && document.body.dataset.tab !== "overview") redraw();
}

// ---- wiring -------------------------------------------------------------------------------------

export function setupInsights(dependencies) {
  deps = dependencies;
  for (const id of ["p-form", "a-form", "fn-form"]) $(id).addEventListener("submit", (e) => e.preventDefault());
  $("p-type").addEventListener("change", () => {
    view.pType = $("p-type").value;
    deps.reload();
  });
  $("p-path").addEventListener("change", () => {
    view.pPath = $("p-path").value;
    deps.reload();
  });
  $("a-types").addEventListener("change", () => {
    view.aTypes = [...document.querySelectorAll("#a-types input:checked")].map((i) => i.value);
    deps.reload();
  });
  $("a-prop").addEventListener("change", () => {
    view.aProp = $("a-prop").value.trim();
    deps.reload();
  });
  $("fn-add").addEventListener("click", () => {
    const types = deps.types();
    view.steps.push(types[view.steps.length % Math.max(1, types.length)] || "");
    deps.reload();
  });
  $("fn-count").addEventListener("change", () => {
    view.countBy = $("fn-count").value;
    deps.reload();
  });
  $("fn-within").addEventListener("change", () => {
    const v = $("fn-within").value;
    view.within = /^\d+$/.test(v) && Number(v) > 0 ? v : "";
    deps.reload();
  });
  $("fn-by").addEventListener("change", () => {
    view.fnBy = $("fn-by").value;
    deps.reload();
  });
}
