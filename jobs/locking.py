"""What the maintenance jobs share: a dedicated connection holding a cross-replica lock.

Each job takes a PostgreSQL session advisory lock with `pg_try_advisory_lock`, so when
several replicas (or a cron job and a replica) start the same job at once, exactly one
runs and the others report that they skipped. The keys differ from Prisma Migrate's
72707369 (see app/storage/migrations.py) and from each other.

Jobs that change events (retention deletes, anonymisation rewrites) then also wait for
`EVENTS_MAINTENANCE_LOCK_KEY`, so they never run at the same time: both touch the expired
rows of closed days, lock them in different orders, and run at once they deadlock
(seen: PostgreSQL ends one with DeadlockDetectedError in about a third of concurrent runs,
as every replica starting its schedules together would do).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

import asyncpg

from app.storage.database import asyncpg_dsn

RETENTION_LOCK_KEY = 0x5349_474E_0001  # "SIGN" + 1
ANONYMISE_LOCK_KEY = 0x5349_474E_0002  # "SIGN" + 2
EVENTS_MAINTENANCE_LOCK_KEY = 0x5349_474E_0003  # "SIGN" + 3: held by whichever job is changing events


class JobError(Exception):
    """The job cannot run; the message says what to do."""


@contextlib.asynccontextmanager
async def locked_connection(
    database_url: str, lock_key: int, *, needs: tuple[str, ...] = ("events",), changes_events: bool = True
) -> AsyncIterator[asyncpg.Connection | None]:
    """A connection holding `lock_key`, or None when another session holds it. With
    `changes_events` it then waits for EVENTS_MAINTENANCE_LOCK_KEY as well (see above)."""
    conn = await asyncpg.connect(
        asyncpg_dsn(database_url), timeout=10, server_settings={"application_name": "signals-job"}
    )
    try:
        for table in needs:
            if await conn.fetchval("SELECT to_regclass($1)", f"public.{table}") is None:
                raise JobError(f"table {table} does not exist: run `signals migrate` first")
        if not await conn.fetchval("SELECT pg_try_advisory_lock($1)", lock_key):
            yield None
            return
        keys = [lock_key]
        try:
            if changes_events:
                await conn.execute("SELECT pg_advisory_lock($1)", EVENTS_MAINTENANCE_LOCK_KEY)
                keys.append(EVENTS_MAINTENANCE_LOCK_KEY)
            yield conn
        finally:
            with contextlib.suppress(asyncpg.PostgresError, OSError, asyncpg.InterfaceError):
                for key in reversed(keys):
                    await conn.execute("SELECT pg_advisory_unlock($1)", key)
    finally:
        try:
            await asyncio.wait_for(conn.close(), 5)
        except (TimeoutError, asyncpg.InterfaceError, OSError):
            conn.terminate()  # closing also releases the session's advisory lock
