// Shared helpers for the browser scripts: launch Debian's Chromium through playwright-core
// (no downloaded browser), collect page errors, print one JSON result line.
import { execFileSync } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { chromium } from "playwright-core";

export const CHROMIUM = process.env.CHROMIUM_PATH || "/usr/bin/chromium";

// Chromium's flags for a machine without outside network (playwright adds --headless, and
// --user-data-dir from the fresh profile directory): without the background-networking ones
// Chromium keeps trying to reach Google's hosts, which such a network refuses.
const FLAGS = [
  "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
  "--disable-background-networking", "--disable-component-update", "--disable-sync",
];

/**
 * The User-Agent of the same Chromium run with a screen. Headless Chromium announces itself
 * as "HeadlessChrome", which the service's bot filter (crawlerdetect) rightly drops; these
 * tests stand in for a person's browser, so they present the ordinary string.
 */
function personUserAgent() {
  let major = "156";
  try {
    major = /(\d+)\./.exec(execFileSync(CHROMIUM, ["--version"], { encoding: "utf8", stdio: ["ignore", "pipe", "ignore"] }))[1];
  } catch (_) {
    // keep the default
  }
  return `Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/${major}.0.0.0 Safari/537.36`;
}

/** `--name=value` options after the positional arguments. */
export function parseArgs(argv = process.argv.slice(2)) {
  const positional = [];
  const options = {};
  for (const arg of argv) {
    const m = /^--([^=]+)=(.*)$/s.exec(arg);
    if (m) options[m[1]] = m[2];
    else positional.push(arg);
  }
  return { positional, options };
}

/** A fresh browser with an empty profile; `errors` collects uncaught page errors. */
export async function openBrowser({ viewport = { width: 1280, height: 900 }, timezoneId = "UTC" } = {}) {
  const userAgent = personUserAgent();
  const profile = fs.mkdtempSync(path.join(os.tmpdir(), "signals-chromium-"));
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM,
    headless: true,
    // The browser-wide flag, not only playwright's per-page override: requests that outlive
    // their page (fetch keepalive on pagehide) are sent with the browser's own User-Agent.
    args: [...FLAGS, `--user-agent=${userAgent}`],
    viewport,
    timezoneId,
    locale: "en-US",
    userAgent,
  });
  const errors = [];
  const consoleErrors = [];
  const page = context.pages()[0] || (await context.newPage());
  page.on("pageerror", (error) => errors.push(String(error && error.stack ? error.stack : error)));
  page.on("console", (msg) => {
    if (msg.type() === "error") consoleErrors.push(msg.text());
  });
  const close = async () => {
    await context.close();
    fs.rmSync(profile, { recursive: true, force: true });
  };
  return { context, page, errors, consoleErrors, close };
}

export function emit(result) {
  process.stdout.write(`${JSON.stringify(result)}\n`);
}

/** Wait for one line on stdin (the pytest driver's go-ahead between phases). */
export function nextLine() {
  return new Promise((resolve) => {
    let buffer = "";
    const onData = (chunk) => {
      buffer += chunk;
      const i = buffer.indexOf("\n");
      if (i >= 0) {
        process.stdin.off("data", onData);
        process.stdin.pause();
        resolve(buffer.slice(0, i));
      }
    };
    process.stdin.setEncoding("utf8");
    process.stdin.on("data", onData);
    process.stdin.resume();
  });
}

export async function main(run) {
  try {
    await run();
    process.exit(0);
  } catch (error) {
    process.stderr.write(`${error && error.stack ? error.stack : error}\n`);
    process.exit(1);
  }
}
