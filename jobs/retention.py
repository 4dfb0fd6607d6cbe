"""Retention: delete events older than the retention window, in small transactions.

`run_retention` fixes one cutoff (`now() - retention_days` on the database clock), then
deletes expired rows `batch_size` at a time, each batch its own short transaction, until
a batch comes back short. Deleting takes row locks on expired rows only, which no writer
touches, so concurrent ingest is never blocked; the batch size bounds how long any one
transaction holds anything. Running it again deletes nothing new (idempotent), and an
advisory lock makes concurrent runs on several replicas skip instead of competing.
"""

from __future__ import annotations

import datetime as dt
import time
from dataclasses import asdict, dataclass

from app.storage.answers import forget_through
from jobs.locking import RETENTION_LOCK_KEY, locked_connection

DELETE_BATCH = """
DELETE FROM events
WHERE id IN (SELECT id FROM events WHERE created_at < $1 LIMIT $2)
"""


@dataclass
class RetentionReport:
    retention_days: int
    cutoff: dt.datetime | None
    dry_run: bool
    skipped: bool  # another session held the lock; nothing was done
    rows: int  # removed (or, in a dry run, that would be removed)
    batches: int
    elapsed_seconds: float
    longest_transaction_seconds: float  # the slowest single delete transaction, BEGIN to COMMIT

    def as_dict(self) -> dict[str, object]:
        data = asdict(self)
        data["cutoff"] = self.cutoff.isoformat() if self.cutoff else None
        return data

    def summary(self) -> str:
        if self.skipped:
            return "retention: skipped, another run holds the lock"
        window = f"older than {self.retention_days} days (before {self.cutoff:%Y-%m-%d %H:%M:%S} UTC)"
        if self.dry_run:
            return f"retention (dry run): {self.rows} events {window} would be removed; nothing deleted"
        return (
            f"retention: removed {self.rows} events {window} in {self.batches} batches, "
            f"{self.elapsed_seconds:.2f} s, longest delete transaction {self.longest_transaction_seconds:.3f} s"
        )


async def run_retention(
    database_url: str, *, retention_days: int, batch_size: int = 5000, dry_run: bool = False
) -> RetentionReport:
    started = time.perf_counter()
    report = RetentionReport(
        retention_days,
        None,
        dry_run,
        skipped=False,
        rows=0,
        batches=0,
        elapsed_seconds=0.0,
        longest_transaction_seconds=0.0,
    )
    async with locked_connection(database_url, RETENTION_LOCK_KEY, changes_events=not dry_run) as conn:
        if conn is None:
            report.skipped = True
            return report
        cutoff: dt.datetime = await conn.fetchval("SELECT now() - make_interval(days => $1)", retention_days)
        report.cutoff = cutoff.astimezone(dt.UTC)
        if dry_run:
            report.rows = await conn.fetchval("SELECT count(*) FROM events WHERE created_at < $1", cutoff)
        else:
            while True:
                batch_started = time.perf_counter()
                async with conn.transaction():
                    status = await conn.execute(DELETE_BATCH, cutoff, batch_size)
                report.longest_transaction_seconds = max(
                    report.longest_transaction_seconds, time.perf_counter() - batch_started
                )
                deleted = int(status.split()[-1])
                report.batches += 1
                report.rows += deleted
                if deleted < batch_size:
                    break
            # the cutoff's day lost rows, and every day before it: their stored answers go too
            await forget_through(conn, report.cutoff.date())
    report.elapsed_seconds = time.perf_counter() - started
    return report
