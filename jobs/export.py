"""Export for warehouses: one Parquet or CSV file per UTC day, in a Hive-style layout.

    OUT/_schema.json                  the columns, their types, and the layout
    OUT/day=YYYY-MM-DD/events.parquet (or events.csv) every stored column but `dedup_key`
    OUT/day=YYYY-MM-DD/_manifest.json rows and checksum of what the file holds

Which days: by default only closed, anonymised days (in `anonymised_days`, with no late
rows since): today's hashes, and those of a day not yet anonymised, can still be
recomputed by whoever holds the salt secret, so they do not leave the database unless the
operator asks (`include_open`).

Re-running is cheap and exact: for each day the database's row count and checksum (the sum
of each row's md5, computed in SQL) are compared with the day's manifest; a
day whose numbers match is skipped, any other is written again (retention, a re-keying
for late rows, or a deletion changes them). A file is written to a temporary name and
renamed, then its manifest: a crash leaves the previous export of that day, or none,
never a half file under the real name.
"""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
import functools
import io
import json
import os
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, Literal

import asyncpg
import pyarrow as pa
import pyarrow.csv as pa_csv
import pyarrow.parquet as pq

from app.storage.database import asyncpg_dsn
from app.storage.events import COLUMNS, HIDDEN
from jobs.anonymise import closed_before, day_bounds

Format = Literal["parquet", "csv"]
FORMATS: tuple[Format, ...] = ("parquet", "csv")

EXPORTED = ("id", *(column for column in COLUMNS if column not in HIDDEN))
NOT_NULL = frozenset({"id", "created_at", "app_name", "event_type", "user_hash", "device_type"})
NOT_NULL |= {"browser_family", "os_family", "client_event_id"}
SCHEMA = pa.schema(
    pa.field(column, pa.timestamp("us", tz="UTC") if column == "created_at" else pa.string(), column not in NOT_NULL)
    for column in EXPORTED
)

DAYS = """
SELECT (created_at AT TIME ZONE 'UTC')::date AS day, count(*) AS rows
FROM events WHERE created_at >= $1 AND created_at < $2
GROUP BY 1 ORDER BY 1
"""
# The checksum adds up the first 64 bits of each row's md5 (as text, every exported column):
# any change to a row changes it, and no sort is needed, so it costs one pass over the day.
CHECKSUM = f"""
SELECT count(*) AS rows,
       coalesce(sum(('x' || left(md5(row({", ".join(EXPORTED)})::text), 16))::bit(64)::bigint::numeric), 0)::text
         AS checksum
FROM events WHERE created_at >= $1 AND created_at < $2
"""
# The rows as CSV (COPY), parsed by Arrow's C++ reader: created_at as ISO 8601 in UTC, ids and
# JSON as text; NULL is an unquoted empty field, an empty string a quoted one.
_CSV_COLUMNS = ", ".join(
    "to_char(created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"')"
    if c == "created_at"
    else f"{c}::text"
    if c in ("id", "description")
    else c
    for c in EXPORTED
)
ROWS = f"SELECT {_CSV_COLUMNS} FROM events WHERE created_at >= $1 AND created_at < $2 ORDER BY created_at, id"
PARALLEL_DAYS = 2  # days exported at once, each on its own connection
_CSV_READ = pa_csv.ReadOptions(column_names=list(EXPORTED))
_CSV_CONVERT = pa_csv.ConvertOptions(
    column_types=SCHEMA,
    null_values=[""],
    strings_can_be_null=True,
    quoted_strings_can_be_null=False,
)


@dataclasses.dataclass
class DayExport:
    day: dt.date
    status: str  # exported | unchanged | open (not closed and anonymised; not exported)
    rows: int
    file: str | None = None
    seconds: float = 0.0

    def as_dict(self) -> dict[str, Any]:
        return {**dataclasses.asdict(self), "day": self.day.isoformat()}


@dataclasses.dataclass
class ExportReport:
    out: str
    format: Format
    days: list[DayExport] = dataclasses.field(default_factory=list)

    def count(self, status: str) -> int:
        return sum(1 for day in self.days if day.status == status)

    def summary(self) -> str:
        rows = sum(day.rows for day in self.days if day.status == "exported")
        return (
            f"export: {self.count('exported')} days written ({rows} events), {self.count('unchanged')} unchanged, "
            f"{self.count('open')} not closed and anonymised (left out; --include-open to export them) in {self.out}"
        )

    def as_dict(self) -> dict[str, Any]:
        return {"out": self.out, "format": self.format, "days": [day.as_dict() for day in self.days]}


def schema_document(fmt: Format) -> dict[str, Any]:
    return {
        "table": "events",
        "format": fmt,
        "layout": "day=YYYY-MM-DD/events." + fmt + " (UTC days; Hive-style partitions)",
        "columns": [{"name": f.name, "type": str(f.type), "nullable": f.nullable} for f in SCHEMA],
        "notes": "userHash is re-keyed per closed day (anonymised): distinct within a day, unlinkable across days.",
    }


def _write_atomically(path: Path, write: Callable[[Path], object]) -> None:
    """`write(tmp)` a temporary file beside `path`, then rename it to `path`."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    os.close(fd)
    try:
        write(Path(tmp))
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _write_json(path: Path, document: dict[str, Any]) -> None:
    _write_atomically(path, lambda tmp: tmp.write_text(json.dumps(document, indent=2) + "\n"))


async def _table(conn: asyncpg.Connection, start: dt.datetime, end: dt.datetime) -> pa.Table:
    """The rows of [start, end) as an Arrow table of SCHEMA."""
    chunks: list[bytes] = []

    async def collect(chunk: bytes) -> None:
        chunks.append(chunk)

    await conn.copy_from_query(ROWS, start, end, output=collect, format="csv")
    if not chunks:
        return SCHEMA.empty_table()
    table = pa_csv.read_csv(io.BytesIO(b"".join(chunks)), read_options=_CSV_READ, convert_options=_CSV_CONVERT)
    return table.cast(SCHEMA)


def _write_table(table: pa.Table, path: Path, *, fmt: Format) -> None:
    if fmt == "parquet":
        pq.write_table(table, path, compression="zstd")
    else:
        pa_csv.write_csv(table, path)


def _manifest(day_dir: Path) -> dict[str, Any] | None:
    try:
        manifest: dict[str, Any] = json.loads((day_dir / "_manifest.json").read_text())
    except (OSError, ValueError):
        return None
    return manifest


async def _eligible(
    conn: asyncpg.Connection, start: dt.date, end: dt.date, include_open: bool
) -> list[tuple[dt.date, bool]]:
    """Every day in [start, end] holding rows, with whether it may be exported."""
    counts = await conn.fetch(DAYS, day_bounds(start)[0], day_bounds(end)[1])
    done = {row["day"]: row["rows"] for row in await conn.fetch("SELECT day, rows FROM anonymised_days")}
    first_open = closed_before(await conn.fetchval("SELECT now()"), 0)
    return [
        (row["day"], include_open or (row["day"] < first_open and row["rows"] <= done.get(row["day"], -1)))
        for row in counts
    ]


async def _export_day(conn: asyncpg.Connection, out: Path, day: dt.date, eligible: bool, fmt: Format) -> DayExport:
    started = time.perf_counter()
    bounds = day_bounds(day)
    if not eligible:
        outcome = DayExport(day, "open", 0)
    else:
        async with conn.transaction(isolation="repeatable_read", readonly=True):  # rows and checksum agree
            state = await conn.fetchrow(CHECKSUM, *bounds)
            assert state is not None
            day_dir = out / f"day={day.isoformat()}"
            file = day_dir / f"events.{fmt}"
            previous = _manifest(day_dir)
            current = {"day": day.isoformat(), "format": fmt, "rows": state["rows"], "checksum": state["checksum"]}
            if previous == current and file.exists():
                outcome = DayExport(day, "unchanged", state["rows"], str(file))
            else:
                table = await _table(conn, *bounds)
                day_dir.mkdir(exist_ok=True)
                await asyncio.to_thread(_write_atomically, file, functools.partial(_write_table, table, fmt=fmt))
                _write_json(day_dir / "_manifest.json", current)
                outcome = DayExport(day, "exported", table.num_rows, str(file))
    outcome.seconds = round(time.perf_counter() - started, 3)
    return outcome


async def run_export(
    database_url: str,
    out: Path,
    *,
    start: dt.date,
    end: dt.date,
    fmt: Format = "parquet",
    include_open: bool = False,
    on_day: Callable[[DayExport], None] | None = None,
    on_plan: Callable[[int], None] | None = None,
) -> ExportReport:
    """Export the days from `start` to `end` (both included) into `out`; `on_plan` hears how
    many days will be looked at, `on_day` each day's outcome as it is decided."""
    report = ExportReport(str(out), fmt)
    out.mkdir(parents=True, exist_ok=True)
    _write_json(out / "_schema.json", schema_document(fmt))
    dsn = asyncpg_dsn(database_url)
    settings = {"application_name": "signals-export"}
    conns = [await asyncpg.connect(dsn, server_settings=settings) for _ in range(PARALLEL_DAYS)]
    try:
        days = await _eligible(conns[0], start, end, include_open)
        if on_plan is not None:
            on_plan(len(days))
        for first in range(0, len(days), PARALLEL_DAYS):
            batch = days[first : first + PARALLEL_DAYS]
            outcomes = await asyncio.gather(
                *(
                    _export_day(conn, out, day, eligible, fmt)
                    for conn, (day, eligible) in zip(conns[: len(batch)], batch, strict=True)
                )
            )
            for outcome in outcomes:  # in day order
                report.days.append(outcome)
                if on_day is not None:
                    on_day(outcome)
    finally:
        for conn in conns:
            await conn.close()
    return report
