"""One-step journeys on the admin read side: `nextEvents` (admin only). Types and a thin
resolver; the SQL and the definitions are in app.read.journeys.

A session is a sessionId (followed across UTC midnight); nothing here joins userHash across
days. `schema.Query` inherits `JourneysQuery`, so the field sits on the root Query type.
"""

from __future__ import annotations

import strawberry
from strawberry.types import Info

from app.graphql.context import Context
from app.graphql.errors import bad_input
from app.graphql.read import EventFilter, filter_spec
from app.read import journeys
from app.read.queries import QueryInputError


def _share(part: int, whole: int) -> float | None:
    return part / whole if whole else None


@strawberry.type(description="A next event type and how often it came next.")
class NextEventType:
    event_type: str
    count: int
    share: float | None = strawberry.field(description="count / followed; null when nothing was followed")


@strawberry.type(description="A next (event type, route) pair and how often it came next.")
class NextEventRoute:
    event_type: str
    route: str | None
    count: int
    share: float | None = strawberry.field(description="count / followed; null when nothing was followed")


@strawberry.type(description="What sessions did right after an event of `eventType` (a one-step journey).")
class NextEvents:
    event_type: str
    anchors: int = strawberry.field(description="matching events of eventType, with or without a sessionId")
    followed: int = strawberry.field(
        description="anchors with a sessionId: the denominator of every share (exits included)"
    )
    exits: int = strawberry.field(description="followed anchors that were the last event of their session")
    exit_share: float | None = strawberry.field(description="exits / followed")
    without_session: int = strawberry.field(
        description="anchors without a sessionId: they cannot be followed and count in no share"
    )
    types: list[NextEventType] = strawberry.field(description="top next event types by count (ties by type)")
    routes: list[NextEventRoute] = strawberry.field(
        description="top next (event type, route) pairs by count (ties by type, then route, null route last)"
    )


NEXT_EVENTS_DESCRIPTION = """What the same session did next after each event of `eventType` matching \
`filter` (admin only). filter.from and filter.to are required (at most 366 UTC days; filter.eventTypes \
not allowed: the anchor type is eventType); the other filter fields narrow the anchors. The next event is \
the following event of the same sessionId in (createdAt, id) order, of any type, route or app, also after \
UTC midnight or the window's end (a session is a sessionId; nothing joins userHash across days). Anchors \
without a next event are exits; anchors without a sessionId are reported as withoutSession and counted \
in no share. `top`: 1 to 100 (default 10)."""


@strawberry.type
class JourneysQuery:
    @strawberry.field(description=NEXT_EVENTS_DESCRIPTION)
    async def next_events(
        self,
        info: Info[Context, None],
        filter: EventFilter,  # noqa: A002 - as on events and eventStats
        event_type: str,
        top: int = 10,
    ) -> NextEvents:
        info.context.require_admin()
        services = info.context.services
        try:
            request = journeys.NextEventsRequest(filter_spec(filter, info), event_type, top)
            result = await services.reads.run(
                lambda route: journeys.fetch_next_events(route.engine, request, services.settings.stats_parallelism)
            )
        except QueryInputError as exc:
            raise bad_input(str(exc)) from None
        return NextEvents(
            event_type=event_type,
            anchors=result.anchors,
            followed=result.followed,
            exits=result.exits,
            exit_share=_share(result.exits, result.followed),
            without_session=result.without_session,
            types=[NextEventType(event_type=k, count=n, share=_share(n, result.followed)) for k, n in result.types],
            routes=[
                NextEventRoute(
                    event_type=p.event_type, route=p.route, count=p.count, share=_share(p.count, result.followed)
                )
                for p in result.pairs
            ],
        )
