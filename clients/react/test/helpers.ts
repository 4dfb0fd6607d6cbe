// A stand-in for the Signals server inside jsdom (the real server is exercised by the Chromium
// test, tests/e2e/test_react_browser.py): a transport that records every request and answers
// each event as the service does, ACCEPTED unless the test scripts a failure.
import type { TrackResult, Transport, TransportAnswer, TransportRequest } from "../src/index.js";

export type Step = "accept" | "network" | "unavailable" | "unauthenticated" | "http503";

export function recordingServer(script: Step[] = []) {
  const requests: TransportRequest[] = [];
  const steps = [...script];
  const transport: Transport = async (request) => {
    requests.push(request);
    const step = steps.shift() ?? "accept";
    if (step === "network") throw new TypeError("Failed to fetch");
    if (step === "http503") return { status: 503, payload: null };
    if (step === "unauthenticated") {
      return { status: 200, payload: { data: null, errors: [{ message: "token expired", extensions: { code: "UNAUTHENTICATED" } }] } };
    }
    const results: TrackResult[] = request.variables.inputs.map((input) => ({
      status: step === "accept" ? "ACCEPTED" : "DROPPED",
      accepted: step === "accept",
      reason: step === "accept" ? null : "UNAVAILABLE",
      retryable: step !== "accept",
      message: null,
      eventId: step === "accept" ? `evt-${input.clientEventId}` : null,
      clientEventId: input.clientEventId,
    }));
    return { status: 200, payload: { data: { trackEvents: results } } } satisfies TransportAnswer;
  };
  const sent = () => requests.flatMap((r) => r.variables.inputs);
  return { transport, requests, sent };
}

export const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
