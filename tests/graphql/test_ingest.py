"""The ingest part of the served schema (TrackEventInput, TrackStatus, DropReason,
TrackEventResult, the two mutations) is exactly the contract's."""

from __future__ import annotations

from app.config import load_settings

CONTRACT = """
input TrackEventInput {
  eventType: String! appName: String! route: String entityType: String entityId: String
  sessionId: String description: JSON clientEventId: String
}
enum TrackStatus { ACCEPTED DUPLICATE DROPPED }
enum DropReason {
  BOT RATE_LIMITED UNKNOWN_EVENT_TYPE UNKNOWN_APP UNKNOWN_ENTITY_TYPE INVALID_ENTITY INVALID_INPUT
  DESCRIPTION_TOO_LARGE PII_KEY NO_CLIENT_IDENTITY UNAVAILABLE
}
type TrackEventResult {
  status: TrackStatus! accepted: Boolean! reason: DropReason message: String retryable: Boolean!
  eventId: ID clientEventId: String!
}
type Mutation {
  trackEvent(input: TrackEventInput!): TrackEventResult!
  trackEvents(inputs: [TrackEventInput!]!): [TrackEventResult!]!
}
scalar JSON
type Query { x: Int }
"""


def _shape(schema, name: str) -> dict:
    kind = schema.type_map[name]
    if hasattr(kind, "values"):
        return {"values": sorted(kind.values)}
    return {
        field: (
            str(spec.type),
            {arg: str(a.type) for arg, a in getattr(spec, "args", {}).items()},
            getattr(spec, "default_value", None),
        )
        for field, spec in kind.fields.items()
        if name != "Mutation" or field in ("trackEvent", "trackEvents")
    }


def test_the_sdl_matches_the_contract() -> None:
    from graphql import Undefined
    from graphql import build_schema as parse_sdl

    from app.graphql.schema import build_schema
    from app.graphql.strawberry_compat import graphql_core_schema

    ours, contract = (
        graphql_core_schema(build_schema(load_settings())),
        parse_sdl(CONTRACT),
    )  # the executable graphql-core schema
    for name in ("TrackEventInput", "TrackStatus", "DropReason", "TrackEventResult", "Mutation"):
        assert _shape(ours, name) == _shape(contract, name), name
    assert all(spec.default_value is Undefined for spec in ours.type_map["TrackEventInput"].fields.values())
