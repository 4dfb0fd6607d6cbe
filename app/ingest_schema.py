"""GraphQL face of the ingest pipeline: `trackEvent` and `trackEvents` (the lead's contract).

The resolvers only translate between GraphQL types and `app.ingest`; every decision is made
by the pipeline there.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import strawberry
from strawberry.scalars import JSON
from strawberry.types import Info

from app.context import Context
from app.ingest import DropReason, EventInput, Ingest, TrackResult, TrackStatus

TrackStatusType = strawberry.enum(TrackStatus, name="TrackStatus")
DropReasonType = strawberry.enum(DropReason, name="DropReason")


@strawberry.input(description="One interaction to record.")
class TrackEventInput:
    event_type: str
    app_name: str
    route: str | None = None
    entity_type: str | None = None
    entity_id: str | None = None
    session_id: str | None = None
    description: JSON | None = strawberry.field(
        default=None, description="A JSON object, <= 2 KiB UTF-8 serialized, no PII-shaped keys at any depth."
    )
    client_event_id: str | None = strawberry.field(
        default=None, description="Idempotency key (recommended); the server generates a UUID when absent."
    )


@strawberry.type(description="What happened to one event.")
class TrackEventResult:
    status: TrackStatusType  # type: ignore[valid-type]
    accepted: bool = strawberry.field(description="True for ACCEPTED and DUPLICATE: the event is stored exactly once.")
    reason: DropReasonType | None  # type: ignore[valid-type]
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


def _from_graphql(cls: type[TrackEventInput], value: Mapping[str, Any], _context: object) -> TrackEventInput:
    """Strawberry's `from_input` hook: every field is a scalar graphql-core has already
    coerced, so the generic per-field conversion (a noticeable share of a request's time)
    is not needed."""
    get = value.get
    return cls(
        event_type=value["eventType"],
        app_name=value["appName"],
        route=get("route"),
        entity_type=get("entityType"),
        entity_id=get("entityId"),
        session_id=get("sessionId"),
        description=get("description"),
        client_event_id=get("clientEventId"),
    )


TrackEventInput.__strawberry_definition__.from_input = _from_graphql  # type: ignore[attr-defined]


def _event_input(given: TrackEventInput) -> EventInput:
    return EventInput(
        event_type=given.event_type,
        app_name=given.app_name,
        route=given.route,
        entity_type=given.entity_type,
        entity_id=given.entity_id,
        session_id=given.session_id,
        description=given.description,
        client_event_id=given.client_event_id,
    )


async def _track(info: Info[Context, None], inputs: list[TrackEventInput]) -> list[TrackEventResult]:
    ingest = Ingest.of(info.context.services)
    results = await ingest.track(info.context, [_event_input(given) for given in inputs])
    return [TrackEventResult.of(result) for result in results]


@strawberry.type
class IngestMutation:
    @strawberry.mutation(description="Record one event (any authenticated user).")
    async def track_event(self, info: Info[Context, None], input: TrackEventInput) -> TrackEventResult:  # noqa: A002
        return (await _track(info, [input]))[0]

    @strawberry.mutation(description="Record up to 100 events; results in input order.")
    async def track_events(self, info: Info[Context, None], inputs: list[TrackEventInput]) -> list[TrackEventResult]:
        return await _track(info, inputs)
