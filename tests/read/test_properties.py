"""app.read.properties: the path syntax, the operators' SQL (paths and values only as bind
parameters), the operator's allowlist and PII-looking keys; and on a real PostgreSQL, that a
property-filtered events page still finds an index path."""

from __future__ import annotations

import datetime as dt
import json
import uuid
from collections import Counter
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from app.read import property_stats, queries
from app.read.properties import PropertyCondition, PropertyOp, PropertyPolicy, parse_path
from app.read.queries import QueryInputError
from app.storage.database import create_engine, sqlalchemy_url
from testkit.database import fetch
from testkit.seed import event_row, insert_rows
from testkit.settings import make_settings


@pytest.mark.parametrize(
    ("path", "keys"),
    [
        ("lang", ("lang",)),
        ("source.kind", ("source", "kind")),
        ("a b.c-d:e", ("a b", "c-d:e")),  # ingest allows such keys
        ("für.straße", ("für", "straße")),
        (".".join(["k"] * 16), ("k",) * 16),
    ],
)
def test_paths_that_parse(path: str, keys: tuple[str, ...]) -> None:
    assert parse_path(path) == keys


@pytest.mark.parametrize(
    "path", ["", ".", "a.", ".a", "a..b", "a\x00b", "a\u202eb", "a\u200bb", "\ud800", ".".join(["k"] * 17), "x" * 257]
)
def test_paths_refused_with_the_syntax(path: str) -> None:
    with pytest.raises(QueryInputError, match=r"keys joined by '\.'"):
        parse_path(path)


def test_paths_and_values_reach_sql_only_as_parameters() -> None:
    hostile = "x'); DROP TABLE events; --"
    conditions = (
        PropertyCondition.build(hostile, PropertyOp.EQ, hostile),
        PropertyCondition.build("a", PropertyOp.IN, values=[hostile, 1, True]),
        PropertyCondition.build("n", PropertyOp.GT, 2.5),
        PropertyCondition.build(hostile, PropertyOp.NOT_EXISTS),
    )
    sql, params = queries.EventFilterSpec(properties=conditions).where()
    assert hostile not in sql and "DROP" not in sql
    assert params["f_p0_path"] == [hostile] and params["f_p0_value"] == json.dumps(hostile)
    assert params["f_p1_values"] == ['"x\'); DROP TABLE events; --"', "1", "true"]


def test_the_allowlist_allows_entries_and_paths_under_them() -> None:
    policy = PropertyPolicy(["lang", "source.kind"])
    assert policy.allows(("lang",)) and policy.allows(("lang", "code")) and policy.allows(("source", "kind"))
    assert not policy.allows(("source",)) and not policy.allows(("language",)) and not policy.allows(("durationMs",))
    assert PropertyPolicy().allows(("anything", "at", "all"))
    with pytest.raises(QueryInputError, match="SIGNALS_QUERYABLE_PROPERTIES"):
        policy.check_condition(PropertyCondition.build("durationMs", PropertyOp.EXISTS))


@pytest.mark.parametrize("path", ["email", "customer.firstName", "billing_address.city", "meta.clientIP"])
def test_pii_looking_paths_take_exists_only(path: str) -> None:
    policy = PropertyPolicy()
    policy.check_condition(PropertyCondition.build(path, PropertyOp.EXISTS))
    policy.check_condition(PropertyCondition.build(path, PropertyOp.NOT_EXISTS))
    with pytest.raises(QueryInputError, match="personal data"):
        policy.check_condition(PropertyCondition.build(path, PropertyOp.EQ, "x"))
    with pytest.raises(QueryInputError, match="personal data"):
        policy.check_values(parse_path(path), "breakdown")


async def test_property_filtered_page_uses_an_index(migrated_db: str) -> None:
    """With sequential scans priced out, a property-filtered app+type page still walks the
    (app, type, created_at) index, newest first, checking the property on each row."""
    app = f"app-{uuid.uuid4().hex[:8]}"
    at = dt.datetime(2026, 6, 1, tzinfo=dt.UTC)
    await insert_rows(
        migrated_db,
        [
            event_row(at + dt.timedelta(minutes=i), app, "view", description=json.dumps({"lang": "de"}))
            for i in range(50)
        ],
    )
    spec = queries.EventFilterSpec(
        app_name=app, event_types=("view",), properties=(PropertyCondition.build("lang", PropertyOp.EQ, "de"),)
    )
    engine = create_async_engine(sqlalchemy_url(migrated_db))
    try:
        async with engine.connect() as conn:
            await conn.execute(text("SET enable_seqscan = off"))
            for after in (None, queries.Cursor(at + dt.timedelta(minutes=30), uuid.uuid4())):
                sql, params = queries.events_page_query(spec, 100, after)
                plan = "\n".join(row[0] for row in await conn.execute(text("EXPLAIN " + sql), params))
                assert "Seq Scan" not in plan and "Index" in plan, plan
            rows, _ = await queries.fetch_events_page(conn, spec, 100, None)
            assert len(rows) == 50
    finally:
        await engine.dispose()


async def test_a_digit_key_indexes_an_array_as_documented(migrated_db: str) -> None:
    """Arrays are values; PostgreSQL's `#>` reads a key of digits as an index into an array."""
    app = f"app-{uuid.uuid4().hex[:8]}"
    at = dt.datetime(2026, 6, 2, tzinfo=dt.UTC)
    await insert_rows(
        migrated_db,
        [
            event_row(at, app, description=json.dumps({"tags": ["a", "b"]})),
            event_row(at, app, description=json.dumps({"tags": {"0": "a"}})),
            event_row(at, app, description=json.dumps({"tags": "a"})),
        ],
    )
    engine = create_async_engine(sqlalchemy_url(migrated_db))
    try:
        async with engine.connect() as conn:
            for path, expected in (("tags.0", 2), ("tags", 1)):
                condition = PropertyCondition.build(path, PropertyOp.EQ, "a")
                spec = queries.EventFilterSpec(app_name=app, properties=(condition,))
                rows, _ = await queries.fetch_events_page(conn, spec, 100, None)
                assert len(rows) == expected, path
    finally:
        await engine.dispose()


async def test_the_catalogue_reads_only_the_newest_rows_it_may_scan(
    migrated_db: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The sample bound holds: with a scan limit of 5, only the newest 5 matching events count."""
    monkeypatch.setattr(property_stats, "CATALOGUE_SCAN", 5)  # the real query, a smaller bound
    app = f"app-{uuid.uuid4().hex[:8]}"
    at = dt.datetime(2026, 6, 3, tzinfo=dt.UTC)
    bodies = [{"old": 1}] * 4 + [{"new": {"x": "y"}}, None, {"new": {"x": 2}}, {"z": [1]}, {"new": {}}]
    await insert_rows(
        migrated_db,
        [
            event_row(at + dt.timedelta(minutes=i), app, description=None if body is None else json.dumps(body))
            for i, body in enumerate(bodies)
        ],
    )
    newest = await fetch(
        migrated_db,
        "SELECT description::text AS d FROM events WHERE app_name = $1 ORDER BY created_at DESC LIMIT 5",
        app,
    )
    expected: Counter[str] = Counter()
    for row in newest:
        body = json.loads(row["d"]) if row["d"] else {}
        for key, value in body.items():
            expected[key] += 1
            for inner in value if isinstance(value, dict) else ():
                expected[f"{key}.{inner}"] += 1
    engine = create_engine(migrated_db, make_settings(migrated_db, tmp_path))
    try:
        catalogue = await property_stats.fetch_catalogue(
            engine, queries.EventFilterSpec(app_name=app), PropertyPolicy(), 100
        )
    finally:
        await engine.dispose()
    assert catalogue.sampled == 5
    assert {".".join(key.path): key.events for key in catalogue.keys} == dict(expected)
    assert "old" not in expected
