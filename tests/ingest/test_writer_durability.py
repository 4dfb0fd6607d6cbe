"""The writer's connection keeps commits durable whatever the database's defaults say: with
`synchronous_commit = off` a COMMIT returns before its WAL is flushed, so a crash of the
database would lose events already answered ACCEPTED. The writer turns `off` back to `on`
for its own session and leaves the other (locally durable) levels as the operator set them."""

from __future__ import annotations

from pathlib import Path

import asyncpg
import pytest
from sqlalchemy.engine import make_url

from app.ingest.writer import GroupCommitWriter
from app.storage.database import asyncpg_dsn
from testkit.settings import make_settings


@pytest.mark.parametrize(
    ("database_default", "writer_session"),
    [
        ("off", "on"),
        ("local", "local"),
        ("remote_write", "remote_write"),
        ("on", "on"),
        ("remote_apply", "remote_apply"),
    ],
)
async def test_the_writer_never_commits_with_synchronous_commit_off(
    empty_db: str, tmp_path: Path, database_default: str, writer_session: str
) -> None:
    name = make_url(empty_db).database
    admin = await asyncpg.connect(asyncpg_dsn(empty_db))
    try:
        await admin.execute(f'ALTER DATABASE "{name}" SET synchronous_commit = {database_default}')
    finally:
        await admin.close()
    plain = await asyncpg.connect(asyncpg_dsn(empty_db))  # what any other session of it gets
    try:
        assert await plain.fetchval("SHOW synchronous_commit") == database_default
    finally:
        await plain.close()

    writer = GroupCommitWriter(asyncpg_dsn(empty_db), make_settings(empty_db, tmp_path))
    conn = await writer._connect()
    try:
        setting = await conn.fetchval("SELECT setting FROM pg_settings WHERE name = 'synchronous_commit'")
    finally:
        await conn.close()
    assert setting == writer_session
