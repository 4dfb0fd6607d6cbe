"""app.read.adoption against a recount in plain Python over the raw seeded rows: per UTC
day, distinct userHash and sessionId of the app's events and of the target's; whole closed
days stored in day_answers and served again unchanged, days cut by the window counted live."""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from app.read.adoption import KIND, AdoptionRequest, cache_key, fetch_adoption
from app.read.daycache import answer_key
from app.read.queries import EventFilterSpec, QueryInputError
from testkit.database import fetch, migrated_database, read_engine
from testkit.insights import APP, WINDOW_DAYS, base_day, insight_rows
from testkit.seed import insert_rows
from testkit.stats import raw_rows

BASE = base_day()
END = BASE + dt.timedelta(days=WINDOW_DAYS)
H = dt.timedelta(hours=1)


@pytest.fixture(scope="module")
async def adoption_db(pg_server: str) -> AsyncIterator[str]:
    async with migrated_database(pg_server) as url:
        await insert_rows(url, insight_rows(BASE))
        yield url


@pytest.fixture
async def engine(adoption_db: str, tmp_path: Path) -> AsyncIterator[AsyncEngine]:
    async with read_engine(adoption_db, tmp_path) as engine:
        yield engine


def reference(
    rows: list[Any], app: str | None, start: dt.datetime, end: dt.datetime, types: list[str], **equal: Any
) -> list[tuple[dt.date, int, int, int, int]]:
    """(day, active users, target users, active sessions, target sessions) per UTC day touched."""
    sets: dict[dt.date, list[set[Any]]] = defaultdict(lambda: [set(), set(), set(), set()])
    for row in rows:
        if (app is not None and row["app_name"] != app) or not start <= row["created_at"] < end:
            continue
        day = sets[row["created_at"].astimezone(dt.UTC).date()]
        target = row["event_type"] in types and all(row[column] == value for column, value in equal.items())
        day[0].add(row["user_hash"])
        if target:
            day[1].add(row["user_hash"])
        if row["session_id"] is not None:
            day[2].add(row["session_id"])
            if target:
                day[3].add(row["session_id"])
    first, last = start.date(), (end - dt.timedelta(microseconds=1)).date()
    days = [first + dt.timedelta(days=i) for i in range((last - first).days + 1)]
    return [(day, *(len(s) for s in sets[day])) for day in days]  # type: ignore[misc]


def as_tuples(days: list[Any]) -> list[tuple[dt.date, int, int, int, int]]:
    return [(d.day, d.active_users, d.target_users, d.active_sessions, d.target_sessions) for d in days]


def request(app: str | None, start: dt.datetime, end: dt.datetime, types: list[str], **equal: Any) -> AdoptionRequest:
    return AdoptionRequest(
        EventFilterSpec(app_name=app, start=start, end=end), EventFilterSpec(event_types=tuple(types), **equal)
    )


@pytest.mark.parametrize(
    ("app", "start", "end", "types", "equal"),
    [
        (APP, BASE, END, ["export"], {}),
        (APP, BASE + 6 * H, END - 21 * H, ["view"], {"route": "/orders"}),  # first and last day cut
        (None, BASE - 2 * H, END + 2 * H, ["search", "export"], {"device_type": "mobile"}),
        (APP, BASE + 33 * H, BASE + 34 * H, ["view"], {}),  # inside one day
    ],
    ids=["whole-days", "cut-days", "all-apps", "one-hour"],
)
async def test_adoption_equals_a_recount(
    engine: AsyncEngine,
    adoption_db: str,
    app: str | None,
    start: dt.datetime,
    end: dt.datetime,
    types: list[str],
    equal: dict[str, Any],
) -> None:
    rows = await raw_rows(adoption_db)
    expected = reference(rows, app, start, end, types, **equal)
    assert sum(day[1] for day in expected) > 0
    first = await fetch_adoption(engine, request(app, start, end, types, **equal), retention_days=180)
    assert as_tuples(first) == expected
    again = await fetch_adoption(engine, request(app, start, end, types, **equal), retention_days=180)
    assert as_tuples(again) == expected  # now from day_answers for the whole closed days


async def test_whole_closed_days_are_stored_and_cut_days_are_not(engine: AsyncEngine, adoption_db: str) -> None:
    start, end = BASE + 6 * H, END  # day 0 cut, days 1..5 whole
    asked = request(APP, start, end, ["click"], route="/customers")  # a question no other test asks
    await fetch_adoption(engine, asked, retention_days=180)
    stored = await fetch(
        adoption_db,
        "SELECT day FROM day_answers WHERE kind = $1 AND key = $2 ORDER BY day",
        KIND,
        answer_key(cache_key(asked)),
    )
    assert [row["day"] for row in stored] == [(BASE + dt.timedelta(days=i)).date() for i in range(1, WINDOW_DAYS)]


async def test_a_session_across_midnight_counts_on_both_days(engine: AsyncEngine, adoption_db: str) -> None:
    """s-midnight's view is on day 2, its search and export on day 3: as a session it is
    active on both days, a target (export) session on day 3 only."""
    rows = [row for row in await raw_rows(adoption_db) if row["session_id"] == "s-midnight"]
    (day2, day3) = sorted({row["created_at"].astimezone(dt.UTC).date() for row in rows})
    expected = reference(rows, APP, BASE, END, ["export"])
    assert [(d[0], d[3], d[4]) for d in expected if d[3]] == [(day2, 1, 0), (day3, 1, 1)]


@pytest.mark.parametrize(
    ("population", "target", "fragment"),
    [
        ({"start": BASE - dt.timedelta(days=400), "end": END}, {"event_types": ("view",)}, "at most 366"),
        ({}, {"event_types": ("view",)}, "population.from and population.to are required"),
        ({"start": BASE, "end": END, "device_type": "mobile"}, {"event_types": ("view",)}, "remove deviceType"),
        ({"start": BASE, "end": END}, {"event_types": ("view",), "app_name": APP}, "must not set appName"),
        ({"start": BASE, "end": END}, {}, "eventTypes must name"),
    ],
)
async def test_bad_requests_say_what_to_change(
    engine: AsyncEngine, population: dict[str, Any], target: dict[str, Any], fragment: str
) -> None:
    with pytest.raises(QueryInputError, match=fragment):
        await fetch_adoption(
            engine,
            AdoptionRequest(EventFilterSpec(app_name=APP, **population), EventFilterSpec(**target)),
            retention_days=180,
        )
