"""Adoption: per UTC day, how many of an app's active users (and sessions) did a target.

- The population is the events of the app(s) in [from, to): a day's active users are its
  distinct userHash, its active sessions its distinct sessionId (events without a
  sessionId belong to no session and are not counted as one).
- The target is a further filter on those events (event types, route, entity, property
  conditions): a day's target users are the distinct userHash of the day's matching
  events, target sessions their distinct sessionId.
- A person is a userHash within one UTC day; nothing joins days. Totals over the window
  are sums of the daily figures (`summed_daily_*`): someone active on 5 days counts 5
  times. They are NOT numbers of people (or of sessions: a session across a UTC
  midnight counts once on each of its days).

Every daily figure is a count over that day's events only, so whole closed days are
served from `day_answers` (app.read.daycache) and merge exactly by summing. Days cut by
`from`/`to` and open days are counted live.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from app.read import daycache
from app.read.queries import EventFilterSpec, QueryInputError
from app.read.window import DaySlice, only_fields, renamed, utc_days

KIND = "adoption/1"
POPULATION_FIELDS = {"app_name", "start", "end"}
TARGET_FORBIDDEN = {"app_name", "start", "end"}  # the population's: one app, one window


@dataclass(frozen=True)
class AdoptionRequest:
    population: EventFilterSpec
    target: EventFilterSpec

    def __post_init__(self) -> None:
        only_fields(self.population, POPULATION_FIELDS, "population")
        for name in sorted(TARGET_FORBIDDEN):
            if getattr(self.target, name) is not None:
                raise QueryInputError(
                    "target must not set appName, from or to: the population's app and window apply to it"
                )
        if not self.target.event_types:
            raise QueryInputError("target.eventTypes must name at least one event type")


@dataclass(frozen=True)
class AdoptionDay:
    day: dt.date
    active_users: int = 0
    target_users: int = 0
    active_sessions: int = 0
    target_sessions: int = 0


def _statement(request: AdoptionRequest) -> tuple[str, dict[str, Any]]:
    """Per slice (day, lower, upper) the four distinct counts, each slice counted by its own
    index range scan (LATERAL) over the population's events."""
    population, params = replace(request.population, start=None, end=None).where()
    target, target_params = renamed(request.target.where(), "t_")
    sql = (
        "SELECT slots.day, counted.* FROM unnest(CAST(:days AS date[]), CAST(:lowers AS timestamptz[]), "
        "CAST(:uppers AS timestamptz[])) AS slots(day, lower, upper) CROSS JOIN LATERAL ("
        "SELECT count(DISTINCT user_hash) AS active_users, "
        f"count(DISTINCT user_hash) FILTER (WHERE {target}) AS target_users, "
        "count(DISTINCT session_id) AS active_sessions, "
        f"count(DISTINCT session_id) FILTER (WHERE {target}) AS target_sessions "
        f"FROM events WHERE {population} AND created_at >= slots.lower AND created_at < slots.upper"
        ") AS counted WHERE counted.active_users > 0"
    )
    return sql, {**params, **target_params}


async def count_slices(engine: AsyncEngine, request: AdoptionRequest, slices: list[DaySlice]) -> dict[dt.date, Any]:
    """{day: the day's four counts as a dict} for the slices with population events."""
    if not slices:
        return {}
    sql, params = _statement(request)
    params.update(days=[s.day for s in slices], lowers=[s.lower for s in slices], uppers=[s.upper for s in slices])
    async with engine.connect() as conn:
        result = await conn.execute(text(sql), params)
        return {
            row.day: {
                "active_users": row.active_users,
                "target_users": row.target_users,
                "active_sessions": row.active_sessions,
                "target_sessions": row.target_sessions,
            }
            for row in result
        }


def cache_key(request: AdoptionRequest) -> dict[str, Any]:
    """Everything that shapes a whole day's answer: both filters' conditions, as SQL and
    parameters (the window is the day itself)."""
    population = replace(request.population, start=None, end=None).where()
    return {"population": list(population), "target": list(request.target.where())}


async def fetch_adoption(
    engine: AsyncEngine,
    request: AdoptionRequest,
    *,
    retention_days: int,
    now: dt.datetime | None = None,
    store: AsyncEngine | None = None,
) -> list[AdoptionDay]:
    """One AdoptionDay per UTC day the window touches (zeros for days without events).
    Closed days' answers are stored on `store` (the primary; default `engine`)."""
    slices = utc_days(request.population, "population")
    whole = [s for s in slices if s.whole]
    cut = [s for s in slices if not s.whole]
    by_day = {s.day: s for s in slices}

    async def compute(first: dt.date, end: dt.date) -> Mapping[dt.date, Any]:
        return await count_slices(engine, request, [by_day[d] for d in sorted(by_day) if first <= d < end])

    answers: dict[dt.date, Any] = await count_slices(engine, request, cut)
    if whole:  # whole days are contiguous: the window's cut days can only be its first and last
        answers.update(
            await daycache.per_day(
                engine,
                kind=KIND,
                key=cache_key(request),
                first=whole[0].day,
                end=whole[-1].day + daycache.DAY,
                compute=compute,
                retention_days=retention_days,
                now=now,
                store=store,
            )
        )
    return [AdoptionDay(s.day, **answers.get(s.day, {})) for s in slices]
