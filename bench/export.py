"""Export benchmark: `signals export` of N events over D days, its throughput and peak memory,
next to a raw read of the same rows measured in the same run.

    .venv/bin/python bench/export.py --data-dir /work/bench-data   # reuse bench/query.py's 10M rows
    .venv/bin/python bench/export.py --rows 1000000                # seed a throwaway database

The database is an embedded PostgreSQL (seeded like bench/query.py when it does not hold
--rows events). Measured, as subprocesses of the real CLI (`--include-open`: the seeded
days are not anonymised):
  - the export of the first tenth of the days, and of all of them (peak RSS of each: memory
    must not grow with the number of rows, only with the largest day);
  - the same full export again, which must write nothing (every day unchanged);
  - baseline: `COPY (SELECT <the exported columns>) TO STDOUT` of all rows, discarded: the
    database's own speed at handing the rows out.
Target: at least 200,000 rows/s, memory bounded independently of the number of rows.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import asyncpg

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from app.storage.database import EmbeddedPostgres, asyncpg_dsn  # noqa: E402
from app.storage.migrations import migrate  # noqa: E402
from bench.query import seed  # noqa: E402
from jobs.export import EXPORTED  # noqa: E402
from testkit.processes import PeakRss, clean_env  # noqa: E402

TARGET_ROWS_PER_SECOND = 200_000


def export(url: str, first: dt.date, last: dt.date, out: Path, data_dir: Path) -> tuple[int, int, float, float]:
    """(rows exported, days unchanged, seconds, peak RSS in MiB) of one `signals export` run."""
    env = clean_env(DATABASE_URL=url, SIGNALS_DATA_DIR=str(data_dir))
    command = [sys.executable, "-m", "app.cli", "export", "--from", first.isoformat(), "--to", last.isoformat()]
    command += ["--out", str(out), "--include-open"]
    started = time.perf_counter()
    process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.PIPE, text=True)
    memory = PeakRss(process.pid, interval=0.05)
    memory.start()
    output, _ = process.communicate(timeout=3600)
    seconds = time.perf_counter() - started
    memory.stop()
    if process.returncode != 0:
        raise SystemExit(f"signals export failed with exit code {process.returncode}")
    days = [json.loads(line) for line in output.splitlines() if line.startswith("{")]
    exported = sum(day["rows"] for day in days if day["status"] == "exported")
    unchanged = sum(1 for day in days if day["status"] == "unchanged")
    return exported, unchanged, seconds, memory.peak / 2**20


async def raw_read(url: str) -> tuple[int, float]:
    """(rows, seconds) of COPY of the exported columns of every row, discarded."""
    conn = await asyncpg.connect(asyncpg_dsn(url))
    try:
        rows = await conn.fetchval("SELECT count(*) FROM events")
        columns = ", ".join(f"{c}::text" if c in ("id", "description") else c for c in EXPORTED)

        async def discard(_chunk: bytes) -> None:
            pass

        started = time.perf_counter()
        await conn.copy_from_query(f"SELECT {columns} FROM events", output=discard, format="binary")
        return rows, time.perf_counter() - started
    finally:
        await conn.close()


async def prepare(url: str, rows: int, days: int) -> tuple[dt.date, dt.date]:
    await migrate(url)
    conn = await asyncpg.connect(asyncpg_dsn(url))
    try:
        existing = await conn.fetchval("SELECT count(*) FROM events")
    finally:
        await conn.close()
    if existing != rows:
        print(f"seeding {rows:,} events over {days} days ...", flush=True)
        await seed(url, rows, days)
    conn = await asyncpg.connect(asyncpg_dsn(url))
    try:
        first, last = await conn.fetchrow(
            "SELECT (min(created_at) AT TIME ZONE 'UTC')::date, (max(created_at) AT TIME ZONE 'UTC')::date FROM events"
        )
    finally:
        await conn.close()
    return first, last


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=10_000_000)
    parser.add_argument("--days", type=int, default=180)
    parser.add_argument("--data-dir", type=Path, help="the embedded database's directory (kept, reused)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="signals-export-bench-") as tmp:
        work = Path(tmp)
        embedded = EmbeddedPostgres(args.data_dir or work / "pg")
        url = embedded.start()
        try:
            first, last = asyncio.run(prepare(url, args.rows, args.days))
            tenth = first + (last - first) / 10
            raw_rows, raw_seconds = asyncio.run(raw_read(url))
            print(f"events: {raw_rows:,} over {(last - first).days + 1} UTC days\n")
            print(f"{'baseline: COPY of the exported columns, discarded':<52} {raw_rows / raw_seconds:>12,.0f} rows/s")
            runs = [
                ("export, first tenth of the days", first, tenth, work / "tenth"),
                ("export, all days", first, last, work / "all"),
                ("export, all days again (nothing changed)", first, last, work / "all"),
            ]
            results = []
            for label, start, end, out in runs:
                rows, unchanged, seconds, peak = export(url, start, end, out, work / "data")
                results.append((rows, seconds, peak))
                rate = f"{rows / seconds:>12,.0f} rows/s  {rows / seconds / (raw_rows / raw_seconds):5.2f}x baseline"
                if not rows:
                    rate = f"{'-':>12} rows/s  {unchanged} days unchanged, written: none"
                print(f"{label:<52} {rate}  {seconds:7.1f} s  peak RSS {peak:6.0f} MiB  ({rows:,} rows)")
            (tenth_rows, _, tenth_peak), (full_rows, full_seconds, full_peak), _ = results
            verdict = "OK" if full_rows / full_seconds >= TARGET_ROWS_PER_SECOND else "MISS"
            print(f"\nthroughput, all days: {full_rows / full_seconds:,.0f} rows/s "
                  f"(target >= {TARGET_ROWS_PER_SECOND:,}): {verdict}")  # fmt: skip
            print(f"peak RSS, all days / first tenth: {full_peak / tenth_peak:.2f}x for "
                  f"{full_rows / max(tenth_rows, 1):.1f}x the rows (bounded: about 1x)")  # fmt: skip
        finally:
            embedded.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
