"""Federation for real: our SDL composes with another subgraph (@theguild/federation-composition),
and a real Hive Gateway (npm @graphql-hive/gateway, run from node_modules) in front of the
running subgraph forwards the caller's signed-in token, which Signals verifies itself.

Processes: uvicorn (`signals serve`, SIGNALS_GATEWAY_TRUST=token, the default) and two
gateways on free 127.0.0.1 ports, started once for the module and stopped at its end. One
gateway shares the subgraph's HMAC secret; the other signs with a different one, so what it
forwards must be ignored. Between the gateways and the subgraph a recording proxy keeps what
the gateway really sends, so a captured signed request can be replayed with other claims.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from app.config import PROJECT_ROOT
from testkit.processes import clean_env, free_port, node_json
from testkit.seed import event_row, insert_rows
from testkit.servers import RecordingProxy
from testkit.settings import TEST_JWT_SECRET, TEST_SALT_SECRET
from testkit.tokens import token

HMAC_SECRET = "e2e-gateway-hmac-" + "Kp3x" * 8
GATEWAY = PROJECT_ROOT / "node_modules" / ".bin" / "hive-gateway"
JS = PROJECT_ROOT / "tests" / "e2e" / "gateway"  # compose.mjs and the gateway's configuration
OTHER_SUBGRAPH = """
extend schema @link(url: "https://specs.apollo.dev/federation/v2.5", import: ["@key", "@shareable"])

type Event @key(fields: "id", resolvable: false) {
  id: ID!
}

type Annotation @key(fields: "id") {
  id: ID!
  text: String!
  event: Event!
}

type Query {
  annotations(first: Int = 10): [Annotation!]!
}
"""


def compose(subgraphs: list[dict[str, str]]) -> dict[str, Any]:
    if not GATEWAY.exists():
        pytest.fail("npm packages missing: run `make node`")
    composed: dict[str, Any] = node_json(JS / "compose.mjs", subgraphs)
    return composed


def wait_until_up(url: str, proc: subprocess.Popen, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"{proc.args} exited early:\n{proc.stdout.read() if proc.stdout else ''}")
        try:
            httpx.get(url, timeout=2)
            return
        except httpx.TransportError:
            time.sleep(0.2)
    raise AssertionError(f"{url} did not come up in {timeout}s")


def stop(proc: subprocess.Popen) -> str:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)
    return proc.stdout.read() if proc.stdout else ""


class Stack:
    def __init__(self, subgraph: str, gateway: str, wrong_secret_gateway: str, app: str) -> None:
        self.subgraph, self.gateway, self.wrong_secret_gateway, self.app = subgraph, gateway, wrong_secret_gateway, app
        self.recorder: RecordingProxy | None = None


@pytest.fixture(scope="module")
def stack(migrated_db: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    tmp = tmp_path_factory.mktemp("federation")
    app = f"e2e-{uuid.uuid4().hex[:8]}"
    asyncio.run(insert_rows(migrated_db, [event_row(dt.datetime.now(dt.UTC), app, "export")]))
    procs: list[subprocess.Popen] = []
    try:
        port = free_port()
        env = clean_env(
            DATABASE_URL=migrated_db,
            SIGNALS_DATA_DIR=str(tmp / "data"),
            SIGNALS_JWT_SECRET=TEST_JWT_SECRET,
            SIGNALS_SALT_SECRET=TEST_SALT_SECRET,
            SIGNALS_GATEWAY_HMAC_SECRET=HMAC_SECRET,
            SIGNALS_TRUSTED_PROXIES="127.0.0.1",  # the gateway: its X-Forwarded-For is believed
        )
        subgraph = f"http://127.0.0.1:{port}/graphql"
        procs.append(
            subprocess.Popen(
                [sys.executable, "-m", "app.cli", "serve", "--port", str(port)],
                env=env,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                text=True,
                cwd=PROJECT_ROOT,
            )
        )
        wait_until_up(f"http://127.0.0.1:{port}/healthz", procs[-1])
        sdl = httpx.post(subgraph, json={"query": "{ _service { sdl } }"}, timeout=10).json()["data"]["_service"]["sdl"]
        recorder = RecordingProxy(subgraph)
        composed = compose([{"name": "signals", "url": recorder.url, "sdl": sdl}])
        assert composed["errors"] == []
        supergraph = tmp / "supergraph.graphql"
        supergraph.write_text(composed["supergraphSdl"])

        gateways = []
        for secret in (HMAC_SECRET, "not-the-subgraph-secret-" + "w" * 20):
            gw_port = free_port()
            gw_env = dict(
                env,
                SIGNALS_E2E_SUPERGRAPH=str(supergraph),
                SIGNALS_E2E_JWT_SECRET=TEST_JWT_SECRET,
                SIGNALS_E2E_HMAC_SECRET=secret,
                NODE_ENV="production",
            )
            procs.append(
                subprocess.Popen(
                    [
                        str(GATEWAY),
                        "supergraph",
                        "--config-path",
                        str(JS / "gateway.config.mjs"),
                        "--host",
                        "127.0.0.1",
                        "--port",
                        str(gw_port),
                    ],
                    env=gw_env,
                    stdout=subprocess.PIPE,
                    stderr=subprocess.STDOUT,
                    text=True,
                    cwd=PROJECT_ROOT,
                )
            )
            gateways.append((f"http://127.0.0.1:{gw_port}/graphql", procs[-1]))
        for url, proc in gateways:
            wait_until_up(url.replace("/graphql", "/healthcheck"), proc)
        stack = Stack(subgraph, gateways[0][0], gateways[1][0], app)
        stack.recorder = recorder
        yield stack
        recorder.stop()
    finally:
        for proc in reversed(procs):
            stop(proc)


BROWSER = "Mozilla/5.0 (X11; Linux x86_64; rv:132.0) Gecko/20100101 Firefox/132.0"


def through(
    url: str, query: str, variables: dict[str, Any] | None = None, roles: list[str] | None = None
) -> dict[str, Any]:
    headers = {"user-agent": BROWSER, "x-forwarded-for": "198.51.100.23"}
    if roles is not None:
        headers["authorization"] = f"Bearer {token(roles=roles)}"
    response = httpx.post(url, json={"query": query, "variables": variables or {}}, headers=headers, timeout=30)
    assert response.status_code == 200, response.text
    return response.json()


EVENTS = "query($app: String) { events(filter: {appName: $app}) { edges { node { appName eventType } } } }"


def codes(body: dict[str, Any]) -> list[str]:
    return [error.get("extensions", {}).get("code") for error in body.get("errors", [])]


def test_sdl_composes_with_another_subgraph(client_sdl: str) -> None:
    ok = compose(
        [
            {"name": "signals", "url": "http://127.0.0.1:1/graphql", "sdl": client_sdl},
            {"name": "annotations", "url": "http://127.0.0.1:2/graphql", "sdl": OTHER_SUBGRAPH},
        ]
    )
    assert ok["errors"] == []
    assert (
        "join__Graph" in ok["supergraphSdl"]
        and "annotations(" in ok["supergraphSdl"]
        and "eventStats(" in ok["supergraphSdl"]
    )
    # the check can fail: a subgraph that disagrees on a shared field does not compose
    clash = OTHER_SUBGRAPH.replace("id: ID!\n}", "id: ID!\n  appName: Int @shareable\n}", 1)
    broken = compose(
        [
            {"name": "signals", "url": "http://127.0.0.1:1/graphql", "sdl": client_sdl},
            {"name": "annotations", "url": "http://127.0.0.1:2/graphql", "sdl": clash},
        ]
    )
    assert broken["errors"] and broken["supergraphSdl"] is None


RELAY_SUBGRAPH = """
extend schema @link(url: "https://specs.apollo.dev/federation/v2.5", import: ["@key", "@shareable"])

type PageInfo @shareable {
  hasNextPage: Boolean!
  endCursor: String
}

type NoteConnection {
  pageInfo: PageInfo!
}

type Query {
  notes(first: Int = 10): NoteConnection!
}
"""


def test_sdl_composes_with_a_subgraph_that_has_its_own_relay_page_info(client_sdl: str) -> None:
    """A federated monorepo nearly always has another `PageInfo`: both must be shareable."""
    ok = compose(
        [
            {"name": "signals", "url": "http://127.0.0.1:1/graphql", "sdl": client_sdl},
            {"name": "notes", "url": "http://127.0.0.1:3/graphql", "sdl": RELAY_SUBGRAPH},
        ]
    )
    assert ok["errors"] == [], ok["errors"]
    assert "notes(" in ok["supergraphSdl"] and "events(" in ok["supergraphSdl"]


@pytest.fixture
async def client_sdl(client: httpx.AsyncClient) -> str:
    response = await client.post("/graphql", json={"query": "{ _service { sdl } }"})
    return response.json()["data"]["_service"]["sdl"]


def test_gateway_forwards_the_signed_in_token_to_events(stack: Stack) -> None:
    body = through(stack.gateway, EVENTS, {"app": stack.app}, roles=["admin"])
    assert body.get("data", {}).get("events", {}).get("edges") == [
        {"node": {"appName": stack.app, "eventType": "export"}}
    ], body
    assert codes(through(stack.gateway, EVENTS, {"app": stack.app}, roles=["member"])) == ["FORBIDDEN"]
    assert codes(through(stack.gateway, EVENTS, {"app": stack.app})) == ["UNAUTHENTICATED"]  # no token


def test_gateway_with_wrong_hmac_secret_gets_its_claims_ignored(stack: Stack) -> None:
    body = through(stack.wrong_secret_gateway, EVENTS, {"app": stack.app}, roles=["admin"])
    assert codes(body) == ["UNAUTHENTICATED"], body


def test_claims_in_extensions_sent_straight_to_the_subgraph_are_ignored(stack: Stack) -> None:
    forged = {
        "jwt": {"payload": {"sub": "x", "roles": ["admin"], "exp": int(time.time()) + 60}},
        "hmac-signature": "AAAA",
    }
    response = httpx.post(
        stack.subgraph, json={"query": EVENTS, "variables": {"app": stack.app}, "extensions": forged}, timeout=10
    )
    assert codes(response.json()) == ["UNAUTHENTICATED"]


def captured(stack: Stack, query: str) -> dict[str, Any]:
    """The last request the gateway sent upstream for `query`'s operation."""
    assert stack.recorder is not None
    field = query.split("{")[1].split("(")[0].strip()
    return next(body for body in reversed(stack.recorder.bodies) if field in str(body.get("query")))


def replay(stack: Stack, body: dict[str, Any]) -> dict[str, Any]:
    response = httpx.post(stack.subgraph, json=body, headers={"user-agent": BROWSER}, timeout=10)
    assert response.status_code == 200, response.text
    return response.json()


def test_a_replayed_signed_request_cannot_change_who_the_caller_is(stack: Stack) -> None:
    """In token mode the caller is whoever the forwarded token says: a captured signed
    request replayed with admin claims, or with a token of its own, gets nowhere."""
    assert codes(through(stack.gateway, EVENTS, {"app": stack.app}, roles=["member"])) == ["FORBIDDEN"]
    signed = captured(stack, EVENTS)
    extensions = signed["extensions"]
    assert extensions["hmac-signature"] and extensions["jwt"]["token"]["value"], signed  # what the gateway sent
    assert codes(replay(stack, signed)) == ["FORBIDDEN"]  # as is: still the member

    admin_claims = {"sub": "x", "roles": ["admin"], "exp": int(time.time()) + 60}
    with_claims = {**signed, "extensions": {**extensions, "jwt": {**extensions["jwt"], "payload": admin_claims}}}
    assert codes(replay(stack, with_claims)) == ["FORBIDDEN"]

    forged = token(roles=["admin"], secret="an attacker's own secret, not the IdP's " + "k" * 16)
    other_token = {"value": forged, "prefix": "Bearer"}
    with_token = {**signed, "extensions": {**extensions, "jwt": {"token": other_token}}}
    assert codes(replay(stack, with_token)) == ["UNAUTHENTICATED"]

    other_query = {**signed, "variables": {"app": "someone-else"}}  # the signature covers the variables
    assert codes(replay(stack, other_query)) == ["UNAUTHENTICATED"]


TRACK = """mutation($input: TrackEventInput!) { trackEvent(input: $input) { status accepted eventId clientEventId } }"""


def test_gateway_reaches_track_event(stack: Stack) -> None:
    """trackEvent through the gateway: refused without a token, accepted for a member (the
    gateway passes the User-Agent and X-Forwarded-For on), and the stored event readable by an
    admin through the gateway."""
    client_event_id = f"e2e-{uuid.uuid4()}"
    variables = {"input": {"eventType": "click", "appName": stack.app, "clientEventId": client_event_id}}
    assert codes(through(stack.gateway, TRACK, variables)) == ["UNAUTHENTICATED"]
    body = through(stack.gateway, TRACK, variables, roles=["member"])
    result = body["data"]["trackEvent"]
    assert result["status"] == "ACCEPTED" and result["clientEventId"] == client_event_id, body
    stored = through(stack.gateway, EVENTS.replace("node {", "node { id"), {"app": stack.app}, roles=["admin"])
    assert result["eventId"] in [edge["node"]["id"] for edge in stored["data"]["events"]["edges"]]
