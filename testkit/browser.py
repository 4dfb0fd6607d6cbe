"""The browser scripts against a running service.

`run_script` runs `node tests/e2e/browser/<script>.mjs ...`, which drives Debian's Chromium
through playwright-core, and returns the JSON line it printed; `start_script` leaves it
running to exchange lines with it.
"""

from __future__ import annotations

import asyncio
import json
import shutil
from pathlib import Path
from typing import Any

import pytest

from app.config import PROJECT_ROOT

BROWSER_DIR = PROJECT_ROOT / "tests" / "e2e" / "browser"
ARTIFACTS = PROJECT_ROOT / "test-artifacts"
CHROMIUM = Path("/usr/bin/chromium")
SCRIPT_TIMEOUT = 60.0


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
