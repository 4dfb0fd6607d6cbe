// signals.js: the Signals browser tracker (an ES module, no dependencies).
//
//   import { init, track } from "https://signals.example.com/signals.js";
//   init({ appName: "admin-console", endpoint: "https://gateway.example.com/graphql", getToken: () => auth.token });
//   track("export", { entity: { type: "order", id: "ord_42" }, description: { format: "csv" } });
//
// `init`/`track`/`flush`/`pending` drive one tracker per page; `createTracker(options)` makes
// further independent ones (the React package, @signals/react, builds on it).
//
// Guarantees:
// - Fire-and-forget: no function here throws into the host app or blocks it; failures go to
//   the optional `onError` hook (and to console.debug when `debug` is on).
// - Each track() call gets a fresh clientEventId (the server's idempotency key). Unsent
//   events are retried with the SAME id (bounded, exponential backoff with jitter), so an
//   event is stored at most once however often it is sent.
// - Events are batched into one `trackEvents` mutation (at most `batchSize`, flushed every
//   `flushIntervalMs`) and flushed when the page is hidden or unloaded.
// - Fail-closed: nothing is sent while the tracker is not `ready` (the host is still loading
//   its signed-in user; events wait, then go or are discarded by the opt-out rule), nor while
//   a configured `getToken` has no token. Global Privacy Control (`navigator.globalPrivacyControl`)
//   counts as opting out unless `honorGlobalPrivacyControl` is false.
// - Unload flushes use fetch(..., { keepalive: true }), not navigator.sendBeacon: a beacon
//   cannot carry an Authorization header and the API authenticates every call with a bearer
//   JWT. Keepalive requests share a 64 KiB budget per page, so unload batches are split below it.
// - Unsent events are also kept in sessionStorage (per tab) when `persist` is on (default),
//   so the next page load in the same tab sends what an unload could not.
// - The request itself is a `transport`: fetch by default; any function that sends the
//   mutation and answers `{ status, payload }` (e.g. through the host's Apollo Client).

/** The one operation the tracker sends. */
export const TRACK_MUTATION =
  "mutation SignalsTrack($inputs: [TrackEventInput!]!) { trackEvents(inputs: $inputs) " +
  "{ status accepted reason retryable message eventId clientEventId } }";

const SESSION_KEY = "signals.sessionId";
const QUEUE_KEY = "signals.queue";
const KEEPALIVE_BUDGET = 60000; // bytes per keepalive body (browsers allow 64 KiB in flight)
const MAX_BATCH = 100; // the server's limit for one trackEvents call

const DEFAULTS = {
  endpoint: "/graphql",
  appName: null,
  getToken: null, // () => string | null | Promise<string | null>; events wait while it has none
  isOptedOut: null, // () => boolean, asked on every track() and before every send
  honorGlobalPrivacyControl: true, // navigator.globalPrivacyControl === true opts out
  ready: true, // false: queue, send nothing, until setReady(true)
  getRoute: null, // () => string: the current route pattern ("/orders/:id"); location.pathname when unset
  transport: null, // (request) => Promise<{ status, payload }>; fetch when unset
  batchSize: 20,
  flushIntervalMs: 2000,
  maxAttempts: 6, // sends per event before it is given up
  retryBaseMs: 1000, // first retry delay; doubles each attempt, with jitter
  retryMaxMs: 30000,
  maxQueue: 500, // oldest unsent events are dropped past this
  persist: true, // keep unsent events in sessionStorage
  storageKey: QUEUE_KEY, // where they are kept (one key per tracker on a page)
  onResult: null, // (result, event) => void, once per event the server answered for good
  onError: null, // (error, events) => void
  debug: false,
};

let memorySessionId = null;

function storage() {
  try {
    return typeof sessionStorage !== "undefined" ? sessionStorage : null;
  } catch (_) {
    return null; // e.g. storage disabled by the browser's privacy settings
  }
}

function randomId() {
  const c = typeof crypto !== "undefined" ? crypto : null;
  if (c && typeof c.randomUUID === "function") return c.randomUUID(); // secure contexts only
  const bytes = new Uint8Array(16);
  if (c && typeof c.getRandomValues === "function") c.getRandomValues(bytes);
  else for (let i = 0; i < 16; i++) bytes[i] = Math.floor(Math.random() * 256);
  bytes[6] = (bytes[6] & 0x0f) | 0x40; // version 4
  bytes[8] = (bytes[8] & 0x3f) | 0x80; // RFC 4122 variant
  const hex = Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}

function sessionId() {
  const store = storage();
  let id = memorySessionId;
  try {
    id = (store && store.getItem(SESSION_KEY)) || id;
  } catch (_) {
    // unreadable storage: keep the in-memory id
  }
  if (!id) id = randomId();
  memorySessionId = id;
  try {
    if (store) store.setItem(SESSION_KEY, id);
  } catch (_) {
    // full or disabled storage: the in-memory id still holds for this page
  }
  return id;
}

function byteLength(text) {
  return typeof TextEncoder === "function" ? new TextEncoder().encode(text).length : text.length * 3;
}

/** The default transport: one POST with fetch. Rejects on a network error (retried). */
export async function fetchTransport({ endpoint, body, token, keepalive }) {
  const headers = { "content-type": "application/json" };
  if (token) headers.authorization = `Bearer ${token}`;
  const response = await fetch(endpoint, {
    method: "POST",
    headers,
    body,
    keepalive, // survives the page going away
    credentials: "omit",
    mode: "cors",
  });
  let payload = null;
  try {
    payload = await response.json();
  } catch (_) {
    payload = null;
  }
  return { status: response.status, payload };
}

/**
 * A tracker of its own. `options` as for init(); nothing happens (no timer, no listener, no
 * request) until start(). Returns { track, flush, pending, getSessionId, start, stop,
 * configure, setReady, discard, isReady }.
 */
export function createTracker(options) {
  let config = { ...DEFAULTS, ...(options || {}) };
  let started = false;
  let ready = config.ready !== false;
  let queue = []; // events not yet sent, or waiting to be retried
  const inflight = new Set(); // events in a request whose answer is pending
  let timer = null;
  let sending = 0; // requests whose answer is pending
  let lastToken = null;
  let holding = false; // events wait for a token; reported once per wait

  function report(error, events) {
    try {
      if (config.debug && typeof console !== "undefined") console.debug("[signals]", error, events);
      if (typeof config.onError === "function") config.onError(error, events);
    } catch (_) {
      // a failing hook must not break the host either
    }
  }

  function safely(fn, fallback) {
    try {
      return fn();
    } catch (error) {
      report(error, []);
      return fallback;
    }
  }

  function privacySignal() {
    if (config.honorGlobalPrivacyControl === false) return false;
    try {
      return typeof navigator !== "undefined" && navigator.globalPrivacyControl === true;
    } catch (_) {
      return false;
    }
  }

  function optedOut() {
    if (privacySignal()) return true;
    if (typeof config.isOptedOut !== "function") return false;
    try {
      return config.isOptedOut() === true;
    } catch (error) {
      report(error, []);
      return true; // when in doubt, do not track
    }
  }

  function persistQueue() {
    if (!config.persist) return;
    const store = storage();
    if (!store) return;
    try {
      const pending = queue.concat(Array.from(inflight));
      if (pending.length) store.setItem(config.storageKey, JSON.stringify(pending.map((e) => ({ input: e.input, attempts: e.attempts }))));
      else store.removeItem(config.storageKey);
    } catch (_) {
      // quota exceeded: the in-memory queue still holds the events
    }
  }

  function restoreQueue() {
    const store = storage();
    if (!config.persist || !store) return;
    try {
      const saved = JSON.parse(store.getItem(config.storageKey) || "[]");
      const known = new Set(queue.concat(Array.from(inflight)).map((e) => e.input.clientEventId));
      for (const item of Array.isArray(saved) ? saved : []) {
        if (!item || !item.input || typeof item.input.clientEventId !== "string" || known.has(item.input.clientEventId)) continue;
        queue.push({ input: item.input, attempts: Number(item.attempts) || 0, notBefore: 0 });
      }
    } catch (_) {
      // a corrupt entry is dropped rather than retried forever
    }
    persistQueue();
  }

  function onPageHide() {
    safely(() => flushNow(true));
  }

  function onVisibilityChange() {
    safely(() => {
      if (document.visibilityState === "hidden") flushNow(true); // a hidden tab may never come back
    });
  }

  function start() {
    safely(() => {
      if (typeof config.appName !== "string" || !config.appName) throw new Error("signals: init() needs an appName");
      config.batchSize = Math.max(1, Math.min(MAX_BATCH, Math.floor(Number(config.batchSize)) || DEFAULTS.batchSize));
      if (!started && typeof addEventListener === "function") {
        addEventListener("pagehide", onPageHide);
        if (typeof document !== "undefined") document.addEventListener("visibilitychange", onVisibilityChange);
      }
      started = true;
      refreshToken();
      sessionId();
      restoreQueue();
      schedule(0);
    });
  }

  /** Stop timers and listeners; unsent events stay queued (and in sessionStorage). */
  function stop() {
    safely(() => {
      if (started && typeof removeEventListener === "function") {
        removeEventListener("pagehide", onPageHide);
        if (typeof document !== "undefined") document.removeEventListener("visibilitychange", onVisibilityChange);
      }
      started = false;
      if (timer) clearTimeout(timer.id);
      timer = null;
      persistQueue();
    });
  }

  function configure(changes) {
    safely(() => {
      const next = { ...config, ...(changes || {}) };
      if (changes && "ready" in changes) delete next.ready; // setReady() owns the gate
      config = next;
    });
  }

  /** Open (true) or close (false) the gate. Opening applies the opt-out rule to what waited. */
  function setReady(value) {
    safely(() => {
      ready = value === true;
      if (!ready) return;
      if (optedOut()) {
        queue = [];
        persistQueue();
        return;
      }
      refreshToken();
      schedule(0);
    });
  }

  /** Forget every waiting event (the host learnt it must not track this user). */
  function discard() {
    safely(() => {
      queue = [];
      persistQueue();
    });
  }

  function track(eventType, details) {
    return safely(() => {
      if (typeof eventType !== "string" || !eventType) throw new Error("signals: track() needs an eventType string");
      // Before ready only the browser's own signal is known; the host's rule is applied on ready.
      if (ready ? optedOut() : privacySignal()) return null;
      const opts = details || {};
      const entity = opts.entity || null;
      const input = {
        eventType,
        route: typeof opts.route === "string" ? opts.route : currentRoute(),
        sessionId: sessionId(),
        clientEventId: randomId(),
      };
      if (entity && entity.type != null) input.entityType = String(entity.type);
      if (entity && entity.id != null) input.entityId = String(entity.id);
      if (opts.description != null) input.description = JSON.parse(JSON.stringify(opts.description)); // a snapshot
      queue.push({ input, attempts: 0, notBefore: 0 });
      refreshToken(); // an async getter has resolved by the time the page may be left
      if (queue.length > config.maxQueue) report(new Error("signals: queue full, oldest events dropped"), queue.splice(0, queue.length - config.maxQueue));
      persistQueue();
      schedule(queue.length >= config.batchSize ? 0 : config.flushIntervalMs);
      return input.clientEventId;
    }, null);
  }

  function currentRoute() {
    try {
      if (typeof config.getRoute === "function") {
        const route = config.getRoute();
        if (typeof route === "string" && route) return route;
      }
    } catch (error) {
      report(error, []);
    }
    return typeof location !== "undefined" ? location.pathname : null;
  }

  function schedule(delayMs) {
    if (!started || !ready || typeof setTimeout !== "function") return;
    const due = Date.now() + Math.max(0, delayMs);
    if (timer && timer.due <= due) return;
    if (timer) clearTimeout(timer.id);
    timer = { due, id: setTimeout(() => { timer = null; flushNow(false); }, Math.max(0, delayMs)) };
  }

  function backoff(attempts) {
    const delay = Math.min(config.retryMaxMs, config.retryBaseMs * 2 ** Math.max(0, attempts - 1));
    return delay / 2 + Math.random() * (delay / 2);
  }

  function currentToken() {
    if (typeof config.getToken !== "function") return null;
    const value = config.getToken();
    if (value && typeof value.then === "function") {
      // async getter: use it when there is time, the last known token when the page is going away
      return Promise.resolve(value).then((t) => (lastToken = t || null));
    }
    lastToken = value || null;
    return lastToken;
  }

  /** Ask the token getter now, so that an unload flush has a recent token without waiting. */
  function refreshToken() {
    if (!started) return;
    try {
      const token = currentToken();
      if (token && typeof token.then === "function") token.catch((error) => report(error, []));
    } catch (error) {
      report(error, []);
    }
  }

  function flush() {
    return safely(() => flushNow(true), Promise.resolve());
  }

  function flushNow(all) {
    if (!started || !ready || !queue.length) return Promise.resolve();
    if (optedOut()) {
      queue = [];
      persistQueue();
      return Promise.resolve();
    }
    const now = Date.now();
    const due = queue.filter((e) => all || e.notBefore <= now);
    if (!due.length) {
      schedule(Math.min(...queue.map((e) => e.notBefore)) - now);
      return Promise.resolve();
    }
    if (sending > 0 && !all) return Promise.resolve(); // one request at a time; the answer reschedules
    const batches = splitBatches(due);
    const chosen = all ? batches : batches.slice(0, 1);
    const sent = new Set(chosen.flat());
    queue = queue.filter((e) => !sent.has(e));
    for (const event of sent) inflight.add(event);
    persistQueue();
    let token;
    try {
      token = currentToken();
    } catch (error) {
      token = lastToken;
      report(error, []);
    }
    if (all && token && typeof token.then === "function") token = lastToken; // no time to wait
    return Promise.all(chosen.map((batch) => send(batch, token)));
  }

  /** Batches of at most batchSize events whose request body stays within the keepalive budget. */
  function splitBatches(events) {
    const batches = [];
    let current = [];
    let size = 0;
    for (const event of events) {
      const bytes = byteLength(JSON.stringify(event.input)) + byteLength(config.appName) + 16;
      if (current.length && (current.length >= config.batchSize || size + bytes > KEEPALIVE_BUDGET - 400)) {
        batches.push(current);
        current = [];
        size = 0;
      }
      current.push(event);
      size += bytes;
    }
    if (current.length) batches.push(current);
    return batches;
  }

  async function send(batch, tokenOrPromise) {
    sending += 1;
    let retry = [];
    let hold = [];
    try {
      const token = await tokenOrPromise;
      if (typeof config.getToken === "function" && !token) {
        // fail-closed: never send an event without the user's token; wait for one
        hold = batch;
        if (!holding) report(new Error("signals: no token yet, events wait"), batch);
        holding = true;
        return;
      }
      holding = false;
      const inputs = batch.map((e) => ({ ...e.input, appName: config.appName }));
      const variables = { inputs };
      const body = JSON.stringify({ query: TRACK_MUTATION, variables });
      const transport = typeof config.transport === "function" ? config.transport : fetchTransport;
      for (const e of batch) e.attempts += 1;
      let answer;
      try {
        answer = await transport({
          endpoint: config.endpoint,
          query: TRACK_MUTATION,
          variables,
          body,
          token,
          keepalive: byteLength(body) < KEEPALIVE_BUDGET,
        });
      } catch (error) {
        retry = batch;
        report(new Error(`signals: network error, will retry: ${error && error.message}`), batch);
        return;
      }
      retry = handleAnswer(answer || {}, batch);
    } catch (error) {
      retry = batch;
      report(error, batch);
    } finally {
      for (const event of batch) inflight.delete(event);
      requeue(retry);
      const later = Date.now() + config.flushIntervalMs;
      for (const event of hold) {
        event.notBefore = later;
        queue.push(event);
      }
      sending -= 1;
      persistQueue();
      if (queue.length) schedule(queue.some((e) => e.notBefore <= Date.now()) ? 0 : config.flushIntervalMs);
    }
  }

  function handleAnswer({ status, payload }, batch) {
    const results = payload && payload.data && Array.isArray(payload.data.trackEvents) ? payload.data.trackEvents : null;
    if (!results) {
      const codes = ((payload && payload.errors) || []).map((e) => e && e.extensions && e.extensions.code);
      const message = ((payload && payload.errors) || []).map((e) => e && e.message).join("; ") || `HTTP ${status}`;
      // Transient: server trouble, rate limits, or a token the host may refresh before the next try.
      const transient = status >= 500 || status === 429 || status === 408 || codes.includes("UNAUTHENTICATED");
      report(new Error(`signals: trackEvents failed${transient ? ", will retry" : ""}: ${message}`), batch);
      return transient ? batch : [];
    }
    const retry = [];
    batch.forEach((event, i) => {
      const result = results.find((r) => r && r.clientEventId === event.input.clientEventId) || results[i];
      if (result && result.retryable) {
        retry.push(event);
        report(new Error(`signals: event ${event.input.clientEventId} not stored yet (${result.reason}), will retry`), [event]);
        return;
      }
      if (result && result.status === "DROPPED") report(new Error(`signals: event dropped (${result.reason}): ${result.message || ""}`), [event]);
      try {
        if (typeof config.onResult === "function") config.onResult(result, event.input);
      } catch (_) {
        // a failing hook must not break the host
      }
    });
    return retry;
  }

  function requeue(events) {
    const now = Date.now();
    for (const event of events) {
      if (event.attempts >= config.maxAttempts) {
        report(new Error(`signals: giving up after ${event.attempts} attempts`), [event]);
        continue;
      }
      event.notBefore = now + backoff(event.attempts);
      queue.push(event);
    }
  }

  return {
    track,
    flush,
    start,
    stop,
    configure,
    setReady,
    discard,
    isReady: () => ready,
    pending: () => safely(() => queue.length + inflight.size, 0),
    getSessionId: () => safely(sessionId, null),
  };
}

// The page's default tracker: track() before init() queues, init() configures and starts it.
const page = createTracker(null);

/**
 * Configure and start the page's tracker. Call once, early; events tracked before init() wait for it.
 * Options: endpoint, appName (required), getToken, isOptedOut, honorGlobalPrivacyControl, ready,
 * getRoute, transport, batchSize, flushIntervalMs, maxAttempts, retryBaseMs, retryMaxMs, maxQueue,
 * persist, storageKey, onResult, onError, debug.
 */
export function init(options) {
  page.configure({ ...DEFAULTS, ...(options || {}) });
  page.setReady(!options || options.ready !== false);
  page.start();
}

/**
 * Record one event. Returns its clientEventId, or null when nothing was queued (opted out,
 * bad arguments). Never throws, never waits for the network.
 */
export function track(eventType, details) {
  return page.track(eventType, details);
}

/** Send what is due now. Returns a promise that never rejects. */
export function flush() {
  return page.flush();
}

/** Unsent events (for diagnostics). */
export function pending() {
  return page.pending();
}

/** The per-tab session id (sessionStorage; in memory when storage is unavailable). */
export function getSessionId() {
  return page.getSessionId();
}

/** Open the page tracker's gate once the signed-in user is known (init({ ready: false })). */
export function setReady(value) {
  page.setReady(value);
}

export default { init, track, flush, pending, getSessionId, setReady, createTracker };
