"""`eventStats(compareTo:)` through the real ASGI app: the comparison window's buckets, totals
and deltas equal recounts in Python over the raw seeded rows (testkit/stats.py), for the
previous period and the week before, with an empty previous period, HOUR buckets across UTC
midnight, and groups; BAD_USER_INPUT without an explicit window; FORBIDDEN for non-admins."""

from __future__ import annotations

import datetime as dt
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from app.graphql import read
from testkit.http import asgi_client, gql
from testkit.settings import make_settings
from testkit.stats import matches, raw_rows, recount, seeded_database

FIGURES = "events summedDailyUsers distinctSessions"
DELTA = "previous current absolute relative"
QUERY = f"""
query($filter: EventFilter, $groupBy: [StatsDimension!], $interval: StatsInterval, $compareTo: StatsComparison,
      $top: Int) {{
  eventStats(filter: $filter, groupBy: $groupBy, interval: $interval, compareTo: $compareTo) {{
    buckets {{ start group {{ dimension value }} events distinctUsers summedDailyUsers distinctSessions }}
    totals(top: $top) {{ group {{ dimension value }} {FIGURES} }}
    comparison {{
      mode from to
      buckets {{ start group {{ dimension value }} events distinctUsers summedDailyUsers distinctSessions }}
      totals(top: $top) {{ group {{ dimension value }} {FIGURES} }}
      deltas {{
        events {{ {DELTA} }} summedDailyUsers {{ {DELTA} }} distinctSessions {{ {DELTA} }}
        groups(top: $top) {{ group {{ dimension value }} events {{ {DELTA} }} summedDailyUsers {{ {DELTA} }}
                             distinctSessions {{ {DELTA} }} }}
      }}
    }}
  }}
}}"""
UTC = dt.UTC


@pytest.fixture(scope="module")
async def compare_db(pg_server: str) -> AsyncIterator[str]:
    async for url in seeded_database(pg_server):
        yield url


@pytest.fixture
async def compare_client(compare_db: str, tmp_path: Path) -> AsyncIterator[httpx.AsyncClient]:
    async with asgi_client(make_settings(compare_db, tmp_path)) as http:
        yield http


def iso(at: dt.datetime) -> str:
    return at.isoformat()


def change(current: int, previous: int) -> dict[str, Any]:
    return {
        "previous": previous,
        "current": current,
        "absolute": current - previous,
        "relative": None if previous == 0 else pytest.approx((current - previous) / previous),
    }


CASES = [
    # (filter without the window, from, to, interval, groupBy, compareTo, expected previous window)
    (
        {"appName": "admin-console"},
        dt.datetime(2026, 3, 12, tzinfo=UTC),
        dt.datetime(2026, 3, 15, tzinfo=UTC),
        "DAY",
        [],
        "PREVIOUS_PERIOD",
        (dt.datetime(2026, 3, 9, tzinfo=UTC), dt.datetime(2026, 3, 12, tzinfo=UTC)),
    ),
    (
        {"appName": "admin-console"},
        dt.datetime(2026, 3, 12, tzinfo=UTC),
        dt.datetime(2026, 3, 15, tzinfo=UTC),
        "DAY",
        [],
        "PREVIOUS_WEEK",  # partly before the first seeded event (2026-03-06 01:00 UTC)
        (dt.datetime(2026, 3, 5, tzinfo=UTC), dt.datetime(2026, 3, 8, tzinfo=UTC)),
    ),
    (
        {},
        dt.datetime(2026, 3, 6, tzinfo=UTC),
        dt.datetime(2026, 3, 7, tzinfo=UTC),
        "HOUR",
        ["EVENT_TYPE"],
        "PREVIOUS_PERIOD",  # before any event: an empty previous period
        (dt.datetime(2026, 3, 5, tzinfo=UTC), dt.datetime(2026, 3, 6, tzinfo=UTC)),
    ),
    (
        {"eventTypes": ["view", "click"]},
        dt.datetime(2026, 3, 10, 5, tzinfo=UTC),
        dt.datetime(2026, 3, 10, 17, tzinfo=UTC),
        "HOUR",
        ["APP_NAME", "ROUTE"],
        "PREVIOUS_PERIOD",  # the previous 12 hours span UTC midnight
        (dt.datetime(2026, 3, 9, 17, tzinfo=UTC), dt.datetime(2026, 3, 10, 5, tzinfo=UTC)),
    ),
    (
        {"deviceType": "desktop"},
        dt.datetime(2026, 3, 9, tzinfo=UTC),
        dt.datetime(2026, 3, 16, tzinfo=UTC),
        "WEEK",
        ["APP_NAME"],
        "PREVIOUS_WEEK",
        (dt.datetime(2026, 3, 2, tzinfo=UTC), dt.datetime(2026, 3, 9, tzinfo=UTC)),
    ),
    (
        {"appName": "billing-admin"},
        dt.datetime(2026, 3, 13, 4, 30, tzinfo=dt.timezone(dt.timedelta(hours=-5))),  # an offset: the same instants
        dt.datetime(2026, 3, 15, 4, 30, tzinfo=dt.timezone(dt.timedelta(hours=-5))),
        "DAY",
        ["DEVICE_TYPE"],
        "PREVIOUS_WEEK",
        (dt.datetime(2026, 3, 6, 9, 30, tzinfo=UTC), dt.datetime(2026, 3, 8, 9, 30, tzinfo=UTC)),
    ),
]


@pytest.mark.parametrize(("base", "start", "end", "interval", "group_by", "mode", "previous"), CASES)
async def test_comparison_equals_a_python_recount(
    compare_client: httpx.AsyncClient,
    admin_headers: dict[str, str],
    compare_db: str,
    base: dict[str, Any],
    start: dt.datetime,
    end: dt.datetime,
    interval: str,
    group_by: list[str],
    mode: str,
    previous: tuple[dt.datetime, dt.datetime],
) -> None:
    rows = await raw_rows(compare_db)
    window = {**base, "from": iso(start), "to": iso(end)}
    earlier = {**base, "from": iso(previous[0]), "to": iso(previous[1])}
    now_rows = [row for row in rows if matches(row, window)]
    before_rows = [row for row in rows if matches(row, earlier)]
    now_buckets, now_totals = recount(now_rows, group_by, interval)
    before_buckets, before_totals = recount(before_rows, group_by, interval)
    top = 3
    variables = {"filter": window, "groupBy": group_by, "interval": interval, "compareTo": mode, "top": top}
    body = await gql(compare_client, QUERY, variables, admin_headers)
    assert "errors" not in body, body
    stats = body["data"]["eventStats"]
    assert stats["buckets"] == now_buckets
    assert stats["totals"] == now_totals[:top]
    comparison = stats["comparison"]
    assert comparison["mode"] == mode
    assert dt.datetime.fromisoformat(comparison["from"]) == previous[0]
    assert dt.datetime.fromisoformat(comparison["to"]) == previous[1]
    assert comparison["buckets"] == before_buckets
    assert comparison["totals"] == before_totals[:top]

    overall = recount(now_rows, [], interval)[1], recount(before_rows, [], interval)[1]
    current, prior = (
        totals[0] if totals else {"events": 0, "summedDailyUsers": 0, "distinctSessions": 0} for totals in overall
    )
    deltas = comparison["deltas"]
    for name in ("events", "summedDailyUsers", "distinctSessions"):
        assert deltas[name] == change(current[name], prior[name]), name
    by_group = {tuple(v["value"] for v in t["group"]): t for t in before_totals}
    expected_groups = []
    for total in now_totals[:top]:
        other = by_group.get(tuple(v["value"] for v in total["group"]))
        expected_groups.append(
            {"group": total["group"]}
            | {
                name: change(total[name], other[name] if other else 0)
                for name in ("events", "summedDailyUsers", "distinctSessions")
            }
        )
    assert deltas["groups"] == expected_groups
    if not before_rows:  # the empty previous period: no buckets, relative changes null
        assert comparison["buckets"] == [] and deltas["events"]["relative"] is None
        assert now_rows


async def test_buckets_align_by_offset(
    compare_client: httpx.AsyncClient, admin_headers: dict[str, str], compare_db: str
) -> None:
    """Day buckets of a 3-day window and of its previous period: bucket i of each is the i-th day
    from its own `from` (the schema says so), and both series have a bucket for every day with events."""
    start, end = dt.datetime(2026, 3, 12, tzinfo=UTC), dt.datetime(2026, 3, 15, tzinfo=UTC)
    variables = {"filter": {"from": iso(start), "to": iso(end)}, "compareTo": "PREVIOUS_PERIOD"}
    body = await gql(compare_client, QUERY, variables, admin_headers)
    stats = body["data"]["eventStats"]
    earlier = dt.datetime.fromisoformat(stats["comparison"]["from"])
    offsets_now = [(dt.datetime.fromisoformat(b["start"]) - start) // dt.timedelta(days=1) for b in stats["buckets"]]
    offsets_before = [
        (dt.datetime.fromisoformat(b["start"]) - earlier) // dt.timedelta(days=1)
        for b in stats["comparison"]["buckets"]
    ]
    assert offsets_now == offsets_before == [0, 1, 2]
    schema = await gql(compare_client, '{ __type(name: "StatsComparisonResult") { description } }', {}, admin_headers)
    assert "aligned by OFFSET" in schema["data"]["__type"]["description"]


async def test_without_compare_to_there_is_no_comparison(
    compare_client: httpx.AsyncClient, admin_headers: dict[str, str]
) -> None:
    body = await gql(compare_client, "{ eventStats { comparison { mode } } }", {}, admin_headers)
    assert body == {"data": {"eventStats": {"comparison": None}}}


@pytest.mark.parametrize(
    ("event_filter", "says"),
    [
        (None, "compareTo needs an explicit window: set both filter.from and filter.to"),
        ({"from": "2026-03-10T00:00:00Z"}, "set both filter.from and filter.to"),
        ({"to": "2026-03-10T00:00:00Z"}, "set both filter.from and filter.to"),
        ({"from": "0001-01-02T00:00:00Z", "to": "0001-02-01T00:00:00Z"}, "move filter.from later"),
    ],
)
async def test_bad_input_says_what_to_change(
    compare_client: httpx.AsyncClient, admin_headers: dict[str, str], event_filter: dict[str, str] | None, says: str
) -> None:
    body = await gql(compare_client, QUERY, {"filter": event_filter, "compareTo": "PREVIOUS_PERIOD"}, admin_headers)
    error = body["errors"][0]
    assert error["extensions"]["code"] == "BAD_USER_INPUT", body
    assert says in error["message"]


async def test_bucket_limit_holds_for_the_comparison(
    compare_client: httpx.AsyncClient, admin_headers: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The comparison window's buckets are bounded as the current ones (the limit lowered to 50
    here: the seeded rows make fewer than the real 10,000): over it, BAD_USER_INPUT."""
    monkeypatch.setattr(read, "MAX_BUCKETS", 50)
    variables = {
        "filter": {"appName": "admin-console", "from": "2026-03-13T00:00:00Z", "to": "2026-03-16T00:00:00Z"},
        "interval": "HOUR",
        "groupBy": ["EVENT_TYPE"],
        "compareTo": "PREVIOUS_PERIOD",
    }
    body = await gql(compare_client, QUERY, variables, admin_headers)
    assert body["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT", body
    assert "buckets" in body["errors"][0]["message"]


async def test_non_admins_are_forbidden(compare_client: httpx.AsyncClient, user_headers: dict[str, str]) -> None:
    variables = {"filter": {"from": "2026-03-10T00:00:00Z", "to": "2026-03-12T00:00:00Z"}, "compareTo": "PREVIOUS_WEEK"}
    body = await gql(compare_client, QUERY, variables, user_headers)
    assert body["errors"][0]["extensions"]["code"] == "FORBIDDEN", body
    assert body.get("data") is None
    body = await gql(compare_client, QUERY, variables, {})
    assert body["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED", body
