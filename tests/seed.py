"""Rows written straight into `events` with SQL (the read side's tests seed this way)."""

from __future__ import annotations

import datetime as dt
import hashlib
import uuid
from typing import Any

import asyncpg

from app.storage.database import asyncpg_dsn

COLUMNS = (
    "id",
    "created_at",
    "app_name",
    "event_type",
    "route",
    "entity_type",
    "entity_id",
    "user_hash",
    "session_id",
    "device_type",
    "browser_family",
    "os_family",
    "client_event_id",
)


def user_hash(person: str, day: dt.date) -> str:
    return hashlib.sha256(f"{person}|{day.isoformat()}".encode()).hexdigest()


def event_row(
    created_at: dt.datetime, app_name: str, event_type: str = "click", *, person: str = "p1", **fields: Any
) -> tuple:
    values = {
        "id": uuid.uuid4(),
        "created_at": created_at,
        "app_name": app_name,
        "event_type": event_type,
        "route": None,
        "entity_type": None,
        "entity_id": None,
        "user_hash": user_hash(person, created_at.astimezone(dt.UTC).date()),
        "session_id": None,
        "device_type": "desktop",
        "browser_family": "Firefox",
        "os_family": "Linux",
        "client_event_id": str(uuid.uuid4()),
    }
    values.update(fields)
    return tuple(values[name] for name in COLUMNS)


async def insert_rows(url: str, rows: list[tuple]) -> None:
    conn = await asyncpg.connect(asyncpg_dsn(url))
    try:
        await conn.copy_records_to_table("events", records=rows, columns=list(COLUMNS))
    finally:
        await conn.close()
