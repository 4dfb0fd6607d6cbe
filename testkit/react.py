"""The React package (clients/react, @signals/react) and its example page, for the tests.

`make react` installs the package's npm dependencies (`npm ci` in clients/react); these
helpers run its tools (tsc, vitest, vite) through npx there and fail with what to run when
they are missing.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from app.config import PROJECT_ROOT

REACT_DIR = PROJECT_ROOT / "clients" / "react"


def require_react() -> None:
    problems = []
    if shutil.which("npx") is None:
        problems.append("node/npx is not installed")
    if not (REACT_DIR / "node_modules" / ".bin" / "tsc").exists():
        problems.append("clients/react has no node_modules: run `make react`")
    if problems:
        pytest.fail("React package tests cannot run: " + "; ".join(problems), pytrace=False)


def npx(*args: str, cwd: Path = REACT_DIR, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    """`npx --no-install <args>` in clients/react (its own node_modules/.bin only), output captured."""
    require_react()
    return subprocess.run(
        ["npx", "--no-install", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
        env=None,
        check=False,
    )


def build_package() -> Path:
    """`npm run build` (tsc, then the tracker copied beside it); returns clients/react/dist."""
    require_react()
    done = subprocess.run(
        ["npm", "run", "--silent", "build"], cwd=REACT_DIR, capture_output=True, text=True, timeout=300, check=False
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return REACT_DIR / "dist"


def build_example(out: Path) -> Path:
    """The example page (clients/react/example) built by Vite against the built package, into `out`."""
    build_package()
    done = npx("vite", "build", "example", "--outDir", str(out))
    assert done.returncode == 0, done.stdout + done.stderr
    assert (out / "index.html").is_file()
    return out
