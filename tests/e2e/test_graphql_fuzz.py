"""Schemathesis against the live GraphQL schema: every root field, fuzzed, through the real app.

The schema is loaded by introspecting the running app (`schemathesis.graphql.from_dict` on the
answer to the standard introspection query), so what is fuzzed is what is served. For each
root field (`Mutation.trackEvent`, `Mutation.trackEvents`, `Query.events`, `Query.eventStats`,
the insights (`Query.adoption`, `Query.funnel`, ...), `Query.event`, and the federation fields
`_entities` / `_service`) the cases come from
`schema[root][field].as_strategy(...)` in positive and negative mode, driven by Hypothesis.

Schemathesis's own ASGI transport (Starlette's TestClient, used without a `with` block) does
not run the app's lifespan, and this app does nothing without it (database pool, group-commit
writer, salt secret). So the app runs the way `testkit.http.asgi_client` runs it: built by
`create_app`, its lifespan entered, requests sent with httpx's ASGITransport; all of that lives
on an event loop in a background thread, and each generated case is sent from the Hypothesis
test (main thread) to that loop with a time limit. Each case goes as written (literal
arguments, answered by Strawberry) or with its arguments hoisted into variables (for
`trackEvent(s)` that is exactly the document shape `app/graphql/fastpath.py` answers).

Callers vary per case: admin token, member token, none, a token signed with another key, an
expired token, a malformed one; and the User-Agent is a browser, a script or absent.

Per response: HTTP 200 (400 for a request refused before execution, 413 only for an
over-size body), a well-formed GraphQL body, no masked "unexpected error" (an unhandled
exception in a resolver), no internals in any error text, an answer within a few seconds,
no admin data for non-admins, no recorded event for the unauthenticated. After each operation
the database is scanned: every stored row satisfies the allowlists and description rules, and
queries stored nothing. Generation is biased with Schemathesis dictionaries (allowlisted app
names, event types, entity ids, real event ids and cursors) so the runs reach the code past
validation: each mutation test must see events ACCEPTED and each query executed.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import math
import re
import threading
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import asyncpg
import graphql
import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.config import SchemathesisConfig
from schemathesis.graphql import nodes
from schemathesis.specs.graphql.schemas import GraphQLSchema

from app.cli.serve import create_app
from app.config import Settings
from app.graphql.extensions import MASKED_MESSAGE
from app.graphql.fastpath import FastTrack
from app.ingest.validation import _pii_key
from app.storage.database import asyncpg_dsn
from testkit.database import create_database, drop_database
from testkit.settings import make_settings
from testkit.tokens import token

# --- budget -------------------------------------------------------------------------------

POSITIVE_EXAMPLES = {
    "trackEvent": 120, "trackEvents": 60, "events": 150, "eventStats": 150, "event": 25, "_entities": 30, "_service": 3,
    "adoption": 60, "funnel": 100, "propertyBreakdown": 80, "propertyAggregates": 80, "propertyCatalogue": 40,
    "nextEvents": 120,
}  # fmt: skip
NEGATIVE_EXAMPLES = {
    "trackEvent": 20, "trackEvents": 15, "events": 15, "eventStats": 15, "event": 8, "_entities": 10, "_service": 0,
    "adoption": 10, "funnel": 10, "propertyBreakdown": 10, "propertyAggregates": 10, "propertyCatalogue": 5,
    "nextEvents": 10,
}  # fmt: skip
REQUEST_TIMEOUT = 5.0  # seconds one request may take before it counts as a hang
MIN_ACCEPTED = {"trackEvent": 4, "trackEvents": 6}  # rows each mutation run must have stored
MIN_EXECUTED = {
    "events": 8,
    "eventStats": 8,
    "adoption": 3,
    "funnel": 3,
    "propertyBreakdown": 3,
    "propertyAggregates": 3,
    "propertyCatalogue": 3,
    "nextEvents": 3,
    "event": 5,
    "_entities": 5,
    "_service": 3,
    "trackEvent": 15,
    "trackEvents": 10,
}

OPERATIONS = [  # mutations first: the queries then read what they stored
    ("Mutation", "trackEvent"),
    ("Mutation", "trackEvents"),
    ("Query", "events"),
    ("Query", "eventStats"),
    ("Query", "adoption"),
    ("Query", "funnel"),
    ("Query", "propertyBreakdown"),
    ("Query", "propertyAggregates"),
    ("Query", "propertyCatalogue"),
    ("Query", "nextEvents"),
    ("Query", "event"),
    ("Query", "_entities"),
    ("Query", "_service"),
]
ADMIN_ONLY = {
    "events",
    "eventStats",
    "adoption",
    "funnel",
    "propertyBreakdown",
    "propertyAggregates",
    "propertyCatalogue",
    "nextEvents",
    "event",
    "_entities",
}
MUTATIONS = {"trackEvent", "trackEvents"}

# --- callers --------------------------------------------------------------------------------

BROWSERS = [
    "Mozilla/5.0 (X11; Linux x86_64; rv:121.0) Gecko/20100101 Firefox/121.0",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_2 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) "
    "Version/17.2 Mobile/15E148 Safari/604.1",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36",
]
AGENTS: dict[str, str | None] = {
    "firefox": BROWSERS[0],
    "iphone": BROWSERS[1],
    "chrome": BROWSERS[2],
    "curl": "curl/8.5.0",
    "none": None,
}
BOT_AGENTS = {"curl", "none"}
CALLERS: dict[str, str | None] = {
    "admin": f"Bearer {token(roles=['admin'], subject='fuzz-admin')}",
    "member": f"Bearer {token(roles=['member'], subject='fuzz-member')}",
    "anonymous": None,
    "forged": f"Bearer {token(roles=['admin'], subject='fuzz-admin', secret='another-secret-' + 'z' * 40)}",
    "expired": f"Bearer {token(roles=['admin'], subject='fuzz-admin', ttl_seconds=-3600)}",
    "garbage": "Bearer not.a.jwt",
}
AUTHENTICATED = {"admin", "member"}
# weights by repetition (Hypothesis shrinks towards the first entry)
QUERY_CALLERS = st.sampled_from(["admin"] * 8 + ["member", "anonymous", "forged", "expired", "garbage"])
MUTATION_CALLERS = st.sampled_from(["member"] * 4 + ["admin"] * 3 + ["anonymous", "forged", "expired", "garbage"])
AGENT_CHOICES = st.sampled_from(["firefox"] * 4 + ["iphone", "chrome", "curl", "none"])

# --- custom scalars -----------------------------------------------------------------------

SAFE_KEYS = ["format", "rows", "button", "tab", "count", "filters", "columns", "page", "sort", "panel"]
PII_KEYS = [
    "email", "firstName", "user_id", "IP_Address", "phone", "password", "token", "address", "dob", "customerEmail",
    "clientIP", "userName",
]  # fmt: skip


def _object_node(fields: dict[str, graphql.ValueNode]) -> graphql.ObjectValueNode:
    return nodes.Object([graphql.ObjectFieldNode(name=graphql.NameNode(value=k), value=v) for k, v in fields.items()])


def _nested_node(depth: int) -> graphql.ObjectValueNode:
    value: graphql.ValueNode = nodes.String("leaf")
    for _ in range(depth):
        value = _object_node({"panel": value})
    return value  # type: ignore[return-value]


_json_keys = st.one_of(
    st.sampled_from(SAFE_KEYS), st.sampled_from(PII_KEYS), st.from_regex(r"[A-Za-z_][A-Za-z0-9_]{0,15}", fullmatch=True)
)
_json_leaves = st.one_of(
    st.just(graphql.NullValueNode()),
    st.booleans().map(nodes.Boolean),
    st.integers(min_value=-(2**63), max_value=2**63).map(nodes.Int),
    st.floats(allow_nan=False, allow_infinity=False).map(nodes.Float),
    st.text(max_size=24).map(nodes.String),
    st.sampled_from(["csv", "someone@example.com", "x" * 2100]).map(nodes.String),
)
_json_values = st.recursive(
    _json_leaves,
    lambda children: st.one_of(
        st.lists(children, max_size=4).map(nodes.List),
        st.dictionaries(_json_keys, children, max_size=4).map(_object_node),
    ),
    max_leaves=12,
)
_safe_leaves = st.one_of(
    st.integers(-1000, 1000).map(nodes.Int), st.sampled_from(["csv", "pdf", "main", ""]).map(nodes.String)
)
JSON_NODES = st.one_of(
    st.dictionaries(st.sampled_from(SAFE_KEYS), _safe_leaves, max_size=3).map(_object_node),  # fine descriptions
    st.dictionaries(_json_keys, _json_values, max_size=5).map(_object_node),
    _json_values,  # lists and scalars too: not an object
    st.integers(15, 20).map(_nested_node),
)
# the same, as request JSON (variables), where keys are not limited to GraphQL names
_raw_keys = st.one_of(
    st.sampled_from(
        [*SAFE_KEYS, *PII_KEYS, "IP-Address", "e-mail", "First Name", "user.id", "X-Auth-Token", "a@b.example"]
    ),
    st.text(max_size=12),
)
_raw_leaves = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=24),
    st.sampled_from(["\ud800", "\x00", "nobody@example.org", "y" * 2100, math.nan, math.inf, -math.inf]),
)
_raw_values = st.recursive(
    _raw_leaves,
    lambda children: st.lists(children, max_size=3) | st.dictionaries(_raw_keys, children, max_size=3),
    max_leaves=10,
)
RAW_DESCRIPTIONS = st.one_of(st.dictionaries(_raw_keys, _raw_values, max_size=5), _raw_leaves)
_NOW = dt.datetime.now(dt.UTC).replace(microsecond=0)
_dates = st.one_of(
    st.dates().map(str),
    st.sampled_from(["0001-01-01", "9999-12-31", "1970-01-01"]),
    st.integers(-3, 1).map(lambda days: str((_NOW + dt.timedelta(days=days)).date())),  # where the events are
)
DATETIME_NODES = st.one_of(
    st.builds(
        lambda day, time_, offset: f"{day}T{time_}{offset}",
        _dates,
        st.times().map(lambda t: t.isoformat()),
        st.sampled_from(["Z", "+00:00", "", "+05:00", "-05:00", "+14:00", "-12:00"]),
    ),
    st.sampled_from(
        ["", "now", "2024-13-01T00:00:00Z", "2024-02-30T00:00:00Z", "1700000000", "2024-01-01", "T", "24:00"]
    ),
).map(nodes.String)
# what a string argument may hold that a GraphQL literal cannot easily say: put into variables
NASTY_STRINGS = [
    "\x00", "a\x00b", "\ud800", "x\udfff", "z" * 5000, "%", "_", "'; DROP TABLE events; --", "\\", "\u202e", "\ufeff",
]  # fmt: skip

# per case, in variables mode: leave the generated values alone (None), put a nasty string in
# place of one string in the variables, or (trackEvent/s) put a raw JSON description on the first event
TWEAKS = st.one_of(
    st.none(),
    st.none(),
    st.tuples(st.just("string"), st.integers(0, 1000), st.sampled_from(NASTY_STRINGS)),
    st.tuples(st.just("description"), RAW_DESCRIPTIONS),
)


def any_nodes(event_ids: list[str]) -> st.SearchStrategy[graphql.ValueNode]:
    """`_Any` representations: mostly well-formed `Event` keys, and the shapes a gateway never sends."""
    ids = st.one_of(
        st.sampled_from(event_ids).map(nodes.String),
        st.uuids().map(str).map(nodes.String),
        st.text(max_size=20).map(nodes.String),
        st.integers(0, 2**40).map(nodes.Int),
    )
    event_type = nodes.String("Event")
    event = ids.map(lambda key: _object_node({"__typename": event_type, "id": key}))
    typename = st.one_of(
        st.sampled_from(["Event", "Nope", "Query", "EventConnection", "_Service", ""]).map(nodes.String),
        st.integers(0, 9).map(nodes.Int),
        st.just(nodes.List([])),
    )
    odd = st.one_of(
        ids.map(lambda key: _object_node({"id": key})),  # no __typename
        st.builds(lambda name, key: _object_node({"__typename": name, "id": key}), typename, ids),
        ids.map(lambda key: _object_node({"__typename": event_type, "id": key, "extra": nodes.Int(1)})),
        st.just(_object_node({"__typename": event_type})),  # no key field
        st.one_of(_json_values, st.just(graphql.NullValueNode())).map(
            lambda key: _object_node({"__typename": event_type, "id": key})
        ),
        _json_leaves,  # not an object at all
    )
    return st.one_of(event, event, odd)


schemathesis.graphql.scalar("JSON", JSON_NODES)
schemathesis.graphql.scalar("DateTime", DATETIME_NODES)

# --- the app, running --------------------------------------------------------------------


@dataclass
class Seeded:
    event_ids: list[str]
    cursors: list[str]
    user_hashes: list[str]


@dataclass
class Stats:
    sent: int = 0
    executed: int = 0  # answered with the field's data and no error
    statuses: Counter[str] = field(default_factory=Counter)
    reasons: Counter[str] = field(default_factory=Counter)
    callers: Counter[str] = field(default_factory=Counter)
    status_codes: Counter[int] = field(default_factory=Counter)
    with_variables: int = 0


class LiveApp:
    """The app with its lifespan running on an event loop in a background thread."""

    def __init__(self, pg_server: str, data_dir: Path) -> None:
        self.pg_server = pg_server
        self.data_dir = data_dir
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name="fuzz-app", daemon=True)
        self.ready = threading.Event()
        self.database_url = ""
        self.settings: Settings | None = None
        self.app: Any = None
        self.client: httpx.AsyncClient | None = None
        self._stop: asyncio.Event | None = None
        self._serving: Any = None

    def run(self, coro: Any, timeout: float = 60) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def start(self) -> None:
        self.thread.start()
        self.database_url = self.run(create_database(self.pg_server))
        self.settings = make_settings(self.database_url, self.data_dir)
        self.app = create_app(self.settings)
        self._serving = asyncio.run_coroutine_threadsafe(self._serve(), self.loop)
        while not self.ready.wait(0.1):
            if self._serving.done():
                self._serving.result()  # raises what went wrong
                raise RuntimeError("the app stopped before it was ready")

    async def _serve(self) -> None:
        self._stop = asyncio.Event()
        async with self.app.router.lifespan_context(self.app):
            transport = httpx.ASGITransport(app=self.app, client=("203.0.113.7", 51515))
            async with httpx.AsyncClient(transport=transport, base_url="http://admin.example.test") as client:
                self.client = client
                self.ready.set()
                await self._stop.wait()

    def stop(self) -> None:
        try:
            if self._stop is not None:
                self.loop.call_soon_threadsafe(self._stop.set)
            if self._serving is not None:
                self._serving.result(60)
            if self.database_url:
                self.run(drop_database(self.pg_server, self.database_url))
        finally:
            self.loop.call_soon_threadsafe(self.loop.stop)
            self.thread.join(10)

    async def _post(self, body: bytes, headers: dict[str, str]) -> tuple[httpx.Response, float]:
        assert self.client is not None
        started = time.perf_counter()
        response = await asyncio.wait_for(self.client.post("/graphql", content=body, headers=headers), REQUEST_TIMEOUT)
        return response, time.perf_counter() - started

    def post(self, body: bytes, headers: dict[str, str]) -> tuple[httpx.Response, float]:
        try:
            return self.run(self._post(body, headers), REQUEST_TIMEOUT + 10)
        except TimeoutError:
            raise AssertionError(f"no answer within {REQUEST_TIMEOUT}s (hang) for {body[:500]!r}") from None

    def gql(self, query: str, variables: dict[str, Any] | None = None, caller: str = "admin") -> dict[str, Any]:
        headers = {"content-type": "application/json", "user-agent": BROWSERS[0]}
        if CALLERS[caller]:
            headers["authorization"] = CALLERS[caller]  # type: ignore[assignment]
        response, _ = self.post(json.dumps({"query": query, "variables": variables or {}}).encode(), headers)
        assert response.status_code == 200, response.text
        return response.json()

    async def _fetch(self, sql: str) -> list[asyncpg.Record]:
        conn = await asyncpg.connect(asyncpg_dsn(self.database_url))
        try:
            return await conn.fetch(sql)
        finally:
            await conn.close()

    def rows(self) -> list[asyncpg.Record]:
        return self.run(self._fetch("SELECT * FROM events"))

    @property
    def fast_track(self) -> FastTrack:
        route = next(route for route in self.app.routes if getattr(route, "path", None) == "/graphql")
        assert isinstance(route.app, FastTrack)
        return route.app


SEED_EVENTS = [
    {
        "appName": "admin-console",
        "eventType": "export",
        "route": "/orders/:id",
        "entityType": "order",
        "entityId": "314159",
        "sessionId": "tab-8f3a",
        "description": {"format": "csv", "rows": 250},
    },
    {"appName": "admin-console", "eventType": "click", "route": "/orders"},
    {
        "appName": "admin-console",
        "eventType": "view",
        "route": "/customers/:id",
        "entityType": "customer",
        "entityId": "c-42",
        "sessionId": "tab-1",
    },
    {
        "appName": "billing-admin",
        "eventType": "search",
        "route": "/invoices",
        "description": {"filters": ["open"], "page": 2},
    },
    {
        "appName": "billing-admin",
        "eventType": "view",
        "entityType": "invoice",
        "entityId": "inv-2024-001",
        "sessionId": "tab-2",
    },
    {"appName": "billing-admin", "eventType": "click"},
]


def seed(live: LiveApp) -> Seeded:
    track = "mutation($inputs: [TrackEventInput!]!) { trackEvents(inputs: $inputs) { status eventId } }"
    for agent in BROWSERS:  # three user hashes
        headers = {"content-type": "application/json", "user-agent": agent, "authorization": CALLERS["member"] or ""}
        response, _ = live.post(json.dumps({"query": track, "variables": {"inputs": SEED_EVENTS}}).encode(), headers)
        results = response.json()["data"]["trackEvents"]
        assert [r["status"] for r in results] == ["ACCEPTED"] * len(SEED_EVENTS), response.text
    page = live.gql("{ events(first: 5) { edges { cursor node { id userHash } } } }")["data"]["events"]["edges"]
    rows = live.rows()
    return Seeded(
        event_ids=[str(row["id"]) for row in rows],
        cursors=[edge["cursor"] for edge in page],
        user_hashes=sorted({row["user_hash"] for row in rows}),
    )


def fuzz_config(settings: Settings, seeded: Seeded) -> SchemathesisConfig:
    """Dictionaries steer some arguments to values the app knows, so cases get past validation."""
    dictionaries = {
        "apps": [*settings.allowed_apps, "unknown-app", "admin\x00console"],
        "event_types": [*settings.allowed_event_types, "purchase"],
        "entity_types": [*settings.allowed_entity_types, "person"],
        # mostly well-formed values, and a few each check must refuse
        "entity_ids": ["314159", "c-42", "inv-2024-001", "a", "7", "ord_9", "x" * 128, "x" * 129, "bad id"],
        "sessions": ["tab-8f3a", "tab-1", "s.2024:abc", "s1", "tab-77", "", "x" * 129],
        "routes": [
            "/orders/:id",
            "/",
            "/billing/invoices",
            "/customers/:id/notes",
            "/settings",
            "/orders",
            "/reports/monthly",
            "/search?q=x",
            "/users/a@b.example",
            "/a#frag",
            "/r" * 300,
        ],
        "client_ids": [f"fuzz-{i:03d}" for i in range(400)] + ["", "not ok", "z" * 129],
        "device_types": ["desktop", "mobile", "tablet", "other"],
        "browsers": ["Firefox", "Chrome", "Mobile Safari", "Other", "Fire\x00fox"],
        "oses": ["Linux", "iOS", "Windows", "Other"],
        "user_hashes": seeded.user_hashes,
        "event_ids": [*seeded.event_ids, "not-a-uuid", "00000000-0000-0000-0000-000000000000"],
        "cursors": [
            *seeded.cursors,
            "",
            "bm90LWEtY3Vyc29y",
            "MTow",
            "LTE6MDAwMDAwMDAtMDAwMC0wMDAwLTAwMDAtMDAwMDAwMDAwMDAw",
        ],
        "page_sizes": [1, 2, 5, 100, 1000, 1001, 0, -1, 2**31 - 1],
        "tops": [1, 3, 20, 1000, 0, 1001],
    }
    parameters: dict[str, dict[str, Any]] = {}
    for prefix in ("Mutation.trackEvent.input", "Mutation.trackEvents.inputs[*]"):
        parameters |= {
            f"{prefix}.appName": {"dictionary": "apps", "probability": 0.95},
            f"{prefix}.eventType": {"dictionary": "event_types", "probability": 0.95},
            f"{prefix}.entityType": {"dictionary": "entity_types", "probability": 0.9},
            f"{prefix}.entityId": {"dictionary": "entity_ids", "probability": 0.9},
            f"{prefix}.sessionId": {"dictionary": "sessions", "probability": 0.9},
            f"{prefix}.route": {"dictionary": "routes", "probability": 0.8},
            f"{prefix}.clientEventId": {"dictionary": "client_ids", "probability": 0.9},
        }
    parameters |= {
        "Query.*.filter.appName": {"dictionary": "apps", "probability": 0.7},
        "Query.*.filter.eventTypes[*]": {"dictionary": "event_types", "probability": 0.7},
        "Query.*.filter.entityType": {"dictionary": "entity_types", "probability": 0.6},
        "Query.*.filter.entityId": {"dictionary": "entity_ids", "probability": 0.6},
        "Query.*.filter.sessionId": {"dictionary": "sessions", "probability": 0.6},
        "Query.*.filter.route": {"dictionary": "routes", "probability": 0.6},
        "Query.*.filter.deviceType": {"dictionary": "device_types", "probability": 0.6},
        "Query.*.filter.browserFamily": {"dictionary": "browsers", "probability": 0.6},
        "Query.*.filter.osFamily": {"dictionary": "oses", "probability": 0.6},
        "Query.*.filter.userHash": {"dictionary": "user_hashes", "probability": 0.6},
        "Query.events.first": {"dictionary": "page_sizes", "probability": 0.7},
        "Query.events.after": {"dictionary": "cursors", "probability": 0.7},
        "Query.event.id": {"dictionary": "event_ids", "probability": 0.8},
        "EventStats.totals.top": {"dictionary": "tops", "probability": 0.7},
    }
    return SchemathesisConfig.from_dict(
        {"dictionaries": {name: {"values": values} for name, values in dictionaries.items()}, "parameters": parameters}
    )


@dataclass
class Fuzz:
    live: LiveApp
    schema: GraphQLSchema
    seeded: Seeded
    stats: dict[str, Stats] = field(default_factory=dict)


@pytest.fixture(scope="module")
def fuzz(pg_server: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Fuzz]:
    live = LiveApp(pg_server, tmp_path_factory.mktemp("fuzz"))
    live.start()
    try:
        seeded = seed(live)
        schemathesis.graphql.scalar("_Any", any_nodes(seeded.event_ids))
        introspection = live.gql(graphql.get_introspection_query(), caller="anonymous")
        assert live.settings is not None
        schema = schemathesis.graphql.from_dict(introspection, config=fuzz_config(live.settings, seeded))
        yield Fuzz(live, schema, seeded)
    finally:
        live.stop()


# --- sending a case -----------------------------------------------------------------------

LEAK_MARKERS = re.compile(
    r"Traceback|asyncpg|sqlalchemy|psycopg|site-packages|File \"|\.py\b|/work/|/tmp/|/home/|/usr/|"
    r"postgres(?:ql)?://|SQLSTATE|DETAIL:|UndefinedColumn|DataError|IntegrityError|ProgrammingError",
    re.IGNORECASE,
)


def hoist_arguments(query: str, schema: graphql.GraphQLSchema) -> dict[str, Any] | None:
    """The same operation with its root field's literal arguments passed as variables
    (`trackEvent(input: $input)`: the shape the fast path answers); None when it has none."""
    try:
        document = graphql.parse(query)
    except graphql.GraphQLError:
        return None
    if len(document.definitions) != 1 or not isinstance(document.definitions[0], graphql.OperationDefinitionNode):
        return None
    operation = document.definitions[0]
    root_type = schema.mutation_type if operation.operation is graphql.OperationType.MUTATION else schema.query_type
    selections = operation.selection_set.selections
    if root_type is None or len(selections) != 1 or not isinstance(selections[0], graphql.FieldNode):
        return None
    root = selections[0]
    definition = root_type.fields.get(root.name.value)
    if definition is None or not root.arguments:
        return None
    variable_definitions, arguments, variables = [], [], {}
    for argument in root.arguments:
        argument_definition = definition.args.get(argument.name.value)
        if argument_definition is None:
            return None
        name = argument.name.value
        variables[name] = graphql.value_from_ast_untyped(argument.value)
        variable = graphql.VariableNode(name=graphql.NameNode(value=name))
        type_node = graphql.parse_type(str(argument_definition.type))
        variable_definitions.append(graphql.VariableDefinitionNode(variable=variable, type=type_node, directives=()))
        arguments.append(graphql.ArgumentNode(name=argument.name, value=variable))
    new_root = graphql.FieldNode(
        alias=root.alias,
        name=root.name,
        arguments=tuple(arguments),
        directives=root.directives,
        selection_set=root.selection_set,
    )
    new_operation = graphql.OperationDefinitionNode(
        operation=operation.operation,
        name=graphql.NameNode(value="Fuzzed"),
        variable_definitions=tuple(variable_definitions),
        directives=operation.directives,
        selection_set=graphql.SelectionSetNode(selections=(new_root,)),
    )
    return {
        "query": graphql.print_ast(graphql.DocumentNode(definitions=(new_operation,))),
        "variables": variables,
        "operationName": "Fuzzed",
    }


WINDOWED = {"adoption", "funnel", "nextEvents"}  # insights that take a bounded window


def bound_window(variables: dict[str, Any]) -> None:
    """Make an insight's variables the shape it takes, so cases reach its SQL: the window
    argument (`population`, `filter`) has only appName besides the last 30 days; what is
    counted in it (`target`, each of 2 to 10 `steps`) names an event type and no app, window,
    session or user; counts and limits are in range."""
    now = dt.datetime.now(dt.UTC)
    window = {"from": (now - dt.timedelta(days=30)).isoformat(), "to": now.isoformat()}
    for name in ("population", "filter"):
        if name in variables:
            given = variables[name] if isinstance(variables[name], dict) else {}
            variables[name] = {**{key: given[key] for key in ("appName",) if key in given}, **window}

    def counted(value: dict[str, Any]) -> dict[str, Any]:
        kept = {
            key: item for key, item in value.items() if key not in ("appName", "from", "to", "sessionId", "userHash")
        }
        return {**kept, "eventTypes": kept.get("eventTypes") or ["click"]}

    if isinstance(variables.get("target"), dict):
        variables["target"] = counted(variables["target"])
    if "steps" in variables:
        steps = [step for step in variables["steps"] or [] if isinstance(step, dict)][:10]
        variables["steps"] = [counted(step) for step in steps + [{} for _ in range(2 - len(steps))]]
    for name, lowest, highest, usual in (
        ("breakdownTop", 1, 100, 5),
        ("top", 1, 100, 10),
        ("within", 1, 2**31 - 1, 3600),
    ):
        if name in variables and (not isinstance(variables[name], int) or not lowest <= variables[name] <= highest):
            variables[name] = usual


def apply_tweak(payload: dict[str, Any], tweak: tuple[Any, ...], field_name: str) -> None:
    """Change the hoisted variables the way `TWEAKS` drew (see there)."""
    variables = payload["variables"]
    if tweak[0] == "description":
        if field_name in MUTATIONS:
            for value in variables.values():
                first = value[0] if isinstance(value, list) and value else value
                if isinstance(first, dict):
                    first["description"] = tweak[1]
                    return
        return
    _, index, nasty = tweak
    slots: list[tuple[Any, Any]] = []  # (container, key) of every string in the variables
    pending: list[Any] = [variables]
    while pending:
        container = pending.pop()
        items = container.items() if isinstance(container, dict) else enumerate(container)
        for key, value in items:
            if isinstance(value, str):
                slots.append((container, key))
            elif isinstance(value, (dict, list)):
                pending.append(value)
    if slots:
        container, key = slots[index % len(slots)]
        container[key] = nasty


def _error_text(error: dict[str, Any]) -> str:
    return json.dumps({"message": error.get("message"), "extensions": error.get("extensions")}, ensure_ascii=False)


def check_response(
    field_name: str, caller: str, agent: str, body: bytes, response: httpx.Response, elapsed: float, max_body: int
) -> dict[str, Any]:
    """Every invariant that holds for any request; returns the parsed body."""
    where = (
        f"\ncaller={caller} agent={agent}\nrequest: {body[:2000]!r}"
        f"\nresponse {response.status_code}: {response.text[:2000]}"
    )
    assert elapsed < REQUEST_TIMEOUT, f"took {elapsed:.2f}s{where}"
    status = response.status_code
    assert status < 500, f"server error{where}"
    assert status in (200, 400) or (status == 413 and len(body) > max_body), f"unexpected HTTP status{where}"
    try:
        payload = response.json()
    except ValueError:
        raise AssertionError(f"not JSON{where}") from None
    assert isinstance(payload, dict) and ("data" in payload or "errors" in payload), f"not a GraphQL response{where}"
    errors = payload.get("errors")
    if "errors" in payload:
        assert isinstance(errors, list) and errors, f"`errors` must be a non-empty list{where}"
        for error in errors:
            assert isinstance(error, dict) and isinstance(error.get("message"), str), f"malformed error{where}"
            assert error["message"] != MASKED_MESSAGE, f"unhandled exception in a resolver (masked error){where}"
            if "path" in error:  # raised while executing: ours, written for the caller, carry a code
                assert (error.get("extensions") or {}).get("code"), f"execution error without a code{where}"
            leaked = {m.group(0) for m in LEAK_MARKERS.finditer(_error_text(error))}
            sent = body.decode("utf-8", "replace")
            leaked = {marker for marker in leaked if marker.lower() not in sent.lower()}  # not just echoing the input
            assert not leaked, f"error text leaks internals {leaked}{where}"
    else:
        assert isinstance(payload.get("data"), dict), f"no errors and no data{where}"
    data = payload.get("data")
    assert data is None or isinstance(data, dict), f"`data` is not an object{where}"
    if status != 200:
        assert data is None, f"data with HTTP {status}{where}"
    value = next(iter(data.values())) if isinstance(data, dict) and len(data) == 1 else None
    if field_name in ADMIN_ONLY and caller != "admin":
        if field_name == "_entities" and isinstance(value, list):
            assert all(item is None for item in value), f"entities shown to a non-admin{where}"
        else:
            assert value is None, f"admin data shown to a non-admin{where}"
    if field_name in MUTATIONS:
        if caller not in AUTHENTICATED:
            assert value is None, f"event tracked for an unauthenticated caller{where}"
        results = value if isinstance(value, list) else [value] if isinstance(value, dict) else []
        for result in results:
            check_track_result(result, agent, where)
    return payload


def check_track_result(result: dict[str, Any], agent: str, where: str) -> None:
    status, reason = result.get("status"), result.get("reason")
    if "status" in result and "accepted" in result:
        assert result["accepted"] == (status != "DROPPED"), f"accepted disagrees with status{where}"
    if "status" in result and "eventId" in result:
        assert (result["eventId"] is None) == (status == "DROPPED"), f"eventId disagrees with status{where}"
    if "status" in result and "reason" in result:
        assert (reason is None) == (status != "DROPPED"), f"reason disagrees with status{where}"
    if "reason" in result and "retryable" in result:
        assert result["retryable"] == (reason in ("RATE_LIMITED", "UNAVAILABLE")), (
            f"retryable disagrees with reason{where}"
        )
    if agent in BOT_AGENTS:  # dropped before the write, so not even DUPLICATE
        assert status in (None, "DROPPED") and result.get("accepted") in (None, False), f"bot event recorded{where}"


def run_operation(fuzz: Fuzz, root: str, field_name: str, mode: GenerationMode, max_examples: int) -> Stats:
    live, schema = fuzz.live, fuzz.schema
    assert live.settings is not None
    operation = schema[root][field_name]
    stats = fuzz.stats.setdefault(field_name, Stats())
    callers = MUTATION_CALLERS if root == "Mutation" else QUERY_CALLERS
    admin_checks = [not_a_server_error]
    max_body = live.settings.max_body_bytes

    @hypothesis_settings(
        max_examples=max_examples,
        deadline=None,
        derandomize=True,
        database=None,
        phases=[Phase.explicit, Phase.generate, Phase.shrink],
        suppress_health_check=list(HealthCheck),
        print_blob=False,
    )
    @given(
        case=operation.as_strategy(generation_mode=mode),
        caller=callers,
        agent=AGENT_CHOICES,
        hoist=st.booleans(),
        tweak=TWEAKS,
    )
    def send(case: Any, caller: str, agent: str, hoist: bool, tweak: tuple[Any, ...] | None) -> None:
        payload: dict[str, Any] = {"query": case.body}
        if hoist and (hoisted := hoist_arguments(case.body, schema.client_schema)) is not None:
            payload = hoisted
            stats.with_variables += 1
            group_by = payload["variables"].get("groupBy")
            if isinstance(group_by, list):  # duplicates are refused before any SQL; literal cases keep them
                payload["variables"]["groupBy"] = list(dict.fromkeys(map(str, group_by)))
            if field_name in WINDOWED:  # a missing or too long window is refused before any SQL; literal cases keep it
                bound_window(payload["variables"])
            if tweak is not None:
                apply_tweak(payload, tweak, field_name)
        headers = {"content-type": "application/json"}
        if AGENTS[agent] is not None:
            headers["user-agent"] = AGENTS[agent]  # type: ignore[assignment]
        if CALLERS[caller] is not None:
            headers["authorization"] = CALLERS[caller]  # type: ignore[assignment]
        body = json.dumps(payload).encode()
        response, elapsed = live.post(body, headers)
        result = check_response(field_name, caller, agent, body, response, elapsed, max_body)
        if caller == "admin" and mode is GenerationMode.POSITIVE and not hoist:
            case.validate_response(response, checks=admin_checks, headers=headers)  # Schemathesis's own verdict
        stats.sent += 1
        stats.callers[caller] += 1
        stats.status_codes[response.status_code] += 1
        data = result.get("data") or {}
        if not result.get("errors") and data and all(value is not None for value in data.values()):
            stats.executed += 1
            value = next(iter(data.values()))
            for item in value if isinstance(value, list) else [value]:
                if isinstance(item, dict) and "status" in item:
                    stats.statuses[item["status"]] += 1
                if isinstance(item, dict) and item.get("reason"):
                    stats.reasons[item["reason"]] += 1

    send()
    return stats


# --- what may be stored -------------------------------------------------------------------

HEX64 = re.compile(r"[0-9a-f]{64}")
TOKEN_128 = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:-]{0,127}")
EMAIL = re.compile(r"[^\s@/?#]+@[^\s@/?#]+\.[A-Za-z]{2,}")
PII_FLAT = {re.sub(r"[^a-z0-9]", "", key.lower()) for key in PII_KEYS}  # beside the app's own rule


def row_problems(row: asyncpg.Record, settings: Settings) -> list[str]:
    """Why a stored row should never have been accepted (empty when it is fine)."""
    problems = []
    if row["app_name"] not in settings.allowed_apps:
        problems.append("app_name not allowlisted")
    if row["event_type"] not in settings.allowed_event_types:
        problems.append("event_type not allowlisted")
    if row["entity_type"] is not None and row["entity_type"] not in settings.allowed_entity_types:
        problems.append("entity_type not allowlisted")
    if row["entity_id"] is not None and (row["entity_type"] is None or not TOKEN_128.fullmatch(row["entity_id"])):
        problems.append("entity_id without type or malformed")
    if not HEX64.fullmatch(row["user_hash"] or ""):
        problems.append("user_hash is not 64 hex digits")
    if not TOKEN_128.fullmatch(row["client_event_id"] or ""):
        problems.append("client_event_id malformed")
    if row["session_id"] is not None and not TOKEN_128.fullmatch(row["session_id"]):
        problems.append("session_id malformed")
    route = row["route"]
    if route is not None and (len(route) > 512 or re.search(r"[\x00-\x1f\x7f?#]", route) or EMAIL.search(route)):
        problems.append("route holds a query string, control characters or an email")
    if row["device_type"] not in ("mobile", "tablet", "desktop", "other"):
        problems.append("device_type unknown")
    if row["description"] is not None:
        description = json.loads(row["description"])
        if not isinstance(description, dict):
            problems.append("description is not an object")
        elif len(json.dumps(description, separators=(",", ":"), ensure_ascii=False).encode()) > 2048:
            problems.append("description over 2 KiB")
        else:
            pending: list[tuple[Any, int]] = [(description, 0)]
            while pending:
                value, depth = pending.pop()
                if depth > 16:
                    problems.append("description nests too deep")
                    break
                if isinstance(value, dict):
                    for key, item in value.items():
                        if _pii_key(key) or re.sub(r"[^a-z0-9]", "", key.lower()) in PII_FLAT:
                            problems.append(f"description key {key!r} looks like personal data")
                        pending.append((item, depth + 1))
                elif isinstance(value, list):
                    pending.extend((item, depth + 1) for item in value)
                elif isinstance(value, str) and ("\x00" in value or EMAIL.search(value)):
                    problems.append("description holds an email or NUL")
    return problems


def assert_rows_valid(live: LiveApp) -> list[asyncpg.Record]:
    assert live.settings is not None
    rows = live.rows()
    bad = [(dict(row), problems) for row in rows if (problems := row_problems(row, live.settings))]
    assert not bad, f"{len(bad)} invalid rows stored, e.g. {bad[:3]}"
    return rows


# --- the tests ----------------------------------------------------------------------------


def test_every_root_field_of_the_live_schema_is_fuzzed(fuzz: Fuzz) -> None:
    served = {(root, name) for root in ("Query", "Mutation") for name in fuzz.schema[root]}
    assert served == set(OPERATIONS), "add new root fields to OPERATIONS (and their budgets)"


@pytest.mark.parametrize(("root", "field_name"), OPERATIONS, ids=[f"{r}.{f}" for r, f in OPERATIONS])
def test_fuzz_operation(fuzz: Fuzz, root: str, field_name: str) -> None:
    live = fuzz.live
    before = len(live.rows())
    fast_before = live.fast_track.answered
    started = time.perf_counter()
    run_operation(fuzz, root, field_name, GenerationMode.POSITIVE, POSITIVE_EXAMPLES[field_name])
    if NEGATIVE_EXAMPLES[field_name]:
        run_operation(fuzz, root, field_name, GenerationMode.NEGATIVE, NEGATIVE_EXAMPLES[field_name])
    stats = fuzz.stats[field_name]
    rows = assert_rows_valid(live)
    summary = f"{root}.{field_name}: {stats} in {time.perf_counter() - started:.1f}s, rows {before} -> {len(rows)}"
    print(summary)
    assert stats.executed >= MIN_EXECUTED[field_name], f"too few executed operations: {summary}"
    if POSITIVE_EXAMPLES[field_name] >= 20:  # both sides of the access rules were tried
        assert stats.callers["admin"] and set(stats.callers) - {"admin"}, summary
    if root == "Mutation":
        assert len(rows) - before >= MIN_ACCEPTED[field_name], f"too few events stored: {summary}"
        assert stats.statuses["ACCEPTED"] + stats.statuses["DUPLICATE"] > 0 and stats.statuses["DROPPED"] > 0, summary
        assert live.fast_track.answered > fast_before, f"the fast path answered none: {summary}"
    else:
        assert len(rows) == before, f"a query stored events: {summary}"


# --- inputs the fuzzer reaches rarely, pinned --------------------------------------------

ENTITIES = "query($r: [_Any!]!) { _entities(representations: $r) { ... on Event { id appName } } }"


def test_malformed_entity_representations_are_bad_user_input_not_unexpected_errors(fuzz: Fuzz) -> None:
    """A representation without `__typename` (or naming an unknown type, not an object, or
    with other keys than `id`) is the caller's mistake, not a server fault: each bad item gets
    a BAD_USER_INPUT error of its own, never the masked "Unexpected error", and good items in
    the same call still resolve."""
    known = fuzz.seeded.event_ids[0]
    representations = [
        {"id": known},
        {"__typename": "Nope", "id": known},
        {"__typename": "Query", "id": known},
        {"__typename": 3, "id": known},
        {"__typename": ["Event"], "id": known},
        {"__typename": "Event"},
        {"__typename": "Event", "id": known, "extra": 1},
        "Event",
        7,
        {"__typename": "Event", "id": known},
        {"__typename": "Event", "id": "not-a-uuid"},
    ]
    for variables in (True, False):
        if variables:
            body = fuzz.live.gql(ENTITIES, {"r": representations})
        else:  # the same as literals, as the fuzzer sent them (only GraphQL-expressible ones)
            literal = (
                f'[{{ id: "{known}" }}, {{ __typename: "Nope", id: "{known}" }}, '
                f'{{ __typename: "Event", id: "{known}", extra: 1 }}, 7]'
            )
            body = fuzz.live.gql(f"{{ _entities(representations: {literal}) {{ ... on Event {{ id }} }} }}")
        payload_errors = body.get("errors") or []
        assert payload_errors, body
        for error in payload_errors:
            assert error["message"] != MASKED_MESSAGE, body
            assert error["extensions"]["code"] == "BAD_USER_INPUT", body
        entities = body["data"]["_entities"]
        if variables:
            assert [e["id"] if e else None for e in entities] == [None] * 9 + [known, None]
            assert sorted(error["path"][1] for error in payload_errors) == list(range(9))
        else:
            assert entities == [None, None, None, None]


FILTERED_READS = [
    "query($f: EventFilter) { events(filter: $f) { edges { node { id } } } }",
    "query($f: EventFilter) { eventStats(filter: $f) { buckets { events } } }",
    "query($f: EventFilter) { eventStats(filter: $f, groupBy: [ROUTE]) { totals { events } } }",
]


@pytest.mark.parametrize(
    ("event_filter", "named"),
    [
        ({"appName": "admin\x00console"}, "filter.appName"),
        ({"route": "/orders\x00"}, "filter.route"),
        ({"browserFamily": "x\ud800"}, "filter.browserFamily"),
        ({"eventTypes": ["click", "vi\x00ew"]}, "filter.eventTypes"),
        ({"eventTypes": ["\udfff"]}, "filter.eventTypes"),
        ({"from": "0001-01-01T00:00:00+05:00"}, "filter.from"),
        ({"to": "9999-12-31T23:00:00-05:00"}, "filter.to"),
    ],
    ids=[
        "nul-app",
        "nul-route",
        "surrogate-browser",
        "nul-event-type",
        "surrogate-event-type",
        "from-before-year-1",
        "to-after-9999",
    ],
)
def test_filters_postgres_cannot_hold_are_bad_user_input_not_unexpected_errors(
    fuzz: Fuzz, event_filter: dict[str, Any], named: str
) -> None:
    """A filter string with a NUL character or a lone surrogate (in JSON variables, `"\\u0000"`
    / `"\\ud800"`), or a from/to whose UTC value falls outside years 1-9999, cannot be sent to
    PostgreSQL: it is refused as BAD_USER_INPUT naming the field, before any SQL, never the
    masked "Unexpected error"."""
    for query in FILTERED_READS:
        body = fuzz.live.gql(query, {"f": event_filter})
        assert body["data"] is None, body
        [error] = body["errors"]
        assert error["extensions"]["code"] == "BAD_USER_INPUT", body
        assert error["message"].startswith(named), body


def test_filter_window_with_offsets_still_matches_in_utc(fuzz: Fuzz) -> None:
    """from/to are compared in UTC: a window given with an offset selects the same events."""
    query = "query($f: EventFilter) { events(filter: $f, first: 1000) { edges { node { id } } } }"
    now = dt.datetime.now(dt.UTC)
    utc = {"from": (now - dt.timedelta(days=2)).isoformat(), "to": (now + dt.timedelta(hours=1)).isoformat()}
    minus_7 = dt.timezone(dt.timedelta(hours=-7))
    shifted = {key: dt.datetime.fromisoformat(value).astimezone(minus_7).isoformat() for key, value in utc.items()}
    answers = [fuzz.live.gql(query, {"f": window})["data"]["events"]["edges"] for window in (utc, shifted)]
    assert answers[0] == answers[1] and len(answers[0]) >= len(SEED_EVENTS)
