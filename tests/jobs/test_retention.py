"""Retention: exactly the window is kept, batches are small, concurrent writes go on,
several runners never compete, and the CLI reports what it did."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import time
import uuid
from pathlib import Path

import asyncpg

from app.storage.database import asyncpg_dsn
from jobs.locking import RETENTION_LOCK_KEY
from jobs.retention import run_retention
from testkit.database import create_database, drop_database, fetch
from testkit.processes import data_dir, signals
from testkit.seed import Row, insert_events, insert_expired


async def spread_over_400_days(url: str) -> dict[str, dt.datetime]:
    """Two rows per day for 400 days, 6 hours off each day boundary; returns route -> created_at."""
    now = dt.datetime.now(dt.UTC)
    rows = [
        Row(
            now - dt.timedelta(days=age, hours=6 + 12 * k),
            "admin-console",
            uuid.uuid4().hex * 2,
            route=f"/age/{age}/{k}",
        )
        for age in range(400)
        for k in range(2)
    ]
    await insert_events(url, rows)
    return {row.route: row.created_at for row in rows if row.route}


def run_json(*args: str, **env: str) -> dict:
    result = signals(*args, "--json", **env)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


async def test_cli_keeps_exactly_the_window_and_is_idempotent(fresh_db: str, tmp_path: Path) -> None:
    stamps = await spread_over_400_days(fresh_db)
    env = {"DATABASE_URL": fresh_db, "SIGNALS_DATA_DIR": data_dir(tmp_path)}

    dry = run_json("retention", "--dry-run", **env)
    cutoff = dt.datetime.fromisoformat(dry["cutoff"])
    expired = {route for route, at in stamps.items() if at < cutoff}
    assert dry["dry_run"] and dry["rows"] == len(expired) and dry["retention_days"] == 180
    assert len(await fetch(fresh_db, "SELECT id FROM events")) == len(stamps), "a dry run deleted rows"

    first = run_json("retention", "--batch-size", "50", **env)
    assert first["rows"] == len(expired)
    assert first["batches"] > len(expired) // 50  # bounded batches, not one big delete
    assert 0 < first["longest_transaction_seconds"] <= first["elapsed_seconds"]
    kept = {r["route"] for r in await fetch(fresh_db, "SELECT route FROM events")}
    assert kept == set(stamps) - expired
    window_start = dt.datetime.now(dt.UTC) - dt.timedelta(days=180)
    assert all(stamps[route] > window_start - dt.timedelta(minutes=5) for route in kept)

    second = run_json("retention", **env)
    assert second["rows"] == 0
    assert {r["route"] for r in await fetch(fresh_db, "SELECT route FROM events")} == kept


async def test_retention_days_setting_and_plain_summary(fresh_db: str, tmp_path: Path) -> None:
    stamps = await spread_over_400_days(fresh_db)
    result = signals(
        "retention", DATABASE_URL=fresh_db, SIGNALS_DATA_DIR=data_dir(tmp_path), SIGNALS_RETENTION_DAYS="30"
    )
    assert result.returncode == 0, result.stderr
    kept = {r["route"] for r in await fetch(fresh_db, "SELECT route FROM events")}
    # rows are 6+ hours off day boundaries, so 30 days keep ages 0..29 exactly
    assert kept == {route for route in stamps if int(route.split("/")[2]) < 30}
    removed = len(stamps) - len(kept)
    assert f"removed {removed} events older than 30 days" in result.stdout


async def test_concurrent_writes_succeed_during_retention(fresh_db: str) -> None:
    expired = 50_000
    await insert_expired(fresh_db, expired)

    done = asyncio.Event()
    written: list[float] = []
    failures: list[BaseException] = []

    async def writer() -> None:
        c = await asyncpg.connect(asyncpg_dsn(fresh_db))
        try:
            while not done.is_set():
                try:
                    await c.execute(
                        "INSERT INTO events (app_name, event_type, user_hash, device_type, browser_family, os_family, "
                        "client_event_id) "
                        "VALUES ('admin-console', 'view', $1, 'desktop', 'Firefox', 'Linux', $2)",
                        uuid.uuid4().hex * 2,
                        str(uuid.uuid4()),
                    )
                    written.append(time.monotonic())
                except Exception as exc:  # noqa: BLE001 - every failure is a test failure
                    failures.append(exc)
                await asyncio.sleep(0.002)
        finally:
            await c.close()

    writers = [asyncio.create_task(writer()) for _ in range(3)]
    await asyncio.sleep(0.1)
    started = time.monotonic()
    report = await run_retention(fresh_db, retention_days=180, batch_size=1000)
    finished = time.monotonic()
    done.set()
    await asyncio.gather(*writers)

    assert failures == []
    assert report.rows == expired and report.batches >= expired // 1000
    assert 0 < report.longest_transaction_seconds <= report.elapsed_seconds
    during = [t for t in written if started <= t <= finished]
    assert len(during) > 10, "no writes overlapped the retention run"
    remaining = await fetch(fresh_db, "SELECT count(*) AS n FROM events")
    assert remaining[0]["n"] == len(written)  # every concurrent write is kept


async def test_a_second_runner_skips_while_the_lock_is_held(fresh_db: str) -> None:
    await insert_events(fresh_db, [Row(dt.datetime.now(dt.UTC) - dt.timedelta(days=300), "admin-console", "a" * 64)])
    holder = await asyncpg.connect(asyncpg_dsn(fresh_db))
    try:
        assert await holder.fetchval("SELECT pg_try_advisory_lock($1)", RETENTION_LOCK_KEY)
        report = await run_retention(fresh_db, retention_days=180)
        assert report.skipped and report.rows == 0
        assert len(await fetch(fresh_db, "SELECT id FROM events")) == 1
    finally:
        await holder.close()
    # with the lock released, the next run proceeds
    assert (await run_retention(fresh_db, retention_days=180)).rows == 1


async def test_parallel_runs_delete_each_row_once(fresh_db: str) -> None:
    old = dt.datetime.now(dt.UTC) - dt.timedelta(days=250)
    await insert_events(
        fresh_db, [Row(old - dt.timedelta(minutes=i), "admin-console", uuid.uuid4().hex * 2) for i in range(3000)]
    )
    reports = await asyncio.gather(*(run_retention(fresh_db, retention_days=180, batch_size=200) for _ in range(3)))
    assert sum(r.rows for r in reports) == 3000
    assert sum(not r.skipped for r in reports) >= 1


async def test_cli_on_an_unmigrated_database_says_what_to_do(pg_server: str, tmp_path: Path) -> None:
    url = await create_database(pg_server)
    try:
        result = signals("retention", DATABASE_URL=url, SIGNALS_DATA_DIR=data_dir(tmp_path))
    finally:
        await drop_database(pg_server, url)
    assert result.returncode == 1
    assert "run `signals migrate` first" in result.stderr


def test_cli_refuses_a_non_positive_window(tmp_path: Path) -> None:
    result = signals("retention", "--days", "0", SIGNALS_DATA_DIR=data_dir(tmp_path))
    assert result.returncode != 0 and "positive" in result.stderr
