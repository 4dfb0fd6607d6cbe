"""Personal data that hides behind encoding or look-alike letters is refused like plain
personal data, and characters that hide or spoof text are refused in every stored field:
each event is sent through the API, and the database is asked whether anything was stored."""

from __future__ import annotations

import uuid
from typing import Any

import httpx
import pytest

from testkit.database import fetch
from testkit.http import gql
from testkit.tokens import token

TRACK = "mutation($x: TrackEventInput!) { trackEvent(input: $x) { status reason message } }"
HEADERS = {"authorization": f"Bearer {token(roles=['member'])}", "user-agent": "Mozilla/5.0 (X11; Linux x86_64)"}

REFUSED: list[tuple[str, dict[str, Any], str]] = [
    ("percent-encoded @ in a route", {"route": "/users/jane%40example.com"}, "INVALID_INPUT"),
    ("twice-encoded @ in a route", {"route": "/users/jane%2540example.com"}, "INVALID_INPUT"),
    ("full-width @ in a route", {"route": "/users/jane\uff20example.com"}, "INVALID_INPUT"),
    ("encoded query string", {"route": "/search%3Fq%3Djane"}, "INVALID_INPUT"),
    ("full-width question mark", {"route": "/search\uff1fq=jane"}, "INVALID_INPUT"),
    ("right-to-left override in a route", {"route": "/orders/\u202e321"}, "INVALID_INPUT"),
    ("zero-width space in a route", {"route": "/orders/\u200b1"}, "INVALID_INPUT"),
    ("encoded bidi override", {"route": "/orders/%E2%80%AE321"}, "INVALID_INPUT"),
    ("email as an entity id", {"entityType": "customer", "entityId": "jane%40example.com"}, "INVALID_ENTITY"),
    ("bidi override in an entity id", {"entityType": "customer", "entityId": "c\u202e1"}, "INVALID_ENTITY"),
    ("Cyrillic i in a PII key", {"description": {"ema\u0456l": "x"}}, "PII_KEY"),
    ("Greek o in a PII key", {"description": {"ph\u03bfne": "x"}}, "PII_KEY"),
    ("full-width PII key", {"description": {"\uff45mail": "x"}}, "PII_KEY"),
    ("encoded email as a value", {"description": {"who": "jane%40example.com"}}, "INVALID_INPUT"),
    ("bidi override in a value", {"description": {"label": "\u202eevil"}}, "INVALID_INPUT"),
    ("zero-width joiner in a key", {"description": {"bu\u200dtton": "x"}}, "INVALID_INPUT"),
]


@pytest.mark.parametrize(("label", "fields", "reason"), REFUSED, ids=[case[0] for case in REFUSED])
async def test_hidden_personal_data_is_refused_and_not_stored(
    client: httpx.AsyncClient, migrated_db: str, label: str, fields: dict[str, Any], reason: str
) -> None:
    client_event_id = f"hidden-{uuid.uuid4()}"
    given = {"appName": "admin-console", "eventType": "click", "clientEventId": client_event_id, **fields}
    result = (await gql(client, TRACK, {"x": given}, HEADERS))["data"]["trackEvent"]
    assert (result["status"], result["reason"]) == ("DROPPED", reason), label
    assert await fetch(migrated_db, "SELECT 1 FROM events WHERE client_event_id = $1", client_event_id) == []


async def test_ordinary_unicode_is_still_accepted(client: httpx.AsyncClient) -> None:
    given = {
        "appName": "admin-console", "eventType": "click", "route": "/kunden/m\u00fcller-gmbh/\u8a02\u55ae",
        "description": {"Gr\u00f6\u00dfe": "gro\u00df", "\u8a00\u8a9e": "\u65e5\u672c\u8a9e", "emoji": "\U0001f680"},
    }  # fmt: skip
    result = (await gql(client, TRACK, {"x": given}, HEADERS))["data"]["trackEvent"]
    assert result["status"] == "ACCEPTED", result
