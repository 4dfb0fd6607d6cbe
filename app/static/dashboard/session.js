// The admin token: pasted, or handed over in the URL fragment (#token=...), kept in
// sessionStorage (this tab only, gone when it closes). The fragment is never sent to a
// server, and it is removed from the address bar as soon as it is read.

const KEY = "signals.adminToken";

function store() {
  try {
    return window.sessionStorage;
  } catch (_) {
    return null;
  }
}

let memoryToken = null; // when sessionStorage is unavailable

export function takeTokenFromFragment() {
  const params = new URLSearchParams(location.hash.replace(/^#/, ""));
  const token = params.get("token");
  if (!token) return;
  saveToken(token);
  params.delete("token");
  const rest = params.toString();
  history.replaceState(null, "", location.pathname + location.search + (rest ? `#${rest}` : ""));
}

export function saveToken(token) {
  memoryToken = token.trim();
  try {
    store()?.setItem(KEY, memoryToken);
  } catch (_) {
    // storage full or disabled: the in-memory copy lasts until the page closes
  }
}

export function loadToken() {
  try {
    return store()?.getItem(KEY) || memoryToken;
  } catch (_) {
    return memoryToken;
  }
}

export function forgetToken() {
  memoryToken = null;
  try {
    store()?.removeItem(KEY);
  } catch (_) {
    // nothing stored
  }
}

/** The token's claims, unverified (for its expiry and roles only; the server verifies). */
export function claimsOf(token) {
  try {
    const part = token.split(".")[1].replace(/-/g, "+").replace(/_/g, "/");
    const json = decodeURIComponent(
      Array.from(atob(part.padEnd(part.length + ((4 - (part.length % 4)) % 4), "=")), (c) => `%${c.charCodeAt(0).toString(16).padStart(2, "0")}`).join(""),
    );
    return JSON.parse(json);
  } catch (_) {
    return null;
  }
}

/** Why this token cannot be used, or null when it looks usable. */
export function tokenProblem(token, now = Date.now()) {
  if (!token) return "Sign in with an admin token.";
  const claims = claimsOf(token);
  if (!claims) return "That does not look like a JWT (three base64url parts separated by dots).";
  if (typeof claims.exp === "number" && claims.exp * 1000 <= now) {
    return `Your token expired at ${new Date(claims.exp * 1000).toLocaleString()}. Sign in again with a fresh one.`;
  }
  return null;
}

/** Milliseconds until the token expires (Infinity when it carries no exp). */
export function msUntilExpiry(token, now = Date.now()) {
  const claims = claimsOf(token);
  return claims && typeof claims.exp === "number" ? claims.exp * 1000 - now : Infinity;
}
