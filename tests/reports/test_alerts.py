"""Instrumentation alerts with a controllable clock: a steady event type goes silent, one
alert is sent (email and webhook), repeated checks send nothing, recovery sends one
message; two replicas checking at once send each message once; spikes and drop surges."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
from pathlib import Path
from typing import Any

from sqlalchemy.ext.asyncio import AsyncEngine

from app.config import Settings
from app.reports.alerts import check_alerts, find_conditions
from app.reports.deliver import Deliveries
from app.storage.database import create_engine
from testkit.database import fetch
from testkit.receivers import SMTP_PASSWORD, SMTP_USER, MailBox, smtp_receiver, webhook_receiver
from testkit.reports import insert_drops
from testkit.seed import event_row, insert_rows
from testkit.settings import make_settings

UTC = dt.UTC
APP = "admin-console"
CHECK_AT = dt.datetime(2026, 3, 18, 12, 10, tzinfo=UTC)  # window: 09:00 to 12:00
SILENT_FROM = dt.datetime(2026, 3, 18, 9, tzinfo=UTC)


def hourly(event_type: str, start: dt.datetime, end: dt.datetime, per_hour: int = 2) -> list[tuple]:
    rows, at = [], start
    while at < end:
        rows += [
            event_row(at + dt.timedelta(seconds=420 + 3000 * i // per_hour), APP, event_type, person=f"p{i}")
            for i in range(per_hour)
        ]
        at += dt.timedelta(hours=1)
    return rows


def alert_settings(url: str, tmp_path: Path, port: int, hook_url: str) -> Settings:
    return make_settings(
        url,
        tmp_path,
        smtp_host="127.0.0.1",
        smtp_port=port,
        smtp_starttls=False,
        smtp_username=SMTP_USER,
        smtp_password=SMTP_PASSWORD,
        smtp_to=["oncall@example.test"],
        webhook_url=hook_url,
        alert_baseline_min_per_day=24,
        alert_window_hours=3,
        delivery_backoff_seconds=0.01,
    )


def subjects(box: MailBox) -> list[str]:
    return [str(m["Subject"]) for m in box.messages]


async def seed_silence(url: str) -> list[tuple]:
    baseline_from = SILENT_FROM - dt.timedelta(days=14)
    rows = hourly("click", baseline_from, SILENT_FROM) + hourly("view", baseline_from, CHECK_AT)
    await insert_rows(url, rows)
    return rows


async def test_a_silent_type_alerts_once_and_recovers_once(report_db: str, engine: AsyncEngine, tmp_path: Path) -> None:
    rows = await seed_silence(report_db)
    last_click = max(r[1] for r in rows if r[3] == "click")
    async with smtp_receiver() as (port, box), webhook_receiver() as (hook_url, hook):
        deliveries = Deliveries(alert_settings(report_db, tmp_path, port, hook_url))
        first = await check_alerts(engine, deliveries, CHECK_AT)
        assert first.opened == ["silent:admin-console:click"] and first.sent == 2
        assert subjects(box) == ["Signals alert: click went silent in admin-console"] and len(hook.posts) == 1
        text, html = box.parts()
        # what changed, since when, what to check; the same in the webhook's text
        assert "click in admin-console: no events in the last 3 closed hours" in text
        assert "2026-03-18 09:00 UTC to 2026-03-18 12:00 UTC" in text
        assert f"Since: {last_click.strftime('%Y-%m-%d %H:%M')} UTC." in text
        same_hours = sum(
            1 for r in rows if r[3] == "click" and (r[1] - SILENT_FROM).total_seconds() % (7 * 86400) < 3 * 3600
        )
        assert f"against {same_hours / 2:g} in the same hours" in text
        assert "What to check:" in text and "What to check:" in html
        assert hook.posts[0]["text"] == text and hook.posts[0]["blocks"][0]["type"] == "header"

        for minutes in (20, 40, 60):  # still silent: the incident is open, nothing more is sent
            again = await check_alerts(engine, deliveries, CHECK_AT + dt.timedelta(minutes=minutes))
            assert again.opened == [] and again.sent == 0 and again.open_incidents == 1
        assert len(box.messages) == 1 and len(hook.posts) == 1

        back = dt.datetime(2026, 3, 18, 12, tzinfo=UTC)
        await insert_rows(report_db, hourly("click", back, back + dt.timedelta(hours=3)))
        recovered = await check_alerts(engine, deliveries, back + dt.timedelta(hours=3, minutes=5))
        assert recovered.recovered == ["silent:admin-console:click"] and recovered.sent == 2
        assert subjects(box)[1] == "Signals recovered: click in admin-console is back to normal"
        assert len(hook.posts) == 2 and "no longer went silent" in hook.posts[1]["text"]
        later = await check_alerts(engine, deliveries, back + dt.timedelta(hours=3, minutes=25))
        assert later.sent == 0 and len(box.messages) == 2 and len(hook.posts) == 2
        incidents = await fetch(report_db, "SELECT notified_open, notified_recovery, recovered_at FROM alert_incidents")
        assert [(i["notified_open"], i["notified_recovery"], i["recovered_at"] is not None) for i in incidents] == [
            (True, True, True)
        ]
        everything = "".join(m.as_string() for m in box.messages) + json.dumps(hook.posts)
        assert not any(r[7] in everything for r in rows)  # no user hash in any alert


async def test_two_replicas_checking_at_once_send_each_message_once(
    report_db: str, engine: AsyncEngine, report_settings: Settings, tmp_path: Path
) -> None:
    await seed_silence(report_db)
    other = create_engine(report_db, report_settings)  # a second replica: its own pool
    try:
        async with smtp_receiver() as (port, box), webhook_receiver() as (hook_url, hook):
            settings = alert_settings(report_db, tmp_path, port, hook_url)
            runs = await asyncio.gather(
                check_alerts(engine, Deliveries(settings), CHECK_AT),
                check_alerts(other, Deliveries(settings), CHECK_AT),
            )
            assert sum(r.sent for r in runs) == 2 and len(box.messages) == 1 and len(hook.posts) == 1
            back = dt.datetime(2026, 3, 18, 12, tzinfo=UTC)
            await insert_rows(report_db, hourly("click", back, back + dt.timedelta(hours=3)))
            at = back + dt.timedelta(hours=3, minutes=5)
            runs = await asyncio.gather(
                check_alerts(engine, Deliveries(settings), at), check_alerts(other, Deliveries(settings), at)
            )
            assert sum(len(r.recovered) for r in runs) == 1 and len(box.messages) == 2 and len(hook.posts) == 2
    finally:
        await other.dispose()


async def test_spikes_and_drop_surges_are_found(
    report_db: str, engine: AsyncEngine, report_settings: Settings, tmp_path: Path
) -> None:
    start = SILENT_FROM - dt.timedelta(days=14)
    await insert_rows(
        report_db, hourly("view", start, SILENT_FROM) + hourly("view", SILENT_FROM, CHECK_AT, per_hour=20)
    )
    await insert_rows(report_db, hourly("click", start, CHECK_AT))
    drops: list[Any] = [(SILENT_FROM + dt.timedelta(hours=1), APP, "UNKNOWN_EVENT_TYPE", 40)]
    drops.append((SILENT_FROM - dt.timedelta(weeks=1), APP, "UNKNOWN_EVENT_TYPE", 1))
    await insert_drops(report_db, drops)
    settings = alert_settings(report_db, tmp_path, 1, "http://127.0.0.1:1/unused")
    async with engine.connect() as db:
        found = {c.key: c for c in await find_conditions(db, settings, CHECK_AT)}
    assert sorted(found) == ["drops:admin-console:UNKNOWN_EVENT_TYPE", "spike:admin-console:view"]
    assert "60 events in the last 3 closed hours" in found["spike:admin-console:view"].detail
    assert "10.0 times the 6" in found["spike:admin-console:view"].detail
    assert "40 events dropped as UNKNOWN_EVENT_TYPE" in found["drops:admin-console:UNKNOWN_EVENT_TYPE"].detail
    assert "against 0.5 in the same hours" in found["drops:admin-console:UNKNOWN_EVENT_TYPE"].detail


async def test_a_channel_that_failed_is_retried_alone_at_the_next_check(
    report_db: str, engine: AsyncEngine, tmp_path: Path
) -> None:
    await seed_silence(report_db)
    async with smtp_receiver() as (port, box), webhook_receiver() as (hook_url, hook):
        deliveries = Deliveries(alert_settings(report_db, tmp_path, port, hook_url))
        box.fail_next = 100  # the mail server is down for the whole first check
        first = await check_alerts(engine, deliveries, CHECK_AT)
        assert (first.sent, first.failed) == (1, 1) and len(hook.posts) == 1 and box.messages == []
        box.fail_next = 0
        second = await check_alerts(engine, deliveries, CHECK_AT + dt.timedelta(minutes=20))
        assert (second.sent, second.failed) == (1, 0)
        assert len(box.messages) == 1 and len(hook.posts) == 1  # the webhook is not sent twice
        third = await check_alerts(engine, deliveries, CHECK_AT + dt.timedelta(minutes=40))
        assert third.sent == 0 and len(box.messages) == 1 and len(hook.posts) == 1
