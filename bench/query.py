"""Read-side benchmark: seed N events over D days into a throwaway database, then time
the dominant queries through the real resolver SQL (app.read.queries), with a bare baseline
measured in the same run.

    .venv/bin/python bench/query.py                  # 10M rows, 180 days, embedded PostgreSQL
    .venv/bin/python bench/query.py --rows 1000000   # quicker
    DATABASE_URL=postgresql://postgres@127.0.0.1:5432/postgres .venv/bin/python bench/query.py
        # creates and drops a throwaway database on that server instead

Data: a few apps, event types and routes with skewed (Zipf-like) popularity, ~4,000
people with skewed activity, a userHash per person per UTC day (as the daily salt makes
it), sessions per person-day, a weekly rhythm and growth over time. Seeded with COPY in
time order (append-only, as ingest writes), indexes built afterwards, then VACUUM ANALYZE.
Targets on 10M rows: filtered events page p95 <= 50 ms; 30-day daily counts for one
app+type <= 200 ms; 180-day daily distinct users for one app <= 200 ms (issue 14).

~70% of rows carry a description {"lang", "durationMs", "source": {"kind"}} for the property
queries. Then every bench/cases_*.py module's CASES are timed (see `measure_cases`) and
printed with their targets next to the queries above and the baseline.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import hashlib
import importlib
import json
import os
import random
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import asyncpg

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from app.config import load_settings
from app.read import queries, rollup
from app.storage.answers import forget_all
from app.storage.database import EmbeddedPostgres, asyncpg_dsn, create_engine
from app.storage.migrations import migrate
from testkit.database import create_database, drop_database
from testkit.seed import COLUMNS as SEEDED_COLUMNS

APPS = {"admin-console": 55, "billing-admin": 25, "support-desk": 15, "ops-tools": 5}
EVENT_TYPES = {"view": 50, "click": 30, "search": 10, "export": 5, "login": 5}
ENTITY_TYPES = {None: 40, "order": 30, "customer": 20, "invoice": 10}
DEVICES = {"desktop": 80, "mobile": 15, "tablet": 5}
BROWSERS = {"Chrome": 60, "Firefox": 20, "Edge": 12, "Safari": 8}
OSES = {"Windows": 55, "Mac OS X": 25, "Linux": 15, "iOS": 5}
PEOPLE = 4_000
# descriptions on ~70% of rows, as the issue-14 property queries read them
LANGS = {"en": 40, "de": 15, "fr": 10, "es": 8, "it": 5, "nl": 5, "pl": 4, "pt": 4, "sv": 3, "ja": 3, "zh": 2, "ko": 1}
SOURCE_KINDS = {"menu": 60, "shortcut": 15, "toolbar": 25}
DESCRIBED = 0.7
COLUMNS = list(SEEDED_COLUMNS)  # what a seeded row fills (testkit/seed.py)


def zipf_weights(n: int, s: float = 1.1) -> list[float]:
    return [1 / (rank**s) for rank in range(1, n + 1)]


class Generator:
    def __init__(self, rows: int, days: int, seed: int = 1) -> None:
        self.rng = random.Random(seed)
        self.rows, self.days = rows, days
        self.end = dt.datetime.now(dt.UTC).replace(minute=0, second=0, microsecond=0)
        self.start = self.end - dt.timedelta(days=days)
        self.routes = {app: [f"/{app.split('-')[0]}/page-{i}" for i in range(40)] for app in APPS}
        self.route_weights = zipf_weights(40)
        self.person_weights = zipf_weights(PEOPLE, 0.8)
        # each day's share: weekdays busier than weekends, ~2x growth over the window
        shares = [
            (0.35 if (self.start + dt.timedelta(days=d)).weekday() >= 5 else 1.0) * (1 + d / days) for d in range(days)
        ]
        total = sum(shares)
        self.per_day = [int(rows * share / total) for share in shares]
        self.per_day[-1] += rows - sum(self.per_day)

    def pick(self, table: dict[Any, int], k: int) -> list[Any]:
        return self.rng.choices(list(table), weights=list(table.values()), k=k)

    def day_rows(self, day: int) -> list[tuple]:
        n, rng = self.per_day[day], self.rng
        midnight = self.start + dt.timedelta(days=day)
        date = midnight.date().isoformat()
        # office hours: most events 07:00-19:00 UTC
        seconds = sorted(int(rng.gauss(13 * 3600, 3.5 * 3600)) % 86_400 for _ in range(n))
        people = rng.choices(range(PEOPLE), weights=self.person_weights, k=n)
        hashes: dict[int, str] = {}
        apps = self.pick(APPS, n)
        types = self.pick(EVENT_TYPES, n)
        entity_types = self.pick(ENTITY_TYPES, n)
        langs = self.pick(LANGS, n)
        kinds = self.pick(SOURCE_KINDS, n)
        rows = []
        for i in range(n):
            person, app, entity_type = people[i], apps[i], entity_types[i]
            user_hash = hashes.get(person)
            if user_hash is None:
                user_hash = hashes[person] = hashlib.sha256(f"{person}|{date}".encode()).hexdigest()
            rows.append(
                (
                    uuid.UUID(int=rng.getrandbits(128), version=4),
                    midnight + dt.timedelta(seconds=seconds[i], microseconds=rng.randrange(1_000_000)),
                    app,
                    types[i],
                    rng.choices(self.routes[app], weights=self.route_weights)[0],
                    entity_type,
                    None if entity_type is None else f"{entity_type[:3]}_{int(rng.paretovariate(1.1)) % 100_000}",
                    user_hash,
                    f"s-{user_hash[:16]}-{person % 3}",
                    self.pick(DEVICES, 1)[0] if i % 16 == 0 else "desktop",
                    BROWSER_CACHE[person % len(BROWSER_CACHE)],
                    OS_CACHE[person % len(OS_CACHE)],
                    f"bench-{day}-{i}",
                    self.description(langs[i], kinds[i]),
                )
            )
        return rows

    def description(self, lang: str, kind: str) -> str | None:
        """{"lang", "durationMs" (lognormal, median ~1.1 s, 5..60000), "source": {"kind"}} as JSON
        text on ~70% of rows, None on the rest."""
        rng = self.rng
        if rng.random() >= DESCRIBED:
            return None
        duration = min(60_000, max(5, int(rng.lognormvariate(7.0, 1.4))))
        return json.dumps({"lang": lang, "durationMs": duration, "source": {"kind": kind}})


_rng = random.Random(7)
BROWSER_CACHE = _rng.choices(list(BROWSERS), weights=list(BROWSERS.values()), k=997)
OS_CACHE = _rng.choices(list(OSES), weights=list(OSES.values()), k=991)


async def seed(url: str, rows: int, days: int) -> Generator:
    gen = Generator(rows, days)
    conn = await asyncpg.connect(asyncpg_dsn(url))
    try:
        indexes = await conn.fetch(
            "SELECT indexname, indexdef FROM pg_indexes WHERE tablename = 'events' AND indexname <> 'events_pkey'"
        )
        for index in indexes:
            await conn.execute(f'DROP INDEX "{index["indexname"]}"')
        started = time.perf_counter()
        for day in range(days):
            await conn.copy_records_to_table("events", records=gen.day_rows(day), columns=COLUMNS)
            if day % 30 == 29:
                print(
                    f"  copied {sum(gen.per_day[: day + 1]):,} rows ({time.perf_counter() - started:.0f} s)", flush=True
                )
        print(f"  COPY {rows:,} rows: {time.perf_counter() - started:.0f} s", flush=True)
        started = time.perf_counter()
        await conn.execute("SET maintenance_work_mem = '512MB'")
        for index in indexes:
            await conn.execute(index["indexdef"])
        print(f"  {len(indexes)} indexes rebuilt: {time.perf_counter() - started:.0f} s", flush=True)
        started = time.perf_counter()
        await conn.execute("VACUUM (ANALYZE) events")
        print(f"  VACUUM ANALYZE: {time.perf_counter() - started:.0f} s", flush=True)
    finally:
        await conn.close()
    return gen


async def timed(runs: int, call: Callable[[int], Awaitable[Any]]) -> Any:
    """`runs` timings in ms after one warm-up; with runs=0, the warm-up's own time."""
    started = time.perf_counter()
    await call(-1)  # warm-up, not counted
    if runs == 0:
        return (time.perf_counter() - started) * 1000
    samples = []
    for i in range(runs):
        started = time.perf_counter()
        await call(i)
        samples.append((time.perf_counter() - started) * 1000)
    return samples


def report(name: str, samples: list[float], baseline: float | None, target: float | None = None) -> None:
    ordered = sorted(samples)
    p50 = statistics.median(ordered)
    p95 = ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]
    ratio = f"{p50 / baseline:8.1f}x" if baseline else "       -"
    verdict = "" if target is None else f"  target p95 <= {target:g} ms: {'OK' if p95 <= target else 'MISS'}"
    print(f"{name:<58} p50 {p50:9.2f} ms  p95 {p95:9.2f} ms  {ratio}{verdict}")


Case = tuple[str, float, Callable[[Any, dt.datetime], Awaitable[object]]]
Ratio = tuple[str, str, str, float]


def case_modules() -> list[Any]:
    """Every bench/cases_*.py, by name: each exposes CASES [(label, p95 target ms, run(engine,
    end_of_data))] and may expose RATIOS [(label, numerator label, denominator label, max)]."""
    here = Path(__file__).resolve().parent
    return [importlib.import_module(f"bench.{path.stem}") for path in sorted(here.glob("cases_*.py"))]


async def measure_cases(engine: Any, end: dt.datetime, runs: int, baseline: float) -> None:
    """Each module's cases timed in alternate rounds: every case once per round, in an order
    rotating by round (so drift, caches and autovacuum hit them alike), after one warm-up each
    (the first ask fills stored answers; its time is printed). Median and p95 as `report`;
    a RATIOS entry compares two cases' medians and the median of the per-round ratios."""
    for module in case_modules():
        cases: list[Case] = list(module.CASES)
        print(f"\n{module.__name__.split('.')[-1]}:")
        for label, _target, run in cases:
            started = time.perf_counter()
            await run(engine, end)
            print(f"{'  (first ask: ' + format((time.perf_counter() - started) * 1000, '.0f') + ' ms) ' + label:<58}")
        samples: dict[str, list[float]] = {label: [] for label, _, _ in cases}
        for round_number in range(runs):
            shift = round_number % len(cases)
            for label, _target, run in cases[shift:] + cases[:shift]:
                started = time.perf_counter()
                await run(engine, end)
                samples[label].append((time.perf_counter() - started) * 1000)
        for label, target, _run in cases:
            report(label, samples[label], baseline, target)
        ratios: list[Ratio] = list(getattr(module, "RATIOS", []))
        for label, numerator, denominator, most in ratios:
            top, bottom = samples[numerator], samples[denominator]
            of_medians = statistics.median(top) / statistics.median(bottom)
            per_round = statistics.median(a / b for a, b in zip(top, bottom, strict=True))
            verdict = "OK" if of_medians <= most else "MISS"
            print(
                f"{label:<58} p50 ratio {of_medians:5.2f}x  per-round median {per_round:5.2f}x"
                f"  target <= {most:g}x: {verdict}"
            )


async def measure(url: str, gen: Generator, runs: int) -> None:
    settings = load_settings(database_url=url, db_statement_timeout_ms=60_000, retention_days=gen.days + 2)
    engine = create_engine(url, settings)
    rng = random.Random(3)
    end = gen.end
    try:
        async with engine.connect() as conn:
            count = (await conn.exec_driver_sql("SELECT count(*) FROM events")).scalar()
            print(f"\nevents: {count:,}   ({runs} timed runs each after one warm-up; ratio = p50 / baseline p50)\n")

            async def select_one(_: int) -> None:
                await conn.exec_driver_sql("SELECT 1")

            base = await timed(runs * 5, select_one)
            baseline = statistics.median(base)
            report("baseline: SELECT 1 round trip", base, None)

            async def index_only_count(_: int) -> None:
                await conn.exec_driver_sql(
                    "SELECT count(*) FROM events WHERE app_name = 'ops-tools' AND event_type = 'export' "
                    "AND created_at >= now() - interval '1 day'"
                )

            report("baseline: index-only count (1 day, small app+type)", await timed(runs, index_only_count), baseline)

            cursors: list[queries.Cursor | None] = []

            def page(spec: queries.EventFilterSpec, deep: bool) -> Callable[[int], Awaitable[Any]]:
                async def run(_: int) -> None:
                    after = None
                    if deep:  # a cursor somewhere in the window, as a caller deep in its paging
                        at = end - dt.timedelta(seconds=rng.randrange(gen.days * 86_400))
                        after = queries.Cursor(at, uuid.UUID(int=(1 << 128) - 1))
                    rows, _more = await queries.fetch_events_page(conn, spec, 100, after)
                    cursors.append(after)
                    assert rows or deep

                return run

            for label, spec in (
                ("app + type", queries.EventFilterSpec(app_name="billing-admin", event_types=("export",))),
                (
                    "app + 2 types, 30 days",
                    queries.EventFilterSpec(
                        app_name="admin-console", event_types=("click", "export"), start=end - dt.timedelta(days=30)
                    ),
                ),
                ("app only", queries.EventFilterSpec(app_name="support-desk")),
                ("entity", queries.EventFilterSpec(entity_type="order", entity_id="ord_1")),
                ("no filter", queries.EventFilterSpec()),
            ):
                report(f"events page of 100, {label}, first page", await timed(runs, page(spec, False)), baseline, 50)
                report(f"events page of 100, {label}, deep cursor", await timed(runs, page(spec, True)), baseline, 50)

            def stats(
                spec: queries.EventFilterSpec, users: bool, parallelism: int, events_only: bool = False
            ) -> Callable[[int], Awaitable[Any]]:
                request = queries.StatsRequest(spec, unit=queries.BucketUnit.DAY, users=users)

                async def run(_: int) -> None:  # what the eventStats `buckets` resolver runs
                    if events_only:  # the path without daily_app_users, for comparison
                        rows = await queries.fetch_stats_buckets_split(engine, request, 10_000, parallelism)
                    else:
                        rows = await rollup.stats_buckets(
                            engine, request, 10_000, parallelism, retention_days=settings.retention_days
                        )
                    assert len(rows) >= (spec.end - spec.start).days - 1

                return run

            counts = queries.EventFilterSpec(
                app_name="admin-console", event_types=("click",), start=end - dt.timedelta(days=30), end=end
            )
            users = queries.EventFilterSpec(app_name="admin-console", start=end - dt.timedelta(days=gen.days), end=end)
            cold = await timed(0, stats(users, True, 1))  # the first ask fills daily_app_users
            print(f"{'(daily_app_users filled by the first ask: ' + format(cold, '.0f') + ' ms)':<58}")
            for parallelism in (1, settings.stats_parallelism):
                report(
                    f"eventStats 30-day daily counts, one app+type (x{parallelism})",
                    await timed(runs, stats(counts, False, parallelism)),
                    baseline,
                    200,
                )
                report(
                    f"eventStats 180-day daily distinct users, one app (x{parallelism})",
                    await timed(max(5, runs // 3), stats(users, True, parallelism)),
                    baseline,
                    200,  # issue 14 (it was 1 s)
                )
                report(
                    f"  same, from events only (no rollup, for reference) (x{parallelism})",
                    await timed(5, stats(users, True, parallelism, events_only=True)),
                    baseline,
                )
            await measure_cases(engine, end, runs, baseline)
    finally:
        await engine.dispose()


async def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=10_000_000)
    parser.add_argument("--days", type=int, default=180)
    parser.add_argument("--runs", type=int, default=30)
    parser.add_argument("--data-dir", type=Path, help="keep the embedded database here and reuse its rows next time")
    args = parser.parse_args()

    external = os.environ.get("DATABASE_URL")
    with tempfile.TemporaryDirectory(prefix="signals-bench-") as tmp:
        embedded = None
        if external:
            url = await create_database(external, "signals_bench")
        else:
            embedded = EmbeddedPostgres(args.data_dir or Path(tmp))
            url = embedded.start()
        try:
            conn = await asyncpg.connect(asyncpg_dsn(url))
            print(
                f"PostgreSQL: {await conn.fetchval('SHOW server_version')} "
                f"({'DATABASE_URL' if external else 'embedded'}), "
                f"{os.cpu_count()} CPUs"
            )
            await conn.close()
            await migrate(url)
            gen = Generator(args.rows, args.days)
            conn = await asyncpg.connect(asyncpg_dsn(url))
            existing, newest = await conn.fetchrow("SELECT count(*), max(created_at) FROM events")
            if existing == args.rows and args.data_dir:
                print(f"reusing {existing:,} events in {args.data_dir}")
                gen.end = newest
                await forget_all(conn)  # an earlier run's stored answers: the first asks start cold again
            await conn.close()
            if existing != args.rows or not args.data_dir:
                print(f"seeding {args.rows:,} events over {args.days} days ...", flush=True)
                gen = await seed(url, args.rows, args.days)
            await measure(url, gen, args.runs)
        finally:
            if external:
                await drop_database(external, url)
            if embedded is not None:
                embedded.stop()
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
