// The names an app may send, as types. `signals codegen --out events.ts` writes the service's
// allowlists as unions and registers them here (module augmentation of `Register`), so every
// hook of the package checks event, entity and app names at compile time:
//
//   declare module "@signals/react" { interface Register { types: SignalsNames } }
//
// Without a registration every name is a `string`. A hook can also be given the names
// explicitly: `useTrackEvent<SignalsNames>()`.

/** The three allowlists: each a union of string literals, or `string` when not restricted. */
export interface SignalsTypes {
  appName: string;
  eventType: string;
  entityType: string;
}

/** Augmented by the generated events.ts; empty means "any names". */
// biome-ignore lint: an interface to be augmented
export interface Register {}

export type RegisteredTypes = Register extends { types: infer T extends SignalsTypes } ? T : SignalsTypes;

export interface TrackDetails<T extends SignalsTypes = RegisteredTypes> {
  /** The thing acted on; its type must be in SIGNALS_ALLOWED_ENTITY_TYPES. */
  entity?: { type: T["entityType"]; id: string | number } | null;
  /** A small JSON object (<= 2 KiB) with no personal data. */
  description?: Record<string, unknown> | null;
  /** The route pattern; defaults to the one of useTrackRoute(), else getRoute(), else location.pathname. */
  route?: string;
}

/** Queue one event; returns its clientEventId, or null when nothing was queued (opted out). */
export type TrackFunction<T extends SignalsTypes = RegisteredTypes> = (
  eventType: T["eventType"],
  details?: TrackDetails<T>,
) => string | null;
