"""daily_app_users: answers equal a direct recount, stored days are served as stored until
something forgets them, and open days are always counted live. Over real HTTP."""

from __future__ import annotations

import datetime as dt
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest

from app.cli.ops import forget_answers
from app.storage.database import asyncpg_dsn
from testkit.http import asgi_client, gql
from testkit.seed import event_row, insert_rows
from testkit.settings import make_settings
from testkit.stats import matches, raw_rows, recount, seeded_database

QUERY = """query($filter: EventFilter, $groupBy: [StatsDimension!], $interval: StatsInterval) {
  eventStats(filter: $filter, groupBy: $groupBy, interval: $interval) {
    buckets { start group { dimension value } events distinctUsers summedDailyUsers }
  }
}"""


@pytest.fixture
async def rollup_db(pg_server: str) -> AsyncIterator[str]:
    async for url in seeded_database(pg_server):
        yield url


@pytest.fixture
async def rollup_client(rollup_db: str, tmp_path: Path) -> AsyncIterator[httpx.AsyncClient]:
    # a long retention: the seeded March days count as retained, closed days
    async with asgi_client(make_settings(rollup_db, tmp_path, retention_days=3650)) as http:
        yield http


async def sql(url: str, statement: str, *args: Any) -> list[asyncpg.Record]:
    conn = await asyncpg.connect(asyncpg_dsn(url))
    try:
        return await conn.fetch(statement, *args)
    finally:
        await conn.close()


async def ask(client: httpx.AsyncClient, headers: dict[str, str], variables: dict[str, Any]) -> list[dict[str, Any]]:
    body = await gql(client, QUERY, variables, headers)
    assert "errors" not in body, body
    return [
        {**b, "start": dt.datetime.fromisoformat(b["start"]).isoformat()} for b in body["data"]["eventStats"]["buckets"]
    ]


async def expected(url: str, variables: dict[str, Any]) -> list[dict[str, Any]]:
    rows = [row for row in await raw_rows(url) if matches(row, variables["filter"])]
    buckets, _ = recount(rows, variables["groupBy"], variables["interval"])
    for bucket in buckets:
        del bucket["distinctSessions"]
    return buckets


@pytest.mark.parametrize(
    "variables",
    [
        {"filter": {"appName": "admin-console"}, "groupBy": [], "interval": "DAY"},
        {"filter": {"appName": "admin-console"}, "groupBy": ["APP_NAME"], "interval": "WEEK"},
        {
            "filter": {"appName": "billing-admin", "from": "2026-03-07T13:00:00Z", "to": "2026-03-12T06:00:00Z"},
            "groupBy": [],
            "interval": "DAY",
        },
    ],
)
async def test_rollup_answers_equal_a_recount_and_are_stored(
    rollup_client: httpx.AsyncClient, admin_headers: dict[str, str], rollup_db: str, variables: dict[str, Any]
) -> None:
    first = await ask(rollup_client, admin_headers, variables)
    assert first == await expected(rollup_db, variables)
    stored = await sql(
        rollup_db, "SELECT count(*) AS n FROM daily_app_users WHERE app_name = $1", variables["filter"]["appName"]
    )
    assert stored[0]["n"] >= 3  # the closed whole days went into the table
    assert await ask(rollup_client, admin_headers, variables) == first  # the second answer comes from it


async def test_stored_rows_are_served_as_stored_until_forgotten(
    rollup_client: httpx.AsyncClient, admin_headers: dict[str, str], rollup_db: str
) -> None:
    variables = {"filter": {"appName": "admin-console"}, "groupBy": [], "interval": "DAY"}
    await ask(rollup_client, admin_headers, variables)
    day = dt.date(2026, 3, 9)
    # a stored row is served as stored, without recounting the day (proof the fast path is taken) ...
    await sql(
        rollup_db, "UPDATE daily_app_users SET users = users + 1000 WHERE app_name = 'admin-console' AND day = $1", day
    )
    served = {b["start"][:10]: b for b in await ask(rollup_client, admin_headers, variables)}
    assert served["2026-03-09"]["distinctUsers"] > 1000
    # ... until it is forgotten (here: rows deleted by hand, then `signals forget-answers`);
    # then the day is counted from the events again
    await sql(
        rollup_db,
        "DELETE FROM events WHERE id IN (SELECT id FROM events WHERE app_name = 'admin-console' "
        "AND created_at >= $1 AND created_at < $1 + interval '1 day' LIMIT 5)",
        dt.datetime(2026, 3, 9, tzinfo=dt.UTC),
    )
    assert (await forget_answers(rollup_db)).rows > 0
    assert await ask(rollup_client, admin_headers, variables) == await expected(rollup_db, variables)
    (row,) = await sql(
        rollup_db, "SELECT users FROM daily_app_users WHERE app_name = 'admin-console' AND day = $1", day
    )
    assert row["users"] < 1000


async def test_open_days_are_counted_live(
    rollup_client: httpx.AsyncClient, admin_headers: dict[str, str], rollup_db: str
) -> None:
    now = dt.datetime.now(dt.UTC)
    variables = {
        "filter": {"appName": "admin-console", "from": (now - dt.timedelta(hours=6)).isoformat()},
        "groupBy": [],
        "interval": "DAY",
    }
    before = sum(b["events"] for b in await ask(rollup_client, admin_headers, variables))
    await insert_rows(
        rollup_db, [event_row(now - dt.timedelta(minutes=1), "admin-console", person=f"x{i}") for i in range(3)]
    )
    after = await ask(rollup_client, admin_headers, variables)
    assert sum(b["events"] for b in after) == before + 3
    assert after[-1]["distinctUsers"] >= 3
    today = await sql(
        rollup_db, "SELECT count(*) AS n FROM daily_app_users WHERE day >= $1", now.date() - dt.timedelta(days=1)
    )
    assert today[0]["n"] == 0
