"""Funnels: how many units (sessions, or user-days) went through ordered steps, and how fast.

Definitions (the tests' reference implementation follows them word for word):

- A unit is a sessionId (SESSION) or a userHash within one UTC day (USER_DAY). Events
  without a sessionId are never part of a session funnel; they count in user-day funnels.
  A session is one unit across UTC midnight; a user-day never spans midnight (the hash
  changes, and the unit is the hash together with the event's UTC day).
- Only events in the window [from, to) of the app count, for every step. A unit is counted
  when its step-1 event lies in the window, so a session across midnight is counted once,
  on the day of its step 1.
- The unit's events are ordered by (createdAt, id). It enters step 1 at its FIRST event
  matching step 1; each next step is the first event matching that step strictly after the
  previous step's matched event (greedy, earliest). One event matches at most one step.
  Repeating step 1 later does not restart the chain; a later step's event that comes
  before the earlier step's matched event does not count (only the ordered chain does).
- `within`: every step's event is at most `within` after the unit's step-1 event.
- Breakdown: a unit belongs to the group of its step-1 event's value of the dimension.
- Per step k: entered = units whose chain reached k; converted = entered of k+1 (none for
  the last step); dropped = entered - converted; conversion from start = entered /
  entered of step 1, from previous = entered / entered of step k-1; median seconds to
  convert from the previous step's event and from the step-1 event, over the units that
  entered k (the mean of the two middle values when their number is even).

One statement, one ordered pass per unit: the events matching ANY step (by the app and
time index) are numbered per unit in (createdAt, id) order, then step k's matched event is
found with one window aggregate over the unit: the smallest number matching step k after
step k-1's (and within `within` of step 1). Everything is computed live: a session's chain
may continue on later days and its step 1 be preceded by an earlier one on the day before,
so per-day answers would not merge exactly (and medians never merge by summing).
"""

from __future__ import annotations

import datetime as dt
import enum
from dataclasses import dataclass
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from app.read.queries import Dimension, EventFilterSpec, QueryInputError
from app.read.window import only_fields, renamed, utc_days

MIN_STEPS, MAX_STEPS = 2, 10
MAX_TOP = 100
WINDOW_FIELDS = {"app_name", "start", "end"}
STEP_FORBIDDEN = {"app_name", "start", "end", "session_id", "user_hash"}
# sorting ~1M candidate rows in memory rather than in temporary files
WORK_MEM = "64MB"


class FunnelUnit(enum.Enum):
    """What a funnel counts. GraphQL's `FunnelUnit`."""

    SESSION = "session"
    USER_DAY = "user_day"


@dataclass(frozen=True)
class FunnelRequest:
    window: EventFilterSpec
    steps: tuple[EventFilterSpec, ...]
    unit: FunnelUnit = FunnelUnit.SESSION
    within: dt.timedelta | None = None
    breakdown: Dimension | None = None
    top: int = 20

    def __post_init__(self) -> None:
        only_fields(self.window, WINDOW_FIELDS, "filter")
        utc_days(self.window, "filter")
        if not MIN_STEPS <= len(self.steps) <= MAX_STEPS:
            raise QueryInputError(f"a funnel has {MIN_STEPS} to {MAX_STEPS} steps; {len(self.steps)} were given")
        for number, step in enumerate(self.steps, 1):
            if not step.event_types:
                raise QueryInputError(f"steps[{number - 1}].eventTypes must name at least one event type")
            if any(getattr(step, name) is not None for name in STEP_FORBIDDEN):
                raise QueryInputError(
                    f"steps[{number - 1}] must not set appName, from, to, sessionId or userHash: "
                    "the funnel's filter and unit apply to every step"
                )
        if self.within is not None and self.within <= dt.timedelta(0):
            raise QueryInputError("within must be a positive number of seconds")
        if not 1 <= self.top <= MAX_TOP:
            raise QueryInputError(f"breakdownTop must be between 1 and {MAX_TOP}")


@dataclass(frozen=True)
class StepFigures:
    entered: int
    median_from_previous: float | None
    median_from_start: float | None


@dataclass(frozen=True)
class FunnelGroup:
    value: str | None
    steps: list[StepFigures]


@dataclass(frozen=True)
class FunnelResult:
    overall: list[StepFigures]
    groups: list[FunnelGroup]  # empty without a breakdown; at most `top`, by step-1 units desc


def funnel_query(request: FunnelRequest) -> tuple[str, dict[str, Any]]:
    n = len(request.steps)
    window, params = request.window.where()
    conditions = []
    for number, step in enumerate(request.steps, 1):
        condition, step_params = renamed(step.where(), f"s{number}_")
        conditions.append(f"({condition})")
        params.update(step_params)
    params["types"] = sorted({t for step in request.steps for t in step.event_types or ()})
    if request.unit is FunnelUnit.SESSION:
        unit_columns = "session_id AS u1, NULL::date AS u2"
        window += " AND session_id IS NOT NULL"
    else:
        unit_columns = "user_hash AS u1, (created_at AT TIME ZONE 'UTC')::date AS u2"
    dim = "NULL::text" if request.breakdown is None else request.breakdown.value  # a fixed column name
    marks = ", ".join(f"{c} AS s{k}" for k, c in enumerate(conditions, 1))
    layers = [
        f"base AS (SELECT {unit_columns}, created_at, id, {dim} AS grp, {marks} FROM events "
        f"WHERE {window} AND event_type = ANY(CAST(:types AS text[])) AND ({' OR '.join(conditions)}))",
        "m AS (SELECT base.*, row_number() OVER (PARTITION BY u1, u2 ORDER BY created_at, id) AS rn FROM base)",
        "l1 AS (SELECT m.*, min(rn) FILTER (WHERE s1) OVER w AS r1, min(created_at) FILTER (WHERE s1) OVER w AS t1 "
        "FROM m WINDOW w AS (PARTITION BY u1, u2))",
    ]
    within = ""
    if request.within is not None:
        within = " AND created_at <= t1 + CAST(:within AS interval)"
        params["within"] = request.within
    for k in range(2, n + 1):
        after = f"s{k} AND rn > r{k - 1}{within}"
        layers.append(
            f"l{k} AS (SELECT l{k - 1}.*, min(rn) FILTER (WHERE {after}) OVER w AS r{k}, "
            f"min(created_at) FILTER (WHERE {after}) OVER w AS t{k} FROM l{k - 1} WINDOW w AS (PARTITION BY u1, u2))"
        )
    times = ", ".join(f"min(t{k}) AS t{k}" for k in range(1, n + 1))
    layers.append(
        f"units AS (SELECT {times}, min(grp) FILTER (WHERE rn = r1) AS grp FROM l{n} "
        "GROUP BY u1, u2 HAVING min(r1) IS NOT NULL)"
    )
    figures = [f"count(t{k}) AS e{k}" for k in range(1, n + 1)]
    for k in range(2, n + 1):
        figures.append(f"percentile_cont(0.5) WITHIN GROUP (ORDER BY {_seconds(k - 1, k)}) AS p{k}")
        figures.append(f"percentile_cont(0.5) WITHIN GROUP (ORDER BY {_seconds(1, k)}) AS q{k}")
    if request.breakdown is None:
        final = f"SELECT 1 AS overall, NULL::text AS grp, {', '.join(figures)} FROM units"
    else:  # the overall row (GROUPING 1) and one per value of the step-1 event's dimension
        final = (
            f"SELECT GROUPING(grp) AS overall, grp, {', '.join(figures)} FROM units GROUP BY GROUPING SETS ((), (grp))"
        )
    sql = (
        f"WITH {', '.join(layers)} SELECT * FROM ({final}) AS figures "
        'ORDER BY overall DESC, e1 DESC, grp COLLATE "C" NULLS FIRST LIMIT :limit'
    )
    return sql, {**params, "limit": request.top + 1}


def _seconds(a: int, b: int) -> str:
    return f"CAST(extract(epoch FROM t{b} - t{a}) AS double precision)"


async def fetch_funnel(engine: AsyncEngine, request: FunnelRequest) -> FunnelResult:
    sql, params = funnel_query(request)
    n = len(request.steps)
    async with engine.begin() as conn:
        await conn.execute(text(f"SET LOCAL work_mem = '{WORK_MEM}'"))
        rows = (await conn.execute(text(sql), params)).all()

    def figures(row: Any) -> list[StepFigures]:
        mapping = row._mapping
        return [
            StepFigures(
                entered=mapping[f"e{k}"],
                median_from_previous=None if k == 1 else mapping[f"p{k}"],
                median_from_start=None if k == 1 else mapping[f"q{k}"],
            )
            for k in range(1, n + 1)
        ]

    overall = next((figures(row) for row in rows if row.overall == 1), None)
    if overall is None:  # no unit at all: GROUP BY () still gives its row, but not with a breakdown
        overall = [StepFigures(0, None, None) for _ in range(n)]
    groups = [FunnelGroup(row.grp, figures(row)) for row in rows if row.overall == 0]
    return FunnelResult(overall=overall, groups=groups)
