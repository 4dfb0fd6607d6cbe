"""Daily distinct users per app, kept in `daily_app_users` for closed UTC days: the
dashboard's "users per day for this app" without rehashing millions of rows each time.

Exactness. A stored closed day is served as stored: its events do not change, and each
of the few things that could change them forgets the day (`app.storage.answers`). A day
without a row is counted from the events and stored. Days not yet over (plus a grace hour
for in-flight inserts), days cut by the query's window, and the day the retention cutoff
falls in are always counted live.

What it serves: `eventStats` with a filter of `appName` (and `from`/`to`) only, `groupBy`
[] or [APP_NAME], interval DAY or WEEK, asking users but not `distinctSessions`. Every
other question goes straight to the events table.
"""

from __future__ import annotations

import asyncio
import datetime as dt
from dataclasses import replace

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from app.read.daycache import runs_of_days
from app.read.queries import EQUALITY_FILTERS, BucketUnit, Dimension, StatsRequest, StatsRow, fetch_stats_buckets_split
from app.storage.answers import GRACE

DAY = dt.timedelta(days=1)


async def stats_buckets(
    engine: AsyncEngine,
    request: StatsRequest,
    max_rows: int,
    parallelism: int,
    *,
    retention_days: int,
    store: AsyncEngine | None = None,
) -> list[StatsRow]:
    """What `eventStats.buckets` runs: the rollup when it can answer, the events otherwise.
    Reads on `engine`; counted days are stored on `store` (the primary; default `engine`)."""
    if eligible(request):
        return await fetch_buckets(
            engine,
            request,
            max_rows,
            parallelism,
            now=dt.datetime.now(dt.UTC),
            retention_days=retention_days,
            store=store,
        )
    return await fetch_stats_buckets_split(engine, request, max_rows, parallelism)


def eligible(request: StatsRequest) -> bool:
    spec = request.spec
    return (
        spec.app_name is not None
        and not spec.event_types
        and not spec.properties
        and all(getattr(spec, name) is None for name in EQUALITY_FILTERS if name != "app_name")
        and request.group_by in ((), (Dimension.APP_NAME,))
        and request.unit in (BucketUnit.DAY, BucketUnit.WEEK)
        and request.users
        and not request.sessions
    )


def trusted_days(
    request: StatsRequest, now: dt.datetime, retention_days: int
) -> tuple[dt.datetime, dt.datetime] | None:
    """[first, end) of the whole UTC days the rollup may answer for, or None."""
    spec = request.spec
    first = BucketUnit.DAY.start(now - dt.timedelta(days=retention_days)) + DAY  # the cutoff's own day stays live
    if spec.start is not None:
        day = BucketUnit.DAY.start(spec.start)
        first = max(first, day if day == spec.start else day + DAY)  # whole days only
    end = BucketUnit.DAY.start(now - GRACE)  # days that ended at least GRACE ago
    if spec.end is not None:
        end = min(end, BucketUnit.DAY.start(spec.end))
    return (first, end) if first < end else None


async def fetch_buckets(
    engine: AsyncEngine,
    request: StatsRequest,
    max_rows: int,
    parallelism: int,
    *,
    now: dt.datetime,
    retention_days: int,
    store: AsyncEngine | None = None,
) -> list[StatsRow]:
    """The same rows `fetch_stats_buckets_split` returns for an eligible request."""
    daily = replace(request, unit=BucketUnit.DAY, group_by=())
    days = trusted_days(request, now, retention_days)
    if days is None:
        rows = await fetch_stats_buckets_split(engine, daily, max_rows, parallelism)
    else:
        first, end = days
        spec = request.spec
        before = (
            []
            if spec.start is not None and spec.start >= first
            else await fetch_stats_buckets_split(
                engine, replace(daily, spec=replace(spec, end=first)), max_rows, parallelism
            )
        )
        after = (
            []
            if spec.end is not None and spec.end <= end
            else await fetch_stats_buckets_split(
                engine, replace(daily, spec=replace(spec, start=end)), max_rows, parallelism
            )
        )
        stored = await _stored_days(
            engine, store or engine, replace(daily, spec=replace(spec, start=first, end=end)), max_rows, parallelism
        )
        rows = before + stored + after
    return _shape(request, rows)


async def _stored_days(
    engine: AsyncEngine, store: AsyncEngine, daily: StatsRequest, max_rows: int, parallelism: int
) -> list[StatsRow]:
    """Users per day from `daily_app_users` on `engine`; days without a row are counted from
    the events and stored on `store` (a day without events as 0, so it is not counted again)."""
    spec = daily.spec
    assert spec.start is not None and spec.end is not None
    async with engine.connect() as conn:
        result = await conn.execute(
            text(
                "SELECT day, events, users FROM daily_app_users WHERE app_name = :app AND day >= :first AND day < :end"
            ),
            {"app": spec.app_name, "first": spec.start.date(), "end": spec.end.date()},
        )
        stored = {row.day: (row.events, row.users) for row in result}
    days = [spec.start + DAY * i for i in range((spec.end - spec.start) // DAY)]
    missing = [day for day in days if day.date() not in stored]
    counted = await asyncio.gather(
        *(
            fetch_stats_buckets_split(engine, replace(daily, spec=replace(spec, start=a, end=b)), max_rows, parallelism)
            for a, b in runs_of_days(missing)
        )
    )
    fresh = {row.bucket: row for rows in counted for row in rows if row.bucket is not None}
    if missing:
        async with store.begin() as conn:
            await conn.execute(
                text(
                    "INSERT INTO daily_app_users (app_name, day, events, users) "
                    "VALUES (:app, :day, :events, :users) "
                    "ON CONFLICT (app_name, day) DO UPDATE SET events = EXCLUDED.events, users = EXCLUDED.users, "
                    "computed_at = now()"
                ),
                [
                    {
                        "app": spec.app_name,
                        "day": day.date(),
                        "events": fresh[day].events if day in fresh else 0,
                        "users": (fresh[day].distinct_users or 0) if day in fresh else 0,
                    }
                    for day in missing
                ],
            )
    rows = list(fresh.values())
    for day in days:
        events, users = stored.get(day.date(), (0, 0))
        if events:
            rows.append(StatsRow(group=(), events=events, bucket=day, distinct_users=users, summed_daily_users=users))
    return sorted(rows, key=lambda row: row.bucket or day)


def _shape(request: StatsRequest, daily: list[StatsRow]) -> list[StatsRow]:
    """Day rows as the request's buckets (weeks summed) and group ([] or [APP_NAME])."""
    group = (request.spec.app_name,) if request.group_by else ()
    if request.unit is BucketUnit.DAY:
        return [replace(row, group=group) for row in daily]
    weeks: dict[dt.datetime, StatsRow] = {}
    for row in daily:
        assert row.bucket is not None  # bucket rows always have one
        start = BucketUnit.WEEK.start(row.bucket)
        week = weeks.setdefault(start, StatsRow(group=group, events=0, bucket=start, summed_daily_users=0))
        week.events += row.events
        week.summed_daily_users = (week.summed_daily_users or 0) + (row.summed_daily_users or 0)
    return list(weeks.values())
