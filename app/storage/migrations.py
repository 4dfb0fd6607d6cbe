"""Apply `migrations/` the way Prisma does, without the Prisma engines.

Each `<timestamp>_<name>/migration.sql` runs in order, in its own transaction, and is
recorded in `_prisma_migrations` with the same columns and values Prisma writes
(checksum = sha256 hex of the file's bytes), so the Prisma CLI sees a consistent state.
A PostgreSQL advisory lock (Prisma's own key) serialises concurrent runners. An applied
migration whose file changed is an error, never a re-run.
"""

from __future__ import annotations

import hashlib
import logging
import uuid
from dataclasses import dataclass
from pathlib import Path

import asyncpg

from app.config import PROJECT_ROOT
from app.storage.database import asyncpg_dsn

log = logging.getLogger("signals.migrations")

MIGRATIONS_DIR = PROJECT_ROOT / "migrations"
ADVISORY_LOCK_KEY = 72707369  # the key Prisma Migrate itself locks on

LEDGER_DDL = """
CREATE TABLE IF NOT EXISTS "_prisma_migrations" (
    "id"                    VARCHAR(36) PRIMARY KEY NOT NULL,
    "checksum"              VARCHAR(64) NOT NULL,
    "finished_at"           TIMESTAMPTZ,
    "migration_name"        VARCHAR(255) NOT NULL,
    "logs"                  TEXT,
    "rolled_back_at"        TIMESTAMPTZ,
    "started_at"            TIMESTAMPTZ NOT NULL DEFAULT now(),
    "applied_steps_count"   INTEGER NOT NULL DEFAULT 0
)
"""


class MigrationError(Exception):
    """A migration cannot be applied safely; the message names it."""


@dataclass(frozen=True)
class Migration:
    name: str
    sql: bytes

    @property
    def checksum(self) -> str:
        return hashlib.sha256(self.sql).hexdigest()


def discover(directory: Path = MIGRATIONS_DIR) -> list[Migration]:
    """The migrations on disk, in name (timestamp) order."""
    if not directory.is_dir():
        raise MigrationError(f"migrations directory {directory} does not exist")
    found = []
    for folder in sorted(p for p in directory.iterdir() if p.is_dir()):
        sql_file = folder / "migration.sql"
        if sql_file.is_file():
            found.append(Migration(folder.name, sql_file.read_bytes()))
    return found


@dataclass
class MigrateResult:
    applied: list[str]
    already_applied: list[str]


async def migrate(database_url: str, directory: Path = MIGRATIONS_DIR, *, lock_timeout: float = 60.0) -> MigrateResult:
    """Apply pending migrations; return which were applied now and which were already there."""
    migrations = discover(directory)
    conn = await asyncpg.connect(asyncpg_dsn(database_url), timeout=10)
    try:
        await conn.execute(f"SET lock_timeout = '{int(lock_timeout * 1000)}ms'")
        await conn.execute("SELECT pg_advisory_lock($1)", ADVISORY_LOCK_KEY)
        try:
            return await _apply_pending(conn, migrations)
        finally:
            await conn.execute("SELECT pg_advisory_unlock($1)", ADVISORY_LOCK_KEY)
    finally:
        await conn.close()


async def _apply_pending(conn: asyncpg.Connection, migrations: list[Migration]) -> MigrateResult:
    await conn.execute(LEDGER_DDL)
    rows = await conn.fetch(
        'SELECT migration_name, checksum, finished_at, rolled_back_at FROM "_prisma_migrations" '
        "WHERE rolled_back_at IS NULL ORDER BY started_at"
    )
    recorded = {row["migration_name"]: row for row in rows}
    on_disk = {m.name for m in migrations}
    for name, row in recorded.items():
        if row["finished_at"] is None:
            raise MigrationError(
                f"migration {name} failed earlier and is not finished; fix the database, then mark it rolled back"
            )
        if name not in on_disk:
            log.warning("applied migration %s is missing from migrations/", name)

    result = MigrateResult(applied=[], already_applied=[])
    for migration in migrations:
        applied = recorded.get(migration.name)
        if applied is not None:
            if applied["checksum"] != migration.checksum:
                raise MigrationError(
                    f"migration {migration.name} was modified after it was applied "
                    f"(checksum {applied['checksum'][:12]}… in the database, {migration.checksum[:12]}… on disk); "
                    "restore the file and add a new migration instead"
                )
            result.already_applied.append(migration.name)
            continue
        await _apply_one(conn, migration)
        result.applied.append(migration.name)
    return result


async def _apply_one(conn: asyncpg.Connection, migration: Migration) -> None:
    log.info("applying migration %s", migration.name)
    async with conn.transaction():
        migration_id = str(uuid.uuid4())
        await conn.execute(
            'INSERT INTO "_prisma_migrations" (id, checksum, migration_name, started_at, applied_steps_count) '
            "VALUES ($1, $2, $3, now(), 0)",
            migration_id,
            migration.checksum,
            migration.name,
        )
        try:
            await conn.execute(migration.sql.decode("utf-8"))
        except asyncpg.PostgresError as exc:
            raise MigrationError(f"migration {migration.name} failed: {exc}") from exc
        await conn.execute(
            'UPDATE "_prisma_migrations" SET finished_at = clock_timestamp(), applied_steps_count = 1 WHERE id = $1',
            migration_id,
        )
