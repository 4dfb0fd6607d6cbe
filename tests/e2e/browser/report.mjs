// Opens a static report (`signals report --out FILE`) in headless Chromium with networking
// disabled, and prints what it shows as JSON.
//
//   node tests/e2e/browser/report.mjs <file.html> [--docs=docs/report.png]
import path from "node:path";
import { pathToFileURL } from "node:url";
import { emit, main, openBrowser, parseArgs } from "./lib.mjs";

const { positional, options } = parseArgs();
const [file] = positional;

main(async () => {
  const { context, page, errors, close } = await openBrowser({ viewport: { width: 1000, height: 1100 } });
  try {
    await context.setOffline(true);
    const requests = [];
    page.on("request", (request) => {
      if (!request.url().startsWith("file:")) requests.push(request.url());
    });
    await page.goto(pathToFileURL(path.resolve(file)).href);
    await page.waitForFunction(() => document.documentElement.dataset.ready === "1", null, { timeout: 10000 });
    const shown = await page.evaluate(() => {
      const rows = (sel) => [...document.querySelectorAll(`${sel} tbody tr`)].map((tr) => [...tr.cells].map((td) => td.textContent.trim()));
      return {
        events: Number(document.querySelector("#total-events").textContent),
        summedDailyUsers: Number(document.querySelector("#total-users").textContent),
        days: rows("#days"),
        types: rows("#types"),
        drops: rows("#drops"),
        bars: document.querySelectorAll("#chart rect").length,
        data: JSON.parse(document.querySelector("#report-data").textContent),
      };
    });
    if (options.docs) await page.screenshot({ path: options.docs, fullPage: true });
    emit({ ...shown, requests, errors });
  } finally {
    await close();
  }
});
