"""Admin reads on a real streaming replica (DATABASE_READ_URL), and back on the primary when
it lags or is down.

Two embedded PostgreSQL servers: the primary, and a standby made from it with
`pg_basebackup -R` (testkit/replication.py), streaming over the primary's socket. The app
runs under uvicorn (testkit/servers.py) with DATABASE_URL = the primary and
DATABASE_READ_URL = the standby; everything goes over real HTTP. Where a read was answered
is proven by what it sees: with the standby's replay paused, a row just written to the
primary is missing from the answer exactly while the reads go to the standby.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest
from prometheus_client import REGISTRY
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import text

from app.storage.database import asyncpg_dsn, create_engine
from app.storage.embedded import EmbeddedPostgres
from app.storage.migrations import migrate
from app.storage.replica import ReadRoute, ReadRouter, ReplicaStatus, judge
from testkit.logs import production_log_lines
from testkit.replication import StreamingReplica
from testkit.seed import event_row, insert_rows
from testkit.servers import LiveServer
from testkit.settings import make_settings
from testkit.tokens import token

pytestmark = pytest.mark.timeout(90)

APP = "admin-console"
MAX_LAG = 5.0  # seconds: long enough to read from the paused standby, short enough to wait out
ADMIN = {"authorization": f"Bearer {token(roles=['admin'])}"}
MEMBER = {"authorization": f"Bearer {token(roles=['member'])}", "user-agent": "Mozilla/5.0 Firefox/128.0"}

TRACK = "mutation($input: TrackEventInput!) { trackEvent(input: $input) { status reason } }"
EVENTS = "query($f: EventFilter) { events(filter: $f, first: 100) { edges { node { clientEventId } } } }"
STATS = """query($f: EventFilter) {
  eventStats(filter: $f, interval: DAY) { buckets { start events distinctUsers } }
}"""
ADOPTION = """query($p: EventFilter!, $t: EventFilter!) {
  adoption(population: $p, target: $t) { days { day activeUsers targetUsers } }
}"""


@pytest.fixture
def primary(tmp_path: Path) -> Iterator[tuple[EmbeddedPostgres, str]]:
    server = EmbeddedPostgres(tmp_path / "primary")
    try:
        yield server, server.start()
    finally:
        server.stop()


@pytest.fixture
def replica(primary: tuple[EmbeddedPostgres, str]) -> Iterator[StreamingReplica]:
    standby = StreamingReplica(*primary)
    try:
        yield standby.start()
    finally:
        standby.remove()  # before the primary stops (fixtures end in reverse order)


@pytest.fixture
async def served(
    primary: tuple[EmbeddedPostgres, str], replica: StreamingReplica, tmp_path: Path, request: pytest.FixtureRequest
) -> AsyncIterator[tuple[httpx.AsyncClient, list[str]]]:
    check_seconds = getattr(request, "param", 0.2)
    settings = make_settings(
        primary[1],
        tmp_path,
        database_read_url=replica.url,
        read_replica_max_lag_seconds=MAX_LAG,
        read_replica_check_seconds=check_seconds,
        db_connect_timeout=2.0,
    )
    with production_log_lines() as lines:
        server = await LiveServer(settings).start()
        try:
            async with httpx.AsyncClient(base_url=server.url, timeout=15) as http:
                yield http, lines
        finally:
            await server.stop()


async def sql(url: str, statement: str, *args: Any) -> list[asyncpg.Record]:
    conn = await asyncpg.connect(asyncpg_dsn(url))
    try:
        return await conn.fetch(statement, *args)
    finally:
        await conn.close()


async def gql(http: httpx.AsyncClient, query: str, variables: dict[str, Any], headers: dict[str, str]) -> Any:
    response = await http.post("/graphql", json={"query": query, "variables": variables}, headers=headers)
    body = response.json()
    assert response.status_code == 200 and not body.get("errors"), body
    return body["data"]


async def track(http: httpx.AsyncClient) -> str:
    client_event_id = str(uuid.uuid4())
    variables = {"input": {"eventType": "click", "appName": APP, "clientEventId": client_event_id}}
    result = (await gql(http, TRACK, variables, MEMBER))["trackEvent"]
    assert result["status"] == "ACCEPTED", result
    return client_event_id


async def read_ids(http: httpx.AsyncClient) -> set[str]:
    data = await gql(http, EVENTS, {"f": {"appName": APP}}, ADMIN)
    return {edge["node"]["clientEventId"] for edge in data["events"]["edges"]}


async def readyz(http: httpx.AsyncClient) -> dict[str, Any]:
    response = await http.get("/readyz")
    assert response.status_code == 200, response.text  # the primary is up: ready, whatever the replica
    body: dict[str, Any] = response.json()
    return body


async def wait_replica(http: httpx.AsyncClient, within: float = 15.0, **wanted: object) -> dict[str, Any]:
    deadline = time.monotonic() + within
    while True:
        replica = (await readyz(http))["replica"]
        if all(replica.get(k) == v for k, v in wanted.items()):
            return replica
        assert time.monotonic() < deadline, f"/readyz never reported {wanted}: {replica}"
        await asyncio.sleep(0.1)


async def fallbacks(http: httpx.AsyncClient) -> dict[str, float]:
    text = (await http.get("/metrics")).text
    return {
        sample.labels["reason"]: sample.value
        for family in text_string_to_metric_families(text)
        if family.name == "signals_read_fallbacks"
        for sample in family.samples
        if sample.name == "signals_read_fallbacks_total"
    }


def logged(lines: list[str], event: str) -> list[dict[str, Any]]:
    return [record for line in lines if (record := json.loads(line)).get("event") == event]


async def test_admin_reads_come_from_the_replica_until_it_lags_past_the_bound(
    served: tuple[httpx.AsyncClient, list[str]], primary: tuple[EmbeddedPostgres, str], replica: StreamingReplica
) -> None:
    http, lines = served
    primary_url = primary[1]
    status = await wait_replica(http, servingReads=True, state="streaming")
    assert status["lagSeconds"] < MAX_LAG

    # closed days, seeded on the primary: their answers are stored there while the reads
    # that compute them run on the standby (which would refuse the INSERT: read-only)
    today = dt.datetime.now(dt.UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    first = today - dt.timedelta(days=3)
    rows = [
        event_row(first + dt.timedelta(days=d, hours=h), APP, "click" if h % 2 else "view", person=f"p{h % 3}")
        for d in (0, 1)
        for h in range(8, 14)
    ]
    await insert_rows(primary_url, rows)
    await replica.caught_up(primary_url)
    window = {"appName": APP, "from": first.isoformat(), "to": (first + dt.timedelta(days=2)).isoformat()}
    buckets = (await gql(http, STATS, {"f": window}, ADMIN))["eventStats"]["buckets"]
    adoption = (await gql(http, ADOPTION, {"p": window, "t": {"eventTypes": ["click"]}}, ADMIN))["adoption"]
    recount = await sql(
        primary_url,
        "SELECT (created_at AT TIME ZONE 'UTC')::date AS day, count(*) AS events, count(DISTINCT user_hash) AS users,"
        " count(DISTINCT user_hash) FILTER (WHERE event_type = 'click') AS clicked"
        " FROM events WHERE app_name = $1 GROUP BY 1 ORDER BY 1",
        APP,
    )
    assert [(b["events"], b["distinctUsers"]) for b in buckets] == [(r["events"], r["users"]) for r in recount]
    assert [(d["activeUsers"], d["targetUsers"]) for d in adoption["days"]] == [
        (r["users"], r["clicked"]) for r in recount
    ]
    stored = await sql(primary_url, "SELECT day FROM daily_app_users WHERE app_name = $1 ORDER BY day", APP)
    assert [r["day"] for r in stored] == [r["day"] for r in recount]
    assert (await sql(primary_url, "SELECT count(*) AS n FROM day_answers"))[0]["n"] >= 2
    # the reads' sessions are on the standby, under the read pool's application_name
    assert await replica.execute("SELECT count(*) FROM pg_stat_activity WHERE application_name = 'signals-reads'")

    # a write goes to the primary and reaches the reads once replayed
    started = time.monotonic()  # the replica's lag below counts from this commit at the latest
    written = await track(http)
    assert await sql(primary_url, "SELECT 1 FROM events WHERE client_event_id = $1", written)
    await replica.caught_up(primary_url)
    assert written in await read_ids(http)

    # replay paused: the next row is on the primary only, and reads do not see it while
    # the standby's lag is within the bound: they come from the standby
    before = await fallbacks(http)
    await replica.execute("SELECT pg_wal_replay_pause()")
    hidden = await track(http)
    assert await sql(primary_url, "SELECT 1 FROM events WHERE client_event_id = $1", hidden)
    assert not await replica.execute(f"SELECT count(*) FROM events WHERE client_event_id = '{hidden}'")
    seen = await read_ids(http)
    assert time.monotonic() - started < MAX_LAG, "too slow to tell the standby's answer from the primary's"
    assert written in seen and hidden not in seen
    assert (await fallbacks(http)).get("lagging", 0) == before.get("lagging", 0)

    # past the bound the reads go to the primary, say so in /readyz and the metric, and see the row
    lagging = await wait_replica(http, servingReads=False, fallback="lagging")
    assert lagging["state"] == "streaming" and lagging["lagSeconds"] > MAX_LAG
    assert hidden in await read_ids(http)
    assert (await fallbacks(http))["lagging"] >= before.get("lagging", 0) + 1
    assert not await replica.execute(f"SELECT count(*) FROM events WHERE client_event_id = '{hidden}'")

    # replay resumed: the standby catches up and serves the reads again
    await replica.execute("SELECT pg_wal_replay_resume()")
    back = await wait_replica(http, servingReads=True)
    assert back["lagSeconds"] < MAX_LAG
    counted = (await fallbacks(http))["lagging"]
    assert hidden in await read_ids(http)
    assert (await fallbacks(http))["lagging"] == counted  # served by the standby: no fallback counted

    # each change of state logged once, not once per read
    assert [r["reason"] for r in logged(lines, "admin reads go to the primary")] == ["lagging"]
    assert len(logged(lines, "admin reads go to the read replica")) == 1


@pytest.mark.parametrize("served", [3.0], indirect=True)  # checks 3 s apart: reads meet the outage first
async def test_reads_answer_from_the_primary_while_the_replica_is_down(
    served: tuple[httpx.AsyncClient, list[str]], primary: tuple[EmbeddedPostgres, str], replica: StreamingReplica
) -> None:
    http, lines = served
    await wait_replica(http, servingReads=True, state="streaming")
    written = await track(http)
    await replica.caught_up(primary[1])
    assert written in await read_ids(http)
    before = (await fallbacks(http)).get("down", 0)

    await asyncio.to_thread(replica.stop)
    after_stop = await track(http)
    seen = await read_ids(http)  # the standby's pooled connections are gone: answered by the primary
    assert {written, after_stop} <= seen
    assert (await fallbacks(http))["down"] >= before + 1
    down = await wait_replica(http, state="down")
    assert down == {"state": "down", "lagSeconds": None, "servingReads": False, "fallback": "down"}
    assert (await http.get("/readyz")).status_code == 200

    await asyncio.to_thread(replica.start)
    await wait_replica(http, servingReads=True, state="streaming")
    assert {written, after_stop} <= await read_ids(http)
    assert len(logged(lines, "read replica unreachable; admin reads go to the primary")) == 1
    assert len(logged(lines, "read replica answers again")) == 1


async def test_a_read_the_replica_cancels_for_replay_runs_again_on_the_primary(
    primary: tuple[EmbeddedPostgres, str], replica: StreamingReplica, tmp_path: Path
) -> None:
    primary_url = primary[1]
    await migrate(primary_url)
    await replica.execute("ALTER SYSTEM SET max_standby_streaming_delay = 0")  # cancel at once, not after 30 s
    await replica.execute("SELECT pg_reload_conf()")
    await replica.caught_up(primary_url)
    settings = make_settings(primary_url, tmp_path)
    router = ReadRouter(create_engine(primary_url, settings), create_engine(replica.url, settings))
    ran_on_replica: list[bool] = []

    async def read(route: ReadRoute) -> int:
        ran_on_replica.append(route.on_replica)
        async with route.engine.connect() as conn:
            return int((await conn.execute(text("SELECT count(*) FROM events, pg_sleep(1.5)"))).scalar_one())

    async def lock_on_primary() -> None:
        await asyncio.sleep(0.4)  # while the replica's read holds its lock on events
        conn = await asyncpg.connect(asyncpg_dsn(primary_url))
        try:
            async with conn.transaction():  # replayed on the replica, where it cancels the read
                await conn.execute("LOCK TABLE events IN ACCESS EXCLUSIVE MODE")
        finally:
            await conn.close()

    try:
        assert (await router.check()) == ReplicaStatus("streaming", 0.0, None)
        before = REGISTRY.get_sample_value("signals_read_fallbacks_total", {"reason": "recovery_conflict"}) or 0
        answer, _ = await asyncio.gather(router.run(read), lock_on_primary())
        assert answer == 0 and ran_on_replica == [True, False]
        assert REGISTRY.get_sample_value("signals_read_fallbacks_total", {"reason": "recovery_conflict"}) == before + 1
        assert (await router.check()) == ReplicaStatus("streaming", 0.0, None)  # a conflict is no outage
    finally:
        await router.stop()
        await router.primary.dispose()


@pytest.mark.parametrize(
    ("look", "expected"),
    [
        ({"standby": False, "receiver": None, "caught_up": False, "since_replay": None}, ("not_standby", None, False)),
        # caught up: lag 0 however long ago the last commit was (an idle primary)
        (
            {"standby": True, "receiver": "streaming", "caught_up": True, "since_replay": 900.0},
            ("streaming", 0.0, True),
        ),
        ({"standby": True, "receiver": "streaming", "caught_up": False, "since_replay": 2.5}, ("streaming", 2.5, True)),
        (
            {"standby": True, "receiver": "streaming", "caught_up": False, "since_replay": 31.0},
            ("streaming", 31.0, False),
        ),
        # no WAL receiver (the primary unreachable from the standby): judged by the last replay
        ({"standby": True, "receiver": None, "caught_up": False, "since_replay": 1.0}, ("disconnected", 1.0, True)),
        ({"standby": True, "receiver": None, "caught_up": False, "since_replay": None}, ("disconnected", None, False)),
    ],
)
def test_judging_one_look_at_the_replica(look: dict[str, Any], expected: tuple[str, float | None, bool]) -> None:
    status = judge(**look, max_lag=30.0)
    assert (status.state, status.lag_seconds, status.serving_reads) == expected
