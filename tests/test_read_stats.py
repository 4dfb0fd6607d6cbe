"""`eventStats` numbers against a direct recount of the same rows (read back with SQL and
counted in Python, independently of app.read.queries), for several groupings and intervals."""

from __future__ import annotations

import datetime as dt
import random
import uuid
from collections import defaultdict
from collections.abc import AsyncIterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from app.read import queries
from app.storage.database import asyncpg_dsn, sqlalchemy_url
from app.storage.migrations import migrate
from tests.conftest import asgi_client, create_database, drop_database, gql, make_settings, token
from tests.seed import event_row, insert_rows, user_hash

COLUMNS = {
    "APP_NAME": "app_name",
    "EVENT_TYPE": "event_type",
    "ROUTE": "route",
    "ENTITY_TYPE": "entity_type",
    "ENTITY_ID": "entity_id",
    "DEVICE_TYPE": "device_type",
    "BROWSER_FAMILY": "browser_family",
    "OS_FAMILY": "os_family",
}
STATS = """
query($filter: EventFilter, $groupBy: [StatsDimension!], $interval: StatsInterval, $top: Int) {
  eventStats(filter: $filter, groupBy: $groupBy, interval: $interval) {
    interval groupBy
    buckets { start group { dimension value } events distinctUsers summedDailyUsers distinctSessions }
    totals(top: $top) { group { dimension value } events summedDailyUsers distinctSessions }
  }
}"""


async def seeded_database(pg_server: str) -> AsyncIterator[str]:
    """A migrated database of its own holding exactly `seed_rows()`, dropped afterwards."""
    url = await create_database(pg_server)
    await migrate(url)
    await insert_rows(url, seed_rows())
    try:
        yield url
    finally:
        await drop_database(pg_server, url)


@pytest.fixture(scope="module")
async def stats_db(pg_server: str) -> AsyncIterator[str]:
    """A database of this module's own: the recount must see exactly the seeded rows."""
    async for url in seeded_database(pg_server):
        yield url


@pytest.fixture
async def stats_client(stats_db: str, tmp_path: Path) -> AsyncIterator[httpx.AsyncClient]:
    async with asgi_client(make_settings(stats_db, tmp_path)) as http:
        yield http


def seed_rows() -> list[tuple]:
    """~900 events over 10 days across UTC midnights, two apps, NULL routes and sessions."""
    rng = random.Random(42)
    start = dt.datetime(2026, 3, 5, 20, 0, tzinfo=dt.timezone(dt.timedelta(hours=-5)))  # a Thursday, not UTC
    rows = []
    for _ in range(900):
        at = start + dt.timedelta(minutes=rng.randrange(10 * 24 * 60))
        person = f"p{min(int(rng.paretovariate(1.2)), 40)}"
        # one event in 10 carries the previous day's hash (stamped just after midnight with
        # the old salt): then a week's distinct hashes differ from its summed daily users
        hash_day = at.astimezone(dt.UTC).date() - dt.timedelta(days=1 if rng.random() < 0.1 else 0)
        rows.append(
            event_row(
                at,
                rng.choice(["admin-console", "admin-console", "billing-admin"]),
                rng.choice(["click", "view", "view", "export"]),
                person=person,
                route=rng.choice([None, "/orders", "/orders/:id", "/customers"]),
                entity_type=rng.choice([None, "order"]),
                session_id=rng.choice([None, f"s-{person}-{rng.randrange(3)}"]),
                device_type=rng.choice(["desktop", "mobile", "tablet"]),
                browser_family=rng.choice(["Firefox", "Chrome"]),
                user_hash=user_hash(person, hash_day),
            )
        )
    return rows


async def raw_rows(url: str) -> list[asyncpg.Record]:
    conn = await asyncpg.connect(asyncpg_dsn(url))
    try:
        return await conn.fetch("SELECT * FROM events")
    finally:
        await conn.close()


def recount(rows: list[Any], group_by: list[str], interval: str) -> tuple[list[dict], list[dict]]:
    """Expected buckets and totals, counted in Python from the raw rows."""
    per_bucket: dict[tuple, list[Any]] = defaultdict(list)
    for row in rows:
        key = (queries.BucketUnit[interval].start(row["created_at"]), *(row[COLUMNS[d]] for d in group_by))
        per_bucket[key].append(row)

    def summed_daily(members: list[Any]) -> int:
        days: dict[dt.date, set[str]] = defaultdict(set)
        for row in members:
            days[row["created_at"].astimezone(dt.UTC).date()].add(row["user_hash"])
        return sum(len(users) for users in days.values())

    def sessions(members: list[Any]) -> int:
        return len({row["session_id"] for row in members if row["session_id"] is not None})

    def group(values: tuple) -> list[dict]:
        return [{"dimension": d, "value": v} for d, v in zip(group_by, values, strict=True)]

    buckets = [
        {
            "start": key[0].isoformat(),
            "group": group(key[1:]),
            "events": len(members),
            "distinctUsers": None if interval == "WEEK" else len({row["user_hash"] for row in members}),
            "summedDailyUsers": summed_daily(members),
            "distinctSessions": sessions(members),
        }
        for key, members in per_bucket.items()
    ]
    buckets.sort(key=lambda b: (b["start"], *[(v["value"] is None, v["value"] or "") for v in b["group"]]))
    per_group: dict[tuple, list[Any]] = defaultdict(list)
    for row in rows:
        per_group[tuple(row[COLUMNS[d]] for d in group_by)].append(row)
    totals = [
        {
            "group": group(key),
            "events": len(members),
            "summedDailyUsers": summed_daily(members),
            "distinctSessions": sessions(members),
        }
        for key, members in per_group.items()
    ]
    totals.sort(key=lambda t: (-t["events"], *[(v["value"] is None, v["value"] or "") for v in t["group"]]))
    return buckets, totals


@pytest.mark.parametrize("with_sessions", [True, False], ids=["all-fields", "without-sessions"])
@pytest.mark.parametrize(
    ("group_by", "interval", "event_filter"),
    [
        ([], "DAY", {"appName": "admin-console"}),
        (["APP_NAME"], "DAY", {}),
        (["EVENT_TYPE", "DEVICE_TYPE"], "DAY", {"from": "2026-03-07T00:00:00Z", "to": "2026-03-12T00:00:00Z"}),
        (["ROUTE"], "WEEK", {}),
        ([], "WEEK", {"eventTypes": ["view", "export"]}),
        (["BROWSER_FAMILY", "ENTITY_TYPE"], "HOUR", {"appName": "billing-admin", "deviceType": "mobile"}),
    ],
)
async def test_stats_equal_a_direct_recount(
    stats_client: httpx.AsyncClient,
    admin_headers: dict[str, str],
    stats_db: str,
    group_by: list[str],
    interval: str,
    event_filter: dict[str, Any],
    with_sessions: bool,
) -> None:
    """Without distinctSessions selected the users take another SQL path: check both."""
    rows = [row for row in await raw_rows(stats_db) if matches(row, event_filter)]
    assert len(rows) > 50
    variables = {"filter": event_filter, "groupBy": group_by, "interval": interval, "top": 1000}
    query = STATS if with_sessions else STATS.replace("distinctSessions", "")
    body = await gql(stats_client, query, variables, admin_headers)
    assert "errors" not in body, body
    stats = body["data"]["eventStats"]
    expected_buckets, expected_totals = recount(rows, group_by, interval)
    if not with_sessions:
        for item in expected_buckets + expected_totals:
            del item["distinctSessions"]
    assert stats["interval"] == interval and stats["groupBy"] == group_by
    actual_buckets = [{**b, "start": dt.datetime.fromisoformat(b["start"]).isoformat()} for b in stats["buckets"]]
    assert actual_buckets == expected_buckets
    assert stats["totals"] == expected_totals


def matches(row: Any, event_filter: dict[str, Any]) -> bool:
    at = row["created_at"]
    return (
        event_filter.get("appName", row["app_name"]) == row["app_name"]
        and event_filter.get("deviceType", row["device_type"]) == row["device_type"]
        and row["event_type"] in event_filter.get("eventTypes", [row["event_type"]])
        and at >= dt.datetime.fromisoformat(event_filter.get("from", "2000-01-01T00:00:00Z"))
        and at < dt.datetime.fromisoformat(event_filter.get("to", "2100-01-01T00:00:00Z"))
    )


async def test_totals_top_and_partial_selection(
    stats_client: httpx.AsyncClient, admin_headers: dict[str, str], stats_db: str
) -> None:
    query = """query($f: EventFilter) { eventStats(filter: $f, groupBy: [EVENT_TYPE]) {
        buckets { events ...on StatsBucket { distinctUsers } } totals(top: 2) { group { value } events } } }"""
    body = await gql(stats_client, query, {"f": {"appName": "billing-admin"}}, admin_headers)
    rows = [row for row in await raw_rows(stats_db) if row["app_name"] == "billing-admin"]
    _, expected_totals = recount(rows, ["EVENT_TYPE"], "DAY")
    totals = body["data"]["eventStats"]["totals"]
    assert [(t["group"][0]["value"], t["events"]) for t in totals] == [
        (t["group"][0]["value"], t["events"]) for t in expected_totals[:2]
    ]
    buckets = body["data"]["eventStats"]["buckets"]
    assert sum(b["events"] for b in buckets) == len(rows)
    assert all(b["distinctUsers"] >= 1 for b in buckets)  # selected through a fragment: computed


async def test_stats_are_admin_only_and_validate_input(
    client: httpx.AsyncClient, admin_headers: dict[str, str]
) -> None:
    member = {"authorization": f"Bearer {token(roles=['member'])}"}
    body = await gql(client, "{ eventStats { buckets { events } } }", None, member)
    assert body["errors"][0]["extensions"]["code"] == "FORBIDDEN"
    body = await gql(client, "{ eventStats { buckets { events } } }", None, {})
    assert body["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"
    body = await gql(client, "{ eventStats(groupBy: [ROUTE, ROUTE]) { buckets { events } } }", None, admin_headers)
    assert body["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"
    body = await gql(client, "{ eventStats { totals(top: 0) { events } } }", None, admin_headers)
    assert body["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"


@pytest.mark.parametrize("interval", ["HOUR", "DAY", "WEEK"])
async def test_split_into_concurrent_runs_changes_nothing(
    stats_db: str, tmp_path: Path, admin_headers: dict[str, str], interval: str
) -> None:
    variables = {"filter": {"from": "2026-03-06T05:30:00Z"}, "groupBy": ["DEVICE_TYPE"], "interval": interval, "top": 5}
    answers = []
    for parallelism in (1, 3, 7):
        async with asgi_client(make_settings(stats_db, tmp_path, stats_parallelism=parallelism)) as client:
            body = await gql(client, STATS, variables, admin_headers)
        assert "errors" not in body, body
        answers.append(body["data"])
    assert answers[0] == answers[1] == answers[2]
    assert answers[0]["eventStats"]["buckets"][0]["start"].startswith("2026-03-0")


async def test_filtered_app_and_type_window_queries_use_indexes(stats_db: str) -> None:
    """With sequential scans priced out, the planner must still find an index path: a
    filtered app+type window never needs a full scan of events."""
    window = queries.EventFilterSpec(
        app_name="admin-console",
        event_types=("click",),
        start=dt.datetime(2026, 3, 6, tzinfo=dt.UTC),
        end=dt.datetime(2026, 3, 12, tzinfo=dt.UTC),
    )
    cursor = queries.Cursor(dt.datetime(2026, 3, 9, tzinfo=dt.UTC), uuid.uuid4())
    statements = [
        queries.events_page_query(window, 100, None),
        queries.events_page_query(window, 100, cursor),
        queries.events_page_query(queries.EventFilterSpec(app_name="admin-console"), 100, cursor),
        queries.events_page_query(queries.EventFilterSpec(), 100, cursor),
        queries.stats_buckets_query(queries.StatsRequest(window), 100),
        queries.stats_buckets_query(
            queries.StatsRequest(window, (queries.Dimension.ROUTE,), queries.BucketUnit.HOUR, users=True), 100
        ),
        queries.stats_buckets_query(
            queries.StatsRequest(replace(window, event_types=None, start=None), users=True), 100
        ),
    ]
    engine = create_async_engine(sqlalchemy_url(stats_db))
    try:
        async with engine.connect() as conn:
            await conn.execute(text("SET enable_seqscan = off"))
            for sql, params in statements:
                plan = "\n".join(row[0] for row in await conn.execute(text("EXPLAIN " + sql), params))
                assert "Seq Scan" not in plan, plan
                assert "Index" in plan, plan
    finally:
        await engine.dispose()
