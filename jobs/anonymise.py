"""Closed-day anonymisation: re-key each closed UTC day's userHash with a forgotten key.

For every closed day not yet done, one transaction rewrites each row's
`user_hash = hex(HMAC_SHA256(k, user_hash))` with a fresh random 32-byte key `k` that is
never stored or logged, and records the day in `anonymised_days`. Within a day the map
old -> new is one-to-one, so distinct counts per day (and per day and app, route, ...)
are unchanged; but nobody, not even a holder of the salt secret and of a person's
host/IP/UA, can recompute the stored hashes any more. The HMAC runs in SQL from the
key's inner/outer pads with PostgreSQL's built-in `sha256()`: no extension needed.

Closed-day rule: day D is closed once `now() >= D+1 00:00 UTC + grace` (grace:
SIGNALS_ANONYMISE_GRACE_MINUTES, default 60), so rows that ingest writes a little late
for D (clock skew, a request straddling midnight) still get the same key. Today's rows
are never touched. A day is done in one transaction: a crash leaves it wholly as it
was, never half re-keyed, and the next run takes it again.

Late rows: if a done day later holds more rows than were re-keyed (a row arrived after
the grace period), the next run re-keys the whole day again with a new key, so no row
stays recomputable; a person seen on both sides of that cut then counts twice that day.
Runs look back `lookback_days` before the newest done day for this (`--all`: everything).
"""

from __future__ import annotations

import datetime as dt
import secrets
import time
from dataclasses import asdict, dataclass, field

import asyncpg

from app.storage.answers import forget_days
from jobs.locking import ANONYMISE_LOCK_KEY, locked_connection

BLOCK = 64  # SHA-256 block size in bytes

# HMAC_SHA256(k, m) = sha256((k ^ opad) || sha256((k ^ ipad) || m)), RFC 2104
REKEY_DAY = """
UPDATE events
SET user_hash = encode(sha256($2::bytea || sha256($1::bytea || convert_to(user_hash, 'UTF8'))), 'hex')
WHERE created_at >= $3 AND created_at < $4
"""
RECORD_DAY = """
INSERT INTO anonymised_days (day, anonymised_at, rows) VALUES ($1, now(), $2)
ON CONFLICT (day) DO UPDATE SET anonymised_at = EXCLUDED.anonymised_at, rows = EXCLUDED.rows
"""
ROWS_PER_DAY = """
SELECT (created_at AT TIME ZONE 'UTC')::date AS day, count(*) AS rows
FROM events
WHERE created_at < $1 AND created_at >= $2
GROUP BY 1 ORDER BY 1
"""


def hmac_pads(key: bytes) -> tuple[bytes, bytes]:
    """(key ^ ipad, key ^ opad) for a key of at most one block."""
    assert len(key) <= BLOCK
    padded = key.ljust(BLOCK, b"\0")
    return bytes(b ^ 0x36 for b in padded), bytes(b ^ 0x5C for b in padded)


def day_bounds(day: dt.date) -> tuple[dt.datetime, dt.datetime]:
    start = dt.datetime.combine(day, dt.time(0), tzinfo=dt.UTC)
    return start, start + dt.timedelta(days=1)


def closed_before(now: dt.datetime, grace_minutes: int) -> dt.date:
    """The first day that is NOT closed at `now`: every earlier UTC day is closed."""
    return (now.astimezone(dt.UTC) - dt.timedelta(minutes=grace_minutes)).date()


@dataclass
class DayDone:
    day: dt.date
    rows: int
    reason: str  # "closed" (first time) or "late-rows" (re-keyed again)
    seconds: float = 0.0


@dataclass
class AnonymiseReport:
    dry_run: bool
    skipped: bool
    open_from: dt.date | None = None  # days from this one on are not closed yet
    days: list[DayDone] = field(default_factory=list)
    elapsed_seconds: float = 0.0

    @property
    def rows(self) -> int:
        return sum(d.rows for d in self.days)

    def as_dict(self) -> dict[str, object]:
        data = asdict(self)
        data["open_from"] = self.open_from.isoformat() if self.open_from else None
        data["days"] = [{**asdict(d), "day": d.day.isoformat()} for d in self.days]
        data["rows"] = self.rows
        return data

    def summary(self) -> str:
        if self.skipped:
            return "anonymise: skipped, another run holds the lock"
        verb = "would re-key" if self.dry_run else "re-keyed"
        late = sum(1 for d in self.days if d.reason == "late-rows")
        extra = f" ({late} again for late rows)" if late else ""
        mode = " (dry run)" if self.dry_run else ""
        return (
            f"anonymise{mode}: {verb} {self.rows} events in {len(self.days)} closed days{extra}; "
            f"days from {self.open_from} on are still open; {self.elapsed_seconds:.2f} s"
        )


async def run_anonymise(
    database_url: str,
    *,
    grace_minutes: int = 60,
    dry_run: bool = False,
    scan_all: bool = False,
    lookback_days: int = 7,
    now: dt.datetime | None = None,
) -> AnonymiseReport:
    started = time.perf_counter()
    report = AnonymiseReport(dry_run=dry_run, skipped=False)
    async with locked_connection(
        database_url, ANONYMISE_LOCK_KEY, needs=("events", "anonymised_days"), changes_events=not dry_run
    ) as conn:
        if conn is None:
            report.skipped = True
            return report
        now = now or await conn.fetchval("SELECT now()")
        report.open_from = closed_before(now, grace_minutes)
        done = {row["day"]: row["rows"] for row in await conn.fetch("SELECT day, rows FROM anonymised_days")}
        scan_from = dt.datetime.min.replace(tzinfo=dt.UTC)
        if done and not scan_all:
            scan_from = day_bounds(max(done) - dt.timedelta(days=lookback_days))[0]
        for row in await conn.fetch(ROWS_PER_DAY, day_bounds(report.open_from)[0], scan_from):
            day, rows = row["day"], row["rows"]
            if day not in done:
                report.days.append(DayDone(day, rows, "closed"))
            elif rows > done[day]:
                report.days.append(DayDone(day, rows, "late-rows"))
        if not dry_run:
            for todo in report.days:
                await _rekey_day(conn, todo)
    report.elapsed_seconds = time.perf_counter() - started
    return report


async def _rekey_day(conn: asyncpg.Connection, todo: DayDone) -> None:
    """Re-key one day and record it, atomically; the key lives only in this frame."""
    ipad, opad = hmac_pads(secrets.token_bytes(32))
    started = time.perf_counter()
    async with conn.transaction():
        status = await conn.execute(REKEY_DAY, ipad, opad, *day_bounds(todo.day))
        todo.rows = int(status.split()[-1])
        await conn.execute(RECORD_DAY, todo.day, todo.rows)
        if todo.reason == "late-rows":  # re-keyed twice: a person seen on both sides counts twice
            await forget_days(conn, [todo.day])
    todo.seconds = time.perf_counter() - started
    del ipad, opad
