"""Seeded data for the report tests with a fixed clock, and its numbers recounted in Python
from the raw rows (never by app.reports)."""

from __future__ import annotations

import datetime as dt
import random
from collections import Counter, defaultdict

import asyncpg

from app.storage.database import asyncpg_dsn
from testkit.seed import COLUMNS, event_row, insert_rows

UTC = dt.UTC
NOW = dt.datetime(2026, 3, 18, 9, 30, tzinfo=UTC)  # a Wednesday
WEEK = (dt.datetime(2026, 3, 9, tzinfo=UTC), dt.datetime(2026, 3, 16, tzinfo=UTC))  # the last closed ISO week
PREVIOUS = (dt.datetime(2026, 3, 2, tzinfo=UTC), WEEK[0])
DAY = (dt.datetime(2026, 3, 17, tzinfo=UTC), dt.datetime(2026, 3, 18, tzinfo=UTC))
APP = "admin-console"
AT, APP_NAME, EVENT_TYPE, USER_HASH = (COLUMNS.index(c) for c in ("created_at", "app_name", "event_type", "user_hash"))


def digest_rows() -> list[tuple]:
    """Two weeks and two days of events; `search` is new in the last week, `legacy` goes silent,
    `export` falls and `click` rises; another app's events must not count."""
    rng = random.Random(16)
    rows = []
    plan = {  # type -> (events in the previous week, in the last week)
        "click": (120, 260),
        "view": (200, 210),
        "export": (90, 30),
        "search": (0, 15),
        "legacy": (10, 0),
    }
    for event_type, (before, after) in plan.items():
        for count, (start, end) in ((before, PREVIOUS), (after, WEEK)):
            for _ in range(count):
                at = start + dt.timedelta(seconds=rng.randrange(int((end - start).total_seconds())))
                rows.append(event_row(at, APP, event_type, person=f"p{rng.randrange(25)}"))
    for _ in range(40):  # the day before NOW's day, for the daily digest
        at = DAY[0] + dt.timedelta(seconds=rng.randrange(86_400))
        rows.append(event_row(at, APP, rng.choice(["click", "view"]), person=f"p{rng.randrange(25)}"))
    for _ in range(80):
        at = WEEK[0] + dt.timedelta(seconds=rng.randrange(7 * 86_400))
        rows.append(event_row(at, "billing-admin", "click", person=f"p{rng.randrange(25)}"))
    return rows


DROPS = [  # (hour, app, reason, count)
    (dt.datetime(2026, 3, 10, 14, tzinfo=UTC), APP, "UNKNOWN_EVENT_TYPE", 5),
    (dt.datetime(2026, 3, 12, 9, tzinfo=UTC), APP, "UNKNOWN_EVENT_TYPE", 2),
    (dt.datetime(2026, 3, 13, 9, tzinfo=UTC), APP, "BOT", 3),
    (dt.datetime(2026, 3, 4, 9, tzinfo=UTC), APP, "UNKNOWN_EVENT_TYPE", 1),
    (dt.datetime(2026, 3, 10, 14, tzinfo=UTC), "billing-admin", "BOT", 50),
]


async def insert_drops(url: str, drops: list[tuple[dt.datetime, str, str, int]]) -> None:
    conn = await asyncpg.connect(asyncpg_dsn(url))
    try:
        await conn.executemany("INSERT INTO drop_counts (hour, app_name, reason, count) VALUES ($1, $2, $3, $4)", drops)
    finally:
        await conn.close()


async def seed_digest(url: str) -> list[tuple]:
    rows = digest_rows()
    await insert_rows(url, rows)
    await insert_drops(url, DROPS)
    return rows


def recount(rows: list[tuple], app: str, start: dt.datetime, end: dt.datetime) -> dict[str, tuple[int, int]]:
    """event type -> (events, distinct (UTC day, userHash) pairs), and "" -> the app's totals."""
    events: Counter[str] = Counter()
    pairs: defaultdict[str, set[tuple[dt.date, str]]] = defaultdict(set)
    for row in rows:
        if row[APP_NAME] == app and start <= row[AT] < end:
            for key in (row[EVENT_TYPE], ""):
                events[key] += 1
                pairs[key].add((row[AT].astimezone(UTC).date(), row[USER_HASH]))
    return {key: (events[key], len(pairs[key])) for key in events}


def drops_recount(app: str, start: dt.datetime, end: dt.datetime) -> dict[str, int]:
    found: Counter[str] = Counter()
    for hour, drop_app, reason, count in DROPS:
        if drop_app == app and start <= hour < end:
            found[reason] += count
    return dict(found)
