"""Report commands of `signals`: digest, alerts, report (app/reports/).

`digest` and `alerts` send through the configured channels (SIGNALS_SMTP_*, SIGNALS_WEBHOOK_URL)
with the sent-once record, or with `--print` show the message and send nothing. `--now`
sets the clock (default: the current time), e.g. to re-send a past period by hand.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TypeVar

import asyncpg
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncEngine

from app.cli.ops import iso_day
from app.config import Settings
from app.reports.alerts import check_alerts, find_conditions, opened_message
from app.reports.deliver import Deliveries
from app.reports.sending import digest_message, send_digest
from app.reports.static import build_report
from app.storage.database import Database, create_engine

T = TypeVar("T")


def iso_time(value: str) -> dt.datetime:
    try:
        at = dt.datetime.fromisoformat(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"a time as ISO 8601, e.g. 2026-12-01T09:00:00Z, got {value!r}") from None
    return at if at.tzinfo else at.replace(tzinfo=dt.UTC)


def _with_engine(name: str, settings: Settings, work: Callable[[AsyncEngine], Awaitable[T]]) -> T | None:
    database = Database(settings)

    async def run(url: str) -> T:
        engine = create_engine(url, settings)
        try:
            return await work(engine)
        finally:
            await engine.dispose()

    try:
        return asyncio.run(run(database.start_server()))
    except (OSError, asyncpg.PostgresError, DBAPIError) as exc:
        print(f"{name}: {exc.__class__.__name__}: {exc}", file=sys.stderr)
        return None
    finally:
        database.stop_server()


def _now(args: argparse.Namespace) -> dt.datetime:
    return args.now or dt.datetime.now(dt.UTC)


def _digest(args: argparse.Namespace, settings: Settings) -> int:
    now = _now(args)

    async def work(engine: AsyncEngine) -> str:
        if args.print:
            message, _ = await digest_message(engine, args.app, args.period, now, settings.dashboard_url)
            return message.text
        deliveries = Deliveries(settings)
        if not deliveries.channels:
            return (
                "digest: no channel configured (SIGNALS_SMTP_HOST + SIGNALS_SMTP_TO, SIGNALS_WEBHOOK_URL); try --print"
            )
        return (await send_digest(engine, deliveries, args.app, args.period, now)).summary()

    out = _with_engine("digest", settings, work)
    if out is None:
        return 1
    print(out, end="" if out.endswith("\n") else "\n")
    return 0


def _alerts(args: argparse.Namespace, settings: Settings) -> int:
    now = _now(args)

    async def work(engine: AsyncEngine) -> str:
        if args.print:
            async with engine.connect() as conn:
                conditions = await find_conditions(conn, settings, now)
            return "\n".join(opened_message(c, settings.dashboard_url, now).text for c in conditions) or "no alerts\n"
        report = await check_alerts(engine, Deliveries(settings), now)
        return json.dumps(report.as_dict()) if args.json else report.summary()

    out = _with_engine("alerts", settings, work)
    if out is None:
        return 1
    print(out, end="" if out.endswith("\n") else "\n")
    return 0


def _report(args: argparse.Namespace, settings: Settings) -> int:
    if args.to < args.from_:
        print("report: --to is before --from", file=sys.stderr)
        return 2

    async def work(engine: AsyncEngine) -> str:
        async with engine.connect() as conn:
            return await build_report(conn, args.app, args.from_, args.to)

    html = _with_engine("report", settings, work)
    if html is None:
        return 1
    Path(args.out).write_text(html, encoding="utf-8")
    print(f"report: wrote {args.out} ({len(html.encode())} bytes)")
    return 0


def add_report_commands(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    digest = sub.add_parser("digest", help="send (or --print) the digest of the last closed day or week of an app")
    digest.add_argument("--app", required=True)
    digest.add_argument("--period", choices=["day", "week"], default="week")
    digest.add_argument("--print", action="store_true", help="print the plain-text digest; send nothing")
    digest.add_argument("--now", type=iso_time, help="the clock (default: now); the digest covers the period before")
    digest.set_defaults(func=_digest)

    alerts = sub.add_parser("alerts", help="check the last closed hours for silent, spiking or dropped event types")
    alerts.add_argument("--print", action="store_true", help="print the current alerts; record and send nothing")
    alerts.add_argument("--now", type=iso_time, help="the clock (default: now)")
    alerts.add_argument("--json", action="store_true", help="print the report as JSON")
    alerts.set_defaults(func=_alerts)

    report = sub.add_parser("report", help="write a self-contained HTML report of an app over UTC days")
    report.add_argument("--app", required=True)
    report.add_argument("--from", dest="from_", type=iso_day, required=True, help="first UTC day, YYYY-MM-DD")
    report.add_argument("--to", type=iso_day, required=True, help="last UTC day, included")
    report.add_argument("--out", required=True, help="the HTML file to write")
    report.set_defaults(func=_report)
