"""Drops by reason are saved per (UTC hour, app, reason) for reports: trackEvent only counts
in memory, a background flush writes them with one upsert, and stopping flushes the rest.
The stored counts equal the reasons trackEvent answered."""

from __future__ import annotations

import asyncio
import collections
import datetime as dt
import uuid
from pathlib import Path

import httpx

from app.cli.serve import create_app
from app.ingest.dropcounts import DropCounter
from app.storage.database import asyncpg_dsn
from testkit.database import fetch
from testkit.http import gql
from testkit.settings import make_settings
from testkit.tokens import token

TRACK = "mutation($i: TrackEventInput!) { trackEvent(input: $i) { status reason } }"
CHROME = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36"


async def test_drops_are_flushed_per_hour_app_and_reason(empty_db: str, tmp_path: Path) -> None:
    from app.storage.migrations import migrate

    await migrate(empty_db)
    settings = make_settings(empty_db, tmp_path, drop_flush_seconds=0.2)
    app = create_app(settings)
    headers = {"authorization": f"Bearer {token(roles=['member'])}", "user-agent": CHROME}
    inputs = [
        {"eventType": "purchase", "appName": "admin-console"},  # UNKNOWN_EVENT_TYPE
        {"eventType": "purchase", "appName": "admin-console"},
        {"eventType": "click", "appName": "shop-front"},  # UNKNOWN_APP, stored as <unlisted>
        {"eventType": "click", "appName": "admin-console"},  # accepted
    ]
    answered: collections.Counter[tuple[str, str]] = collections.Counter()
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app, client=("203.0.113.7", 51515))
        async with httpx.AsyncClient(transport=transport, base_url="http://admin.example.test") as http:
            for given in inputs:
                body = await gql(http, TRACK, {"i": {**given, "clientEventId": str(uuid.uuid4())}}, headers)
                result = body["data"]["trackEvent"]
                if result["reason"]:
                    app_name = given["appName"] if given["appName"] in settings.allowed_apps else "<unlisted>"
                    answered[(app_name, result["reason"])] += 1
            for _ in range(50):  # the background flush, within a few intervals
                if await fetch(empty_db, "SELECT 1 FROM drop_counts LIMIT 1"):
                    break
                await asyncio.sleep(0.1)
            rows = await fetch(empty_db, "SELECT hour, app_name, reason, count FROM drop_counts")
    assert rows, "the background task flushed nothing"
    assert {(r["app_name"], r["reason"]): r["count"] for r in rows} == dict(answered)
    assert answered == {("admin-console", "UNKNOWN_EVENT_TYPE"): 2, ("<unlisted>", "UNKNOWN_APP"): 1}
    hour = dt.datetime.now(dt.UTC).replace(minute=0, second=0, microsecond=0)
    assert all(r["hour"] in (hour, hour - dt.timedelta(hours=1)) for r in rows)


async def test_counts_add_up_and_survive_an_outage(empty_db: str) -> None:
    from app.storage.migrations import migrate

    await migrate(empty_db)
    at = dt.datetime(2026, 3, 18, 9, 41, tzinfo=dt.UTC)
    down = DropCounter("postgresql://nobody@127.0.0.1:1/none", interval=60)
    down.add(at, "admin-console", "BOT", 3)
    await down.flush()  # the database is unreachable: the counts are kept for the next flush
    assert sum(down.counts.values()) == 3
    counter = DropCounter(asyncpg_dsn(empty_db), interval=60)
    counter.counts = down.counts
    counter.add(at + dt.timedelta(minutes=10), "admin-console", "BOT")
    await counter.flush()
    counter.add(at, "admin-console", "BOT", 2)
    await counter.stop()  # stopping flushes what is left
    rows = await fetch(empty_db, "SELECT hour, app_name, reason, count FROM drop_counts")
    assert [(r["hour"], r["reason"], r["count"]) for r in rows] == [(at.replace(minute=0), "BOT", 6)]
