"""The shape of an `events` row, defined once (the table itself is `schema.prisma`).

`EventRow` is a row as ingest derives it, before the database assigns its `id`; the
writer's INSERT, the read side's SELECT list and the GraphQL `Event` type are all derived
from its fields (the type hides those in `HIDDEN`). A test checks these fields against the
migrated table's columns.
"""

import datetime as dt
from dataclasses import dataclass, fields


@dataclass(slots=True)
class EventRow:
    """One events row without its id."""

    created_at: dt.datetime
    app_name: str
    event_type: str
    route: str | None
    entity_type: str | None
    entity_id: str | None
    user_hash: str
    session_id: str | None
    device_type: str
    browser_family: str
    os_family: str
    client_event_id: str
    dedup_key: str  # hex(HMAC(caller key, client_event_id)): what is unique; never shown
    description: str | None  # compact JSON text on the way in; read back as jsonb (a dict)


COLUMNS: tuple[str, ...] = tuple(f.name for f in fields(EventRow))
"""The columns ingest writes, in `EventRow` order."""

HIDDEN = frozenset({"dedup_key"})
"""Columns that are stored but never shown or exported (the GraphQL type marks them private)."""

DESCRIPTION_MAX_DEPTH = 16
"""How deep a stored `description` nests at most: ingest refuses deeper ones, so a property
path (app/read/properties.py) has at most this many keys."""

SELECT_COLUMNS = ", ".join(("id", *COLUMNS))
"""What the read side selects for one event: `id` and every written column."""


def is_utf8(value: str) -> bool:
    """False for text that UTF-8, and so a PostgreSQL text column, cannot hold: lone surrogates."""
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:  # lone surrogates, e.g. "\\ud800" in the request's JSON
        return False
    return True
