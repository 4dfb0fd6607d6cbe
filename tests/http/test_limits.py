"""Limits on one HTTP request body (RequestLimits): its size (413) over real HTTP, announced
or streamed; JSON nested too deeply to decode (400, not 500); and, at the ASGI level, a body
that stops arriving (408 within the deadline) against one that is slow but steady."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.http.limits import RequestLimits
from testkit.http import asgi_client, gql
from testkit.settings import make_settings


@pytest.fixture
async def strict_client(migrated_db: str, tmp_path: Path) -> AsyncIterator[httpx.AsyncClient]:
    async with asgi_client(make_settings(migrated_db, tmp_path, max_body_bytes=4096)) as http:
        yield http


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
