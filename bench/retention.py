"""Benchmark: retention of 1 million expired events while writers keep inserting.

Creates a throwaway database (on DATABASE_URL's server, or an embedded PostgreSQL),
fills it with expired rows (and some inside the window), then measures concurrent
single-row INSERTs twice in the same run: alone (the bare baseline), and while
`run_retention` deletes the expired rows. Prints the retention report and the writers'
throughput and latency during retention as ratios against the baseline.

    .venv/bin/python bench/retention.py [--rows 1000000] [--batch-size 5000] [--writers 4]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import asyncpg
from sqlalchemy.engine import make_url

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from app.storage.database import EmbeddedPostgres, asyncpg_dsn
from app.storage.migrations import migrate
from jobs.retention import run_retention
from testkit.database import create_database, drop_database

FILL = """
INSERT INTO events (created_at, app_name, event_type, user_hash, device_type, browser_family, os_family,
                    client_event_id)
SELECT now() - make_interval(days => $2) + (g::float8 * $3 / $1) * interval '1 second',
       'admin-console', 'click', md5(g::text) || md5((g + 1)::text), 'desktop', 'Firefox', 'Linux',
       $4 || g
FROM generate_series(1, $1) AS g
"""
WRITE = (
    "INSERT INTO events (app_name, event_type, user_hash, device_type, browser_family, os_family, client_event_id) "
    "VALUES ('admin-console', 'view', $1, 'desktop', 'Firefox', 'Linux', $2)"
)


@dataclass
class Writes:
    latencies: list[float] = field(default_factory=list)
    failures: int = 0
    seconds: float = 0.0

    @property
    def rate(self) -> float:
        return len(self.latencies) / self.seconds if self.seconds else 0.0

    def pct(self, q: float) -> float:
        ordered = sorted(self.latencies)
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000 if ordered else 0.0


async def writer(dsn: str, stop: asyncio.Event, out: Writes) -> None:
    conn = await asyncpg.connect(dsn)
    try:
        while not stop.is_set():
            started = time.perf_counter()
            try:
                await conn.execute(WRITE, uuid.uuid4().hex * 2, str(uuid.uuid4()))
                out.latencies.append(time.perf_counter() - started)
            except asyncpg.PostgresError:
                out.failures += 1
    finally:
        await conn.close()


async def measure_writes(dsn: str, writers: int, during: asyncio.Future | float) -> tuple[Writes, object]:
    """Run `writers` inserting connections for `during` seconds, or until the awaitable finishes."""
    stop, out = asyncio.Event(), Writes()
    tasks = [asyncio.create_task(writer(dsn, stop, out)) for _ in range(writers)]
    await asyncio.sleep(0.2)  # connections up
    started = time.perf_counter()
    result = None
    if isinstance(during, float):
        await asyncio.sleep(during)
    else:
        result = await during
    out.seconds = time.perf_counter() - started
    stop.set()
    await asyncio.gather(*tasks)
    return out, result


async def bench(server_url: str, rows: int, batch_size: int, writers: int, baseline_seconds: float) -> None:
    url = await create_database(server_url, "signals_bench")
    dsn = asyncpg_dsn(url)
    try:
        await migrate(url)
        conn = await asyncpg.connect(dsn)
        started = time.perf_counter()
        # expired rows spread over days 400..181 ago, then 10% fresh rows over the last 170 days
        await conn.execute(FILL, rows, 400, 219 * 86_400, "expired-")
        await conn.execute(FILL, rows // 10, 170, 170 * 86_400, "fresh-")
        await conn.execute("VACUUM ANALYZE events")
        await conn.close()
        print(f"filled {rows} expired + {rows // 10} in-window rows in {time.perf_counter() - started:.1f} s")

        baseline, _ = await measure_writes(dsn, writers, baseline_seconds)
        during, report = await measure_writes(
            dsn, writers, asyncio.ensure_future(run_retention(url, retention_days=180, batch_size=batch_size))
        )
        assert report is not None
        print(report.summary())
        print(
            f"  rows removed: {report.rows}   batches: {report.batches}   elapsed: {report.elapsed_seconds:.2f} s   "
            f"longest delete transaction: {report.longest_transaction_seconds * 1000:.1f} ms"
        )
        print(f"concurrent writers ({writers} connections, single-row INSERT):")
        print(f"  {'':22} {'writes/s':>9} {'p50 ms':>8} {'p99 ms':>8} {'max ms':>8} {'failed':>7}")
        for label, w in (("baseline (no retention)", baseline), ("during retention", during)):
            print(f"  {label:22} {w.rate:9.0f} {w.pct(0.5):8.2f} {w.pct(0.99):8.2f} {w.pct(1.0):8.2f} {w.failures:7d}")
        print(
            f"  ratio during/baseline: throughput x{during.rate / baseline.rate:.2f}, "
            f"p99 latency x{during.pct(0.99) / baseline.pct(0.99):.2f}, "
            f"max latency x{during.pct(1.0) / baseline.pct(1.0):.2f}"
        )
        print(
            f"  median write latency during retention: {statistics.median(during.latencies) * 1000:.2f} ms; "
            f"failed writes: {during.failures}"
        )
    finally:
        await drop_database(server_url, url)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--batch-size", type=int, default=5000)
    parser.add_argument("--writers", type=int, default=4)
    parser.add_argument("--baseline-seconds", type=float, default=5.0)
    args = parser.parse_args()
    embedded = None
    server_url = os.environ.get("DATABASE_URL")
    if not server_url:
        embedded = EmbeddedPostgres(Path(tempfile.mkdtemp(prefix="signals-bench-")))
        server_url = embedded.start()
    print(f"server: {'embedded PostgreSQL' if embedded else make_url(server_url).render_as_string(hide_password=True)}")
    try:
        asyncio.run(
            asyncio.wait_for(bench(server_url, args.rows, args.batch_size, args.writers, args.baseline_seconds), 900)
        )
    finally:
        if embedded is not None:
            embedded.stop()


if __name__ == "__main__":
    main()
