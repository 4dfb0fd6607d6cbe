"""Per-day answers of closed UTC days, stored in `day_answers` and served as stored.

An insight that is a sum (or a merge) of per-day figures asks `per_day` for the days of its
window. Closed days already answered come from the table; every other day (open days,
the day the retention cutoff falls in, closed days never asked before) is computed from
the events by the caller's `compute`, once per run of consecutive days, and the closed ones
are stored. Why a stored closed day stays exact, and who forgets it when it would not:
`app.storage.answers`.

A stored answer is keyed by `kind` (the question and its version: bump the version when
the computation changes) and a hash of `key`, a JSON-able description of everything else
that shapes it (filters, property, limits). `answer` NULL records a day without matching
events, so such days are not recomputed either.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import hashlib
import json
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, TypeVar

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from app.storage.answers import closed_before

Compute = Callable[[dt.date, dt.date], Awaitable[Mapping[dt.date, Any]]]
DAY = dt.timedelta(days=1)
Day = TypeVar("Day", dt.date, dt.datetime)


def answer_key(key: Mapping[str, Any]) -> str:
    """sha256 hex of the canonical JSON of `key` (datetimes as ISO 8601)."""
    canonical = json.dumps(key, sort_keys=True, separators=(",", ":"), default=_json_default)
    return hashlib.sha256(canonical.encode()).hexdigest()


def _json_default(value: object) -> object:
    if isinstance(value, dt.datetime | dt.date):
        return value.isoformat()
    if isinstance(value, tuple | frozenset | set):
        return list(value)
    raise TypeError(f"not JSON-able in a stored answer's key: {type(value).__name__}")


def trusted_span(first: dt.date, end: dt.date, *, now: dt.datetime, retention_days: int) -> tuple[dt.date, dt.date]:
    """[lo, hi) of the days in [first, end) whose answers may be stored (lo >= hi: none).
    The retention cutoff's own day is partly deleted and never stored."""
    cutoff_day = (now.astimezone(dt.UTC) - dt.timedelta(days=retention_days)).date()
    return max(first, cutoff_day + DAY), min(end, closed_before(now))


def runs_of_days(days: list[Day]) -> list[tuple[Day, Day]]:
    """Ascending days (dates, or their UTC midnights) as [first, end) runs of consecutive ones."""
    runs: list[tuple[Day, Day]] = []
    for day in days:
        if runs and runs[-1][1] == day:
            runs[-1] = (runs[-1][0], day + DAY)
        else:
            runs.append((day, day + DAY))
    return runs


async def per_day(
    engine: AsyncEngine,
    *,
    kind: str,
    key: Mapping[str, Any],
    first: dt.date,
    end: dt.date,
    compute: Compute,
    retention_days: int,
    now: dt.datetime | None = None,
    store: AsyncEngine | None = None,
) -> dict[dt.date, Any]:
    """{day: answer} for the days in [first, end) that have one (days without events are left out).
    Stored answers are looked up on `engine` and new ones written on `store` (default
    `engine`): with a read replica, `engine` is the replica's and `store` the primary's."""
    if first >= end:
        return {}
    now = now or dt.datetime.now(dt.UTC)
    digest = answer_key(key)
    lo, hi = trusted_span(first, end, now=now, retention_days=retention_days)
    stored: dict[dt.date, Any] = {}
    if lo < hi:
        async with engine.connect() as conn:
            result = await conn.execute(
                text(
                    "SELECT day, answer FROM day_answers WHERE kind = :kind AND key = :key AND day >= :lo AND day < :hi"
                ),
                {"kind": kind, "key": digest, "lo": lo, "hi": hi},
            )
            stored = {row.day: row.answer for row in result}
    wanted = [first + DAY * i for i in range((end - first).days)]
    missing = [day for day in wanted if day not in stored]
    computed: dict[dt.date, Any] = {}
    for part in await asyncio.gather(*(compute(a, b) for a, b in runs_of_days(missing))):
        computed.update(part)
    keep = [day for day in missing if lo <= day < hi]
    if keep:
        async with (store or engine).begin() as conn:
            await conn.execute(
                text(
                    "INSERT INTO day_answers (kind, key, day, answer) "
                    "VALUES (:kind, :key, :day, CAST(:answer AS jsonb)) "
                    "ON CONFLICT (kind, key, day) DO UPDATE SET answer = EXCLUDED.answer, computed_at = now()"
                ),
                [
                    {
                        "kind": kind,
                        "key": digest,
                        "day": day,
                        "answer": None if computed.get(day) is None else json.dumps(computed[day]),
                    }
                    for day in keep
                ],
            )
    answers = {**stored, **{day: computed[day] for day in missing if computed.get(day) is not None}}
    return {day: answers[day] for day in sorted(answers) if answers[day] is not None}
