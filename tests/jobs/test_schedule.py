"""Opt-in schedules inside the server: off by default; when on, retention and
anonymisation run in the app's lifespan and stop with it."""

from __future__ import annotations

import asyncio
import datetime as dt
import time
import uuid
from pathlib import Path

import pytest

from app.cli.serve import create_app
from jobs import schedule
from testkit.database import fetch
from testkit.seed import Row, insert_events
from testkit.settings import make_settings


async def eventually(probe, seconds: float = 10.0) -> bool:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if await probe():
            return True
        await asyncio.sleep(0.1)
    return False


async def seed(url: str) -> None:
    now = dt.datetime.now(dt.UTC)
    await insert_events(
        url,
        [
            Row(now - dt.timedelta(days=300), "admin-console", uuid.uuid4().hex * 2, route="expired"),
            Row(now - dt.timedelta(days=3), "admin-console", uuid.uuid4().hex * 2, route="closed-day"),
            Row(now, "admin-console", uuid.uuid4().hex * 2, route="today"),
        ],
    )


def job_tasks() -> set[str]:
    return {t.get_name() for t in asyncio.all_tasks() if t.get_name() in ("retention", "anonymise")}


async def test_schedules_are_off_by_default(fresh_db: str, tmp_path: Path) -> None:
    await seed(fresh_db)
    app = create_app(make_settings(fresh_db, tmp_path))
    async with app.router.lifespan_context(app):
        assert job_tasks() == set()
    assert len(await fetch(fresh_db, "SELECT id FROM events")) == 3


async def test_enabled_schedules_run_in_the_lifespan_and_stop_with_it(
    fresh_db: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    await seed(fresh_db)
    monkeypatch.setattr(schedule, "FIRST_RUN_DELAY_SECONDS", 0.1)  # instead of waiting 5 s after start
    settings = make_settings(
        fresh_db, tmp_path, retention_interval_minutes=60, anonymise_interval_minutes=60, anonymise_grace_minutes=0
    )
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        assert job_tasks() == {"retention", "anonymise"}

        async def expired_gone() -> bool:
            return [r["route"] for r in await fetch(fresh_db, "SELECT route FROM events ORDER BY created_at")] == [
                "closed-day",
                "today",
            ]

        async def day_done() -> bool:
            return len(await fetch(fresh_db, "SELECT day FROM anonymised_days")) >= 1

        assert await eventually(expired_gone)
        assert await eventually(day_done)
    assert job_tasks() == set()
