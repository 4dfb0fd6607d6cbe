"""app.read.daycache on a real PostgreSQL: closed days are computed once and then served
as stored, open days and the retention cutoff's day are always computed, days without
events are remembered as such, and answers of different questions never mix."""

from __future__ import annotations

import datetime as dt
from collections.abc import AsyncIterator, Mapping
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from app.read.daycache import answer_key, per_day
from testkit.database import fetch, read_engine

NOW = dt.datetime(2026, 3, 20, 12, 0, tzinfo=dt.UTC)
D = dt.timedelta(days=1)


@pytest.fixture
async def engine(migrated_db: str, tmp_path: Path) -> AsyncIterator[AsyncEngine]:
    async with read_engine(migrated_db, tmp_path) as engine:
        yield engine


class Counter:
    """A compute function that answers {"n": day-of-month} except on `empty` days, and
    records each [first, end) run it was asked for."""

    def __init__(self, empty: set[dt.date] = frozenset()) -> None:  # type: ignore[assignment]
        self.calls: list[tuple[dt.date, dt.date]] = []
        self.empty = empty

    async def __call__(self, first: dt.date, end: dt.date) -> Mapping[dt.date, Any]:
        self.calls.append((first, end))
        days = [first + D * i for i in range((end - first).days)]
        return {day: {"n": day.day} for day in days if day not in self.empty}


@pytest.fixture
def kind(request: pytest.FixtureRequest) -> str:
    """The database is shared by the module's tests: each asks questions of its own kind."""
    return request.node.name[:64]


async def ask(
    engine: AsyncEngine, kind: str, compute: Counter, first: dt.date, end: dt.date, **key: Any
) -> dict[dt.date, Any]:
    return await per_day(
        engine, kind=kind, key=key or {"q": 1}, first=first, end=end, compute=compute, retention_days=30, now=NOW
    )


async def test_closed_days_are_computed_once_open_days_every_time(
    engine: AsyncEngine, migrated_db: str, kind: str
) -> None:
    first, end = dt.date(2026, 3, 10), dt.date(2026, 3, 21)  # through today (the 20th)
    empty = {dt.date(2026, 3, 12)}
    compute = Counter(empty)
    answer = await ask(engine, kind, compute, first, end)
    expected = {first + D * i: {"n": (first + D * i).day} for i in range(11) if first + D * i not in empty}
    assert answer == expected
    assert compute.calls == [(first, end)]
    stored = await fetch(migrated_db, "SELECT day, answer FROM day_answers WHERE kind = $1 ORDER BY day", kind)
    # the 10th..19th are closed at noon on the 20th; the empty 12th is stored as NULL
    assert [r["day"] for r in stored] == [first + D * i for i in range(10)]
    assert [r["day"] for r in stored if r["answer"] is None] == [dt.date(2026, 3, 12)]

    again = Counter(empty)
    assert await ask(engine, kind, again, first, end) == expected
    assert again.calls == [(dt.date(2026, 3, 20), end)]  # only today


async def test_a_stored_answer_is_served_as_stored(engine: AsyncEngine, migrated_db: str, kind: str) -> None:
    day = dt.date(2026, 3, 15)
    await ask(engine, kind, Counter(), day, day + D)
    await fetch(migrated_db, "UPDATE day_answers SET answer = '{\"n\": -1}' WHERE day = $1 AND kind = $2", day, kind)
    assert await ask(engine, kind, Counter(), day, day + D) == {day: {"n": -1}}


async def test_gaps_are_computed_as_runs_and_the_cutoff_day_is_never_stored(
    engine: AsyncEngine, migrated_db: str, kind: str
) -> None:
    await ask(engine, kind, Counter(), dt.date(2026, 3, 5), dt.date(2026, 3, 7))
    await ask(engine, kind, Counter(), dt.date(2026, 3, 9), dt.date(2026, 3, 10))
    compute = Counter()
    cutoff_day = (NOW - dt.timedelta(days=30)).date()  # 2026-02-18: partly deleted by retention
    answer = await ask(engine, kind, compute, cutoff_day - D, dt.date(2026, 3, 11))
    assert set(answer) == {cutoff_day - D + D * i for i in range((dt.date(2026, 3, 11) - cutoff_day).days + 1)}
    assert compute.calls == [
        (cutoff_day - D, dt.date(2026, 3, 5)),
        (dt.date(2026, 3, 7), dt.date(2026, 3, 9)),
        (dt.date(2026, 3, 10), dt.date(2026, 3, 11)),
    ]
    stored = {r["day"] for r in await fetch(migrated_db, "SELECT day FROM day_answers WHERE kind = $1", kind)}
    assert min(stored) == cutoff_day + D


async def test_answers_of_other_questions_never_mix(engine: AsyncEngine, migrated_db: str, kind: str) -> None:
    day = dt.date(2026, 3, 15)
    await ask(engine, kind, Counter(), day, day + D, app="a")
    other = Counter()
    await ask(engine, kind, other, day, day + D, app="b")
    assert other.calls == [(day, day + D)]
    keys = {r["key"] for r in await fetch(migrated_db, "SELECT key FROM day_answers WHERE kind = $1", kind)}
    assert keys == {answer_key({"app": "a"}), answer_key({"app": "b"})}


def test_the_key_is_canonical() -> None:
    at = dt.datetime(2026, 3, 1, tzinfo=dt.UTC)
    assert answer_key({"a": 1, "b": [at, ("x",)]}) == answer_key({"b": [at.isoformat(), ["x"]], "a": 1})
    assert answer_key({"a": 1}) != answer_key({"a": 2})
