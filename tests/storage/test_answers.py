"""What keeps stored answers of closed days exact (app/storage/answers.py), on a real
PostgreSQL: each way a closed day's events can change forgets that day's stored answers
(`day_answers` and `daily_app_users`) and no other day's."""

from __future__ import annotations

import datetime as dt
import json
import uuid
from pathlib import Path

import pytest

from app.ingest.writer import EventRow, GroupCommitWriter, Stored
from app.privacy.hashing import caller_event_key
from app.storage.answers import closed_before
from app.storage.database import asyncpg_dsn
from app.storage.migrations import migrate
from jobs.anonymise import run_anonymise
from jobs.retention import run_retention
from testkit.database import fetch
from testkit.processes import data_dir, signals
from testkit.seed import Row, insert_events
from testkit.settings import make_settings

NOW = dt.datetime.now(dt.UTC)
TODAY = NOW.date()


async def plant(url: str, days: list[dt.date]) -> None:
    """A stored answer in both tables for each of `days`."""
    for day in days:
        await fetch(url, "INSERT INTO day_answers (kind, key, day, answer) VALUES ('t/1', $1, $2, '{}')", "k" * 64, day)
        await fetch(url, "INSERT INTO daily_app_users (app_name, day, events, users) VALUES ('a', $1, 1, 1)", day)


async def stored_days(url: str) -> tuple[set[dt.date], set[dt.date]]:
    answers = {r["day"] for r in await fetch(url, "SELECT day FROM day_answers")}
    users = {r["day"] for r in await fetch(url, "SELECT day FROM daily_app_users")}
    return answers, users


@pytest.fixture
async def fresh_db(empty_db: str) -> str:
    """A migrated database of this test's own (stored answers are counted exactly)."""
    await migrate(empty_db)
    return empty_db


def event(created_at: dt.datetime) -> EventRow:
    client_id = str(uuid.uuid4())
    return EventRow(
        created_at=created_at, app_name="admin-console", event_type="click", route=None, entity_type=None,
        entity_id=None, user_hash="0" * 64, session_id=None, device_type="desktop", browser_family="Chrome",
        os_family="Windows", client_event_id=client_id, dedup_key=caller_event_key("c", client_id), description=None,
    )  # fmt: skip


def ago(days: int) -> dt.date:
    return TODAY - dt.timedelta(days=days)


def test_a_day_is_closed_an_hour_after_it_ends() -> None:
    midnight = dt.datetime(2026, 3, 10, tzinfo=dt.UTC)
    assert closed_before(midnight + dt.timedelta(minutes=59)) == dt.date(2026, 3, 9)  # the 9th still open
    assert closed_before(midnight + dt.timedelta(hours=1)) == dt.date(2026, 3, 10)  # the 9th closed


async def test_a_late_row_forgets_its_day(fresh_db: str, tmp_path: Path) -> None:
    await plant(fresh_db, [ago(3), ago(2)])
    writer = GroupCommitWriter(asyncpg_dsn(fresh_db), make_settings(fresh_db, tmp_path))
    writer.start()
    try:
        at = dt.datetime.combine(ago(2), dt.time(23, 30), tzinfo=dt.UTC)  # held back for more than a day
        outcomes = await writer.write([event(at), event(NOW)])
    finally:
        await writer.stop()
    assert all(isinstance(o, Stored) and o.inserted for o in outcomes)
    assert await stored_days(fresh_db) == ({ago(3)}, {ago(3)})


async def test_rows_written_on_time_forget_nothing(fresh_db: str, tmp_path: Path) -> None:
    await plant(fresh_db, [ago(1)])
    writer = GroupCommitWriter(asyncpg_dsn(fresh_db), make_settings(fresh_db, tmp_path))
    writer.start()
    try:
        [outcome] = await writer.write([event(NOW)])
    finally:
        await writer.stop()
    assert isinstance(outcome, Stored)
    assert await stored_days(fresh_db) == ({ago(1)}, {ago(1)})


async def test_retention_forgets_every_day_through_its_cutoff(fresh_db: str) -> None:
    await insert_events(fresh_db, [Row(NOW - dt.timedelta(days=12), "admin-console", "1" * 64)])
    await plant(fresh_db, [ago(12), ago(10), ago(9), ago(8)])
    report = await run_retention(fresh_db, retention_days=9)
    assert report.rows == 1 and report.cutoff is not None
    cutoff_day = report.cutoff.date()  # 9 days ago: partly deleted, and every day before it
    kept = {day for day in (ago(12), ago(10), ago(9), ago(8)) if day > cutoff_day}
    assert kept == {ago(8)}
    assert await stored_days(fresh_db) == (kept, kept)


async def test_anonymise_forgets_a_day_it_rekeys_again(fresh_db: str) -> None:
    two_days_ago = dt.datetime.combine(ago(2), dt.time(10), tzinfo=dt.UTC)
    await insert_events(fresh_db, [Row(two_days_ago, "admin-console", "2" * 64)])
    await run_anonymise(fresh_db)
    await plant(fresh_db, [ago(2), ago(3)])
    await run_anonymise(fresh_db)  # nothing new: the first re-key keeps every count, nothing is forgotten
    assert await stored_days(fresh_db) == ({ago(2), ago(3)}, {ago(2), ago(3)})
    await insert_events(fresh_db, [Row(two_days_ago + dt.timedelta(hours=1), "admin-console", "3" * 64)])
    report = await run_anonymise(fresh_db)
    assert [(d.day, d.reason) for d in report.days] == [(ago(2), "late-rows")]
    assert await stored_days(fresh_db) == ({ago(3)}, {ago(3)})


async def test_forget_answers_command(fresh_db: str, tmp_path: Path) -> None:
    await plant(fresh_db, [ago(4), ago(5)])
    result = signals("forget-answers", "--json", DATABASE_URL=fresh_db, SIGNALS_DATA_DIR=data_dir(tmp_path))
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == {"rows": 4}
    assert await stored_days(fresh_db) == (set(), set())
