// The dashboard's only data source: the service's own GraphQL endpoint.

export const ENDPOINT = "/graphql";

// Fragments are appended to the operations that use them (see DOCUMENTS).
export const TOTALS_FRAGMENT = `
fragment Totals on StatsTotal { group { dimension value } events summedDailyUsers distinctSessions }`;

export const EVENT_PAGE_FRAGMENT = `
fragment EventPage on EventConnection {
  edges { node { id createdAt appName eventType route entityType entityId userHash sessionId
                 deviceType browserFamily osFamily description } }
  pageInfo { hasNextPage endCursor }
}`;

const DASHBOARD_OPERATION = `
query Dashboard($filter: EventFilter!, $window: EventFilter!, $appWindow: EventFilter!,
                $groupBy: [StatsDimension!]!, $withBreakdown: Boolean!, $first: Int!) {
  apps: eventStats(filter: $window, groupBy: [APP_NAME]) { totals(top: 100) { ...Totals } }
  types: eventStats(filter: $appWindow, groupBy: [EVENT_TYPE]) { totals(top: 100) { ...Totals } }
  daily: eventStats(filter: $filter, interval: DAY) {
    buckets { start events distinctUsers summedDailyUsers distinctSessions }
    totals { ...Totals }
  }
  breakdown: eventStats(filter: $filter, groupBy: $groupBy, interval: DAY) @include(if: $withBreakdown) {
    buckets { start group { dimension value } events distinctUsers }
    totals(top: 10) { ...Totals }
  }
  routes: eventStats(filter: $filter, groupBy: [ROUTE]) { totals(top: 10) { ...Totals } }
  entities: eventStats(filter: $filter, groupBy: [ENTITY_TYPE, ENTITY_ID]) { totals(top: 10) { ...Totals } }
  devices: eventStats(filter: $filter, groupBy: [DEVICE_TYPE, BROWSER_FAMILY, OS_FAMILY]) { totals(top: 10) { ...Totals } }
  events(filter: $filter, first: $first) { ...EventPage }
}`;

const MORE_EVENTS_OPERATION = `
query MoreEvents($filter: EventFilter!, $first: Int!, $after: String) {
  events(filter: $filter, first: $first, after: $after) { ...EventPage }
}`;

export const DASHBOARD_QUERY = DASHBOARD_OPERATION + TOTALS_FRAGMENT + EVENT_PAGE_FRAGMENT;
export const MORE_EVENTS_QUERY = MORE_EVENTS_OPERATION + EVENT_PAGE_FRAGMENT;

/** Every document the dashboard sends (tests validate them against the served schema). */
export const DOCUMENTS = { DASHBOARD_QUERY, MORE_EVENTS_QUERY };

/** A failed call, sorted into what the page should do about it. */
export class ApiError extends Error {
  /** kind: "network" | "server" | "auth" | "forbidden" | "input" | "graphql" */
  constructor(kind, message) {
    super(message);
    this.kind = kind;
  }
}

const KIND_BY_CODE = { UNAUTHENTICATED: "auth", FORBIDDEN: "forbidden", BAD_USER_INPUT: "input" };

export async function graphql(query, variables, token) {
  let response;
  try {
    response = await fetch(ENDPOINT, {
      method: "POST",
      headers: { "content-type": "application/json", accept: "application/json", authorization: `Bearer ${token}` },
      body: JSON.stringify({ query, variables }),
      credentials: "omit",
      cache: "no-store",
    });
  } catch (error) {
    throw new ApiError("network", `The Signals API cannot be reached (${error.message}).`);
  }
  let payload = null;
  try {
    payload = await response.json();
  } catch (_) {
    payload = null;
  }
  const errors = (payload && payload.errors) || [];
  if (errors.length) {
    const first = errors[0] || {};
    const code = first.extensions && first.extensions.code;
    throw new ApiError(KIND_BY_CODE[code] || "graphql", first.message || "The API returned an error.");
  }
  if (!response.ok || !payload || !payload.data) {
    throw new ApiError("server", `The Signals API answered HTTP ${response.status}; try again shortly.`);
  }
  return payload.data;
}
