// The demo page's own code: a click counter, plus the tracker. Settings come from the URL:
//   ?app=admin-console&endpoint=/graphql&flushMs=500&batch=20&retryMs=300&attempts=6&optout=1&asyncToken=1&route=/demo/:tab
//   #token=<JWT>   (kept in sessionStorage, removed from the address bar)
import { getSessionId, init, pending, track } from "/signals.js";

const q = new URLSearchParams(location.search);
const number = (name, fallback) => (q.has(name) && Number.isFinite(Number(q.get(name))) ? Number(q.get(name)) : fallback);
const $ = (id) => document.getElementById(id);

const fragment = new URLSearchParams(location.hash.slice(1));
if (fragment.get("token")) {
  sessionStorage.setItem("signals.demoToken", fragment.get("token"));
  history.replaceState(null, "", location.pathname + location.search);
}

const log = (text, kind = "info") => {
  const li = document.createElement("li");
  li.className = kind;
  li.textContent = `${new Date().toLocaleTimeString()} ${text}`;
  $("log").prepend(li);
};
setInterval(() => {
  $("pending").textContent = String(pending());
}, 250);

// ?endpoint= is a path on this origin only: the page holds a token, and the tracker sends
// it with every request, so it must never be pointed at somebody else's server.
function sameOrigin(value) {
  if (!value) return null;
  try {
    const url = new URL(value, location.href);
    return url.origin === location.origin ? url.pathname + url.search : null;
  } catch {
    return null;
  }
}

const config = {
  appName: q.get("app") || "admin-console",
  endpoint: sameOrigin(q.get("endpoint")) || "/graphql",
  // ?asyncToken=1: the getter returns a promise, as one backed by a token refresh would
  getToken: q.get("asyncToken") === "1"
    ? async () => sessionStorage.getItem("signals.demoToken")
    : () => sessionStorage.getItem("signals.demoToken"),
  isOptedOut: () => q.get("optout") === "1", // e.g. an internal user, or a privacy setting
  getRoute: q.get("route") ? () => q.get("route") : null, // e.g. the router's matched pattern
  flushIntervalMs: number("flushMs", 500),
  batchSize: number("batch", 20),
  retryBaseMs: number("retryMs", 1000),
  maxAttempts: number("attempts", 6),
  onResult: (result, input) => {
    log(`${input.eventType} ${input.clientEventId}: ${result ? result.status : "no result"}${result && result.reason ? ` (${result.reason})` : ""}`, "result");
    document.body.dataset.lastResult = JSON.stringify({ clientEventId: input.clientEventId, status: result && result.status });
  },
  onError: (error) => log(error.message, "error"),
};
init(config);

$("endpoint").textContent = config.endpoint;
$("app").textContent = config.appName;
$("session").textContent = getSessionId();

let clicks = 0;
for (const button of document.querySelectorAll("button[data-event]")) {
  button.addEventListener("click", () => {
    clicks += 1; // the page's own work, independent of analytics
    $("clicks").textContent = String(clicks);
    const { event, entityType, entityId } = button.dataset;
    const id = track(event, {
      entity: entityType ? { type: entityType, id: entityId } : undefined,
      description: { source: "demo", button: button.id },
    });
    button.dataset.lastClientEventId = id || "";
    log(`tracked ${event} as ${id}`);
  });
}
document.body.dataset.state = "ready";
