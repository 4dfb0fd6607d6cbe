"""The one definition of an events row (app/storage/events.py) matches the migrated table."""

from __future__ import annotations

import asyncpg

from app.storage.database import asyncpg_dsn
from app.storage.events import COLUMNS, SELECT_COLUMNS, is_utf8


async def test_the_row_shape_is_the_table(migrated_db: str) -> None:
    conn = await asyncpg.connect(asyncpg_dsn(migrated_db))
    try:
        columns = [
            row["column_name"]
            for row in await conn.fetch(
                "SELECT column_name FROM information_schema.columns "
                "WHERE table_schema = 'public' AND table_name = 'events' ORDER BY ordinal_position"
            )
        ]
        selected = await conn.fetch(f"SELECT {SELECT_COLUMNS} FROM events LIMIT 0")
    finally:
        await conn.close()
    assert sorted(columns) == sorted(["id", *COLUMNS])  # nothing written is missing, nothing stored is unread
    assert selected == []


def test_is_utf8_refuses_lone_surrogates_only() -> None:
    assert is_utf8("plain ✓ text")
    assert not is_utf8("broken \ud800")
