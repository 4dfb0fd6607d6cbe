"""Opt-in schedules inside `signals serve`: retention and anonymisation as asyncio tasks.

Off by default (SIGNALS_RETENTION_INTERVAL_MINUTES / SIGNALS_ANONYMISE_INTERVAL_MINUTES
= 0; cron with the CLI is the other way). Each job runs once shortly after start, then
every interval. Every replica, and every worker of `signals serve --workers N`, may run
the schedule: the jobs' advisory locks make a concurrent run skip, and a later run in the
same interval finds nothing left to do, so the work is done once. (One mechanism for
workers and replicas alike; a "schedule only in worker 0" rule would not cover replicas.)
A failed run is logged and retried at the next interval.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
from collections.abc import Awaitable, Callable
from typing import Any

from app.config import Settings
from app.logs import get_logger
from jobs.anonymise import run_anonymise
from jobs.retention import run_retention

log = get_logger("signals.jobs")

FIRST_RUN_DELAY_SECONDS = 5.0


async def run_every(name: str, interval_seconds: float, job: Callable[[], Awaitable[Any]]) -> None:
    await asyncio.sleep(FIRST_RUN_DELAY_SECONDS)
    while True:
        try:
            report = await job()
            log.info("job finished", job=name, summary=report.summary(), **report.as_dict())
        except Exception:
            log.exception("scheduled job failed; retrying at the next interval", job=name)
        await asyncio.sleep(interval_seconds)


def start_schedules(settings: Settings, database_url: str) -> list[asyncio.Task[None]]:
    tasks = []
    if settings.retention_interval_minutes:
        retention = functools.partial(
            run_retention,
            database_url,
            retention_days=settings.retention_days,
            batch_size=settings.retention_batch_size,
        )
        tasks.append(
            asyncio.create_task(
                run_every("retention", settings.retention_interval_minutes * 60, retention), name="retention"
            )
        )
    if settings.anonymise_interval_minutes:
        anonymise = functools.partial(run_anonymise, database_url, grace_minutes=settings.anonymise_grace_minutes)
        tasks.append(
            asyncio.create_task(
                run_every("anonymise", settings.anonymise_interval_minutes * 60, anonymise), name="anonymise"
            )
        )
    for task in tasks:
        log.info("job scheduled", job=task.get_name())
    return tasks


async def stop_schedules(tasks: list[asyncio.Task[None]]) -> None:
    for task in tasks:
        task.cancel()
    for task in tasks:
        with contextlib.suppress(asyncio.CancelledError):
            await task
