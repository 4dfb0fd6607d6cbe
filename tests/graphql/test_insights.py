"""`adoption` and `funnel` through the real ASGI app: admin only, answers equal to recounts
over the raw seeded rows (plain SQL for adoption, a reference in plain Python for the
funnel, both written here), and bad input as BAD_USER_INPUT saying what to change."""

from __future__ import annotations

import datetime as dt
import statistics
from collections import defaultdict
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from testkit.database import fetch, migrated_database
from testkit.http import asgi_client, gql
from testkit.insights import APP, WINDOW_DAYS, base_day, insight_rows
from testkit.seed import insert_rows
from testkit.settings import make_settings
from testkit.stats import raw_rows

BASE = base_day()
END = BASE + dt.timedelta(days=WINDOW_DAYS)
WINDOW = {"appName": APP, "from": BASE.isoformat(), "to": END.isoformat()}

ADOPTION = """
query($population: EventFilter!, $target: EventFilter!) {
  adoption(population: $population, target: $target) {
    days { day activeUsers targetUsers userRate activeSessions targetSessions sessionRate }
    totals { summedDailyActiveUsers summedDailyTargetUsers userRate
             summedDailyActiveSessions summedDailyTargetSessions sessionRate }
  }
}"""

STEP = """entered converted dropped conversionFromStart conversionFromPrevious
          medianSecondsFromPrevious medianSecondsFromStart step"""
FUNNEL = f"""
query($filter: EventFilter!, $steps: [EventFilter!]!, $countBy: FunnelUnit, $within: Int,
      $breakdown: StatsDimension, $top: Int) {{
  funnel(filter: $filter, steps: $steps, countBy: $countBy, within: $within, breakdown: $breakdown,
         breakdownTop: $top) {{
    countBy breakdown
    steps {{ {STEP} }}
    groups {{ value steps {{ {STEP} }} }}
  }}
}}"""
STEPS = [{"eventTypes": ["view"]}, {"eventTypes": ["search"]}, {"eventTypes": ["export"]}]


@pytest.fixture(scope="module")
async def insights_db(pg_server: str) -> AsyncIterator[str]:
    async with migrated_database(pg_server) as url:
        await insert_rows(url, insight_rows(BASE))
        yield url


@pytest.fixture
async def insights_client(insights_db: str, tmp_path: Path) -> AsyncIterator[httpx.AsyncClient]:
    async with asgi_client(make_settings(insights_db, tmp_path)) as http:
        yield http


def rate(part: int, whole: int) -> float | None:
    return part / whole if whole else None


async def test_adoption_equals_a_sql_recount(
    insights_client: httpx.AsyncClient, admin_headers: dict[str, str], insights_db: str
) -> None:
    start, end = BASE + dt.timedelta(hours=5), END  # the first day cut, the rest whole
    counted = await fetch(
        insights_db,
        "SELECT (created_at AT TIME ZONE 'UTC')::date AS day, count(DISTINCT user_hash) AS au, "
        "count(DISTINCT user_hash) FILTER (WHERE event_type IN ('export', 'search')) AS tu, "
        "count(DISTINCT session_id) AS asess, "
        "count(DISTINCT session_id) FILTER (WHERE event_type IN ('export', 'search')) AS ts "
        "FROM events WHERE app_name = $1 AND created_at >= $2 AND created_at < $3 GROUP BY 1",
        APP,
        start,
        end,
    )
    by_day = {row["day"]: row for row in counted}
    variables = {
        "population": {"appName": APP, "from": start.isoformat(), "to": end.isoformat()},
        "target": {"eventTypes": ["export", "search"]},
    }
    for _ in range(2):  # computed, then the whole closed days served as stored
        body = await gql(insights_client, ADOPTION, variables, admin_headers)
        assert "errors" not in body, body
        answer = body["data"]["adoption"]
        assert [day["day"] for day in answer["days"]] == [
            (BASE + dt.timedelta(days=i)).date().isoformat() for i in range(WINDOW_DAYS)
        ]
        for day in answer["days"]:
            row = by_day[dt.date.fromisoformat(day["day"])]
            assert day == {
                "day": day["day"],
                "activeUsers": row["au"],
                "targetUsers": row["tu"],
                "userRate": pytest.approx(rate(row["tu"], row["au"])),
                "activeSessions": row["asess"],
                "targetSessions": row["ts"],
                "sessionRate": pytest.approx(rate(row["ts"], row["asess"])),
            }
        sums = {key: sum(row[key] for row in counted) for key in ("au", "tu", "asess", "ts")}
        assert answer["totals"] == {
            "summedDailyActiveUsers": sums["au"],
            "summedDailyTargetUsers": sums["tu"],
            "userRate": pytest.approx(sums["tu"] / sums["au"]),
            "summedDailyActiveSessions": sums["asess"],
            "summedDailyTargetSessions": sums["ts"],
            "sessionRate": pytest.approx(sums["ts"] / sums["asess"]),
        }


def reference(
    rows: list[Any], steps: list[list[str]], unit: str, within: float | None, column: str | None
) -> dict[Any, list[list[list[dt.datetime]]]]:
    """{"all" or the step-1 event's value: [the chain's times of each unit]} by the definitions
    in the schema description of `funnel`."""
    units: dict[Any, list[Any]] = defaultdict(list)
    for row in rows:
        if row["app_name"] != APP or not BASE <= row["created_at"] < END:
            continue
        if unit == "SESSION" and row["session_id"] is None:
            continue
        key = (
            row["session_id"] if unit == "SESSION" else (row["user_hash"], row["created_at"].astimezone(dt.UTC).date())
        )
        units[key].append(row)
    chains: dict[Any, list[list[dt.datetime]]] = defaultdict(list)
    for events in units.values():
        events.sort(key=lambda r: (r["created_at"], r["id"]))
        chain: list[Any] = []
        i = 0
        for types in steps:
            while i < len(events) and not (
                events[i]["event_type"] in types
                and (
                    not chain
                    or within is None
                    or (events[i]["created_at"] - chain[0]["created_at"]).total_seconds() <= within
                )
            ):
                i += 1
            if i == len(events):
                break
            chain.append(events[i])
            i += 1
        if chain:
            chains["all"].append([event["created_at"] for event in chain])
            if column is not None:
                chains[chain[0][column]].append([event["created_at"] for event in chain])
    return chains


def expected_steps(chains: list[list[dt.datetime]], count: int) -> list[dict[str, Any]]:
    entered = [sum(1 for times in chains if len(times) > k) for k in range(count)]
    out = []
    for k in range(count):
        reached = [times for times in chains if len(times) > k]
        previous = [(t[k] - t[k - 1]).total_seconds() for t in reached] if k else []
        start = [(t[k] - t[0]).total_seconds() for t in reached] if k else []
        following = entered[k + 1] if k + 1 < count else None
        out.append(
            {
                "step": k + 1,
                "entered": entered[k],
                "converted": following,
                "dropped": None if following is None else entered[k] - following,
                "conversionFromStart": pytest.approx(entered[k] / entered[0]),
                "conversionFromPrevious": None if k == 0 else pytest.approx(rate(entered[k], entered[k - 1])),
                "medianSecondsFromPrevious": pytest.approx(statistics.median(previous)) if previous else None,
                "medianSecondsFromStart": pytest.approx(statistics.median(start)) if start else None,
            }
        )
    return out


@pytest.mark.parametrize(
    ("unit", "within", "breakdown"),
    [("SESSION", None, None), ("SESSION", 3600, "DEVICE_TYPE"), ("USER_DAY", None, "BROWSER_FAMILY")],
)
async def test_funnel_equals_a_reference_recount(
    insights_client: httpx.AsyncClient,
    admin_headers: dict[str, str],
    insights_db: str,
    unit: str,
    within: int | None,
    breakdown: str | None,
) -> None:
    column = {"DEVICE_TYPE": "device_type", "BROWSER_FAMILY": "browser_family"}.get(breakdown or "")
    chains = reference(await raw_rows(insights_db), [s["eventTypes"] for s in STEPS], unit, within, column)
    variables = {"filter": WINDOW, "steps": STEPS, "countBy": unit, "within": within, "breakdown": breakdown}
    body = await gql(insights_client, FUNNEL, variables, admin_headers)
    assert "errors" not in body, body
    funnel = body["data"]["funnel"]
    assert funnel["countBy"] == unit and funnel["breakdown"] == breakdown
    assert funnel["steps"] == expected_steps(chains["all"], len(STEPS))
    assert funnel["steps"][-1]["entered"] > 0
    if breakdown is None:
        assert funnel["groups"] == []
    else:
        values = sorted((v for v in chains if v != "all"), key=lambda v: (-len(chains[v]), v))
        assert [group["value"] for group in funnel["groups"]] == values
        for group in funnel["groups"]:
            assert group["steps"] == expected_steps(chains[group["value"]], len(STEPS))


async def test_non_admins_are_forbidden(insights_client: httpx.AsyncClient, user_headers: dict[str, str]) -> None:
    for query, variables in (
        (ADOPTION, {"population": WINDOW, "target": {"eventTypes": ["export"]}}),
        (FUNNEL, {"filter": WINDOW, "steps": STEPS}),
    ):
        body = await gql(insights_client, query, variables, user_headers)
        assert body["errors"][0]["extensions"]["code"] == "FORBIDDEN", body
        assert body.get("data") is None
        body = await gql(insights_client, query, variables, {})
        assert body["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED", body


LONG = {"appName": APP, "from": (END - dt.timedelta(days=400)).isoformat(), "to": END.isoformat()}


@pytest.mark.parametrize(
    ("query", "variables", "fragment"),
    [
        (FUNNEL, {"filter": WINDOW, "steps": STEPS * 4}, "2 to 10 steps"),
        (FUNNEL, {"filter": WINDOW, "steps": STEPS[:1]}, "2 to 10 steps"),
        (FUNNEL, {"filter": LONG, "steps": STEPS}, "at most 366"),
        (FUNNEL, {"filter": {"appName": APP}, "steps": STEPS}, "filter.from and filter.to are required"),
        (FUNNEL, {"filter": WINDOW, "steps": STEPS, "breakdown": "SESSION_ID"}, "SESSION_ID"),
        (FUNNEL, {"filter": WINDOW, "steps": STEPS, "breakdown": "ROUTE", "top": 0}, "breakdownTop"),
        (FUNNEL, {"filter": WINDOW, "steps": STEPS, "within": 0}, "within must be a positive"),
        (FUNNEL, {"filter": WINDOW, "steps": [{"eventTypes": ["view"], "appName": APP}, *STEPS]}, "must not set"),
        (FUNNEL, {"filter": WINDOW, "steps": [{"route": "/orders"}, *STEPS]}, "steps[0].eventTypes"),
        (ADOPTION, {"population": LONG, "target": {"eventTypes": ["export"]}}, "at most 366"),
        (ADOPTION, {"population": {**WINDOW, "deviceType": "mobile"}, "target": {"eventTypes": ["x"]}}, "remove"),
        (ADOPTION, {"population": WINDOW, "target": {"route": "/orders"}}, "target.eventTypes"),
        (ADOPTION, {"population": WINDOW, "target": {"eventTypes": ["x"], "from": WINDOW["from"]}}, "must not set"),
    ],
)
async def test_bad_input_says_what_to_change(
    insights_client: httpx.AsyncClient,
    admin_headers: dict[str, str],
    query: str,
    variables: dict[str, Any],
    fragment: str,
) -> None:
    body = await gql(insights_client, query, variables, admin_headers)
    (error,) = body["errors"]
    assert error["extensions"]["code"] == "BAD_USER_INPUT" and fragment in error["message"], error


@pytest.mark.parametrize(
    "window",
    [
        {"from": "9999-12-30T00:00:00Z", "to": "9999-12-31T23:59:59.999999Z"},
        {"from": "0001-01-01T00:00:00Z", "to": "0001-01-03T00:00:00Z"},
    ],
)
async def test_windows_at_the_ends_of_time_are_answered(
    insights_client: httpx.AsyncClient, admin_headers: dict[str, str], window: dict[str, str]
) -> None:
    body = await gql(
        insights_client, ADOPTION, {"population": window, "target": {"eventTypes": ["export"]}}, admin_headers
    )
    assert "errors" not in body, body
    assert {day["activeUsers"] for day in body["data"]["adoption"]["days"]} == {0}
    body = await gql(insights_client, FUNNEL, {"filter": window, "steps": STEPS, "within": 2**31 - 1}, admin_headers)
    assert "errors" not in body, body
    assert [step["entered"] for step in body["data"]["funnel"]["steps"]] == [0, 0, 0]
