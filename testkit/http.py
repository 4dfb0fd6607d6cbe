"""Real HTTP requests to the app: in-process through its ASGI interface (lifespan running),
or to a live server's URL."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from typing import Any

import httpx

from app.cli.serve import create_app
from app.config import Settings


@contextlib.asynccontextmanager
async def asgi_client(settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    """Real HTTP requests through the ASGI app built from `settings`, its lifespan running."""
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app, client=("203.0.113.7", 51515))
        async with httpx.AsyncClient(transport=transport, base_url="http://admin.example.test") as http:
            yield http


async def gql(
    client: httpx.AsyncClient, query: str, variables: dict | None = None, headers: dict | None = None
) -> dict:
    """POST one GraphQL operation; the parsed body of a 200 or 400 answer."""
    response = await client.post("/graphql", json={"query": query, "variables": variables or {}}, headers=headers or {})
    assert response.status_code in (200, 400), response.text
    return response.json()


async def graphql_post(base_url: str, query: str, variables: dict[str, Any], token: str) -> dict[str, Any]:
    """POST one operation to a live server with a bearer token; its `data` (errors fail)."""
    async with httpx.AsyncClient(base_url=base_url, timeout=10) as http:
        response = await http.post(
            "/graphql", json={"query": query, "variables": variables}, headers={"authorization": f"Bearer {token}"}
        )
    body = response.json()
    assert not body.get("errors"), body["errors"]
    return body["data"]
