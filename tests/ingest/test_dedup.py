"""`clientEventId` deduplicates per caller: another caller's id is another event, and no
answer tells a caller anything about ids others sent (app/privacy/hashing.py
`caller_event_key`). Counted with SQL over the stored rows."""

from __future__ import annotations

import uuid
from typing import Any

import httpx

from testkit.database import fetch
from testkit.http import gql
from testkit.tokens import token

TRACK = "mutation($x: TrackEventInput!) { trackEvent(input: $x) { status eventId clientEventId } }"


def caller(subject: str) -> dict[str, str]:
    return {"authorization": f"Bearer {token(roles=['member'], subject=subject)}", "user-agent": "Mozilla/5.0"}


async def track(client: httpx.AsyncClient, who: str, given: dict[str, Any]) -> dict[str, Any]:
    body = await gql(client, TRACK, {"x": given}, caller(who))
    return body["data"]["trackEvent"]


async def test_another_callers_id_is_another_event(client: httpx.AsyncClient, migrated_db: str) -> None:
    shared = f"export-order-{uuid.uuid4().hex[:6]}"
    squatter = await track(
        client, "attacker", {"appName": "admin-console", "eventType": "view", "clientEventId": shared}
    )
    victim = await track(client, "victim", {"appName": "admin-console", "eventType": "export", "clientEventId": shared})
    again = await track(client, "victim", {"appName": "admin-console", "eventType": "export", "clientEventId": shared})
    assert (squatter["status"], victim["status"], again["status"]) == ("ACCEPTED", "ACCEPTED", "DUPLICATE")
    assert victim["clientEventId"] == again["clientEventId"] == shared  # the caller's own id, echoed
    assert victim["eventId"] != squatter["eventId"] and again["eventId"] == victim["eventId"]
    rows = await fetch(migrated_db, "SELECT id, event_type, dedup_key FROM events WHERE client_event_id = $1", shared)
    assert sorted(row["event_type"] for row in rows) == ["export", "view"]  # both stored, once each
    assert len({row["dedup_key"] for row in rows}) == 2 and all(shared not in row["dedup_key"] for row in rows)
    assert {str(row["id"]) for row in rows} == {squatter["eventId"], victim["eventId"]}
