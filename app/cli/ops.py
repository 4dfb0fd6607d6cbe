"""Operator commands of `signals`: retention, anonymise, export, forget-answers, secret generate|check.

`add_ops_commands()` registers them on the CLI's subparsers (see app/cli/main.py). Job
commands print one summary line (or the full report with `--json`) and exit 0 when the
job ran or was skipped because another replica holds its lock; 1 when it could not run.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import os
import sys
import tempfile
from collections.abc import Callable, Coroutine
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Protocol

import asyncpg

from app.config import ConfigError, Settings, check_secret_strength, generate_secret
from app.privacy.secret import SaltSecret, fingerprint
from app.storage.answers import forget_all
from app.storage.database import Database, asyncpg_dsn
from jobs.anonymise import run_anonymise
from jobs.export import FORMATS, DayExport, run_export
from jobs.locking import JobError
from jobs.retention import run_retention


def positive_int(value: str) -> int:
    number = int(value)
    if number < 1:
        raise argparse.ArgumentTypeError(f"must be a positive whole number, got {value}")
    return number


class Report(Protocol):
    """What a job returns: a one-line summary and the full report."""

    def summary(self) -> str: ...

    def as_dict(self) -> dict[str, object]: ...


def _run_job(name: str, settings: Settings, as_json: bool, job: Callable[[str], Coroutine[Any, Any, Report]]) -> int:
    database = Database(settings)
    try:
        report = asyncio.run(job(database.start_server()))
    except (JobError, OSError, asyncpg.PostgresError) as exc:
        print(
            f"{name}: {exc.__class__.__name__}: {exc}" if isinstance(exc, asyncpg.PostgresError) else f"{name}: {exc}",
            file=sys.stderr,
        )
        return 1
    finally:
        database.stop_server()
    print(json.dumps(report.as_dict(), default=str) if as_json else report.summary())
    return 0


def _retention(args: argparse.Namespace, settings: Settings) -> int:
    days = args.days or settings.retention_days
    batch = args.batch_size or settings.retention_batch_size
    return _run_job(
        "retention",
        settings,
        args.json,
        lambda url: run_retention(url, retention_days=days, batch_size=batch, dry_run=args.dry_run),
    )


def _anonymise(args: argparse.Namespace, settings: Settings) -> int:
    return _run_job(
        "anonymise",
        settings,
        args.json,
        lambda url: run_anonymise(
            url, grace_minutes=settings.anonymise_grace_minutes, dry_run=args.dry_run, scan_all=args.all
        ),
    )


@dataclass
class ForgetReport:
    rows: int

    def summary(self) -> str:
        return f"forget-answers: dropped {self.rows} stored answers of closed days; they are recounted when next asked"

    def as_dict(self) -> dict[str, object]:
        return asdict(self)


async def forget_answers(url: str) -> ForgetReport:
    conn = await asyncpg.connect(asyncpg_dsn(url))
    try:
        async with conn.transaction():
            return ForgetReport(await forget_all(conn))
    finally:
        await conn.close()


def _forget(args: argparse.Namespace, settings: Settings) -> int:
    return _run_job("forget-answers", settings, args.json, forget_answers)


def iso_day(value: str) -> dt.date:
    try:
        return dt.date.fromisoformat(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"a UTC day as YYYY-MM-DD, got {value!r}") from None


class ExportProgress:
    """A progress bar on a terminal (tqdm, on stderr); one JSON line per day otherwise."""

    def __init__(self, interactive: bool) -> None:
        self.interactive = interactive
        self.bar: Any = None

    def plan(self, days: int) -> None:
        if self.interactive:
            from tqdm import tqdm

            self.bar = tqdm(total=days, unit="day", desc="export")

    def day(self, outcome: DayExport) -> None:
        if self.bar is not None:
            self.bar.set_postfix_str(f"{outcome.day} {outcome.status}")
            self.bar.update()
        else:
            print(json.dumps(outcome.as_dict()), flush=True)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


def _export(args: argparse.Namespace, settings: Settings) -> int:
    end = args.to or (dt.datetime.now(dt.UTC).date() - dt.timedelta(days=1))
    if end < args.from_:
        print(f"export: --to {end} is before --from {args.from_}", file=sys.stderr)
        return 1
    progress = ExportProgress(sys.stderr.isatty())
    database = Database(settings)
    try:
        report = asyncio.run(
            run_export(
                database.start_server(),
                Path(args.out),
                start=args.from_,
                end=end,
                fmt=args.format,
                include_open=args.include_open,
                on_plan=progress.plan,
                on_day=progress.day,
            )
        )
    except (OSError, asyncpg.PostgresError) as exc:
        print(f"export: {exc.__class__.__name__}: {exc}", file=sys.stderr)
        return 1
    finally:
        progress.close()
        database.stop_server()
    print(report.summary(), file=sys.stderr if not progress.interactive else sys.stdout)
    return 0


def write_secret_file(path: Path, secret: str) -> None:
    """Write `secret` to `path` atomically (temp file + rename), readable by the owner only."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            out.write(secret + "\n")
        os.chmod(tmp, 0o600)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _secret(args: argparse.Namespace, settings: Settings) -> int:
    if args.action == "generate":
        secret = generate_secret()
        if args.output:
            write_secret_file(Path(args.output), secret)
            print(f"wrote a new salt secret to {args.output} (fingerprint {fingerprint(secret.encode('utf-8'))})")
        else:
            print(secret)
        return 0
    try:
        salt = SaltSecret(settings)
        source = "SIGNALS_SALT_SECRET_FILE" if settings.salt_secret_file else "SIGNALS_SALT_SECRET"
        check_secret_strength(salt.current().decode("utf-8"), source)
    except (ConfigError, ValueError) as exc:
        print(f"salt secret: {str(exc).removeprefix('configuration error: ')}", file=sys.stderr)
        return 1
    print(f"salt secret OK: {salt.description}; fingerprint {salt.fingerprint}")
    if settings.salt_secret_file is not None and settings.salt_secret_file.stat().st_mode & 0o077:
        print(f"warning: {settings.salt_secret_file} is readable by group/others; chmod 600 it", file=sys.stderr)
    return 0


def add_ops_commands(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    retention = sub.add_parser("retention", help="delete events older than SIGNALS_RETENTION_DAYS, in small batches")
    retention.add_argument("--dry-run", action="store_true", help="count what would be deleted; delete nothing")
    retention.add_argument("--days", type=positive_int, help="override SIGNALS_RETENTION_DAYS for this run")
    retention.add_argument(
        "--batch-size", type=positive_int, help="rows per delete transaction (SIGNALS_RETENTION_BATCH_SIZE)"
    )
    retention.add_argument("--json", action="store_true", help="print the full report as JSON")
    retention.set_defaults(func=_retention)

    anonymise = sub.add_parser("anonymise", help="re-key the userHash of closed UTC days with a forgotten random key")
    anonymise.add_argument(
        "--dry-run", action="store_true", help="list the days that would be re-keyed; change nothing"
    )
    anonymise.add_argument(
        "--all", action="store_true", help="check every day, not only the last week before the newest done day"
    )
    anonymise.add_argument("--json", action="store_true", help="print the full report as JSON")
    anonymise.set_defaults(func=_anonymise)

    export = sub.add_parser(
        "export", help="write closed, anonymised UTC days as Parquet or CSV files, one per day (day=YYYY-MM-DD/)"
    )
    export.add_argument("--from", dest="from_", type=iso_day, required=True, help="first UTC day, YYYY-MM-DD")
    export.add_argument("--to", type=iso_day, help="last UTC day, included (default: yesterday)")
    export.add_argument("--format", choices=FORMATS, default="parquet")
    export.add_argument("--out", required=True, help="the export's directory (created if missing)")
    export.add_argument(
        "--include-open",
        action="store_true",
        help="also days not yet closed and anonymised (their hashes can still be recomputed with the secret)",
    )
    export.set_defaults(func=_export)

    forget = sub.add_parser(
        "forget-answers",
        help="drop the stored answers of closed days (after deleting events by hand); they are recounted when asked",
    )
    forget.add_argument("--json", action="store_true", help="print the report as JSON")
    forget.set_defaults(func=_forget)

    secret = sub.add_parser("secret", help="generate a salt secret, or check the configured one")
    secret.add_argument("action", choices=["generate", "check"])
    secret.add_argument(
        "--output", help="generate: write the secret to this file (atomically, mode 600) instead of printing it"
    )
    secret.set_defaults(func=_secret)
