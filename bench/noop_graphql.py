"""A reference point for bench/ingest.py: the same Strawberry stack as the app (federation
schema, ParserCache + ValidationCache, the same input and result types) with a
`trackEvent` that does nothing. Its distance to bench/bare.py is the framework's own cost,
the ceiling for any trackEvent built on it.

Run by the benchmark as `uvicorn bench.noop_graphql:app`.
"""

from __future__ import annotations

import strawberry
from starlette.applications import Starlette
from starlette.routing import Route
from strawberry.asgi import GraphQL
from strawberry.extensions import ParserCache, ValidationCache

from app.graphql.ingest import TrackEventInput, TrackEventResult
from app.ingest.pipeline import TrackStatus


@strawberry.type
class Query:
    ok: bool = True


@strawberry.type
class Mutation:
    @strawberry.mutation
    async def track_event(self, input: TrackEventInput) -> TrackEventResult:  # noqa: A002
        return TrackEventResult(
            status=TrackStatus.ACCEPTED, accepted=True, reason=None, message=None, retryable=False,
            event_id=strawberry.ID("00000000-0000-0000-0000-000000000000"), client_event_id=input.client_event_id or "",
        )  # fmt: skip


schema = strawberry.federation.Schema(
    query=Query,
    mutation=Mutation,
    federation_version="2.5",
    extensions=[ParserCache(maxsize=256), ValidationCache(maxsize=256)],
)
app = Starlette(routes=[Route("/graphql", GraphQL(schema), methods=["POST"])])
