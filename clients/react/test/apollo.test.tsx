// The Apollo transport with a real ApolloClient and HttpLink; the network below HttpLink is a
// fetch function that answers like the Signals server (the real one is in the Chromium test).
import { ApolloClient, ApolloLink, HttpLink, InMemoryCache } from "@apollo/client";
import { act, cleanup, render, screen, waitFor } from "@testing-library/react";
import { afterEach, beforeEach, expect, it, vi } from "vitest";
import { apolloTransport } from "../src/apollo.js";
import { SignalsProvider, useTrackEvent } from "../src/index.js";

type Call = { url: string; headers: Record<string, string>; body: { query: string; variables: { inputs: Array<{ clientEventId: string; eventType: string; appName: string }> } }; keepalive: boolean | undefined };

function server(script: Array<"ok" | "down" | "503" | "unauthenticated">) {
  const calls: Call[] = [];
  const steps = [...script];
  const fetch = async (url: RequestInfo | URL, init?: RequestInit) => {
    const headers = Object.fromEntries(new Headers(init?.headers).entries());
    const body = JSON.parse(String(init?.body));
    calls.push({ url: String(url), headers, body, keepalive: init?.keepalive });
    const step = steps.shift() ?? "ok";
    if (step === "down") throw new TypeError("Failed to fetch");
    if (step === "503") return new Response("upstream unavailable", { status: 503, headers: { "content-type": "text/plain" } });
    const payload =
      step === "unauthenticated"
        ? { data: null, errors: [{ message: "token expired", extensions: { code: "UNAUTHENTICATED" } }] }
        : {
            data: {
              trackEvents: body.variables.inputs.map((i: { clientEventId: string }) => ({
                status: "ACCEPTED", accepted: true, reason: null, retryable: false, message: null, eventId: `e-${i.clientEventId}`, clientEventId: i.clientEventId,
              })),
            },
          };
    return new Response(JSON.stringify(payload), { status: 200, headers: { "content-type": "application/json" } });
  };
  return { calls, fetch: fetch as typeof globalThis.fetch };
}

function Buttons() {
  const track = useTrackEvent();
  return (
    <button type="button" onClick={() => { track("export"); track("search"); }}>
      go
    </button>
  );
}

beforeEach(() => sessionStorage.clear());
afterEach(() => {
  cleanup();
  vi.restoreAllMocks();
});

it("sends batches through the host's client and link chain, retrying with the same ids", async () => {
  const net = server(["down", "503", "unauthenticated", "ok"]);
  // the backoff's jitter held at one value, so both events fall due together and every
  // round is one request of two (with real jitter they may split, which spends the script)
  vi.spyOn(Math, "random").mockReturnValue(0.5);
  const seen: string[] = [];
  // the host's own link chain: a link of its own in front of HttpLink
  const appLink = new ApolloLink((operation, forward) => {
    seen.push(operation.operationName ?? "");
    operation.setContext(({ headers = {} }: { headers?: Record<string, string> }) => ({ headers: { ...headers, "x-app": "admin" } }));
    return forward(operation);
  });
  const client = new ApolloClient({ cache: new InMemoryCache(), link: appLink.concat(new HttpLink({ uri: "https://gateway.test/graphql", fetch: net.fetch })) });
  const results: string[] = [];
  render(
    <SignalsProvider appName="admin-console" getToken={() => "jwt-9"} transport={apolloTransport(client)} flushIntervalMs={10} retryBaseMs={5} retryMaxMs={20} onResult={(r) => results.push(r?.status ?? "none")}>
      <Buttons />
    </SignalsProvider>,
  );
  act(() => screen.getByText("go").click());
  await waitFor(() => expect(results).toEqual(["ACCEPTED", "ACCEPTED"]), { timeout: 3000 });

  // down, 503, UNAUTHENTICATED, then accepted: one batch of both events each round
  expect(net.calls.map((c) => c.body.variables.inputs.length)).toEqual([2, 2, 2, 2]);
  expect(seen.every((name) => name === "SignalsTrack")).toBe(true);
  for (const call of net.calls) {
    expect(call.url).toBe("https://gateway.test/graphql");
    expect(call.headers.authorization).toBe("Bearer jwt-9");
    expect(call.headers["x-app"]).toBe("admin");
    expect(call.keepalive).toBe(true);
    expect(call.body.variables.inputs.every((i) => i.appName === "admin-console")).toBe(true);
  }
  const sent = net.calls.flatMap((c) => c.body.variables.inputs);
  const idOf = (type: string) => new Set(sent.filter((i) => i.eventType === type).map((i) => i.clientEventId));
  expect([idOf("export").size, idOf("search").size]).toEqual([1, 1]); // every retry carried the same id
  expect(sent.filter((i) => i.eventType === "export")).toHaveLength(4); // sent 4 times, accepted once
});
