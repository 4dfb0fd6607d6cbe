// The dashboard page: filters in the URL, one GraphQL call per view, charts and tables.
// Data is only ever written with textContent (event fields are user-supplied strings).

import { ApiError, DASHBOARD_QUERY, MORE_EVENTS_QUERY, graphql } from "./api.js";
import { PALETTE, barChart, lineChart, linesChart } from "./charts.js";
import { TABS, insightParams, loadInsight, readInsightView, renderInsightCharts, setupInsights } from "./insights.js";
import { fillTable } from "./table.js";
import { forgetToken, loadToken, msUntilExpiry, saveToken, takeTokenFromFragment, tokenProblem } from "./session.js";

const $ = (id) => document.getElementById(id);
const fmt = new Intl.NumberFormat();
const DAY_MS = 86_400_000;
const MAX_DAYS = 366;
const STACKED_GROUPS = 5;
const PAGE_SIZE = 25;
const DIMENSION_LABELS = {
  EVENT_TYPE: "event type", APP_NAME: "app", ROUTE: "route", ENTITY_TYPE: "entity type",
  DEVICE_TYPE: "device type", BROWSER_FAMILY: "browser", OS_FAMILY: "operating system",
};

const state = { tab: "overview", token: null, filters: null, data: null, days: [], events: [], cursor: null, loadSeq: 0, expiryTimer: null };

// ---- dates (all UTC days, "YYYY-MM-DD") ----------------------------------------------

const today = () => new Date().toISOString().slice(0, 10);
const addDays = (day, n) => new Date(Date.parse(`${day}T00:00:00Z`) + n * DAY_MS).toISOString().slice(0, 10);
const isDay = (s) => typeof s === "string" && /^\d{4}-\d{2}-\d{2}$/.test(s) && !Number.isNaN(Date.parse(`${s}T00:00:00Z`));

function dayRange(from, to) {
  const days = [];
  for (let d = from; d <= to && days.length <= MAX_DAYS; d = addDays(d, 1)) days.push(d);
  return days;
}

// API timestamps are UTC; one without a zone designator is read as UTC too (never local time).
const asUtc = (iso) => new Date(/(Z|[+-]\d\d:?\d\d)$/i.test(iso) ? iso : `${iso}Z`);
const dayOf = (iso) => asUtc(iso).toISOString().slice(0, 10);
const utcText = (iso) => asUtc(iso).toISOString().replace("T", " ").slice(0, 19);

// ---- filters <-> URL <-> form ---------------------------------------------------------

function readFilters() {
  const q = new URLSearchParams(location.search);
  const to = isDay(q.get("to")) ? q.get("to") : today();
  const from = isDay(q.get("from")) ? q.get("from") : addDays(to, -13);
  return {
    app: q.get("app") || "",
    types: new Set((q.get("types") || "").split(",").filter(Boolean)),
    from,
    to,
    by: DIMENSION_LABELS[q.get("by")] ? q.get("by") : "",
    compare: q.get("compare") === "previous",
    tab: TABS.includes(q.get("tab")) ? q.get("tab") : "overview",
  };
}

function writeUrl(f) {
  const q = new URLSearchParams();
  if (f.app) q.set("app", f.app);
  if (f.types.size) q.set("types", [...f.types].join(","));
  q.set("from", f.from);
  q.set("to", f.to);
  if (f.by) q.set("by", f.by);
  if (f.compare) q.set("compare", "previous");
  if (f.tab !== "overview") q.set("tab", f.tab);
  for (const [key, value] of insightParams(f.tab)) q.set(key, value);
  // the whole view lives in the query string; the token never does (see session.js)
  history.replaceState(null, "", `${location.pathname}?${q}`);
}

function fillForm(f) {
  $("f-from").value = f.from;
  $("f-to").value = f.to;
  $("f-by").value = f.by;
  $("f-compare").checked = f.compare;
  ensureOption($("f-app"), f.app);
  $("f-app").value = f.app;
}

function formFilters() {
  const types = new Set([...document.querySelectorAll("#f-types input:checked")].map((i) => i.value));
  return {
    app: $("f-app").value, types, from: $("f-from").value, to: $("f-to").value, by: $("f-by").value,
    compare: $("f-compare").checked, tab: state.tab,
  };
}

function filterProblem(f) {
  if (!isDay(f.from) || !isDay(f.to)) return "Pick both dates.";
  if (f.from > f.to) return "The start date is after the end date.";
  if (dayRange(f.from, f.to).length > MAX_DAYS) return `Pick at most ${MAX_DAYS} days.`;
  return null;
}

function eventFilter(f, { withApp = true, withTypes = true } = {}) {
  const filter = { from: `${f.from}T00:00:00Z`, to: `${addDays(f.to, 1)}T00:00:00Z` };
  if (withApp && f.app) filter.appName = f.app;
  if (withTypes && f.types.size) filter.eventTypes = [...f.types];
  return filter;
}

// ---- page states ------------------------------------------------------------------------

function setState(name, status = "") {
  document.body.dataset.state = name;
  $("status").textContent = status;
}

function showSignin(message) {
  clearTimeout(state.expiryTimer);
  state.token = null;
  state.loadSeq += 1; // answers still in flight are ignored
  $("dashboard").hidden = true;
  $("banner").hidden = true;
  $("signout").hidden = true;
  $("signin").hidden = false;
  $("signin-message").hidden = !message;
  $("signin-message").textContent = message || "";
  setState("signin");
  $("token-input").focus();
}

function signIn(token) {
  const problem = tokenProblem(token);
  if (problem) {
    forgetToken();
    showSignin(problem);
    return;
  }
  state.token = token;
  $("signin").hidden = true;
  $("dashboard").hidden = false;
  $("signout").hidden = false;
  clearTimeout(state.expiryTimer);
  const left = msUntilExpiry(token);
  if (Number.isFinite(left)) {
    state.expiryTimer = setTimeout(() => expire(), Math.min(Math.max(0, left), 2 ** 31 - 1));
  }
  load();
}

function expire(message) {
  forgetToken();
  showSignin(message || tokenProblem(state.token || "") || "Your session ended. Sign in again.");
}

function showBanner(message, retry) {
  $("banner-text").textContent = message;
  $("banner-retry").hidden = !retry;
  $("banner").hidden = false;
}

function handleError(error) {
  const kind = error instanceof ApiError ? error.kind : "graphql";
  if (kind === "auth") return expire(`The service did not accept your token (${error.message}). Sign in again.`);
  if (kind === "forbidden") return expire(`This token lacks the admin role (${error.message}). Sign in with an admin token.`);
  if (kind === "network" || kind === "server") {
    showBanner(`${error.message} The data below may be out of date.`, true);
    setState("error", "API unavailable");
    return undefined;
  }
  showBanner(`The API refused this view: ${error.message}`, true);
  setState("error", "error");
  return undefined;
}

// ---- loading ----------------------------------------------------------------------------

async function load() {
  const f = formFilters();
  const problem = filterProblem(f);
  if (problem) {
    showBanner(problem, false);
    return;
  }
  if (tokenProblem(state.token)) return expire();
  state.filters = f;
  writeUrl(f);
  const seq = ++state.loadSeq;
  setState("loading", "Loading…");
  const variables = {
    filter: eventFilter(f),
    window: eventFilter(f, { withApp: false, withTypes: false }),
    appWindow: eventFilter(f, { withTypes: false }),
    groupBy: f.by ? [f.by] : [],
    withBreakdown: Boolean(f.by),
    first: PAGE_SIZE,
    compareTo: f.compare ? "PREVIOUS_PERIOD" : null,
    withCompare: f.compare,
  };
  try {
    // the overview's answer also fills the app and event-type pickers the other tabs use
    const [data, insight] = await Promise.all([
      graphql(DASHBOARD_QUERY, variables, state.token),
      f.tab === "overview" ? null : loadInsight(f.tab, f, state.token),
    ]);
    if (seq !== state.loadSeq) return;
    state.data = data;
    state.days = dayRange(f.from, f.to);
    $("banner").hidden = true;
    render();
    if (insight) insight();
    setState("ready", `Updated ${new Date().toLocaleTimeString()}`);
  } catch (error) {
    if (seq === state.loadSeq) handleError(error);
  }
}

async function loadMore() {
  if (!state.cursor || tokenProblem(state.token)) return;
  $("more").disabled = true;
  try {
    const data = await graphql(MORE_EVENTS_QUERY, { filter: eventFilter(state.filters), first: PAGE_SIZE, after: state.cursor }, state.token);
    appendEvents(data.events);
  } catch (error) {
    handleError(error);
  } finally {
    $("more").disabled = false;
  }
}

// ---- rendering --------------------------------------------------------------------------

function ensureOption(select, value) {
  if (value && ![...select.options].some((o) => o.value === value)) select.append(new Option(value, value));
}

function groupLabel(group) {
  if (!group.length) return "all";
  if (group.every((g) => g.value == null || g.value === "")) return "(none)";
  return group.map((g) => (g.value == null || g.value === "" ? "–" : g.value)).join(" · ");
}

function renderPickers(data, f) {
  const apps = $("f-app");
  const appNames = data.apps.totals.map((t) => t.group[0]?.value).filter(Boolean);
  apps.replaceChildren(new Option("All apps", ""), ...appNames.map((a) => new Option(a, a)));
  ensureOption(apps, f.app);
  apps.value = f.app;

  const box = $("f-types");
  const legend = box.querySelector("legend");
  const names = data.types.totals.map((t) => ({ name: t.group[0]?.value, events: t.events })).filter((t) => t.name);
  for (const name of f.types) if (!names.some((t) => t.name === name)) names.push({ name, events: 0 });
  const items = names.map(({ name, events }) => {
    const label = document.createElement("label");
    label.className = "chip";
    const input = document.createElement("input");
    input.type = "checkbox";
    input.value = name;
    input.checked = f.types.has(name);
    label.append(input, ` ${name} `);
    const count = document.createElement("span");
    count.className = "muted";
    count.textContent = fmt.format(events);
    label.append(count);
    return label;
  });
  const empty = document.createElement("p");
  empty.className = "muted empty";
  empty.textContent = "No events in this window.";
  box.replaceChildren(legend, ...(items.length ? items : [empty]));
}

function perDay(buckets, pick) {
  const byDay = new Map();
  for (const b of buckets) byDay.set(dayOf(b.start), (byDay.get(dayOf(b.start)) || 0) + pick(b));
  return state.days.map((d) => byDay.get(d) || 0);
}

function eventSeries(data, f) {
  const total = perDay(data.daily.buckets, (b) => b.events);
  if (!f.by || !data.breakdown) return [{ key: "events", label: "events", values: total, color: PALETTE[0] }];
  const top = data.breakdown.totals.slice(0, STACKED_GROUPS).map((t) => groupLabel(t.group));
  const series = top.map((label, i) => ({
    key: label,
    label,
    color: PALETTE[i],
    values: perDay(data.breakdown.buckets.filter((b) => groupLabel(b.group) === label), (b) => b.events),
  }));
  const other = total.map((v, i) => v - series.reduce((sum, s) => sum + s.values[i], 0));
  if (other.some((v) => v > 0)) series.push({ key: "other", label: "other", color: PALETTE[5], values: other });
  return series;
}

function renderCharts() {
  const { data, filters: f, days } = state;
  if (!data) return;
  const series = eventSeries(data, f);
  const eventsFig = $("chart-events");
  const previous = previousPerDay(data, (b) => b.events);
  barChart(eventsFig.querySelector(".chart-box"), days, series, "events", previous);
  const legend = eventsFig.querySelector(".legend");
  const keyed = previous ? [...series, { label: "previous period (day i against day i)", color: "rgba(127, 127, 127, 0.35)" }] : series;
  legend.replaceChildren(
    ...(keyed.length > 1
      ? keyed.map((s) => {
          const li = document.createElement("li");
          const swatch = document.createElement("span");
          swatch.className = "swatch";
          swatch.style.background = s.color;
          li.append(swatch, s.label);
          return li;
        })
      : []),
  );
  fillTable(eventsFig.querySelector("table"),
    ["Day (UTC)", ...series.map((s) => s.label), ...(series.length > 1 ? ["total"] : []), ...(previous ? ["Previous period (same day offset)"] : [])],
    days.map((d, i) => [d, ...series.map((s) => s.values[i]), ...(series.length > 1 ? [series.reduce((sum, s) => sum + s.values[i], 0)] : []),
      ...(previous ? [previous[i]] : [])]),
    { name: "events-per-day" });

  const users = perDay(data.daily.buckets, (b) => b.distinctUsers ?? 0);
  const sessions = perDay(data.daily.buckets, (b) => b.distinctSessions);
  const usersFig = $("chart-users");
  const previousUsers = previousPerDay(data, (b) => b.distinctUsers ?? 0);
  if (previousUsers) {
    linesChart(usersFig.querySelector(".chart-box"), days, [
      { key: "previous", label: "previous period", values: previousUsers, color: PALETTE[5], faint: true },
      { key: "users", label: "distinct users", values: users, color: PALETTE[2] },
    ], "distinct users");
  } else {
    lineChart(usersFig.querySelector(".chart-box"), days, users, "distinct users");
  }
  fillTable(usersFig.querySelector("table"),
    ["Day (UTC)", "Distinct users", "Sessions", ...(previousUsers ? ["Previous period distinct users"] : [])],
    days.map((d, i) => [d, users[i], sessions[i], ...(previousUsers ? [previousUsers[i]] : [])]),
    { name: "distinct-users-per-day" });
  renderInsightCharts();
}

/** The comparison window's values, bucket i against day i of the current window (by offset). */
function previousPerDay(data, pick) {
  const comparison = data.daily.comparison;
  if (!comparison) return null;
  const from = asUtc(comparison.from).getTime();
  const values = state.days.map(() => 0);
  for (const b of comparison.buckets) {
    const i = Math.floor((asUtc(b.start).getTime() - from) / DAY_MS);
    if (i >= 0 && i < values.length) values[i] += pick(b);
  }
  return values;
}

function showDelta(id, delta) {
  const node = $(id);
  if (!delta) {
    node.textContent = "";
    node.className = "delta";
    node.removeAttribute("title");
    return;
  }
  const sign = delta.absolute > 0 ? "+" : delta.absolute < 0 ? "−" : "±";
  const pct = delta.relative == null ? "new" : `${sign}${Math.abs(delta.relative * 100).toFixed(1)}%`;
  node.textContent = `${sign}${fmt.format(Math.abs(delta.absolute))} (${pct}) vs ${fmt.format(delta.previous)}`;
  node.className = `delta ${delta.absolute > 0 ? "up" : delta.absolute < 0 ? "down" : ""}`;
  node.title = `previous period: ${fmt.format(delta.previous)}; now: ${fmt.format(delta.current)}`;
  node.dataset.previous = String(delta.previous);
  node.dataset.absolute = String(delta.absolute);
  node.dataset.relative = delta.relative == null ? "" : String(delta.relative);
}

function totalsRows(totals, label = groupLabel) {
  return totals.map((t) => [label(t.group), t.events, t.summedDailyUsers, t.distinctSessions]);
}

const TOTAL_HEAD = ["Events", "Summed daily users", "Sessions"];

function render() {
  const { data, filters: f } = state;
  renderPickers(data, f);
  const total = data.daily.totals[0] || { events: 0, summedDailyUsers: 0, distinctSessions: 0 };
  $("s-events").textContent = fmt.format(total.events);
  $("s-users").textContent = fmt.format(total.summedDailyUsers);
  $("s-sessions").textContent = fmt.format(total.distinctSessions);
  $("s-days").textContent = fmt.format(state.days.length);
  const deltas = data.daily.comparison?.deltas;
  showDelta("d-events", deltas?.events);
  showDelta("d-users", deltas?.summedDailyUsers);
  showDelta("d-sessions", deltas?.distinctSessions);
  renderCharts();

  const breakdown = $("top-breakdown");
  breakdown.hidden = !(f.by && data.breakdown);
  if (!breakdown.hidden) {
    breakdown.querySelector(".by-name").textContent = DIMENSION_LABELS[f.by];
    fillTable(breakdown.querySelector("table"), [DIMENSION_LABELS[f.by], ...TOTAL_HEAD], totalsRows(data.breakdown.totals), { name: `by-${f.by.toLowerCase()}` });
  }
  fillTable($("top-routes").querySelector("table"), ["Route", ...TOTAL_HEAD], totalsRows(data.routes.totals), { name: "top-routes" });
  fillTable($("top-entities").querySelector("table"), ["Entity", ...TOTAL_HEAD], totalsRows(data.entities.totals), { name: "top-entities" });
  fillTable($("top-devices").querySelector("table"), ["Device · browser · OS", ...TOTAL_HEAD], totalsRows(data.devices.totals), { name: "top-devices" });

  state.events = [];
  appendEvents(data.events);
}

function short(text, n) {
  if (text == null) return { text: "" };
  const s = String(text);
  return s.length > n ? { text: `${s.slice(0, n - 1)}…`, title: s } : { text: s };
}

function appendEvents(connection) {
  state.events = state.events.concat(connection.edges.map((e) => e.node));
  state.cursor = connection.pageInfo.hasNextPage ? connection.pageInfo.endCursor : null;
  $("more").hidden = !state.cursor;
  fillTable($("newest").querySelector("table"), ["Time (UTC)", "Event", "App", "Route", "Entity", "Device", "Session", "Description"],
    state.events.map((e) => [
      { text: utcText(e.createdAt), title: e.createdAt, className: "nowrap" },
      e.eventType,
      e.appName,
      short(e.route, 40),
      short([e.entityType, e.entityId].filter(Boolean).join(" "), 32),
      short([e.deviceType, e.browserFamily, e.osFamily].filter(Boolean).join(" · "), 32),
      short(e.sessionId, 10),
      short(e.description == null ? "" : JSON.stringify(e.description), 60),
    ]), { name: "newest-events" });
}

// ---- tabs ------------------------------------------------------------------------------------

function typeNames() {
  return (state.data?.types.totals || []).map((t) => t.group[0]?.value).filter(Boolean);
}

function selectTab(tab, reload) {
  state.tab = tab;
  document.body.dataset.tab = tab;
  for (const button of document.querySelectorAll('[role="tab"]')) {
    const on = button.dataset.tab === tab;
    button.setAttribute("aria-selected", String(on));
    button.tabIndex = on ? 0 : -1;
    $(button.getAttribute("aria-controls")).hidden = !on;
  }
  if (reload && state.token) load();
}

// ---- wiring -------------------------------------------------------------------------------

function start() {
  takeTokenFromFragment();
  const f = readFilters();
  state.filters = f;
  fillForm(f);
  readInsightView(new URLSearchParams(location.search));
  selectTab(f.tab, false);
  setupInsights({ reload: () => load(), types: () => typeNames(), onError: (error) => handleError(error) });
  for (const button of document.querySelectorAll('[role="tab"]')) {
    button.addEventListener("click", () => selectTab(button.dataset.tab, true));
    button.addEventListener("keydown", (event) => {
      // arrow keys move between tabs (the WAI-ARIA tabs pattern)
      const tabs = [...document.querySelectorAll('[role="tab"]')];
      const step = { ArrowRight: 1, ArrowLeft: -1 }[event.key];
      if (!step) return;
      const next = tabs[(tabs.indexOf(button) + step + tabs.length) % tabs.length];
      next.focus();
      selectTab(next.dataset.tab, true);
    });
  }
  // the event-type boxes come from the API; until then, keep the URL's choice
  for (const name of f.types) {
    const label = document.createElement("label");
    const input = Object.assign(document.createElement("input"), { type: "checkbox", value: name, checked: true });
    label.append(input, ` ${name}`);
    $("f-types").append(label);
  }

  $("signin-form").addEventListener("submit", (event) => {
    event.preventDefault();
    const token = $("token-input").value.trim();
    $("token-input").value = "";
    saveToken(token);
    signIn(token);
  });
  $("signout").addEventListener("click", () => {
    forgetToken();
    showSignin("Signed out.");
  });
  $("filters").addEventListener("change", () => load());
  $("filters").addEventListener("submit", (event) => event.preventDefault());
  $("banner-retry").addEventListener("click", () => load());
  $("more").addEventListener("click", () => loadMore());

  let frame = 0;
  new ResizeObserver(() => {
    cancelAnimationFrame(frame);
    frame = requestAnimationFrame(() => renderCharts());
  }).observe(document.querySelector("#dashboard"));

  const token = loadToken();
  if (token) signIn(token);
  else showSignin();
}

start();
