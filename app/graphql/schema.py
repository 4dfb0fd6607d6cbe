"""The GraphQL schema: a federation v2 subgraph assembled from each capability's root
fields (app/graphql/ingest.py, read.py, properties.py, insights.py, journeys.py, events.py), with the
extensions of every operation."""

from __future__ import annotations

from typing import Any

import strawberry
from graphql import GraphQLError
from strawberry.types import ExecutionContext, Info

from app.config import Settings
from app.graphql.context import Context
from app.graphql.errors import graphql_error, label_errors, log_error
from app.graphql.events import Event, load_event
from app.graphql.extensions import schema_extensions
from app.graphql.ingest import IngestMutation
from app.graphql.insights import InsightsQuery
from app.graphql.journeys import JourneysQuery
from app.graphql.properties import PropertyQuery
from app.graphql.read import ReadQuery
from app.graphql.strawberry_compat import FederationAny, entity_key_fields


@strawberry.type
class Query(ReadQuery, PropertyQuery, InsightsQuery, JourneysQuery):
    @strawberry.field(description="One event by id (admin only).")
    async def event(self, info: Info[Context, None], id: strawberry.ID) -> Event | None:  # noqa: A002 - the contract's name
        info.context.require_admin()
        return await load_event(info.context, str(id))


@strawberry.type
class Mutation(IngestMutation):
    pass


class SignalsSchema(strawberry.federation.Schema):
    """The federation schema, with `_entities` refusing malformed representations.

    Strawberry's resolver assumes what a gateway sends (`{__typename: "Event", id: ...}`): a
    representation without `__typename`, naming an unknown type, not an object, or with other
    keys than the type's `resolve_reference` takes would raise KeyError/TypeError/AttributeError,
    a masked "Unexpected error" logged as a server fault. Such an item gets a BAD_USER_INPUT
    error of its own; well-formed ones resolve as Strawberry resolves them."""

    def process_errors(self, errors: list[GraphQLError], execution_context: ExecutionContext | None = None) -> None:
        """Log each error by class and code (app/graphql/errors.py), instead of Strawberry's
        default, which logs its message (the caller's input) and a traceback for every error.
        Strawberry calls this before the extensions see the errors, so the variable errors
        graphql-core reports (no path, no code) get their code, BAD_USER_INPUT, here."""
        operation = execution_context.operation_name if execution_context is not None else None
        graphql_cores = (
            e
            for e in errors
            if e.path is None and (e.original_error is None or isinstance(e.original_error, GraphQLError))
        )
        label_errors(graphql_cores, "BAD_USER_INPUT")
        for error in errors:
            log_error(error, operation)

    def entities_resolver(self, info: Info, representations: list[FederationAny]) -> list[FederationAny]:
        results: list[Any] = [None] * len(representations)
        positions, valid = [], []
        for index, representation in enumerate(representations):
            problem = self._representation_problem(representation)
            if problem is None:
                positions.append(index)
                valid.append(representation)
            else:
                results[index] = graphql_error(f"representations[{index}]: {problem}", "BAD_USER_INPUT")
        for index, result in zip(positions, super().entities_resolver(info, valid), strict=True):
            results[index] = result
        return results

    def _representation_problem(self, representation: object) -> str | None:
        if not isinstance(representation, dict):
            return "must be an object with __typename and the key fields"
        type_name = representation.get("__typename")
        keys = entity_key_fields(self, type_name) if isinstance(type_name, str) else None
        if keys is None:
            return "__typename must name an entity type of this subgraph"
        if set(representation) - {"__typename"} != keys:
            return f"a {type_name} representation has exactly the fields {', '.join(sorted(keys))}"
        return None


def build_schema(settings: Settings) -> strawberry.federation.Schema:
    return SignalsSchema(
        query=Query,
        mutation=Mutation,
        federation_version="2.5",
        extensions=schema_extensions(settings),
    )
