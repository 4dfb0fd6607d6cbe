"""What `signals serve` schedules: the due digests of every app (sent once however often the
schedule runs), and a delivery hanging on a dead SMTP server while trackEvent keeps
answering at once (delivery never runs on the ingest path)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

from sqlalchemy.ext.asyncio import AsyncEngine

from app.config import Settings
from app.reports.schedule import send_due_digests
from testkit.http import asgi_client, gql
from testkit.logs import production_log_lines
from testkit.receivers import webhook_receiver
from testkit.reports import NOW
from testkit.settings import make_settings
from testkit.tokens import token

CHROME = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36"
TRACK = "mutation($i: TrackEventInput!) { trackEvent(input: $i) { status } }"


async def test_due_digests_for_every_app_and_period_are_sent_once(
    seeded_rows: list[tuple], report_settings: Settings, engine: AsyncEngine, tmp_path: Path
) -> None:
    async with webhook_receiver() as (hook_url, hook):
        settings = make_settings(
            report_settings.database_url or "", tmp_path, webhook_url=hook_url, digest_schedule="day,week"
        )
        first = await send_due_digests(engine, settings, NOW)
        # the allowlisted apps (testkit settings) x (day, week)
        assert sorted((d.app, d.period) for d in first.digests if d.sent) == sorted(
            (app, period) for app in settings.allowed_apps for period in ("day", "week")
        )
        assert len(hook.posts) == 4
        again = await send_due_digests(engine, settings, NOW)
        assert all(d.already_sent == ["webhook"] for d in again.digests) and len(hook.posts) == 4


@contextlib.asynccontextmanager
async def silent_smtp() -> AsyncIterator[int]:
    """Accepts connections and never answers (a hung mail server)."""
    held: list[asyncio.StreamWriter] = []

    async def hold(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        held.append(writer)

    server = await asyncio.start_server(hold, "127.0.0.1", 0)
    try:
        yield server.sockets[0].getsockname()[1]
    finally:
        for writer in held:
            writer.close()
        server.close()
        await server.wait_closed()


async def test_a_hung_delivery_does_not_hold_up_track_event(
    seeded_rows: list[tuple], report_settings: Settings, engine: AsyncEngine, tmp_path: Path
) -> None:
    async with silent_smtp() as port:
        settings = make_settings(
            report_settings.database_url or "",
            tmp_path,
            smtp_host="127.0.0.1",
            smtp_port=port,
            smtp_starttls=False,
            smtp_to=["team@example.test"],
            smtp_timeout=3,
            delivery_attempts=2,
            delivery_backoff_seconds=0.01,
            digest_schedule="week",
            digest_apps="admin-console",
        )
        headers = {"authorization": f"Bearer {token(roles=['member'])}", "user-agent": CHROME}
        with production_log_lines() as logged:
            async with asgi_client(report_settings) as client:
                sending = asyncio.create_task(send_due_digests(engine, settings, NOW))
                await asyncio.sleep(0.2)  # the delivery is connected and waiting for a greeting
                took = []
                for _ in range(20):
                    started = time.perf_counter()
                    event = {"eventType": "click", "appName": "admin-console", "clientEventId": str(uuid.uuid4())}
                    body = await gql(client, TRACK, {"i": event}, headers)
                    took.append(time.perf_counter() - started)
                    assert body["data"]["trackEvent"]["status"] == "ACCEPTED"
                assert not sending.done()  # every trackEvent answered while the delivery hung
                report = await sending
        assert max(took) < 1.0, took
        assert report.digests[0].failed == ["email"]
        failures = [json.loads(line) for line in logged if '"delivery failed"' in line]
        assert [(f["channel"], f["error"]) for f in failures] == [("email", failures[0]["error"])]


async def test_serve_starts_the_report_schedules_only_when_asked(report_settings: Settings, tmp_path: Path) -> None:
    url = report_settings.database_url or ""
    for extra, expected in (
        ({}, []),
        ({"digest_schedule": "week", "alerts_interval_minutes": 5}, ["alerts", "digest"]),
    ):
        with production_log_lines() as logged:
            async with asgi_client(make_settings(url, tmp_path, **extra)):
                pass
        scheduled = sorted(json.loads(line)["job"] for line in logged if '"job scheduled"' in line)
        assert scheduled == expected
