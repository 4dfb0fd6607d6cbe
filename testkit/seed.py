"""Rows written straight into `events` with SQL, two ways:

- `event_row` + `insert_rows`: every column given (the read side's tests), copied in with COPY;
- `Row` + `insert_events`: the few columns the data-lifecycle jobs look at, by INSERT (the
  database assigns the ids).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
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
    "description",
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
        "description": None,  # JSON text
    }
    values.update(fields)
    return tuple(values[name] for name in COLUMNS)


async def insert_rows(url: str, rows: list[tuple]) -> None:
    conn = await asyncpg.connect(asyncpg_dsn(url))
    try:
        await conn.copy_records_to_table("events", records=rows, columns=list(COLUMNS))
    finally:
        await conn.close()


INSERT_EVENT = (
    "INSERT INTO events (created_at, app_name, event_type, route, user_hash, device_type, browser_family, "
    "os_family, client_event_id) VALUES ($1, $2, $3, $4, $5, 'desktop', 'Firefox', 'Linux', $6)"
)


@dataclass(frozen=True)
class Row:
    created_at: dt.datetime
    app_name: str
    user_hash: str
    event_type: str = "click"
    route: str | None = None


async def insert_events(url: str, rows: Iterable[Row]) -> None:
    conn = await asyncpg.connect(asyncpg_dsn(url))
    try:
        await conn.executemany(
            INSERT_EVENT,
            [(r.created_at, r.app_name, r.event_type, r.route, r.user_hash, str(uuid.uuid4())) for r in rows],
        )
    finally:
        await conn.close()


EXPIRED_ROWS = (
    "INSERT INTO events (created_at, app_name, event_type, user_hash, device_type, browser_family, os_family, "
    "client_event_id) "
    "SELECT now() - interval '200 days' - g * interval '1 minute', 'admin-console', 'click', "
    "md5(g::text) || md5(g::text), "
    "'desktop', 'Firefox', 'Linux', 'old-' || g FROM generate_series(1, $1) AS g"
)


async def insert_expired(url: str, count: int) -> None:
    """`count` events 200 days old (past the default retention), one a minute back from then."""
    conn = await asyncpg.connect(asyncpg_dsn(url))
    try:
        await conn.execute(EXPIRED_ROWS, count)
    finally:
        await conn.close()
