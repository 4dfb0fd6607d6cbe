"""The writer's duplicate lookup uses the unique index whatever the planner believes.

The adversarial case: the writer starts on an empty `events` table whose statistics say so
(analysed while empty, autovacuum off for the table, as on a server with `autovacuum = off`),
its prepared statements are planned and cached, then the table grows by a bulk load that
nothing re-analyses. A plan chosen on those beliefs reads the whole table once per batch;
PostgreSQL's own counter (`pg_stat_user_tables.seq_scan`) shows whether it did.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import uuid
from collections.abc import AsyncIterator

import asyncpg
import pytest

from app.ingest.writer import EventRow, GroupCommitWriter, Stored
from app.privacy.hashing import caller_event_key
from app.storage.database import asyncpg_dsn
from app.storage.migrations import migrate
from testkit.database import create_database, drop_database
from testkit.settings import make_settings

BULK_ROWS = 200_000


def row(client_event_id: str) -> EventRow:
    return EventRow(
        created_at=dt.datetime.now(dt.UTC), app_name="admin-console", event_type="click", route=None,
        entity_type=None, entity_id=None, user_hash="0" * 64, session_id=None, device_type="desktop",
        browser_family="Chrome", os_family="Windows", client_event_id=client_event_id,
        dedup_key=caller_event_key("caller", client_event_id), description=None,
    )  # fmt: skip


@pytest.fixture
async def stale_db(pg_server: str) -> AsyncIterator[str]:
    """A migrated database whose `events` statistics say "empty" and are never refreshed."""
    url = await create_database(pg_server)
    try:
        await migrate(url)
        conn = await asyncpg.connect(asyncpg_dsn(url))
        try:
            await conn.execute("ALTER TABLE events SET (autovacuum_enabled = off)")
            await conn.execute("ANALYZE events")
        finally:
            await conn.close()
        yield url
    finally:
        await drop_database(pg_server, url)


async def events_stats(dsn: str) -> tuple[int, int]:
    conn = await asyncpg.connect(dsn)
    try:
        stats = await conn.fetchrow("SELECT seq_scan, idx_scan FROM pg_stat_user_tables WHERE relname = 'events'")
    finally:
        await conn.close()
    return int(stats["seq_scan"]), int(stats["idx_scan"] or 0)


async def settled_stats(dsn: str, before: tuple[int, int]) -> tuple[int, int]:
    """The counters once the writer's ended backends have reported (they do so on exit)."""
    stats = before
    for _ in range(50):
        await asyncio.sleep(0.1)
        stats = await events_stats(dsn)
        if stats[1] > before[1]:
            await asyncio.sleep(0.3)  # every backend's report in
            return await events_stats(dsn)
    return stats


async def test_lookups_stay_on_the_unique_index_after_the_table_grows_unanalysed(stale_db: str, tmp_path) -> None:
    dsn = asyncpg_dsn(stale_db)
    before = await events_stats(dsn)
    writer = GroupCommitWriter(dsn, make_settings(stale_db, tmp_path))
    writer.start()
    written: list[str] = []
    try:
        for n in range(8):  # planned (and cached) while the table is empty
            ids = [f"warm-{n}-{k}-{uuid.uuid4()}" for k in range(5)]
            assert all(isinstance(o, Stored) for o in await writer.write([row(i) for i in ids]))
            written += ids
        loader = await asyncpg.connect(dsn)
        try:
            await loader.execute(
                "INSERT INTO events (app_name, event_type, user_hash, device_type, browser_family, os_family, "
                "client_event_id) SELECT 'admin-console', 'view', repeat('1', 64), 'desktop', 'Chrome', 'Linux', "
                "'bulk-' || g FROM generate_series(1, $1::int) AS g",
                BULK_ROWS,
            )
        finally:
            await loader.close()
        for n in range(30):  # the same writer, its plans made before the load
            ids = [f"after-{n}-{k}-{uuid.uuid4()}" for k in range(5)]
            outcomes = await writer.write([row(i) for i in ids] + [row(written[n])])  # one already stored
            assert all(isinstance(o, Stored) for o in outcomes)
            assert [o.inserted for o in outcomes if isinstance(o, Stored)] == [True] * 5 + [False]
            written += ids
    finally:
        await writer.stop()
    seq_scans, index_scans = await settled_stats(dsn, before)
    assert index_scans > before[1], "the writer's lookups were not counted"
    assert seq_scans == before[0], f"the writer read all of events {seq_scans - before[0]} times"
    conn = await asyncpg.connect(dsn)
    try:
        stored = await conn.fetchval("SELECT count(*) FROM events WHERE client_event_id = ANY($1::text[])", written)
    finally:
        await conn.close()
    assert stored == len(written)
