"""What the benchmarks and the tests need to run a real `signals` process beside them: a free
loopback port, an environment without the caller's own settings, the CLI itself, and a
process's peak memory."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import psutil

from app.config import PROJECT_ROOT


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


def signals(*args: str, timeout: float = 120, **env: str) -> subprocess.CompletedProcess[str]:
    """Run the `signals` CLI in a subprocess with only the given SIGNALS_*/DATABASE_URL variables."""
    return subprocess.run(
        [sys.executable, "-m", "app.cli", *args],
        env=clean_env(**env),
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=PROJECT_ROOT,
    )


def data_dir(tmp_path: Path) -> str:
    """The SIGNALS_DATA_DIR of a CLI run under `tmp_path`."""
    return str(tmp_path / "data")


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


def node_json(script: Path, payload: object, *, timeout: float = 60) -> Any:
    """Run `node script` with `payload` as JSON on stdin; its stdout, parsed as JSON."""
    result = subprocess.run(
        ["node", str(script)], input=json.dumps(payload), capture_output=True, text=True, timeout=timeout,
        cwd=PROJECT_ROOT,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)
