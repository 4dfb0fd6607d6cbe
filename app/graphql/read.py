"""The admin read side of the GraphQL API: `events` (a Relay-style connection) and
`eventStats`. Types and thin resolvers; the SQL is in `app.read.queries`.

`app.schema.Query` inherits `ReadQuery`, so these fields sit on the root Query type.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import strawberry
from strawberry.scalars import JSON
from strawberry.types import Info

from app.graphql.context import Context
from app.graphql.errors import bad_input
from app.graphql.events import Event
from app.read import queries, rollup
from app.read.properties import MAX_PROPERTY_FILTERS, PropertyCondition, PropertyOp, PropertyPolicy, policy
from app.read.queries import BucketUnit, Dimension

DEFAULT_PAGE = 100
MAX_PAGE = 1000
MAX_TOP = 1000
MAX_BUCKETS = 10_000
NO_GROUPS: list[Any] = []


# The read side's own enums are the GraphQL enums (member names are the GraphQL values).
strawberry.enum(Dimension, name="StatsDimension")
strawberry.enum(BucketUnit, name="StatsInterval")
strawberry.enum(
    PropertyOp,
    name="PropertyOp",
    description=(
        "EQ/IN: the JSON value at the path equals `value` / one of `values` (JSON strings, numbers, booleans; "
        'the string "1" is not the number 1). EXISTS: the key is present (a JSON null counts); NOT_EXISTS: absent. '
        "GT/GTE/LT/LTE: the value is a JSON number and compares so with `value` (a number)."
    ),
)


@strawberry.input(
    description=(
        "A condition on a description key. `path` is keys joined by '.', e.g. `source.kind` (arrays are values, "
        "not entered). Keys that look like personal data take EXISTS/NOT_EXISTS only."
    )
)
class PropertyFilter:
    path: str
    op: PropertyOp = PropertyOp.EQ
    value: JSON | None = strawberry.field(default=None, description="for EQ, GT, GTE, LT, LTE")
    values: list[JSON] | None = strawberry.field(default=None, description="for IN (1 to 100)")

    def condition(self, allowed: PropertyPolicy) -> PropertyCondition:
        condition = PropertyCondition.build(self.path, self.op, self.value, self.values)
        allowed.check_condition(condition)
        return condition


@strawberry.input(description="Events matching every given field (omitted = any).")
class EventFilter:
    app_name: str | None = None
    event_types: list[str] | None = strawberry.field(default=None, description="any of these (empty = any)")
    route: str | None = None
    entity_type: str | None = None
    entity_id: str | None = None
    device_type: str | None = None
    browser_family: str | None = None
    os_family: str | None = None
    session_id: str | None = None
    user_hash: str | None = None
    from_: dt.datetime | None = strawberry.field(default=None, name="from", description="inclusive; no offset = UTC")
    to: dt.datetime | None = strawberry.field(default=None, description="exclusive; no offset = UTC")
    properties: list[PropertyFilter] | None = strawberry.field(
        default=None,
        description=f"description keys, all must hold (at most {MAX_PROPERTY_FILTERS}); see PropertyFilter",
    )

    def spec(self, allowed: PropertyPolicy) -> queries.EventFilterSpec:
        equal = {name: getattr(self, name) for name in queries.EQUALITY_FILTERS}
        types = tuple(self.event_types) if self.event_types else None
        try:
            if len(self.properties or ()) > MAX_PROPERTY_FILTERS:
                raise queries.QueryInputError(f"filter.properties: at most {MAX_PROPERTY_FILTERS} property filters")
            conditions = tuple(item.condition(allowed) for item in self.properties or ())
            return queries.EventFilterSpec(
                **equal, event_types=types, start=self.from_, end=self.to, properties=conditions
            )
        except queries.QueryInputError as exc:
            raise bad_input(str(exc)) from None


def property_policy(info: Info[Context, Any]) -> PropertyPolicy:
    """The operator's SIGNALS_QUERYABLE_PROPERTIES."""
    return policy(tuple(info.context.services.settings.queryable_properties))


def filter_spec(event_filter: EventFilter | None, info: Info[Context, Any]) -> queries.EventFilterSpec:
    """The filter as the read side takes it; property paths checked against the operator's allowlist."""
    return event_filter.spec(property_policy(info)) if event_filter is not None else queries.EventFilterSpec()


@strawberry.federation.type(
    shareable=True,
    description="Relay page info, all four fields of the Relay spec and shareable: other subgraphs define it too.",
)
class PageInfo:
    has_next_page: bool
    has_previous_page: bool = strawberry.field(
        description="Paging forward with `after`, true when a cursor was given (events precede it)."
    )
    start_cursor: str | None
    end_cursor: str | None


@strawberry.type
class EventEdge:
    cursor: str
    node: Event


@strawberry.type
class EventConnection:
    edges: list[EventEdge]
    page_info: PageInfo


@strawberry.type
class StatsGroupValue:
    dimension: Dimension
    value: str | None


@strawberry.type
class StatsBucket:
    start: dt.datetime = strawberry.field(description="UTC bucket start")
    group: list[StatsGroupValue] = strawberry.field(description="empty when groupBy is empty")
    events: int
    distinct_users: int | None = strawberry.field(
        description="exact distinct userHash; null when the bucket spans more than one UTC day (WEEK)"
    )
    summed_daily_users: int = strawberry.field(
        description="sum over the bucket's UTC days of daily distinct userHash (NOT distinct people)"
    )
    distinct_sessions: int


@strawberry.type
class StatsTotal:
    group: list[StatsGroupValue]
    events: int
    summed_daily_users: int = strawberry.field(description="sum over UTC days of daily distinct userHash (NOT people)")
    distinct_sessions: int


def requested_fields(info: Info[Context, Any]) -> set[str]:
    """Names of the sub-fields selected under the current field (through fragments too)."""
    names: set[str] = set()
    pending = list(info.selected_fields)
    while pending:
        selection = pending.pop()
        for child in getattr(selection, "selections", []):
            if getattr(child, "name", None) is not None and not hasattr(child, "type_condition"):
                names.add(child.name)
            else:
                pending.append(child)
    return names


def groups(group_by: list[Any], values: tuple[str | None, ...]) -> list[StatsGroupValue]:
    return [StatsGroupValue(dimension=dim, value=value) for dim, value in zip(group_by, values, strict=True)]


@strawberry.type(description="Counts per UTC bucket, optionally broken down by dimensions.")
class EventStats:
    interval: BucketUnit
    group_by: list[Dimension]
    spec: strawberry.Private[queries.EventFilterSpec]

    def request(self, *, users: bool, sessions: bool) -> queries.StatsRequest:
        return queries.StatsRequest(self.spec, tuple(self.group_by), self.interval, users=users, sessions=sessions)

    @strawberry.field(description="ordered by start, then group")
    async def buckets(self, info: Info[Context, None]) -> list[StatsBucket]:
        wanted = requested_fields(info)
        request = self.request(
            users=bool(wanted & {"distinctUsers", "summedDailyUsers"}), sessions="distinctSessions" in wanted
        )
        settings, engine = info.context.services.settings, info.context.services.engine
        try:
            rows = await rollup.stats_buckets(
                engine, request, MAX_BUCKETS, settings.stats_parallelism, retention_days=settings.retention_days
            )
        except queries.QueryInputError as exc:
            raise bad_input(str(exc)) from None
        return [
            StatsBucket(
                start=row.bucket,
                group=groups(self.group_by, row.group),
                events=row.events,
                distinct_users=row.distinct_users,
                summed_daily_users=row.summed_daily_users or 0,
                distinct_sessions=row.distinct_sessions or 0,
            )
            for row in rows
            if row.bucket is not None  # bucket rows always have one
        ]

    @strawberry.field(description="one per group over the whole window, ordered by events desc")
    async def totals(self, info: Info[Context, None], top: int | None = 20) -> list[StatsTotal]:
        top = 20 if top is None else top
        if not 1 <= top <= MAX_TOP:
            raise bad_input(f"top must be between 1 and {MAX_TOP}")
        wanted = requested_fields(info)
        request = self.request(users="summedDailyUsers" in wanted, sessions="distinctSessions" in wanted)
        async with info.context.services.engine.connect() as conn:
            rows = await queries.fetch_stats_totals(conn, request, top)
        return [
            StatsTotal(
                group=groups(self.group_by, row.group),
                events=row.events,
                summed_daily_users=row.summed_daily_users or 0,
                distinct_sessions=row.distinct_sessions or 0,
            )
            for row in rows
        ]


@strawberry.type
class ReadQuery:
    @strawberry.field(description="Events newest first (admin only). `first` is clamped to 1000.")
    async def events(
        self,
        info: Info[Context, None],
        filter: EventFilter | None = None,  # noqa: A002 - the contract's name
        first: int | None = DEFAULT_PAGE,
        after: str | None = None,
    ) -> EventConnection:
        info.context.require_admin()
        first = DEFAULT_PAGE if first is None else first
        if first < 1:
            raise bad_input(f"first must be at least 1 (at most {MAX_PAGE} are returned)")
        spec = filter_spec(filter, info)
        try:
            cursor = queries.Cursor.decode(after) if after else None
        except queries.QueryInputError as exc:
            raise bad_input(str(exc)) from None
        async with info.context.services.engine.connect() as conn:
            rows, more = await queries.fetch_events_page(conn, spec, min(first, MAX_PAGE), cursor)
        edges = [
            EventEdge(cursor=queries.Cursor(row.created_at, row.id).encode(), node=Event.from_row(row)) for row in rows
        ]
        page_info = PageInfo(
            has_next_page=more,
            has_previous_page=cursor is not None,
            start_cursor=edges[0].cursor if edges else None,
            end_cursor=edges[-1].cursor if edges else None,
        )
        return EventConnection(edges=edges, page_info=page_info)

    @strawberry.field(description="Event counts per UTC hour/day/week (admin only).")
    def event_stats(
        self,
        info: Info[Context, None],
        filter: EventFilter | None = None,  # noqa: A002 - the contract's name
        group_by: list[Dimension] | None = NO_GROUPS,
        interval: BucketUnit | None = BucketUnit.DAY,
    ) -> EventStats:
        info.context.require_admin()
        dims = list(group_by or [])
        if len(set(dims)) != len(dims):
            raise bad_input("groupBy names a dimension twice")
        return EventStats(interval=interval or BucketUnit.DAY, group_by=dims, spec=filter_spec(filter, info))
