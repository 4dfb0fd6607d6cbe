"""Questions about one event property: a breakdown by its values, numeric aggregates of it,
and a catalogue of the keys that occur.

Breakdown. Each event falls under the value at the path, as its JSON text (`"de"`, `1`,
`true`, `null`: the string "1" and the number 1 are different values), or under `(array)`
/ `(object)` when the value there is one (arrays and objects are not broken down further),
or under `(none)` when the event has no such key. The top N values by events over the window
are shown, the other values' events together as `(other)`, and `(none)` last. Users: exact
distinct userHash for a bucket inside one UTC day (per value, per bucket), and for the
window and WEEK buckets the sum over UTC days of each day's distinct users (NOT people: the
hash changes at UTC midnight, and no answer joins days).

Aggregates. Only JSON numbers count (a string "5" does not); per bucket: how many events
carry a number there, its sum, mean, min, max and percentiles p50/p95 by `percentile_cont`
(linear interpolation between the two nearest values, as PostgreSQL defines it).

Both are made of per-UTC-day answers, which `app.read.daycache` keeps for closed days: a
breakdown's per-day value counts (events and that day's distinct users per value) merge
exactly into any window of whole days; aggregates are cached only where each bucket lies
inside one day (HOUR, DAY), since percentiles do not merge. Parts of days cut by the window
are counted live, split into runs counted concurrently (`parallelism` connections).

Catalogue. The newest `CATALOGUE_SCAN` matching events are read (a bounded sample, reported
as `sampled`), their descriptions flattened into dot paths (nested objects up to the depth
limit, arrays not entered), and per path the JSON types and how many sampled events carry it.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import itertools
import json
from collections import defaultdict
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from app.read.daycache import per_day
from app.read.errors import QueryInputError
from app.read.properties import PropertyPolicy, parse_path, show
from app.read.queries import BucketUnit, Dimension, EventFilterSpec, too_many_buckets
from app.storage.events import DESCRIPTION_MAX_DEPTH

DAY = dt.timedelta(days=1)
MAX_VALUES_PER_DAY = 5_000
CATALOGUE_SCAN = 10_000
NONE, OTHER, ARRAY, OBJECT = "(none)", "(other)", "(array)", "(object)"
_KINDS = {NONE: "NONE", OTHER: "OTHER", ARRAY: "ARRAY", OBJECT: "OBJECT"}

RangeCompute = Callable[[dt.datetime, dt.datetime], Awaitable[Mapping[dt.date, Any]]]


def _at(name: str) -> str:
    return f"(description #> :{name})"


def _value_label(at: str) -> str:
    """The breakdown's value of an event as SQL: JSON text, or one of the markers above (no
    JSON text starts with `(`, so they cannot collide)."""
    return (
        f"coalesce(CASE jsonb_typeof({at}) WHEN 'object' THEN '{OBJECT}' WHEN 'array' THEN '{ARRAY}' "
        f"ELSE CAST({at} AS text) END, '{NONE}')"
    )


def _midnight(day: dt.date) -> dt.datetime:
    return dt.datetime(day.year, day.month, day.day, tzinfo=dt.UTC)


def spec_key(spec: EventFilterSpec) -> dict[str, Any]:
    """What a stored per-day answer depends on in the filter (not its time window)."""
    key: dict[str, Any] = {
        name: getattr(spec, name)
        for name in ("app_name", "route", "entity_type", "entity_id", "device_type", "browser_family", "os_family")
    }
    key.update(
        session_id=spec.session_id,
        user_hash=spec.user_hash,
        event_types=sorted(spec.event_types or ()),
        properties=[condition.key() for condition in spec.properties],
    )
    return key


async def window(engine: AsyncEngine, spec: EventFilterSpec) -> tuple[dt.datetime, dt.datetime] | None:
    """[lo, hi) the question covers: the filter's window, or the matching events' span."""
    if spec.start is not None and spec.end is not None:
        return spec.start, spec.end
    where, params = spec.where()
    async with engine.connect() as conn:
        first, last = (
            await conn.execute(text(f"SELECT min(created_at), max(created_at) FROM events WHERE {where}"), params)
        ).one()
    if first is None:
        return None
    return spec.start or first, spec.end or last + dt.timedelta(microseconds=1)


def _split(compute: RangeCompute, parallelism: int) -> RangeCompute:
    """`compute` over [lo, hi) as up to `parallelism` runs of whole days, concurrently."""

    async def run(lo: dt.datetime, hi: dt.datetime) -> Mapping[dt.date, Any]:
        days = max(1, (hi - lo) // DAY)
        runs = max(1, min(parallelism, days))
        cuts = [lo, *(_midnight((lo + DAY * (days * i // runs)).date()) for i in range(1, runs)), hi]
        cuts = sorted(set(cuts))
        merged: dict[dt.date, Any] = {}
        for part in await asyncio.gather(*(compute(a, b) for a, b in itertools.pairwise(cuts))):
            merged.update(part)
        return merged

    return run


async def over_days(
    engine: AsyncEngine,
    lo: dt.datetime,
    hi: dt.datetime,
    *,
    kind: str,
    key: Mapping[str, Any],
    compute: RangeCompute,
    parallelism: int,
    retention_days: int,
    cache: bool = True,
    store: AsyncEngine | None = None,
) -> dict[dt.date, Any]:
    """{UTC day: answer} over [lo, hi): whole days through `per_day` (stored when closed, on
    `store`: the primary; default `engine`), the parts of days the window cuts computed live.
    Each day's answer covers only [lo, hi)."""
    compute = _split(compute, parallelism)
    first = lo.date() if lo == _midnight(lo.date()) else lo.date() + DAY
    end = hi.date()
    if not cache or first >= end:
        return dict(await compute(lo, hi))
    answers: dict[dt.date, Any] = {}
    if lo < _midnight(first):
        answers.update(await compute(lo, _midnight(first)))

    async def whole(a: dt.date, b: dt.date) -> Mapping[dt.date, Any]:
        return await compute(_midnight(a), _midnight(b))

    answers.update(
        await per_day(
            engine,
            kind=kind,
            key=key,
            first=first,
            end=end,
            compute=whole,
            retention_days=retention_days,
            store=store,
        )
    )
    if _midnight(end) < hi:
        answers.update(await compute(_midnight(end), hi))
    return answers


# --- breakdown ---------------------------------------------------------------------------


@dataclass
class ValueCount:
    """One value's figures: `label` is its JSON text or a marker (`(other)`, `(none)`,
    `(array)`, `(object)`); `value` the decoded JSON scalar for kind VALUE."""

    label: str
    events: int
    summed_daily_users: int
    distinct_users: int | None = None

    @property
    def kind(self) -> str:
        return _KINDS.get(self.label, "VALUE")

    @property
    def value(self) -> Any:
        return json.loads(self.label) if self.kind == "VALUE" else None


@dataclass
class BreakdownBucket:
    start: dt.datetime
    values: list[ValueCount]


@dataclass
class Breakdown:
    values: list[ValueCount]  # over the window: top values by events, then (other), then (none)
    buckets: list[BreakdownBucket]


def _counts_sql(where: str, label: str, hourly: bool) -> str:
    """Events and distinct users per (UTC day, label), and per (day, hour, label) when hourly."""
    hour = "date_trunc('hour', created_at, 'UTC')" if hourly else "NULL::timestamptz"
    groups = "GROUPING SETS ((day, label), (day, hour, label))" if hourly else "day, hour, label"
    return (
        f"SELECT day, hour, label, count(*) AS events, count(DISTINCT user_hash) AS users FROM ("
        f"SELECT date_trunc('day', created_at, 'UTC') AS day, {hour} AS hour, {label} AS label, user_hash "
        f"FROM events WHERE {where}) AS m GROUP BY {groups}"
    )


def _counts(
    engine: AsyncEngine, spec: EventFilterSpec, path: Sequence[str], hourly: bool, *, top: Sequence[str] | None = None
) -> RangeCompute:
    """Per day: {"day": [[label, events, users]...], "hours": [[hour, label, events, users]...]}.
    With `top`, only the events whose value is neither in `top` nor `(none)`, as `(other)`."""

    async def compute(lo: dt.datetime, hi: dt.datetime) -> Mapping[dt.date, Any]:
        where, params = replace(spec, start=max(lo, spec.start or lo), end=min(hi, spec.end or hi)).where()
        params["b_path"] = list(path)
        label = _value_label(_at("b_path"))
        if top is not None:
            where += f" AND {label} <> ALL(CAST(:b_top AS text[])) AND {_at('b_path')} IS NOT NULL"
            params["b_top"] = list(top)
            label = f"'{OTHER}'"
        async with engine.connect() as conn:
            rows = (await conn.execute(text(_counts_sql(where, label, hourly)), params)).all()
        days: dict[dt.date, dict[str, list[Any]]] = defaultdict(lambda: {"day": [], "hours": []})
        for row in rows:
            day = row.day.astimezone(dt.UTC).date()
            if row.hour is None:
                days[day]["day"].append([row.label, row.events, row.users])
            else:
                days[day]["hours"].append([row.hour.astimezone(dt.UTC).isoformat(), row.label, row.events, row.users])
        for day, answer in days.items():
            if len(answer["day"]) > MAX_VALUES_PER_DAY:
                raise QueryInputError(
                    f"property {show(path)} has more than {MAX_VALUES_PER_DAY} distinct values on {day}: "
                    "break down by a property with fewer values, or filter first"
                )
        return days

    return compute


async def fetch_breakdown(
    engine: AsyncEngine,
    spec: EventFilterSpec,
    path: Sequence[str],
    *,
    top: int,
    unit: BucketUnit,
    max_rows: int,
    parallelism: int,
    retention_days: int,
    store: AsyncEngine | None = None,
) -> Breakdown:
    span = await window(engine, spec)
    if span is None:
        return Breakdown(values=[], buckets=[])
    lo, hi = span
    buckets = (hi - unit.start(lo)) // unit.step + 1
    if buckets * (top + 2) > max_rows:
        raise QueryInputError(
            f"more than {max_rows} buckets x values (buckets times top + 2): narrow the time window, "
            "use a coarser interval or a smaller top"
        )
    hourly = unit is BucketUnit.HOUR
    key = {"filter": spec_key(spec), "path": list(path), "hourly": hourly}
    days = await over_days(
        engine,
        lo,
        hi,
        kind="property-breakdown/1",
        key=key,
        compute=_counts(engine, spec, path, hourly),
        parallelism=parallelism,
        retention_days=retention_days,
        store=store,
    )
    totals: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    for answer in days.values():
        for label, events, users in answer["day"]:
            totals[label][0] += events
            totals[label][1] += users
    ranked = sorted((label for label in totals if label != NONE), key=lambda label: (-totals[label][0], label))
    shown, rest = ranked[:top], set(ranked[top:])
    others: dict[dt.date, Any] = {}
    if rest:
        others = await over_days(
            engine,
            lo,
            hi,
            kind="property-breakdown-other/1",
            key={**key, "top": shown},
            compute=_counts(engine, spec, path, hourly, top=shown),
            parallelism=parallelism,
            retention_days=retention_days,
            store=store,
        )
    order = {label: index for index, label in enumerate([*shown, OTHER, NONE])}

    def fold(
        entries: list[tuple[dt.datetime, str, int, int]], other_users: dict[dt.datetime, int]
    ) -> dict[dt.datetime, dict[str, list[int]]]:
        """(bucket, label, events, users) -> {bucket: {shown label: [events, users]}}."""
        folded: dict[dt.datetime, dict[str, list[int]]] = defaultdict(dict)
        for bucket, label, events, users in entries:
            name = OTHER if label in rest else label
            slot = folded[bucket].setdefault(name, [0, 0])
            slot[0] += events
            slot[1] += users if name != OTHER else 0
        for bucket, users in other_users.items():
            folded[bucket].setdefault(OTHER, [0, 0])[1] += users
        return folded

    def entries(answers: Mapping[dt.date, Any], hours: bool) -> list[tuple[dt.datetime, str, int, int]]:
        found = []
        for day, answer in answers.items():
            if hours:
                found += [(dt.datetime.fromisoformat(h), label, e, u) for h, label, e, u in answer["hours"]]
            else:
                found += [(_midnight(day), label, e, u) for label, e, u in answer["day"]]
        return found

    per_bucket = fold(entries(days, hourly), {b: u for b, _, _, u in entries(others, hourly)})
    if unit is BucketUnit.WEEK:
        weeks: dict[dt.datetime, dict[str, list[int]]] = defaultdict(dict)
        for bucket, values in per_bucket.items():
            for label, (events, users) in values.items():
                slot = weeks[BucketUnit.WEEK.start(bucket)].setdefault(label, [0, 0])
                slot[0] += events
                slot[1] += users
        per_bucket = weeks
    single_day = unit is not BucketUnit.WEEK
    result_buckets = [
        BreakdownBucket(
            start=bucket,
            values=[
                ValueCount(label, events, users, users if single_day else None)
                for label, (events, users) in sorted(per_bucket[bucket].items(), key=lambda item: order[item[0]])
            ],
        )
        for bucket in sorted(per_bucket)
    ]
    window_totals = fold(
        [(lo, label, events, users) for label, (events, users) in totals.items()],
        {lo: sum(u for _, _, _, u in entries(others, False))},
    )
    overall = [
        ValueCount(label, events, users)
        for label, (events, users) in sorted(window_totals.get(lo, {}).items(), key=lambda item: order[item[0]])
        if events
    ]
    return Breakdown(values=overall, buckets=result_buckets)


# --- numeric aggregates ---------------------------------------------------------------------


@dataclass
class AggregateRow:
    bucket: dt.datetime
    group: tuple[str | None, ...]
    count: int
    sum: float
    avg: float
    min: float
    max: float
    p50: float
    p95: float


def _aggregate_sql(where: str, unit: BucketUnit, dims: list[str]) -> str:
    select_dims = "".join(f", {d}" for d in dims)
    number = _at("a_path")
    return (
        f"SELECT bucket{select_dims}, count(*) AS n, sum(x) AS total, avg(x) AS mean, min(x) AS lo, max(x) AS hi, "
        "percentile_cont(0.5) WITHIN GROUP (ORDER BY CAST(x AS float8)) AS p50, "
        "percentile_cont(0.95) WITHIN GROUP (ORDER BY CAST(x AS float8)) AS p95 FROM ("
        f"SELECT date_trunc('{unit.value}', created_at, 'UTC') AS bucket{select_dims}, "
        f"CASE WHEN jsonb_typeof({number}) = 'number' THEN CAST({number} AS numeric) END AS x "
        f"FROM events WHERE {where}) AS m WHERE x IS NOT NULL GROUP BY bucket{select_dims}"
    )


async def fetch_aggregates(
    engine: AsyncEngine,
    spec: EventFilterSpec,
    path: Sequence[str],
    *,
    unit: BucketUnit,
    group_by: Sequence[Dimension],
    max_rows: int,
    parallelism: int,
    retention_days: int,
    store: AsyncEngine | None = None,
) -> list[AggregateRow]:
    span = await window(engine, spec)
    if span is None:
        return []
    lo, hi = span
    dims = [dimension.value for dimension in group_by]

    async def compute(a: dt.datetime, b: dt.datetime) -> Mapping[dt.date, Any]:
        where, params = replace(spec, start=max(a, spec.start or a), end=min(b, spec.end or b)).where()
        params["a_path"] = list(path)
        sql = f"{_aggregate_sql(where, unit, dims)} LIMIT :limit"
        async with engine.connect() as conn:
            rows = (await conn.execute(text(sql), {**params, "limit": max_rows + 1})).all()
        if len(rows) > max_rows:
            raise too_many_buckets(max_rows)
        days: dict[dt.date, list[Any]] = defaultdict(list)
        for row in rows:
            bucket = row.bucket.astimezone(dt.UTC)
            figures = [float(value) for value in (row.total, row.mean, row.lo, row.hi, row.p50, row.p95)]
            days[bucket.date()].append([bucket.isoformat(), list(row[1 : 1 + len(dims)]), row.n, *figures])
        return days

    weekly = unit is BucketUnit.WEEK  # a week's percentiles do not merge from its days: counted in one go
    days = await over_days(
        engine,
        lo,
        hi,
        kind="property-aggregates/1",
        key={"filter": spec_key(spec), "path": list(path), "unit": unit.value, "dims": dims},
        compute=compute,
        parallelism=1 if weekly else parallelism,
        retention_days=retention_days,
        cache=not weekly,
        store=store,
    )
    rows = [
        AggregateRow(dt.datetime.fromisoformat(bucket), tuple(group), n, *figures)
        for answer in days.values()
        for bucket, group, n, *figures in answer
    ]
    if len(rows) > max_rows:
        raise too_many_buckets(max_rows)
    return sorted(rows, key=lambda row: (row.bucket, *[(value is None, value or "") for value in row.group]))


# --- catalogue ---------------------------------------------------------------------------------


@dataclass
class CatalogueKey:
    path: tuple[str, ...]
    events: int
    types: dict[str, int]  # JSON type (jsonb_typeof) -> sampled events with that type there


@dataclass
class Catalogue:
    sampled: int
    keys: list[CatalogueKey]
    more: bool  # more keys than the limit


def _catalogue_sql(where: str) -> str:
    return (
        "WITH RECURSIVE sample AS ("
        f"SELECT description FROM events WHERE {where} ORDER BY created_at DESC LIMIT :scan), "
        "objects AS (SELECT row_number() OVER () AS n, description FROM sample "
        "WHERE jsonb_typeof(description) = 'object'), "
        "walk(n, path, value, depth) AS ("
        "SELECT o.n, ARRAY[e.key], e.value, 1 FROM objects AS o CROSS JOIN LATERAL jsonb_each(o.description) AS e "
        "UNION ALL "
        "SELECT w.n, w.path || e.key, e.value, w.depth + 1 FROM walk AS w CROSS JOIN LATERAL jsonb_each(w.value) AS e "
        "WHERE jsonb_typeof(w.value) = 'object' AND w.depth < :depth) "
        "SELECT NULL::text[] AS path, NULL::text AS type, count(*) AS events FROM sample "
        "UNION ALL SELECT path, jsonb_typeof(value), count(*) FROM walk GROUP BY 1, 2"
    )


def _addressable(path: Sequence[str]) -> bool:
    try:
        return parse_path(show(path)) == tuple(path)
    except QueryInputError:
        return False


async def fetch_catalogue(engine: AsyncEngine, spec: EventFilterSpec, policy: PropertyPolicy, limit: int) -> Catalogue:
    where, params = spec.where()
    async with engine.connect() as conn:
        rows = (
            await conn.execute(
                text(_catalogue_sql(where)), {**params, "scan": CATALOGUE_SCAN, "depth": DESCRIPTION_MAX_DEPTH}
            )
        ).all()
    sampled = 0
    keys: dict[tuple[str, ...], CatalogueKey] = {}
    for row in rows:
        if row.path is None:
            sampled = row.events
            continue
        path = tuple(row.path)
        if not _addressable(path) or not policy.allows(path):
            continue
        entry = keys.setdefault(path, CatalogueKey(path, 0, {}))
        entry.events += row.events
        entry.types[row.type] = row.events
    ordered = sorted(keys.values(), key=lambda key: (-key.events, show(key.path)))
    return Catalogue(sampled=sampled, keys=ordered[:limit], more=len(ordered) > limit)
