"""The dashboard in a real browser against the real service and seeded rows.

Rows are seeded with SQL (fourteen UTC days, two apps, known users per day); the page is
driven by `node tests/e2e/browser/dashboard.mjs` in headless Chromium; what it shows is compared
with the seeded numbers AND with an `eventStats` call. Set SIGNALS_DOCS_SCREENSHOT=path to
also write the README screenshot from this run (scripts/screenshot-dashboard does).
"""

from __future__ import annotations

import collections
import datetime as dt
import hashlib
import json
import os
import random
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import asyncpg
import pytest

from app.storage.database import asyncpg_dsn
from testkit.browser import ARTIFACTS, run_script, start_script
from testkit.database import migrated_database
from testkit.http import graphql_post
from testkit.servers import LiveServer
from testkit.settings import make_settings
from testkit.tokens import token

APP = "admin-console"
OTHER_APP = "billing-admin"
DAYS = 14
ROUTES = ["/orders", "/orders/:id", "/customers", "/invoices", "/reports/revenue"]
TYPES = {"view": 6, "click": 4, "search": 2, "export": 1}  # relative frequencies
ENTITIES = [("order", "ord_1001"), ("order", "ord_1002"), ("customer", "cus_77"), ("invoice", "inv_5"), (None, None)]
DEVICES = [
    ("desktop", "Chrome", "Windows"),
    ("desktop", "Firefox", "Mac OS X"),
    ("mobile", "Mobile Safari", "iOS"),
    ("tablet", "Chrome Mobile", "Android"),
]

INSERT = """
INSERT INTO events (created_at, app_name, event_type, route, entity_type, entity_id, user_hash, session_id,
                    device_type, browser_family, os_family, client_event_id, description)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13::jsonb)
"""

STATS = """
query Stats($filter: EventFilter) {
  eventStats(filter: $filter, interval: DAY) {
    buckets { start events distinctUsers summedDailyUsers }
    totals { events summedDailyUsers distinctSessions }
  }
}"""


@dataclass
class Seeded:
    first_day: dt.date
    last_day: dt.date
    rows: list[tuple[Any, ...]] = field(default_factory=list)

    def of_app(self, app: str = APP) -> list[tuple[Any, ...]]:
        return [row for row in self.rows if row[1] == app]

    def events_per_day(self) -> dict[str, int]:
        counts = collections.Counter(row[0].date().isoformat() for row in self.of_app())
        return {day: counts.get(day, 0) for day in self.day_names()}

    def users_per_day(self) -> dict[str, int]:
        users = collections.defaultdict(set)
        for row in self.of_app():
            users[row[0].date().isoformat()].add(row[6])
        return {day: len(users.get(day, ())) for day in self.day_names()}

    def day_names(self) -> list[str]:
        return [
            (self.first_day + dt.timedelta(days=i)).isoformat()
            for i in range((self.last_day - self.first_day).days + 1)
        ]


def seed_rows(last_day: dt.date) -> Seeded:
    """Deterministic traffic: weekdays busier than weekends, users recurring across days
    (their hash differs per day, as the real daily salt makes it), a second app to filter out."""
    rng = random.Random(20261124)
    seeded = Seeded(first_day=last_day - dt.timedelta(days=DAYS - 1), last_day=last_day)
    for offset in range(DAYS):
        day = seeded.first_day + dt.timedelta(days=offset)
        midnight = dt.datetime.combine(day, dt.time(), tzinfo=dt.UTC)
        weekend = day.weekday() >= 5
        for app, scale in ((APP, 1.0), (OTHER_APP, 0.3)):
            people = max(1, int(rng.randint(4, 11) * scale * (0.5 if weekend else 1)))
            users = [hashlib.sha256(f"{app}|{day}|{i}".encode()).hexdigest() for i in range(people)]
            sessions = {u: [str(uuid.uuid4()) for _ in range(rng.randint(1, 2))] for u in users}
            devices = {u: rng.choice(DEVICES) for u in users}
            count = people + rng.randint(people, people * 6)
            authors = users + [rng.choice(users) for _ in range(count - people)]  # everyone at least once
            for user in authors:
                entity_type, entity_id = rng.choice(ENTITIES)
                device, browser, os_family = devices[user]
                seeded.rows.append(
                    (
                        midnight + dt.timedelta(seconds=rng.randint(6 * 3600, 22 * 3600)),
                        app,
                        rng.choices(list(TYPES), weights=list(TYPES.values()))[0],
                        rng.choice(ROUTES),
                        entity_type,
                        entity_id,
                        user,
                        rng.choice(sessions[user]),
                        device,
                        browser,
                        os_family,
                        str(uuid.uuid4()),
                        json.dumps({"seeded": True}),
                    )
                )
    return seeded


@pytest.fixture(scope="module")
async def seeded_db(pg_server: str) -> AsyncIterator[tuple[str, Seeded]]:
    seeded = seed_rows(dt.datetime.now(dt.UTC).date() - dt.timedelta(days=1))
    async with migrated_database(pg_server) as url:
        conn = await asyncpg.connect(asyncpg_dsn(url))
        try:
            await conn.executemany(INSERT, seeded.rows)
        finally:
            await conn.close()
        yield url, seeded


@pytest.fixture(scope="module")
async def live(seeded_db: tuple[str, Seeded], tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[LiveServer]:
    server = await LiveServer(make_settings(seeded_db[0], tmp_path_factory.mktemp("dashboard"))).start()
    try:
        yield server
    finally:
        await server.stop()


def admin_token() -> str:
    return token(roles=["admin"], subject="dashboard-admin")


def number(text: str) -> int:
    return int(text.replace(",", ""))


async def test_dashboard_shows_the_seeded_daily_totals_and_distinct_users(
    live: LiveServer, seeded_db: tuple[str, Seeded]
) -> None:
    _, seeded = seeded_db
    window = {"from": seeded.first_day.isoformat(), "to": seeded.last_day.isoformat()}
    docs = os.environ.get("SIGNALS_DOCS_SCREENSHOT")
    extra = {"docs": str(Path(docs).resolve())} if docs else {}
    shown = await run_script(
        "dashboard.mjs",
        "render",
        live.url,
        admin_token(),
        app=APP,
        by="EVENT_TYPE",
        shots=str(ARTIFACTS),
        **window,
        **extra,
    )
    assert shown["state"] == "ready", shown["message"]
    assert shown["errors"] == [] and shown["consoleErrors"] == []

    # What the API says for the same filter.
    api_filter = {
        "appName": APP,
        "from": f"{window['from']}T00:00:00Z",
        "to": f"{seeded.last_day + dt.timedelta(days=1)}T00:00:00Z",
    }
    stats = (await graphql_post(live.url, STATS, {"filter": api_filter}, admin_token()))["eventStats"]
    api_events = {b["start"][:10]: b["events"] for b in stats["buckets"]}
    api_users = {b["start"][:10]: b["distinctUsers"] for b in stats["buckets"]}

    expected_events = seeded.events_per_day()
    expected_users = seeded.users_per_day()
    assert shown["eventsPerDay"] == expected_events == api_events
    assert shown["usersPerDay"] == expected_users == api_users
    assert {row[0]: number(row[1]) for row in shown["usersTable"]} == expected_users
    assert {row[0]: number(row[-1]) for row in shown["eventsTable"]} == expected_events  # the stacked total

    # The cards: summed daily users is the sum of the daily counts, never called "people".
    assert number(shown["summary"]["events"]) == sum(expected_events.values()) == stats["totals"][0]["events"]
    assert (
        number(shown["summary"]["summedDailyUsers"])
        == sum(expected_users.values())
        == stats["totals"][0]["summedDailyUsers"]
    )
    assert (
        number(shown["summary"]["sessions"])
        == len({row[7] for row in seeded.of_app()})
        == stats["totals"][0]["distinctSessions"]
    )
    assert number(shown["summary"]["days"]) == DAYS
    assert "Summed daily users" in shown["summaryLabels"]
    assert not any("people" in label.lower() for label in shown["summaryLabels"])

    # The breakdown by event type matches the seeded rows of the chosen app only.
    per_type = collections.Counter(row[2] for row in seeded.of_app())
    assert {row[0]: number(row[1]) for row in shown["breakdown"]} == dict(per_type)
    assert set(shown["eventTypeChoices"]) == set(per_type)
    assert {APP, OTHER_APP} <= set(shown["appChoices"])
    bars = collections.Counter()
    for bar in shown["eventBars"]:
        bars[bar["series"]] += bar["value"]
    assert dict(bars) == dict(per_type)

    routes = collections.Counter(row[3] for row in seeded.of_app())
    assert {row[0]: number(row[1]) for row in shown["routes"]} == dict(routes)

    # Newest events first, one page of 25, more to load.
    newest = max(row[0] for row in seeded.of_app())
    assert len(shown["newest"]) == 25 and shown["moreButton"] is True
    assert shown["newest"][0][0] == newest.strftime("%Y-%m-%d %H:%M:%S")
    assert all(row[2] == APP for row in shown["newest"])

    # The token left the address bar and lives in this tab's sessionStorage.
    assert "token=" not in shown["url"] and shown["tokenStored"] is True
    # Phone width: nothing sticks out sideways, the charts shrink to fit.
    assert shown["phone"]["overflow"] <= 0 and 0 < shown["phone"]["chartWidth"] <= 390


async def test_sign_in_problems_send_the_admin_back_to_sign_in_with_a_reason(live: LiveServer) -> None:
    shown = await run_script(
        "dashboard.mjs",
        "signin",
        live.url,
        expired=token(roles=["admin"], subject="dashboard-admin", exp=int(dt.datetime.now(dt.UTC).timestamp()) - 3600),
        forged=token(roles=["admin"], subject="dashboard-admin", secret="not-the-service-secret-" * 3),
        member=token(roles=["member"], subject="dashboard-member"),
    )
    assert shown["errors"] == []
    assert "expired" in shown["expired"] and "Sign in again" in shown["expired"]
    assert "did not accept your token" in shown["forged"]
    assert "admin role" in shown["member"]
    # A refused token is forgotten, not retried.
    assert not (shown["expiredKept"] or shown["forgedKept"] or shown["memberKept"])


async def test_dashboard_says_so_when_the_api_goes_down(
    seeded_db: tuple[str, Seeded], tmp_path_factory: pytest.TempPathFactory
) -> None:
    _, seeded = seeded_db
    server = await LiveServer(make_settings(seeded_db[0], tmp_path_factory.mktemp("down"))).start()
    script = await start_script(
        "dashboard.mjs",
        "api-down",
        server.url,
        admin_token(),
        shots=str(ARTIFACTS),
        **{"from": seeded.first_day.isoformat(), "to": seeded.last_day.isoformat()},
    )
    try:
        assert (await script.read())["state"] == "ready"
    finally:
        await server.stop()  # really down: the port refuses connections now
    await script.send("go")
    shown = await script.read()
    await script.finish()
    assert shown["state"] == "error" and shown["errors"] == []
    assert "cannot be reached" in shown["banner"] and shown["retryVisible"]
    assert shown["dashboardVisible"] and shown["tokenStored"]  # still signed in, last data still shown
