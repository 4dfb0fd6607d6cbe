"""Database faults: the app reaches its real PostgreSQL through a loopback proxy that we cut.

testkit/faultproxy.py sits between the service and the suite's PostgreSQL (embedded or
DATABASE_URL); `cut()` drops every connection and refuses new ones (the database is
down), `stall()` keeps connections open and passes nothing (a partition), `restore()` ends
the outage. Nothing is mocked: the database really disappears from the service's view.

What must hold: during an outage `trackEvent` answers within the configured write timeout
with a retryable UNAVAILABLE result, `/readyz` says 503 and then 200 again, and once the
database is back every acknowledged event is stored exactly once.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from app.config import Settings
from testkit.database import count_rows
from testkit.faultproxy import FaultProxy
from testkit.http import asgi_client
from testkit.logs import production_log_lines
from testkit.settings import make_settings
from testkit.tokens import token

TRACK = """mutation($input: TrackEventInput!) {
  trackEvent(input: $input) { status reason retryable message clientEventId }
}"""
UA = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0 Safari/537.36"
WRITE_TIMEOUT = 1.5


@pytest.fixture
def proxy(migrated_db: str) -> Iterator[FaultProxy]:
    with FaultProxy(migrated_db) as running:
        yield running


def headers() -> dict[str, str]:
    return {"authorization": f"Bearer {token(roles=['member'])}", "user-agent": UA}


async def track(client: httpx.AsyncClient, client_event_id: str) -> dict:
    variables = {"input": {"eventType": "click", "appName": "admin-console", "clientEventId": client_event_id}}
    response = await client.post("/graphql", json={"query": TRACK, "variables": variables}, headers=headers())
    assert response.status_code == 200, response.text
    body = response.json()
    assert "errors" not in body, body
    return body["data"]["trackEvent"]


async def wait_ready(client: httpx.AsyncClient, status: int, within: float) -> float:
    started = time.monotonic()
    while True:
        if (await client.get("/readyz")).status_code == status:
            return time.monotonic() - started
        assert time.monotonic() - started < within, f"/readyz never answered {status} within {within}s"
        await asyncio.sleep(0.1)


@pytest.mark.parametrize("fault", ["cut", "stall"])
async def test_outage_answers_fast_and_retryable_then_recovers(
    proxy: FaultProxy, migrated_db: str, tmp_path: Path, fault: str
) -> None:
    settings = make_settings(proxy.url, tmp_path, write_timeout=WRITE_TIMEOUT, db_connect_timeout=1.0)
    with production_log_lines() as lines:
        await outage_and_recovery(proxy, settings, migrated_db, fault)
    # ops see the outage once and its end once (not a line per failed batch), and no
    # line carries the caller's User-Agent or address
    assert sum("database writes failing" in line for line in lines) == 1, lines
    assert sum("database writes recovered" in line for line in lines) == 1, lines
    assert not [line for line in lines if UA in line or "203.0.113.7" in line]


async def outage_and_recovery(proxy: FaultProxy, settings: Settings, migrated_db: str, fault: str) -> None:
    async with asgi_client(settings) as client:
        prefix = f"fault-{uuid.uuid4().hex[:12]}-"
        before = f"{prefix}before"
        assert (await track(client, before))["status"] == "ACCEPTED"
        assert (await client.get("/readyz")).status_code == 200

        getattr(proxy, fault)()
        during = f"{prefix}during"
        started = time.monotonic()
        result = await track(client, during)
        elapsed = time.monotonic() - started
        assert result["status"] == "DROPPED" and result["reason"] == "UNAVAILABLE" and result["retryable"] is True
        assert "retry" in result["message"] and result["clientEventId"] == during
        assert elapsed < WRITE_TIMEOUT + 1.0, f"trackEvent took {elapsed:.2f}s during the outage"
        assert await wait_ready(client, 503, within=5) < 5

        proxy.restore()
        await wait_ready(client, 200, within=10)
        deadline = time.monotonic() + 10  # the writer reconnects on its next batch
        while (retried := await track(client, during))["status"] == "DROPPED":
            assert retried["retryable"] and time.monotonic() < deadline, retried
            await asyncio.sleep(0.2)
        assert retried["status"] in ("ACCEPTED", "DUPLICATE")
        assert (await track(client, before))["status"] == "DUPLICATE"

    assert await count_rows(migrated_db, prefix) == {before: 1, during: 1}


async def test_concurrent_load_through_an_outage_loses_and_duplicates_nothing(
    proxy: FaultProxy, migrated_db: str, tmp_path: Path
) -> None:
    """Clients retry with the same clientEventId until acknowledged, as signals.js does; the
    database is cut in the middle. Afterwards: one row per acknowledged id, no other rows."""
    settings = make_settings(proxy.url, tmp_path, write_timeout=WRITE_TIMEOUT, db_connect_timeout=1.0)
    prefix = f"soak-{uuid.uuid4().hex[:8]}-"
    acknowledged: dict[str, int] = {}
    refusals = 0
    stop_sending = asyncio.Event()

    async def client_loop(client: httpx.AsyncClient, worker: int) -> None:
        nonlocal refusals
        n = 0
        while not stop_sending.is_set():
            event_id = f"{prefix}{worker}-{n}"
            n += 1
            attempts = 0
            while True:
                attempts += 1
                result = await track(client, event_id)
                if result["status"] in ("ACCEPTED", "DUPLICATE"):
                    acknowledged[event_id] = acknowledged.get(event_id, 0) + 1
                    break
                assert result["retryable"], result  # nothing else can fail these events
                refusals += 1
                await asyncio.sleep(min(0.05 * attempts, 0.5))

    async with asgi_client(settings) as client:
        workers = [asyncio.create_task(client_loop(client, w)) for w in range(8)]
        await asyncio.sleep(1.5)
        proxy.cut()
        await asyncio.sleep(2.5)
        proxy.restore()
        await asyncio.sleep(1.5)
        stop_sending.set()
        await asyncio.wait_for(asyncio.gather(*workers), timeout=30)

    assert refusals > 0, "the outage never reached a client: the test proved nothing"
    assert all(count == 1 for count in acknowledged.values())
    stored = await count_rows(migrated_db, prefix)
    assert set(stored) == set(acknowledged), "lost or phantom events"
    assert all(n == 1 for n in stored.values()), "duplicated events"


@pytest.mark.parametrize("fault", ["cut", "stall"])
async def test_admin_reads_during_an_outage_get_a_retryable_error_then_answers(
    proxy: FaultProxy, tmp_path: Path, fault: str
) -> None:
    # bounded by configuration: a stalled pooled connection is given up after the client-side
    # command timeout (statement timeout + 1 s), then reconnecting gets the connect timeout
    settings = make_settings(
        proxy.url, tmp_path, db_connect_timeout=1.0, db_pool_timeout=1.0, db_statement_timeout_ms=2000
    )
    admin = {"authorization": f"Bearer {token(roles=['admin'], subject='admin-7')}"}
    query = {"query": "{ events(first: 1) { edges { node { id } } } }"}
    async with asgi_client(settings) as client:
        assert "errors" not in (await client.post("/graphql", json=query, headers=admin)).json()
        getattr(proxy, fault)()
        started = time.monotonic()
        body = (await client.post("/graphql", json=query, headers=admin)).json()
        elapsed = time.monotonic() - started
        proxy.restore()
        assert body["data"] is None
        [error] = body["errors"]
        assert error["extensions"]["code"] == "UNAVAILABLE" and error["extensions"]["retryable"] is True, error
        assert "database" in error["message"]
        bound = settings.db_statement_timeout_ms / 1000 + 1 + 2 * settings.db_connect_timeout + 1
        assert elapsed < bound, f"the read took {elapsed:.1f}s during the outage"
        deadline = time.monotonic() + 10
        while "errors" in (answer := (await client.post("/graphql", json=query, headers=admin)).json()):
            assert time.monotonic() < deadline, answer
            await asyncio.sleep(0.2)
