"""bench/query.py cases for event properties (issue 14, acceptance 3), through the resolvers'
own code (app.read.property_stats, app.read.queries):

- 30-day breakdown of `lang` for admin-console + view, DAY buckets, top 10: p95 <= 300 ms.
  The first ask stores each closed day's value counts (day_answers); the timed runs then
  read those and count the window's cut first day and today live.
- events page of 100 for admin-console + view with lang == "de", first page: p95 <= 50 ms.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Awaitable, Callable

from sqlalchemy.ext.asyncio import AsyncEngine

from app.read import property_stats, queries
from app.read.properties import PropertyCondition, PropertyOp

PARALLELISM = 2  # SIGNALS_STATS_PARALLELISM's default
RETENTION_DAYS = 180


async def breakdown_30_days(engine: AsyncEngine, end: dt.datetime) -> object:
    spec = queries.EventFilterSpec(
        app_name="admin-console", event_types=("view",), start=end - dt.timedelta(days=30), end=end
    )
    result = await property_stats.fetch_breakdown(
        engine,
        spec,
        ("lang",),
        top=10,
        unit=queries.BucketUnit.DAY,
        max_rows=10_000,
        parallelism=PARALLELISM,
        retention_days=RETENTION_DAYS,
    )
    assert result.values, "no lang values: does the generator write descriptions?"
    return result


async def filtered_page(engine: AsyncEngine, end: dt.datetime) -> object:
    spec = queries.EventFilterSpec(
        app_name="admin-console",
        event_types=("view",),
        properties=(PropertyCondition.build("lang", PropertyOp.EQ, "de"),),
    )
    async with engine.connect() as conn:
        rows, _more = await queries.fetch_events_page(conn, spec, 100, None)
    assert rows
    return rows


CASES: list[tuple[str, float, Callable[[AsyncEngine, dt.datetime], Awaitable[object]]]] = [
    ("propertyBreakdown lang, 30 days, admin-console + view", 300, breakdown_30_days),
    ('events page of 100, admin-console + view, lang == "de"', 50, filtered_page),
]
