// Drives the @signals/react example page (clients/react/example, built by Vite) in headless
// Chromium against a running Signals, and prints what happened as JSON lines.
//
//   node tests/e2e/browser/react.mjs click <base> <token> --dist=DIR [--transport=apollo]
//       one click on "Create journey", answered by the API
//   node tests/e2e/browser/react.mjs down  <base> <token> --dist=DIR
//       prints {phase: "up"} and waits for a line (the test stops the API); clicks twice,
//       prints {phase: "down"} and waits for a line (the test brings the API back); prints
//       the results once the tracker's own retries delivered the clicks
//
// The page's files are served on the API's own origin under /app/ by the browser harness
// (page.route fulfils them from DIR), as an admin app and its API share an origin behind a
// gateway; every /graphql request goes to the real server.
import fs from "node:fs";
import path from "node:path";
import { emit, main, nextLine, openBrowser, parseArgs } from "./lib.mjs";

const { positional, options } = parseArgs();
const [scenario, base, token] = positional;
const TIMEOUT = 20000;
const TYPES = { ".html": "text/html", ".js": "text/javascript", ".css": "text/css" };

async function openPage(b, params = {}) {
  await b.page.route(`${base}/app/**`, (route) => {
    const relative = new URL(route.request().url()).pathname.replace(/^\/app\//, "") || "index.html";
    const file = path.join(options.dist, relative);
    if (!file.startsWith(path.resolve(options.dist)) || !fs.existsSync(file)) return route.fulfill({ status: 404, body: "" });
    return route.fulfill({ status: 200, contentType: TYPES[path.extname(file)] || "application/octet-stream", body: fs.readFileSync(file) });
  });
  const q = new URLSearchParams({ flushMs: "100", retryMs: "100", ...params });
  await b.page.goto(`${base}/app/index.html?${q}#token=${encodeURIComponent(token)}`);
  await b.page.waitForSelector("#create", { timeout: TIMEOUT });
}

async function click(page) {
  await page.click("#create");
  return page.evaluate(() => document.getElementById("create").dataset.lastClientEventId);
}

const answered = (page, text) =>
  page.waitForFunction((t) => [...document.querySelectorAll("#results li")].some((li) => li.textContent.includes(t)), text, { timeout: TIMEOUT });

const facts = (page) =>
  page.evaluate(() => ({
    sessionId: sessionStorage.getItem("signals.sessionId"),
    created: Number(document.getElementById("created").textContent),
    results: [...document.querySelectorAll("#results li")].map((li) => li.textContent),
    errorLines: [...document.querySelectorAll("#errors li")].map((li) => li.textContent),
    queued: sessionStorage.getItem("signals.queue"),
  }));

async function clickScenario() {
  const b = await openBrowser();
  try {
    await openPage(b, options.transport ? { transport: options.transport } : {});
    await answered(b.page, "route_view"); // useTrackRoute's view of the page
    const clientEventId = await click(b.page);
    await answered(b.page, `${clientEventId} ACCEPTED`);
    const result = { clientEventId, ...(await facts(b.page)), errors: b.errors };
    await b.page.goto("about:blank"); // pagehide: nothing is left to send
    emit(result);
  } finally {
    await b.close();
  }
}

async function downScenario() {
  const b = await openBrowser();
  try {
    await openPage(b);
    await answered(b.page, "route_view");
    emit({ phase: "up", ...(await facts(b.page)) });
    await nextLine(); // the API is down now
    const ids = [await click(b.page)];
    const createdRightAway = await b.page.evaluate(() => Number(document.getElementById("created").textContent));
    await b.page.waitForFunction(() => [...document.querySelectorAll("#errors li")].filter((li) => li.textContent.includes("network error")).length >= 2, null, { timeout: TIMEOUT });
    ids.push(await click(b.page)); // the page still responds
    emit({ phase: "down", ids, createdRightAway, ...(await facts(b.page)), errors: [...b.errors] });
    await nextLine(); // the API is back
    for (const id of ids) await answered(b.page, `${id} ACCEPTED`);
    await b.page.waitForFunction(() => !sessionStorage.getItem("signals.queue"), null, { timeout: TIMEOUT });
    emit({ phase: "back", ids, ...(await facts(b.page)), errors: b.errors });
  } finally {
    await b.close();
  }
}

main(async () => {
  const scenarios = { click: clickScenario, down: downScenario };
  if (!scenarios[scenario] || !base || !token || !options.dist) throw new Error("usage: react.mjs click|down <base-url> <token> --dist=DIR");
  await scenarios[scenario]();
});
