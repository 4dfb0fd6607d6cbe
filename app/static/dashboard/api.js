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
                $groupBy: [StatsDimension!]!, $withBreakdown: Boolean!, $first: Int!,
                $compareTo: StatsComparison, $withCompare: Boolean!) {
  apps: eventStats(filter: $window, groupBy: [APP_NAME]) { totals(top: 100) { ...Totals } }
  types: eventStats(filter: $appWindow, groupBy: [EVENT_TYPE]) { totals(top: 100) { ...Totals } }
  daily: eventStats(filter: $filter, interval: DAY, compareTo: $compareTo) {
    buckets { start events distinctUsers summedDailyUsers distinctSessions }
    totals { ...Totals }
    comparison @include(if: $withCompare) {
      mode from to
      buckets { start events distinctUsers }
      deltas {
        events { ...Delta }
        summedDailyUsers { ...Delta }
        distinctSessions { ...Delta }
      }
    }
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

const DELTA_FRAGMENT = `
fragment Delta on StatsDelta { previous current absolute relative }`;

// ---- the insight tabs (README "Questions you can ask") ----

const PROPERTY_KEYS_OPERATION = `
query PropertyKeys($filter: EventFilter!) {
  propertyCatalogue(filter: $filter, limit: 200) {
    sampledEvents scanLimit hasMoreKeys
    keys { path events valuesHidden types { type events } }
  }
}`;

const PROPERTY_VIEW_OPERATION = `
query PropertyView($filter: EventFilter!, $property: String!, $top: Int!, $numeric: Boolean!) {
  propertyBreakdown(property: $property, filter: $filter, top: $top, interval: DAY) {
    values { kind label events summedDailyUsers }
  }
  propertyAggregates(property: $property, filter: $filter, interval: DAY) @include(if: $numeric) {
    buckets { start count avg p50 p95 }
  }
}`;

const ADOPTION_OPERATION = `
query AdoptionView($population: EventFilter!, $target: EventFilter!) {
  adoption(population: $population, target: $target) {
    days { day activeUsers targetUsers userRate }
    totals { summedDailyActiveUsers summedDailyTargetUsers userRate }
  }
}`;

const FUNNEL_OPERATION = `
query FunnelView($filter: EventFilter!, $steps: [EventFilter!]!, $countBy: FunnelUnit!, $within: Int,
                 $breakdown: StatsDimension) {
  funnel(filter: $filter, steps: $steps, countBy: $countBy, within: $within, breakdown: $breakdown, breakdownTop: 10) {
    steps { step entered converted dropped conversionFromStart conversionFromPrevious
            medianSecondsFromPrevious medianSecondsFromStart }
    groups { value steps { step entered conversionFromStart } }
  }
}`;

export const DASHBOARD_QUERY = DASHBOARD_OPERATION + TOTALS_FRAGMENT + EVENT_PAGE_FRAGMENT + DELTA_FRAGMENT;
export const MORE_EVENTS_QUERY = MORE_EVENTS_OPERATION + EVENT_PAGE_FRAGMENT;
export const PROPERTY_KEYS_QUERY = PROPERTY_KEYS_OPERATION;
export const PROPERTY_VIEW_QUERY = PROPERTY_VIEW_OPERATION;
export const ADOPTION_QUERY = ADOPTION_OPERATION;
export const FUNNEL_QUERY = FUNNEL_OPERATION;

/** Every document the dashboard sends (tests validate them against the served schema). */
export const DOCUMENTS = {
  DASHBOARD_QUERY, MORE_EVENTS_QUERY, PROPERTY_KEYS_QUERY, PROPERTY_VIEW_QUERY, ADOPTION_QUERY, FUNNEL_QUERY,
};

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
