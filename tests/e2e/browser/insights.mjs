// Drives the dashboard's insight tabs and the period comparison in headless Chromium and
// prints what each shows (tables, chart marks, downloaded CSVs, URLs), as one JSON line.
//
//   node tests/e2e/browser/insights.mjs all <base> <token> --from=D --to=D --app=A
//        [--shots=DIR] [--docs=DIR]   (docs: writes dashboard-{properties,adoption,funnel,compare}.png)
import fs from "node:fs";
import path from "node:path";
import { emit, main, openBrowser, parseArgs } from "./lib.mjs";

const { positional, options } = parseArgs();
const [scenario, base, token] = positional;
const TIMEOUT = 20000;

function url(params, withToken) {
  const q = new URLSearchParams({ app: options.app, from: options.from, to: options.to, ...params });
  return `${base}/dashboard/?${q}${withToken ? `#token=${encodeURIComponent(token)}` : ""}`;
}

async function ready(page) {
  await page.waitForFunction(() => ["ready", "error", "signin"].includes(document.body.dataset.state), null, { timeout: TIMEOUT });
  const state = await page.evaluate(() => document.body.dataset.state);
  if (state !== "ready") {
    const text = await page.evaluate(() => document.querySelector("#banner-text")?.textContent || document.querySelector("#signin-message")?.textContent);
    throw new Error(`page is ${state}: ${text}`);
  }
}

/** Run an action that reloads the view and wait until the new answer is shown. */
async function reloading(page, action) {
  await page.evaluate(() => { document.body.dataset.state = "acting"; });
  await action();
  await ready(page);
}

function table(page, sel) {
  return page.evaluate((s) => ({
    head: [...document.querySelectorAll(`${s} thead th`)].map((th) => th.textContent.trim()),
    rows: [...document.querySelectorAll(`${s} tbody tr`)].map((tr) => [...tr.children].map((td) => td.dataset.value ?? td.textContent.trim())),
  }), sel);
}

/** Click the table's "Download CSV" and return the file's name and text. */
async function csv(page, sel) {
  const [download] = await Promise.all([
    page.waitForEvent("download", { timeout: TIMEOUT }),
    page.evaluate((s) => {
      const t = document.querySelector(s);
      (t.closest("details") || t.closest(".table-wrap")).nextElementSibling.click();
    }, sel),
  ]);
  const file = await download.path();
  return { name: download.suggestedFilename(), text: fs.readFileSync(file, "utf8") };
}

async function shot(page, name, selector) {
  if (!options.docs) return;
  const box = await page.evaluate((s) => {
    const r = document.querySelector(s).getBoundingClientRect();
    return { bottom: Math.round(r.bottom + window.scrollY + 16) };
  }, selector);
  await page.screenshot({ path: path.join(options.docs, name), fullPage: true, clip: { x: 0, y: 0, width: 1280, height: box.bottom } });
}

async function phoneOverflow(page) {
  await page.setViewportSize({ width: 390, height: 844 });
  await page.waitForTimeout(300);
  const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
  if (options.shots) await page.screenshot({ path: path.join(options.shots, `insights-phone-${Date.now()}.png`), fullPage: true });
  await page.setViewportSize({ width: 1280, height: 900 });
  await page.waitForTimeout(200);
  return overflow;
}

async function all() {
  const b = await openBrowser({ timezoneId: "America/Los_Angeles" });
  const out = { urls: {} };
  const page = b.page;
  try {
    // Properties: an event type, a string property, then a numeric one.
    await page.goto(url({ tab: "properties", ptype: options.ptype, prop: options.sprop }, token));
    await ready(page);
    out.catalogue = await page.evaluate(() => [...document.querySelectorAll("#p-path option")].map((o) => o.value).filter(Boolean));
    out.values = await table(page, "#p-values-table");
    out.valueBars = await page.evaluate(() => [...document.querySelectorAll('[data-chart="property-values"] rect.cat-bar')].map((r) => [r.dataset.key, Number(r.dataset.value)]));
    out.valuesCsv = await csv(page, "#p-values-table");
    await reloading(page, () => page.selectOption("#p-path", options.nprop));
    out.numbers = await table(page, "#p-numbers-table");
    out.numbersCsv = await csv(page, "#p-numbers-table");
    out.numberLines = await page.evaluate(() => [...document.querySelectorAll('[data-chart="property-numbers"] path.line')].length);
    out.urls.properties = page.url();
    await shot(page, "dashboard-properties.png", "#p-numbers");
    out.phone = { properties: await phoneOverflow(page) };

    // Adoption: two event types, with a property filter.
    await page.goto(url({ tab: "adoption", atypes: options.atypes, aprop: options.aprop }));
    await ready(page);
    out.adoption = await table(page, "#a-table");
    out.adoptionCsv = await csv(page, "#a-table");
    out.adoptionDots = await page.evaluate(() => [...document.querySelectorAll('[data-chart="adoption"] circle.dot')].map((c) => ({
      series: c.dataset.series, day: c.dataset.day, value: Number(c.dataset.value), title: c.querySelector("title").textContent,
    })));
    out.urls.adoption = page.url();
    await shot(page, "dashboard-adoption.png", "#a-chart");
    out.phone.adoption = await phoneOverflow(page);

    // Funnel: built with the controls (add, pick, reorder, remove), then reloaded.
    await page.goto(url({ tab: "funnel" }));
    await ready(page);
    const wanted = options.steps.split(",");
    for (let i = 0; i < wanted.length + 1; i += 1) await reloading(page, () => page.click("#fn-add"));
    for (let i = 0; i < wanted.length; i += 1) await reloading(page, () => page.locator(".fn-step").nth(i).selectOption(wanted[i]));
    await reloading(page, () => page.click('[aria-label="Remove step ' + (wanted.length + 1) + '"]')); // the extra one
    await reloading(page, () => page.click('[aria-label="Move up step 2"]'));
    out.reordered = await page.evaluate(() => [...document.querySelectorAll(".fn-step")].map((s) => s.value));
    await reloading(page, () => page.click('[aria-label="Move down step 1"]')); // back
    await reloading(page, () => page.selectOption("#fn-count", options.count));
    await reloading(page, async () => { await page.fill("#fn-within", options.within); await page.press("#fn-within", "Tab"); });
    await reloading(page, () => page.selectOption("#fn-by", options.fby));
    out.funnel = await table(page, "#fn-table");
    out.funnelCsv = await csv(page, "#fn-table");
    out.funnelGroups = await table(page, "#fn-groups-table");
    out.funnelGroupsCsv = await csv(page, "#fn-groups-table");
    out.funnelBars = await page.evaluate(() => [...document.querySelectorAll('[data-chart="funnel"] rect.cat-bar')].map((r) => Number(r.dataset.value)));
    out.urls.funnel = page.url();
    await shot(page, "dashboard-funnel.png", "#fn-groups");
    out.phone.funnel = await phoneOverflow(page);
    await page.reload();
    await ready(page);
    out.funnelAfterReload = await table(page, "#fn-table");
    out.stepsAfterReload = await page.evaluate(() => [...document.querySelectorAll(".fn-step")].map((s) => s.value));
    out.tabAfterReload = await page.evaluate(() => document.querySelector('[role="tab"][aria-selected="true"]').dataset.tab);

    // Keyboard: the tabs are reachable and move with the arrow keys.
    await page.focus("#tab-funnel");
    await reloading(page, () => page.keyboard.press("ArrowLeft"));
    out.keyboardTab = await page.evaluate(() => ({ selected: document.querySelector('[aria-selected="true"]').id, focused: document.activeElement.id }));

    // Comparison with the previous period on the overview.
    await page.goto(url({ compare: "previous" }));
    await ready(page);
    out.deltas = await page.evaluate(() => Object.fromEntries(["d-events", "d-users", "d-sessions"].map((id) => {
      const n = document.getElementById(id);
      return [id, { text: n.textContent, previous: Number(n.dataset.previous), absolute: Number(n.dataset.absolute), relative: n.dataset.relative === "" ? null : Number(n.dataset.relative) }];
    })));
    out.prevBars = await page.evaluate(() => [...document.querySelectorAll('[data-chart="events"] rect.prev-bar')].map((r) => [r.dataset.day, Number(r.dataset.value)]));
    out.prevDots = await page.evaluate(() => document.querySelectorAll('[data-chart="users"] circle.prev-dot').length);
    out.eventsTable = await table(page, "#chart-events table");
    out.eventsCsv = await csv(page, "#chart-events table");
    out.urls.compare = page.url();
    await shot(page, "dashboard-compare.png", ".charts");
    out.phone.compare = await phoneOverflow(page);
    out.storedToken = await page.evaluate(() => Boolean(sessionStorage.getItem("signals.adminToken")));
    emit({ ...out, errors: b.errors, consoleErrors: b.consoleErrors });
  } finally {
    await b.close();
  }
}

main(async () => {
  if (scenario !== "all" || !base) throw new Error("usage: insights.mjs all <base-url> <token> [--options]");
  await all();
});
