"""Insights on the admin read side: `adoption` and `funnel` (admin only). Types and thin
resolvers; the SQL and the definitions are in app.read.adoption and app.read.funnels.

Privacy model, as everywhere in Signals: a person is a userHash within one UTC day and a
session is a sessionId; no answer joins days across userHash. `schema.Query` inherits
`InsightsQuery`, so these fields sit on the root Query type.
"""

from __future__ import annotations

import datetime as dt

import strawberry
from strawberry.types import Info

from app.graphql.context import Context
from app.graphql.errors import bad_input
from app.graphql.read import EventFilter, property_policy
from app.read import adoption, funnels
from app.read.queries import Dimension, QueryInputError

strawberry.enum(
    funnels.FunnelUnit,
    name="FunnelUnit",
    description=(
        "SESSION: one sessionId, across UTC midnight too (events without a sessionId never count). "
        "USER_DAY: one userHash within one UTC day (never spans midnight: the hash changes)."
    ),
)


def _rate(part: int, whole: int) -> float | None:
    return part / whole if whole else None


@strawberry.type(description="One UTC day of adoption. A day cut by from/to covers only its part in the window.")
class AdoptionDay:
    day: dt.date
    active_users: int = strawberry.field(description="distinct userHash of the population's events that day")
    target_users: int = strawberry.field(description="distinct userHash of that day's events matching the target")
    user_rate: float | None = strawberry.field(description="targetUsers / activeUsers; null without active users")
    active_sessions: int = strawberry.field(
        description="distinct sessionId of the population's events that day (events without one count in none)"
    )
    target_sessions: int = strawberry.field(description="distinct sessionId of that day's target events")
    session_rate: float | None = strawberry.field(description="targetSessions / activeSessions; null without any")


@strawberry.type(
    description="Sums of the daily figures over the window. NOT numbers of people: someone active on 5 days "
    "counts 5 times, and a session across a UTC midnight once on each of its days."
)
class AdoptionTotals:
    summed_daily_active_users: int
    summed_daily_target_users: int
    user_rate: float | None = strawberry.field(description="summedDailyTargetUsers / summedDailyActiveUsers")
    summed_daily_active_sessions: int
    summed_daily_target_sessions: int
    session_rate: float | None = strawberry.field(description="summedDailyTargetSessions / summedDailyActiveSessions")


@strawberry.type(description="Per UTC day: active users and sessions of the app(s), those that did the target.")
class Adoption:
    days: list[AdoptionDay] = strawberry.field(description="every UTC day the window touches, oldest first")
    totals: AdoptionTotals


@strawberry.type(description="One step of a funnel.")
class FunnelStepFigures:
    step: int = strawberry.field(description="1-based position")
    entered: int = strawberry.field(description="units whose chain reached this step")
    converted: int | None = strawberry.field(description="units that went on to the next step; null for the last")
    dropped: int | None = strawberry.field(description="entered - converted; null for the last step")
    conversion_from_start: float | None = strawberry.field(description="entered / entered of step 1")
    conversion_from_previous: float | None = strawberry.field(
        description="entered / entered of the previous step; null for step 1"
    )
    median_seconds_from_previous: float | None = strawberry.field(
        description="median time from the previous step's matched event to this step's, over the units that "
        "entered this step (mean of the two middle values for an even number); null for step 1 or no units"
    )
    median_seconds_from_start: float | None = strawberry.field(description="the same, from the step-1 event")


@strawberry.type
class FunnelGroup:
    value: str | None = strawberry.field(description="the step-1 event's value of the breakdown dimension")
    steps: list[FunnelStepFigures]


@strawberry.type(description="Ordered steps counted per unit; see `Query.funnel` for the exact rules.")
class Funnel:
    count_by: funnels.FunnelUnit
    steps: list[FunnelStepFigures] = strawberry.field(description="all units, whatever the breakdown")
    breakdown: Dimension | None
    groups: list[FunnelGroup] = strawberry.field(
        description="the breakdownTop groups with the most step-1 units (ties by value); empty without a breakdown"
    )


def _steps(figures: list[funnels.StepFigures]) -> list[FunnelStepFigures]:
    first = figures[0].entered
    out = []
    for index, step in enumerate(figures):
        following = figures[index + 1].entered if index + 1 < len(figures) else None
        out.append(
            FunnelStepFigures(
                step=index + 1,
                entered=step.entered,
                converted=following,
                dropped=None if following is None else step.entered - following,
                conversion_from_start=_rate(step.entered, first),
                conversion_from_previous=None if index == 0 else _rate(step.entered, figures[index - 1].entered),
                median_seconds_from_previous=step.median_from_previous,
                median_seconds_from_start=step.median_from_start,
            )
        )
    return out


FUNNEL_DESCRIPTION = """Ordered steps counted per unit (admin only). A unit is a session (sessionId; \
one unit across UTC midnight, counted when its step-1 event is in the window; events without a sessionId \
never count) or a user-day (a userHash within one UTC day: never spans midnight, nothing joins days). \
Only events of `filter` (appName, from, to; at most 366 UTC days) count, for every step. Events are \
ordered by (createdAt, id): a unit enters step 1 at its FIRST matching event; each next step is the \
first event matching it strictly after the previous step's matched event (greedy earliest); one event \
matches one step at most; repeating step 1 later does not restart; a later step's event before the \
earlier step's does not count. `within` (seconds): every step's event at most that long after the \
step-1 event. `breakdown`: the step-1 event's value of that dimension. 2 to 10 steps; each step needs \
eventTypes and may set route, entityType, entityId and the other event fields, not appName/from/to."""


@strawberry.type
class InsightsQuery:
    @strawberry.field(
        description="Adoption per UTC day (admin only): active users and sessions of the population (filter with "
        "appName and from/to only; at most 366 UTC days), and how many did the target (eventTypes required, "
        "plus route, entity and other event conditions; its app and window are the population's). A person is "
        "a userHash within one UTC day; totals are summed daily figures, NOT people."
    )
    async def adoption(self, info: Info[Context, None], population: EventFilter, target: EventFilter) -> Adoption:
        info.context.require_admin()
        services = info.context.services
        allowed = property_policy(info)
        try:
            request = adoption.AdoptionRequest(population.spec(allowed), target.spec(allowed))
            days = await services.reads.run(
                lambda route: adoption.fetch_adoption(
                    route.engine, request, retention_days=services.settings.retention_days, store=route.primary
                )
            )
        except QueryInputError as exc:
            raise bad_input(str(exc)) from None
        out = [
            AdoptionDay(
                day=d.day,
                active_users=d.active_users,
                target_users=d.target_users,
                user_rate=_rate(d.target_users, d.active_users),
                active_sessions=d.active_sessions,
                target_sessions=d.target_sessions,
                session_rate=_rate(d.target_sessions, d.active_sessions),
            )
            for d in days
        ]
        users = sum(d.active_users for d in days), sum(d.target_users for d in days)
        sessions = sum(d.active_sessions for d in days), sum(d.target_sessions for d in days)
        totals = AdoptionTotals(
            summed_daily_active_users=users[0],
            summed_daily_target_users=users[1],
            user_rate=_rate(users[1], users[0]),
            summed_daily_active_sessions=sessions[0],
            summed_daily_target_sessions=sessions[1],
            session_rate=_rate(sessions[1], sessions[0]),
        )
        return Adoption(days=out, totals=totals)

    @strawberry.field(description=FUNNEL_DESCRIPTION)
    async def funnel(
        self,
        info: Info[Context, None],
        filter: EventFilter,  # noqa: A002 - as on events and eventStats
        steps: list[EventFilter],
        count_by: funnels.FunnelUnit = funnels.FunnelUnit.SESSION,
        within: int | None = None,
        breakdown: Dimension | None = None,
        breakdown_top: int = 20,
    ) -> Funnel:
        info.context.require_admin()
        allowed = property_policy(info)
        try:
            request = funnels.FunnelRequest(
                window=filter.spec(allowed),
                steps=tuple(step.spec(allowed) for step in steps),
                unit=count_by,
                within=None if within is None else dt.timedelta(seconds=within),
                breakdown=breakdown,
                top=breakdown_top,
            )
            services = info.context.services
            result = await services.reads.run(
                lambda route: funnels.fetch_funnel(route.engine, request, services.settings.stats_parallelism)
            )
        except QueryInputError as exc:
            raise bad_input(str(exc)) from None
        return Funnel(
            count_by=count_by,
            steps=_steps(result.overall),
            breakdown=breakdown,
            groups=[FunnelGroup(value=g.value, steps=_steps(g.steps)) for g in result.groups],
        )
