"""Helpers for the data-lifecycle tests: fresh migrated databases, rows by SQL, the CLI,
the hashing contract recomputed independently with hmac/hashlib."""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import subprocess
import sys
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import asyncpg
import pytest

from app.config import PROJECT_ROOT
from app.storage.database import asyncpg_dsn
from app.storage.migrations import migrate
from bench.harness import clean_env

INSERT_EVENT = (
    "INSERT INTO events (created_at, app_name, event_type, route, user_hash, device_type, browser_family, os_family, client_event_id) "
    "VALUES ($1, $2, $3, $4, $5, 'desktop', 'Firefox', 'Linux', $6)"
)


@pytest.fixture
async def fresh_db(empty_db: str) -> str:
    """A migrated database of this test's own (so row counts are exact)."""
    await migrate(empty_db)
    return empty_db


@dataclass(frozen=True)
class Row:
    created_at: dt.datetime
    app_name: str
    user_hash: str
    event_type: str = "click"
    route: str | None = None


async def insert_rows(url: str, rows: Iterable[Row]) -> None:
    conn = await asyncpg.connect(asyncpg_dsn(url))
    try:
        await conn.executemany(
            INSERT_EVENT,
            [(r.created_at, r.app_name, r.event_type, r.route, r.user_hash, str(uuid.uuid4())) for r in rows],
        )
    finally:
        await conn.close()


async def fetch(url: str, sql: str, *args: object) -> list[asyncpg.Record]:
    conn = await asyncpg.connect(asyncpg_dsn(url))
    try:
        return await conn.fetch(sql, *args)
    finally:
        await conn.close()


def contract_hash(secret: str, day: dt.date, host: str, ip: str, normalised_ua: str) -> str:
    """userHash per the contract: hex(HMAC_SHA256(salt(day), host \\x1f ip \\x1f normalisedUA))."""
    salt = hmac.new(secret.encode("utf-8"), day.isoformat().encode("ascii"), hashlib.sha256).digest()
    return hmac.new(salt, f"{host}\x1f{ip}\x1f{normalised_ua}".encode(), hashlib.sha256).hexdigest()


def signals(*args: str, timeout: float = 120, **env: str) -> subprocess.CompletedProcess[str]:
    """Run the `signals` CLI in a subprocess with only the given SIGNALS_*/DATABASE_URL variables."""
    return subprocess.run(
        [sys.executable, "-m", "app.cli", *args],
        env=clean_env(**env),
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=PROJECT_ROOT,
    )


def data_dir(tmp_path: Path) -> str:
    return str(tmp_path / "data")
