"""`eventStats` numbers against a direct recount of the same rows (read back with SQL and
counted in Python, independently of app.read.queries), for several groupings and intervals."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import AsyncIterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from app.read import queries
from app.storage.database import sqlalchemy_url
from testkit.http import asgi_client, gql
from testkit.settings import make_settings
from testkit.stats import matches, raw_rows, recount, seeded_database
from testkit.tokens import token

STATS = """
query($filter: EventFilter, $groupBy: [StatsDimension!], $interval: StatsInterval, $top: Int) {
  eventStats(filter: $filter, groupBy: $groupBy, interval: $interval) {
    interval groupBy
    buckets { start group { dimension value } events distinctUsers summedDailyUsers distinctSessions }
    totals(top: $top) { group { dimension value } events summedDailyUsers distinctSessions }
  }
}"""


@pytest.fixture(scope="module")
async def stats_db(pg_server: str) -> AsyncIterator[str]:
    """A database of this module's own: the recount must see exactly the seeded rows."""
    async for url in seeded_database(pg_server):
        yield url


@pytest.fixture
async def stats_client(stats_db: str, tmp_path: Path) -> AsyncIterator[httpx.AsyncClient]:
    async with asgi_client(make_settings(stats_db, tmp_path)) as http:
        yield http


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
