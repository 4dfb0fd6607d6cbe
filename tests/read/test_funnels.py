"""app.read.funnels against a reference implementation written here from the definitions
(plain Python over the raw seeded rows), on data holding each edge case by name
(testkit/insights.py): repeated steps, out-of-order events, sessions across UTC midnight,
events without a sessionId, `within`, ties on createdAt, the window's edges."""

from __future__ import annotations

import datetime as dt
import statistics
from collections import defaultdict
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from app.read.funnels import FunnelRequest, FunnelUnit, fetch_funnel, funnel_query
from app.read.queries import Dimension, EventFilterSpec, QueryInputError
from testkit.database import migrated_database, read_engine
from testkit.insights import APP, WINDOW_DAYS, base_day, insight_rows
from testkit.seed import insert_rows
from testkit.stats import raw_rows

BASE = base_day()
END = BASE + dt.timedelta(days=WINDOW_DAYS)
ALL = ("all units",)  # the reference's key for the whole funnel (a group value may be None)
VIEW_SEARCH_EXPORT = [{"types": ["view"]}, {"types": ["search"]}, {"types": ["export"]}]


@pytest.fixture(scope="module")
async def funnel_db(pg_server: str) -> AsyncIterator[str]:
    async with migrated_database(pg_server) as url:
        await insert_rows(url, insight_rows(BASE))
        yield url


@pytest.fixture
async def engine(funnel_db: str, tmp_path: Path) -> AsyncIterator[AsyncEngine]:
    async with read_engine(funnel_db, tmp_path) as engine:
        yield engine


# --- the reference: the module docstring of app/read/funnels.py, in plain Python ---------


def step_matches(row: Any, step: dict[str, Any]) -> bool:
    return row["event_type"] in step["types"] and all(
        row[column] == value for column, value in step.get("eq", {}).items()
    )


def reference(
    rows: list[Any],
    steps: list[dict[str, Any]],
    unit: str,
    start: dt.datetime = BASE,
    end: dt.datetime = END,
    within: float | None = None,
    breakdown: str | None = None,
) -> dict[Any, list[tuple[int, float | None, float | None]]]:
    """{group (ALL = all units): [(entered, median from previous, median from start) per step]}."""
    units: dict[Any, list[Any]] = defaultdict(list)
    for row in rows:
        if row["app_name"] != APP or not start <= row["created_at"] < end:
            continue
        if not any(step_matches(row, step) for step in steps):
            continue
        if unit == "SESSION":
            if row["session_id"] is None:
                continue
            units[row["session_id"]].append(row)
        else:
            units[(row["user_hash"], row["created_at"].astimezone(dt.UTC).date())].append(row)
    chains: dict[Any, list[list[dt.datetime]]] = defaultdict(list)
    for events in units.values():
        events.sort(key=lambda r: (r["created_at"], r["id"]))
        chain: list[Any] = []
        position = -1
        for step in steps:
            found = next(
                (
                    i
                    for i in range(position + 1, len(events))
                    if step_matches(events[i], step)
                    and (
                        not chain
                        or within is None
                        or (events[i]["created_at"] - chain[0]["created_at"]).total_seconds() <= within
                    )
                ),
                None,
            )
            if found is None:
                break
            chain.append(events[found])
            position = found
        if chain:
            times = [event["created_at"] for event in chain]
            chains[ALL].append(times)
            if breakdown is not None:
                chains[chain[0][breakdown]].append(times)
    answer = {}
    for group, members in chains.items():
        figures = []
        for k in range(len(steps)):
            reached = [times for times in members if len(times) > k]
            if k == 0:
                figures.append((len(reached), None, None))
                continue
            previous = [(t[k] - t[k - 1]).total_seconds() for t in reached]
            start_ = [(t[k] - t[0]).total_seconds() for t in reached]
            figures.append(
                (
                    len(reached),
                    statistics.median(previous) if previous else None,
                    statistics.median(start_) if start_ else None,
                )
            )
        answer[group] = figures
    return answer


def request_for(steps: list[dict[str, Any]], unit: str, **options: Any) -> FunnelRequest:
    specs = tuple(EventFilterSpec(event_types=tuple(step["types"]), **step.get("eq", {})) for step in steps)
    return FunnelRequest(
        window=EventFilterSpec(app_name=APP, start=options.pop("start", BASE), end=options.pop("end", END)),
        steps=specs,
        unit=FunnelUnit[unit],
        **options,
    )


def as_figures(steps: Any) -> list[tuple[int, float | None, float | None]]:
    return [(s.entered, s.median_from_previous, s.median_from_start) for s in steps]


def assert_same(actual: list[tuple], expected: list[tuple]) -> None:
    assert [a[0] for a in actual] == [e[0] for e in expected]
    for a, e in zip(actual, expected, strict=True):
        assert a[1:] == pytest.approx(e[1:])


# --- the tests ------------------------------------------------------------------------------


@pytest.mark.parametrize("parts", [1, 3])
@pytest.mark.parametrize("unit", ["SESSION", "USER_DAY"])
@pytest.mark.parametrize(
    ("steps", "within"),
    [
        (VIEW_SEARCH_EXPORT, None),
        (VIEW_SEARCH_EXPORT, 3600),
        ([{"types": ["view"]}, {"types": ["view"]}, {"types": ["export"]}], None),  # one event, one step
        ([{"types": ["view", "click"]}, {"types": ["export"], "eq": {"route": "/orders"}}], None),
        ([{"types": ["search"]}, {"types": ["view"]}, {"types": ["search"]}, {"types": ["export"]}], 600),
    ],
    ids=["3-steps", "within-1h", "repeated-type", "route-filter", "4-steps-within"],
)
async def test_funnel_equals_the_reference(
    engine: AsyncEngine, funnel_db: str, unit: str, steps: list[dict[str, Any]], within: int | None, parts: int
) -> None:
    """Counted in one statement or split over `parts` connections by unit hash: the same."""
    rows = await raw_rows(funnel_db)
    expected = reference(rows, steps, unit, within=within)[ALL]
    assert expected[0][0] > 10  # enough units to mean something
    request = request_for(steps, unit, within=None if within is None else dt.timedelta(seconds=within))
    result = await fetch_funnel(engine, request, parts)
    assert_same(as_figures(result.overall), expected)
    assert result.groups == []


@pytest.mark.parametrize("dimension", ["DEVICE_TYPE", "BROWSER_FAMILY", "ROUTE"])
@pytest.mark.parametrize("unit", ["SESSION", "USER_DAY"])
async def test_breakdown_by_the_step_1_events_value(
    engine: AsyncEngine, funnel_db: str, dimension: str, unit: str
) -> None:
    rows = await raw_rows(funnel_db)
    column = Dimension[dimension].value
    expected = reference(rows, VIEW_SEARCH_EXPORT, unit, breakdown=column)
    result = await fetch_funnel(engine, request_for(VIEW_SEARCH_EXPORT, unit, breakdown=Dimension[dimension]), 2)
    assert_same(as_figures(result.overall), expected[ALL])
    groups = {group.value: as_figures(group.steps) for group in result.groups}
    assert set(groups) == set(expected) - {ALL}
    for value, figures in groups.items():
        assert_same(figures, expected[value])
    entered = [group.steps[0].entered for group in result.groups]
    assert entered == sorted(entered, reverse=True)  # most step-1 units first


async def test_breakdown_top_keeps_the_largest_groups(engine: AsyncEngine, funnel_db: str) -> None:
    rows = await raw_rows(funnel_db)
    expected = reference(rows, VIEW_SEARCH_EXPORT, "USER_DAY", breakdown="browser_family")
    result = await fetch_funnel(
        engine, request_for(VIEW_SEARCH_EXPORT, "USER_DAY", breakdown=Dimension.BROWSER_FAMILY, top=1)
    )
    # the most step-1 units, ties by value
    largest = min((v for v in expected if v != ALL), key=lambda v: (-expected[v][0][0], v))
    assert [group.value for group in result.groups] == [largest]
    assert_same(as_figures(result.overall), expected[ALL])


async def chain_of(engine: AsyncEngine, session: str, steps: list[dict[str, Any]], **options: Any) -> list[int]:
    """entered per step for the one session `session` (the funnel over its events only)."""
    request = request_for(steps, "SESSION", **options)
    sql, params = funnel_query(request)
    sql = sql.replace("AND session_id IS NOT NULL", "AND session_id = :only")
    async with engine.connect() as conn:
        row = (await conn.execute(text(sql), {**params, "only": session})).one()
    return [row._mapping[f"e{k}"] for k in range(1, len(steps) + 1)]


@pytest.mark.parametrize(
    ("session", "entered", "options"),
    [
        ("s-repeat", [1, 1, 1], {}),
        ("s-order", [1, 0, 0], {}),
        ("s-midnight", [1, 1, 1], {}),
        ("s-slow", [1, 1, 1], {}),
        ("s-slow", [1, 1, 0], {"within": dt.timedelta(seconds=3600)}),
        ("s-tie-before", [1, 0, 0], {}),
        ("s-tie-after", [1, 1, 0], {}),
        ("s-early", [1, 1, 0], {}),
        ("s-late", [1, 0, 0], {}),
        ("s-mixed", [1, 0, 0], {}),
    ],
)
async def test_each_edge_case_by_itself(
    engine: AsyncEngine, funnel_db: str, session: str, entered: list[int], options: dict[str, Any]
) -> None:
    """The named sessions of testkit/insights.py, each alone: the expected chains are read
    off the reference too, so both agree with the definitions."""
    rows = [row for row in await raw_rows(funnel_db) if row["session_id"] == session]
    within = options.get("within")
    expected = reference(rows, VIEW_SEARCH_EXPORT, "SESSION", within=within and within.total_seconds())
    assert [figure[0] for figure in expected[ALL]] == entered
    assert await chain_of(engine, session, VIEW_SEARCH_EXPORT, **options) == entered


async def test_repeated_step_1_does_not_restart_the_clock(engine: AsyncEngine, funnel_db: str) -> None:
    """s-repeat: views at 0 s, 10 s, 30 s, search at 20 s, export at 40 s: the chain is
    view@0 -> search@20 -> export@40, so 20 s and 40 s from the start."""
    rows = [row for row in await raw_rows(funnel_db) if row["session_id"] == "s-repeat"]
    views = sorted(row["created_at"] for row in rows if row["event_type"] == "view")
    (search,) = [row["created_at"] for row in rows if row["event_type"] == "search"]
    (export,) = [row["created_at"] for row in rows if row["event_type"] == "export"]
    sql, params = funnel_query(request_for(VIEW_SEARCH_EXPORT, "SESSION"))
    sql = sql.replace("AND session_id IS NOT NULL", "AND session_id = 's-repeat'")
    async with engine.connect() as conn:
        row = (await conn.execute(text(sql), params)).one()
    assert row.d2 == [pytest.approx((search - views[0]).total_seconds())]
    assert row.f3 == [pytest.approx((export - views[0]).total_seconds())]
    assert row.d3 == [pytest.approx((export - search).total_seconds())]


async def test_sessions_and_user_days_across_midnight(engine: AsyncEngine, funnel_db: str) -> None:
    """s-midnight is one session (complete), but as user-days it is two units: the view's
    day (step 1 only) and the next day's (no view: not counted)."""
    rows = [row for row in await raw_rows(funnel_db) if row["session_id"] == "s-midnight"]
    assert len({row["user_hash"] for row in rows}) == 2
    days = reference(rows, VIEW_SEARCH_EXPORT, "USER_DAY")[ALL]
    assert [figure[0] for figure in days] == [1, 0, 0]
    sessions = reference(rows, VIEW_SEARCH_EXPORT, "SESSION")[ALL]
    assert [figure[0] for figure in sessions] == [1, 1, 1]


async def test_events_without_a_session_count_only_as_user_days(engine: AsyncEngine, funnel_db: str) -> None:
    rows = await raw_rows(funnel_db)
    nosession = [row for row in rows if row["session_id"] is None and row["app_name"] == APP]
    day = BASE + dt.timedelta(days=2)
    window = {"start": day + dt.timedelta(hours=14), "end": day + dt.timedelta(hours=14, minutes=5)}
    alone = [row for row in nosession if window["start"] <= row["created_at"] < window["end"]]
    assert len(alone) == 3  # the "nosession" person's view, search, export
    by_day = await fetch_funnel(engine, request_for(VIEW_SEARCH_EXPORT, "USER_DAY", **window))
    by_session = await fetch_funnel(engine, request_for(VIEW_SEARCH_EXPORT, "SESSION", **window))
    expected_days = reference(rows, VIEW_SEARCH_EXPORT, "USER_DAY", **window)[ALL]
    assert [figure[0] for figure in expected_days] == [1, 1, 1]
    assert_same(as_figures(by_day.overall), expected_days)
    assert [s.entered for s in by_session.overall] == [0, 0, 0]
    assert reference(rows, VIEW_SEARCH_EXPORT, "SESSION", **window) == {}


async def test_an_empty_window_counts_nothing(engine: AsyncEngine) -> None:
    far = {"start": BASE - dt.timedelta(days=200), "end": BASE - dt.timedelta(days=199)}
    for breakdown in (None, Dimension.DEVICE_TYPE):
        result = await fetch_funnel(engine, request_for(VIEW_SEARCH_EXPORT, "SESSION", breakdown=breakdown, **far))
        assert [s.entered for s in result.overall] == [0, 0, 0] and result.groups == []


@pytest.mark.parametrize(
    ("steps", "options", "fragment"),
    [
        ([{"types": ["view"]}], {}, "2 to 10 steps"),
        ([{"types": ["view"]}] * 11, {}, "2 to 10 steps"),
        (VIEW_SEARCH_EXPORT, {"start": BASE - dt.timedelta(days=400)}, "at most 366"),
        (VIEW_SEARCH_EXPORT, {"within": dt.timedelta(0)}, "within must be positive"),
        (VIEW_SEARCH_EXPORT, {"top": 0}, "breakdownTop"),
        ([{"types": []}, {"types": ["view"]}], {}, "eventTypes"),
    ],
)
def test_bad_requests_say_what_to_change(steps: list[dict[str, Any]], options: dict[str, Any], fragment: str) -> None:
    with pytest.raises(QueryInputError, match=fragment.replace("must be positive", "must be a positive")):
        request_for(steps, "SESSION", **options)


def test_steps_and_filter_take_only_their_fields() -> None:
    with pytest.raises(QueryInputError, match="must not set appName"):
        FunnelRequest(
            window=EventFilterSpec(app_name=APP, start=BASE, end=END),
            steps=(EventFilterSpec(event_types=("view",), app_name="x"), EventFilterSpec(event_types=("search",))),
        )
    with pytest.raises(QueryInputError, match="remove deviceType"):
        FunnelRequest(
            window=EventFilterSpec(app_name=APP, start=BASE, end=END, device_type="mobile"),
            steps=(EventFilterSpec(event_types=("view",)), EventFilterSpec(event_types=("search",))),
        )
    with pytest.raises(QueryInputError, match=r"from and filter\.to are required"):
        FunnelRequest(window=EventFilterSpec(app_name=APP), steps=(EventFilterSpec(event_types=("view",)),) * 2)


async def test_candidates_come_from_the_app_and_time_index(engine: AsyncEngine) -> None:
    sql, params = funnel_query(request_for(VIEW_SEARCH_EXPORT, "SESSION"))
    async with engine.connect() as conn:
        await conn.execute(text("SET enable_seqscan = off"))
        plan = "\n".join(row[0] for row in await conn.execute(text("EXPLAIN " + sql), params))
    assert "Seq Scan" not in plan and "Index" in plan, plan
