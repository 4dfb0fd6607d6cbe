"""The digest's numbers for one app and one closed period (a UTC day or an ISO week).

Everything is counted per event type with the read side's statistics
(`app.read.queries.fetch_stats_totals`, the same SQL as `eventStats(...).totals`), for the
period and for the one before it:

- events, and summed daily users: each UTC day's distinct users added up (a person active
  on three days counts three times; it is not a count of people);
- top features: the event types with most events;
- movers: the largest rises and falls in events against the previous period;
- first seen: types with events in the period and none before it (within retention);
- gone silent: types with events in the previous period and none in this one;
- drops by reason: from `drop_counts`, this period and the previous one.

Periods are closed: the digest for "day" at `now` is the UTC day before `now`'s day; for
"week", the ISO week (Monday 00:00 UTC) before `now`'s week.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Literal

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from app.read.queries import BucketUnit, Dimension, EventFilterSpec, StatsRequest, fetch_stats_totals

Period = Literal["day", "week"]
TOP = 5
ALL_TYPES = 10_000  # the number of event types an app has is bounded by its allowlist


@dataclass(frozen=True)
class Window:
    start: dt.datetime
    end: dt.datetime

    @property
    def previous(self) -> Window:
        return Window(self.start - (self.end - self.start), self.start)


def closed_period(period: Period, now: dt.datetime) -> Window:
    """The last closed UTC day or ISO week before `now`."""
    unit = BucketUnit.DAY if period == "day" else BucketUnit.WEEK
    end = unit.start(now)
    return Window(end - unit.step, end)


@dataclass(frozen=True)
class TypeCount:
    event_type: str
    events: int
    summed_daily_users: int
    previous_events: int = 0
    previous_summed_daily_users: int = 0

    @property
    def change(self) -> int:
        return self.events - self.previous_events


@dataclass
class Digest:
    app: str
    period: str
    window: Window
    events: int
    summed_daily_users: int
    previous_events: int
    previous_summed_daily_users: int
    types: list[TypeCount]
    first_seen: list[str]
    gone_silent: list[str]
    drops: dict[str, int]
    previous_drops: dict[str, int]
    top: list[TypeCount] = field(default_factory=list)
    movers_up: list[TypeCount] = field(default_factory=list)
    movers_down: list[TypeCount] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.top = [t for t in sorted(self.types, key=lambda t: (-t.events, t.event_type)) if t.events][:TOP]
        self.movers_up = [t for t in sorted(self.types, key=lambda t: (-t.change, t.event_type)) if t.change > 0][:TOP]
        self.movers_down = [t for t in sorted(self.types, key=lambda t: (t.change, t.event_type)) if t.change < 0][:TOP]


def percent_change(now: int, before: int) -> str:
    """ "+12%", "-3%", "new" (nothing before), "0%"."""
    if before == 0:
        return "new" if now else "0%"
    return f"{(now - before) * 100 / before:+.0f}%"


async def per_type(conn: AsyncConnection, app: str, window: Window) -> dict[str, tuple[int, int]]:
    """event type -> (events, summed daily users) in `window`."""
    spec = EventFilterSpec(app_name=app, start=window.start, end=window.end)
    rows = await fetch_stats_totals(conn, StatsRequest(spec, (Dimension.EVENT_TYPE,), users=True), ALL_TYPES)
    return {str(row.group[0]): (row.events, row.summed_daily_users or 0) for row in rows}


async def totals(conn: AsyncConnection, app: str, window: Window) -> tuple[int, int]:
    """(events, summed daily users) of the app in `window`."""
    spec = EventFilterSpec(app_name=app, start=window.start, end=window.end)
    rows = await fetch_stats_totals(conn, StatsRequest(spec, (), users=True), 1)
    return (rows[0].events, rows[0].summed_daily_users or 0) if rows else (0, 0)


async def drops_by_reason(conn: AsyncConnection, app: str, window: Window) -> dict[str, int]:
    rows = await conn.execute(
        text(
            "SELECT reason, sum(count)::bigint AS n FROM drop_counts "
            "WHERE app_name = :app AND hour >= :start AND hour < :end GROUP BY reason ORDER BY reason"
        ),
        {"app": app, "start": window.start, "end": window.end},
    )
    return {row.reason: row.n for row in rows}


async def seen_before(conn: AsyncConnection, app: str, types: list[str], before: dt.datetime) -> set[str]:
    """The types among `types` with an event before `before` (one index probe each)."""
    if not types:
        return set()
    rows = await conn.execute(
        text(
            "SELECT t FROM unnest(CAST(:types AS text[])) AS t WHERE EXISTS "
            "(SELECT 1 FROM events WHERE app_name = :app AND event_type = t AND created_at < :before)"
        ),
        {"types": types, "app": app, "before": before},
    )
    return {str(row[0]) for row in rows}


async def build_digest(conn: AsyncConnection, app: str, period: Period, now: dt.datetime) -> Digest:
    window = closed_period(period, now)
    current, previous = await per_type(conn, app, window), await per_type(conn, app, window.previous)
    events, users = await totals(conn, app, window)
    previous_events, previous_users = await totals(conn, app, window.previous)
    types = [
        TypeCount(name, *current.get(name, (0, 0)), *previous.get(name, (0, 0)))
        for name in sorted(current.keys() | previous.keys())
    ]
    new = sorted(current.keys() - await seen_before(conn, app, sorted(current), window.start))
    return Digest(
        app=app,
        period=period,
        window=window,
        events=events,
        summed_daily_users=users,
        previous_events=previous_events,
        previous_summed_daily_users=previous_users,
        types=types,
        first_seen=new,
        gone_silent=sorted(previous.keys() - current.keys()),
        drops=await drops_by_reason(conn, app, window),
        previous_drops=await drops_by_reason(conn, app, window.previous),
    )
