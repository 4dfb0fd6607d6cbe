"""The dashboard's insight tabs (properties, adoption, funnel) and the period comparison, in
headless Chromium against the real service and seeded rows.

Rows are seeded with SQL (testkit.seed: 28 UTC days, so the 14-day window has a previous period,
with `lang` and `durationMs` in `description`); `node tests/e2e/browser/insights.mjs` drives the
page and reports its tables, chart marks, downloaded CSVs and URLs. Every number shown is
compared with the GraphQL API's answer to the same inputs, asked here. Set
SIGNALS_DOCS_SCREENSHOTS=docs to also write the README pictures from this run.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import os
import random
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

from testkit.browser import ARTIFACTS, run_script
from testkit.database import migrated_database
from testkit.http import graphql_post
from testkit.seed import event_row, insert_rows
from testkit.servers import LiveServer
from testkit.settings import make_settings
from testkit.tokens import token

APP = "admin-console"
OTHER_APP = "billing-admin"
DAYS = 14
LANGS = ["de", "en", "fr", "nl"]
DEVICES = ["desktop", "mobile", "tablet"]


def seed(last_day: dt.date) -> list[tuple[Any, ...]]:
    """Sessions that view, sometimes search, sometimes export (in that order, or not), with a
    language and a duration in the description; 28 days so the window has a previous period."""
    rng = random.Random(20261202)
    rows = []
    for offset in range(2 * DAYS):
        day = last_day - dt.timedelta(days=offset)
        midnight = dt.datetime.combine(day, dt.time(8), tzinfo=dt.UTC)
        for app, people in ((APP, rng.randint(5, 12)), (OTHER_APP, 3)):
            for p in range(people):
                person = f"{app}-{p}"
                device = rng.choice(DEVICES)
                for _ in range(rng.randint(1, 2)):
                    session = str(uuid.uuid4())
                    at = midnight + dt.timedelta(minutes=rng.randint(0, 600))
                    chain = ["view", *rng.sample(["view", "search", "export", "search"], rng.randint(0, 4))]
                    for event_type in chain:
                        at += dt.timedelta(seconds=rng.randint(5, 2400))
                        description: dict[str, Any] = {"durationMs": rng.randint(50, 5000)}
                        if rng.random() < 0.85:
                            description["lang"] = rng.choice(LANGS)
                        rows.append(
                            event_row(
                                at,
                                app,
                                event_type,
                                person=person,
                                session_id=session,
                                device_type=device,
                                description=json.dumps(description),
                            )
                        )
    return rows


@pytest.fixture(scope="module")
async def live(pg_server: str, tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[tuple[LiveServer, dt.date]]:
    last_day = dt.datetime.now(dt.UTC).date() - dt.timedelta(days=1)
    async with migrated_database(pg_server) as url:
        await insert_rows(url, seed(last_day))
        server = await LiveServer(make_settings(url, tmp_path_factory.mktemp("insights"))).start()
        try:
            yield server, last_day
        finally:
            await server.stop()


def admin_token() -> str:
    return token(roles=["admin"], subject="dashboard-admin")


def csv_rows(download: dict[str, str]) -> list[list[str]]:
    return list(csv.reader(io.StringIO(download["text"])))


def same(shown: str, api: float | int | None) -> bool:
    """A shown/downloaded value against the API's: empty for null, else the same number."""
    if api is None:
        return shown in ("", "\u2013")  # an empty CSV field, or the page's dash
    return float(shown) == float(api)


async def api(live: LiveServer, query: str, variables: dict[str, Any]) -> dict[str, Any]:
    return await graphql_post(live.url, query, variables, admin_token())


async def test_insight_tabs_show_and_download_the_apis_numbers_and_keep_the_view_in_the_url(
    live: tuple[LiveServer, dt.date],
) -> None:
    server, last_day = live
    first_day = last_day - dt.timedelta(days=DAYS - 1)
    window = {"appName": APP, "from": f"{first_day}T00:00:00Z", "to": f"{last_day + dt.timedelta(days=1)}T00:00:00Z"}
    days = [(first_day + dt.timedelta(days=i)).isoformat() for i in range(DAYS)]
    docs = os.environ.get("SIGNALS_DOCS_SCREENSHOTS")
    extra = {"docs": str(Path(docs).resolve())} if docs else {}
    admin = admin_token()
    shown = await run_script(
        "insights.mjs",
        "all",
        server.url,
        admin,
        app=APP,
        shots=str(ARTIFACTS),
        ptype="view",
        sprop="lang",
        nprop="durationMs",
        atypes="export,search",
        aprop="lang=de",
        steps="view,search,export",
        count="USER_DAY",
        within="3600",
        fby="DEVICE_TYPE",
        **{"from": first_day.isoformat(), "to": last_day.isoformat()},
        **extra,
    )
    assert shown["errors"] == [] and shown["consoleErrors"] == []

    # --- properties: the catalogue, the breakdown of `lang`, the numbers of `durationMs`
    views = {**window, "eventTypes": ["view"]}
    answer = await api(
        server,
        """query($f: EventFilter!) {
          propertyCatalogue(filter: $f, limit: 200) { keys { path } }
          lang: propertyBreakdown(property: "lang", filter: $f, top: 20) {
            values { kind label events summedDailyUsers } }
          duration: propertyAggregates(property: "durationMs", filter: $f, interval: DAY) {
            buckets { start count avg p50 p95 } }
        }""",
        {"f": views},
    )
    assert shown["catalogue"] == [k["path"] for k in answer["propertyCatalogue"]["keys"]]
    api_values = [
        [v["label"], v["kind"], str(v["events"]), str(v["summedDailyUsers"])] for v in answer["lang"]["values"]
    ]
    assert shown["values"]["rows"] == api_values
    assert len(api_values) > 2  # the seeded languages, (none): not a vacuous comparison
    assert shown["valueBars"] == [[v["label"], v["events"]] for v in answer["lang"]["values"]]
    assert shown["valuesCsv"]["name"] == "property-lang-values.csv"
    assert csv_rows(shown["valuesCsv"]) == [shown["values"]["head"], *api_values]
    buckets = answer["duration"]["buckets"]
    assert len(shown["numbers"]["rows"]) == len(buckets) > 0
    for shown_rows in (shown["numbers"]["rows"], csv_rows(shown["numbersCsv"])[1:]):
        for row, bucket in zip(shown_rows, buckets, strict=True):
            assert row[0] == bucket["start"][:10]
            assert [float(x) for x in row[1:]] == [bucket[k] for k in ("count", "avg", "p50", "p95")]
    assert shown["numberLines"] == 3  # avg, p50, p95

    # --- adoption of export and search among users with lang=de events
    adoption = {}
    for event_type in ("export", "search"):
        target = {"eventTypes": [event_type], "properties": [{"path": "lang", "op": "EQ", "value": "de"}]}
        adoption[event_type] = (
            await api(
                server,
                """query($p: EventFilter!, $t: EventFilter!) { adoption(population: $p, target: $t) {
                  days { day activeUsers targetUsers userRate }
                  totals { summedDailyActiveUsers summedDailyTargetUsers userRate } } }""",
                {"p": window, "t": target},
            )
        )["adoption"]
    table = shown["adoption"]["rows"]
    assert [row[0] for row in table[:-1]] == days == [d["day"] for d in adoption["export"]["days"]]
    for shown_rows in (table, csv_rows(shown["adoptionCsv"])[1:]):
        for i, row in enumerate(shown_rows[:-1]):
            assert int(row[1]) == adoption["export"]["days"][i]["activeUsers"]
            for j, event_type in enumerate(("export", "search")):
                day = adoption[event_type]["days"][i]
                assert int(row[2 + 2 * j]) == day["targetUsers"] and same(row[3 + 2 * j], day["userRate"])
        totals = shown_rows[-1]
        assert int(totals[1]) == adoption["export"]["totals"]["summedDailyActiveUsers"]
        assert int(totals[2]) == adoption["export"]["totals"]["summedDailyTargetUsers"]
        assert same(totals[5], adoption["search"]["totals"]["userRate"])
    # the lines are the daily shares in %, the absolute numbers in each dot's hover text
    dots = {(d["series"], d["day"]): d for d in shown["adoptionDots"]}
    for event_type in ("export", "search"):
        for day in adoption[event_type]["days"]:
            if day["userRate"] is None:
                continue
            dot = dots[(event_type, day["day"])]
            assert dot["value"] == pytest.approx(day["userRate"] * 100)
            assert f"{day['targetUsers']} of {day['activeUsers']} active users" in dot["title"]

    # --- the funnel built with the controls (per user-day, within an hour, by device)
    assert shown["reordered"] == ["search", "view", "export"]
    funnel = (
        await api(
            server,
            """query($f: EventFilter!, $s: [EventFilter!]!) {
              funnel(filter: $f, steps: $s, countBy: USER_DAY, within: 3600, breakdown: DEVICE_TYPE, breakdownTop: 10) {
                steps { step entered converted dropped conversionFromStart conversionFromPrevious
                        medianSecondsFromPrevious medianSecondsFromStart }
                groups { value steps { step entered conversionFromStart } } } }""",
            {"f": window, "s": [{"eventTypes": [t]} for t in ("view", "search", "export")]},
        )
    )["funnel"]
    assert funnel["steps"][-1]["entered"] > 0 and len(funnel["groups"]) > 1
    keys = [
        "entered",
        "converted",
        "dropped",
        "conversionFromStart",
        "conversionFromPrevious",
        "medianSecondsFromPrevious",
        "medianSecondsFromStart",
    ]
    for shown_rows in (shown["funnel"]["rows"], csv_rows(shown["funnelCsv"])[1:]):
        assert len(shown_rows) == 3
        for row, step, event_type in zip(shown_rows, funnel["steps"], ("view", "search", "export"), strict=True):
            assert int(row[0]) == step["step"] and row[1] == event_type
            assert all(same(cell, step[key]) for cell, key in zip(row[2:], keys, strict=True)), (row, step)
    assert shown["funnelBars"] == [s["entered"] for s in funnel["steps"]]
    groups = [[g["value"], *[str(s["entered"]) for s in g["steps"]]] for g in funnel["groups"]]
    assert [row[:4] for row in shown["funnelGroups"]["rows"]] == groups
    assert [row[:4] for row in csv_rows(shown["funnelGroupsCsv"])[1:]] == groups
    assert shown["funnelAfterReload"] == shown["funnel"]
    assert shown["stepsAfterReload"] == ["view", "search", "export"] and shown["tabAfterReload"] == "funnel"
    assert shown["keyboardTab"] == {"selected": "tab-adoption", "focused": "tab-adoption"}

    # --- the comparison with the previous 14 days
    stats = (
        await api(
            server,
            """query($f: EventFilter!) { eventStats(filter: $f, interval: DAY, compareTo: PREVIOUS_PERIOD) {
              buckets { start events }
              comparison { from buckets { start events }
                deltas { events { ...D } summedDailyUsers { ...D } distinctSessions { ...D } } } } }
            fragment D on StatsDelta { previous current absolute relative }""",
            {"f": window},
        )
    )["eventStats"]
    deltas = stats["comparison"]["deltas"]
    for node, key in (("d-events", "events"), ("d-users", "summedDailyUsers"), ("d-sessions", "distinctSessions")):
        delta, card = deltas[key], shown["deltas"][node]
        assert card["previous"] == delta["previous"] and card["absolute"] == delta["absolute"]
        assert card["relative"] == pytest.approx(delta["relative"])
        sign = "+" if delta["absolute"] > 0 else "\u2212" if delta["absolute"] < 0 else "\u00b1"  # the page's signs
        change = f"{sign}{abs(delta['absolute']):,} ({sign}{abs(delta['relative']) * 100:.1f}%)"
        assert card["text"].startswith(change)
    previous_from = dt.datetime.fromisoformat(stats["comparison"]["from"].replace("Z", "+00:00"))
    previous = {
        days[(dt.datetime.fromisoformat(b["start"].replace("Z", "+00:00")) - previous_from).days]: b["events"]
        for b in stats["comparison"]["buckets"]
    }
    assert len(previous) == DAYS  # the seeded previous fortnight has events every day
    assert dict(shown["prevBars"]) == previous
    assert shown["prevDots"] > 0
    current = {b["start"][:10]: b["events"] for b in stats["buckets"]}
    for shown_rows in (shown["eventsTable"]["rows"], csv_rows(shown["eventsCsv"])[1:]):
        assert {row[0]: (int(row[1]), int(row[-1])) for row in shown_rows} == {
            d: (current.get(d, 0), previous.get(d, 0)) for d in days
        }

    # --- the URL keeps each view, never the token; the token stays in sessionStorage
    for name, url in shown["urls"].items():
        assert admin not in url and "token" not in url, name
    q = {name: parse_qs(urlsplit(url).query) for name, url in shown["urls"].items()}
    assert q["properties"]["tab"] == ["properties"] and q["properties"]["prop"] == ["durationMs"]
    assert q["adoption"]["atypes"] == ["export,search"] and q["adoption"]["aprop"] == ["lang=de"]
    assert q["funnel"]["steps"] == ["view,search,export"] and q["funnel"]["within"] == ["3600"]
    assert (
        q["funnel"]["count"] == ["USER_DAY"]
        and q["funnel"]["fby"] == ["DEVICE_TYPE"]
        and q["compare"]["compare"] == ["previous"]
    )
    assert shown["storedToken"] is True
    # phone width: nothing sticks out sideways on any view
    assert all(overflow <= 0 for overflow in shown["phone"].values()), shown["phone"]
