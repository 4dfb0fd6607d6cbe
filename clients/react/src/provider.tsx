// <SignalsProvider> owns one signals.js tracker per mounted app; the hooks reach it through
// context. The tracker is created once (its callbacks read the latest props through a ref, so
// inline arrow props never rebuild it), started in an effect and stopped on unmount: React's
// StrictMode start/stop/start cycle keeps the same tracker and its queue.
import { createContext, type ReactNode, useEffect, useRef, useState } from "react";
import { createTracker, fetchTransport, type TokenGetter, type Tracker, type TrackerOptions, type Transport } from "./signals.js";
import type { RegisteredTypes, SignalsTypes } from "./types.js";

/** Tuning passed through to signals.js unchanged. */
export type TrackerTuning = Pick<
  TrackerOptions,
  | "batchSize"
  | "flushIntervalMs"
  | "maxAttempts"
  | "retryBaseMs"
  | "retryMaxMs"
  | "maxQueue"
  | "persist"
  | "storageKey"
  | "onResult"
  | "onError"
  | "debug"
>;

export interface SignalsProviderProps<T extends SignalsTypes = RegisteredTypes> extends TrackerTuning {
  /** The app's name, in SIGNALS_ALLOWED_APPS. */
  appName: T["appName"];
  /** The GraphQL URL (this service or the federation gateway); default "/graphql". Unused with `transport`. */
  endpoint?: string;
  /** The signed-in user's JWT (or a promise of it). Nothing is sent while it returns none. */
  getToken?: TokenGetter;
  /** true: record nothing for this user (opt-out, an internal account, ...). Asked on every event and send. */
  isOptedOut?: () => boolean;
  /**
   * Whether the signed-in user is known. While false (or while the promise is pending) events
   * are queued, not sent; once true they are sent, or discarded if `isOptedOut()` says so.
   * A rejected promise discards them. Default true.
   */
  ready?: boolean | PromiseLike<unknown>;
  /** Treat `navigator.globalPrivacyControl` as an opt-out (default true). */
  honorGlobalPrivacyControl?: boolean;
  /** How a batch is sent: fetch by default; `apolloTransport(client)` from "@signals/react/apollo". */
  transport?: Transport;
  /** The current route pattern when no useTrackRoute() has set one. */
  getRoute?: () => string | null | undefined;
  children?: ReactNode;
}

export interface SignalsContextValue {
  tracker: Tracker;
  /** The pattern of the route on screen (set by useTrackRoute). */
  route: { current: string | null };
}

export const SignalsContext = createContext<SignalsContextValue | null>(null);

function isThenable(value: unknown): value is PromiseLike<unknown> {
  return typeof value === "object" && value !== null && typeof (value as PromiseLike<unknown>).then === "function";
}

export function SignalsProvider<T extends SignalsTypes = RegisteredTypes>(props: SignalsProviderProps<T>): ReactNode {
  const latest = useRef(props);
  latest.current = props;
  const [context] = useState<SignalsContextValue>(() => {
    const route = { current: null as string | null };
    const tracker = createTracker({
      ...tuning(props),
      appName: props.appName,
      endpoint: props.endpoint ?? "/graphql",
      honorGlobalPrivacyControl: props.honorGlobalPrivacyControl ?? true,
      ready: props.ready === undefined || props.ready === true,
      getToken: () => (latest.current.getToken ? latest.current.getToken() : null),
      isOptedOut: () => latest.current.isOptedOut?.() === true,
      getRoute: () => route.current ?? latest.current.getRoute?.() ?? null,
      transport: (request) => (latest.current.transport ?? fetchTransport)(request),
      onResult: (result, input) => latest.current.onResult?.(result, input),
      onError: (error, events) => latest.current.onError?.(error, events),
    });
    return { tracker, route };
  });
  const { tracker } = context;
  const { appName, endpoint, honorGlobalPrivacyControl, batchSize, flushIntervalMs, maxAttempts } = props;
  const { retryBaseMs, retryMaxMs, maxQueue, persist, storageKey, debug } = props;

  useEffect(() => {
    tracker.configure({
      ...tuning({ batchSize, flushIntervalMs, maxAttempts, retryBaseMs, retryMaxMs, maxQueue, persist, storageKey, debug }),
      appName,
      endpoint: endpoint ?? "/graphql",
      honorGlobalPrivacyControl: honorGlobalPrivacyControl ?? true,
    });
  }, [tracker, appName, endpoint, honorGlobalPrivacyControl, batchSize, flushIntervalMs, maxAttempts, retryBaseMs, retryMaxMs, maxQueue, persist, storageKey, debug]);

  useEffect(() => {
    tracker.start();
    return () => tracker.stop();
  }, [tracker]);

  const ready = props.ready;
  useEffect(() => {
    if (!isThenable(ready)) {
      tracker.setReady(ready === undefined || ready === true);
      return;
    }
    let current = true;
    tracker.setReady(false);
    ready.then(
      () => current && tracker.setReady(true),
      () => current && tracker.discard(), // the user could not be loaded: nothing may be sent for them
    );
    return () => {
      current = false;
    };
  }, [tracker, ready]);

  return <SignalsContext.Provider value={context}>{props.children}</SignalsContext.Provider>;
}

/** The tuning options that are set (undefined ones keep signals.js's defaults). */
function tuning(source: TrackerTuning): TrackerTuning {
  return Object.fromEntries(Object.entries(source).filter(([key, value]) => value !== undefined && TUNING.has(key)));
}

const TUNING = new Set(["batchSize", "flushIntervalMs", "maxAttempts", "retryBaseMs", "retryMaxMs", "maxQueue", "persist", "storageKey", "debug"]);
