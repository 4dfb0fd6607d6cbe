// Drives the dashboard in headless Chromium and prints what it shows, as JSON.
//
//   node tests/e2e/browser/dashboard.mjs render   <base> <token> --from=D --to=D [--app=A] [--by=DIM]
//                                                 [--shots=DIR] [--docs=docs/dashboard.png]
//   node tests/e2e/browser/dashboard.mjs signin   <base> --expired=JWT --forged=JWT --member=JWT
//   node tests/e2e/browser/dashboard.mjs api-down <base> <token> --from=D --to=D
//        (prints {"phase":"ready"}, then waits for a line on stdin: the driver stops the API)
import path from "node:path";
import { emit, main, nextLine, openBrowser, parseArgs } from "./lib.mjs";

const { positional, options } = parseArgs();
const [scenario, base, token] = positional;
const TIMEOUT = 20000;

function dashboardUrl(withToken) {
  const q = new URLSearchParams();
  for (const key of ["app", "types", "from", "to", "by"]) if (options[key]) q.set(key, options[key]);
  return `${base}/dashboard/?${q}${withToken ? `#token=${encodeURIComponent(withToken)}` : ""}`;
}

async function settled(page, states) {
  await page.waitForFunction((wanted) => wanted.includes(document.body.dataset.state), states, { timeout: TIMEOUT });
  return page.evaluate(() => document.body.dataset.state);
}

/** Everything the page shows that a test can compare with the API's numbers. */
function readDashboard(page) {
  return page.evaluate(() => {
    const text = (sel) => document.querySelector(sel)?.textContent.trim() ?? null;
    const eventsPerDay = Object.fromEntries(
      [...document.querySelectorAll('[data-chart="events"] rect.hit')].map((r) => [r.dataset.day, Number(r.dataset.total)]),
    );
    const usersPerDay = Object.fromEntries(
      [...document.querySelectorAll('[data-chart="users"] circle.dot')].map((c) => [c.dataset.day, Number(c.dataset.value)]),
    );
    const tableRows = (sel) =>
      [...document.querySelectorAll(`${sel} tbody tr`)].map((tr) => [...tr.children].map((td) => td.dataset.value ?? td.textContent.trim()));
    return {
      state: document.body.dataset.state,
      url: location.href,
      tokenStored: Boolean(sessionStorage.getItem("signals.adminToken")),
      summary: { events: text("#s-events"), summedDailyUsers: text("#s-users"), sessions: text("#s-sessions"), days: text("#s-days") },
      summaryLabels: [...document.querySelectorAll(".stat-label")].map((n) => n.textContent.trim()),
      eventsPerDay,
      usersPerDay,
      eventsTable: tableRows("#chart-events table"),
      usersTable: tableRows("#chart-users table"),
      eventBars: [...document.querySelectorAll('[data-chart="events"] rect.bar')].map((r) => ({ day: r.dataset.day, series: r.dataset.series, value: Number(r.dataset.value) })),
      routes: tableRows("#top-routes table"),
      entities: tableRows("#top-entities table"),
      devices: tableRows("#top-devices table"),
      breakdown: document.querySelector("#top-breakdown").hidden ? null : tableRows("#top-breakdown table"),
      newest: tableRows("#newest table"),
      moreButton: !document.querySelector("#more").hidden,
      eventTypeChoices: [...document.querySelectorAll("#f-types input")].map((i) => i.value),
      appChoices: [...document.querySelectorAll("#f-app option")].map((o) => o.value),
    };
  });
}

async function render() {
  // A browser behind UTC: a UTC midnight is the previous day there, so a bucket's day shown
  // in local time would land a day off. The page must count UTC days.
  const b = await openBrowser({ timezoneId: "America/Los_Angeles" });
  try {
    await b.page.goto(dashboardUrl(token));
    await settled(b.page, ["ready", "error", "signin"]);
    const laptop = await readDashboard(b.page);
    const shots = options.shots;
    if (shots) await b.page.screenshot({ path: path.join(shots, "dashboard-laptop.png"), fullPage: true });
    if (options.docs) {
      // The README picture: everything down to the first rows of the newest events.
      const height = await b.page.evaluate(() => Math.round(document.querySelector("#newest").getBoundingClientRect().top + window.scrollY + 260));
      await b.page.screenshot({ path: options.docs, fullPage: true, clip: { x: 0, y: 0, width: 1280, height } });
    }
    await b.page.setViewportSize({ width: 390, height: 844 });
    await b.page.waitForTimeout(300); // the charts re-render for the narrow width
    const phone = await b.page.evaluate(() => ({
      overflow: document.documentElement.scrollWidth - window.innerWidth,
      chartWidth: document.querySelector('[data-chart="events"] svg')?.getBoundingClientRect().width ?? 0,
    }));
    if (shots) await b.page.screenshot({ path: path.join(shots, "dashboard-phone.png"), fullPage: true });
    const message = await b.page.evaluate(() => document.querySelector("#banner-text")?.textContent || document.querySelector("#signin-message")?.textContent || "");
    emit({ ...laptop, phone, message, errors: b.errors, consoleErrors: b.consoleErrors });
  } finally {
    await b.close();
  }
}

async function signinMessage(page) {
  await settled(page, ["signin"]);
  return page.evaluate(() => document.querySelector("#signin-message").textContent);
}

async function signin() {
  const b = await openBrowser();
  try {
    const result = {};
    await b.page.goto(dashboardUrl(options.expired));
    result.expired = await signinMessage(b.page);
    result.expiredKept = await b.page.evaluate(() => Boolean(sessionStorage.getItem("signals.adminToken")));
    for (const name of ["forged", "member"]) {
      await b.page.evaluate(() => { document.body.dataset.state = "submitting"; });
      await b.page.fill("#token-input", options[name]);
      await b.page.click("#signin-form button[type=submit]");
      result[name] = await signinMessage(b.page);
      result[`${name}Kept`] = await b.page.evaluate(() => Boolean(sessionStorage.getItem("signals.adminToken")));
    }
    emit({ ...result, errors: b.errors });
  } finally {
    await b.close();
  }
}

async function apiDown() {
  const b = await openBrowser();
  try {
    await b.page.goto(dashboardUrl(token));
    const first = await settled(b.page, ["ready", "error", "signin"]);
    emit({ phase: "ready", state: first });
    await nextLine(); // the driver has stopped the service
    await b.page.selectOption("#f-by", "EVENT_TYPE"); // a new view: the page asks the API again
    const state = await settled(b.page, ["error", "signin", "ready"]);
    const shown = await b.page.evaluate(() => ({
      banner: document.querySelector("#banner").hidden ? null : document.querySelector("#banner-text").textContent,
      retryVisible: !document.querySelector("#banner-retry").hidden,
      dashboardVisible: !document.querySelector("#dashboard").hidden,
      tokenStored: Boolean(sessionStorage.getItem("signals.adminToken")),
    }));
    if (options.shots) await b.page.screenshot({ path: path.join(options.shots, "dashboard-api-down.png") });
    emit({ phase: "down", state, ...shown, errors: b.errors });
  } finally {
    await b.close();
  }
}

main(async () => {
  const scenarios = { render, signin, "api-down": apiDown };
  if (!scenarios[scenario] || !base) throw new Error(`usage: dashboard.mjs ${Object.keys(scenarios).join("|")} <base-url> [token] [--options]`);
  await scenarios[scenario]();
});
