"""bench/query.py cases for comparisons and next events (issue 14, acceptance 3), through the
resolvers' own code:

- 30-day eventStats for admin-console + view, DAY buckets, as a dashboard asks it: the
  buckets and the window's total (events, summed daily users); then the same with
  compareTo PREVIOUS_PERIOD, which adds the previous 30 days' buckets and the deltas of the
  totals, all run concurrently as the GraphQL executor runs sibling fields. Target: the
  comparison costs at most 2x the plain query (RATIOS). The ms targets are 30-day insights'
  300 ms and twice it.
- nextEvents after admin-console views over 7 days, top 10 (no target in the issue; 1 s
  here). Needs the index on (session_id, created_at, id), one probe per view.
"""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import Awaitable, Callable
from dataclasses import replace

from sqlalchemy.ext.asyncio import AsyncEngine

from app.read import queries, rollup
from app.read.compare import Comparison, delta, previous_window
from app.read.journeys import NextEventsRequest, fetch_next_events

PARALLELISM = 2  # SIGNALS_STATS_PARALLELISM's default
RETENTION_DAYS = 366
MAX_BUCKETS = 10_000
WINDOW = dt.timedelta(days=30)


def _request(end: dt.datetime) -> queries.StatsRequest:
    day = end.replace(hour=0, minute=0, second=0, microsecond=0)
    spec = queries.EventFilterSpec(app_name="admin-console", event_types=("view",), start=day - WINDOW, end=day)
    return queries.StatsRequest(spec, unit=queries.BucketUnit.DAY, users=True)


async def _buckets(engine: AsyncEngine, request: queries.StatsRequest) -> list[queries.StatsRow]:
    return await rollup.stats_buckets(engine, request, MAX_BUCKETS, PARALLELISM, retention_days=RETENTION_DAYS)


async def _total(engine: AsyncEngine, request: queries.StatsRequest) -> queries.StatsRow:
    async with engine.connect() as conn:
        return (await queries.fetch_stats_totals(conn, request, 1))[0]


async def plain(engine: AsyncEngine, end: dt.datetime) -> object:
    request = _request(end)
    rows, total = await asyncio.gather(_buckets(engine, request), _total(engine, request))
    assert len(rows) >= 29 and total.events > 0
    return rows


async def compared(engine: AsyncEngine, end: dt.datetime) -> object:
    request = _request(end)
    assert request.spec.start is not None and request.spec.end is not None
    start, stop = previous_window(request.spec.start, request.spec.end, Comparison.PREVIOUS_PERIOD)
    before = replace(request, spec=replace(request.spec, start=start, end=stop))
    rows, total, previous_rows, previous_total = await asyncio.gather(
        _buckets(engine, request), _total(engine, request), _buckets(engine, before), _total(engine, before)
    )
    change = delta(total.events, previous_total.events)
    assert len(rows) >= 29 and len(previous_rows) >= 29 and change.previous > 0
    return rows, previous_rows, change


async def next_after_views(engine: AsyncEngine, end: dt.datetime) -> object:
    day = end.replace(hour=0, minute=0, second=0, microsecond=0)
    spec = queries.EventFilterSpec(app_name="admin-console", start=day - dt.timedelta(days=7), end=day)
    result = await fetch_next_events(engine, NextEventsRequest(spec, "view"), PARALLELISM)
    assert result.types
    return result


PLAIN = "eventStats 30-day daily, admin-console + view (plain)"
COMPARED = "  same, compareTo PREVIOUS_PERIOD"
CASES: list[tuple[str, float, Callable[[AsyncEngine, dt.datetime], Awaitable[object]]]] = [
    (PLAIN, 300, plain),  # the 30-day insight target; its target for comparisons is the ratio
    (COMPARED, 600, compared),
    ("nextEvents after views, 7 days, admin-console, top 10", 1000, next_after_views),  # no issue target
]
RATIOS = [("  comparison / plain", COMPARED, PLAIN, 2.0)]
