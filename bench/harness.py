"""What the benchmarks and the tests need to run a real `signals serve` beside them: a free
loopback port, an environment without the caller's own settings, a scratch database on a
PostgreSQL server, and the server process's peak memory."""

from __future__ import annotations

import os
import socket
import threading
import uuid

import asyncpg
import psutil
from sqlalchemy.engine import make_url

from app.storage.database import asyncpg_dsn


def free_port() -> int:
    """A loopback port nothing listens on (yet)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def clean_env(**settings: str) -> dict[str, str]:
    """This process's environment without any SIGNALS_* setting, DATABASE_URL or REDIS_URL
    (so a developer's own configuration cannot leak into a server under test), plus `settings`."""
    env = {
        k: v for k, v in os.environ.items() if not k.startswith("SIGNALS_") and k not in ("DATABASE_URL", "REDIS_URL")
    }
    env.update(settings)
    return env


async def create_database(server_url: str, prefix: str) -> str:
    """A new empty database `<prefix>_<random>` on the server of `server_url`; its URL."""
    name = f"{prefix}_{uuid.uuid4().hex[:12]}"
    conn = await asyncpg.connect(asyncpg_dsn(server_url))
    try:
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()
    return make_url(server_url).set(database=name).render_as_string(hide_password=False)


async def drop_database(server_url: str, url: str) -> None:
    """Drop the database of `url` (connections to it are ended) via the server of `server_url`."""
    conn = await asyncpg.connect(asyncpg_dsn(server_url))
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{make_url(url).database}" WITH (FORCE)')
    finally:
        await conn.close()


class PeakRss(threading.Thread):
    """Peak resident set size of one process (not its children), sampled every `interval` s."""

    def __init__(self, pid: int, interval: float = 0.02) -> None:
        super().__init__(daemon=True)
        self.process = psutil.Process(pid)
        self.interval = interval
        self.peak = self.process.memory_info().rss
        self.baseline = self.peak
        self._stop_sampling = threading.Event()

    def run(self) -> None:
        while not self._stop_sampling.is_set():
            try:
                self.peak = max(self.peak, self.process.memory_info().rss)
            except psutil.Error:
                return
            self._stop_sampling.wait(self.interval)

    def now(self) -> int:
        return self.process.memory_info().rss

    def stop(self) -> None:
        self._stop_sampling.set()
        self.join(timeout=2)
