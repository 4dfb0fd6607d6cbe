"""`nextEvents` through the real ASGI app: admin only, the answer equal to a recount in
plain Python over the raw seeded rows (testkit/journeys.py, with its named edge cases), and
bad input as BAD_USER_INPUT saying what to change."""

from __future__ import annotations

import datetime as dt
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from testkit.database import migrated_database
from testkit.http import asgi_client, gql
from testkit.journeys import APP, DAYS, base_day, journey_rows, recount_next, top_pairs, top_types
from testkit.seed import insert_rows
from testkit.settings import make_settings
from testkit.stats import raw_rows

BASE = base_day()
END = BASE + dt.timedelta(days=DAYS)
WINDOW = {"appName": APP, "from": BASE.isoformat(), "to": END.isoformat()}
QUERY = """
query($filter: EventFilter!, $eventType: String!, $top: Int) {
  nextEvents(filter: $filter, eventType: $eventType, top: $top) {
    eventType anchors followed exits exitShare withoutSession
    types { eventType count share }
    routes { eventType route count share }
  }
}"""


@pytest.fixture(scope="module")
async def journeys_db(pg_server: str) -> AsyncIterator[str]:
    async with migrated_database(pg_server) as url:
        await insert_rows(url, journey_rows(BASE))
        yield url


@pytest.fixture
async def journeys_client(journeys_db: str, tmp_path: Path) -> AsyncIterator[httpx.AsyncClient]:
    async with asgi_client(make_settings(journeys_db, tmp_path)) as http:
        yield http


def share(part: int, whole: int) -> Any:
    return None if whole == 0 else pytest.approx(part / whole)


@pytest.mark.parametrize(("event_type", "top"), [("view", 10), ("view", 2), ("click", 10), ("export", 3)])
async def test_next_events_equal_a_python_recount(
    journeys_client: httpx.AsyncClient, admin_headers: dict[str, str], journeys_db: str, event_type: str, top: int
) -> None:
    expected = recount_next(await raw_rows(journeys_db), event_type, APP, BASE, END)
    body = await gql(journeys_client, QUERY, {"filter": WINDOW, "eventType": event_type, "top": top}, admin_headers)
    assert "errors" not in body, body
    followed = expected["followed"]
    assert body["data"]["nextEvents"] == {
        "eventType": event_type,
        "anchors": expected["anchors"],
        "followed": followed,
        "exits": expected["exits"],
        "exitShare": share(expected["exits"], followed),
        "withoutSession": expected["without"],
        "types": [
            {"eventType": kind, "count": n, "share": share(n, followed)}
            for kind, n in top_types(expected["types"], top)
        ],
        "routes": [
            {"eventType": kind, "route": route, "count": n, "share": share(n, followed)}
            for kind, route, n in top_pairs(expected["pairs"], top)
        ],
    }


async def test_a_session_across_midnight_and_a_tie(
    journeys_client: httpx.AsyncClient, admin_headers: dict[str, str]
) -> None:
    for session, next_type in (("s-midnight", "click"), ("s-tie", "search")):
        variables = {"filter": {**WINDOW, "sessionId": session}, "eventType": "view"}
        body = await gql(journeys_client, QUERY, variables, admin_headers)
        answer = body["data"]["nextEvents"]
        assert (answer["anchors"], answer["exits"]) == (1, 0), session
        assert answer["types"] == [{"eventType": next_type, "count": 1, "share": 1.0}], session


async def test_without_a_session_nothing_is_shared(
    journeys_client: httpx.AsyncClient, admin_headers: dict[str, str], journeys_db: str
) -> None:
    rows = await raw_rows(journeys_db)
    person = next(row["user_hash"] for row in rows if row["session_id"] is None)
    variables = {"filter": {**WINDOW, "userHash": person}, "eventType": "view"}
    body = await gql(journeys_client, QUERY, variables, admin_headers)
    answer = body["data"]["nextEvents"]
    views = sum(1 for row in rows if row["user_hash"] == person and row["event_type"] == "view")
    assert answer["withoutSession"] == answer["anchors"] == views > 0
    assert (answer["followed"], answer["exitShare"], answer["types"]) == (0, None, [])


@pytest.mark.parametrize(
    ("variables", "says"),
    [
        ({"filter": {"appName": APP}, "eventType": "view"}, "filter.from and filter.to are required"),
        ({"filter": {**WINDOW, "eventTypes": ["view"]}, "eventType": "view"}, "remove filter.eventTypes"),
        (
            {"filter": {"from": "2025-01-01T00:00:00Z", "to": "2026-06-01T00:00:00Z"}, "eventType": "view"},
            "at most 366 are allowed",
        ),
        ({"filter": WINDOW, "eventType": "view", "top": 0}, "top must be between 1 and 100"),
        ({"filter": WINDOW, "eventType": ""}, "eventType must be"),
        ({"filter": {**WINDOW, "to": WINDOW["from"]}, "eventType": "view"}, "filter.from must be before filter.to"),
    ],
)
async def test_bad_input_says_what_to_change(
    journeys_client: httpx.AsyncClient, admin_headers: dict[str, str], variables: dict[str, Any], says: str
) -> None:
    body = await gql(journeys_client, QUERY, variables, admin_headers)
    error = body["errors"][0]
    assert error["extensions"]["code"] == "BAD_USER_INPUT", body
    assert says in error["message"]


async def test_non_admins_are_forbidden(journeys_client: httpx.AsyncClient, user_headers: dict[str, str]) -> None:
    variables = {"filter": WINDOW, "eventType": "view"}
    body = await gql(journeys_client, QUERY, variables, user_headers)
    assert body["errors"][0]["extensions"]["code"] == "FORBIDDEN", body
    assert body.get("data") is None
    body = await gql(journeys_client, QUERY, variables, {})
    assert body["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED", body
