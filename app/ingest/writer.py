"""Group commit: many concurrent `trackEvent` requests, one INSERT round trip.

Requests put their rows on a bounded queue together with a future each, and wait. A few
drain tasks (`FLUSHERS`, each with its own connection) take whatever has queued up (at
most `batch_max` rows) and write it with one autocommitted statement:

    INSERT ... SELECT FROM unnest(<one array per column>)
    ON CONFLICT (dedup_key) DO NOTHING RETURNING id, dedup_key

which, in the same round trip, also reads the ids of the rows that already existed. A
future is resolved only after that statement has committed, so an ACCEPTED answer means
the row is durable (the writer's sessions never commit with `synchronous_commit = off`,
whatever the database's default: see `_keep_commits_durable`). While one batch is in
flight the next one gathers, so the batch size follows the load. If the database fails,
every future of that batch gets the error; a data error in one row (which validation
should prevent) is isolated by writing that batch's rows one at a time, so one bad row
cannot sink its neighbours.

The drain tasks hold their own asyncpg connections (same server settings as the pool):
a pool checkout, a pre-ping and BEGIN/COMMIT would be four more round trips per batch,
each waiting behind the other requests on the event loop.

`write()` never waits past `timeout` seconds: rows not committed by then are reported as
unavailable (the caller retries with the same clientEventId and gets DUPLICATE if the
write did land after all).
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import operator
from collections.abc import Iterable
from dataclasses import dataclass

import asyncpg
from uuid_utils import uuid7

from app.config import Settings
from app.logs import OutageLog, get_logger
from app.metrics import WRITE_BATCH_FAILURES, WRITE_BATCH_SIZE
from app.storage.answers import closed_before, forget_days
from app.storage.database import UNAVAILABLE, unavailable_cause
from app.storage.events import COLUMNS, EventRow

log = get_logger("signals.writer")

FLUSHERS = 1  # measured: one drain task makes larger batches and more req/s than two


_COLUMN_VALUES = operator.attrgetter(*COLUMNS)
# The writer names each row's id itself: a UUIDv7 (time first, then random), so new rows go
# to the right-hand end of the primary key's index instead of a random page of it, which on
# a table of millions is a page read and a full-page WAL image per row. It tells nothing
# the row's created_at does not.
_INSERTED = ("id", *COLUMNS)
_TYPES = {"id": "uuid", "created_at": "timestamptz"}
_NAMES = ", ".join(_INSERTED)
_ARRAYS = ", ".join(f"${n}::{_TYPES.get(name, 'text')}[]" for n, name in enumerate(_INSERTED, 1))
_VALUES = ", ".join("description::jsonb" if name == "description" else name for name in _INSERTED)

# The second half reads the statement's snapshot: rows inserted by `inserted` are not in it,
# rows that were there before are. A row committed by another writer after the snapshot is
# in neither; `LOOKUP_SQL` finds it in one more round trip.
#
# Its plan must not depend on what the planner believes about `events`: a plan made while
# the table was empty (and kept by the prepared statement's plan cache, or by statistics
# that autovacuum never refreshed) reads the whole table once per batch. So each incoming
# key is looked up on its own (LATERAL ... LIMIT 1, which the planner cannot turn into a
# join over all of `events`), and the writer's connections run with `enable_seqscan = off`:
# the only plan left for `dedup_key = <one key>` is the unique index.
INSERT_SQL = f"""
WITH incoming AS (SELECT * FROM unnest({_ARRAYS}) AS t({_NAMES})),
inserted AS (
    INSERT INTO events ({_NAMES}) SELECT {_VALUES} FROM incoming
    ON CONFLICT (dedup_key) DO NOTHING
    RETURNING id, dedup_key
)
SELECT id, dedup_key, true AS inserted FROM inserted
UNION ALL
SELECT e.id, e.dedup_key, false AS inserted FROM incoming i
CROSS JOIN LATERAL (SELECT id, dedup_key FROM events WHERE dedup_key = i.dedup_key LIMIT 1) e
"""
LOOKUP_SQL = "SELECT id, dedup_key FROM events WHERE dedup_key = ANY($1::text[])"


@dataclass(frozen=True, slots=True)
class Stored:
    """The row's id; `inserted` is False when the caller's clientEventId was already stored."""

    event_id: str
    inserted: bool


class WriteUnavailable(Exception):
    """The row was not (known to be) committed; `str()` is safe to show the caller."""


Pending = tuple[EventRow, asyncio.Future[Stored]]


class GroupCommitWriter:
    def __init__(self, dsn: str, settings: Settings) -> None:
        self.dsn = dsn
        self.settings = settings
        self.batch_max = settings.write_batch_max
        self.timeout = settings.write_timeout
        self._queue: asyncio.Queue[Pending] = asyncio.Queue(maxsize=settings.write_queue_max)
        self._tasks: list[asyncio.Task[None]] = []
        self._closing = False
        self._fsync_warned = False
        self._outage = OutageLog(
            log, "database writes failing; callers get UNAVAILABLE (retryable)", "database writes recovered"
        )

    # --- lifecycle -------------------------------------------------------------------
    def start(self) -> None:
        self._closing = False
        self._tasks = [asyncio.create_task(self._drain(), name=f"signals-group-commit-{n}") for n in range(FLUSHERS)]

    async def stop(self) -> None:
        """Refuse new rows, write everything already queued, then stop."""
        self._closing = True
        if not self._tasks:
            return
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._queue.join(), timeout=max(self.timeout, 10.0))
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks = []
        while not self._queue.empty():  # only when the database never answered
            _, future = self._queue.get_nowait()
            if not future.done():
                future.set_exception(WriteUnavailable("the service is shutting down"))

    # --- the request side ------------------------------------------------------------
    async def write(self, rows: list[EventRow]) -> list[Stored | WriteUnavailable]:
        """Queue `rows`, wait (at most `timeout`) for their commit; one outcome per row."""
        loop = asyncio.get_running_loop()
        futures: list[asyncio.Future[Stored]] = []
        for row in rows:
            future: asyncio.Future[Stored] = loop.create_future()
            if self._closing or not self._tasks:
                future.set_exception(WriteUnavailable("the service is shutting down"))
            else:
                try:
                    self._queue.put_nowait((row, future))
                except asyncio.QueueFull:
                    future.set_exception(WriteUnavailable("the write queue is full"))
            futures.append(future)
        deadline = loop.call_later(
            self.timeout, _fail, futures, WriteUnavailable("the database did not confirm the write in time")
        )
        try:
            for future in futures:
                with contextlib.suppress(Exception):
                    await future
        finally:
            deadline.cancel()
        return [self._outcome(future) for future in futures]

    @staticmethod
    def _outcome(future: asyncio.Future[Stored]) -> Stored | WriteUnavailable:
        error = future.exception()
        if error is None:
            return future.result()
        if isinstance(error, WriteUnavailable):
            return error
        return WriteUnavailable(unavailable_cause(error) or UNAVAILABLE)

    # --- the drain tasks ---------------------------------------------------------------
    async def _connect(self) -> asyncpg.Connection:
        # enable_seqscan: see INSERT_SQL; every statement of the writer finds rows by an index
        server_settings = {"application_name": "signals-writer", "enable_seqscan": "off"}
        if self.settings.db_statement_timeout_ms:
            server_settings["statement_timeout"] = str(self.settings.db_statement_timeout_ms)
        # A batch nobody waits for any more is not worth waiting on: past `write_timeout`
        # its callers were told UNAVAILABLE and will retry, so a hung connection is dropped
        # soon after and the next batch gets a fresh one.
        conn = await asyncpg.connect(
            self.dsn,
            timeout=min(self.settings.db_connect_timeout, self.timeout),
            command_timeout=self.timeout + 1,
            server_settings=server_settings,
        )
        try:
            await self._keep_commits_durable(conn)
        except BaseException:
            conn.terminate()
            raise
        return conn

    async def _keep_commits_durable(self, conn: asyncpg.Connection) -> None:
        """ACCEPTED means committed to the WAL on disk. `synchronous_commit = off` (a server,
        database or role default) would answer before the WAL is flushed, and a crash of the
        database would lose rows already acknowledged: this session turns it back on. The
        other levels (`local`, `remote_write`, `on`, `remote_apply`) all flush locally and
        stay as the operator chose. `fsync = off` cannot be undone from a session: said once."""
        settings = await conn.fetchrow("SELECT current_setting('synchronous_commit'), current_setting('fsync')")
        assert settings is not None  # one row, always
        synchronous_commit, fsync = settings
        if synchronous_commit == "off":
            await conn.execute("SET synchronous_commit = on")
        if fsync != "on" and not self._fsync_warned:
            self._fsync_warned = True
            log.warning(
                "the database runs with fsync = off: a crash of its machine can lose acknowledged events",
                fsync=fsync,
            )

    async def _drain(self) -> None:
        conn: asyncpg.Connection | None = None
        try:
            # connected before the first batch, so a durability warning shows at start (if
            # the database is away, the first batch connects)
            with contextlib.suppress(Exception):
                conn = await self._connect()
            while True:
                batch = [await self._queue.get()]
                await asyncio.sleep(0)  # one loop turn: requests that are ready join this batch
                while len(batch) < self.batch_max and not self._queue.empty():
                    batch.append(self._queue.get_nowait())
                try:
                    if conn is None or conn.is_closed():
                        conn = await self._connect()
                    await self._write_batch(conn, batch)
                    self._outage.succeeded()
                except Exception as exc:  # noqa: BLE001 - every failure goes to the waiting requests
                    WRITE_BATCH_FAILURES.labels(type(exc).__name__).inc()
                    self._outage.failed(exc, rows=len(batch))
                    _fail([future for _, future in batch], exc)
                    # broken or timed out, or a session that cannot write (a read-only
                    # default is read at connect): reconnect for the next batch
                    if conn is not None and (
                        not isinstance(exc, asyncpg.PostgresError)
                        or isinstance(exc, asyncpg.ReadOnlySQLTransactionError)
                    ):
                        conn.terminate()
                        conn = None
                finally:
                    for _ in batch:
                        self._queue.task_done()
        finally:
            if conn is not None:
                conn.terminate()

    async def _write_batch(self, conn: asyncpg.Connection, batch: list[Pending]) -> None:
        live = [(row, future) for row, future in batch if not future.done()]
        if not live:
            return
        WRITE_BATCH_SIZE.observe(len(live))
        try:
            stored = await self._insert(conn, [row for row, _ in live])
        except (asyncpg.DataError, asyncpg.IntegrityConstraintViolationError) as exc:
            if len(live) == 1:
                log.error("event row refused by the database", error=type(exc).__name__)
                _fail([future for _, future in live], exc)
                return
            for one in live:  # isolate the bad row
                await self._write_batch(conn, [one])
            return
        claimed: set[str] = set()  # a key repeated in this batch: later copies are duplicates
        for row, future in live:
            outcome = stored.get(row.dedup_key)
            if future.done():
                continue
            if outcome is None:
                future.set_exception(WriteUnavailable("the write could not be confirmed"))
            elif row.dedup_key in claimed:
                future.set_result(Stored(outcome.event_id, inserted=False))
            else:
                claimed.add(row.dedup_key)
                future.set_result(outcome)

    @staticmethod
    async def _insert(conn: asyncpg.Connection, rows: list[EventRow]) -> dict[str, Stored]:
        """Insert `rows` (first occurrence of a dedup key wins); {dedup key: Stored}."""
        unique: dict[str, EventRow] = {}
        for row in rows:
            unique.setdefault(row.dedup_key, row)
        ids = [str(uuid7()) for _ in unique]
        arrays = zip(*map(_COLUMN_VALUES, unique.values()), strict=True)  # one tuple per column
        stored = {r[1]: Stored(str(r[0]), r[2]) for r in await conn.fetch(INSERT_SQL, ids, *arrays)}
        missing = [key for key in unique if key not in stored]
        if missing:
            for r in await conn.fetch(LOOKUP_SQL, missing):
                stored[r[1]] = Stored(str(r[0]), False)
        # a row for a closed day (held back past the grace period) changes that day's answers
        closed = closed_before(dt.datetime.now(dt.UTC))
        late = {day for row in unique.values() if (day := row.created_at.astimezone(dt.UTC).date()) < closed}
        await forget_days(conn, late)
        return stored


def _fail(futures: Iterable[asyncio.Future[Stored]], error: BaseException) -> None:
    for future in futures:
        if not future.done():
            future.set_exception(error)
