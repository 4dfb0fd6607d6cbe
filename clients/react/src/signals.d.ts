// Types of signals.js (the Signals browser tracker, app/static/signals.js in the Signals repo,
// shipped beside this file as dist/signals.js).

/** One event as the tracker sends it (appName is added per request). */
export interface TrackInput {
  eventType: string;
  route: string | null;
  sessionId: string | null;
  clientEventId: string;
  entityType?: string;
  entityId?: string;
  description?: unknown;
}

/** The server's answer for one event (`trackEvents` result). */
export interface TrackResult {
  status: "ACCEPTED" | "DUPLICATE" | "DROPPED";
  accepted: boolean;
  reason: string | null;
  retryable: boolean;
  message: string | null;
  eventId: string | null;
  clientEventId: string | null;
}

/** What a transport is asked to send: the `trackEvents` mutation for one batch. */
export interface TransportRequest {
  endpoint: string;
  query: string;
  variables: { inputs: Array<TrackInput & { appName: string }> };
  /** `JSON.stringify({ query, variables })`, for transports that POST it as is. */
  body: string;
  token: string | null;
  /** true when the body fits a keepalive request (the page may be going away). */
  keepalive: boolean;
}

/** The HTTP status and the GraphQL response; reject for a network error (the batch is retried). */
export interface TransportAnswer {
  status: number;
  payload: { data?: { trackEvents?: TrackResult[] | null } | null; errors?: ReadonlyArray<{ message?: string; extensions?: Record<string, unknown> }> } | null;
}

export type Transport = (request: TransportRequest) => Promise<TransportAnswer>;

export type TokenGetter = () => string | null | undefined | Promise<string | null | undefined>;

export interface TrackerOptions {
  appName: string;
  endpoint?: string;
  getToken?: TokenGetter | null;
  isOptedOut?: (() => boolean) | null;
  honorGlobalPrivacyControl?: boolean;
  ready?: boolean;
  getRoute?: (() => string | null | undefined) | null;
  transport?: Transport | null;
  batchSize?: number;
  flushIntervalMs?: number;
  maxAttempts?: number;
  retryBaseMs?: number;
  retryMaxMs?: number;
  maxQueue?: number;
  persist?: boolean;
  storageKey?: string;
  onResult?: ((result: TrackResult | null, input: TrackInput) => void) | null;
  onError?: ((error: Error, events: Array<{ input: TrackInput; attempts: number }>) => void) | null;
  debug?: boolean;
}

export interface TrackDetailsInput {
  entity?: { type: string; id: string | number } | null;
  description?: unknown;
  route?: string;
}

export interface Tracker {
  track(eventType: string, details?: TrackDetailsInput): string | null;
  flush(): Promise<unknown>;
  start(): void;
  stop(): void;
  configure(changes: Partial<TrackerOptions>): void;
  setReady(value: boolean): void;
  discard(): void;
  isReady(): boolean;
  pending(): number;
  getSessionId(): string | null;
}

export const TRACK_MUTATION: string;
export function fetchTransport(request: TransportRequest): Promise<TransportAnswer>;
export function createTracker(options: TrackerOptions | null): Tracker;
export function init(options: TrackerOptions): void;
export function track(eventType: string, details?: TrackDetailsInput): string | null;
export function flush(): Promise<unknown>;
export function pending(): number;
export function getSessionId(): string | null;
export function setReady(value: boolean): void;
