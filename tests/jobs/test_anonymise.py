"""Closed-day anonymisation: counts kept, the secret made useless for past rows, today
untouched, the grace period honoured, crash-safe per day, late rows handled."""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import json
import random
import secrets
from pathlib import Path

import asyncpg
import pytest

from app.storage.database import asyncpg_dsn
from jobs.anonymise import REKEY_DAY, day_bounds, hmac_pads, run_anonymise
from jobs.locking import ANONYMISE_LOCK_KEY
from testkit.database import fetch
from testkit.hashing import contract_hash
from testkit.processes import data_dir, signals
from testkit.seed import Row, insert_events
from testkit.settings import TEST_SALT_SECRET

APPS = ["admin-console", "billing-admin"]
PEOPLE = [(f"app{i % 3}.example.test", f"198.51.100.{i}", f"Firefox|12{i % 4}|Linux") for i in range(25)]
TODAY = dt.datetime.now(dt.UTC).date()
NOON_TODAY = dt.datetime.combine(TODAY, dt.time(12), tzinfo=dt.UTC)
DAYS = [TODAY - dt.timedelta(days=n) for n in (3, 2, 1, 0)]


def day_rows(day: dt.date, rng: random.Random) -> list[Row]:
    """Each person visits some apps a few times; hashes follow the contract."""
    rows = []
    for person in rng.sample(PEOPLE, 18):
        user_hash = contract_hash(TEST_SALT_SECRET, day, *person)
        for _ in range(rng.randint(1, 4)):
            at = dt.datetime.combine(day, dt.time(0), tzinfo=dt.UTC) + dt.timedelta(seconds=rng.randrange(86_400))
            rows.append(Row(at, rng.choice(APPS), user_hash, route=f"/r/{rng.randint(1, 5)}"))
    return rows


@pytest.fixture
async def four_days(fresh_db: str) -> str:
    rng = random.Random(5)
    await insert_events(fresh_db, [row for day in DAYS for row in day_rows(day, rng)])
    return fresh_db


async def distinct_counts(url: str) -> tuple[dict, dict]:
    per_day = await fetch(
        url, "SELECT (created_at AT TIME ZONE 'UTC')::date AS d, count(DISTINCT user_hash) AS n FROM events GROUP BY 1"
    )
    per_app = await fetch(
        url,
        "SELECT (created_at AT TIME ZONE 'UTC')::date AS d, app_name, count(DISTINCT user_hash) AS n "
        "FROM events GROUP BY 1, 2",
    )
    return {r["d"]: r["n"] for r in per_day}, {(r["d"], r["app_name"]): r["n"] for r in per_app}


async def hashes_of(url: str, day: dt.date) -> dict[str, str]:
    rows = await fetch(
        url, "SELECT id::text, user_hash FROM events WHERE created_at >= $1 AND created_at < $2", *day_bounds(day)
    )
    return {r["id"]: r["user_hash"] for r in rows}


def recomputable(day: dt.date, stored: set[str]) -> set[str]:
    """Hashes of `day` that someone holding the secret and everyone's host/IP/UA can recompute."""
    return {contract_hash(TEST_SALT_SECRET, day, *person) for person in PEOPLE} & stored


async def test_closed_days_rekeyed_counts_kept_today_untouched(four_days: str) -> None:
    url = four_days
    before_counts = await distinct_counts(url)
    before = {day: await hashes_of(url, day) for day in DAYS}
    for day in DAYS:  # the test can fail: before anonymisation, the secret finds every person
        assert len(recomputable(day, set(before[day].values()))) == 18

    report = await run_anonymise(url, grace_minutes=60, now=NOON_TODAY)

    assert [d.day for d in report.days] == DAYS[:3] and report.open_from == TODAY
    assert report.rows == sum(len(before[day]) for day in DAYS[:3])
    assert await distinct_counts(url) == before_counts
    for day in DAYS[:3]:
        after = await hashes_of(url, day)
        assert after.keys() == before[day].keys()
        assert recomputable(day, set(after.values())) == set()
        mapping: dict[str, set[str]] = {}
        for event_id, old in before[day].items():
            mapping.setdefault(old, set()).add(after[event_id])
        assert all(len(new) == 1 for new in mapping.values())  # one person, one new hash that day
    assert await hashes_of(url, TODAY) == before[TODAY]
    ledger = {r["day"]: r["rows"] for r in await fetch(url, "SELECT day, rows FROM anonymised_days")}
    assert ledger == {day: len(before[day]) for day in DAYS[:3]}
    # the keys differ per day: no re-keyed hash appears on two days
    seen = [set((await hashes_of(url, day)).values()) for day in DAYS[:3]]
    assert not (seen[0] & seen[1]) and not (seen[1] & seen[2])

    snapshot = {day: await hashes_of(url, day) for day in DAYS}
    again = await run_anonymise(url, grace_minutes=60, now=NOON_TODAY)
    assert again.days == []  # idempotent: nothing re-keyed twice
    assert {day: await hashes_of(url, day) for day in DAYS} == snapshot


async def test_grace_period_keeps_yesterday_open_just_after_midnight(four_days: str) -> None:
    url = four_days
    yesterday = DAYS[2]
    midnight = dt.datetime.combine(TODAY, dt.time(0), tzinfo=dt.UTC)
    untouched = await hashes_of(url, yesterday)

    early = await run_anonymise(url, grace_minutes=60, now=midnight + dt.timedelta(minutes=59))
    assert yesterday not in [d.day for d in early.days] and early.open_from == yesterday
    assert await hashes_of(url, yesterday) == untouched

    late = await run_anonymise(url, grace_minutes=60, now=midnight + dt.timedelta(minutes=60))
    assert [d.day for d in late.days] == [yesterday]
    assert recomputable(yesterday, set((await hashes_of(url, yesterday)).values())) == set()


async def test_a_failure_mid_day_leaves_that_day_wholly_unchanged(four_days: str) -> None:
    url = four_days
    failing_day = DAYS[1]
    await insert_events(
        url,
        [
            Row(
                dt.datetime.combine(failing_day, dt.time(23, 59), tzinfo=dt.UTC),
                "admin-console",
                "f" * 64,
                route="boom",
            )
        ],
    )
    conn = await asyncpg.connect(asyncpg_dsn(url))
    # a real failure inside PostgreSQL, raised while that day's rows are being re-keyed
    await conn.execute(
        "CREATE FUNCTION fail_on_boom() RETURNS trigger LANGUAGE plpgsql AS "
        "$$ BEGIN IF NEW.route = 'boom' THEN RAISE EXCEPTION 'simulated crash'; END IF; RETURN NEW; END $$;"
        "CREATE TRIGGER boom BEFORE UPDATE ON events FOR EACH ROW EXECUTE FUNCTION fail_on_boom();"
    )
    before_counts = await distinct_counts(url)
    before = await hashes_of(url, failing_day)

    with pytest.raises(asyncpg.RaiseError, match="simulated crash"):
        await run_anonymise(url, now=NOON_TODAY)

    assert await hashes_of(url, failing_day) == before  # no half re-keyed day
    ledger = {r["day"] for r in await fetch(url, "SELECT day FROM anonymised_days")}
    assert ledger == {DAYS[0]}  # the day before was committed on its own
    assert await distinct_counts(url) == before_counts

    await conn.execute("DROP TRIGGER boom ON events")
    await conn.close()
    report = await run_anonymise(url, now=NOON_TODAY)
    assert [d.day for d in report.days] == DAYS[1:3]
    assert await distinct_counts(url) == before_counts
    assert recomputable(failing_day, set((await hashes_of(url, failing_day)).values())) == set()


async def test_late_rows_of_a_done_day_are_rekeyed_on_the_next_run(four_days: str) -> None:
    url = four_days
    yesterday = DAYS[2]
    await run_anonymise(url, now=NOON_TODAY)
    late_hash = contract_hash(TEST_SALT_SECRET, yesterday, *PEOPLE[0])
    await insert_events(
        url, [Row(dt.datetime.combine(yesterday, dt.time(23, 59, 59), tzinfo=dt.UTC), "admin-console", late_hash)]
    )
    assert late_hash in (await hashes_of(url, yesterday)).values()

    report = await run_anonymise(url, now=NOON_TODAY)
    assert [(d.day, d.reason) for d in report.days] == [(yesterday, "late-rows")]
    stored = set((await hashes_of(url, yesterday)).values())
    assert recomputable(yesterday, stored) == set()
    ledger = {r["day"]: r["rows"] for r in await fetch(url, "SELECT day, rows FROM anonymised_days")}
    assert ledger[yesterday] == len(await hashes_of(url, yesterday))


async def test_rekey_sql_is_hmac_sha256(fresh_db: str) -> None:
    """The in-database HMAC equals Python's hmac for the same key (checked on real rows)."""
    day = TODAY - dt.timedelta(days=10)
    originals = [secrets.token_hex(32) for _ in range(5)]
    await insert_events(
        fresh_db,
        [Row(dt.datetime.combine(day, dt.time(9), tzinfo=dt.UTC), "admin-console", h, route=h) for h in originals],
    )
    key = secrets.token_bytes(32)
    conn = await asyncpg.connect(asyncpg_dsn(fresh_db))
    try:
        await conn.execute(REKEY_DAY, *hmac_pads(key), *day_bounds(day))
        rows = await conn.fetch("SELECT route, user_hash FROM events")
    finally:
        await conn.close()
    assert {r["route"]: r["user_hash"] for r in rows} == {
        h: hmac.new(key, h.encode(), hashlib.sha256).hexdigest() for h in originals
    }


async def test_locked_run_skips(four_days: str) -> None:
    holder = await asyncpg.connect(asyncpg_dsn(four_days))
    try:
        await holder.execute("SELECT pg_advisory_lock($1)", ANONYMISE_LOCK_KEY)
        report = await run_anonymise(four_days, now=NOON_TODAY)
    finally:
        await holder.close()
    assert report.skipped and report.days == []
    assert await fetch(four_days, "SELECT day FROM anonymised_days") == []


async def test_cli_dry_run_then_run(four_days: str, tmp_path: Path) -> None:
    env = {"DATABASE_URL": four_days, "SIGNALS_DATA_DIR": data_dir(tmp_path), "SIGNALS_ANONYMISE_GRACE_MINUTES": "0"}
    before_counts = await distinct_counts(four_days)
    dry = signals("anonymise", "--dry-run", "--json", **env)
    assert dry.returncode == 0, dry.stderr
    planned = json.loads(dry.stdout)
    assert [d["day"] for d in planned["days"]] == [d.isoformat() for d in DAYS[:3]]
    assert await fetch(four_days, "SELECT day FROM anonymised_days") == []
    yesterday_before = await hashes_of(four_days, DAYS[2])

    run = signals("anonymise", **env)
    assert run.returncode == 0, run.stderr
    assert f"re-keyed {planned['rows']} events in 3 closed days" in run.stdout
    assert await distinct_counts(four_days) == before_counts
    assert set((await hashes_of(four_days, DAYS[2])).values()).isdisjoint(yesterday_before.values())
