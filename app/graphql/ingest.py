"""GraphQL face of the ingest pipeline: `trackEvent` and `trackEvents`.

The resolvers only translate between GraphQL types and app/ingest/; every decision is made
by the pipeline there. `TrackEventInput` arguments arrive as the pipeline's own
`EventInput`, built straight from graphql-core's coerced values (`event_input`), so the
fast path and Strawberry build the same thing the same way.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, cast

import strawberry
from strawberry.scalars import JSON
from strawberry.types import Info

from app.graphql.context import Context
from app.graphql.errors import refused
from app.graphql.strawberry_compat import set_input_builder
from app.ingest.pipeline import DropReason, EventInput, Refused, TrackResult, TrackStatus

# The pipeline's own enums are the GraphQL enums (member names are the GraphQL values).
strawberry.enum(TrackStatus, name="TrackStatus")
strawberry.enum(DropReason, name="DropReason")


@strawberry.input(description="One interaction to record.")
class TrackEventInput:
    """The GraphQL contract of one event. Values arrive as `EventInput` (see module doc)."""

    # UNSET: optional without a published default, as in the contract
    event_type: str
    app_name: str
    route: str | None = strawberry.UNSET
    entity_type: str | None = strawberry.UNSET
    entity_id: str | None = strawberry.UNSET
    session_id: str | None = strawberry.UNSET
    description: JSON | None = strawberry.field(
        default=strawberry.UNSET,
        description="A JSON object, <= 2 KiB UTF-8 serialized, no PII-shaped keys at any depth.",
    )
    client_event_id: str | None = strawberry.field(
        default=strawberry.UNSET, description="Idempotency key (recommended); the server generates a UUID when absent."
    )


def event_input(value: Mapping[str, Any]) -> EventInput:
    """An `EventInput` from a coerced `TrackEventInput` value (keyed by GraphQL names)."""
    get = value.get
    return EventInput(
        event_type=value["eventType"],
        app_name=value["appName"],
        route=get("route"),
        entity_type=get("entityType"),
        entity_id=get("entityId"),
        session_id=get("sessionId"),
        description=get("description"),
        client_event_id=get("clientEventId"),
    )


set_input_builder(TrackEventInput, event_input)


@strawberry.type(description="What happened to one event.")
class TrackEventResult:
    status: TrackStatus
    accepted: bool = strawberry.field(description="True for ACCEPTED and DUPLICATE: the event is stored exactly once.")
    reason: DropReason | None
    message: str | None = strawberry.field(description="Human-readable explanation a caller can act on.")
    retryable: bool = strawberry.field(
        description="True for RATE_LIMITED / UNAVAILABLE: retry later with the same clientEventId."
    )
    event_id: strawberry.ID | None = strawberry.field(description="The stored id; for DUPLICATE the original id.")
    client_event_id: str

    @classmethod
    def of(cls, result: TrackResult) -> TrackEventResult:
        return cls(
            status=result.status,
            accepted=result.accepted,
            reason=result.reason,
            message=result.message,
            retryable=result.retryable,
            event_id=strawberry.ID(result.event_id) if result.event_id else None,
            client_event_id=result.client_event_id,
        )


async def _track(info: Info[Context, None], inputs: list[TrackEventInput]) -> list[TrackEventResult]:
    context = info.context
    events = cast("list[EventInput]", inputs)  # built by `event_input`, see the module doc
    try:
        results = await context.services.ingest.track(context.facts, events, context.drops)
    except Refused as exc:
        raise refused(exc) from None
    return [TrackEventResult.of(result) for result in results]


@strawberry.type
class IngestMutation:
    @strawberry.mutation(description="Record one event (any authenticated user).")
    async def track_event(self, info: Info[Context, None], input: TrackEventInput) -> TrackEventResult:  # noqa: A002 - the contract's name
        return (await _track(info, [input]))[0]

    @strawberry.mutation(description="Record up to 100 events; results in input order.")
    async def track_events(self, info: Info[Context, None], inputs: list[TrackEventInput]) -> list[TrackEventResult]:
        return await _track(info, inputs)
