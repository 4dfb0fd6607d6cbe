"""`events`: admin-only, newest first, filtered, keyset pages that hold while rows arrive."""

from __future__ import annotations

import datetime as dt
import random
import uuid
from typing import Any

import asyncpg
import httpx
import pytest

from app.storage.database import asyncpg_dsn
from testkit.http import gql
from testkit.seed import event_row, insert_rows

PAGE = """
query($filter: EventFilter, $first: Int, $after: String) {
  events(filter: $filter, first: $first, after: $after) {
    edges { cursor node { id createdAt appName eventType deviceType userHash } }
    pageInfo { hasNextPage endCursor }
  }
}"""


def unique_app() -> str:
    return f"app-{uuid.uuid4().hex[:10]}"


async def page(client: httpx.AsyncClient, headers: dict[str, str], **variables: Any) -> dict[str, Any]:
    body = await gql(client, PAGE, variables, headers)
    assert "errors" not in body, body
    return body["data"]["events"]


async def matching_ids(url: str, app: str, types: list[str]) -> list[str]:
    conn = await asyncpg.connect(asyncpg_dsn(url))
    try:
        rows = await conn.fetch(
            "SELECT id FROM events WHERE app_name = $1 AND event_type = ANY($2) ORDER BY created_at DESC, id DESC",
            app,
            types,
        )
    finally:
        await conn.close()
    return [str(row["id"]) for row in rows]


async def test_paging_returns_each_matching_row_once_in_order_while_rows_are_inserted(
    client: httpx.AsyncClient, admin_headers: dict[str, str], migrated_db: str
) -> None:
    app, rng = unique_app(), random.Random(7)
    base = dt.datetime.now(dt.UTC) - dt.timedelta(days=3)
    rows = []
    for i in range(240):
        # many rows share a timestamp, so the id breaks ties
        at = base + dt.timedelta(seconds=(i // 4) * 60)
        rows.append(
            event_row(at, app, rng.choice(["click", "view", "export"]), device_type=rng.choice(["desktop", "mobile"]))
        )
    rows.append(event_row(base, "someone-else", "click"))
    await insert_rows(migrated_db, rows)
    expected = await matching_ids(migrated_db, app, ["click", "view"])
    assert len(expected) > 100

    seen: list[dict[str, Any]] = []
    after = None
    while True:
        result = await page(
            client, admin_headers, filter={"appName": app, "eventTypes": ["click", "view"]}, first=13, after=after
        )
        seen += [edge["node"] for edge in result["edges"]]
        # meanwhile new matching (and non-matching) events keep arriving
        now = dt.datetime.now(dt.UTC)
        await insert_rows(
            migrated_db, [event_row(now, app, "click"), event_row(now, app, "view"), event_row(now, app, "export")]
        )
        if not result["pageInfo"]["hasNextPage"]:
            break
        assert result["pageInfo"]["endCursor"] == result["edges"][-1]["cursor"]
        after = result["pageInfo"]["endCursor"]

    assert [node["id"] for node in seen] == expected
    assert all(node["appName"] == app and node["eventType"] in ("click", "view") for node in seen)
    stamps = [dt.datetime.fromisoformat(node["createdAt"]) for node in seen]
    assert stamps == sorted(stamps, reverse=True)


async def test_filters_and_window(client: httpx.AsyncClient, admin_headers: dict[str, str], migrated_db: str) -> None:
    app = unique_app()
    day = dt.datetime(2026, 5, 1, tzinfo=dt.UTC)
    await insert_rows(
        migrated_db,
        [
            event_row(day + dt.timedelta(hours=1), app, device_type="mobile", person="ann"),
            event_row(day + dt.timedelta(hours=2), app, device_type="desktop", person="bob"),
            event_row(day + dt.timedelta(days=1), app, device_type="mobile", person="ann"),
        ],
    )
    mobile = await page(client, admin_headers, filter={"appName": app, "deviceType": "mobile"})
    assert [e["node"]["deviceType"] for e in mobile["edges"]] == ["mobile", "mobile"]
    window = await page(
        client, admin_headers, filter={"appName": app, "from": "2026-05-01T00:00:00Z", "to": "2026-05-02T00:00:00Z"}
    )
    assert len(window["edges"]) == 2  # `to` is exclusive
    naive_is_utc = await page(
        client, admin_headers, filter={"appName": app, "from": "2026-05-01T01:00:00", "to": "2026-05-01T02:00:00"}
    )
    assert len(naive_is_utc["edges"]) == 1  # `from` inclusive
    one_user = mobile["edges"][0]["node"]["userHash"]
    by_user = await page(client, admin_headers, filter={"userHash": one_user})
    assert [e["node"]["userHash"] for e in by_user["edges"]] == [one_user]


async def test_first_is_clamped_to_1000(
    client: httpx.AsyncClient, admin_headers: dict[str, str], migrated_db: str
) -> None:
    app = unique_app()
    start = dt.datetime(2026, 4, 1, tzinfo=dt.UTC)
    await insert_rows(migrated_db, [event_row(start + dt.timedelta(seconds=i), app) for i in range(1003)])
    result = await page(client, admin_headers, filter={"appName": app}, first=5000)
    assert len(result["edges"]) == 1000 and result["pageInfo"]["hasNextPage"]
    rest = await page(client, admin_headers, filter={"appName": app}, first=5000, after=result["pageInfo"]["endCursor"])
    assert len(rest["edges"]) == 3 and not rest["pageInfo"]["hasNextPage"]
    default = await page(client, admin_headers, filter={"appName": app})
    assert len(default["edges"]) == 100


@pytest.mark.parametrize(
    ("variables", "fragment"),
    [
        ({"first": 0}, "first must be at least 1"),
        ({"after": "bm90LWEtY3Vyc29y"}, "not a cursor"),
        ({"after": "%%%"}, "not a cursor"),
        ({"filter": {"from": "2026-05-02T00:00:00Z", "to": "2026-05-01T00:00:00Z"}}, "from must be before"),
    ],
)
async def test_bad_input_is_a_clear_error(
    client: httpx.AsyncClient, admin_headers: dict[str, str], variables: dict[str, Any], fragment: str
) -> None:
    body = await gql(client, PAGE, variables, admin_headers)
    (error,) = body["errors"]
    assert error["extensions"]["code"] == "BAD_USER_INPUT" and fragment in error["message"]


async def test_event_by_id_and_federation_entity(
    client: httpx.AsyncClient, admin_headers: dict[str, str], migrated_db: str
) -> None:
    app = unique_app()
    await insert_rows(migrated_db, [event_row(dt.datetime.now(dt.UTC), app, "export")])
    node = (await page(client, admin_headers, filter={"appName": app}))["edges"][0]["node"]
    entities = await gql(
        client,
        "query($r: [_Any!]!) { _entities(representations: $r) { ... on Event { id eventType } } }",
        {"r": [{"__typename": "Event", "id": node["id"]}]},
        admin_headers,
    )
    assert entities["data"]["_entities"] == [{"id": node["id"], "eventType": "export"}]
