"""Log lines captured exactly as production renders them (JSON), for tests that read them."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator

from app.logs import configure_logging


class LineCollector(logging.Handler):
    """Keeps every formatted record as one line."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(self.format(record))


@contextlib.contextmanager
def production_log_lines() -> Iterator[list[str]]:
    """Every log line produced inside, rendered exactly as in production (JSON)."""
    root = logging.getLogger()
    saved = root.handlers[:], root.level
    configure_logging("DEBUG")
    collector = LineCollector()
    collector.setFormatter(root.handlers[0].formatter)
    root.addHandler(collector)
    try:
        yield collector.lines
    finally:
        root.handlers[:], level = saved
        root.setLevel(level)
