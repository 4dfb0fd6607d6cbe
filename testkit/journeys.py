"""Seed rows for the `nextEvents` tests, and the next events recounted in plain Python from
the raw rows (independently of app.read.journeys' SQL).

Named sessions (anchor type "view" in APP, window [BASE, END)):
- s-midnight: view 23:59:50, then a click 20 s later, after UTC midnight (a new userHash):
  followed, as a session is a sessionId;
- s-tie: a view, a search and an export at the same instant; ids order them
  export < view < search, so the view's next is the search (and the export is no successor);
- s-chain: view, view, click (a view's next may be a view);
- s-exit: a lone view (an exit);
- s-after: a view a minute before the window's end, its next an hour after it (followed);
- s-other-app: a view, then an event in the other app (any app counts);
- s-before: a view before the window (not an anchor) then one inside;
- no sessionId: views of person "nosession" (without_session, in no share);
plus random sessions over the window's days with routes.
"""

from __future__ import annotations

import datetime as dt
import random
import uuid
from collections import Counter, defaultdict
from typing import Any

from testkit.seed import event_row

APP, OTHER = "admin-console", "billing-admin"
DAYS = 4


def base_day() -> dt.datetime:
    today = dt.datetime.now(dt.UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    return today - dt.timedelta(days=12)


def journey_rows(base: dt.datetime) -> list[tuple]:
    end = base + dt.timedelta(days=DAYS)
    s = dt.timedelta(seconds=1)
    rows: list[tuple] = []

    def add(at: dt.datetime, kind: str, session: str | None, person: str, app: str = APP, **fields: Any) -> None:
        rows.append(event_row(at, app, kind, person=person, session_id=session, **fields))

    midnight = base + dt.timedelta(days=2)
    add(midnight - 10 * s, "view", "s-midnight", "cat", route="/a")
    add(midnight + 10 * s, "click", "s-midnight", "cat", route="/b")
    tie = base + dt.timedelta(days=1, hours=9)
    add(tie, "export", "s-tie", "dan", id=uuid.UUID(int=1 << 120), route="/x")
    add(tie, "view", "s-tie", "dan", id=uuid.UUID(int=2 << 120), route="/x")
    add(tie, "search", "s-tie", "dan", id=uuid.UUID(int=3 << 120), route="/y")
    t = base + dt.timedelta(days=1, hours=11)
    for offset, kind in ((0, "view"), (5, "view"), (9, "click")):
        add(t + offset * s, kind, "s-chain", "eve", route="/orders")
    add(base + dt.timedelta(days=3, hours=8), "view", "s-exit", "fay")
    add(end - 60 * s, "view", "s-after", "gus", route="/late")
    add(end + dt.timedelta(hours=1), "export", "s-after", "gus", route="/later")
    t = base + dt.timedelta(days=2, hours=15)
    add(t, "view", "s-other-app", "hal")
    add(t + 3 * s, "click", "s-other-app", "hal", app=OTHER, route="/billing")
    add(base - 30 * s, "view", "s-before", "ida")
    add(base + 30 * s, "view", "s-before", "ida", route="/first")
    for hour in (9, 10, 14):
        add(base + dt.timedelta(days=1, hours=hour), "view", None, "nosession")
        add(base + dt.timedelta(days=1, hours=hour, seconds=2), "click", None, "nosession")

    rng = random.Random(14)
    for n in range(120):
        person = f"p{n % 30}"
        session = f"s-r{n}"
        at = base + dt.timedelta(days=rng.randrange(DAYS), hours=rng.uniform(7, 20))
        for _ in range(rng.randrange(1, 7)):
            kind = rng.choice(["view", "view", "click", "search", "export"])
            add(at, kind, session, person, route=rng.choice([None, "/orders", "/orders/:id", "/customers"]))
            at += dt.timedelta(seconds=rng.randrange(1, 600))
    return rows


def recount_next(rows: list[Any], event_type: str, app: str, start: dt.datetime, end: dt.datetime) -> dict[str, Any]:
    """By the definitions of app/read/journeys.py: anchors, followed, exits, withoutSession,
    and Counters of next types and (type, route)."""
    sessions: dict[str, list[Any]] = defaultdict(list)
    for row in rows:
        if row["session_id"] is not None:
            sessions[row["session_id"]].append(row)
    for members in sessions.values():
        members.sort(key=lambda r: (r["created_at"], r["id"]))
    out: dict[str, Any] = {
        "anchors": 0,
        "followed": 0,
        "exits": 0,
        "without": 0,
        "types": Counter(),
        "pairs": Counter(),
    }
    for row in rows:
        if row["event_type"] != event_type or row["app_name"] != app or not start <= row["created_at"] < end:
            continue
        out["anchors"] += 1
        if row["session_id"] is None:
            out["without"] += 1
            continue
        out["followed"] += 1
        members = sessions[row["session_id"]]
        position = next(i for i, r in enumerate(members) if r["id"] == row["id"])
        if position + 1 == len(members):
            out["exits"] += 1
        else:
            following = members[position + 1]
            out["types"][following["event_type"]] += 1
            out["pairs"][(following["event_type"], following["route"])] += 1
    return out


def top_types(counter: Counter[str], top: int) -> list[tuple[str, int]]:
    return sorted(counter.items(), key=lambda item: (-item[1], item[0]))[:top]


def top_pairs(counter: Counter[tuple[str, str | None]], top: int) -> list[tuple[str, str | None, int]]:
    ordered = sorted(counter.items(), key=lambda item: (-item[1], item[0][0], item[0][1] is None, item[0][1] or ""))
    return [(kind, route, n) for (kind, route), n in ordered[:top]]
