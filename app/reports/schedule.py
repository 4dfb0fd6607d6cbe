"""What the opt-in schedules inside `signals serve` run (wired by app/cli/serve.py):
the digests of the last closed periods of every app, and an alert check. Running them
more often than needed is harmless: what was sent is recorded and not sent again."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from app.config import Settings
from app.reports.deliver import Deliveries
from app.reports.digest import Period, closed_period
from app.reports.sending import DigestReport, send_digest

DIGEST_CHECK_MINUTES = 15


async def digest_apps(engine: AsyncEngine, settings: Settings, period: Period, now: dt.datetime) -> list[str]:
    """SIGNALS_DIGEST_APPS, else SIGNALS_ALLOWED_APPS, else the apps with events in the period
    or the one before."""
    if settings.digest_apps or settings.allowed_apps:
        return list(settings.digest_apps or settings.allowed_apps)
    window = closed_period(period, now)
    async with engine.connect() as conn:
        rows = await conn.execute(
            text("SELECT DISTINCT app_name FROM events WHERE created_at >= :s AND created_at < :e ORDER BY 1"),
            {"s": window.previous.start, "e": window.end},
        )
        return [row.app_name for row in rows]


@dataclass
class DigestsReport:
    digests: list[DigestReport] = field(default_factory=list)

    def summary(self) -> str:
        return "; ".join(d.summary() for d in self.digests) or "no digests"

    def as_dict(self) -> dict[str, object]:
        return {"digests": [d.as_dict() for d in self.digests]}


async def send_due_digests(engine: AsyncEngine, settings: Settings, now: dt.datetime | None = None) -> DigestsReport:
    now = now or dt.datetime.now(dt.UTC)
    deliveries = Deliveries(settings)
    report = DigestsReport()
    periods: list[Period] = [p for p in ("day", "week") if p in settings.digest_schedule]
    for period in periods:
        for app in await digest_apps(engine, settings, period, now):
            report.digests.append(await send_digest(engine, deliveries, app, period, now))
    return report
