"""The baseline for bench/ingest.py: a bare Starlette endpoint that parses a JSON body and
does one asyncpg INSERT of an equivalent events row (no GraphQL, no pipeline, no batching).

Run by the benchmark as `uvicorn bench.bare:app` with BENCH_DATABASE_URL set.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import os
import uuid
from collections.abc import AsyncIterator

import asyncpg
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

INSERT = """
INSERT INTO events (created_at, app_name, event_type, route, entity_type, entity_id, user_hash,
                    session_id, device_type, browser_family, os_family, client_event_id, description)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13::jsonb)
RETURNING id
"""


async def track(request: Request) -> JSONResponse:
    body = await request.json()
    pool: asyncpg.Pool = request.app.state.pool
    event_id = await pool.fetchval(
        INSERT,
        dt.datetime.now(dt.UTC),
        body["appName"],
        body["eventType"],
        body.get("route"),
        body.get("entityType"),
        body.get("entityId"),
        hashlib.sha256(b"bare").hexdigest(),
        body.get("sessionId"),
        "desktop",
        "Chrome",
        "Windows",
        body.get("clientEventId") or str(uuid.uuid4()),
        None,
    )
    return JSONResponse({"status": "ACCEPTED", "eventId": str(event_id)})


@contextlib.asynccontextmanager
async def lifespan(app: Starlette) -> AsyncIterator[None]:
    app.state.pool = await asyncpg.create_pool(os.environ["BENCH_DATABASE_URL"], min_size=4, max_size=15)
    try:
        yield
    finally:
        await app.state.pool.close()


app = Starlette(routes=[Route("/track", track, methods=["POST"])], lifespan=lifespan)
