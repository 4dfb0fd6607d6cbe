// @signals/react: React bindings over signals.js, the Signals browser tracker.
export { useSignalsTracker, useTrackEvent, useTrackRoute } from "./hooks.js";
export { SignalsProvider, type SignalsProviderProps, type TrackerTuning } from "./provider.js";
export {
  TRACK_MUTATION,
  type TokenGetter,
  type Tracker,
  type TrackInput,
  type TrackResult,
  type Transport,
  type TransportAnswer,
  type TransportRequest,
} from "./signals.js";
export type { Register, RegisteredTypes, SignalsTypes, TrackDetails, TrackFunction } from "./types.js";
