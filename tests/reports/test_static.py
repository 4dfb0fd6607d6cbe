"""`signals report` (the real command, in a subprocess) writes one HTML file; headless
Chromium opens it with networking disabled and shows the GraphQL API's numbers for the same
days (`eventStats` DAY buckets and EVENT_TYPE totals), with no request leaving the file.
`SIGNALS_REPORT_SCREENSHOT=docs/report.png` also writes the README's screenshot."""

from __future__ import annotations

import asyncio
import datetime as dt
import os
import sys
from pathlib import Path

from app.config import PROJECT_ROOT, Settings
from testkit.browser import run_script
from testkit.http import asgi_client, gql
from testkit.reports import APP, PREVIOUS, WEEK, drops_recount
from testkit.settings import TEST_JWT_SECRET, TEST_SALT_SECRET
from testkit.tokens import token

DAYS = """query($f: EventFilter!) {
  eventStats(filter: $f, interval: DAY) { buckets { start events distinctUsers } totals { events summedDailyUsers } }
  byType: eventStats(filter: $f, groupBy: [EVENT_TYPE], interval: DAY) {
    totals(top: 100) { group { value } events summedDailyUsers } }
}"""


async def signals(url: str, *args: str) -> str:
    env = {
        "PATH": os.environ.get("PATH", ""),
        "HOME": os.environ.get("HOME", "/tmp"),
        "DATABASE_URL": url,
        "SIGNALS_SALT_SECRET": TEST_SALT_SECRET,
        "SIGNALS_JWT_SECRET": TEST_JWT_SECRET,
        "SIGNALS_LOG_LEVEL": "WARNING",
    }
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "app.cli",
        *args,
        cwd=PROJECT_ROOT,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(process.communicate(), 60)
    assert process.returncode == 0, err.decode()
    return out.decode()


async def test_static_report_offline_shows_the_apis_numbers(
    seeded_rows: list[tuple], report_db: str, report_settings: Settings, tmp_path: Path
) -> None:
    first, last_day = PREVIOUS[0].date(), WEEK[1].date() - dt.timedelta(days=1)  # UTC days, inclusive
    out = tmp_path / "report.html"
    printed = await signals(
        report_db, "report", "--app", APP, "--from", first.isoformat(), "--to", last_day.isoformat(), "--out", str(out)
    )
    assert printed.startswith(f"report: wrote {out}")
    html = out.read_text()
    assert "http://" not in html.replace('xmlns="http://www.w3.org/2000/svg"', "") and "https://" not in html
    assert "<link" not in html and " src=" not in html

    window = {"appName": APP, "from": PREVIOUS[0].isoformat(), "to": WEEK[1].isoformat()}
    async with asgi_client(report_settings) as client:
        body = await gql(client, DAYS, {"f": window}, {"authorization": f"Bearer {token(roles=['admin'])}"})
    assert "errors" not in body, body
    api = body["data"]

    docs = os.environ.get("SIGNALS_REPORT_SCREENSHOT")
    shown = await run_script("report.mjs", str(out), **({"docs": str(Path(docs).resolve())} if docs else {}))
    assert shown["errors"] == [] and shown["requests"] == []
    total = api["eventStats"]["totals"][0]
    assert (shown["events"], shown["summedDailyUsers"]) == (total["events"], total["summedDailyUsers"])
    per_day = {b["start"][:10]: [str(b["events"]), str(b["distinctUsers"])] for b in api["eventStats"]["buckets"]}
    assert {row[0]: row[1:] for row in shown["days"] if row[1] != "0"} == per_day
    assert len(shown["days"]) == 14 and shown["bars"] == 14
    by_type = [[t["group"][0]["value"], str(t["events"]), str(t["summedDailyUsers"])] for t in api["byType"]["totals"]]
    assert shown["types"] == by_type
    assert shown["drops"] == [[k, str(v)] for k, v in sorted(drops_recount(APP, PREVIOUS[0], WEEK[1]).items())]
    assert shown["data"]["events"] == total["events"]
    for row in seeded_rows:
        assert row[7] not in html  # no user hash


async def test_digest_print_from_the_command_line(seeded_rows: list[tuple], report_db: str) -> None:
    printed = await signals(
        report_db, "digest", "--app", APP, "--period", "week", "--now", "2026-03-18T09:30:00Z", "--print"
    )
    week = [r for r in seeded_rows if r[2] == APP and WEEK[0] <= r[1] < WEEK[1]]
    assert f"Events: {len(week)} (" in printed
    assert f"Summed daily users (not people): {len({(r[1].date(), r[7]) for r in week})} (" in printed
    alerts = await signals(report_db, "alerts", "--print", "--now", "2026-03-18T09:30:00Z")
    assert alerts.strip() == "no alerts"
