// A small admin page using @signals/react the way a host app does (tests/e2e/test_react_browser.py
// builds it with Vite and clicks it in Chromium against a running Signals).
//   ?transport=apollo   send through the page's ApolloClient instead of fetch
//   ?flushMs=N&retryMs=N  tracker timings       #token=<JWT>  the signed-in user's token
import { ApolloClient, HttpLink, InMemoryCache } from "@apollo/client";
import { SignalsProvider, type TrackResult, useSignalsTracker, useTrackEvent, useTrackRoute } from "@signals/react";
import { apolloTransport } from "@signals/react/apollo";
import { useMemo, useState } from "react";
import { createRoot } from "react-dom/client";

const q = new URLSearchParams(location.search);
const fragment = new URLSearchParams(location.hash.slice(1));
if (fragment.get("token")) {
  sessionStorage.setItem("example.token", fragment.get("token") ?? "");
  history.replaceState(null, "", location.pathname + location.search);
}
const number = (name: string, fallback: number) => (q.has(name) ? Number(q.get(name)) : fallback);

function JourneyPage({ results, errors }: { results: string[]; errors: string[] }) {
  const track = useTrackEvent();
  const tracker = useSignalsTracker();
  const [created, setCreated] = useState(0);
  useTrackRoute("/journeys/:id", "route_view");
  return (
    <main>
      <h1>Journey j_1</h1>
      <button
        id="create"
        type="button"
        onClick={(event) => {
          setCreated((n) => n + 1); // the page's own work, whatever analytics does
          const id = track("journey_create_clicked", { entity: { type: "journey", id: "j_1" }, description: { source: "example" } });
          event.currentTarget.dataset.lastClientEventId = id ?? "";
        }}
      >
        Create journey
      </button>
      <p>
        created: <span id="created">{created}</span> · session: <span id="session">{tracker?.getSessionId()}</span>
      </p>
      <ul id="results">{results.map((line) => <li key={line}>{line}</li>)}</ul>
      <ul id="errors">{errors.map((line, i) => <li key={`${i}:${line}`}>{line}</li>)}</ul>
    </main>
  );
}

function App() {
  const [results, setResults] = useState<string[]>([]);
  const [errors, setErrors] = useState<string[]>([]);
  const client = useMemo(() => new ApolloClient({ cache: new InMemoryCache(), link: new HttpLink({ uri: "/graphql" }) }), []);
  const transport = q.get("transport") === "apollo" ? apolloTransport(client) : undefined;
  return (
    <SignalsProvider
      appName="admin-console"
      endpoint="/graphql"
      getToken={() => sessionStorage.getItem("example.token")}
      isOptedOut={() => q.get("internal") === "1"}
      transport={transport}
      flushIntervalMs={number("flushMs", 200)}
      retryBaseMs={number("retryMs", 200)}
      retryMaxMs={1000}
      maxAttempts={50}
      onResult={(result: TrackResult | null, input) => setResults((r) => [...r, `${input.eventType} ${input.clientEventId} ${result?.status}`])}
      onError={(error) => setErrors((e) => [...e, error.message])}
    >
      <JourneyPage results={results} errors={errors} />
    </SignalsProvider>
  );
}

const root = document.getElementById("root");
if (root) createRoot(root).render(<App />);
document.body.dataset.state = "ready";
