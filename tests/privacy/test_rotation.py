"""Salt secret operations: generate, check, refuse weak secrets, rotate while serving
(file change or SIGHUP), log fingerprints and never the secret."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import threading
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import httpx
import pytest

from app.cli.ops import write_secret_file
from app.cli.serve import create_app
from app.config import ConfigError, generate_secret
from app.privacy.rotation import SecretWatcher
from app.privacy.secret import SaltSecret, fingerprint
from testkit.processes import data_dir, free_port, signals
from testkit.servers import Served
from testkit.settings import TEST_JWT_SECRET, make_settings

WEAK = "only-twenty-one-bytes"


def secret_file(tmp_path: Path, secret: str, name: str = "salt") -> Path:
    path = tmp_path / name
    write_secret_file(path, secret)
    return path


# --- CLI: generate and check ---------------------------------------------------------------


def test_generate_makes_distinct_strong_secrets_that_check_accepts(tmp_path: Path) -> None:
    first, second = signals("secret", "generate"), signals("secret", "generate")
    assert first.returncode == 0 and second.returncode == 0
    secret = first.stdout.strip()
    assert len(secret.encode()) >= 32 and secret != second.stdout.strip()

    path = secret_file(tmp_path, secret)
    check = signals(
        "secret",
        "check",
        SIGNALS_SALT_SECRET_FILE=str(path),
        SIGNALS_ENV="production",
        SIGNALS_JWT_SECRET=TEST_JWT_SECRET,
        DATABASE_URL="postgresql://u@db.internal/signals",
    )
    assert check.returncode == 0, check.stderr
    assert fingerprint(secret.encode()) in check.stdout
    assert secret not in check.stdout + check.stderr


def test_generate_output_writes_an_owner_only_file(tmp_path: Path) -> None:
    target = tmp_path / "new-salt"
    result = signals("secret", "generate", "--output", str(target))
    assert result.returncode == 0, result.stderr
    secret = target.read_text().strip()
    assert oct(target.stat().st_mode & 0o777) == "0o600"
    assert fingerprint(secret.encode()) in result.stdout and secret not in result.stdout


@pytest.mark.parametrize(
    ("content", "words"),
    [(WEAK, "too weak: 21 bytes, need at least 32"), ("", "is empty"), ("a" * 40, "too few distinct characters")],
)
def test_check_rejects_a_bad_secret_file_with_one_line(tmp_path: Path, content: str, words: str) -> None:
    path = tmp_path / "salt"
    path.write_text(content)
    result = signals("secret", "check", SIGNALS_SALT_SECRET_FILE=str(path), SIGNALS_DATA_DIR=data_dir(tmp_path))
    assert result.returncode != 0
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and words in lines[0] and "SIGNALS_SALT_SECRET_FILE" in lines[0], result.stderr
    assert not content or content not in result.stderr


def test_production_start_refuses_a_weak_secret_file(tmp_path: Path) -> None:
    path = secret_file(tmp_path, WEAK)
    result = signals(
        "serve",
        SIGNALS_ENV="production",
        SIGNALS_SALT_SECRET_FILE=str(path),
        SIGNALS_JWT_SECRET=TEST_JWT_SECRET,
        DATABASE_URL="postgresql://u@127.0.0.1:1/signals",
    )
    assert result.returncode != 0
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "SIGNALS_SALT_SECRET_FILE: too weak" in lines[0], result.stderr
    assert WEAK not in result.stderr


# --- the holder: reload keeps the old secret when the new one is refused ----------------------


def test_reload_refuses_weak_and_empty_secrets_in_production(tmp_path: Path) -> None:
    strong = generate_secret()
    path = secret_file(tmp_path, strong)
    settings = make_settings(
        "postgresql://u@db.internal/signals", tmp_path, env="production", salt_secret=None, salt_secret_file=path
    )
    holder = SaltSecret(settings)
    for bad in (WEAK, ""):
        path.write_text(bad)
        with pytest.raises(ConfigError):
            holder.reload()
        assert holder.current() == strong.encode()
    newer = generate_secret()
    write_secret_file(path, newer)
    assert holder.reload() == (fingerprint(strong.encode()), fingerprint(newer.encode()))
    assert holder.current() == newer.encode()


# --- in-process: the watcher in the app's lifespan ----------------------------------------------


async def wait_until(condition: Callable[[], bool], seconds: float = 5.0) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return True
        await asyncio.sleep(0.05)
    return condition()


@contextlib.asynccontextmanager
async def serving(
    database_url: str, tmp_path: Path, poll_seconds: float
) -> AsyncIterator[tuple[Path, SaltSecret, str]]:
    """The app's lifespan running with a secret file: (file, the live holder, the first secret)."""
    old = generate_secret()
    path = secret_file(tmp_path, old)
    settings = make_settings(
        database_url, tmp_path, salt_secret=None, salt_secret_file=path, salt_secret_poll_seconds=poll_seconds
    )
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        yield path, app.runtime.services.salt_secret, old


async def test_file_change_rotates_within_seconds(migrated_db: str, tmp_path: Path) -> None:
    async with serving(migrated_db, tmp_path, poll_seconds=0.1) as (path, holder, old):
        assert holder.current() == old.encode()
        new = generate_secret()
        write_secret_file(path, new)
        assert await wait_until(lambda: holder.current() == new.encode())


async def test_sighup_rotates_without_polling(migrated_db: str, tmp_path: Path) -> None:
    async with serving(migrated_db, tmp_path, poll_seconds=0) as (path, holder, old):
        new = generate_secret()
        write_secret_file(path, new)
        await asyncio.sleep(0.3)
        assert holder.current() == old.encode()  # no polling: nothing happens by itself
        os.kill(os.getpid(), signal.SIGHUP)
        assert await wait_until(lambda: holder.current() == new.encode())
    # the handler is removed with the lifespan: SIGHUP is back to its default
    assert signal.getsignal(signal.SIGHUP) in (signal.SIG_DFL, None)


async def test_a_half_written_file_is_not_taken(tmp_path: Path) -> None:
    """The watcher waits until the file content has settled for one interval."""
    old = generate_secret()
    path = secret_file(tmp_path, old)
    settings = make_settings("postgresql://u@db.internal/signals", tmp_path, salt_secret=None, salt_secret_file=path)
    holder = SaltSecret(settings)
    watcher = SecretWatcher(holder, poll_seconds=0.2)
    watcher.start()
    try:
        final = generate_secret()
        for cut in (10, 30, 50):  # a slow writer: the content keeps changing every 0.1 s
            path.write_text(final[:cut])
            await asyncio.sleep(0.1)
            assert holder.current() == old.encode()
        path.write_text(final)
        assert await wait_until(lambda: holder.current() == final.encode())
    finally:
        await watcher.stop()


# --- end to end: `signals serve` in production, rotating while requests flow --------------------


def test_rotation_while_serving_logs_fingerprints_never_secrets(migrated_db: str, tmp_path: Path) -> None:
    first, second = generate_secret(), generate_secret()
    path = secret_file(tmp_path, first)
    port = free_port()
    server = Served(
        {
            "SIGNALS_ENV": "production",
            "DATABASE_URL": migrated_db,
            "SIGNALS_JWT_SECRET": TEST_JWT_SECRET,
            "SIGNALS_SALT_SECRET_FILE": str(path),
            "SIGNALS_SALT_SECRET_POLL_SECONDS": "0.2",
            "SIGNALS_DATA_DIR": data_dir(tmp_path),
            # the traffic below is up to 100 requests/s without credentials for several seconds
            "SIGNALS_ANONYMOUS_RATE_LIMIT": "100000/minute",
        },
        port,
        # one process: each worker watches the file on its own, and the steps below read
        # one watcher's log lines (SIGHUP to several workers: tests/cli/test_workers.py)
        "--workers",
        "1",
    )
    failures: list[str] = []
    requests = 0
    stop = threading.Event()

    def traffic() -> None:
        nonlocal requests
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=5) as http:
            while not stop.is_set():
                try:
                    response = http.post("/graphql", json={"query": "{ _service { sdl } }"})
                    if response.status_code != 200 or "errors" in response.json():
                        failures.append(response.text[:200])
                    requests += 1
                except httpx.HTTPError as exc:
                    failures.append(repr(exc))
                time.sleep(0.01)

    try:
        ready = server.wait_for_log("signals ready", seconds=60)
        assert ready["salt_secret_fingerprint"] == fingerprint(first.encode())
        worker = threading.Thread(target=traffic)
        worker.start()
        time.sleep(0.3)

        mark = len(server.lines)
        rotated_at = time.monotonic()
        write_secret_file(path, second)
        rotated = server.wait_for_log("salt secret rotated", seconds=5, after=mark)
        assert time.monotonic() - rotated_at < 5
        assert (rotated["old_fingerprint"], rotated["new_fingerprint"]) == (
            fingerprint(first.encode()),
            fingerprint(second.encode()),
        )
        assert rotated["trigger"] == "file-change"

        mark = len(server.lines)
        path.write_text(WEAK)  # production refuses it and keeps the second secret
        refused = server.wait_for_log("salt secret rotation refused; the active secret stays", seconds=5, after=mark)
        assert refused["active_fingerprint"] == fingerprint(second.encode()) and "too weak" in refused["reason"]

        write_secret_file(path, second)
        server.wait_for_log("salt secret unchanged", seconds=5, after=mark, trigger="file-change")
        mark = len(server.lines)
        server.proc.send_signal(signal.SIGHUP)  # the process survives SIGHUP and re-reads
        unchanged = server.wait_for_log("salt secret unchanged", seconds=5, after=mark, trigger="sighup")
        assert unchanged["fingerprint"] == fingerprint(second.encode())
        time.sleep(0.3)
        stop.set()
        worker.join(timeout=10)
        assert server.proc.poll() is None
    finally:
        stop.set()
        server.stop()
    assert failures == [] and requests > 20
    log = "\n".join(server.lines)
    for secret in (first, second, WEAK):
        assert secret not in log
