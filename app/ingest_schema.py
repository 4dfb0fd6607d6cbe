"""GraphQL face of the ingest pipeline: `trackEvent` and `trackEvents` (the lead's contract).

The resolvers only translate between GraphQL types and `app.ingest`; every decision is made
by the pipeline there.
"""

from __future__ import annotations

import strawberry
from strawberry.types import Info

from app.context import Context
from app.ingest import DropReason, EventInput, Ingest, TrackResult, TrackStatus

TrackStatusType = strawberry.enum(TrackStatus, name="TrackStatus")
DropReasonType = strawberry.enum(DropReason, name="DropReason")


TrackEventInput = EventInput  # defined with the pipeline, which uses it as is


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


async def _track(info: Info[Context, None], inputs: list[TrackEventInput]) -> list[TrackEventResult]:
    results = await Ingest.of(info.context.services).track(info.context, inputs)
    return [TrackEventResult.of(result) for result in results]


@strawberry.type
class IngestMutation:
    @strawberry.mutation(description="Record one event (any authenticated user).")
    async def track_event(self, info: Info[Context, None], input: TrackEventInput) -> TrackEventResult:  # noqa: A002
        return (await _track(info, [input]))[0]

    @strawberry.mutation(description="Record up to 100 events; results in input order.")
    async def track_events(self, info: Info[Context, None], inputs: list[TrackEventInput]) -> list[TrackEventResult]:
        return await _track(info, inputs)
