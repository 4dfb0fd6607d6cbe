"""Request limits over real HTTP: body size (413), depth, aliases, tokens, introspection,
and masked unexpected errors (no internal text, no stack trace)."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path

import asyncpg
import httpx
import pytest

from app.db import asyncpg_dsn
from app.hardening import MASKED_MESSAGE
from app.migrations import migrate
from tests.conftest import asgi_client, gql, make_settings


@pytest.fixture
async def strict_client(migrated_db: str, tmp_path: Path) -> AsyncIterator[httpx.AsyncClient]:
    settings = make_settings(
        migrated_db, tmp_path, graphql_max_depth=2, graphql_max_aliases=3, graphql_max_tokens=200,
        introspection=False, max_body_bytes=4096,
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
