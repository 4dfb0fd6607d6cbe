"""Events with descriptions that hold every edge case the property questions define, and plain
Python readings of them (independent of app.read's SQL) for the tests' recounts.

Edge cases seeded: nested objects (`source.kind`, three levels deep), the number 1 beside the
string "1", JSON null, arrays, objects where a scalar is expected, missing keys, NULL
descriptions, numbers as strings (`"250"`), floats, a key containing '.', and a key that looks
like personal data (`contact.phone`: ingest would refuse it today; older rows may hold one).
"""

from __future__ import annotations

import datetime as dt
import json
import random
from collections.abc import AsyncIterator
from typing import Any

from app.storage.migrations import migrate
from testkit.database import create_database, drop_database
from testkit.seed import event_row, insert_rows

MISSING = object()
LANGS = ["en", "en", "en", "de", "de", "fr", "es", "ja", "pl"]


def description(rng: random.Random) -> dict[str, Any] | None:
    roll = rng.random()
    if roll < 0.08:
        return None
    if roll < 0.14:
        return {"other": True}
    body: dict[str, Any] = {}
    lang_roll = rng.random()
    if lang_roll < 0.05:
        body["lang"] = 1
    elif lang_roll < 0.10:
        body["lang"] = "1"
    elif lang_roll < 0.14:
        body["lang"] = None
    elif lang_roll < 0.17:
        body["lang"] = ["de", "en"]
    elif lang_roll < 0.20:
        body["lang"] = {"code": "de"}
    elif lang_roll < 0.25:
        body["lang"] = "für"  # non-ASCII JSON text
    else:
        body["lang"] = rng.choice(LANGS)
    duration_roll = rng.random()
    if duration_roll < 0.6:
        body["durationMs"] = rng.randrange(5, 5_000)
    elif duration_roll < 0.7:
        body["durationMs"] = rng.randrange(5, 5_000) + 0.5
    elif duration_roll < 0.8:
        body["durationMs"] = "250"  # a string: not a number
    if rng.random() < 0.5:
        body["source"] = {"kind": rng.choice(["menu", "shortcut", "toolbar"]), "depth": {"level": rng.randrange(3)}}
    if rng.random() < 0.1:
        body["tags"] = ["a", "b"]
    if rng.random() < 0.05:
        body["a.b"] = 1  # a key with a dot: no path can name it
    if rng.random() < 0.05:
        body["contact"] = {"phone": "555-0100"}
    return body


def property_rows(now: dt.datetime) -> list[tuple]:
    """~1,200 events from 9 days before `now` to `now`, across UTC midnights (closed days and
    today), two apps, two event types, people with a hash per UTC day."""
    rng = random.Random(14)
    start = now.replace(hour=0, minute=0, second=0, microsecond=0) - dt.timedelta(days=9)
    span = int((now - start).total_seconds()) - 60
    rows = []
    for _ in range(1_200):
        at = start + dt.timedelta(seconds=rng.randrange(span))
        body = description(rng)
        rows.append(
            event_row(
                at,
                rng.choice(["admin-console", "admin-console", "billing-admin"]),
                rng.choice(["view", "view", "click"]),
                person=f"p{min(int(rng.paretovariate(1.1)), 30)}",
                session_id=f"s{rng.randrange(50)}",
                description=None if body is None else json.dumps(body, ensure_ascii=False),
            )
        )
    return rows


async def seeded_property_database(pg_server: str, rows: list[tuple]) -> AsyncIterator[str]:
    url = await create_database(pg_server)
    await migrate(url)
    await insert_rows(url, rows)
    try:
        yield url
    finally:
        await drop_database(pg_server, url)


def value_at(description: Any, path: list[str]) -> Any:
    """The value at `path` through objects only, or MISSING."""
    value = description
    for key in path:
        if not isinstance(value, dict) or key not in value:
            return MISSING
        value = value[key]
    return value


def label(value: Any) -> str:
    """A breakdown's label, as the API defines it: JSON text of a scalar, or a marker."""
    if value is MISSING:
        return "(none)"
    if isinstance(value, list):
        return "(array)"
    if isinstance(value, dict):
        return "(object)"
    return json.dumps(value, ensure_ascii=False)


def is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def percentile_cont(values: list[float], q: float) -> float:
    ordered = sorted(values)
    position = q * (len(ordered) - 1)
    lower = int(position)
    upper = min(lower + 1, len(ordered) - 1)
    return ordered[lower] + (ordered[upper] - ordered[lower]) * (position - lower)
