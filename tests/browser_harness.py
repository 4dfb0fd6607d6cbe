"""Running the real service for browser tests, and the browser scripts against it.

`LiveServer` serves the app with uvicorn on a free loopback port (in a thread with its own
event loop); `run_script` runs `node tests/browser/<script>.mjs ...`, which drives Debian's
Chromium through playwright-core, and returns the JSON lines it printed.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import shutil
import socket
import threading
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn

from app.cli.serve import create_app
from app.config import PROJECT_ROOT, Settings
from app.storage.migrations import migrate
from bench.harness import free_port  # noqa: F401 - also for the tests (a port with nothing listening: "the API is down")
from tests.conftest import create_database, drop_database

BROWSER_DIR = PROJECT_ROOT / "tests" / "browser"
ARTIFACTS = PROJECT_ROOT / "test-artifacts"
CHROMIUM = Path("/usr/bin/chromium")
SCRIPT_TIMEOUT = 60.0


class LiveServer:
    """The app served over real HTTP on 127.0.0.1:<free port> until `stop()`."""

    def __init__(self, settings: Settings) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        config = uvicorn.Config(
            create_app(settings),
            log_config=None,
            access_log=False,
            lifespan="on",
            proxy_headers=False,
            server_header=False,
        )
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, kwargs={"sockets": [self.sock]}, daemon=True)

    async def start(self, timeout: float = 30.0) -> LiveServer:
        self.thread.start()
        deadline = time.monotonic() + timeout
        while not self.server.started:
            if not self.thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError(f"the service did not start on {self.url}")
            await asyncio.sleep(0.02)
        return self

    async def stop(self) -> None:
        """Stop serving: afterwards the port refuses connections."""
        self.server.should_exit = True
        await asyncio.to_thread(self.thread.join, 15)
        self.sock.close()


def require_browser() -> None:
    """Chromium and playwright-core are installed by the project's own scripts; say which to run."""
    problems = []
    if shutil.which("node") is None:
        problems.append("node is not installed")
    if not (PROJECT_ROOT / "node_modules" / "playwright-core").is_dir():
        problems.append("playwright-core is missing: run `make node`")
    if not CHROMIUM.exists():
        problems.append("Chromium is missing: run `scripts/install-browser`")
    if problems:
        pytest.fail("browser tests cannot run: " + "; ".join(problems), pytrace=False)


async def served_sdl(base_url: str) -> str:
    async with httpx.AsyncClient(base_url=base_url, timeout=10) as http:
        response = await http.post("/graphql", json={"query": "{ _service { sdl } }"})
    return response.json()["data"]["_service"]["sdl"]


def skip_unless_served(sdl: str, needs: dict[str, str]) -> None:
    """Skip, naming what is absent, when the served schema lacks a field these tests exercise.
    `needs` maps a text the SDL must contain to the part of the contract that provides it."""
    missing = [f"{text!r} ({part})" for text, part in needs.items() if text not in sdl]
    if missing:
        pytest.skip("the served schema lacks " + ", ".join(missing) + "; these tests run once that branch is merged")


@contextlib.asynccontextmanager
async def migrated_database(pg_server: str) -> AsyncIterator[str]:
    """A fresh migrated database of the module's own (seeded rows stay out of other tests)."""
    url = await create_database(pg_server)
    try:
        await migrate(url)
        yield url
    finally:
        await drop_database(pg_server, url)  # also when migrating failed


async def serve(settings: Settings, needs: dict[str, str]) -> LiveServer:
    """A started LiveServer, or a skip (server stopped) when its schema lacks `needs`."""
    server = await LiveServer(settings).start()
    try:
        skip_unless_served(await served_sdl(server.url), needs)
    except BaseException:
        await server.stop()
        raise
    return server


async def graphql_post(base_url: str, query: str, variables: dict[str, Any], token: str) -> dict[str, Any]:
    async with httpx.AsyncClient(base_url=base_url, timeout=10) as http:
        response = await http.post(
            "/graphql", json={"query": query, "variables": variables}, headers={"authorization": f"Bearer {token}"}
        )
    body = response.json()
    assert not body.get("errors"), body["errors"]
    return body["data"]


class Script:
    """A running browser script: JSON lines out, go-ahead lines in."""

    def __init__(self, process: asyncio.subprocess.Process, argv: list[str]) -> None:
        self.process = process
        self.argv = argv

    async def read(self, timeout: float = SCRIPT_TIMEOUT) -> dict[str, Any]:
        assert self.process.stdout is not None
        line = await asyncio.wait_for(self.process.stdout.readline(), timeout)
        if not line:
            await self.finish()
            raise AssertionError(f"{' '.join(self.argv[:3])} printed no result")
        return json.loads(line)

    async def send(self, line: str) -> None:
        assert self.process.stdin is not None
        self.process.stdin.write(line.encode() + b"\n")
        await self.process.stdin.drain()

    async def finish(self, timeout: float = SCRIPT_TIMEOUT) -> None:
        try:
            await asyncio.wait_for(self.process.wait(), timeout)
        except TimeoutError:
            self.process.kill()
            await self.process.wait()
            raise
        assert self.process.stderr is not None
        errors = (await self.process.stderr.read()).decode(errors="replace")
        assert self.process.returncode == 0, f"{' '.join(self.argv[:3])} failed:\n{errors}"


async def start_script(name: str, *args: str, **options: str) -> Script:
    require_browser()
    ARTIFACTS.mkdir(exist_ok=True)
    argv = ["node", str(BROWSER_DIR / name), *args, *(f"--{key}={value}" for key, value in options.items())]
    process = await asyncio.create_subprocess_exec(
        *argv,
        cwd=PROJECT_ROOT,
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    return Script(process, argv)


async def run_script(name: str, *args: str, **options: str) -> dict[str, Any]:
    """Run a browser script to the end; returns its (last) JSON result."""
    script = await start_script(name, *args, **options)
    result = await script.read()
    await script.finish()
    return result
