"""Request limits over real HTTP: body size (413), depth, aliases, tokens, introspection,
and masked unexpected errors (no internal text, no stack trace); the body deadline (408)
at the ASGI level. Slow clients against a real `signals serve`: tests/test_abuse.py."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from pathlib import Path

import asyncpg
import httpx
import pytest
from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.graphql.extensions import MASKED_MESSAGE
from app.http.limits import RequestLimits
from app.storage.database import asyncpg_dsn
from app.storage.migrations import migrate
from tests.conftest import asgi_client, gql, make_settings


@pytest.fixture
async def strict_client(migrated_db: str, tmp_path: Path) -> AsyncIterator[httpx.AsyncClient]:
    settings = make_settings(
        migrated_db,
        tmp_path,
        graphql_max_depth=2,
        graphql_max_aliases=3,
        graphql_max_tokens=200,
        introspection=False,
        max_body_bytes=4096,
    )
    async with asgi_client(settings) as http:
        yield http


def only_error(body: dict) -> str:
    (error,) = body["errors"]
    return error["message"]


async def test_oversized_body_gets_413_with_a_clear_message(strict_client: httpx.AsyncClient) -> None:
    padding = "x" * 5000
    response = await strict_client.post("/graphql", json={"query": "{ __typename }", "variables": {"pad": padding}})
    assert response.status_code == 413
    body = response.json()
    assert body["errors"][0]["extensions"]["code"] == "PAYLOAD_TOO_LARGE"
    assert "4096 bytes" in body["errors"][0]["message"]

    async def chunks() -> AsyncIterator[bytes]:  # no Content-Length: counted as it streams
        yield b'{"query": "{ __typename }", "variables": {"pad": "'
        for _ in range(10):
            yield b"y" * 1000
        yield b'"}}'

    streamed = await strict_client.post("/graphql", content=chunks(), headers={"content-type": "application/json"})
    assert streamed.status_code == 413 and streamed.json()["errors"][0]["extensions"]["code"] == "PAYLOAD_TOO_LARGE"
    small = await strict_client.post("/graphql", json={"query": "{ __typename }"})
    assert small.status_code == 200 and small.json() == {"data": {"__typename": "Query"}}


async def test_depth_limit(strict_client: httpx.AsyncClient) -> None:
    allowed = await gql(strict_client, "{ events { edges { cursor } } }")  # depth 2
    assert allowed["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"  # validated, then refused by auth
    for too_deep in (
        "{ events { edges { node { id } } } }",
        "query { events { ...E } } fragment E on EventConnection { edges { node { id } } }",
    ):
        assert "exceeds maximum operation depth of 2" in only_error(await gql(strict_client, too_deep))


async def test_alias_limit(strict_client: httpx.AsyncClient) -> None:
    body = await gql(strict_client, "{ a: __typename b: __typename c: __typename d: __typename }")
    assert "aliases" in only_error(body)
    assert (await gql(strict_client, "{ a: __typename b: __typename c: __typename }")) == {
        "data": {"a": "Query", "b": "Query", "c": "Query"}
    }


async def test_token_limit(strict_client: httpx.AsyncClient) -> None:
    many = "{ " + " ".join(["__typename"] * 250) + " }"
    assert "token" in only_error(await gql(strict_client, many)).lower()


async def test_introspection_off_when_configured(strict_client: httpx.AsyncClient, client: httpx.AsyncClient) -> None:
    query = "{ __schema { queryType { name } } }"
    refused = await gql(strict_client, query)
    assert refused["data"] is None and "introspection has been disabled" in refused["errors"][0]["message"]
    assert (await gql(client, query))["data"]["__schema"]["queryType"]["name"] == "Query"  # development default


async def test_unexpected_errors_are_masked(empty_db: str, tmp_path: Path, admin_headers: dict[str, str]) -> None:
    await migrate(empty_db)
    async with asgi_client(make_settings(empty_db, tmp_path)) as client:
        conn = await asyncpg.connect(asyncpg_dsn(empty_db))
        try:
            await conn.execute("DROP TABLE events")  # the database breaks under the running service
        finally:
            await conn.close()
        body = await gql(client, "{ events { edges { cursor } } }", None, admin_headers)
    assert only_error(body) == MASKED_MESSAGE
    text = json.dumps(body)
    assert "events" not in text.replace('"events"', "") and "Traceback" not in text and "relation" not in text


async def test_parse_and_validation_refusals_carry_a_code(strict_client: httpx.AsyncClient) -> None:
    cases = {
        "{ events { edges { node { id } } } }": "GRAPHQL_VALIDATION_FAILED",  # too deep
        "{ a: __typename b: __typename c: __typename d: __typename }": "GRAPHQL_VALIDATION_FAILED",  # aliases
        "{ " + " ".join(["__typename"] * 250) + " }": "GRAPHQL_PARSE_FAILED",  # tokens
        "{ __typename(": "GRAPHQL_PARSE_FAILED",
        "{ __schema { queryType { name } } }": "GRAPHQL_VALIDATION_FAILED",  # introspection off
    }
    for query, code in cases.items():
        body = await gql(strict_client, query)
        assert body["errors"] and {error["extensions"]["code"] for error in body["errors"]} == {code}, (query, body)


async def test_json_nested_too_deeply_is_a_400_not_a_500(client: httpx.AsyncClient) -> None:
    """json.loads raises RecursionError (not ValueError) past ~1000 levels: both the fast path
    and Strawberry would answer 500 without the middleware."""
    deep = b"[" * 20_000 + b"]" * 20_000
    for query in ("{ __typename }", "mutation($i: [EventInput!]!) { trackEvents(inputs: $i) { status } }"):
        payload = b'{"query": ' + json.dumps(query).encode() + b', "variables": {"i": ' + deep + b"}}"
        response = await client.post("/graphql", content=payload, headers={"content-type": "application/json"})
        assert response.status_code == 400, response.text
        (error,) = response.json()["errors"]
        assert error["extensions"]["code"] == "BAD_REQUEST" and "nested too deeply" in error["message"]
    assert (await gql(client, "{ __typename }")) == {"data": {"__typename": "Query"}}


# --- RequestLimits at the ASGI level: a body that stops arriving ------------------------------


async def _read_body_app(scope: Scope, receive: Receive, send: Send) -> None:
    body = await Request(scope, receive).body()
    await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"text/plain")]})
    await send({"type": "http.response.body", "body": b"got %d" % len(body)})


async def _call(app: ASGIApp, receive: Receive) -> tuple[int, dict[bytes, bytes], bytes]:
    sent: list[Message] = []

    async def send(message: Message) -> None:
        sent.append(message)

    scope = {"type": "http", "method": "POST", "path": "/graphql", "headers": [(b"content-type", b"application/json")]}
    await app(scope, receive, send)
    start, *bodies = sent
    return start["status"], dict(start["headers"]), b"".join(m.get("body", b"") for m in bodies)


async def test_body_that_stops_arriving_gets_408_within_the_deadline() -> None:
    stalled = asyncio.Event()  # never set: the client went quiet mid-body
    chunks = [{"type": "http.request", "body": b'{"query": "{ __typ', "more_body": True}]

    async def receive() -> Message:
        if chunks:
            return chunks.pop(0)
        await stalled.wait()
        raise AssertionError("unreachable")

    started = time.monotonic()
    status, headers, body = await _call(RequestLimits(_read_body_app, max_bytes=4096, body_timeout=0.3), receive)
    elapsed = time.monotonic() - started
    assert status == 408 and 0.25 < elapsed < 2, elapsed
    assert headers[b"connection"] == b"close"  # the connection is not kept for the trickle
    (error,) = json.loads(body)["errors"]
    assert error["extensions"] == {"code": "REQUEST_TIMEOUT", "timeoutSeconds": 0.3}
    assert "0.3 s" in error["message"]


async def test_slow_but_steady_body_within_the_deadline_is_served() -> None:
    parts = [b'{"query": ', b'"{ __typename }"', b"}"]

    async def receive() -> Message:
        await asyncio.sleep(0.05)
        part = parts.pop(0)
        return {"type": "http.request", "body": part, "more_body": bool(parts)}

    status, _, body = await _call(RequestLimits(_read_body_app, max_bytes=4096, body_timeout=1.0), receive)
    assert status == 200 and body == b"got 27"


async def test_deadline_does_not_apply_once_the_body_is_complete() -> None:
    """Waiting for the client to disconnect after the body (streaming responses) is not limited."""
    messages = [{"type": "http.request", "body": b"{}", "more_body": False}]

    async def receive() -> Message:
        if messages:
            return messages.pop(0)
        await asyncio.sleep(0.4)  # longer than the deadline
        return {"type": "http.disconnect"}

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        await receive()
        assert (await receive())["type"] == "http.disconnect"
        await send({"type": "http.response.start", "status": 204, "headers": []})
        await send({"type": "http.response.body", "body": b""})

    status, _, _ = await _call(RequestLimits(app, max_bytes=4096, body_timeout=0.1), receive)
    assert status == 204
