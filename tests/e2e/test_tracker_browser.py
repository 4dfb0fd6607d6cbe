"""signals.js in a real browser against the real service: the demo page's clicks become rows.

Each test runs `node tests/e2e/browser/demo.mjs <scenario> ...` (headless Debian Chromium via
playwright-core) against the app served by uvicorn on a free loopback port, then reads the
database with SQL. Nothing is mocked: "the API is down" is a port nobody listens on.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator

import asyncpg
import pytest

from app.storage.database import asyncpg_dsn
from testkit.browser import ARTIFACTS, run_script
from testkit.database import fetch, migrated_database
from testkit.processes import free_port
from testkit.servers import LiveServer
from testkit.settings import make_settings
from testkit.tokens import token

ROW_COLUMNS = "app_name, event_type, route, entity_type, entity_id, session_id, client_event_id, description"


@pytest.fixture(scope="module")
async def tracker_db(pg_server: str) -> AsyncIterator[str]:
    async with migrated_database(pg_server) as url:
        yield url


@pytest.fixture(scope="module")
async def live(tracker_db: str, tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[LiveServer]:
    server = await LiveServer(make_settings(tracker_db, tmp_path_factory.mktemp("tracker"))).start()
    try:
        yield server
    finally:
        await server.stop()


async def stored_rows(db_url: str, session_id: str, expect: int, timeout: float = 8.0) -> list[asyncpg.Record]:
    """The session's rows once `expect` of them are there (ingest may write a moment after it
    answers), then once more after a pause, so that a late duplicate would be seen too."""
    conn = await asyncpg.connect(asyncpg_dsn(db_url))
    try:
        query = f"SELECT {ROW_COLUMNS} FROM events WHERE session_id = $1 ORDER BY created_at, client_event_id"
        deadline = time.monotonic() + timeout
        rows = await conn.fetch(query, session_id)
        while len(rows) < expect and time.monotonic() < deadline:
            await asyncio.sleep(0.1)
            rows = await conn.fetch(query, session_id)
        await asyncio.sleep(0.5)
        return await conn.fetch(query, session_id)
    finally:
        await conn.close()


def is_uuid(value: str) -> bool:
    try:
        return str(uuid.UUID(value)) == value.lower()
    except ValueError:
        return False


async def test_each_click_on_the_demo_page_stores_exactly_one_row(live: LiveServer, tracker_db: str) -> None:
    result = await run_script(
        "demo.mjs", "click", live.url, token(roles=["member"], subject="demo-clicker"), shots=str(ARTIFACTS)
    )
    assert result["errors"] == []
    assert result["clicks"] == 2 and result["queued"] is None  # nothing left unsent
    clicked = {e["clientEventId"]: e for e in result["events"]}
    assert len(clicked) == 2 and all(is_uuid(cid) for cid in clicked)  # a fresh id per call
    assert all("ACCEPTED" in e["result"] for e in result["events"])

    rows = await stored_rows(tracker_db, result["sessionId"], expect=2)
    assert len(rows) == 2, rows
    by_id = {row["client_event_id"]: row for row in rows}
    assert set(by_id) == set(clicked)
    for cid, event in clicked.items():
        row = by_id[cid]
        assert row["event_type"] == event["eventType"]
        assert row["route"] == result["route"] == "/demo/"  # location.pathname by default
        assert row["session_id"] == result["sessionId"] and is_uuid(row["session_id"])
        assert row["app_name"] == "admin-console"
    export = next(row for row in rows if row["event_type"] == "export")
    assert (export["entity_type"], export["entity_id"]) == ("order", "ord_1001")


async def test_page_keeps_working_while_the_api_is_down_and_the_same_tab_delivers_later(
    live: LiveServer, tracker_db: str
) -> None:
    result = await run_script("demo.mjs", "dead", live.url, token(roles=["member"], subject="demo-offline"))
    # While the endpoint refuses connections: the page's own handler ran, nothing was thrown,
    # the tracker retried in the background and kept the events for later.
    assert result["errorsWhileDown"] == [] and result["errors"] == []
    assert result["clicksRightAway"] == 1 and result["whileDown"]["clicks"] == 2
    retries = [line for line in result["whileDown"]["errorLines"] if "network error, will retry" in line]
    assert len(retries) >= 2
    assert result["clientEventId"] in result["whileDown"]["queued"]

    # Back on a live endpoint in the same tab: the kept events go out with their original ids.
    assert "ACCEPTED" in result["result"]
    assert result["afterRecovery"]["sessionId"] == result["whileDown"]["sessionId"]
    assert result["afterRecovery"]["queued"] is None
    rows = await stored_rows(tracker_db, result["whileDown"]["sessionId"], expect=2)
    assert sorted(row["event_type"] for row in rows) == ["export", "search"]
    assert next(row for row in rows if row["client_event_id"] == result["clientEventId"])["event_type"] == "export"


async def test_the_demo_never_sends_its_token_to_another_origin(live: LiveServer, tracker_db: str) -> None:
    """`/demo/?endpoint=<another origin>` (a link someone sent) is ignored: the tracker keeps
    talking to the page's own origin, and the browser makes no request anywhere else."""
    elsewhere = f"http://127.0.0.1:{free_port()}/graphql"
    result = await run_script(
        "demo.mjs", "elsewhere", live.url, token(roles=["member"], subject="demo-linked"), other=elsewhere
    )
    assert result["errors"] == []
    assert result["endpoint"] == "/graphql" and "ACCEPTED" in result["result"]
    assert result["origins"] == [live.url.rstrip("/")]
    rows = await fetch(tracker_db, "SELECT event_type FROM events WHERE client_event_id = $1", result["clientEventId"])
    assert [row["event_type"] for row in rows] == ["export"]


async def test_leaving_the_page_flushes_pending_events(live: LiveServer, tracker_db: str) -> None:
    result = await run_script("demo.mjs", "pagehide", live.url, token(roles=["member"], subject="demo-leaver"))
    assert result["errors"] == []
    assert result["clientEventId"] in result["queued"]  # not sent before the page was left
    rows = await stored_rows(tracker_db, result["sessionId"], expect=1)
    assert [(row["client_event_id"], row["event_type"], row["entity_id"], row["route"]) for row in rows] == [
        (result["clientEventId"], "view", "inv_77", "/demo/:tab")  # the page's getRoute(), not its path
    ]


async def test_an_opted_out_user_is_not_tracked(live: LiveServer, tracker_db: str) -> None:
    result = await run_script("demo.mjs", "optout", live.url, token(roles=["member"], subject="demo-optout"))
    assert result["errors"] == [] and result["clicks"] == 1  # the page works as usual
    assert result["clientEventId"] == "" and result["pending"] == 0 and result["queued"] is None
    assert result["requests"] == []  # not a single call to /graphql, not even on leaving
    assert await stored_rows(tracker_db, result["sessionId"], expect=0) == []


async def test_rate_limited_events_are_retried_with_the_same_id_and_stored_once(
    tracker_db: str, tmp_path_factory: pytest.TempPathFactory
) -> None:
    settings = make_settings(tracker_db, tmp_path_factory.mktemp("limited"), rate_limit="3/2second")
    server = await LiveServer(settings).start()
    try:
        result = await run_script(
            "demo.mjs", "burst", server.url, token(roles=["member"], subject="demo-burst"), clicks="5"
        )
    finally:
        await server.stop()
    assert result["errors"] == []
    limited = [line for line in result["errorLines"] if "RATE_LIMITED" in line and "will retry" in line]
    assert limited, result["errorLines"]  # the server pushed back at least once...
    assert all("ACCEPTED" in line for line in result["results"])  # ...and every event got in
    rows = await stored_rows(tracker_db, result["sessionId"], expect=5)
    assert sorted(row["client_event_id"] for row in rows) == sorted(result["ids"])
