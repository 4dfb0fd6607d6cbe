"""Limits on what one GraphQL document may ask, over real HTTP: depth, aliases, tokens,
introspection, the codes on parse and validation refusals, and masked unexpected errors (no
internal text, no stack trace). Limits on the HTTP request itself: tests/http/test_limits.py;
slow clients against a real `signals serve`: tests/e2e/test_abuse.py."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path

import asyncpg
import httpx
import pytest

from app.graphql.extensions import MASKED_MESSAGE
from app.storage.database import asyncpg_dsn
from app.storage.migrations import migrate
from testkit.http import asgi_client, gql
from testkit.settings import make_settings


@pytest.fixture
async def strict_client(migrated_db: str, tmp_path: Path) -> AsyncIterator[httpx.AsyncClient]:
    settings = make_settings(
        migrated_db,
        tmp_path,
        graphql_max_depth=2,
        graphql_max_aliases=3,
        graphql_max_tokens=200,
        introspection=False,
    )
    async with asgi_client(settings) as http:
        yield http


def only_error(body: dict) -> str:
    (error,) = body["errors"]
    return error["message"]


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
