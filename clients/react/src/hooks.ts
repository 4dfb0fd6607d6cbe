import { useCallback, useContext, useEffect, useRef } from "react";
import { SignalsContext } from "./provider.js";
import type { Tracker } from "./signals.js";
import type { RegisteredTypes, SignalsTypes, TrackDetails, TrackFunction } from "./types.js";

let warned = false;

/**
 * A stable `track(eventType, { entity, description })` (the same function on every render, so
 * it can sit in effect dependencies). Never throws, never waits; outside a <SignalsProvider>
 * it records nothing.
 */
export function useTrackEvent<T extends SignalsTypes = RegisteredTypes>(): TrackFunction<T> {
  const context = useContext(SignalsContext);
  const tracker = context?.tracker ?? null;
  return useCallback(
    (eventType: T["eventType"], details?: TrackDetails<T>) => {
      if (!tracker) {
        if (!warned && typeof console !== "undefined") console.warn("@signals/react: useTrackEvent() outside <SignalsProvider>: nothing is recorded");
        warned = true;
        return null;
      }
      return tracker.track(eventType, details ?? undefined);
    },
    [tracker],
  );
}

/**
 * Record one `eventType` event each time the route pattern on screen changes, and use that
 * pattern as the `route` of the events tracked meanwhile. Pass the router's pattern
 * ("/orders/:id"), never the filled-in path: ids in paths split the stats and may be personal.
 */
export function useTrackRoute<T extends SignalsTypes = RegisteredTypes>(
  pattern: string | null | undefined,
  eventType: T["eventType"],
  details?: Omit<TrackDetails<T>, "route">,
): void {
  const context = useContext(SignalsContext);
  const last = useRef<string | null>(null); // StrictMode runs effects twice: one view per change
  const detailsRef = useRef(details);
  detailsRef.current = details;
  useEffect(() => {
    if (!context || !pattern) return;
    context.route.current = pattern;
    if (last.current === pattern) return;
    last.current = pattern;
    context.tracker.track(eventType, { ...(detailsRef.current ?? {}), route: pattern });
  }, [context, pattern, eventType]);
}

/** The provider's tracker (flush(), pending(), getSessionId()), or null outside a provider. */
export function useSignalsTracker(): Tracker | null {
  return useContext(SignalsContext)?.tracker ?? null;
}
