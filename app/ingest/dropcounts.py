"""Drops by reason, kept for reports: counts per (UTC hour, app, reason) in `drop_counts`.

`trackEvent` only adds to an in-memory counter (a dict update, no I/O); a background task
flushes it every `SIGNALS_DROP_FLUSH_SECONDS` with one statement,

    INSERT ... SELECT FROM unnest(hours, apps, reasons, counts)
    ON CONFLICT (hour, app_name, reason) DO UPDATE SET count = drop_counts.count + excluded.count

so the cost is one round trip per interval whatever the traffic. When the database fails,
the counts are put back and retried at the next flush (bounded: past `MAX_KEYS` distinct
keys the oldest hours are given up, counted in the warning). The app is the operator's
listed name or "<unlisted>" (the pipeline decides), the reason a `DropReason` value, so
nothing a caller chooses is stored.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import datetime as dt

import asyncpg

from app.logs import OutageLog, get_logger

log = get_logger("signals.ingest")

MAX_KEYS = 50_000
UPSERT = (
    "INSERT INTO drop_counts (hour, app_name, reason, count) "
    "SELECT * FROM unnest($1::timestamptz[], $2::text[], $3::text[], $4::bigint[]) "
    "ON CONFLICT (hour, app_name, reason) DO UPDATE SET count = drop_counts.count + excluded.count"
)

Key = tuple[dt.datetime, str, str]


class DropCounter:
    """Counts drops in memory; `start()` flushes them to `drop_counts` every `interval` s."""

    def __init__(self, dsn: str, interval: float) -> None:
        self.dsn = dsn
        self.interval = interval
        self.counts: collections.Counter[Key] = collections.Counter()
        self._task: asyncio.Task[None] | None = None
        self._outage = OutageLog(log, "drop counts not saved; retrying", "drop counts saved again")

    def add(self, at: dt.datetime, app: str, reason: str, count: int = 1) -> None:
        hour = at.astimezone(dt.UTC).replace(minute=0, second=0, microsecond=0)
        self.counts[(hour, app, reason)] += count

    def start(self) -> None:
        if self._task is None and self.interval > 0:
            self._task = asyncio.create_task(self._run(), name="drop-counts")

    async def stop(self) -> None:
        """Stop the task and write what is counted (best effort)."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        await self.flush()

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self.interval)
            await self.flush()

    async def flush(self) -> None:
        if not self.counts:
            return
        taken, self.counts = self.counts, collections.Counter()
        keys = list(taken)
        try:
            conn = await asyncpg.connect(self.dsn, timeout=5, server_settings={"application_name": "signals-drops"})
            try:
                await conn.execute(
                    UPSERT,
                    [k[0] for k in keys],
                    [k[1] for k in keys],
                    [k[2] for k in keys],
                    [taken[k] for k in keys],
                )
            finally:
                await conn.close()
        except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError, TimeoutError) as exc:
            taken.update(self.counts)  # counted meanwhile
            lost = 0
            if len(taken) > MAX_KEYS:
                for key in sorted(taken)[: len(taken) - MAX_KEYS]:
                    lost += taken.pop(key)
            self.counts = taken
            self._outage.failed(exc, lost=lost)
            return
        self._outage.succeeded()
