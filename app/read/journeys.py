"""One-step journeys: for the events of one type matching a filter (the anchors), what the
same session did next.

Definitions. A session is a sessionId (the unit across UTC midnight: the next event may be
on the next day, or after the window's end). The next event of an anchor is the event of
the same sessionId that follows it in (created_at, id) order, whatever its type, route or
app: ties on created_at are broken by id, as the events pages order. An anchor without a
following event is an exit. Anchors without a sessionId cannot be followed: they are
counted apart (`without_session`) and in no share. Shares are of the followed anchors
(those with a sessionId), exits included, so the next types' shares plus the exit share
make 1.

Cost. The anchors come from the filter's index range; each looks up its successor with an
index-friendly LATERAL `ORDER BY created_at, id LIMIT 1` on the session (an index on
(session_id, created_at, id) makes it one probe per anchor). The window is required and
bounded (MAX_DAYS); the anchors are split by time over `parallelism` connections.
"""

from __future__ import annotations

import asyncio
import itertools
from collections import Counter
from dataclasses import dataclass, replace
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from app.read.queries import EventFilterSpec, QueryInputError
from app.read.window import utc_days
from app.storage.events import is_utf8

MAX_TOP = 100


@dataclass(frozen=True)
class NextEventsRequest:
    spec: EventFilterSpec
    event_type: str
    top: int = 10

    def __post_init__(self) -> None:
        if self.spec.event_types:
            raise QueryInputError("nextEvents takes the anchor type as eventType: remove filter.eventTypes")
        # PostgreSQL text holds neither NUL nor lone surrogates (the driver would fail on them)
        if not self.event_type or "\x00" in self.event_type or not is_utf8(self.event_type):
            raise QueryInputError("eventType must be a non-empty event type without NUL characters or invalid Unicode")
        if not 1 <= self.top <= MAX_TOP:
            raise QueryInputError(f"top must be between 1 and {MAX_TOP}")
        utc_days(self.spec, "filter")  # from and to required, at most MAX_DAYS days

    @property
    def anchors(self) -> EventFilterSpec:
        return replace(self.spec, event_types=(self.event_type,))


@dataclass(frozen=True)
class Next:
    event_type: str
    route: str | None
    count: int


@dataclass(frozen=True)
class NextEvents:
    anchors: int  # every matching event of the type, with or without a sessionId
    followed: int  # anchors with a sessionId: the shares' denominator
    exits: int  # followed anchors without a next event
    without_session: int
    types: list[tuple[str, int]]  # top N next event types by count (ties by type)
    pairs: list[Next]  # top N (type, route) by count (ties by type, then route; null route last)


def next_events_query(spec: EventFilterSpec) -> tuple[str, dict[str, Any]]:
    """(next type, next route, anchors) per next event; next NULL for exits, and one row with
    `no_session` true counting the anchors without a sessionId."""
    where, params = spec.where()
    sql = (
        "SELECT nxt.event_type AS next_type, nxt.route AS next_route, a.session_id IS NULL AS no_session, "
        "count(*) AS n "
        f"FROM (SELECT id, created_at, session_id FROM events WHERE {where}) AS a "
        "LEFT JOIN LATERAL (SELECT e.event_type, e.route FROM events AS e "
        "WHERE a.session_id IS NOT NULL AND e.session_id = a.session_id "
        "AND (e.created_at, e.id) > (a.created_at, a.id) "
        "ORDER BY e.created_at, e.id LIMIT 1) AS nxt ON TRUE "
        "GROUP BY 1, 2, 3"
    )
    return sql, params


def _split(spec: EventFilterSpec, parts: int) -> list[EventFilterSpec]:
    """The window as `parts` consecutive sub-windows (every anchor in exactly one)."""
    assert spec.start is not None and spec.end is not None
    step = (spec.end - spec.start) / parts
    bounds = [spec.start + step * i for i in range(parts)] + [spec.end]
    return [replace(spec, start=a, end=b) for a, b in itertools.pairwise(bounds) if a < b]


async def fetch_next_events(engine: AsyncEngine, request: NextEventsRequest, parallelism: int) -> NextEvents:
    parts = _split(request.anchors, max(1, parallelism)) if parallelism > 1 else [request.anchors]

    async def run(spec: EventFilterSpec) -> list[Any]:
        sql, params = next_events_query(spec)
        async with engine.connect() as conn:
            return list((await conn.execute(text(sql), params)).all())

    pairs: Counter[tuple[str, str | None]] = Counter()
    exits = without_session = 0
    for rows in await asyncio.gather(*(run(part) for part in parts)):
        for row in rows:
            if row.no_session:
                without_session += row.n
            elif row.next_type is None:
                exits += row.n
            else:
                pairs[(row.next_type, row.next_route)] += row.n
    types: Counter[str] = Counter()
    for (kind, _route), n in pairs.items():
        types[kind] += n
    followed = exits + sum(pairs.values())
    top = request.top
    return NextEvents(
        anchors=followed + without_session,
        followed=followed,
        exits=exits,
        without_session=without_session,
        types=sorted(types.items(), key=lambda item: (-item[1], item[0]))[:top],
        pairs=[
            Next(kind, route, n)
            for (kind, route), n in sorted(
                pairs.items(), key=lambda item: (-item[1], item[0][0], item[0][1] is None, item[0][1] or "")
            )[:top]
        ],
    )
