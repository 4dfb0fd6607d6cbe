// Drives the tracker demo page (/demo/) in headless Chromium and prints what happened, as JSON.
//
//   node tests/e2e/browser/demo.mjs click    <base> <token> [--app=A]        two clicks, each answered by the API
//   node tests/e2e/browser/demo.mjs dead     <base> <token>                  API down: page keeps working;
//                                                                            then the same tab recovers
//   node tests/e2e/browser/demo.mjs elsewhere <base> <token> --other=URL     ?endpoint= on another origin is
//                                                                            ignored: nothing leaves the origin
//   node tests/e2e/browser/demo.mjs pagehide <base> <token>                  click, leave at once: unload flush
//   node tests/e2e/browser/demo.mjs optout   <base> <token>                  opted out: nothing is queued or sent
//   node tests/e2e/browser/demo.mjs burst    <base> <token> --clicks=N       N quick clicks in one batch; waits
//                                                                            until every event is answered
import path from "node:path";
import { emit, main, openBrowser, parseArgs } from "./lib.mjs";

const { positional, options } = parseArgs();
const [scenario, base, token] = positional;
const TIMEOUT = 15000;

function demoUrl(params, withToken = true) {
  const q = new URLSearchParams({ app: options.app || "admin-console", ...params });
  return `${base}/demo/?${q}${withToken ? `#token=${encodeURIComponent(token)}` : ""}`;
}

async function open(page, url) {
  await page.goto(url);
  await page.waitForFunction(() => document.body.dataset.state === "ready", null, { timeout: TIMEOUT });
}

/** Click a demo button; returns the clientEventId that track() handed back. */
async function click(page, id) {
  await page.click(`#${id}`);
  return page.evaluate((buttonId) => document.getElementById(buttonId).dataset.lastClientEventId, id);
}

async function answered(page, clientEventId) {
  await page.waitForFunction(
    (cid) => [...document.querySelectorAll("#log li.result")].some((li) => li.textContent.includes(cid)),
    clientEventId,
    { timeout: TIMEOUT },
  );
  return page.evaluate(
    (cid) => [...document.querySelectorAll("#log li.result")].find((li) => li.textContent.includes(cid)).textContent,
    clientEventId,
  );
}

const pageFacts = (page) =>
  page.evaluate(() => ({
    route: location.pathname,
    sessionId: sessionStorage.getItem("signals.sessionId"),
    clicks: Number(document.getElementById("clicks").textContent),
    queued: sessionStorage.getItem("signals.queue"),
    errorLines: [...document.querySelectorAll("#log li.error")].map((li) => li.textContent),
  }));

async function clickScenario() {
  const b = await openBrowser();
  try {
    await open(b.page, demoUrl({ flushMs: "200" }));
    const events = [];
    for (const [button, eventType] of [["export", "export"], ["search", "search"]]) {
      const clientEventId = await click(b.page, button);
      events.push({ eventType, clientEventId, result: await answered(b.page, clientEventId) });
    }
    const facts = await pageFacts(b.page);
    if (options.shots) await b.page.screenshot({ path: path.join(options.shots, "demo.png"), fullPage: true });
    await b.page.goto("about:blank"); // pagehide: nothing is left to send
    emit({ ...facts, events, errors: b.errors });
  } finally {
    await b.close();
  }
}

async function deadScenario() {
  const b = await openBrowser();
  try {
    // The demo talks to its own origin only, which serves this page, so it cannot be taken
    // down for real: while `down`, Chromium fails every /graphql request at the network
    // layer instead, exactly as for a refused connection (fetch rejects with a network error).
    let down = false;
    await b.page.route("**/graphql", (route) => (down ? route.abort("connectionrefused") : route.continue()));
    await open(b.page, demoUrl({ flushMs: "50", retryMs: "100", attempts: "50" }));
    down = true;
    const clientEventId = await click(b.page, "export");
    // The page's own handler ran although the API is unreachable...
    const clicksRightAway = await b.page.evaluate(() => Number(document.getElementById("clicks").textContent));
    // ...and the tracker retries in the background (bounded, with backoff).
    await b.page.waitForFunction(() => document.querySelectorAll("#log li.error").length >= 2, null, { timeout: TIMEOUT });
    await b.page.click("#search"); // still responsive
    const whileDown = await pageFacts(b.page);
    const errorsWhileDown = [...b.errors];
    if (options.shots) await b.page.screenshot({ path: path.join(options.shots, "demo-api-down.png"), fullPage: true });

    // API back: the tracker's own retries deliver the kept events, with their original ids,
    // and the next page of the same tab finds nothing left to send. (Chromium sends an
    // unloading page's keepalive request past the interception, so the API comes back before
    // the page is left rather than after.)
    down = false;
    const result = await answered(b.page, clientEventId);
    await b.page.waitForFunction(() => !sessionStorage.getItem("signals.queue"), null, { timeout: TIMEOUT });
    await open(b.page, demoUrl({ flushMs: "50" }, false));
    const afterRecovery = await pageFacts(b.page);
    emit({ clientEventId, clicksRightAway, whileDown, errorsWhileDown, result, afterRecovery, errors: b.errors });
  } finally {
    await b.close();
  }
}

async function elsewhereScenario() {
  const b = await openBrowser();
  try {
    const origins = new Set();
    b.page.on("request", (request) => origins.add(new URL(request.url()).origin));
    await open(b.page, demoUrl({ endpoint: options.other, flushMs: "50" }));
    const clientEventId = await click(b.page, "export");
    const result = await answered(b.page, clientEventId);
    const endpoint = await b.page.evaluate(() => document.getElementById("endpoint").textContent);
    emit({ clientEventId, result, endpoint, origins: [...origins], errors: b.errors });
  } finally {
    await b.close();
  }
}

async function pagehideScenario() {
  const b = await openBrowser();
  try {
    // No timer flush: only leaving the page sends. The token getter is async, and there is
    // no time to wait for it on the way out: the tracker must already hold a recent token.
    await open(b.page, demoUrl({ flushMs: "60000", asyncToken: "1", route: "/demo/:tab" }));
    const clientEventId = await click(b.page, "view");
    const facts = await pageFacts(b.page);
    await b.page.goto("about:blank");
    emit({ clientEventId, ...facts, errors: b.errors });
  } finally {
    await b.close();
  }
}

async function optoutScenario() {
  const b = await openBrowser();
  try {
    const requests = [];
    b.page.on("request", (request) => {
      if (request.url().endsWith("/graphql")) requests.push(request.method());
    });
    await open(b.page, demoUrl({ optout: "1", flushMs: "0" }));
    const clientEventId = await click(b.page, "export");
    const facts = await pageFacts(b.page);
    const pending = await b.page.evaluate(async () => (await import("/signals.js")).pending());
    await b.page.goto("about:blank"); // pagehide: still nothing to send
    emit({ clientEventId, pending, requests, ...facts, errors: b.errors });
  } finally {
    await b.close();
  }
}

async function burstScenario() {
  const b = await openBrowser();
  try {
    await open(b.page, demoUrl({ flushMs: "100", retryMs: "300", attempts: "12" }));
    const ids = [];
    for (let i = 0; i < Number(options.clicks || 5); i++) ids.push(await click(b.page, "export"));
    const results = [];
    for (const id of ids) results.push(await answered(b.page, id));
    emit({ ids, results, ...(await pageFacts(b.page)), errors: b.errors });
  } finally {
    await b.close();
  }
}

main(async () => {
  const scenarios = {
    click: clickScenario, dead: deadScenario, elsewhere: elsewhereScenario, pagehide: pagehideScenario,
    optout: optoutScenario, burst: burstScenario,
  };
  if (!scenarios[scenario] || !base || !token) throw new Error(`usage: demo.mjs ${Object.keys(scenarios).join("|")} <base-url> <token> [--options]`);
  await scenarios[scenario]();
});
