"""A database of its own per test with the seeded report data, and an engine on it."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from app.config import Settings
from testkit.database import migrated_database, read_engine
from testkit.reports import seed_digest
from testkit.settings import make_settings


@pytest.fixture
async def report_db(pg_server: str) -> AsyncIterator[str]:
    async with migrated_database(pg_server) as url:
        yield url


@pytest.fixture
async def seeded_rows(report_db: str) -> list[tuple]:
    return await seed_digest(report_db)


@pytest.fixture
def report_settings(report_db: str, tmp_path: Path) -> Settings:
    return make_settings(report_db, tmp_path)


@pytest.fixture
async def engine(report_db: str, tmp_path: Path) -> AsyncIterator[AsyncEngine]:
    async with read_engine(report_db, tmp_path) as engine:
        yield engine
