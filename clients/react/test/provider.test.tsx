import { act, cleanup, render, screen, waitFor } from "@testing-library/react";
import { StrictMode, useEffect, useState } from "react";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { SignalsProvider, type SignalsProviderProps, useTrackEvent, useTrackRoute } from "../src/index.js";
import { recordingServer, sleep } from "./helpers.js";

const FAST = { flushIntervalMs: 10, retryBaseMs: 5, retryMaxMs: 20 } as const;

function Button({ onTracked }: { onTracked?: (id: string | null) => void }) {
  const track = useTrackEvent();
  return (
    <button
      type="button"
      onClick={() => {
        const id = track("export", { entity: { type: "order", id: 42 }, description: { format: "csv" } });
        onTracked?.(id);
      }}
    >
      export
    </button>
  );
}

function renderApp(props: Partial<SignalsProviderProps>, children = <Button />) {
  const view = render(
    <SignalsProvider appName="admin-console" getToken={() => "jwt-1"} {...FAST} {...props}>
      {children}
    </SignalsProvider>,
  );
  return { ...view, rerenderWith: (next: Partial<SignalsProviderProps>) => view.rerender(<SignalsProvider appName="admin-console" getToken={() => "jwt-1"} {...FAST} {...props} {...next}>{children}</SignalsProvider>) };
}

beforeEach(() => sessionStorage.clear());
afterEach(() => {
  cleanup();
  Object.defineProperty(navigator, "globalPrivacyControl", { value: undefined, configurable: true });
});

describe("SignalsProvider and useTrackEvent", () => {
  it("sends a click as one trackEvents call with the app, entity, description and a token", async () => {
    const server = recordingServer();
    const ids: Array<string | null> = [];
    renderApp({ transport: server.transport }, <Button onTracked={(id) => ids.push(id)} />);
    act(() => screen.getByText("export").click());
    await waitFor(() => expect(server.requests).toHaveLength(1));
    const [input] = server.sent();
    expect(input).toMatchObject({ appName: "admin-console", eventType: "export", entityType: "order", entityId: "42", description: { format: "csv" } });
    expect(input?.clientEventId).toBe(ids[0]);
    expect(server.requests[0]?.token).toBe("jwt-1");
  });

  it("queues while the user is loading and sends once ready", async () => {
    const server = recordingServer();
    const ids: Array<string | null> = [];
    const view = renderApp({ transport: server.transport, ready: false }, <Button onTracked={(id) => ids.push(id)} />);
    act(() => screen.getByText("export").click());
    act(() => screen.getByText("export").click());
    await sleep(60); // several flush intervals
    expect(server.requests).toHaveLength(0);
    expect(ids.every((id) => typeof id === "string")).toBe(true);
    view.rerenderWith({ ready: true });
    await waitFor(() => expect(server.sent()).toHaveLength(2));
    expect(server.sent().map((i) => i.clientEventId)).toEqual(ids);
  });

  it("waits for a ready promise and sends what waited once it resolves", async () => {
    const server = recordingServer();
    let loaded!: () => void;
    const loading = new Promise<void>((resolve) => {
      loaded = resolve;
    });
    const ids: Array<string | null> = [];
    renderApp({ transport: server.transport, ready: loading }, <Button onTracked={(id) => ids.push(id)} />);
    act(() => screen.getByText("export").click());
    await sleep(40);
    expect(server.requests).toHaveLength(0);
    await act(async () => loaded());
    await waitFor(() => expect(server.sent().map((i) => i.clientEventId)).toEqual(ids));
  });

  it("waits for a ready promise; its rejection discards what waited", async () => {
    const server = recordingServer();
    let fail!: (reason: unknown) => void;
    const loading = new Promise((_, reject) => {
      fail = reject;
    });
    renderApp({ transport: server.transport, ready: loading });
    act(() => screen.getByText("export").click());
    await sleep(40);
    expect(server.requests).toHaveLength(0);
    await act(async () => fail(new Error("user fetch failed")));
    await sleep(40);
    expect(server.requests).toHaveLength(0);
    expect(sessionStorage.getItem("signals.queue")).toBeNull();
  });

  it("discards what was queued while loading when the user turns out to be opted out", async () => {
    const server = recordingServer();
    let internal = false; // the host learns who the user is once loaded
    const view = renderApp({ transport: server.transport, ready: false, isOptedOut: () => internal });
    act(() => screen.getByText("export").click());
    expect(sessionStorage.getItem("signals.queue")).not.toBeNull();
    internal = true;
    view.rerenderWith({ ready: true });
    await sleep(60);
    expect(server.requests).toHaveLength(0);
    expect(sessionStorage.getItem("signals.queue")).toBeNull();
    act(() => screen.getByText("export").click()); // and later events are not even queued
    await sleep(40);
    expect(server.requests).toHaveLength(0);
  });

  it("never sends without a token, and sends as soon as there is one", async () => {
    const server = recordingServer();
    let token: string | null = null;
    renderApp({ transport: server.transport, getToken: () => token });
    act(() => screen.getByText("export").click());
    await sleep(60);
    expect(server.requests).toHaveLength(0);
    token = "jwt-late";
    await waitFor(() => expect(server.requests).toHaveLength(1));
    expect(server.requests[0]?.token).toBe("jwt-late");
  });

  it("honours Global Privacy Control by default, and only when asked not to, ignores it", async () => {
    Object.defineProperty(navigator, "globalPrivacyControl", { value: true, configurable: true });
    const server = recordingServer();
    const ids: Array<string | null> = [];
    const first = renderApp({ transport: server.transport }, <Button onTracked={(id) => ids.push(id)} />);
    act(() => screen.getByText("export").click());
    await sleep(40);
    expect(ids).toEqual([null]);
    expect(server.requests).toHaveLength(0);
    first.unmount();

    renderApp({ transport: server.transport, honorGlobalPrivacyControl: false });
    act(() => screen.getByText("export").click());
    await waitFor(() => expect(server.requests).toHaveLength(1));
  });

  it("retries failed sends with the same clientEventId until the server accepts", async () => {
    const server = recordingServer(["network", "http503", "unavailable", "unauthenticated", "accept"]);
    const results: string[] = [];
    renderApp({ transport: server.transport, onResult: (r) => results.push(r?.status ?? "none") });
    act(() => screen.getByText("export").click());
    await waitFor(() => expect(results).toEqual(["ACCEPTED"]), { timeout: 3000 });
    const ids = server.sent().map((i) => i.clientEventId);
    expect(ids).toHaveLength(5);
    expect(new Set(ids).size).toBe(1);
  });

  it("batches events tracked together into one call", async () => {
    const server = recordingServer();
    renderApp({ transport: server.transport, flushIntervalMs: 50 });
    act(() => {
      for (let i = 0; i < 3; i++) screen.getByText("export").click();
    });

    await waitFor(() => expect(server.sent()).toHaveLength(3));
    expect(server.requests).toHaveLength(1);
  });

  it("flushes pending events when the page is left, as a keepalive request", async () => {
    const server = recordingServer();
    renderApp({ transport: server.transport, flushIntervalMs: 60_000 });
    await sleep(20); // past the start-up send of what an earlier page left
    act(() => screen.getByText("export").click());
    await sleep(20);
    expect(server.requests).toHaveLength(0);
    window.dispatchEvent(new Event("pagehide"));
    await waitFor(() => expect(server.requests).toHaveLength(1));
    expect(server.requests[0]?.keepalive).toBe(true);
  });

  it("returns the same track function on every render", () => {
    const seen = new Set<unknown>();
    function Probe() {
      const track = useTrackEvent();
      seen.add(track);
      const [n, setN] = useState(0);
      return <button type="button" onClick={() => setN(n + 1)}>render {n}</button>;
    }
    renderApp({ transport: recordingServer().transport, getToken: () => `t${Math.random()}` }, <Probe />);
    for (let i = 0; i < 3; i++) act(() => screen.getByRole("button").click());
    expect(seen.size).toBe(1);
  });

  it("records nothing and does not throw outside a provider", () => {
    let id: string | null | undefined;
    function Orphan() {
      const track = useTrackEvent();
      useEffect(() => {
        id = track("export");
      }, [track]);
      return null;
    }
    render(<Orphan />);
    expect(id).toBeNull();
  });
});

describe("useTrackRoute", () => {
  function Page({ pattern }: { pattern: string }) {
    useTrackRoute(pattern, "route_view");
    return <Button />;
  }

  it("records one view per pattern change, even under StrictMode, and tags later events with it", async () => {
    const server = recordingServer();
    const app = (pattern: string) => (
      <StrictMode>
        <SignalsProvider appName="admin-console" getToken={() => "jwt-1"} transport={server.transport} {...FAST}>
          <Page pattern={pattern} />
        </SignalsProvider>
      </StrictMode>
    );
    const view = render(app("/orders"));
    view.rerender(app("/orders")); // same pattern: no new view
    view.rerender(app("/orders/:id"));
    act(() => screen.getByText("export").click());
    await waitFor(() => expect(server.sent()).toHaveLength(3));
    expect(server.sent().map((i) => [i.eventType, i.route])).toEqual([
      ["route_view", "/orders"],
      ["route_view", "/orders/:id"],
      ["export", "/orders/:id"],
    ]);
  });
});
