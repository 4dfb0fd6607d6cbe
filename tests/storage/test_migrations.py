"""The Prisma-compatible migration runner, against a real PostgreSQL."""

from __future__ import annotations

import asyncio
import hashlib
import os
import shutil
import subprocess
import sys
from pathlib import Path

import asyncpg

from app.storage.database import asyncpg_dsn
from app.storage.migrations import MIGRATIONS_DIR, migrate


async def ledger(url: str) -> list[asyncpg.Record]:
    conn = await asyncpg.connect(asyncpg_dsn(url))
    try:
        return await conn.fetch('SELECT * FROM "_prisma_migrations" ORDER BY migration_name')
    finally:
        await conn.close()


def migration_folders(directory: Path = MIGRATIONS_DIR) -> list[Path]:
    return sorted(p for p in directory.iterdir() if (p / "migration.sql").is_file())


def signals_cli(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "app.cli", *args],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=120,
    )


async def test_ledger_rows_match_prisma_and_rerun_is_noop(empty_db: str) -> None:
    first = await migrate(empty_db)
    folders = migration_folders()
    assert first.applied == [f.name for f in folders]

    rows = await ledger(empty_db)
    assert [r["migration_name"] for r in rows] == [f.name for f in folders]
    for row, folder in zip(rows, folders, strict=True):
        assert row["checksum"] == hashlib.sha256((folder / "migration.sql").read_bytes()).hexdigest()
        assert row["finished_at"] is not None and row["finished_at"] >= row["started_at"]
        assert row["applied_steps_count"] == 1
        assert row["rolled_back_at"] is None
        assert len(row["id"]) == 36

    second = await migrate(empty_db)
    assert second.applied == []
    assert second.already_applied == first.applied
    assert len(await ledger(empty_db)) == len(folders)


async def test_editing_an_applied_migration_fails_naming_it(empty_db: str, tmp_path: Path) -> None:
    copy = tmp_path / "migrations"
    shutil.copytree(MIGRATIONS_DIR, copy)
    await migrate(empty_db, copy)
    target = migration_folders(copy)[0]
    with (target / "migration.sql").open("a") as handle:
        handle.write("\n-- an innocent-looking edit\n")

    result = await asyncio.to_thread(
        signals_cli, "migrate", env={"DATABASE_URL": empty_db, "SIGNALS_MIGRATIONS_DIR": str(copy)}
    )
    assert result.returncode != 0
    assert target.name in result.stderr
    assert "modified" in result.stderr
    assert len(await ledger(empty_db)) == len(migration_folders(copy))


async def test_a_new_migration_is_applied_after_the_old_ones(empty_db: str, tmp_path: Path) -> None:
    copy = tmp_path / "migrations"
    shutil.copytree(MIGRATIONS_DIR, copy)
    await migrate(empty_db, copy)
    extra = copy / "29991231000000_add_probe"
    extra.mkdir()
    (extra / "migration.sql").write_text('ALTER TABLE "events" ADD COLUMN "probe" INTEGER;\n')
    result = await migrate(empty_db, copy)
    assert result.applied == ["29991231000000_add_probe"]
    conn = await asyncpg.connect(asyncpg_dsn(empty_db))
    try:
        assert (
            await conn.fetchval(
                "SELECT count(*) FROM information_schema.columns WHERE table_name = 'events' AND column_name = 'probe'"
            )
            == 1
        )
    finally:
        await conn.close()


async def test_failed_migration_rolls_back_and_is_reported(empty_db: str, tmp_path: Path) -> None:
    copy = tmp_path / "migrations"
    shutil.copytree(MIGRATIONS_DIR, copy)
    broken = copy / "29991231000000_broken"
    broken.mkdir()
    (broken / "migration.sql").write_text('CREATE TABLE "half" (id int);\nALTER TABLE "nope" ADD COLUMN x int;\n')
    result = await asyncio.to_thread(
        signals_cli, "migrate", env={"DATABASE_URL": empty_db, "SIGNALS_MIGRATIONS_DIR": str(copy)}
    )
    assert result.returncode != 0
    assert "29991231000000_broken" in result.stderr
    conn = await asyncpg.connect(asyncpg_dsn(empty_db))
    try:
        assert await conn.fetchval("SELECT to_regclass('half')") is None  # the whole file rolled back
        names = [r["migration_name"] for r in await conn.fetch('SELECT migration_name FROM "_prisma_migrations"')]
        assert "29991231000000_broken" not in names
    finally:
        await conn.close()


async def test_concurrent_migrate_processes_apply_each_migration_once(empty_db: str) -> None:
    runs = await asyncio.gather(
        *[asyncio.to_thread(signals_cli, "migrate", env={"DATABASE_URL": empty_db}) for _ in range(3)]
    )
    for run in runs:
        assert run.returncode == 0, run.stderr
    rows = await ledger(empty_db)
    names = [r["migration_name"] for r in rows]
    assert sorted(names) == [f.name for f in migration_folders()]
    assert len(names) == len(set(names))
    applied_counts = sorted(int(run.stdout.strip().splitlines()[-1].split()[0]) for run in runs)
    assert applied_counts == [0, 0, len(migration_folders())]
