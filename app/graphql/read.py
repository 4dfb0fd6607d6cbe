"""The admin read side of the GraphQL API: `events` (a Relay-style connection) and
`eventStats` (with `compareTo`, an earlier window and the deltas). Types and thin resolvers;
the SQL is in `app.read.queries`, the comparison arithmetic in `app.read.compare`.

`app.schema.Query` inherits `ReadQuery`, so these fields sit on the root Query type.
"""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import Awaitable
from dataclasses import replace
from typing import Annotated, Any

import strawberry
from strawberry.scalars import JSON
from strawberry.types import Info

from app.graphql.context import Context
from app.graphql.errors import bad_input
from app.graphql.events import Event
from app.read import queries, rollup
from app.read.compare import Comparison, Delta, delta, previous_window
from app.read.properties import MAX_PROPERTY_FILTERS, PropertyCondition, PropertyOp, PropertyPolicy, policy
from app.read.queries import BucketUnit, Dimension
from app.storage.replica import ReadRoute

DEFAULT_PAGE = 100
MAX_PAGE = 1000
MAX_TOP = 1000
MAX_BUCKETS = 10_000
ALL_GROUPS = 2**31 - 1  # a LIMIT that keeps every group
NO_GROUPS: list[Any] = []


# The read side's own enums are the GraphQL enums (member names are the GraphQL values).
strawberry.enum(Dimension, name="StatsDimension")
strawberry.enum(BucketUnit, name="StatsInterval")
strawberry.enum(
    Comparison,
    name="StatsComparison",
    description="PREVIOUS_PERIOD: the window of the same length ending at filter.from. "
    "PREVIOUS_WEEK: the same window shifted 7 days earlier (overlapping it when longer than a week).",
)
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


async def _buckets(info: Info[Context, None], request: queries.StatsRequest) -> list[StatsBucket]:
    settings = info.context.services.settings

    def buckets(route: ReadRoute) -> Awaitable[list[queries.StatsRow]]:
        return rollup.stats_buckets(
            route.engine,
            request,
            MAX_BUCKETS,
            settings.stats_parallelism,
            retention_days=settings.retention_days,
            store=route.primary,
        )

    try:
        rows = await info.context.services.reads.run(buckets)
    except queries.QueryInputError as exc:
        raise bad_input(str(exc)) from None
    return [
        StatsBucket(
            start=row.bucket,
            group=groups(list(request.group_by), row.group),
            events=row.events,
            distinct_users=row.distinct_users,
            summed_daily_users=row.summed_daily_users or 0,
            distinct_sessions=row.distinct_sessions or 0,
        )
        for row in rows
        if row.bucket is not None  # bucket rows always have one
    ]


def _check_top(top: int | None) -> int:
    top = 20 if top is None else top
    if not 1 <= top <= MAX_TOP:
        raise bad_input(f"top must be between 1 and {MAX_TOP}")
    return top


async def _totals(info: Info[Context, None], request: queries.StatsRequest, top: int) -> list[queries.StatsRow]:
    async def totals(route: ReadRoute) -> list[queries.StatsRow]:
        async with route.engine.connect() as conn:
            return await queries.fetch_stats_totals(conn, request, top)

    return await info.context.services.reads.run(totals)


def _total(row: queries.StatsRow, group_by: list[Dimension]) -> StatsTotal:
    return StatsTotal(
        group=groups(group_by, row.group),
        events=row.events,
        summed_daily_users=row.summed_daily_users or 0,
        distinct_sessions=row.distinct_sessions or 0,
    )


@strawberry.type(description="Counts per UTC bucket, optionally broken down by dimensions.")
class EventStats:
    interval: BucketUnit
    group_by: list[Dimension]
    spec: strawberry.Private[queries.EventFilterSpec]
    compare_to: strawberry.Private[Comparison | None] = None

    def request(self, *, users: bool, sessions: bool) -> queries.StatsRequest:
        return queries.StatsRequest(self.spec, tuple(self.group_by), self.interval, users=users, sessions=sessions)

    @strawberry.field(description="ordered by start, then group")
    async def buckets(self, info: Info[Context, None]) -> list[StatsBucket]:
        wanted = requested_fields(info)
        request = self.request(
            users=bool(wanted & {"distinctUsers", "summedDailyUsers"}), sessions="distinctSessions" in wanted
        )
        return await _buckets(info, request)

    @strawberry.field(description="one per group over the whole window, ordered by events desc")
    async def totals(self, info: Info[Context, None], top: int | None = 20) -> list[StatsTotal]:
        top = _check_top(top)
        wanted = requested_fields(info)
        request = self.request(users="summedDailyUsers" in wanted, sessions="distinctSessions" in wanted)
        return [_total(row, self.group_by) for row in await _totals(info, request, top)]

    @strawberry.field(description="the earlier window asked for with `compareTo`; null without it")
    def comparison(self) -> StatsComparisonResult | None:
        if self.compare_to is None:
            return None
        assert self.spec.start is not None and self.spec.end is not None  # checked by eventStats
        start, end = previous_window(self.spec.start, self.spec.end, self.compare_to)
        previous = EventStats(
            interval=self.interval, group_by=self.group_by, spec=replace(self.spec, start=start, end=end)
        )
        return StatsComparisonResult(mode=self.compare_to, from_=start, to=end, current=self, previous=previous)


@strawberry.type(description="A figure in the current window and in the comparison window.")
class StatsDelta:
    previous: int
    current: int
    absolute: int = strawberry.field(description="current - previous")
    relative: float | None = strawberry.field(description="(current - previous) / previous; null when previous is 0")

    @classmethod
    def of(cls, change: Delta) -> StatsDelta:
        return cls(previous=change.previous, current=change.current, absolute=change.absolute, relative=change.relative)


@strawberry.type(description="The deltas of one group (of groupBy) between the two windows.")
class StatsGroupDelta:
    group: list[StatsGroupValue]
    events: StatsDelta
    summed_daily_users: StatsDelta = strawberry.field(
        description="sums over UTC days of daily distinct userHash (NOT people)"
    )
    distinct_sessions: StatsDelta


def _figures(row: queries.StatsRow | None) -> tuple[int, int, int]:
    if row is None:
        return 0, 0, 0
    return row.events, row.summed_daily_users or 0, row.distinct_sessions or 0


@strawberry.type(description="Current against previous for the whole window and per group.")
class StatsDeltas:
    events: StatsDelta
    summed_daily_users: StatsDelta = strawberry.field(
        description="summed daily users of each window: sums over UTC days of daily distinct userHash (NOT people)"
    )
    distinct_sessions: StatsDelta = strawberry.field(description="distinct sessionId in each window")
    current: strawberry.Private[EventStats]
    previous: strawberry.Private[EventStats]

    @strawberry.field(
        description="the current window's top groups by events (ties by group), each against the same group "
        "in the previous window (0 there when it had no events)"
    )
    async def groups(self, info: Info[Context, None], top: int | None = 20) -> list[StatsGroupDelta]:
        top = _check_top(top)
        wanted = requested_fields(info)
        users, sessions = "summedDailyUsers" in wanted, "distinctSessions" in wanted
        now, before = await asyncio.gather(
            _totals(info, self.current.request(users=users, sessions=sessions), top),
            # every previous group, so that each current group finds its own (a top N could miss it)
            _totals(info, self.previous.request(users=users, sessions=sessions), ALL_GROUPS),
        )
        earlier = {row.group: row for row in before}
        out = []
        for row in now:
            current, previous = _figures(row), _figures(earlier.get(row.group))
            out.append(
                StatsGroupDelta(
                    group=groups(self.current.group_by, row.group),
                    events=StatsDelta.of(delta(current[0], previous[0])),
                    summed_daily_users=StatsDelta.of(delta(current[1], previous[1])),
                    distinct_sessions=StatsDelta.of(delta(current[2], previous[2])),
                )
            )
        return out


@strawberry.type(
    description="The comparison window of `eventStats(compareTo:)`: its own window, buckets and totals (the "
    "same shapes and definitions as the current ones) and the deltas. Buckets are aligned by OFFSET: bucket i of "
    "the current window (the i-th interval step from the bucket holding filter.from) stands against bucket i of "
    "this window (the i-th step from the bucket holding this `from`); compare them by position, not by date. "
    "All in UTC: no daylight-saving shifts. Users are userHash within one UTC day, as everywhere."
)
class StatsComparisonResult:
    mode: Comparison
    from_: dt.datetime = strawberry.field(name="from", description="inclusive, UTC")
    to: dt.datetime = strawberry.field(description="exclusive, UTC")
    current: strawberry.Private[EventStats]
    previous: strawberry.Private[EventStats]

    @strawberry.field(description="the comparison window's buckets, ordered by start, then group")
    async def buckets(self, info: Info[Context, None]) -> list[StatsBucket]:
        wanted = requested_fields(info)
        request = self.previous.request(
            users=bool(wanted & {"distinctUsers", "summedDailyUsers"}), sessions="distinctSessions" in wanted
        )
        return await _buckets(info, request)

    @strawberry.field(description="the comparison window's groups over the whole window, ordered by events desc")
    async def totals(self, info: Info[Context, None], top: int | None = 20) -> list[StatsTotal]:
        top = _check_top(top)
        wanted = requested_fields(info)
        request = self.previous.request(users="summedDailyUsers" in wanted, sessions="distinctSessions" in wanted)
        return [_total(row, self.previous.group_by) for row in await _totals(info, request, top)]

    @strawberry.field(description="overall events, summed daily users and distinct sessions of both windows")
    async def deltas(self, info: Info[Context, None]) -> StatsDeltas:
        wanted = requested_fields(info)
        users, sessions = "summedDailyUsers" in wanted, "distinctSessions" in wanted

        async def overall(stats: EventStats) -> tuple[int, int, int]:
            request = replace(stats.request(users=users, sessions=sessions), group_by=())
            rows = await _totals(info, request, 1)
            return _figures(rows[0] if rows else None)

        current, previous = await asyncio.gather(overall(self.current), overall(self.previous))
        return StatsDeltas(
            events=StatsDelta.of(delta(current[0], previous[0])),
            summed_daily_users=StatsDelta.of(delta(current[1], previous[1])),
            distinct_sessions=StatsDelta.of(delta(current[2], previous[2])),
            current=self.current,
            previous=self.previous,
        )


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

        async def page(route: ReadRoute) -> tuple[list[Any], bool]:
            async with route.engine.connect() as conn:
                return await queries.fetch_events_page(conn, spec, min(first, MAX_PAGE), cursor)

        rows, more = await info.context.services.reads.run(page)
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
        compare_to: Annotated[
            Comparison | None,
            strawberry.argument(
                description="also count an earlier window (needs filter.from and filter.to): PREVIOUS_PERIOD, the same "
                "length just before; PREVIOUS_WEEK, the same window 7 days earlier. The answer's `comparison` holds it."
            ),
        ] = None,
    ) -> EventStats:
        info.context.require_admin()
        dims = list(group_by or [])
        if len(set(dims)) != len(dims):
            raise bad_input("groupBy names a dimension twice")
        spec = filter_spec(filter, info)
        if compare_to is not None:
            if spec.start is None or spec.end is None:
                raise bad_input("compareTo needs an explicit window: set both filter.from and filter.to")
            try:
                previous_window(spec.start, spec.end, compare_to)
            except queries.QueryInputError as exc:
                raise bad_input(str(exc)) from None
        return EventStats(interval=interval or BucketUnit.DAY, group_by=dims, spec=spec, compare_to=compare_to)
