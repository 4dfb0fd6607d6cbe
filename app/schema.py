"""GraphQL schema: a federation v2 subgraph (strawberry).

Types live here; resolvers stay thin and call the module that owns the concern.
"""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

import strawberry
from sqlalchemy import text
from strawberry.scalars import JSON
from strawberry.types import Info

from app.config import Settings
from app.context import Context
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


def build_schema(settings: Settings | None = None) -> strawberry.federation.Schema:
    return strawberry.federation.Schema(
        query=Query,
        mutation=Mutation,
        federation_version="2.5",
        extensions=schema_extensions(settings),
    )
