"""The digest delivered for real: an aiosmtpd SMTP server with AUTH and a local webhook
receiver take it; the numbers in both email parts and in the webhook payload are the
GraphQL API's (`eventStats` totals over the same window) and a Python recount of the raw
rows; sent once, also by two replicas at once; outages retried and logged once."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import re
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from app.config import Settings
from app.reports.deliver import Deliveries
from app.reports.sending import send_digest
from testkit.http import asgi_client, gql
from testkit.logs import production_log_lines
from testkit.receivers import SMTP_PASSWORD, SMTP_USER, smtp_receiver, webhook_receiver
from testkit.reports import APP, NOW, PREVIOUS, USER_HASH, WEEK, drops_recount, recount
from testkit.settings import make_settings
from testkit.tokens import token

STATS = """query($f: EventFilter!, $by: [StatsDimension!]) {
  eventStats(filter: $f, groupBy: $by, interval: WEEK) { totals(top: 100) { group { value } events summedDailyUsers } }
}"""


async def api_numbers(settings: Settings, start: dt.datetime, end: dt.datetime) -> dict[str, tuple[int, int]]:
    """event type -> (events, summedDailyUsers) and "" -> totals, as the GraphQL API answers."""
    headers = {"authorization": f"Bearer {token(roles=['admin'])}"}
    window = {"appName": APP, "from": start.isoformat(), "to": end.isoformat()}
    found: dict[str, tuple[int, int]] = {}
    async with asgi_client(settings) as client:
        for by in (["EVENT_TYPE"], []):
            body = await gql(client, STATS, {"f": window, "by": by}, headers)
            assert "errors" not in body, body
            for total in body["data"]["eventStats"]["totals"]:
                key = total["group"][0]["value"] if by else ""
                found[key] = (total["events"], total["summedDailyUsers"])
    return found


def channels_settings(settings: Settings, tmp_path: Path, smtp_port: int, hook_url: str, **more: Any) -> Settings:
    return make_settings(
        settings.database_url or "",
        tmp_path,
        smtp_host="127.0.0.1",
        smtp_port=smtp_port,
        smtp_starttls=False,  # loopback receiver without a certificate; AUTH is still required
        smtp_username=SMTP_USER,
        smtp_password=SMTP_PASSWORD,
        smtp_to=["team@example.test"],
        webhook_url=hook_url,
        dashboard_url="https://signals.example.test/dashboard/?token=should-not-survive#token=nor-this",
        delivery_backoff_seconds=0.01,
        **more,
    )


def numbers_in_text(text: str) -> dict[str, Any]:
    """What the plain text (or the webhook's `text`) says, parsed back."""
    events = int(re.search(r"^Events: (\d+) \(", text, re.M).group(1))  # type: ignore[union-attr]
    users = int(re.search(r"^Summed daily users \(not people\): (\d+) ", text, re.M).group(1))  # type: ignore[union-attr]
    sections: dict[str, list[list[str]]] = {}
    current = None
    for line in text.splitlines():
        if line.endswith(":") and not line.startswith(" "):
            current = sections.setdefault(line[:-1], [])
        elif line.startswith("  ") and current is not None and line.strip() != "none":
            current.append(line.strip().split("  "))
    return {"events": events, "users": users, "sections": sections}


def numbers_in_html(html: str) -> dict[str, Any]:
    events = int(re.search(r'data-number="events"><b>(\d+)</b>', html).group(1))  # type: ignore[union-attr]
    users = int(re.search(r'data-number="summed_daily_users"><b>(\d+)</b>', html).group(1))  # type: ignore[union-attr]
    cells = [re.findall(r"<td[^>]*>([^<]*)</td>", row) for row in re.findall(r"<tr>(.*?)</tr>", html, re.S)]
    return {"events": events, "users": users, "rows": cells}


async def test_digest_in_both_email_parts_and_the_webhook_has_the_apis_numbers(
    seeded_rows: list[tuple], report_settings: Settings, engine: AsyncEngine, tmp_path: Path
) -> None:
    api = await api_numbers(report_settings, *WEEK)
    api_before = await api_numbers(report_settings, *PREVIOUS)
    assert api == recount(seeded_rows, APP, *WEEK) and api_before == recount(seeded_rows, APP, *PREVIOUS)
    async with smtp_receiver() as (port, box), webhook_receiver() as (hook_url, hook):
        settings = channels_settings(report_settings, tmp_path, port, hook_url)
        with production_log_lines() as logged:
            report = await send_digest(engine, Deliveries(settings), APP, "week", NOW)
        assert sorted(report.sent) == ["email", "webhook"] and not report.failed
        assert len(box.messages) == 1 and len(hook.posts) == 1
        text, html = box.parts()
        payload = hook.posts[0]

        top = sorted((k for k in api if k), key=lambda k: (-api[k][0], k))[:5]
        changes = {k: api.get(k, (0, 0))[0] - api_before.get(k, (0, 0))[0] for k in api.keys() | api_before.keys()}
        expected_sections = {
            "Top features": [[k, str(api[k][0]), f"{api[k][1]} summed daily users"] for k in top],
            "Biggest movers up": [
                [k, f"{changes[k]:+d}", f"{api_before.get(k, (0, 0))[0]} → {api.get(k, (0, 0))[0]}"]
                for k in sorted((k for k in changes if k and changes[k] > 0), key=lambda k: (-changes[k], k))[:5]
            ],
            "Biggest movers down": [
                [k, f"{changes[k]:+d}", f"{api_before.get(k, (0, 0))[0]} → {api.get(k, (0, 0))[0]}"]
                for k in sorted((k for k in changes if k and changes[k] < 0), key=lambda k: (changes[k], k))[:5]
            ],
            # no event of these before the week / none in it, by the raw rows
            "Event types seen for the first time": [
                [k]
                for k in sorted(api)
                if k and not any(r[2] == APP and r[3] == k and r[1] < WEEK[0] for r in seeded_rows)
            ],
            "Event types gone silent": [[k] for k in sorted(api_before.keys() - api.keys())],
        }
        drops, drops_before = drops_recount(APP, *WEEK), drops_recount(APP, *PREVIOUS)
        expected_sections["Drops by reason"] = [
            [r, str(drops.get(r, 0)), f"previous {drops_before.get(r, 0)}"] for r in sorted(drops | drops_before)
        ]
        assert expected_sections["Event types seen for the first time"] == [["search"]]
        assert expected_sections["Event types gone silent"] == [["legacy"]]

        for said in (numbers_in_text(text), numbers_in_text(payload["text"])):
            assert (said["events"], said["users"]) == api[""]
            for heading, rows in expected_sections.items():
                assert said["sections"][heading] == rows, heading
        shown = numbers_in_html(html)
        assert (shown["events"], shown["users"]) == api[""]
        for rows in expected_sections.values():
            for row in rows:
                assert row in shown["rows"]
        blocks = json.dumps(payload["blocks"])
        assert f"*Events*\\n{api[''][0]} (" in blocks and f"(not people)*\\n{api[''][1]} (" in blocks
        for rows in expected_sections.values():
            for row in rows:
                assert json.dumps("  ".join(row))[1:-1] in blocks

        # privacy: no user hash, no token in any link, the webhook's secret path in no log line
        delivered = text + html + json.dumps(payload) + "".join(str(e.content) for e in box.envelopes)
        for row in seeded_rows:
            assert row[USER_HASH] not in delivered
        assert "should-not-survive" not in delivered and "nor-this" not in delivered
        assert "https://signals.example.test/dashboard/?app=admin-console&from=" in text
        assert logged and not any("secret-path-token" in line or SMTP_PASSWORD in line for line in logged)
        hashes = {row[USER_HASH] for row in seeded_rows}
        assert not any(h in line for line in logged for h in hashes)

        # sent once: the next run (any replica) finds the record
        again = await send_digest(engine, Deliveries(settings), APP, "week", NOW + dt.timedelta(hours=1))
        assert sorted(again.already_sent) == ["email", "webhook"] and not again.sent
        assert len(box.messages) == 1 and len(hook.posts) == 1


async def test_two_replicas_send_a_digest_once(
    seeded_rows: list[tuple], report_settings: Settings, engine: AsyncEngine, tmp_path: Path
) -> None:
    async with smtp_receiver() as (port, box), webhook_receiver() as (hook_url, hook):
        settings = channels_settings(report_settings, tmp_path, port, hook_url)
        # two concurrent runs on two connections: to PostgreSQL that is two replicas
        reports = await asyncio.gather(
            send_digest(engine, Deliveries(settings), APP, "day", NOW),
            send_digest(engine, Deliveries(settings), APP, "day", NOW),
        )
        assert sorted(c for r in reports for c in r.sent) == ["email", "webhook"]
        assert sorted(c for r in reports for c in r.already_sent) == ["email", "webhook"]
        assert len(box.messages) == 1 and len(hook.posts) == 1
        day = recount(
            seeded_rows, APP, dt.datetime(2026, 3, 17, tzinfo=dt.UTC), dt.datetime(2026, 3, 18, tzinfo=dt.UTC)
        )
        assert numbers_in_text(box.parts()[0])["events"] == day[""][0]


@pytest.mark.parametrize("outage", [2, 100])
async def test_outages_are_retried_and_logged_once(
    seeded_rows: list[tuple],
    report_settings: Settings,
    engine: AsyncEngine,
    tmp_path: Path,
    outage: int,
) -> None:
    async with smtp_receiver() as (port, box), webhook_receiver() as (hook_url, hook):
        settings = channels_settings(report_settings, tmp_path, port, hook_url, delivery_attempts=3)
        box.fail_next = hook.fail_next = outage
        with production_log_lines() as logged:
            report = await send_digest(engine, Deliveries(settings), APP, "week", NOW)
        failures = [json.loads(line) for line in logged if '"delivery failed"' in line]
        assert not any("secret-path-token" in line for line in logged)
        if outage < 3:  # back within the attempts: delivered, nothing logged
            assert sorted(report.sent) == ["email", "webhook"] and failures == []
            assert box.attempts == hook.attempts == outage + 1
        else:
            assert sorted(report.failed) == ["email", "webhook"] and not report.sent
            assert box.attempts == hook.attempts == 3
            assert sorted(f["channel"] for f in failures) == ["email", "webhook"]  # once each, not per attempt
            box.fail_next = hook.fail_next = 0  # the outage ends: not recorded as sent, so the next run sends
            later = await send_digest(engine, Deliveries(settings), APP, "week", NOW)
            assert sorted(later.sent) == ["email", "webhook"]
        assert len(box.messages) == len(hook.posts) == 1
