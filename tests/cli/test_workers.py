"""`signals serve --workers N`: one listening socket, one embedded PostgreSQL, N uvicorn
workers under uvicorn's supervisor, each with the guarded protocol and its timeouts; SIGHUP
reaches every worker; SIGTERM drains them all and the parent exits 0."""

from __future__ import annotations

import asyncio
import json
import signal
import socket
import subprocess
import time
from pathlib import Path

import httpx
import psutil
import pytest

from app.config import MAX_AUTO_WORKERS, auto_workers, load_settings
from app.storage.embedded import EmbeddedPostgres
from testkit.database import count_rows
from testkit.processes import free_port
from testkit.servers import Served
from testkit.settings import TEST_JWT_SECRET
from testkit.tokens import token
from testkit.trackload import TrackLoad

pytestmark = pytest.mark.timeout(120)


def test_workers_default_to_one_per_usable_core_capped() -> None:
    cores = len(psutil.Process().cpu_affinity() or []) or 1
    assert auto_workers() == max(1, min(cores, MAX_AUTO_WORKERS))
    assert load_settings(workers=0).worker_count == auto_workers()
    assert load_settings(workers=3).worker_count == 3


def wait_ready(base: str, proc: subprocess.Popen[str], seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        assert proc.poll() is None, "signals serve exited before it was ready"
        try:
            if httpx.get(f"{base}/readyz", timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    raise AssertionError("signals serve --workers 2 did not become ready")


def workers_of(parent: psutil.Process) -> list[psutil.Process]:
    """The uvicorn workers: the parent's children started by multiprocessing's spawn."""
    return [child for child in parent.children() if any("spawn_main" in part for part in child.cmdline())]


def postmasters_of(pgdata: Path) -> list[psutil.Process]:
    """Running PostgreSQL servers (postmasters) with `pgdata` as their data directory."""
    found = []
    for proc in psutil.process_iter(["name", "cmdline"]):
        cmdline = proc.info["cmdline"] or []
        if proc.info["name"] == "postgres" and "-D" in cmdline and cmdline[cmdline.index("-D") + 1] == str(pgdata):
            found.append(proc)
    return found


def healthz_owner(workers: list[psutil.Process], port: int) -> int | None:
    """Ask /healthz on a new connection; the pid of the worker that answered it."""
    with socket.create_connection(("127.0.0.1", port), timeout=5) as raw:
        raw.sendall(b"GET /healthz HTTP/1.1\r\nhost: x\r\n\r\n")
        assert raw.recv(4096).startswith(b"HTTP/1.1 200")
        client_port = raw.getsockname()[1]
        for worker in workers:  # the connection is still open: find who holds its server side
            for conn in worker.net_connections(kind="tcp"):
                if conn.laddr and conn.laddr.port == port and conn.raddr and conn.raddr.port == client_port:
                    return worker.pid
    return None


def test_two_workers_share_one_socket_and_one_embedded_postgres(tmp_path: Path) -> None:
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    secret_file = tmp_path / "salt-secret"
    secret_file.write_text("workers-salt-secret-" + "q7W2e9R4t6Y1u3I8" * 3)
    secret_file.chmod(0o600)
    served = Served(
        {
            "SIGNALS_DATA_DIR": str(tmp_path / "data"),
            "SIGNALS_JWT_SECRET": TEST_JWT_SECRET,
            "SIGNALS_SALT_SECRET_FILE": str(secret_file),
            "SIGNALS_SALT_SECRET_POLL_SECONDS": "0",  # SIGHUP only: the rotation below is the signal's doing
            "SIGNALS_ALLOWED_APPS": "admin-console",
            "SIGNALS_ALLOWED_EVENT_TYPES": "click",
            "SIGNALS_RATE_LIMIT": "100000/minute",
            "SIGNALS_HEADER_TIMEOUT": "1",
        },
        port,
        "--workers",
        "2",
    )
    proc = served.proc
    pgdata = tmp_path / "data" / "postgres"
    try:
        wait_ready(base, proc)
        parent = psutil.Process(proc.pid)
        workers = workers_of(parent)
        assert len(workers) == 2, [w.cmdline() for w in parent.children()]

        # one embedded PostgreSQL, started by the parent, in one data directory
        assert len(postmasters_of(pgdata)) == 1, [p.cmdline() for p in postmasters_of(pgdata)]
        assert [p.parent for p in tmp_path.rglob("PG_VERSION") if p.parent.parent.name != "base"] == [pgdata]

        # both workers answer on the one socket: each connection lands on either (the kernel picks)
        deadline = time.monotonic() + 60  # /readyz answers as soon as one worker is up: wait for both
        while time.monotonic() < deadline and count(served.lines, "signals ready") < 2:
            time.sleep(0.1)
        assert count(served.lines, "signals ready") == 2, "\n".join(served.lines)
        answered_by: set[int] = set()
        for _ in range(200):
            owner = healthz_owner(workers, port)
            assert owner is not None, "a connection answered by no worker of this parent"
            answered_by.add(owner)
            if len(answered_by) == len(workers):
                break
        assert answered_by == {w.pid for w in workers}, "\n".join(served.lines)

        # each worker runs the guarded protocol with the configured header timeout: 408 after ~1 s
        for _ in range(4):
            with socket.create_connection(("127.0.0.1", port), timeout=5) as raw:
                raw.sendall(b"POST /graphql HTTP/1.1\r\nhost: x\r\n")  # headers never finished
                started = time.monotonic()
                answer = raw.recv(4096)
                assert answer.startswith(b"HTTP/1.1 408"), answer
                assert time.monotonic() - started < 3

        # SIGHUP to the parent re-reads the salt secret in every worker (no restart)
        secret_file.write_text("workers-salt-secret-rotated-" + "z8X3c5V7b2N4m6K1" * 3)
        parent.send_signal(signal.SIGHUP)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and count(served.lines, "salt secret rotated") < 2:
            time.sleep(0.1)
        assert count(served.lines, "salt secret rotated") == 2, "\n".join(served.lines)
        assert {w.pid for w in workers_of(parent)} == {w.pid for w in workers}

        # load through both workers, then SIGTERM to the parent in the middle of it
        load = TrackLoad(
            base, [token(roles=["member"], subject=f"worker-load-{n}") for n in range(8)], rate=200, drain=0
        )

        async def drive() -> None:
            task = asyncio.create_task(load.run())
            await asyncio.sleep(2.0)
            parent.send_signal(signal.SIGTERM)
            await asyncio.sleep(1.0)
            load.stop()
            await asyncio.wait_for(task, 30)

        asyncio.run(drive())
        assert proc.wait(timeout=30) == 0, "\n".join(served.lines)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert len(load.acked) > 100, load.refusals
    assert not load.not_retryable, load.not_retryable
    assert count(served.lines, "signals stopped") == 2  # each worker ran its lifespan's shutdown
    assert count(served.lines, "migrations applied") == 1  # by the parent, once
    assert not postmasters_of(pgdata)  # the parent stopped the embedded server after the workers

    # every acknowledged event is stored, once (the embedded server is started again to read it)
    embedded = EmbeddedPostgres(tmp_path / "data")
    try:
        stored = asyncio.run(count_rows(embedded.start(), load.prefix))
    finally:
        embedded.stop()
    assert load.acked <= set(stored), sorted(load.acked - set(stored))[:5]
    assert all(n == 1 for n in stored.values())
    assert all(n == 1 for n in load.accepted.values())


def count(lines: list[str], event: str) -> int:
    """Log lines (JSON) whose event is `event`."""
    return sum(json.loads(line).get("event") == event for line in lines if line.startswith("{"))


def test_workers_stop_when_the_parent_is_killed(tmp_path: Path) -> None:
    """SIGKILL to the parent (the OOM killer, say): no worker goes on serving unsupervised,
    and the port is free for the service started again."""
    port = free_port()
    served = Served({"SIGNALS_DATA_DIR": str(tmp_path / "data")}, port, "--workers", "2")
    try:
        wait_ready(f"http://127.0.0.1:{port}", served.proc)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and count(served.lines, "signals ready") < 2:
            time.sleep(0.1)
        workers = workers_of(psutil.Process(served.proc.pid))
        assert len(workers) == 2
        served.proc.kill()
        served.proc.wait(timeout=10)
        _, alive = psutil.wait_procs(workers, timeout=20)
        assert not alive, [w.pid for w in alive]
        assert count(served.lines, "signals stopped") == 2  # each shut down gracefully on SIGTERM
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", port))  # nobody listens there any more
    finally:
        if served.proc.poll() is None:
            served.proc.kill()
            served.proc.wait()
        # the killed parent could not stop its embedded PostgreSQL: a fast shutdown (SIGINT)
        postmasters = postmasters_of(tmp_path / "data" / "postgres")
        for postmaster in postmasters:
            postmaster.send_signal(signal.SIGINT)
        psutil.wait_procs(postmasters, timeout=20)
    assert not postmasters_of(tmp_path / "data" / "postgres")
