"""GraphQL schema: a federation v2 subgraph (strawberry).

Types live here; resolvers stay thin and call the module that owns the concern.
"""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

import strawberry
from sqlalchemy import text
from strawberry.federation.schema import FederationAny
from strawberry.scalars import JSON
from strawberry.types import Info
from strawberry.utils.inspect import get_func_args

from app.config import Settings
from app.context import Context, graphql_error
from app.hardening import schema_extensions
from app.ingest_schema import IngestMutation
from app.queries import EVENT_COLUMNS
from app.read_api import ReadQuery


@strawberry.federation.type(keys=["id"], description="One recorded interaction (admin-readable).")
class Event:
    id: strawberry.ID
    created_at: dt.datetime
    app_name: str
    event_type: str
    route: str | None
    entity_type: str | None
    entity_id: str | None
    user_hash: str = strawberry.field(description="HMAC of host/IP/UA with a daily salt; unlinkable across days.")
    session_id: str | None
    device_type: str
    browser_family: str
    os_family: str
    client_event_id: str
    description: JSON | None

    @classmethod
    def from_row(cls, row: Any) -> Event:
        return cls(
            id=strawberry.ID(str(row.id)),
            created_at=row.created_at,
            app_name=row.app_name,
            event_type=row.event_type,
            route=row.route,
            entity_type=row.entity_type,
            entity_id=row.entity_id,
            user_hash=row.user_hash,
            session_id=row.session_id,
            device_type=row.device_type,
            browser_family=row.browser_family,
            os_family=row.os_family,
            client_event_id=row.client_event_id,
            description=row.description,
        )

    @classmethod
    async def resolve_reference(cls, info: Info[Context, None], id: strawberry.ID) -> Event | None:  # noqa: A002
        info.context.require_admin()
        return await load_event(info.context, str(id))


async def load_event(context: Context, event_id: str) -> Event | None:
    try:
        key = uuid.UUID(event_id)
    except ValueError:
        return None
    async with context.services.engine.connect() as conn:
        row = (await conn.execute(text(f"SELECT {EVENT_COLUMNS} FROM events WHERE id = :id"), {"id": key})).first()
    return Event.from_row(row) if row else None


@strawberry.type
class Query(ReadQuery):
    @strawberry.field(description="One event by id (admin only).")
    async def event(self, info: Info[Context, None], id: strawberry.ID) -> Event | None:  # noqa: A002
        info.context.require_admin()
        return await load_event(info.context, str(id))


@strawberry.type
class Mutation(IngestMutation):
    pass


class SignalsSchema(strawberry.federation.Schema):
    """The federation schema, with `_entities` refusing malformed representations.

    Strawberry's resolver assumes what a gateway sends (`{__typename: "Event", id: ...}`): a
    representation without `__typename`, naming an unknown type, not an object, or with other
    keys than the type's `resolve_reference` takes raised KeyError/TypeError/AttributeError,
    answered as a masked "Unexpected error" (and logged as a server fault). Such an item now
    gets a BAD_USER_INPUT error of its own; well-formed ones resolve as before."""

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
        return results  # type: ignore[return-value]

    def _representation_problem(self, representation: object) -> str | None:
        if not isinstance(representation, dict):
            return "must be an object with __typename and the key fields"
        type_name = representation.get("__typename")
        type_ = self.schema_converter.type_map.get(type_name) if isinstance(type_name, str) else None
        origin = getattr(getattr(type_, "definition", None), "origin", None)
        resolve_reference = getattr(origin, "resolve_reference", None)
        if resolve_reference is None:
            return "__typename must name an entity type of this subgraph"
        parameters = set(get_func_args(resolve_reference)) - {"info"}
        given = set(representation) - {"__typename"}
        if given != parameters:
            return f"a {type_name} representation has exactly the fields {', '.join(sorted(parameters))}"
        return None


def build_schema(settings: Settings | None = None) -> strawberry.federation.Schema:
    return SignalsSchema(
        query=Query,
        mutation=Mutation,
        federation_version="2.5",
        extensions=schema_extensions(settings),
    )
