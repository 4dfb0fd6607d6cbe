"""The group-commit writer on a real PostgreSQL: one bad row does not sink its batch, and
writes after stop are refused, not lost."""

from __future__ import annotations

import asyncio
import datetime as dt
import uuid

import asyncpg

from app.ingest.writer import EventRow, GroupCommitWriter, Stored, WriteUnavailable
from app.privacy.hashing import caller_event_key
from app.storage.database import asyncpg_dsn
from testkit.settings import make_settings


def row(client_event_id: str, app_name: str = "admin-console") -> EventRow:
    return EventRow(
        created_at=dt.datetime.now(dt.UTC), app_name=app_name, event_type="click", route=None, entity_type=None,
        entity_id=None, user_hash="0" * 64, session_id=None, device_type="desktop", browser_family="Chrome",
        os_family="Windows", client_event_id=client_event_id, dedup_key=caller_event_key("caller", client_event_id),
        description='{"a":1}',
    )  # fmt: skip


async def test_one_bad_row_does_not_sink_its_batch(migrated_db: str, tmp_path) -> None:
    writer = GroupCommitWriter(asyncpg_dsn(migrated_db), make_settings(migrated_db, tmp_path))
    writer.start()
    try:
        ids = [f"w-{uuid.uuid4()}" for _ in range(3)]
        batch = [row(ids[0]), row(ids[1], app_name="x" * 65), row(ids[2])]  # too long for varchar(64)
        good_first, bad, good_last = await writer.write(batch)
    finally:
        await writer.stop()
    assert isinstance(good_first, Stored) and good_first.inserted
    assert isinstance(bad, WriteUnavailable)
    assert isinstance(good_last, Stored) and good_last.inserted
    conn = await asyncpg.connect(asyncpg_dsn(migrated_db))
    try:
        stored = await conn.fetch("SELECT client_event_id FROM events WHERE client_event_id = ANY($1::text[])", ids)
    finally:
        await conn.close()
    assert {r["client_event_id"] for r in stored} == {ids[0], ids[2]}


async def test_writes_after_stop_are_refused_not_lost(migrated_db: str, tmp_path) -> None:
    writer = GroupCommitWriter(asyncpg_dsn(migrated_db), make_settings(migrated_db, tmp_path))
    writer.start()
    pending = asyncio.create_task(writer.write([row(f"w-{uuid.uuid4()}")]))
    await asyncio.sleep(0)
    await writer.stop()
    [outcome] = await pending
    assert isinstance(outcome, Stored)
    [late] = await writer.write([row(f"w-{uuid.uuid4()}")])
    assert isinstance(late, WriteUnavailable) and "shutting down" in str(late)


async def test_event_ids_are_time_ordered_uuids(migrated_db: str, tmp_path) -> None:
    """Ids are UUIDv7: the version nibble is 7 and the first 48 bits are the Unix time in
    milliseconds (RFC 9562), so new rows land at the end of the primary key's index."""
    writer = GroupCommitWriter(asyncpg_dsn(migrated_db), make_settings(migrated_db, tmp_path))
    writer.start()
    try:
        first = await writer.write([row(f"w-{uuid.uuid4()}") for _ in range(5)])
        await asyncio.sleep(0.01)
        second = await writer.write([row(f"w-{uuid.uuid4()}") for _ in range(5)])
    finally:
        await writer.stop()
    ids = [uuid.UUID(o.event_id) for o in first + second if isinstance(o, Stored)]
    assert len(ids) == 10
    conn = await asyncpg.connect(asyncpg_dsn(migrated_db))
    try:
        rows = await conn.fetch("SELECT id, created_at FROM events WHERE id = ANY($1::uuid[])", ids)
    finally:
        await conn.close()
    assert len(rows) == 10
    for stored in rows:
        assert stored["id"].version == 7
        millis = stored["id"].int >> 80
        assert abs(millis / 1000 - stored["created_at"].timestamp()) < 5
    assert max(ids[:5], key=lambda i: i.int).int < min(ids[5:], key=lambda i: i.int).int
