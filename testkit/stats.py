"""A database seeded with known events, and `eventStats` answers recounted from its raw rows
in Python, independently of app.read.queries' SQL (only its bucket boundaries are reused)."""

from __future__ import annotations

import datetime as dt
import random
from collections import defaultdict
from collections.abc import AsyncIterator
from typing import Any

import asyncpg

from app.read import queries
from app.storage.database import asyncpg_dsn
from app.storage.migrations import migrate
from testkit.database import create_database, drop_database
from testkit.seed import event_row, insert_rows, user_hash

COLUMNS = {  # StatsDimension -> the events column it groups by
    "APP_NAME": "app_name",
    "EVENT_TYPE": "event_type",
    "ROUTE": "route",
    "ENTITY_TYPE": "entity_type",
    "ENTITY_ID": "entity_id",
    "DEVICE_TYPE": "device_type",
    "BROWSER_FAMILY": "browser_family",
    "OS_FAMILY": "os_family",
}


async def seeded_database(pg_server: str) -> AsyncIterator[str]:
    """A migrated database of its own holding exactly `seed_rows()`, dropped afterwards."""
    url = await create_database(pg_server)
    await migrate(url)
    await insert_rows(url, seed_rows())
    try:
        yield url
    finally:
        await drop_database(pg_server, url)


def seed_rows() -> list[tuple]:
    """~900 events over 10 days across UTC midnights, two apps, NULL routes and sessions."""
    rng = random.Random(42)
    start = dt.datetime(2026, 3, 5, 20, 0, tzinfo=dt.timezone(dt.timedelta(hours=-5)))  # a Thursday, not UTC
    rows = []
    for _ in range(900):
        at = start + dt.timedelta(minutes=rng.randrange(10 * 24 * 60))
        person = f"p{min(int(rng.paretovariate(1.2)), 40)}"
        # one event in 10 carries the previous day's hash (stamped just after midnight with
        # the old salt): then a week's distinct hashes differ from its summed daily users
        hash_day = at.astimezone(dt.UTC).date() - dt.timedelta(days=1 if rng.random() < 0.1 else 0)
        rows.append(
            event_row(
                at,
                rng.choice(["admin-console", "admin-console", "billing-admin"]),
                rng.choice(["click", "view", "view", "export"]),
                person=person,
                route=rng.choice([None, "/orders", "/orders/:id", "/customers"]),
                entity_type=rng.choice([None, "order"]),
                session_id=rng.choice([None, f"s-{person}-{rng.randrange(3)}"]),
                device_type=rng.choice(["desktop", "mobile", "tablet"]),
                browser_family=rng.choice(["Firefox", "Chrome"]),
                user_hash=user_hash(person, hash_day),
            )
        )
    return rows


async def raw_rows(url: str) -> list[asyncpg.Record]:
    conn = await asyncpg.connect(asyncpg_dsn(url))
    try:
        return await conn.fetch("SELECT * FROM events")
    finally:
        await conn.close()


def recount(rows: list[Any], group_by: list[str], interval: str) -> tuple[list[dict], list[dict]]:
    """Expected buckets and totals, counted in Python from the raw rows."""
    per_bucket: dict[tuple, list[Any]] = defaultdict(list)
    for row in rows:
        key = (queries.BucketUnit[interval].start(row["created_at"]), *(row[COLUMNS[d]] for d in group_by))
        per_bucket[key].append(row)

    def summed_daily(members: list[Any]) -> int:
        days: dict[dt.date, set[str]] = defaultdict(set)
        for row in members:
            days[row["created_at"].astimezone(dt.UTC).date()].add(row["user_hash"])
        return sum(len(users) for users in days.values())

    def sessions(members: list[Any]) -> int:
        return len({row["session_id"] for row in members if row["session_id"] is not None})

    def group(values: tuple) -> list[dict]:
        return [{"dimension": d, "value": v} for d, v in zip(group_by, values, strict=True)]

    buckets = [
        {
            "start": key[0].isoformat(),
            "group": group(key[1:]),
            "events": len(members),
            "distinctUsers": None if interval == "WEEK" else len({row["user_hash"] for row in members}),
            "summedDailyUsers": summed_daily(members),
            "distinctSessions": sessions(members),
        }
        for key, members in per_bucket.items()
    ]
    buckets.sort(key=lambda b: (b["start"], *[(v["value"] is None, v["value"] or "") for v in b["group"]]))
    per_group: dict[tuple, list[Any]] = defaultdict(list)
    for row in rows:
        per_group[tuple(row[COLUMNS[d]] for d in group_by)].append(row)
    totals = [
        {
            "group": group(key),
            "events": len(members),
            "summedDailyUsers": summed_daily(members),
            "distinctSessions": sessions(members),
        }
        for key, members in per_group.items()
    ]
    totals.sort(key=lambda t: (-t["events"], *[(v["value"] is None, v["value"] or "") for v in t["group"]]))
    return buckets, totals


def matches(row: Any, event_filter: dict[str, Any]) -> bool:
    at = row["created_at"]
    return (
        event_filter.get("appName", row["app_name"]) == row["app_name"]
        and event_filter.get("deviceType", row["device_type"]) == row["device_type"]
        and row["event_type"] in event_filter.get("eventTypes", [row["event_type"]])
        and at >= dt.datetime.fromisoformat(event_filter.get("from", "2000-01-01T00:00:00Z"))
        and at < dt.datetime.fromisoformat(event_filter.get("to", "2100-01-01T00:00:00Z"))
    )
