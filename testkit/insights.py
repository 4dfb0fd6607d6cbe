"""Seed rows for the insight tests (adoption, funnels): named edge cases plus random sessions
over several UTC days, in one app and a neighbour. The tests recount from these raw rows.

Edge cases (sessionId: what it shows), with steps view -> search -> export:
- s-repeat: step 1 repeated before and after step 2 (entry at the FIRST view, no restart);
- s-order: search before view, export after (out of order: reaches step 1 only);
- s-midnight: view 23:59:30, search and export after UTC midnight (one session; as
  user-days, two units with different hashes);
- no sessionId: view, search, export of person "nosession" (user-day funnels only);
- s-slow: export 4000 s after the view (outside `within` 3600);
- s-tie-before / s-tie-after: view and search at the same instant, ordered by id;
- s-early: a view before the window, the in-window chain starts at the later view;
- s-late: search after the window's end (not counted);
- s-mixed: search in the other app (not counted).
"""

from __future__ import annotations

import datetime as dt
import random
import uuid

from testkit.seed import event_row, user_hash

APP, OTHER = "admin-console", "billing-admin"
WINDOW_DAYS = 6


def base_day() -> dt.datetime:
    """Midnight UTC ten days ago: the window's days are closed and inside retention."""
    today = dt.datetime.now(dt.UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    return today - dt.timedelta(days=10)


def _at(base: dt.datetime, day: int, hours: float) -> dt.datetime:
    return base + dt.timedelta(days=day, hours=hours)


def edge_rows(base: dt.datetime) -> list[tuple]:
    end = base + dt.timedelta(days=WINDOW_DAYS)
    s = dt.timedelta(seconds=1)
    rows = []

    def add(at: dt.datetime, kind: str, session: str | None, person: str, app: str = APP, **fields: object) -> None:
        rows.append(event_row(at, app, kind, person=person, session_id=session, **fields))

    t = _at(base, 1, 9)
    for offset, kind in ((0, "view"), (10, "view"), (20, "search"), (30, "view"), (40, "export")):
        add(t + offset * s, kind, "s-repeat", "ann", route="/orders")
    t = _at(base, 1, 10)
    for offset, kind in ((0, "search"), (5, "view"), (10, "export")):
        add(t + offset * s, kind, "s-order", "bob")
    midnight = _at(base, 3, 0)
    add(midnight - 30 * s, "view", "s-midnight", "cat", device_type="mobile")
    add(midnight + 20 * s, "search", "s-midnight", "cat", device_type="mobile")
    add(midnight + 60 * s, "export", "s-midnight", "cat", device_type="mobile")
    t = _at(base, 2, 14)
    for offset, kind in ((0, "view"), (7, "search"), (70, "export")):
        add(t + offset * s, kind, None, "nosession")
    t = _at(base, 2, 15)
    for offset, kind in ((0, "view"), (100, "search"), (4000, "export")):
        add(t + offset * s, kind, "s-slow", "dan")
    t = _at(base, 4, 11)
    low, high = uuid.UUID(int=1), uuid.UUID(int=(1 << 128) - 1)
    rows.append(event_row(t, APP, "search", person="eve", session_id="s-tie-before", id=low))
    rows.append(event_row(t, APP, "view", person="eve", session_id="s-tie-before", id=high))
    rows.append(event_row(t, APP, "view", person="fay", session_id="s-tie-after", id=uuid.UUID(int=2)))
    rows.append(event_row(t, APP, "search", person="fay", session_id="s-tie-after", id=uuid.UUID(int=(1 << 128) - 2)))
    add(base - 3600 * s, "view", "s-early", "gus")
    for hours, kind in ((1, "search"), (2, "view"), (3, "search")):
        add(base + hours * 3600 * s, kind, "s-early", "gus")
    add(end - 60 * s, "view", "s-late", "hal")
    add(end + 60 * s, "search", "s-late", "hal")
    t = _at(base, 5, 16)
    add(t, "view", "s-mixed", "ivy")
    add(t + 5 * s, "search", "s-mixed", "ivy", app=OTHER)
    return rows


def random_rows(base: dt.datetime, seed: int = 14) -> list[tuple]:
    """Sessions of a few hours starting anywhere in the window (many cross a UTC midnight),
    a fifth of the events without a sessionId, and some in the other app."""
    rng = random.Random(seed)
    rows = []
    for number in range(70):
        person = f"p{rng.randrange(25)}"
        start = base + dt.timedelta(minutes=rng.randrange(-120, WINDOW_DAYS * 24 * 60 + 60))
        session = f"r-{number}"
        at = start
        for _ in range(rng.randrange(1, 12)):
            at += dt.timedelta(seconds=rng.choice([0, 1, 5, 30, 90, 600, 1800, 3600]))
            day = at.astimezone(dt.UTC).date()
            rows.append(
                event_row(
                    at,
                    APP if rng.random() < 0.9 else OTHER,
                    rng.choice(["view", "view", "search", "export", "click"]),
                    person=person,
                    session_id=None if rng.random() < 0.2 else session,
                    route=rng.choice([None, "/orders", "/customers"]),
                    entity_type=rng.choice([None, "order"]),
                    device_type=rng.choice(["desktop", "mobile"]),
                    browser_family=rng.choice(["Firefox", "Chrome", "Edge"]),
                    user_hash=user_hash(person, day),
                )
            )
    return rows


def insight_rows(base: dt.datetime) -> list[tuple]:
    return edge_rows(base) + random_rows(base)
