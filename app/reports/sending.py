"""Sent once across replicas: a digest per (app, period, period start, channel).

The sender takes a PostgreSQL advisory lock (blocking, on a connection of its own) keyed by
the job, then reads the record of what was sent; a second replica running the same
schedule waits on the lock, then finds the record and sends nothing. The record is written
only after the channel took the message, so a failed delivery is tried again next time.
"""

from __future__ import annotations

import contextlib
import datetime as dt
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from app.reports.deliver import Deliveries
from app.reports.digest import Period, build_digest
from app.reports.render import Message, render_digest

DIGEST_LOCK_KEY = 0x5349_474E_0010  # "SIGN" + 16; see jobs/locking.py for the other keys
ALERTS_LOCK_KEY = 0x5349_474E_0011


@contextlib.asynccontextmanager
async def advisory_lock(engine: AsyncEngine, key: int) -> AsyncIterator[AsyncConnection]:
    """A connection holding session advisory lock `key` (waits for another holder)."""
    async with engine.connect() as conn:
        await conn.execute(text("SELECT pg_advisory_lock(:k)"), {"k": key})
        await conn.commit()
        try:
            yield conn
        finally:
            await conn.rollback()
            await conn.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": key})
            await conn.commit()


@dataclass
class DigestReport:
    app: str
    period: str
    period_start: str
    sent: list[str] = field(default_factory=list)
    already_sent: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)

    def summary(self) -> str:
        return (
            f"digest {self.app} {self.period} {self.period_start}: sent {self.sent or 'none'}, "
            f"already sent {self.already_sent or 'none'}, failed {self.failed or 'none'}"
        )

    def as_dict(self) -> dict[str, object]:
        return dict(self.__dict__)


async def digest_message(
    engine: AsyncEngine, app: str, period: Period, now: dt.datetime, dashboard_url: str | None
) -> tuple[Message, dt.datetime]:
    async with engine.connect() as conn:
        digest = await build_digest(conn, app, period, now)
    return render_digest(digest, dashboard_url), digest.window.start


async def send_digest(
    engine: AsyncEngine, deliveries: Deliveries, app: str, period: Period, now: dt.datetime
) -> DigestReport:
    message, start = await digest_message(engine, app, period, now, deliveries.settings.dashboard_url)
    report = DigestReport(app, period, start.isoformat())
    async with advisory_lock(engine, DIGEST_LOCK_KEY) as conn:
        for channel in deliveries.channels:
            key = {"app": app, "period": period, "start": start, "channel": channel}
            sent = await conn.scalar(
                text(
                    "SELECT 1 FROM digest_deliveries WHERE app_name = :app AND period = :period "
                    "AND period_start = :start AND channel = :channel"
                ),
                key,
            )
            await conn.commit()
            if sent:
                report.already_sent.append(channel)
            elif await deliveries.send(channel, message, message_kind="digest", app=app, period=period):
                await conn.execute(
                    text(
                        "INSERT INTO digest_deliveries (app_name, period, period_start, channel) "
                        "VALUES (:app, :period, :start, :channel) ON CONFLICT DO NOTHING"
                    ),
                    key,
                )
                await conn.commit()
                report.sent.append(channel)
            else:
                report.failed.append(channel)
    return report
