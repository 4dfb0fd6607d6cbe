"""@signals/react in a real browser against the real service: the example page (built by Vite
from clients/react/example against the tsc-built package) in headless Chromium, its clicks
read back from the database with SQL.

`node tests/e2e/browser/react.mjs` drives the page; its files are served on the API's origin
by the browser harness, every /graphql request reaches the real server. "The API is down" is
the server stopped: its port refuses connections; "back" is a new server on the same port.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from pathlib import Path

import asyncpg
import pytest

from app.config import Settings
from app.storage.database import asyncpg_dsn
from testkit.browser import run_script, start_script
from testkit.database import migrated_database
from testkit.react import build_example
from testkit.servers import LiveServer
from testkit.settings import make_settings
from testkit.tokens import token

EVENT = "journey_create_clicked"


@pytest.fixture(scope="module")
def example(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_example(tmp_path_factory.mktemp("react-example") / "dist")


@pytest.fixture(scope="module")
async def react_db(pg_server: str) -> AsyncIterator[str]:
    async with migrated_database(pg_server) as url:
        yield url


@pytest.fixture(scope="module")
def react_settings(react_db: str, tmp_path_factory: pytest.TempPathFactory) -> Settings:
    # the allowlists `signals codegen` would give the page's types
    return make_settings(
        react_db,
        tmp_path_factory.mktemp("react"),
        allowed_event_types=[EVENT, "route_view"],
        allowed_entity_types=["journey"],
    )


async def session_rows(db_url: str, session_id: str, expect: int, timeout: float = 8.0) -> list[asyncpg.Record]:
    """The session's rows once `expect` are there, then once more after a pause (a late
    duplicate would show)."""
    conn = await asyncpg.connect(asyncpg_dsn(db_url))
    try:
        query = (
            "SELECT app_name, event_type, route, entity_type, entity_id, client_event_id, description, browser_family"
            " FROM events WHERE session_id = $1 ORDER BY created_at"
        )
        deadline = time.monotonic() + timeout
        rows = await conn.fetch(query, session_id)
        while len(rows) < expect and time.monotonic() < deadline:
            await asyncio.sleep(0.1)
            rows = await conn.fetch(query, session_id)
        await asyncio.sleep(0.5)
        return await conn.fetch(query, session_id)
    finally:
        await conn.close()


@pytest.mark.parametrize("transport", ["fetch", "apollo"])
async def test_a_click_stores_exactly_one_row_with_the_right_fields(
    example: Path, react_settings: Settings, react_db: str, transport: str
) -> None:
    server = await LiveServer(react_settings).start()
    try:
        result = await run_script(
            "react.mjs", "click", server.url, token(roles=["member"], subject=f"react-{transport}"),
            dist=str(example), transport=transport,
        )  # fmt: skip
    finally:
        await server.stop()
    assert result["errors"] == [] and result["created"] == 1
    rows = await session_rows(react_db, result["sessionId"], expect=2)
    clicks = [row for row in rows if row["event_type"] == EVENT]
    assert len(clicks) == 1, rows
    click = clicks[0]
    assert click["client_event_id"] == result["clientEventId"]
    assert (click["app_name"], click["entity_type"], click["entity_id"]) == ("admin-console", "journey", "j_1")
    assert click["route"] == "/journeys/:id"  # useTrackRoute's pattern, not the page's path
    assert json.loads(click["description"]) == {"source": "example"}
    assert click["browser_family"] == "Chrome"
    views = [row for row in rows if row["event_type"] == "route_view"]
    assert [row["route"] for row in views] == ["/journeys/:id"]  # one view, StrictMode or not
    assert len(rows) == 2


async def test_the_page_keeps_working_while_the_api_is_down_and_delivers_once_it_is_back(
    example: Path, react_settings: Settings, react_db: str
) -> None:
    server = await LiveServer(react_settings).start()
    port = server.port
    script = await start_script(
        "react.mjs", "down", server.url, token(roles=["member"], subject="react-offline"), dist=str(example)
    )
    try:
        up = await script.read()
        assert up["phase"] == "up"
        await server.stop()  # the API is gone: connections are refused
        await script.send("down")
        down = await script.read()
        # no uncaught error, the UI kept responding, the tracker retried and kept the events
        assert down["errors"] == []
        assert down["createdRightAway"] == 1 and down["created"] == 2
        assert sum("network error, will retry" in line for line in down["errorLines"]) >= 2
        assert all(cid in (down["queued"] or "") for cid in down["ids"])
        server = await LiveServer(react_settings, port=port).start()
        await script.send("back")
        back = await script.read()
        await script.finish()
    finally:
        await server.stop()
    assert back["errors"] == [] and back["queued"] is None
    rows = await session_rows(react_db, up["sessionId"], expect=3)
    clicks = sorted(row["client_event_id"] for row in rows if row["event_type"] == EVENT)
    assert clicks == sorted(down["ids"])  # each click stored once, under the id it was given
    assert len(rows) == 3  # and the route view
