"""app.read.journeys against a recount in plain Python over the raw seeded rows
(testkit/journeys.py): sessions across UTC midnight, events without a sessionId, ties on
createdAt broken by id, exits, next events after the window or in another app."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from app.read.journeys import NextEventsRequest, fetch_next_events
from app.read.queries import EventFilterSpec, QueryInputError
from testkit.database import migrated_database, read_engine
from testkit.journeys import APP, DAYS, base_day, journey_rows, recount_next, top_pairs, top_types
from testkit.seed import insert_rows
from testkit.stats import raw_rows

BASE = base_day()
END = BASE + dt.timedelta(days=DAYS)


@pytest.fixture(scope="module")
async def journeys_db(pg_server: str) -> AsyncIterator[str]:
    async with migrated_database(pg_server) as url:
        await insert_rows(url, journey_rows(BASE))
        yield url


@pytest.fixture
async def engine(journeys_db: str, tmp_path: Path) -> AsyncIterator[AsyncEngine]:
    async with read_engine(journeys_db, tmp_path) as engine:
        yield engine


@pytest.mark.parametrize("parallelism", [1, 3])
@pytest.mark.parametrize("event_type", ["view", "click", "search"])
async def test_next_events_equal_a_python_recount(
    engine: AsyncEngine, journeys_db: str, parallelism: int, event_type: str
) -> None:
    rows = await raw_rows(journeys_db)
    expected = recount_next(rows, event_type, APP, BASE, END)
    spec = EventFilterSpec(app_name=APP, start=BASE, end=END)
    result = await fetch_next_events(engine, NextEventsRequest(spec, event_type, top=5), parallelism)
    assert result.anchors == expected["anchors"]
    assert result.followed == expected["followed"]
    assert result.exits == expected["exits"]
    assert result.without_session == expected["without"]
    assert result.types == top_types(expected["types"], 5)
    assert [(p.event_type, p.route, p.count) for p in result.pairs] == top_pairs(expected["pairs"], 5)
    assert sum(expected["types"].values()) + expected["exits"] == expected["followed"]


async def test_edge_cases_by_name(engine: AsyncEngine, journeys_db: str) -> None:
    """Each named session on its own: the next event of its view(s), checked against the raw rows."""
    rows = await raw_rows(journeys_db)
    for session, window in (
        ("s-midnight", (BASE, END)),
        ("s-tie", (BASE, END)),
        ("s-after", (BASE, END)),
        ("s-other-app", (BASE, END)),
        ("s-before", (BASE, END)),
        ("s-chain", (BASE, END)),
        ("s-exit", (BASE, END)),
    ):
        mine = [row for row in rows if row["session_id"] == session]
        expected = recount_next(mine, "view", APP, *window)
        spec = EventFilterSpec(app_name=APP, session_id=session, start=window[0], end=window[1])
        result = await fetch_next_events(engine, NextEventsRequest(spec, "view"), 1)
        assert (result.anchors, result.exits) == (expected["anchors"], expected["exits"]), session
        assert result.types == top_types(expected["types"], 10), session
    # what the definitions say, spelled out for the cases a mistake would hit first
    by_session = {
        session: await fetch_next_events(
            engine, NextEventsRequest(EventFilterSpec(session_id=session, start=BASE, end=END), "view"), 1
        )
        for session in ("s-midnight", "s-tie", "s-after", "s-other-app", "s-exit")
    }
    assert by_session["s-midnight"].types == [("click", 1)]  # across UTC midnight
    assert by_session["s-tie"].types == [("search", 1)]  # same instant: the greater id comes next
    assert by_session["s-after"].types == [("export", 1)]  # after the window's end
    assert [(p.event_type, p.route) for p in by_session["s-other-app"].pairs] == [("click", "/billing")]
    assert (by_session["s-exit"].exits, by_session["s-exit"].types) == (1, [])


async def test_events_without_a_session_are_reported_not_counted(engine: AsyncEngine, journeys_db: str) -> None:
    rows = await raw_rows(journeys_db)
    views = [
        r
        for r in rows
        if r["session_id"] is None
        and r["event_type"] == "view"
        and r["app_name"] == APP
        and BASE <= r["created_at"] < END
    ]
    spec = EventFilterSpec(app_name=APP, start=BASE, end=END)
    result = await fetch_next_events(engine, NextEventsRequest(spec, "view"), 1)
    assert result.without_session == len(views) > 0
    assert result.anchors == result.followed + len(views)


async def test_an_empty_window(engine: AsyncEngine) -> None:
    spec = EventFilterSpec(app_name=APP, start=END + dt.timedelta(days=5), end=END + dt.timedelta(days=6))
    result = await fetch_next_events(engine, NextEventsRequest(spec, "view"), 2)
    assert (result.anchors, result.followed, result.exits, result.types, result.pairs) == (0, 0, 0, [], [])


@pytest.mark.parametrize(
    ("spec", "event_type", "top", "says"),
    [
        (EventFilterSpec(app_name=APP), "view", 10, "filter.from and filter.to are required"),
        (EventFilterSpec(start=BASE), "view", 10, "filter.from and filter.to are required"),
        (EventFilterSpec(start=BASE, end=BASE + dt.timedelta(days=400)), "view", 10, "at most 366"),
        (EventFilterSpec(start=BASE, end=END, event_types=("view",)), "view", 10, "remove filter.eventTypes"),
        (EventFilterSpec(start=BASE, end=END), "", 10, "eventType must be"),
        (EventFilterSpec(start=BASE, end=END), "vi\x00ew", 10, "eventType must be"),
        (EventFilterSpec(start=BASE, end=END), "vi\ud800ew", 10, "eventType must be"),
        (EventFilterSpec(start=BASE, end=END), "view", 0, "top must be between 1 and 100"),
        (EventFilterSpec(start=BASE, end=END), "view", 101, "top must be between 1 and 100"),
    ],
)
def test_bad_input_says_what_to_change(spec: EventFilterSpec, event_type: str, top: int, says: str) -> None:
    with pytest.raises(QueryInputError, match=re.escape(says)):
        NextEventsRequest(spec, event_type, top)
