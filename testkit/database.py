"""Scratch databases on a PostgreSQL server, and reading them back with plain SQL."""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import asyncpg
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine

from app.storage.database import asyncpg_dsn, create_engine
from app.storage.migrations import migrate
from testkit.settings import make_settings


async def create_database(server_url: str, prefix: str = "signals_test") -> str:
    """A new empty database `<prefix>_<random>` on the server of `server_url`; its URL."""
    name = f"{prefix}_{uuid.uuid4().hex[:12]}"
    conn = await asyncpg.connect(asyncpg_dsn(server_url))
    try:
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()
    return make_url(server_url).set(database=name).render_as_string(hide_password=False)


async def drop_database(server_url: str, url: str) -> None:
    """Drop the database of `url` (connections to it are ended) via the server of `server_url`."""
    conn = await asyncpg.connect(asyncpg_dsn(server_url))
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{make_url(url).database}" WITH (FORCE)')
    finally:
        await conn.close()


@contextlib.asynccontextmanager
async def read_engine(url: str, tmp_path: Path) -> AsyncIterator[AsyncEngine]:
    """The app's engine on `url` with the test settings (what the read side's functions take)."""
    engine = create_engine(url, make_settings(url, tmp_path))
    try:
        yield engine
    finally:
        await engine.dispose()


@contextlib.asynccontextmanager
async def migrated_database(server_url: str) -> AsyncIterator[str]:
    """A fresh migrated database of the caller's own (its rows stay out of other tests)."""
    url = await create_database(server_url)
    try:
        await migrate(url)
        yield url
    finally:
        await drop_database(server_url, url)  # also when migrating failed


async def fetch(url: str, sql: str, *args: object) -> list[asyncpg.Record]:
    conn = await asyncpg.connect(asyncpg_dsn(url))
    try:
        return await conn.fetch(sql, *args)
    finally:
        await conn.close()


async def count_rows(database_url: str, prefix: str) -> dict[str, int]:
    """clientEventId -> number of stored rows, for every id starting with `prefix`."""
    conn = await asyncpg.connect(asyncpg_dsn(database_url))
    try:
        rows = await conn.fetch(
            "SELECT client_event_id, count(*) AS n FROM events WHERE client_event_id LIKE $1 GROUP BY 1", prefix + "%"
        )
    finally:
        await conn.close()
    return {row["client_event_id"]: int(row["n"]) for row in rows}
