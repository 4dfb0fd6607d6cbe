"""`signals export`: closed, anonymised days as one file per UTC day, read back by DuckDB and
compared with PostgreSQL's own counts (plain SQL), re-runs that write nothing, and a changed
day written again alone."""

from __future__ import annotations

import datetime as dt
import json
import os
import random
from pathlib import Path

import duckdb
import pytest

from jobs.anonymise import run_anonymise
from jobs.export import run_export
from testkit.database import fetch
from testkit.processes import data_dir, signals
from testkit.seed import event_row, insert_rows

TODAY = dt.datetime.now(dt.UTC).date()
CLOSED = [TODAY - dt.timedelta(days=n) for n in (5, 4, 3, 2)]
YESTERDAY = TODAY - dt.timedelta(days=1)  # closed but left un-anonymised by the fixture
ON_DAY = "(created_at AT TIME ZONE 'UTC')::date = $1"


def rows_for(day: dt.date, rng: random.Random) -> list[tuple]:
    start = dt.datetime.combine(day, dt.time(0), tzinfo=dt.UTC)
    rows = []
    for person in rng.sample(range(40), rng.randint(8, 30)):
        for _ in range(rng.randint(1, 5)):
            at = start + dt.timedelta(seconds=rng.randrange(86_400), microseconds=rng.randrange(1_000_000))
            description = json.dumps({"step": rng.randint(1, 3), "label": "naïve ✓"}) if rng.random() < 0.5 else None
            rows.append(
                event_row(
                    at,
                    rng.choice(["admin-console", "billing-admin"]),
                    rng.choice(["click", "export", "open_dialog"]),
                    person=f"p{person}",
                    route=rng.choice([None, "/orders", "/customers/:id"]),
                    session_id=rng.choice([None, f"s-{person}"]),
                    description=description,
                )
            )
    return rows


@pytest.fixture
async def seeded(fresh_db: str) -> str:
    rng = random.Random(7)
    await insert_rows(fresh_db, [row for day in [*CLOSED, YESTERDAY, TODAY] for row in rows_for(day, rng)])
    # anonymise the four older days only: the job as it runs, with a clock two days back
    report = await run_anonymise(fresh_db, now=dt.datetime.combine(YESTERDAY, dt.time(2), tzinfo=dt.UTC))
    assert sorted(d.day for d in report.days) == CLOSED
    return fresh_db


async def postgres_per_day(url: str) -> dict[str, tuple[int, int]]:
    rows = await fetch(
        url,
        "SELECT (created_at AT TIME ZONE 'UTC')::date AS day, count(*) AS n, count(DISTINCT user_hash) AS users "
        "FROM events GROUP BY 1",
    )
    return {row["day"].isoformat(): (row["n"], row["users"]) for row in rows}


def duckdb_per_day(out: Path, fmt: str) -> dict[str, tuple[int, int]]:
    reader = "read_parquet" if fmt == "parquet" else "read_csv"
    found = duckdb.sql(
        f"SELECT day, count(*), count(DISTINCT user_hash) FROM {reader}('{out}/*/*.{fmt}', hive_partitioning = true) "
        "GROUP BY day ORDER BY day"
    ).fetchall()
    return {str(day): (n, users) for day, n, users in found}


def modified_times(out: Path) -> dict[str, int]:
    return {str(p.relative_to(out)): p.stat().st_mtime_ns for p in sorted(out.glob("day=*/*"))}


@pytest.mark.parametrize("fmt", ["parquet", "csv"])
async def test_export_read_back_by_duckdb_equals_postgres(seeded: str, tmp_path: Path, fmt: str) -> None:
    out = tmp_path / "export"
    report = await run_export(seeded, out, start=CLOSED[0], end=TODAY, fmt=fmt)

    in_postgres = await postgres_per_day(seeded)
    exported = duckdb_per_day(out, fmt)
    assert exported == {day.isoformat(): in_postgres[day.isoformat()] for day in CLOSED}
    # yesterday is closed but not anonymised, today is open: neither leaves by default
    assert {d.day: d.status for d in report.days} == {
        **dict.fromkeys(CLOSED, "exported"),
        YESTERDAY: "open",
        TODAY: "open",
    }
    assert sorted(p.name for p in out.iterdir()) == ["_schema.json", *(f"day={d.isoformat()}" for d in CLOSED)]

    # every stored column but the internal dedup key, with the values PostgreSQL holds
    columns = [
        row["column_name"]
        for row in await fetch(
            seeded,
            "SELECT column_name FROM information_schema.columns WHERE table_name = 'events' ORDER BY ordinal_position",
        )
    ]
    schema = json.loads((out / "_schema.json").read_text())
    assert [c["name"] for c in schema["columns"]] == [c for c in columns if c != "dedup_key"]
    day = CLOSED[1]
    reader = "read_parquet" if fmt == "parquet" else "read_csv"
    sample = duckdb.sql(
        f"SELECT id::VARCHAR, route, session_id, description::VARCHAR, epoch_us(created_at) "
        f"FROM {reader}('{out}/day={day}/events.{fmt}') ORDER BY id"
    ).fetchall()
    stored = await fetch(
        seeded,
        "SELECT id::text, route, session_id, description::text AS description, "
        "(extract(epoch FROM created_at) * 1000000)::bigint AS us FROM events "
        f"WHERE {ON_DAY} ORDER BY id::text",
        day,
    )
    assert sample == [tuple(row) for row in stored]


async def test_a_second_run_writes_nothing_and_a_changed_day_alone_is_written_again(
    seeded: str, tmp_path: Path
) -> None:
    out = tmp_path / "export"
    await run_export(seeded, out, start=CLOSED[0], end=YESTERDAY)
    before = modified_times(out)

    again = await run_export(seeded, out, start=CLOSED[0], end=YESTERDAY)
    assert [d.status for d in again.days if d.day in CLOSED] == ["unchanged"] * len(CLOSED)
    assert modified_times(out) == before

    # one day changes: a row is deleted (as retention would), another day's hashes are re-keyed
    changed, rekeyed = CLOSED[1], CLOSED[3]
    await fetch(
        seeded,
        f"DELETE FROM events WHERE id = (SELECT id FROM events WHERE {ON_DAY} LIMIT 1)",
        changed,
    )
    third = await run_export(seeded, out, start=CLOSED[0], end=YESTERDAY)
    assert {d.day for d in third.days if d.status == "exported"} == {changed}
    after = modified_times(out)
    assert {name for name in after if after[name] != before[name]} == {
        f"day={changed}/events.parquet",
        f"day={changed}/_manifest.json",
    }
    assert duckdb_per_day(out, "parquet")[changed.isoformat()] == (await postgres_per_day(seeded))[changed.isoformat()]

    await fetch(
        seeded,
        f"UPDATE events SET user_hash = md5(user_hash) || md5(user_hash) WHERE {ON_DAY}",
        rekeyed,
    )
    fourth = await run_export(seeded, out, start=CLOSED[0], end=YESTERDAY)
    assert {d.day for d in fourth.days if d.status == "exported"} == {rekeyed}


async def test_include_open_exports_the_open_days_too(seeded: str, tmp_path: Path) -> None:
    out = tmp_path / "export"
    report = await run_export(seeded, out, start=CLOSED[0], end=TODAY, include_open=True)
    assert [d.status for d in report.days] == ["exported"] * (len(CLOSED) + 2)
    assert duckdb_per_day(out, "parquet") == await postgres_per_day(seeded)


def test_the_command_prints_one_json_line_per_day_off_a_terminal(seeded: str, tmp_path: Path) -> None:
    out = tmp_path / "export"
    env = {"DATABASE_URL": seeded, "SIGNALS_DATA_DIR": str(data_dir(tmp_path))}
    args = ["export", "--from", CLOSED[0].isoformat(), "--to", YESTERDAY.isoformat(), "--out", str(out)]
    done = signals(*args, **env)
    assert done.returncode == 0, done.stderr
    lines = [json.loads(line) for line in done.stdout.splitlines()]
    assert [(line["day"], line["status"]) for line in lines] == [
        *((d.isoformat(), "exported") for d in CLOSED),
        (YESTERDAY.isoformat(), "open"),
    ]
    assert "4 days written" in done.stderr and "--include-open" in done.stderr
    bad = signals("export", "--from", "2026-13-01", "--out", str(out), **env)
    assert bad.returncode == 2 and "YYYY-MM-DD" in bad.stderr
    assert os.listdir(out)  # the first run's files are still there
