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

How: one ordered pass per unit. The events matching ANY step (found by the app/type/time
index) are aggregated per unit into arrays in (createdAt, id) order, and each step's
matched event is the first array position after the previous step's that matches it
(`funnel_query`). The work can be split over several connections by a hash of the unit's
key (`fetch_funnel`); counts add up, and the conversion times come back sorted so the
medians are taken over all of them.

Everything is computed live, never from `day_answers`: a session's chain may continue on
later days and its step 1 may be preceded by an earlier step-1 event the day before, so a
day's answer would depend on the window's other days; and medians do not merge by
summing. A user-day funnel would merge per day, but it is as fast live.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import enum
import statistics
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


def funnel_query(request: FunnelRequest, *, part: int = 0, parts: int = 1) -> tuple[str, dict[str, Any]]:
    """One statement: the candidate events (matching any step, found by the app/type/time
    index) are aggregated per unit into arrays in (createdAt, id) order (`at` the times,
    `b<k>` whether each event matches step k); step k's matched event is then the first
    position after step k-1's where `b<k>` is true (`array_position` from there; past the
    end when step k-1 was not reached), kept when it is within `within` of step 1 (times
    ascend, so a later one would not be either)."""
    n = len(request.steps)
    window, params = request.window.where()
    conditions = []
    for number, step in enumerate(request.steps, 1):
        condition, step_params = renamed(step.where(), f"s{number}_")
        conditions.append(f"({condition})")
        params.update(step_params)
    params["types"] = sorted({t for step in request.steps for t in step.event_types or ()})
    key = "session_id" if request.unit is FunnelUnit.SESSION else "user_hash"
    if request.unit is FunnelUnit.SESSION:
        unit = 'session_id COLLATE "C" AS u1, NULL::date AS u2'  # byte order: the cheapest exact grouping
        window += " AND session_id IS NOT NULL"
    else:
        unit = "user_hash COLLATE \"C\" AS u1, (created_at AT TIME ZONE 'UTC')::date AS u2"
    if parts > 1:  # a unit's rows share its key, so the whole unit falls in one part
        window += f" AND (hashtext({key}) & 2147483647) % {int(parts)} = {int(part)}"
    marks = "".join(f", {c} AS s{k}" for k, c in enumerate(conditions, 1))
    dim = "" if request.breakdown is None else f", {request.breakdown.value} AS dim"  # a fixed column name
    # the step marks are computed before the sort, so it carries booleans rather than the columns
    candidates = (
        f"SELECT {unit}, created_at, id{marks}{dim} FROM events "
        f"WHERE {window} AND event_type = ANY(CAST(:types AS text[])) AND ({' OR '.join(conditions)}) OFFSET 0"
    )
    order = "ORDER BY created_at, id"
    arrays = [f"array_agg(created_at {order}) AS at"]
    arrays += [f"array_agg(s{k} {order}) AS b{k}" for k in range(1, n + 1)]
    if request.breakdown is not None:
        arrays.append(f"array_agg(dim {order}) AS g")
    units = f"SELECT {', '.join(arrays)} FROM ({candidates}) AS candidates GROUP BY u1, u2 HAVING bool_or(s1)"
    # one subquery level per step, fenced (OFFSET 0) so each position is computed once per unit
    levels = f"SELECT units.*, array_position(b1, true) AS p1 FROM ({units}) AS units OFFSET 0"
    for k in range(2, n + 1):
        found = f"array_position(b{k}, true, coalesce(p{k - 1} + 1, cardinality(b{k}) + 1))"
        if request.within is not None:
            found = f"CASE WHEN at[{found}] <= at[p1] + CAST(:within AS interval) THEN {found} END"
        levels = f"SELECT l.*, {found} AS p{k} FROM ({levels}) AS l OFFSET 0"
    if request.within is not None:
        params["within"] = request.within
    times = ", ".join(f"at[p{k}] AS t{k}" for k in range(1, n + 1))
    group = "NULL::text" if request.breakdown is None else "g[p1]"
    chains = f"SELECT {times}, {group} AS grp FROM ({levels}) AS chained"
    # per group: units per step, and each step's conversion times (seconds, ascending) from
    # the previous step's event (d<k>) and from step 1's (f<k>); medians are taken after the
    # parts are merged (a median does not merge, its sorted values do)
    figures = [f"count(t{k}) AS e{k}" for k in range(1, n + 1)]
    for k in range(2, n + 1):
        for name, a in (("d", k - 1), ("f", 1)):
            seconds = f"CAST(extract(epoch FROM t{k} - t{a}) AS double precision)"
            collected = f"array_agg({seconds} ORDER BY {seconds}) FILTER (WHERE t{k} IS NOT NULL)"
            figures.append(f"coalesce({collected}, '{{}}') AS {name}{k}")
    if request.breakdown is None:
        final = f"SELECT 1 AS overall, NULL::text AS grp, {', '.join(figures)} FROM chains"
    else:  # the overall row (GROUPING 1) and one per value of the step-1 event's dimension
        final = (
            f"SELECT GROUPING(grp) AS overall, grp, {', '.join(figures)} FROM chains GROUP BY GROUPING SETS ((), (grp))"
        )
    return f"WITH chains AS MATERIALIZED ({chains}) {final}", params


async def fetch_funnel(engine: AsyncEngine, request: FunnelRequest, parallelism: int = 1) -> FunnelResult:
    """The funnel, counted on up to `parallelism` pooled connections at once: part i takes the
    units whose hash (of sessionId or userHash) is i modulo the number of parts, so each unit
    is in exactly one part; counts add up and the conversion times are merged before the
    medians are taken. Every part reads all candidate rows; the sorting and aggregating,
    most of the work, is shared out."""
    parts = max(1, parallelism)
    n = len(request.steps)

    async def run(part: int) -> list[Any]:
        sql, params = funnel_query(request, part=part, parts=parts)
        async with engine.begin() as conn:
            await conn.execute(text(f"SET LOCAL work_mem = '{WORK_MEM}'"))
            return list((await conn.execute(text(sql), params)).all())

    # (overall flag, group value) -> units per step, and conversion times per step
    merged: dict[tuple[int, str | None], _Tally] = {}
    for rows in await asyncio.gather(*(run(part) for part in range(parts))):
        for row in rows:
            values = row._mapping
            tally = merged.setdefault((values["overall"], values["grp"]), _Tally(n))
            for k in range(1, n + 1):
                tally.entered[k - 1] += values[f"e{k}"]
                if k > 1:
                    tally.from_previous[k - 1].extend(values[f"d{k}"])
                    tally.from_start[k - 1].extend(values[f"f{k}"])
    overall = _Tally(n).figures()
    groups = []
    for (flag, value), tally in merged.items():
        if flag == 1:
            overall = tally.figures()
        elif tally.entered[0]:
            groups.append(FunnelGroup(value, tally.figures()))
    # the most step-1 units first, ties by value in byte order (None first)
    groups.sort(key=lambda g: (-g.steps[0].entered, g.value is not None, (g.value or "").encode()))
    return FunnelResult(overall=overall, groups=groups[: request.top])


class _Tally:
    """One group's figures summed over the parts."""

    def __init__(self, steps: int) -> None:
        self.entered = [0] * steps
        self.from_previous: list[list[float]] = [[] for _ in range(steps)]
        self.from_start: list[list[float]] = [[] for _ in range(steps)]

    def figures(self) -> list[StepFigures]:
        return [
            StepFigures(entered, _median(previous), _median(start))
            for entered, previous, start in zip(self.entered, self.from_previous, self.from_start, strict=True)
        ]


def _median(values: list[float]) -> float | None:
    """The median (the mean of the two middle values for an even count); None for none."""
    return statistics.median(values) if values else None
