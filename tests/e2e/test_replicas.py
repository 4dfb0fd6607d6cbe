"""Two `signals serve` replicas (one worker each, own ports) behind a real nginx, on one
fresh PostgreSQL database (the suite's server: embedded, or DATABASE_URL) and the machine's
Redis (REDIS_URL, a database number of this file's own, flushed afterwards).

Proved, in this order on one cluster: started at once on an empty database, the replicas
apply each migration once; each scheduled job's work is done once (the others skip on
the lock or find nothing left); a caller spread over the replicas is limited at
SIGNALS_RATE_LIMIT in total, not once per replica; and a rolling restart under load loses
no acknowledged event, stores each once, and shows clients only retryable answers.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import os
import signal
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field

import httpx
import pytest
import redis

from app.config import PROJECT_ROOT
from testkit.database import count_rows, create_database, drop_database, fetch
from testkit.nginx import Nginx, nginx_binary
from testkit.processes import free_port
from testkit.seed import Row, insert_events, insert_expired
from testkit.servers import Served
from testkit.settings import TEST_JWT_SECRET, TEST_SALT_SECRET
from testkit.tokens import token
from testkit.trackload import BROWSER_UA, TrackLoad

pytestmark = pytest.mark.timeout(150)

REPLICAS = 2
REDIS_URL = "redis://127.0.0.1:6379/11"  # this file's own Redis database, flushed afterwards
RATE_LIMIT = (
    500  # per caller and hour (a window edge inside the test would let a few more through), shared through Redis
)
EXPIRED = 40  # events past retention, seeded for the scheduled retention run
CLOSED_DAY = (dt.datetime.now(dt.UTC) - dt.timedelta(days=3)).replace(hour=12, minute=0, second=0, microsecond=0)
CLOSED_DAY_ROWS = 25  # events on a closed day, seeded for the scheduled anonymisation run
MIGRATIONS = sorted(p.name for p in (PROJECT_ROOT / "migrations").iterdir() if p.is_dir())


def records(lines: list[str]) -> list[dict]:
    return [json.loads(line) for line in lines if line.startswith("{")]


@dataclass
class Cluster:
    database_url: str
    env: dict[str, str]
    ports: list[int]
    nginx: Nginx
    replicas: list[Served] = field(default_factory=list)
    retired: list[Served] = field(default_factory=list)  # replicas stopped by a restart (their logs count too)

    def start(self, index: int) -> Served:
        served = Served(self.env, self.ports[index], "--workers", "1")
        if index < len(self.replicas):
            self.retired.append(self.replicas[index])
            self.replicas[index] = served
        else:
            self.replicas.append(served)
        return served

    def logs(self) -> list[dict]:
        return [r for served in self.retired + self.replicas for r in records(served.lines)]

    def wait_ready(self, served: Served, seconds: float = 60) -> None:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            assert served.proc.poll() is None, "\n".join(served.lines)
            try:
                if httpx.get(f"http://127.0.0.1:{served.port}/readyz", timeout=2).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.1)
        raise AssertionError(f"replica on {served.port} not ready:\n" + "\n".join(served.lines))


def redis_or_skip() -> redis.Redis:
    client = redis.Redis.from_url(REDIS_URL, socket_timeout=2)
    try:
        client.ping()
    except redis.RedisError:
        if os.environ.get("CI") == "true":
            pytest.fail("no Redis at 127.0.0.1:6379 (.ci/run starts one)")
        pytest.skip("no Redis at 127.0.0.1:6379")
    return client


@pytest.fixture(scope="module")
def cluster(pg_server: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    binary = nginx_binary()
    if binary is None:
        if os.environ.get("CI") == "true":
            pytest.fail("nginx is not installed (.ci/run installs Debian's nginx)")
        pytest.skip("nginx is not installed (apt-get install nginx)")
    store = redis_or_skip()
    tmp = tmp_path_factory.mktemp("replicas")
    database_url = asyncio.run(create_database(pg_server, "signals_replicas"))
    env = {
        "DATABASE_URL": database_url,
        "REDIS_URL": REDIS_URL,
        "SIGNALS_DATA_DIR": str(tmp / "data"),
        "SIGNALS_JWT_SECRET": TEST_JWT_SECRET,
        "SIGNALS_SALT_SECRET": TEST_SALT_SECRET,
        "SIGNALS_ALLOWED_APPS": "admin-console",
        "SIGNALS_ALLOWED_EVENT_TYPES": "click",
        "SIGNALS_RATE_LIMIT": f"{RATE_LIMIT}/hour",
        "SIGNALS_RETENTION_INTERVAL_MINUTES": "1",
        "SIGNALS_ANONYMISE_INTERVAL_MINUTES": "1",
    }
    ports = [free_port() for _ in range(REPLICAS)]
    nginx = Nginx(binary, tmp / "nginx", free_port(), ports)
    cluster = Cluster(database_url, env, ports, nginx)
    try:
        for index in range(REPLICAS):  # all at once, on an empty database
            cluster.start(index)
        asyncio.run(seed_once_migrated(database_url))
        for served in cluster.replicas:
            cluster.wait_ready(served)
        nginx.wait_listening()
        yield cluster
    finally:
        nginx.stop()
        for served in cluster.replicas:
            if served.proc.poll() is None:
                served.proc.kill()
                served.proc.wait()
        store.flushdb()
        store.close()
        asyncio.run(drop_database(pg_server, database_url))


async def seed_once_migrated(database_url: str, seconds: float = 60) -> None:
    """As soon as the migrations are in (and seconds before the first scheduled job runs):
    expired events for retention and a closed day's events for anonymisation."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            rows = await fetch(
                database_url, "SELECT count(*) AS n FROM _prisma_migrations WHERE finished_at IS NOT NULL"
            )
            if rows[0]["n"] == len(MIGRATIONS):
                break
        except Exception:  # noqa: BLE001 - the ledger does not exist yet
            pass
        await asyncio.sleep(0.05)
    else:
        raise AssertionError("the replicas did not migrate")
    await insert_expired(database_url, EXPIRED)
    await insert_events(
        database_url,
        [
            Row(CLOSED_DAY + dt.timedelta(minutes=i), "admin-console", f"seeded-{i:02d}" * 4)
            for i in range(CLOSED_DAY_ROWS)
        ],
    )


def test_replicas_started_at_once_apply_each_migration_once(cluster: Cluster) -> None:
    ledger = asyncio.run(
        fetch(cluster.database_url, "SELECT migration_name, count(*) AS n FROM _prisma_migrations GROUP BY 1")
    )
    assert {row["migration_name"]: row["n"] for row in ledger} == dict.fromkeys(MIGRATIONS, 1)
    applied = [r for r in cluster.logs() if r.get("event") == "migrations applied"]
    assert len(applied) == 1 and applied[0]["applied"] == MIGRATIONS  # one replica applied them all
    for served in cluster.replicas:
        assert httpx.get(f"http://127.0.0.1:{served.port}/readyz", timeout=5).status_code == 200


def test_scheduled_jobs_do_their_work_once_across_replicas(cluster: Cluster) -> None:
    def runs(job: str) -> list[dict]:
        return [r for r in cluster.logs() if r.get("event") == "job finished" and r.get("job") == job]

    deadline = time.monotonic() + 30  # each replica runs both jobs 5 s after it started
    while time.monotonic() < deadline and (len(runs("retention")) < REPLICAS or len(runs("anonymise")) < REPLICAS):
        time.sleep(0.2)
    retention, anonymise = runs("retention"), runs("anonymise")
    failed = [r for r in cluster.logs() if r.get("event", "").startswith("scheduled job failed")]
    assert len(retention) == len(anonymise) == REPLICAS, [r["summary"] for r in retention + anonymise] + failed

    # retention: one run removed the expired events; the others skipped or found none
    assert [r["rows"] for r in retention if r["rows"]] == [EXPIRED], [r["summary"] for r in retention]
    assert all(r["skipped"] or r["rows"] == 0 for r in retention if not r["rows"])
    old = asyncio.run(
        fetch(cluster.database_url, "SELECT count(*) AS n FROM events WHERE created_at < now() - interval '180 days'")
    )
    assert old[0]["n"] == 0

    # anonymisation: every closed day re-keyed by exactly one run, never again
    done = Counter(day["day"] for r in anonymise for day in r["days"])
    assert done[CLOSED_DAY.date().isoformat()] == 1 and set(done.values()) == {1}, done
    assert not [day for r in anonymise for day in r["days"] if day["reason"] != "closed"]
    rows = asyncio.run(
        fetch(
            cluster.database_url,
            "SELECT (SELECT rows FROM anonymised_days WHERE day = $1) AS recorded, "
            "count(*) FILTER (WHERE user_hash LIKE 'seeded-%') AS untouched FROM events "
            "WHERE created_at >= $2 AND created_at < $2 + interval '1 day'",
            CLOSED_DAY.date(),
            CLOSED_DAY.replace(hour=0),
        )
    )
    assert rows[0]["recorded"] == CLOSED_DAY_ROWS and rows[0]["untouched"] == 0


TRACK_BATCH = (
    "mutation($inputs: [TrackEventInput!]!) { trackEvents(inputs: $inputs) { status reason retryable clientEventId } }"
)


def test_rate_limit_is_shared_across_replicas(cluster: Cluster) -> None:
    """One caller, 3 x its limit in batches of 20, round robin over the replicas: the limit
    holds in total (each replica alone would have let RATE_LIMIT through)."""
    prefix = f"limit-{uuid.uuid4().hex[:8]}-"
    headers = {"authorization": f"Bearer {token(subject=f'limited-{prefix}')}", "user-agent": BROWSER_UA}
    statuses: Counter[str] = Counter()
    seen_before = len(cluster.nginx.access_log())
    with httpx.Client(base_url=cluster.nginx.url, headers=headers, timeout=10) as http:
        for batch in range(3 * RATE_LIMIT // 20):
            inputs = [
                {"appName": "admin-console", "eventType": "click", "clientEventId": f"{prefix}{batch}-{i}"}
                for i in range(20)
            ]
            response = http.post("/graphql", json={"query": TRACK_BATCH, "variables": {"inputs": inputs}})
            assert response.status_code == 200, response.text
            answers = response.json()["data"]["trackEvents"]
            statuses.update(f"{a['status']} {a['reason']} {a['retryable']}" for a in answers)
    assert statuses == {"ACCEPTED None False": RATE_LIMIT, "DROPPED RATE_LIMITED True": 2 * RATE_LIMIT}, statuses
    stored = asyncio.run(count_rows(cluster.database_url, prefix))
    assert len(stored) == RATE_LIMIT and set(stored.values()) == {1}  # recounted by SQL over the rows
    # nginx spread the caller's requests over every replica
    upstreams = Counter(line[2] for line in cluster.nginx.access_log()[seen_before:] if line[0] == "/graphql")
    assert set(upstreams) == {f"127.0.0.1:{p}" for p in cluster.ports}, upstreams


def test_rolling_restart_under_load_loses_nothing(cluster: Cluster) -> None:
    load = TrackLoad(
        cluster.nginx.url, [token(subject=f"rolling-{n}-{uuid.uuid4().hex[:6]}") for n in range(12)], rate=60, drain=20
    )
    restarts: list[int | None] = []

    async def drive() -> None:
        task = asyncio.create_task(load.run())
        await asyncio.sleep(2)
        for index in range(REPLICAS):
            old = cluster.replicas[index]
            old.proc.send_signal(signal.SIGTERM)  # SIGTERM: stop accepting, finish in flight, flush the queue
            restarts.append(await asyncio.to_thread(old.proc.wait, 30))
            served = cluster.start(index)
            await asyncio.to_thread(cluster.wait_ready, served)
            await asyncio.sleep(1)
        await asyncio.sleep(1)
        load.stop()
        await asyncio.wait_for(task, 40)

    seen_before = len(cluster.nginx.access_log())
    asyncio.run(drive())
    retried = sum(", " in line[2] for line in cluster.nginx.access_log()[seen_before:])
    print(
        f"rolling restart: {len(load.started)} events, {load.requests} requests, "
        f"{retried} passed on by nginx to the next replica, clients saw {dict(load.refusals) or 'no refusal'}"
    )
    # uvicorn re-raises SIGTERM after its graceful shutdown, as a supervisor expects
    assert all(code in (0, -15) for code in restarts), restarts
    assert all(count_of(records(s.lines), "signals stopped") == 1 for s in cluster.retired[-REPLICAS:])
    assert not load.unacknowledged, sorted(load.unacknowledged)[:5]
    assert not load.not_retryable, load.not_retryable
    assert all(n == 1 for n in load.accepted.values())  # no id was ACCEPTED twice
    stored = asyncio.run(count_rows(cluster.database_url, load.prefix))
    assert set(stored) == set(load.started) and set(stored.values()) == {1}  # each id stored exactly once
    assert len(load.started) > 300


def count_of(lines: list[dict], event: str) -> int:
    return sum(r.get("event") == event for r in lines)
