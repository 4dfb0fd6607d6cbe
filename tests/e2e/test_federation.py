"""Federation for real: our SDL composes with other subgraphs in both composition libraries
(The Guild's @theguild/federation-composition and Apollo's @apollo/composition), and a real
Hive Gateway (npm @graphql-hive/gateway, run from node_modules) in front of the running
subgraph forwards the caller's signed-in token, which Signals verifies itself, and the
caller's address and browser, so that two people stay two people.

Processes: uvicorn (`signals serve`, SIGNALS_GATEWAY_TRUST=token, the default), an identity
provider's JWKS on 127.0.0.1, and three gateways on free 127.0.0.1 ports, all running the
README's configuration (docs/gateway.config.mjs): one as is, one signing with another HMAC
secret (what it forwards must be ignored), one without its `propagateHeaders` block.
Between the gateways and the subgraph a recording proxy keeps what each gateway really
sends, so a captured signed request can be replayed with other claims. Started once for the
module and stopped at its end.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import re
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
import ua_parser

from app.config import PROJECT_ROOT
from testkit.database import fetch
from testkit.hashing import contract_hash
from testkit.jwks import IdentityProvider
from testkit.processes import clean_env, free_port, node_json
from testkit.seed import event_row, insert_rows
from testkit.servers import RecordingProxy
from testkit.settings import TEST_SALT_SECRET
from testkit.tokens import token

HMAC_SECRET = "e2e-gateway-hmac-" + "Kp3x" * 8
GATEWAY = PROJECT_ROOT / "node_modules" / ".bin" / "hive-gateway"
COMPOSE = PROJECT_ROOT / "tests" / "e2e" / "gateway" / "compose.mjs"
GATEWAY_CONFIG = PROJECT_ROOT / "docs" / "gateway.config.mjs"  # the README's configuration
LIBRARIES = ["guild", "apollo"]  # The Guild's composition (Hive's) and Apollo's
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


def compose(subgraphs: list[dict[str, str]], library: str = "guild") -> dict[str, Any]:
    if not GATEWAY.exists():
        pytest.fail("npm packages missing: run `make node`")
    composed: dict[str, Any] = node_json(COMPOSE, {"library": library, "subgraphs": subgraphs})
    return composed


def without_header_propagation(config: str) -> str:
    """The README's gateway configuration with its `propagateHeaders` block taken out."""
    stripped, count = re.subn(r"\n  propagateHeaders: \{\n.*?\n  \},", "", config, flags=re.DOTALL)
    assert count == 1 and "propagateHeaders" not in stripped
    return stripped


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


@dataclass
class Stack:
    subgraph: str
    gateway: str  # the README's configuration
    wrong_secret_gateway: str  # the same, signing with another HMAC secret
    bare_gateway: str  # the same, without propagateHeaders
    app: str
    idp: IdentityProvider
    recorder: RecordingProxy
    database_url: str


@pytest.fixture(scope="module")
def stack(migrated_db: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    tmp = tmp_path_factory.mktemp("federation")
    app = f"e2e-{uuid.uuid4().hex[:8]}"
    asyncio.run(insert_rows(migrated_db, [event_row(dt.datetime.now(dt.UTC), app, "export")]))
    idp = IdentityProvider()
    procs: list[subprocess.Popen] = []
    recorder: RecordingProxy | None = None
    try:
        port = free_port()
        env = clean_env(
            DATABASE_URL=migrated_db,
            SIGNALS_DATA_DIR=str(tmp / "data"),
            SIGNALS_JWT_JWKS_URL=idp.url,  # the identity provider the gateway trusts too
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
        # the variant sits beside a link to node_modules so that its imports resolve
        (tmp / "node_modules").symlink_to(PROJECT_ROOT / "node_modules")
        bare_config = tmp / "gateway.bare.config.mjs"
        bare_config.write_text(without_header_propagation(GATEWAY_CONFIG.read_text()))

        gateways = []
        for config, secret in (
            (GATEWAY_CONFIG, HMAC_SECRET),
            (GATEWAY_CONFIG, "not-the-subgraph-secret-" + "w" * 20),
            (bare_config, HMAC_SECRET),
        ):
            gw_port = free_port()
            gw_env = dict(env, JWKS_URL=idp.url, HMAC_SECRET=secret, NODE_ENV="production")
            command = [str(GATEWAY), "supergraph", str(supergraph), "--config-path", str(config)]
            procs.append(
                subprocess.Popen(
                    [*command, "--host", "127.0.0.1", "--port", str(gw_port)],
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
        yield Stack(subgraph, *(url for url, _ in gateways), app, idp, recorder, migrated_db)
    finally:
        if recorder is not None:
            recorder.stop()
        for proc in reversed(procs):
            stop(proc)
        idp.stop()


BROWSER = "Mozilla/5.0 (X11; Linux x86_64; rv:132.0) Gecko/20100101 Firefox/132.0"
IPHONE = (
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_1 like Mac OS X) AppleWebKit/605.1.15 "
    "(KHTML, like Gecko) Version/17.1 Mobile/15E148 Safari/604.1"
)


def through(
    stack: Stack,
    url: str,
    query: str,
    variables: dict[str, Any] | None = None,
    roles: list[str] | None = None,
    *,
    user_agent: str = BROWSER,
    source: str = "127.0.0.9",  # not the trusted gateway's own 127.0.0.1
    headers: dict[str, str] | None = None,
) -> dict[str, Any]:
    """One request to `url` as a browser at `source` (a loopback address of its own) would send it."""
    sent = {"user-agent": user_agent, **(headers or {})}
    if roles is not None:
        sent["authorization"] = f"Bearer {stack.idp.token(roles=roles)}"
    with httpx.Client(transport=httpx.HTTPTransport(local_address=source), timeout=30) as http:
        response = http.post(url, json={"query": query, "variables": variables or {}}, headers=sent)
    assert response.status_code == 200, response.text
    return response.json()


EVENTS = "query($app: String) { events(filter: {appName: $app}) { edges { node { appName eventType } } } }"


def codes(body: dict[str, Any]) -> list[str]:
    return [error.get("extensions", {}).get("code") for error in body.get("errors", [])]


@pytest.mark.parametrize("library", LIBRARIES)
def test_sdl_composes_with_another_subgraph(client_sdl: str, library: str) -> None:
    ok = compose(
        [
            {"name": "signals", "url": "http://127.0.0.1:1/graphql", "sdl": client_sdl},
            {"name": "annotations", "url": "http://127.0.0.1:2/graphql", "sdl": OTHER_SUBGRAPH},
        ],
        library,
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
        ],
        library,
    )
    assert broken["errors"] and broken["supergraphSdl"] is None


# What a neighbouring subgraph of a federated monorepo typically holds: its own Relay
# `PageInfo` (with the fields Signals' lacks), the same common scalars, and a field of its
# own on Signals' `Event`, joined by key.
RELAY_SUBGRAPH = """
extend schema @link(url: "https://specs.apollo.dev/federation/v2.5", import: ["@key", "@shareable"])

scalar DateTime
scalar JSON

type PageInfo @shareable {
  hasNextPage: Boolean!
  hasPreviousPage: Boolean!
  startCursor: String
  endCursor: String
}

type Note @key(fields: "id") {
  id: ID!
  body: JSON
  writtenAt: DateTime!
}

type NoteEdge {
  cursor: String!
  node: Note!
}

type NoteConnection {
  edges: [NoteEdge!]!
  pageInfo: PageInfo!
}

type Event @key(fields: "id") {
  id: ID!
  notes(first: Int = 10): NoteConnection!
}

type Query {
  notes(first: Int = 10, after: String): NoteConnection!
}
"""


@pytest.mark.parametrize("library", LIBRARIES)
def test_sdl_composes_with_a_subgraph_that_has_its_own_page_info_and_extends_event(
    client_sdl: str, library: str
) -> None:
    """A federated monorepo nearly always has another `PageInfo`: both must be shareable."""
    subgraphs = [
        {"name": "signals", "url": "http://127.0.0.1:1/graphql", "sdl": client_sdl},
        {"name": "notes", "url": "http://127.0.0.1:3/graphql", "sdl": RELAY_SUBGRAPH},
    ]
    ok = compose(subgraphs, library)
    assert ok["errors"] == [], ok["errors"]
    supergraph = ok["supergraphSdl"]
    assert "notes(" in supergraph and "events(" in supergraph
    event_type = supergraph[supergraph.index("type Event") :].split("\n}", 1)[0]
    assert "notes(" in event_type and "eventType" in event_type  # one Event, fields of both
    # the check can fail: the same PageInfo without @shareable on the other side does not compose
    unshared = RELAY_SUBGRAPH.replace("type PageInfo @shareable", "type PageInfo")
    broken = compose([subgraphs[0], {**subgraphs[1], "sdl": unshared}], library)
    assert broken["errors"] and broken["supergraphSdl"] is None


@pytest.fixture
async def client_sdl(client: httpx.AsyncClient) -> str:
    response = await client.post("/graphql", json={"query": "{ _service { sdl } }"})
    return response.json()["data"]["_service"]["sdl"]


def test_gateway_forwards_the_signed_in_token_to_events(stack: Stack) -> None:
    body = through(stack, stack.gateway, EVENTS, {"app": stack.app}, roles=["admin"])
    assert body.get("data", {}).get("events", {}).get("edges") == [
        {"node": {"appName": stack.app, "eventType": "export"}}
    ], body
    assert codes(through(stack, stack.gateway, EVENTS, {"app": stack.app}, roles=["member"])) == ["FORBIDDEN"]
    assert codes(through(stack, stack.gateway, EVENTS, {"app": stack.app})) == ["UNAUTHENTICATED"]  # no token


def test_gateway_with_wrong_hmac_secret_gets_its_claims_ignored(stack: Stack) -> None:
    body = through(stack, stack.wrong_secret_gateway, EVENTS, {"app": stack.app}, roles=["admin"])
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
    assert codes(through(stack, stack.gateway, EVENTS, {"app": stack.app}, roles=["member"])) == ["FORBIDDEN"]
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


TRACK = """mutation($input: TrackEventInput!) {
  trackEvent(input: $input) { status accepted reason message eventId clientEventId }
}"""


def test_gateway_reaches_track_event(stack: Stack) -> None:
    """trackEvent through the gateway: refused without a token, accepted for a member (the
    gateway passes the User-Agent and X-Forwarded-For on), and the stored event readable by an
    admin through the gateway."""
    client_event_id = f"e2e-{uuid.uuid4()}"
    variables = {"input": {"eventType": "click", "appName": stack.app, "clientEventId": client_event_id}}
    assert codes(through(stack, stack.gateway, TRACK, variables)) == ["UNAUTHENTICATED"]
    body = through(stack, stack.gateway, TRACK, variables, roles=["member"])
    result = body["data"]["trackEvent"]
    assert result["status"] == "ACCEPTED" and result["clientEventId"] == client_event_id, body
    stored = through(stack, stack.gateway, EVENTS.replace("node {", "node { id"), {"app": stack.app}, roles=["admin"])
    assert result["eventId"] in [edge["node"]["id"] for edge in stored["data"]["events"]["edges"]]


# --- who the gateway says the caller is -------------------------------------------------------


def track_through(
    stack: Stack, gateway: str, user_agent: str, source: str, headers: dict[str, str] | None = None
) -> dict[str, Any]:
    client_event_id = f"e2e-{uuid.uuid4()}"
    variables = {"input": {"eventType": "click", "appName": stack.app, "clientEventId": client_event_id}}
    body = through(
        stack, gateway, TRACK, variables, roles=["member"], user_agent=user_agent, source=source, headers=headers
    )
    result: dict[str, Any] = body["data"]["trackEvent"]
    assert result["clientEventId"] == client_event_id, body
    return result


def sent_upstream(stack: Stack, client_event_id: str) -> dict[str, str]:
    """The headers of the request the gateway sent upstream for this event."""
    with stack.recorder.lock:
        pairs = list(zip(stack.recorder.bodies, stack.recorder.headers, strict=True))
    return next(headers for body, headers in reversed(pairs) if client_event_id in json.dumps(body))


def stored(stack: Stack, *client_event_ids: str) -> dict[str, Any]:
    rows = asyncio.run(
        fetch(
            stack.database_url, "SELECT * FROM events WHERE client_event_id = ANY($1::text[])", list(client_event_ids)
        )
    )
    return {row["client_event_id"]: row for row in rows}


def normalised(user_agent: str) -> str:
    parsed = ua_parser.parse(user_agent).with_defaults()
    return f"{parsed.user_agent.family}|{parsed.user_agent.major or ''}|{parsed.os.family}"


def test_two_people_behind_the_readme_gateway_are_two_people(stack: Stack) -> None:
    """Two browsers at two addresses (127.0.0.2 and .3: each a loopback address of its own)
    through the README's gateway: two userHashes, each the contract's hash of that person's
    own address and browser, and each person's own device columns. A caller's forged
    X-Forwarded-For changes nothing: the gateway appends the real peer, and Signals believes
    only what its trusted proxy added."""
    firefox = track_through(stack, stack.gateway, BROWSER, "127.0.0.2")
    iphone = track_through(stack, stack.gateway, IPHONE, "127.0.0.3")
    forged = track_through(stack, stack.gateway, BROWSER, "127.0.0.2", {"x-forwarded-for": "203.0.113.99"})
    assert [r["status"] for r in (firefox, iphone, forged)] == ["ACCEPTED"] * 3, (firefox, iphone, forged)

    rows = stored(stack, *(r["clientEventId"] for r in (firefox, iphone, forged)))
    for result, user_agent, address in ((firefox, BROWSER, "127.0.0.2"), (iphone, IPHONE, "127.0.0.3")):
        row = rows[result["clientEventId"]]
        day = row["created_at"].astimezone(dt.UTC).date()
        assert row["user_hash"] == contract_hash(TEST_SALT_SECRET, day, "127.0.0.1", address, normalised(user_agent))
        parsed = ua_parser.parse(user_agent).with_defaults()
        assert (row["browser_family"], row["os_family"]) == (parsed.user_agent.family, parsed.os.family)
    assert rows[firefox["clientEventId"]]["device_type"] == "desktop"
    assert rows[iphone["clientEventId"]]["device_type"] == "mobile"
    assert rows[firefox["clientEventId"]]["user_hash"] != rows[iphone["clientEventId"]]["user_hash"]
    assert rows[forged["clientEventId"]]["user_hash"] == rows[firefox["clientEventId"]]["user_hash"]

    sent = sent_upstream(stack, forged["clientEventId"])  # what the gateway passed on
    assert sent["user-agent"] == BROWSER
    assert sent["x-forwarded-for"] == "203.0.113.99, 127.0.0.2"
    assert sent["x-forwarded-host"].startswith("127.0.0.1:")


def test_without_header_propagation_events_are_dropped_as_no_client_identity(stack: Stack) -> None:
    """The same configuration without `propagateHeaders`: the gateway sends its own
    User-Agent and no client address, and Signals drops the event instead of counting every
    user as the gateway."""
    result = track_through(stack, stack.bare_gateway, BROWSER, "127.0.0.2")
    assert result["status"] == "DROPPED" and result["reason"] == "NO_CLIENT_IDENTITY", result
    assert "X-Forwarded-For" in result["message"] and result["eventId"] is None
    assert stored(stack, result["clientEventId"]) == {}
    sent = sent_upstream(stack, result["clientEventId"])
    assert "x-forwarded-for" not in sent and sent.get("user-agent") != BROWSER  # Hive Gateway: "node"


def test_the_readme_shows_the_tested_gateway_configuration() -> None:
    readme = (PROJECT_ROOT / "README.md").read_text()
    blocks = re.findall(r"```js\n(.*?)```", readme, flags=re.DOTALL)
    assert GATEWAY_CONFIG.read_text() in blocks
