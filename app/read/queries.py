"""The read side's SQL: filtered event pages (keyset pagination) and event statistics.

Everything is parametrised; the only SQL text built from input comes from fixed tables
(`Dimension`, `BucketUnit`), never from the caller's strings.

Pages are newest first on (created_at, id), continued with a keyset condition written as
`created_at <= :t AND (created_at < :t OR id < :id)` so that every index ending in
created_at can use it (the row-comparison form only fits an index on (created_at, id)).
Events inserted while a caller pages are newer than its cursor, so they never shift the
rows still to come: each matching row is returned exactly once.

Statistics count per UTC bucket. `distinct_users` is exact (count of distinct userHash)
and only for buckets inside one UTC day: the hash changes at UTC midnight, so the same
person has a new hash each day. `summed_daily_users` adds each UTC day's distinct count:
a person active on 3 days counts 3 times. It is NOT a count of people. Each statement
is one scan of the matching rows.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import datetime as dt
import enum
import uuid
from dataclasses import dataclass, fields, replace
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

# QueryInputError is re-exported: callers know it as queries.QueryInputError
from app.read.errors import QueryInputError as QueryInputError
from app.read.properties import PropertyCondition
from app.storage.events import SELECT_COLUMNS, is_utf8


class Dimension(enum.Enum):
    """What statistics can be grouped by; the value is the column. These values are the
    only column names that reach SQL text. GraphQL's `StatsDimension` is this enum."""

    APP_NAME = "app_name"
    EVENT_TYPE = "event_type"
    ROUTE = "route"
    ENTITY_TYPE = "entity_type"
    ENTITY_ID = "entity_id"
    DEVICE_TYPE = "device_type"
    BROWSER_FAMILY = "browser_family"
    OS_FAMILY = "os_family"


class BucketUnit(enum.Enum):
    """The width of a statistics bucket; the value is PostgreSQL's `date_trunc` unit (weeks
    start on Monday, ISO 8601, in PostgreSQL and in `start()`). GraphQL's `StatsInterval`."""

    HOUR = "hour"
    DAY = "day"
    WEEK = "week"

    @property
    def step(self) -> dt.timedelta:
        return _STEPS[self.value][0]

    @property
    def sql_step(self) -> str:
        """The step as a PostgreSQL interval literal."""
        return _STEPS[self.value][1]

    def start(self, at: dt.datetime) -> dt.datetime:
        """`date_trunc(unit, at, 'UTC')` in Python."""
        at = at.astimezone(dt.UTC)
        if self is BucketUnit.HOUR:
            return at.replace(minute=0, second=0, microsecond=0)
        day = at.replace(hour=0, minute=0, second=0, microsecond=0)
        return day if self is BucketUnit.DAY else day - dt.timedelta(days=day.weekday())


_STEPS = {
    "hour": (dt.timedelta(hours=1), "1 hour"),
    "day": (dt.timedelta(days=1), "1 day"),
    "week": (dt.timedelta(days=7), "7 days"),
}
_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)


def too_many_buckets(max_rows: int) -> QueryInputError:
    return QueryInputError(
        f"more than {max_rows} buckets: narrow the time window, use a coarser interval or fewer groupBy dimensions"
    )


@dataclass(frozen=True)
class EventFilterSpec:
    """Equality filters (None = any), a half-open time window [start, end) and property
    conditions (all must hold)."""

    app_name: str | None = None
    event_types: tuple[str, ...] | None = None
    route: str | None = None
    entity_type: str | None = None
    entity_id: str | None = None
    device_type: str | None = None
    browser_family: str | None = None
    os_family: str | None = None
    session_id: str | None = None
    user_hash: str | None = None
    start: dt.datetime | None = None
    end: dt.datetime | None = None
    # conditions on description keys, all must hold (app.read.properties)
    properties: tuple[PropertyCondition, ...] = ()

    def __post_init__(self) -> None:
        for name in ("start", "end"):
            value = getattr(self, name)
            if value is None:
                continue
            if value.tzinfo is None:  # naive means UTC
                value = value.replace(tzinfo=dt.UTC)
            try:  # in UTC, which e.g. 0001-01-01T00:00+05:00 is not (year 0): asyncpg could not send it
                object.__setattr__(self, name, value.astimezone(dt.UTC))
            except OverflowError:
                raise QueryInputError(f"filter.{_FILTER_NAMES[name]} is out of range in UTC") from None
        for name in (*EQUALITY_FILTERS, "event_types"):
            value = getattr(self, name)
            for item in (value,) if isinstance(value, str) else value or ():
                # PostgreSQL text holds neither NUL nor lone surrogates: such a value never matches, and
                # sending it made the driver fail (an "Unexpected error" instead of this message)
                if "\x00" in item or not is_utf8(item):
                    raise QueryInputError(f"filter.{_FILTER_NAMES[name]} contains a NUL character or invalid Unicode")
        if self.start is not None and self.end is not None and self.start >= self.end:
            raise QueryInputError("filter.from must be before filter.to (from is inclusive, to exclusive)")

    def where(self) -> tuple[str, dict[str, Any]]:
        parts: list[str] = []
        params: dict[str, Any] = {}
        for name in EQUALITY_FILTERS:  # the column is named as the field
            value = getattr(self, name)
            if value is not None:
                parts.append(f"{name} = :f_{name}")
                params[f"f_{name}"] = value
        if self.event_types:
            if len(self.event_types) == 1:
                parts.append("event_type = :f_event_type")
                params["f_event_type"] = self.event_types[0]
            else:
                parts.append("event_type = ANY(:f_event_types)")
                params["f_event_types"] = list(self.event_types)
        if self.start is not None:
            parts.append("created_at >= :f_start")
            params["f_start"] = self.start
        if self.end is not None:
            parts.append("created_at < :f_end")
            params["f_end"] = self.end
        for index, condition in enumerate(self.properties):
            sql, condition_params = condition.sql(f"f_p{index}")
            parts.append(sql)
            params.update(condition_params)
        return (" AND ".join(parts) or "TRUE"), params


EQUALITY_FILTERS = tuple(
    f.name for f in fields(EventFilterSpec) if f.name not in ("event_types", "start", "end", "properties")
)
_FILTER_NAMES = {  # EventFilterSpec field -> EventFilter (GraphQL) field, for messages
    **{name: name.split("_")[0] + "".join(part.title() for part in name.split("_")[1:]) for name in EQUALITY_FILTERS},
    "event_types": "eventTypes",
    "start": "from",
    "end": "to",
    "properties": "properties",
}


@dataclass(frozen=True)
class Cursor:
    """Position after a row: its (created_at, id). Opaque to callers."""

    created_at: dt.datetime
    id: uuid.UUID

    def encode(self) -> str:
        delta = self.created_at - _EPOCH
        micros = (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds
        return base64.urlsafe_b64encode(f"{micros}:{self.id}".encode()).decode().rstrip("=")

    @classmethod
    def decode(cls, value: str) -> Cursor:
        try:
            raw = base64.urlsafe_b64decode(value + "=" * (-len(value) % 4)).decode()
            micros, _, event_id = raw.partition(":")
            return cls(_EPOCH + dt.timedelta(microseconds=int(micros)), uuid.UUID(event_id))
        except (binascii.Error, UnicodeDecodeError, ValueError, OverflowError):
            raise QueryInputError("`after` is not a cursor returned by this API") from None


def events_page_query(spec: EventFilterSpec, first: int, after: Cursor | None) -> tuple[str, dict[str, Any]]:
    where, params = spec.where()
    if after is not None:
        where += " AND created_at <= :c_at AND (created_at < :c_at OR id < :c_id)"
        params.update(c_at=after.created_at, c_id=after.id)
    sql = f"SELECT {SELECT_COLUMNS} FROM events WHERE {where} ORDER BY created_at DESC, id DESC LIMIT :limit"
    return sql, {**params, "limit": first + 1}


async def fetch_event(conn: AsyncConnection, event_id: str) -> Any | None:
    """The row of one event by id; None when there is none or `event_id` is not a UUID."""
    try:
        key = uuid.UUID(event_id)
    except ValueError:
        return None
    return (await conn.execute(text(f"SELECT {SELECT_COLUMNS} FROM events WHERE id = :id"), {"id": key})).first()


async def fetch_events_page(
    conn: AsyncConnection, spec: EventFilterSpec, first: int, after: Cursor | None
) -> tuple[list[Any], bool]:
    """Up to `first` rows newest first after `after`, and whether more follow."""
    sql, params = events_page_query(spec, first, after)
    rows = list((await conn.execute(text(sql), params)).all())
    return rows[:first], len(rows) > first


@dataclass(frozen=True)
class StatsRequest:
    """What to count: matching events, split by `group_by` and, for buckets, by `unit`;
    users and sessions only when asked."""

    spec: EventFilterSpec
    group_by: tuple[Dimension, ...] = ()
    unit: BucketUnit = BucketUnit.DAY
    users: bool = False
    sessions: bool = False

    @property
    def dims(self) -> list[str]:
        return [dimension.value for dimension in self.group_by]


@dataclass
class StatsRow:
    group: tuple[str | None, ...]
    events: int
    bucket: dt.datetime | None = None
    distinct_users: int | None = None
    summed_daily_users: int | None = None
    distinct_sessions: int | None = None


def _order(columns: list[str]) -> str:
    return "".join(f', {column} COLLATE "C"' for column in columns)


DAY_OF_EVENT = "date_trunc('day', created_at, 'UTC')"


def _aggregate(dims: list[str], where: str, *, users: bool, sessions: bool, day: str | None) -> str:
    """SELECT dims, events[, users][, sessions] over rows matching `where`, grouped by dims.

    `users` counts distinct (UTC day, userHash) pairs: the sum over days of each day's
    distinct userHash, exact by definition even when a hash shows up on two days (an event
    stamped just after midnight with the previous day's salt).

    Users alone (the common question) hash-aggregate (dims, day, userHash) first, then count
    the pairs: no sort, so no spill to disk however many rows a bucket holds. `day` is the
    UTC day expression, None for buckets inside one day."""
    group = ", ".join(dims) or "()"
    if users and not sessions:
        keys = "".join(f"{d}, " for d in dims) + ("" if day is None else f"{day}, ")
        inner = f"SELECT {keys}user_hash, count(*) AS n FROM events WHERE {where} GROUP BY {keys}user_hash"
        return (
            f"SELECT {''.join(f'{d}, ' for d in dims)}sum(n)::bigint AS events, count(*) AS users "
            f"FROM ({inner}) AS pairs GROUP BY {group} HAVING count(*) > 0"
        )
    columns = "count(*) AS events"
    if users:
        columns += (
            ", count(DISTINCT user_hash) AS users" if day is None else f", count(DISTINCT ({day}, user_hash)) AS users"
        )
    if sessions:
        columns += ", count(DISTINCT session_id) AS sessions"
    select = "".join(f"{d}, " for d in dims) + columns
    return f"SELECT {select} FROM events WHERE {where} GROUP BY {group} HAVING count(*) > 0"


def stats_buckets_query(request: StatsRequest, max_rows: int) -> tuple[str, dict[str, Any]]:
    """One row per (bucket, group) with events, and when asked users and sessions.

    The buckets between the first and last matching event are generated, and each is
    counted by its own index range scan (LATERAL): the work per bucket stays small and in
    memory, and the planner never has to guess how many buckets a time expression makes.
    Buckets step in UTC wall time (timestamp arithmetic), whatever the session time zone."""
    dims, unit = request.dims, request.unit
    where, params = request.spec.where()
    day = None if unit is not BucketUnit.WEEK else DAY_OF_EVENT
    in_slot = f"{where} AND created_at >= slots.lower AND created_at < slots.upper"
    aggregate = _aggregate(dims, in_slot, users=request.users, sessions=request.sessions, day=day)
    sql = (
        f"WITH bounds AS (SELECT date_trunc('{unit.value}', min(created_at), 'UTC') AT TIME ZONE 'UTC' AS lo, "
        f"max(created_at) AT TIME ZONE 'UTC' AS hi FROM events WHERE {where}), "
        f"slots AS (SELECT g.t AT TIME ZONE 'UTC' AS lower, "
        f"(g.t + interval '{unit.sql_step}') AT TIME ZONE 'UTC' AS upper "
        f"FROM bounds, generate_series(bounds.lo, bounds.hi, interval '{unit.sql_step}') AS g(t)) "
        f"SELECT slots.lower AS bucket, counted.* FROM slots CROSS JOIN LATERAL ({aggregate}) AS counted "
        f"ORDER BY 1{_order(dims)} LIMIT :limit"
    )
    return sql, {**params, "limit": max_rows + 1}


async def fetch_stats_buckets(conn: AsyncConnection, request: StatsRequest, max_rows: int) -> list[StatsRow]:
    """The rows of `stats_buckets_query` (at most `max_rows`, else QueryInputError)."""
    sql, params = stats_buckets_query(request, max_rows)
    result = (await conn.execute(text(sql), params)).all()
    if len(result) > max_rows:
        raise too_many_buckets(max_rows)
    single_day = request.unit is not BucketUnit.WEEK
    width = len(request.group_by)
    return [
        StatsRow(
            group=tuple(row[1 : 1 + width]),
            events=row.events,
            bucket=row.bucket,
            distinct_users=row.users if request.users and single_day else None,
            summed_daily_users=row.users if request.users else None,
            distinct_sessions=row.sessions if request.sessions else None,
        )
        for row in result
    ]


def _earlier(a: dt.datetime | None, b: dt.datetime | None) -> dt.datetime | None:
    """The earlier of two optional bounds (None = unbounded)."""
    return b if a is None else a if b is None else min(a, b)


async def fetch_stats_buckets_split(
    engine: AsyncEngine, request: StatsRequest, max_rows: int, parallelism: int
) -> list[StatsRow]:
    """`fetch_stats_buckets` over consecutive runs of whole buckets, counted concurrently
    on up to `parallelism` pooled connections (PostgreSQL runs each on its own core).
    Buckets never straddle two runs, so the rows are the same as one query's."""
    spec, unit = request.spec, request.unit
    where, params = spec.where()
    async with engine.connect() as conn:
        first, last = (
            await conn.execute(text(f"SELECT min(created_at), max(created_at) FROM events WHERE {where}"), params)
        ).one()
    if first is None:
        return []
    step = unit.step
    lo = unit.start(first)
    count = (last - lo) // step + 1
    runs = max(1, min(parallelism, count))
    # run i covers buckets [count*i/runs, count*(i+1)/runs); the last one is open-ended
    starts = [lo + step * (count * i // runs) for i in range(runs)]
    ends: list[dt.datetime | None] = [*starts[1:], None]
    parts = [
        replace(request, spec=replace(spec, start=max(start, spec.start or start), end=_earlier(end, spec.end)))
        for start, end in zip(starts, ends, strict=True)
    ]

    async def run(part: StatsRequest) -> list[StatsRow]:
        async with engine.connect() as conn:
            return await fetch_stats_buckets(conn, part, max_rows)

    rows = [row for part_rows in await asyncio.gather(*(run(part) for part in parts)) for row in part_rows]
    if len(rows) > max_rows:
        raise too_many_buckets(max_rows)
    return rows


async def fetch_stats_totals(conn: AsyncConnection, request: StatsRequest, top: int) -> list[StatsRow]:
    """The `top` groups by events over the whole window (ties by group, byte order)."""
    dims = request.dims
    where, params = request.spec.where()
    aggregate = _aggregate(dims, where, users=request.users, sessions=request.sessions, day=DAY_OF_EVENT)
    sql = f"SELECT * FROM ({aggregate}) AS totals ORDER BY events DESC{_order(dims)} LIMIT :top"
    result = (await conn.execute(text(sql), {**params, "top": top})).all()
    return [
        StatsRow(
            group=tuple(row[: len(dims)]),
            events=row.events,
            summed_daily_users=row.users if request.users else None,
            distinct_sessions=row.sessions if request.sessions else None,
        )
        for row in result
    ]
