"""bench/query.py cases for the insights of app.read.adoption and app.read.funnels, timed
through the resolvers' own functions on the benchmark's data (4 apps, admin-console the
busiest; a session per person-day).

- 30-day adoption of exports among admin-console's daily users and sessions (p95 <= 300 ms;
  whole closed days come from day_answers after the first ask, today is counted live);
- a 3-step session funnel view -> search -> export in admin-console over the last 30 days
  (p95 <= 1 s; always counted live, split over 2 connections, see app/read/funnels.py).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Awaitable, Callable

from sqlalchemy.ext.asyncio import AsyncEngine

from app.read.adoption import AdoptionRequest, fetch_adoption
from app.read.funnels import FunnelRequest, FunnelUnit, fetch_funnel
from app.read.queries import EventFilterSpec

RETENTION_DAYS = 366  # keeps every benchmark day (180 by default) after the retention cutoff
WINDOW = dt.timedelta(days=30)
PARALLELISM = 2  # SIGNALS_STATS_PARALLELISM's default, as the resolver runs it


async def adoption_30_days(engine: AsyncEngine, end: dt.datetime) -> object:
    request = AdoptionRequest(
        EventFilterSpec(app_name="admin-console", start=end - WINDOW, end=end), EventFilterSpec(event_types=("export",))
    )
    days = await fetch_adoption(engine, request, retention_days=RETENTION_DAYS)
    assert sum(day.target_users for day in days) > 0
    return days


async def session_funnel_30_days(engine: AsyncEngine, end: dt.datetime) -> object:
    request = FunnelRequest(
        window=EventFilterSpec(app_name="admin-console", start=end - WINDOW, end=end),
        steps=tuple(EventFilterSpec(event_types=(kind,)) for kind in ("view", "search", "export")),
        unit=FunnelUnit.SESSION,
    )
    result = await fetch_funnel(engine, request, PARALLELISM)
    assert result.overall[-1].entered > 0
    return result


CASES: list[tuple[str, float, Callable[[AsyncEngine, dt.datetime], Awaitable[object]]]] = [
    ("adoption, 30 days, one app (exports among daily users)", 300, adoption_30_days),
    ("funnel view -> search -> export per session, 30 days, one app", 1000, session_funnel_30_days),
]
