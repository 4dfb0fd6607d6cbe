"""Database: which server (embedded or `DATABASE_URL`), the connection pool, readiness,
and which errors mean "the database could not answer".

With no `DATABASE_URL`, the embedded PostgreSQL (app/storage/embedded.py) runs from
`<data_dir>/postgres` and is stopped on exit. With `DATABASE_URL`, that server is used.
Runtime access is SQLAlchemy 2 Core (async) over asyncpg with parametrised SQL only.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterator

import asyncpg
from sqlalchemy import exc as sa_exc
from sqlalchemy import text
from sqlalchemy.engine import URL, make_url
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from app.config import Settings
from app.storage.embedded import EmbeddedPostgres

log = logging.getLogger("signals.db")


def asyncpg_dsn(url: str) -> str:
    """The URL as asyncpg understands it (plain `postgresql://`, no driver suffix)."""
    parsed = make_url(url).set(drivername="postgresql")
    return parsed.render_as_string(hide_password=False)


def sqlalchemy_url(url: str) -> URL:
    return make_url(url).set(drivername="postgresql+asyncpg")


def create_engine(url: str, settings: Settings, *, application_name: str = "signals") -> AsyncEngine:
    """A pooled async engine with bounded waits: nothing hangs past the configured timeouts.
    `application_name` tells its sessions apart in `pg_stat_activity`."""
    server_settings = {"application_name": application_name}
    if settings.db_statement_timeout_ms:
        server_settings["statement_timeout"] = str(settings.db_statement_timeout_ms)
    return create_async_engine(
        sqlalchemy_url(url),
        pool_size=settings.db_pool_size,
        max_overflow=settings.db_max_overflow,
        pool_timeout=settings.db_pool_timeout,
        pool_pre_ping=True,
        pool_recycle=1800,
        connect_args={
            "timeout": settings.db_connect_timeout,
            # the server cancels a slow statement itself (a clear QueryCanceledError); this
            # bound, one second later, ends a query on a connection that stopped answering
            "command_timeout": (settings.db_statement_timeout_ms / 1000 + 1)
            if settings.db_statement_timeout_ms
            else None,
            "server_settings": server_settings,
        },
    )


async def is_ready(engine: AsyncEngine, timeout: float = 2.0) -> bool:
    """True when a `SELECT 1` answers within `timeout` seconds."""

    async def ping() -> None:
        async with engine.connect() as conn:
            await conn.execute(text("SELECT 1"))

    try:
        await asyncio.wait_for(ping(), timeout)
        return True
    except Exception:  # noqa: BLE001 - any failure means "not ready"
        return False


UNAVAILABLE = "the database is unavailable"
DISK_FULL = "the database is out of disk space"
READ_ONLY = "the database is read-only"
RETRY_LATER = "; retry later"
UNAVAILABLE_MESSAGE = UNAVAILABLE + RETRY_LATER
STATEMENT_TIMEOUT_MESSAGE = (
    "the database did not finish this query within SIGNALS_DB_STATEMENT_TIMEOUT_MS; narrow the request or retry later"
)
_CONNECTIVITY = (
    OSError,  # refused, reset, unreachable
    TimeoutError,  # connect or command timeout
    asyncpg.PostgresConnectionError,
    asyncpg.InterfaceError,  # the connection closed under a query
    asyncpg.OperatorInterventionError,  # shutting down, cannot connect now
    sa_exc.TimeoutError,  # no pooled connection within SIGNALS_DB_POOL_TIMEOUT
)
# the database answers but cannot write now; an operator's fix (space, a writable primary)
# makes the same request succeed, so these are retryable too
_CONDITIONS: tuple[tuple[type[BaseException], str], ...] = (
    (asyncpg.DiskFullError, DISK_FULL),  # 53100: could not extend a file, no space left
    (asyncpg.InsufficientResourcesError, UNAVAILABLE),  # 53xxx: out of memory, too many connections
    (asyncpg.ReadOnlySQLTransactionError, READ_ONLY),  # 25006: read-only database or a standby
)


def error_chain(error: BaseException | None) -> Iterator[BaseException]:
    """`error` and what it wraps (SQLAlchemy's `orig`, then cause or context)."""
    seen: set[int] = set()
    while error is not None and id(error) not in seen:
        seen.add(id(error))
        yield error
        error = getattr(error, "orig", None) or error.__cause__ or error.__context__


def unavailable_cause(error: BaseException | None) -> str | None:
    """What keeps the database from answering (`UNAVAILABLE`, `DISK_FULL`, `READ_ONLY`)
    when `error` (or what it wraps) is a condition that retrying later can get past; else None."""
    for one in error_chain(error):
        for kind, cause in _CONDITIONS:
            if isinstance(one, kind):
                return cause
        if isinstance(one, _CONNECTIVITY):
            return UNAVAILABLE
        if isinstance(one, sa_exc.DBAPIError) and one.connection_invalidated:
            return UNAVAILABLE
    return None


def unavailable_reason(error: BaseException | None) -> str | None:
    """A message for the caller when `error` (or what it wraps) means the database could
    not answer - down, unreachable, too slow, out of space, read-only - so retrying later
    can succeed; else None."""
    if any(isinstance(one, asyncpg.QueryCanceledError) for one in error_chain(error)):
        return STATEMENT_TIMEOUT_MESSAGE
    cause = unavailable_cause(error)
    return None if cause is None else cause + RETRY_LATER


class Database:
    """Resolves which server to use (embedded or `DATABASE_URL`) and owns the engine."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.embedded: EmbeddedPostgres | None = None
        self.url: str | None = settings.database_url
        self.engine: AsyncEngine | None = None

    def start_server(self) -> str:
        if self.url is None:
            self.embedded = EmbeddedPostgres(self.settings.data_dir)
            self.url = self.embedded.start()
            log.info("embedded PostgreSQL started", extra={"pgdata": str(self.embedded.pgdata)})
        return self.url

    def connect(self) -> AsyncEngine:
        self.engine = create_engine(self.start_server(), self.settings)
        return self.engine

    async def dispose(self) -> None:
        if self.engine is not None:
            await self.engine.dispose()
            self.engine = None

    def stop_server(self) -> None:
        if self.embedded is not None:
            self.embedded.stop()
            self.embedded = None
