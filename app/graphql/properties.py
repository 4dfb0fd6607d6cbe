"""Event properties in the admin API: `propertyBreakdown`, `propertyAggregates` and
`propertyCatalogue`. Types and thin resolvers; the SQL is in `app.read.property_stats`, the
path syntax, operators and the operator's allowlist in `app.read.properties`.

`app.graphql.schema.Query` inherits `PropertyQuery`, so these fields sit on the root Query type.
"""

from __future__ import annotations

import datetime as dt
import enum
from typing import Any

import strawberry
from strawberry.scalars import JSON
from strawberry.types import Info

from app.graphql.context import Context
from app.graphql.errors import bad_input
from app.graphql.read import (
    MAX_BUCKETS,
    NO_GROUPS,
    EventFilter,
    StatsGroupValue,
    filter_spec,
    groups,
    property_policy,
)
from app.read import property_stats
from app.read.errors import QueryInputError
from app.read.properties import looks_personal, parse_path, show
from app.read.queries import BucketUnit, Dimension

MAX_TOP = 100
MAX_CATALOGUE_KEYS = 1_000

PEOPLE_NOTE = "A person is a userHash within one UTC day: the hash changes at UTC midnight and no answer joins days."


@strawberry.enum(description="What a breakdown row stands for.")
class PropertyValueKind(enum.Enum):
    VALUE = "VALUE"  # one JSON scalar (string, number, boolean or null)
    OTHER = "OTHER"  # the values outside the top N, together
    NONE = "NONE"  # events without the key
    ARRAY = "ARRAY"  # events whose value there is an array (all arrays together)
    OBJECT = "OBJECT"  # events whose value there is an object (all objects together)


@strawberry.enum(description="A JSON value's type, as PostgreSQL's jsonb_typeof names it.")
class JsonType(enum.Enum):
    STRING = "string"
    NUMBER = "number"
    BOOLEAN = "boolean"
    NULL = "null"
    OBJECT = "object"
    ARRAY = "array"


@strawberry.type
class PropertyValueCount:
    kind: PropertyValueKind
    label: str = strawberry.field(
        description=(
            'the value as JSON text (`"de"`, `1`, `true`, `null`; the string "1" and the number 1 differ), '
            "or `(other)`, `(none)`, `(array)`, `(object)`"
        )
    )
    value: JSON | None = strawberry.field(description="the JSON scalar itself for kind VALUE, else null")
    events: int
    distinct_users: int | None = strawberry.field(
        description="exact distinct userHash in the bucket; null over the window and for WEEK buckets (several days)"
    )
    summed_daily_users: int = strawberry.field(
        description="sum over UTC days of each day's distinct userHash with this value (NOT people)"
    )

    @classmethod
    def of(cls, count: property_stats.ValueCount) -> PropertyValueCount:
        return cls(
            kind=PropertyValueKind(count.kind),
            label=count.label,
            value=count.value,
            events=count.events,
            distinct_users=count.distinct_users,
            summed_daily_users=count.summed_daily_users,
        )


@strawberry.type
class PropertyBreakdownBucket:
    start: dt.datetime = strawberry.field(description="UTC bucket start")
    values: list[PropertyValueCount] = strawberry.field(
        description="the window's top values present in this bucket in the window's order, then OTHER, then NONE"
    )


@strawberry.type(description=f"Events and users per value of one property. {PEOPLE_NOTE}")
class PropertyBreakdown:
    property: str
    interval: BucketUnit
    top: int
    values: list[PropertyValueCount] = strawberry.field(
        description="over the window: the top values by events (ties by label), then OTHER, then NONE"
    )
    buckets: list[PropertyBreakdownBucket]


@strawberry.type(
    description=(
        "Figures of the JSON numbers at a path in one bucket (and group); strings, booleans, nulls and missing "
        "keys are not counted."
    )
)
class PropertyAggregateBucket:
    start: dt.datetime = strawberry.field(description="UTC bucket start")
    group: list[StatsGroupValue] = strawberry.field(description="empty when groupBy is empty")
    count: int = strawberry.field(description="events carrying a JSON number at the path")
    sum: float
    avg: float
    min: float
    max: float
    p50: float = strawberry.field(description="median by percentile_cont (linear interpolation)")
    p95: float = strawberry.field(description="95th percentile by percentile_cont (linear interpolation)")


@strawberry.type
class PropertyAggregates:
    property: str
    interval: BucketUnit
    group_by: list[Dimension]
    buckets: list[PropertyAggregateBucket] = strawberry.field(description="ordered by start, then group")


@strawberry.type
class PropertyTypeCount:
    type: JsonType
    events: int = strawberry.field(description="sampled events with a value of this type at the path")


@strawberry.type
class PropertyKey:
    path: str = strawberry.field(description="keys joined by '.' (nested objects flattened; arrays not entered)")
    events: int = strawberry.field(description="sampled events carrying the key")
    types: list[PropertyTypeCount] = strawberry.field(description="by events, descending")
    values_hidden: bool = strawberry.field(
        description="the key looks like personal data: filter by EXISTS/NOT_EXISTS only, no breakdown or aggregate"
    )


@strawberry.type(
    description=(
        "Which description keys occur among the matching events, read from a bounded sample: the newest "
        f"`scanLimit` ({property_stats.CATALOGUE_SCAN:,}) matching events. Lists only keys the operator "
        "allows (SIGNALS_QUERYABLE_PROPERTIES) and that a property path can name (no '.' inside a key)."
    )
)
class PropertyCatalogue:
    sampled_events: int = strawberry.field(description="events read (at most scanLimit), with or without a description")
    scan_limit: int
    keys: list[PropertyKey] = strawberry.field(description="by events, descending, then path")
    has_more_keys: bool = strawberry.field(description="more keys occur than `limit` returned")


def _path(info: Info[Context, Any], path: str, what: str) -> tuple[str, ...]:
    try:
        keys = parse_path(path)
        property_policy(info).check_values(keys, what)
    except QueryInputError as exc:
        raise bad_input(str(exc)) from None
    return keys


@strawberry.type
class PropertyQuery:
    @strawberry.field(
        description=(
            "Events and users per value of a description property (admin only): per bucket and over the window, "
            "the top values by events over the window, the rest as OTHER, events without the key as NONE. "
            f"{PEOPLE_NOTE} Over the window and per WEEK, users are summed daily users, NOT people."
        )
    )
    async def property_breakdown(
        self,
        info: Info[Context, None],
        property: str,  # noqa: A002 - the contract's name
        filter: EventFilter | None = None,  # noqa: A002 - the contract's name
        top: int | None = 10,
        interval: BucketUnit | None = BucketUnit.DAY,
    ) -> PropertyBreakdown:
        info.context.require_admin()
        top = 10 if top is None else top
        if not 1 <= top <= MAX_TOP:
            raise bad_input(f"top must be between 1 and {MAX_TOP}")
        unit = interval or BucketUnit.DAY
        spec = filter_spec(filter, info)
        path = _path(info, property, "breakdown")
        settings = info.context.services.settings
        try:
            result = await info.context.services.reads.run(
                lambda route: property_stats.fetch_breakdown(
                    route.engine,
                    spec,
                    path,
                    top=top,
                    unit=unit,
                    max_rows=MAX_BUCKETS,
                    parallelism=settings.stats_parallelism,
                    retention_days=settings.retention_days,
                    store=route.primary,
                )
            )
        except QueryInputError as exc:
            raise bad_input(str(exc)) from None
        return PropertyBreakdown(
            property=show(path),
            interval=unit,
            top=top,
            values=[PropertyValueCount.of(count) for count in result.values],
            buckets=[
                PropertyBreakdownBucket(start=bucket.start, values=[PropertyValueCount.of(v) for v in bucket.values])
                for bucket in result.buckets
            ],
        )

    @strawberry.field(
        description=(
            "Count, sum, avg, min, max, p50 and p95 (percentile_cont) of the JSON numbers at a description "
            "property, per UTC bucket and group (admin only). Only JSON numbers count."
        )
    )
    async def property_aggregates(
        self,
        info: Info[Context, None],
        property: str,  # noqa: A002 - the contract's name
        filter: EventFilter | None = None,  # noqa: A002 - the contract's name
        interval: BucketUnit | None = BucketUnit.DAY,
        group_by: list[Dimension] | None = NO_GROUPS,
    ) -> PropertyAggregates:
        info.context.require_admin()
        dims = list(group_by or [])
        if len(set(dims)) != len(dims):
            raise bad_input("groupBy names a dimension twice")
        unit = interval or BucketUnit.DAY
        spec = filter_spec(filter, info)
        path = _path(info, property, "aggregate")
        settings = info.context.services.settings
        try:
            rows = await info.context.services.reads.run(
                lambda route: property_stats.fetch_aggregates(
                    route.engine,
                    spec,
                    path,
                    unit=unit,
                    group_by=dims,
                    max_rows=MAX_BUCKETS,
                    parallelism=settings.stats_parallelism,
                    retention_days=settings.retention_days,
                    store=route.primary,
                )
            )
        except QueryInputError as exc:
            raise bad_input(str(exc)) from None
        return PropertyAggregates(
            property=show(path),
            interval=unit,
            group_by=dims,
            buckets=[
                PropertyAggregateBucket(
                    start=row.bucket,
                    group=groups(dims, row.group),
                    count=row.count,
                    sum=row.sum,
                    avg=row.avg,
                    min=row.min,
                    max=row.max,
                    p50=row.p50,
                    p95=row.p95,
                )
                for row in rows
            ],
        )

    @strawberry.field(
        description=(
            "Which description keys occur among the matching events, their JSON types and how many events carry "
            f"each (admin only), from the newest {property_stats.CATALOGUE_SCAN:,} matching events. For pickers."
        )
    )
    async def property_catalogue(
        self,
        info: Info[Context, None],
        filter: EventFilter | None = None,  # noqa: A002 - the contract's name
        limit: int | None = 100,
    ) -> PropertyCatalogue:
        info.context.require_admin()
        limit = 100 if limit is None else limit
        if not 1 <= limit <= MAX_CATALOGUE_KEYS:
            raise bad_input(f"limit must be between 1 and {MAX_CATALOGUE_KEYS}")
        spec = filter_spec(filter, info)
        policy = property_policy(info)
        catalogue = await info.context.services.reads.run(
            lambda route: property_stats.fetch_catalogue(route.engine, spec, policy, limit)
        )
        return PropertyCatalogue(
            sampled_events=catalogue.sampled,
            scan_limit=property_stats.CATALOGUE_SCAN,
            keys=[
                PropertyKey(
                    path=show(key.path),
                    events=key.events,
                    types=[
                        PropertyTypeCount(type=JsonType(name), events=events)
                        for name, events in sorted(key.types.items(), key=lambda item: (-item[1], item[0]))
                    ],
                    values_hidden=looks_personal(key.path),
                )
                for key in catalogue.keys
            ],
            has_more_keys=catalogue.more,
        )
