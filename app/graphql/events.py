"""The federated `Event` entity: one stored event, admin-readable.

Its fields are the `events` row's (app/storage/events.py `EventRow`, inherited as dataclass
fields) with the database-assigned `id` first; `description` reads back as JSON.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any

import strawberry
from strawberry.scalars import JSON
from strawberry.types import Info

from app.graphql.context import Context
from app.read.queries import fetch_event
from app.storage.events import COLUMNS, EventRow
from app.storage.replica import ReadRoute


@dataclass
class _Keyed:
    id: strawberry.ID  # first in the type: dataclass fields of the last base come first


@strawberry.federation.type(keys=["id"], description="One recorded interaction (admin-readable).")
class Event(EventRow, _Keyed):
    user_hash: str = strawberry.field(description="HMAC of host/IP/UA with a daily salt; unlinkable across days.")
    dedup_key: strawberry.Private[str]
    description: JSON | None  # type: ignore[assignment]  # the stored text reads back decoded

    @classmethod
    def from_row(cls, row: Any) -> Event:
        return cls(id=strawberry.ID(str(row.id)), **{name: getattr(row, name) for name in COLUMNS})

    @classmethod
    async def resolve_reference(cls, info: Info[Context, None], id: strawberry.ID) -> Event | None:  # noqa: A002 - the key field's name
        info.context.require_admin()
        return await load_event(info.context, str(id))


assert tuple(f.name for f in fields(Event)) == ("id", *COLUMNS)


async def load_event(context: Context, event_id: str) -> Event | None:
    async def load(route: ReadRoute) -> Any:
        async with route.engine.connect() as conn:
            return await fetch_event(conn, event_id)

    row = await context.services.reads.run(load)
    return Event.from_row(row) if row else None
