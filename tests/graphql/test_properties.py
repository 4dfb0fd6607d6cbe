"""Event properties through the API: property filters on `events` and `eventStats`,
`propertyBreakdown`, `propertyAggregates` and `propertyCatalogue`, every number against a
recount in Python over the raw seeded rows (read back with SQL), the operator's allowlist,
PII-looking keys, FORBIDDEN for non-admins and BAD_USER_INPUT for bad input."""

from __future__ import annotations

import datetime as dt
import json
from collections import defaultdict
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from app.read.queries import BucketUnit
from testkit.database import fetch
from testkit.http import asgi_client, gql
from testkit.properties import (
    MISSING,
    is_number,
    label,
    percentile_cont,
    property_rows,
    seeded_property_database,
    value_at,
)
from testkit.settings import make_settings
from testkit.tokens import token

NOW = dt.datetime.now(dt.UTC)


@pytest.fixture(scope="module")
async def props_db(pg_server: str) -> AsyncIterator[str]:
    """A database of this module's own: the recounts must see exactly the seeded rows."""
    async for url in seeded_property_database(pg_server, property_rows(NOW)):
        yield url


@pytest.fixture(scope="module")
async def raw(props_db: str) -> list[dict[str, Any]]:
    """The seeded rows as stored, descriptions read back as text and decoded here."""
    rows = await fetch(
        props_db, "SELECT id, created_at, app_name, event_type, user_hash, description::text AS d FROM events"
    )
    return [{**dict(row), "description": None if row["d"] is None else json.loads(row["d"])} for row in rows]


@pytest.fixture
async def api(props_db: str, tmp_path: Path) -> AsyncIterator[httpx.AsyncClient]:
    async with asgi_client(make_settings(props_db, tmp_path)) as http:
        yield http


def ok(body: dict[str, Any]) -> dict[str, Any]:
    assert "errors" not in body, body
    return body["data"]


def holds(row: dict[str, Any], condition: dict[str, Any]) -> bool:
    """A property filter, as the API documents it, in Python."""
    value = value_at(row["description"], condition["path"].split("."))
    op = condition.get("op", "EQ")
    if op == "EXISTS":
        return value is not MISSING
    if op == "NOT_EXISTS":
        return value is MISSING
    if op in ("EQ", "IN"):
        wanted = [condition["value"]] if op == "EQ" else condition["values"]
        # JSON equality: a bool is not a number, "1" is not 1, 1 equals 1.0
        return any(
            value is not MISSING
            and type(value) is not list
            and type(value) is not dict
            and ((is_number(value) and is_number(w) and value == w) or (type(value) is type(w) and value == w))
            for w in wanted
        )
    if not is_number(value):
        return False
    bound = condition["value"]
    return {"GT": value > bound, "GTE": value >= bound, "LT": value < bound, "LTE": value <= bound}[op]


PAGE = (
    """query($f: EventFilter) { events(filter: $f, first: 1000) { edges { node { id } } pageInfo { hasNextPage } } }"""
)
# buckets asking users with an appName filter: the shape daily_app_users answers without property filters
TOTALS = """query($f: EventFilter) {
  eventStats(filter: $f) { totals { events summedDailyUsers } buckets { events summedDailyUsers } }
}"""


@pytest.mark.parametrize(
    "conditions",
    [
        [{"path": "lang", "op": "EQ", "value": "de"}],
        [{"path": "lang", "op": "EQ", "value": 1}],  # the number: not the string "1"
        [{"path": "lang", "op": "EQ", "value": "1"}],  # the string: not the number 1
        [{"path": "lang", "op": "EQ", "value": "für"}],
        [{"path": "lang", "op": "IN", "values": ["fr", "es", 1]}],
        [{"path": "lang", "op": "EXISTS"}],  # a JSON null counts as present
        [{"path": "lang", "op": "NOT_EXISTS"}],  # NULL descriptions too
        [{"path": "durationMs", "op": "GT", "value": 2500}],  # the string "250" never matches
        [{"path": "durationMs", "op": "LTE", "value": 100.5}],
        [{"path": "source.kind", "op": "EQ", "value": "menu"}, {"path": "durationMs", "op": "GTE", "value": 1000}],
        [{"path": "source.depth.level", "op": "LT", "value": 1}],
        [{"path": "contact.phone", "op": "EXISTS"}],  # a PII-looking key: EXISTS is allowed
        [{"path": "tags", "op": "EXISTS"}, {"path": "lang", "op": "EQ", "value": "en"}],
    ],
)
async def test_property_filters_equal_a_recount(
    api: httpx.AsyncClient, admin_headers: dict[str, str], raw: list[dict[str, Any]], conditions: list[dict[str, Any]]
) -> None:
    event_filter = {"appName": "admin-console", "properties": conditions}
    expected = {
        str(row["id"]) for row in raw if row["app_name"] == "admin-console" and all(holds(row, c) for c in conditions)
    }
    assert expected, "the seed must hold matching events"
    page = ok(await gql(api, PAGE, {"f": event_filter}, admin_headers))["events"]
    assert {edge["node"]["id"] for edge in page["edges"]} == expected and not page["pageInfo"]["hasNextPage"]
    stats = ok(await gql(api, TOTALS, {"f": event_filter}, admin_headers))["eventStats"]
    assert stats["totals"][0]["events"] == len(expected) == sum(b["events"] for b in stats["buckets"])
    matching = [row for row in raw if str(row["id"]) in expected]
    daily = {(row["created_at"].astimezone(dt.UTC).date(), row["user_hash"]) for row in matching}
    assert stats["totals"][0]["summedDailyUsers"] == len(daily) == sum(b["summedDailyUsers"] for b in stats["buckets"])


BREAKDOWN = """query($f: EventFilter, $p: String!, $top: Int, $i: StatsInterval) {
  propertyBreakdown(filter: $f, property: $p, top: $top, interval: $i) {
    property interval top
    values { kind label value events distinctUsers summedDailyUsers }
    buckets { start values { kind label value events distinctUsers summedDailyUsers } }
  }
}"""


def recount_breakdown(rows: list[dict[str, Any]], path: str, top: int, interval: str) -> dict[str, Any]:
    keys = path.split(".")
    unit = BucketUnit[interval]
    per_label: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for row in rows:
        per_label[label(value_at(row["description"], keys))].append(row)
    ranked = sorted((name for name in per_label if name != "(none)"), key=lambda name: (-len(per_label[name]), name))
    shown = ranked[:top]

    def shown_as(row: dict[str, Any]) -> str:
        name = label(value_at(row["description"], keys))
        return name if name in shown or name == "(none)" else "(other)"

    order = [*shown, "(other)", "(none)"]
    kinds = {"(other)": "OTHER", "(none)": "NONE", "(array)": "ARRAY", "(object)": "OBJECT"}

    def entry(name: str, members: list[dict[str, Any]], distinct: bool) -> dict[str, Any]:
        days = {(row["created_at"].astimezone(dt.UTC).date(), row["user_hash"]) for row in members}
        return {
            "kind": kinds.get(name, "VALUE"),
            "label": name,
            "value": json.loads(name) if name not in kinds else None,
            "events": len(members),
            "distinctUsers": len({row["user_hash"] for row in members}) if distinct else None,
            "summedDailyUsers": len(days),
        }

    def group(members: list[dict[str, Any]], distinct: bool) -> list[dict[str, Any]]:
        by: dict[str, list[dict[str, Any]]] = defaultdict(list)
        for row in members:
            by[shown_as(row)].append(row)
        return [entry(name, by[name], distinct) for name in order if by.get(name)]

    buckets: dict[dt.datetime, list[dict[str, Any]]] = defaultdict(list)
    for row in rows:
        buckets[unit.start(row["created_at"])].append(row)
    return {
        "values": group(rows, False),
        "buckets": [
            {"start": start.isoformat(), "values": group(buckets[start], interval != "WEEK")}
            for start in sorted(buckets)
        ],
    }


@pytest.mark.parametrize(
    ("path", "top", "interval", "event_filter"),
    [
        ("lang", 3, "DAY", {"appName": "admin-console", "eventTypes": ["view"]}),
        ("lang", 20, "DAY", {}),  # every value shown: no OTHER
        ("source.kind", 2, "WEEK", {"appName": "admin-console"}),
        ("lang", 4, "HOUR", {"from": (NOW - dt.timedelta(days=2, hours=5)).isoformat(), "to": NOW.isoformat()}),
        (
            "lang",
            5,
            "DAY",
            {
                "from": (NOW - dt.timedelta(days=6, hours=7)).isoformat(),
                "to": (NOW - dt.timedelta(days=1, hours=3)).isoformat(),
            },
        ),
        ("durationMs", 3, "DAY", {"properties": [{"path": "source.kind", "op": "EQ", "value": "menu"}]}),
    ],
)
async def test_breakdown_equals_a_recount_computed_and_stored(
    api: httpx.AsyncClient,
    admin_headers: dict[str, str],
    raw: list[dict[str, Any]],
    props_db: str,
    path: str,
    top: int,
    interval: str,
    event_filter: dict[str, Any],
) -> None:
    """Asked twice: the second answer comes from the closed days' stored answers, and both
    equal the recount (windows that cut days, and today's open day, are counted live)."""
    rows = [
        row
        for row in raw
        if row["app_name"] == event_filter.get("appName", row["app_name"])
        and row["event_type"] in event_filter.get("eventTypes", [row["event_type"]])
        and row["created_at"] >= dt.datetime.fromisoformat(event_filter.get("from", "2000-01-01T00:00:00+00:00"))
        and row["created_at"] < dt.datetime.fromisoformat(event_filter.get("to", "2100-01-01T00:00:00+00:00"))
        and all(holds(row, c) for c in event_filter.get("properties", []))
    ]
    expected = recount_breakdown(rows, path, top, interval)
    variables = {"f": event_filter, "p": path, "top": top, "i": interval}
    for _ in range(2):
        answer = ok(await gql(api, BREAKDOWN, variables, admin_headers))["propertyBreakdown"]
        assert (answer["property"], answer["interval"], answer["top"]) == (path, interval, top)
        assert answer["values"] == expected["values"]
        buckets = [{**b, "start": dt.datetime.fromisoformat(b["start"]).isoformat()} for b in answer["buckets"]]
        assert buckets == expected["buckets"]
    stored = await fetch(props_db, "SELECT count(*) AS n FROM day_answers WHERE kind LIKE 'property-breakdown%'")
    assert stored[0]["n"] > 0


async def test_breakdown_edge_values_are_shown_as_documented(
    api: httpx.AsyncClient, admin_headers: dict[str, str]
) -> None:
    answer = ok(await gql(api, BREAKDOWN, {"p": "lang", "top": 50}, admin_headers))["propertyBreakdown"]
    by_label = {v["label"]: v for v in answer["values"]}
    assert by_label['"1"']["value"] == "1" and by_label["1"]["value"] == 1  # two values
    assert by_label["null"]["kind"] == "VALUE" and by_label["null"]["value"] is None
    assert by_label["(array)"]["kind"] == "ARRAY" and by_label["(object)"]["kind"] == "OBJECT"
    assert by_label["(none)"]["kind"] == "NONE" and answer["values"][-1]["label"] == "(none)"
    assert by_label['"für"']["value"] == "für"


AGGREGATES = """query($f: EventFilter, $p: String!, $i: StatsInterval, $g: [StatsDimension!]) {
  propertyAggregates(filter: $f, property: $p, interval: $i, groupBy: $g) {
    property interval groupBy
    buckets { start group { dimension value } count sum avg min max p50 p95 }
  }
}"""


@pytest.mark.parametrize(
    ("path", "interval", "group_by", "event_filter"),
    [
        ("durationMs", "DAY", [], {"appName": "admin-console"}),
        ("durationMs", "HOUR", ["EVENT_TYPE"], {"from": (NOW - dt.timedelta(days=1, hours=2)).isoformat()}),
        ("durationMs", "WEEK", ["APP_NAME"], {}),
        ("source.depth.level", "DAY", ["APP_NAME", "EVENT_TYPE"], {"to": (NOW - dt.timedelta(days=3)).isoformat()}),
        ("lang", "DAY", [], {}),  # only the number 1 counts, never the string "1"
    ],
)
async def test_aggregates_equal_a_recount(
    api: httpx.AsyncClient,
    admin_headers: dict[str, str],
    raw: list[dict[str, Any]],
    path: str,
    interval: str,
    group_by: list[str],
    event_filter: dict[str, Any],
) -> None:
    columns = {"APP_NAME": "app_name", "EVENT_TYPE": "event_type"}
    unit = BucketUnit[interval]
    groups: dict[tuple[Any, ...], list[float]] = defaultdict(list)
    for row in raw:
        if row["app_name"] != event_filter.get("appName", row["app_name"]):
            continue
        if not (
            dt.datetime.fromisoformat(event_filter.get("from", "2000-01-01T00:00:00+00:00"))
            <= row["created_at"]
            < dt.datetime.fromisoformat(event_filter.get("to", "2100-01-01T00:00:00+00:00"))
        ):
            continue
        value = value_at(row["description"], path.split("."))
        if is_number(value):
            groups[(unit.start(row["created_at"]), *(row[columns[d]] for d in group_by))].append(float(value))
    assert groups
    expected = [
        {
            "start": key[0].isoformat(),
            "group": [{"dimension": d, "value": v} for d, v in zip(group_by, key[1:], strict=True)],
            "count": len(values),
            "sum": sum(values),
            "avg": sum(values) / len(values),
            "min": min(values),
            "max": max(values),
            "p50": percentile_cont(values, 0.5),
            "p95": percentile_cont(values, 0.95),
        }
        for key, values in sorted(groups.items())
    ]
    variables = {"f": event_filter, "p": path, "i": interval, "g": group_by}
    for _ in range(2):  # the second time from stored days (HOUR, DAY)
        answer = ok(await gql(api, AGGREGATES, variables, admin_headers))["propertyAggregates"]
        actual = [{**b, "start": dt.datetime.fromisoformat(b["start"]).isoformat()} for b in answer["buckets"]]
        assert len(actual) == len(expected)
        for got, want in zip(actual, expected, strict=True):
            assert {k: got[k] for k in ("start", "group", "count")} == {k: want[k] for k in ("start", "group", "count")}
            for figure in ("sum", "avg", "min", "max", "p50", "p95"):
                assert got[figure] == pytest.approx(want[figure], rel=1e-9), (figure, got, want)


CATALOGUE = """query($f: EventFilter, $limit: Int) {
  propertyCatalogue(filter: $f, limit: $limit) {
    sampledEvents scanLimit hasMoreKeys keys { path events valuesHidden types { type events } }
  }
}"""


def flatten(description: Any, prefix: tuple[str, ...] = ()) -> dict[str, str]:
    """path -> JSON type of every key reached through objects."""
    found: dict[str, str] = {}
    if isinstance(description, dict):
        for key, value in description.items():
            path = (*prefix, key)
            kind = {dict: "object", list: "array", str: "string", bool: "boolean", type(None): "null"}.get(
                type(value), "number"
            )
            found[".".join(path)] = kind
            found.update(flatten(value, path))
    return found


async def test_catalogue_equals_a_recount(
    api: httpx.AsyncClient, admin_headers: dict[str, str], raw: list[dict[str, Any]]
) -> None:
    rows = [row for row in raw if row["app_name"] == "billing-admin"]
    counts: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    for row in rows:
        for path, kind in flatten(row["description"]).items():
            if "a.b" not in path:  # a key holding '.' cannot be named by a path: not listed
                counts[path][kind.upper()] += 1
    expected = sorted(
        (
            {
                "path": path,
                "events": sum(types.values()),
                "valuesHidden": path == "contact.phone",
                "types": [
                    {"type": t, "events": n} for t, n in sorted(types.items(), key=lambda item: (-item[1], item[0]))
                ],
            }
            for path, types in counts.items()
        ),
        key=lambda key: (-key["events"], key["path"]),
    )
    answer = ok(await gql(api, CATALOGUE, {"f": {"appName": "billing-admin"}, "limit": 1000}, admin_headers))
    catalogue = answer["propertyCatalogue"]
    assert catalogue["sampledEvents"] == len(rows) and catalogue["scanLimit"] == 10_000
    assert catalogue["keys"] == expected and not catalogue["hasMoreKeys"]
    first_three = ok(await gql(api, CATALOGUE, {"f": {"appName": "billing-admin"}, "limit": 3}, admin_headers))
    assert first_three["propertyCatalogue"]["keys"] == expected[:3] and first_three["propertyCatalogue"]["hasMoreKeys"]


async def test_the_operators_allowlist(
    props_db: str, tmp_path: Path, admin_headers: dict[str, str], raw: list[dict[str, Any]]
) -> None:
    settings = make_settings(props_db, tmp_path, queryable_properties=["lang", "source.kind", "contact"])
    async with asgi_client(settings) as api:
        refused = [
            (PAGE, {"f": {"properties": [{"path": "durationMs", "op": "GT", "value": 1}]}}),
            (TOTALS, {"f": {"properties": [{"path": "source.depth.level", "op": "EXISTS"}]}}),
            (BREAKDOWN, {"p": "source"}),
            (AGGREGATES, {"p": "durationMs"}),
        ]
        for query, variables in refused:
            body = await gql(api, query, variables, admin_headers)
            (error,) = body["errors"]
            assert (
                error["extensions"]["code"] == "BAD_USER_INPUT" and "SIGNALS_QUERYABLE_PROPERTIES" in error["message"]
            )
        allowed = ok(await gql(api, BREAKDOWN, {"p": "source.kind", "top": 5}, admin_headers))["propertyBreakdown"]
        assert sum(v["events"] for v in allowed["values"]) == len(raw)
        keys = ok(await gql(api, CATALOGUE, {"limit": 1000}, admin_headers))["propertyCatalogue"]["keys"]
        assert {key["path"] for key in keys} == {"lang", "lang.code", "source.kind", "contact", "contact.phone"}


@pytest.mark.parametrize(
    ("query", "variables"),
    [
        (BREAKDOWN, {"p": "contact.phone"}),
        (AGGREGATES, {"p": "contact.phone"}),
        (PAGE, {"f": {"properties": [{"path": "contact.phone", "op": "EQ", "value": "555-0100"}]}}),
        (PAGE, {"f": {"properties": [{"path": "customerEmail", "op": "IN", "values": ["x"]}]}}),
    ],
)
async def test_values_of_pii_looking_keys_are_never_shown_or_compared(
    api: httpx.AsyncClient, admin_headers: dict[str, str], query: str, variables: dict[str, Any]
) -> None:
    (error,) = (await gql(api, query, variables, admin_headers))["errors"]
    assert error["extensions"]["code"] == "BAD_USER_INPUT" and "personal data" in error["message"]


@pytest.mark.parametrize(
    "query",
    [
        '{ propertyBreakdown(property: "lang") { values { events } } }',
        '{ propertyAggregates(property: "durationMs") { buckets { count } } }',
        "{ propertyCatalogue { keys { path } } }",
    ],
)
async def test_new_fields_are_admin_only(api: httpx.AsyncClient, query: str) -> None:
    member = {"authorization": f"Bearer {token(roles=['member'])}"}
    assert (await gql(api, query, None, member))["errors"][0]["extensions"]["code"] == "FORBIDDEN"
    assert (await gql(api, query, None, {}))["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"


def condition(**fields: Any) -> dict[str, Any]:
    return {"f": {"properties": [fields]}}


@pytest.mark.parametrize(
    ("query", "variables", "fragment"),
    [
        (PAGE, condition(path="", op="EXISTS"), "property path is not valid"),
        (PAGE, condition(path="a..b", op="EXISTS"), "joined by '.'"),
        (PAGE, condition(path=".lang", op="EXISTS"), "joined by '.'"),
        (PAGE, condition(path="lang.", op="EXISTS"), "joined by '.'"),
        (PAGE, condition(path="la\u200bng", op="EXISTS"), "invisible"),
        (PAGE, condition(path=".".join(["k"] * 17), op="EXISTS"), "at most 16 keys"),
        (PAGE, condition(path="lang", op="EQ", value={"a": 1}), "JSON string, number or boolean"),
        (PAGE, condition(path="lang", op="EQ", value=None), "takes one `value`"),
        (PAGE, condition(path="lang", op="EQ", value="de\x00"), "NUL"),
        (PAGE, condition(path="lang", op="IN"), "IN takes `values`"),
        (PAGE, condition(path="lang", op="IN", values=[[1]]), "JSON string, number or boolean"),
        (PAGE, condition(path="durationMs", op="GT", value="5"), "compare with a JSON number"),
        (PAGE, condition(path="durationMs", op="GT", value=True), "compare with a JSON number"),
        (PAGE, condition(path="lang", op="EXISTS", value=1), "take neither"),
        (PAGE, {"f": {"properties": [{"path": "lang", "op": "EXISTS"}] * 11}}, "at most 10 property filters"),
        (BREAKDOWN, {"p": "a..b"}, "property path is not valid"),
        (BREAKDOWN, {"p": "lang", "top": 0}, "top must be between 1 and 100"),
        (BREAKDOWN, {"p": "lang", "i": "HOUR", "top": 100}, "narrow the time window"),
        (AGGREGATES, {"p": "lang", "g": ["APP_NAME", "APP_NAME"]}, "groupBy names a dimension twice"),
        (CATALOGUE, {"limit": 0}, "limit must be between 1 and 1000"),
    ],
)
async def test_bad_input_is_a_clear_error(
    api: httpx.AsyncClient, admin_headers: dict[str, str], query: str, variables: dict[str, Any], fragment: str
) -> None:
    (error,) = (await gql(api, query, variables, admin_headers))["errors"]
    assert error["extensions"]["code"] == "BAD_USER_INPUT" and fragment in error["message"], error


ADOPTION = """query($p: EventFilter!, $t: EventFilter!) {
  adoption(population: $p, target: $t) { days { day activeUsers targetUsers } }
}"""


@pytest.mark.parametrize(
    "conditions",
    [[{"path": "lang", "op": "EQ", "value": "de"}], [{"path": "durationMs", "op": "GT", "value": 1000.5}]],
)
async def test_property_filters_reach_the_other_insights(
    api: httpx.AsyncClient, admin_headers: dict[str, str], raw: list[dict[str, Any]], conditions: list[dict[str, Any]]
) -> None:
    """Every EventFilter takes properties: adoption's target here (asked twice, the second
    time from the closed days' stored answers, keyed by the property filter too)."""
    first = (NOW - dt.timedelta(days=9)).replace(hour=0, minute=0, second=0, microsecond=0)
    end = first + dt.timedelta(days=10)
    population = {"appName": "admin-console", "from": first.isoformat(), "to": end.isoformat()}
    target = {"eventTypes": ["view"], "properties": conditions}
    expected: dict[str, set[str]] = defaultdict(set)
    for row in raw:
        if (
            row["app_name"] == "admin-console"
            and row["event_type"] == "view"
            and all(holds(row, c) for c in conditions)
        ):
            expected[row["created_at"].astimezone(dt.UTC).date().isoformat()].add(row["user_hash"])
    assert expected
    for _ in range(2):
        days = ok(await gql(api, ADOPTION, {"p": population, "t": target}, admin_headers))["adoption"]["days"]
        assert {d["day"]: d["targetUsers"] for d in days if d["targetUsers"]} == {
            day: len(users) for day, users in expected.items()
        }
