"""Where admin reads go: a PostgreSQL streaming replica (`DATABASE_READ_URL`) while it is up
and close behind the primary, else the primary (`DATABASE_URL`).

`ReadRouter` owns the replica's engine and checks it every SIGNALS_READ_REPLICA_CHECK_SECONDS:
`pg_is_in_recovery()` (a promoted or misconfigured server is no replica of this primary),
the WAL receiver's state, and the lag. Lag is 0 when the replica has replayed the primary's
current WAL position (`pg_current_wal_lsn()`, read just before; when the primary cannot be
asked, what the replica has received); otherwise it is the time since the last replayed
commit. That figure alone would grow on an idle primary though nothing is behind, which is
why caught-up comes first. It compares the replica's clock with the primary's commit times,
so clock skew between the hosts adds to it.

Each read asks `route()` (or `run()`) once: replica while the last check found it a
standby within SIGNALS_READ_REPLICA_MAX_LAG_SECONDS, else the primary, counted in
`signals_read_fallbacks_total{reason}`. A read whose replica connection fails between
checks is run again on the primary when a ping confirms the replica is down (so the
primary's own outage is not mistaken for the replica's); so is a read the replica cancelled
because replaying the primary's changes needed what it held (a recovery conflict, after
the replica's `max_standby_streaming_delay`), counted as `recovery_conflict`. A change of
state is logged once.

Reads that write go to the primary: `ReadRoute.primary` is where the stored answers of
closed days are written (app/read/daycache.py, app/read/rollup.py), looked up on
`ReadRoute.engine`. Such an answer computed on the replica is exact because the lag bound
(at most 600 s) is below the hour after which a UTC day counts as closed
(app/storage/answers.py). The one exception is shared with the primary, in a wider window: a
late row for a closed day (a commit held back past that hour) forgets the day's answers on
the primary, and a read computing that day on the replica before the row is replayed there
stores the answer without it (on the primary the window is one computation's length);
`signals forget-answers` clears it. Writes, migrations, jobs and reports use the primary's engine and
never come here.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Literal, TypeVar

import asyncpg
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from app.logs import OutageLog, get_logger
from app.metrics import READ_FALLBACKS, READ_REPLICA_LAG, READ_REPLICA_SERVING
from app.storage.database import UNAVAILABLE_MESSAGE, error_chain, is_ready, unavailable_reason

log = get_logger("signals.db.replica")

T = TypeVar("T")
State = Literal["streaming", "disconnected", "down", "not_standby"]
Reason = Literal["down", "lagging", "not_standby"]

# what a hot standby raises when it cancels a query in favour of replay (a read-only query
# on the primary never meets them): serialization_failure, deadlock_detected
RECOVERY_CONFLICTS = (asyncpg.SerializationError, asyncpg.DeadlockDetectedError)

PRIMARY_LSN = text("SELECT pg_current_wal_lsn()::text")
REPLICA_STATE = text(
    "SELECT pg_is_in_recovery() AS standby,"
    " (SELECT status FROM pg_stat_wal_receiver LIMIT 1) AS receiver,"
    " COALESCE(pg_last_wal_replay_lsn() >= CAST(CAST(:primary_lsn AS text) AS pg_lsn),"
    "          pg_last_wal_receive_lsn() = pg_last_wal_replay_lsn(), false) AS caught_up,"
    " EXTRACT(EPOCH FROM clock_timestamp() - pg_last_xact_replay_timestamp())::float8 AS since_replay"
)


@dataclass(frozen=True)
class ReplicaStatus:
    """The replica as the last check found it; `fallback` says why reads go to the primary."""

    state: State
    lag_seconds: float | None
    fallback: Reason | None

    @property
    def serving_reads(self) -> bool:
        return self.fallback is None

    def as_json(self) -> dict[str, Any]:
        answer: dict[str, Any] = {
            "state": self.state,
            "lagSeconds": None if self.lag_seconds is None else round(self.lag_seconds, 3),
            "servingReads": self.serving_reads,
        }
        if self.fallback is not None:
            answer["fallback"] = self.fallback
        return answer


def judge(
    *, standby: bool, receiver: str | None, caught_up: bool, since_replay: float | None, max_lag: float
) -> ReplicaStatus:
    """The status from one look at the replica (plain values, so the rules are testable alone)."""
    if not standby:
        return ReplicaStatus("not_standby", None, "not_standby")
    state: State = "streaming" if receiver == "streaming" else "disconnected"
    lag = 0.0 if caught_up else since_replay
    if lag is None or lag > max_lag:
        return ReplicaStatus(state, lag, "lagging")
    return ReplicaStatus(state, max(lag, 0.0), None)


def recovery_conflict(error: BaseException | None) -> bool:
    """Whether `error` (or what it wraps) is a hot standby's cancellation of a query for replay."""
    return any(isinstance(one, RECOVERY_CONFLICTS) for one in error_chain(error))


@dataclass(frozen=True)
class ReadRoute:
    """One read's engines: `engine` for its queries, `primary` for what it stores."""

    engine: AsyncEngine
    primary: AsyncEngine
    on_replica: bool


class ReadRouter:
    """Chooses the engine of each admin read. Without a replica every read is the primary's.
    It owns the replica's engine (closed by `stop()`); the primary's belongs to its caller."""

    def __init__(
        self,
        primary: AsyncEngine,
        replica: AsyncEngine | None = None,
        *,
        max_lag_seconds: float = 30.0,
        check_seconds: float = 2.0,
        check_timeout: float = 5.0,
    ) -> None:
        self.primary = primary
        self.replica = replica
        self.max_lag = max_lag_seconds
        self.check_seconds = check_seconds
        self.check_timeout = check_timeout
        self.status: ReplicaStatus | None = None  # None: no replica configured
        if replica is not None:
            self.status = ReplicaStatus("down", None, "down")  # until the first check says otherwise
        self._primary_route = ReadRoute(primary, primary, on_replica=False)
        self._outage = OutageLog(
            log, "read replica unreachable; admin reads go to the primary", "read replica answers again"
        )
        self._task: asyncio.Task[None] | None = None

    def route(self) -> ReadRoute:
        """The replica when the last check found it fit, else the primary (counted)."""
        if self.replica is None or self.status is None:
            return self._primary_route
        if self.status.fallback is not None:
            READ_FALLBACKS.labels(self.status.fallback).inc()
            return self._primary_route
        return ReadRoute(self.replica, self.primary, on_replica=True)

    async def run(self, read: Callable[[ReadRoute], Awaitable[T]]) -> T:
        """`read` on the chosen route; once more on the primary when the replica went down under it."""
        route = self.route()
        if not route.on_replica:
            return await read(route)
        try:
            return await read(route)
        except Exception as error:
            if recovery_conflict(error):
                READ_FALLBACKS.labels("recovery_conflict").inc()
                return await read(self._primary_route)
            if unavailable_reason(error) != UNAVAILABLE_MESSAGE or await is_ready(route.engine, timeout=1.0):
                raise
            self._set(ReplicaStatus("down", None, "down"), error)
            READ_FALLBACKS.labels("down").inc()
            return await read(self._primary_route)

    async def check(self) -> ReplicaStatus | None:
        """Look at the replica now; the new status (None without a replica)."""
        if self.replica is None:
            return None
        try:
            async with asyncio.timeout(self.check_timeout):
                status = await self._look(self.replica)
        except Exception as error:  # noqa: BLE001 - any failure to answer means "down"
            self._set(ReplicaStatus("down", None, "down"), error)
        else:
            self._set(status, None)
        return self.status

    async def _look(self, replica: AsyncEngine) -> ReplicaStatus:
        primary_lsn: str | None = None
        with contextlib.suppress(Exception):  # the primary's outage: judge by what the replica received
            async with asyncio.timeout(self.check_timeout / 2), self.primary.connect() as conn:
                primary_lsn = (await conn.execute(PRIMARY_LSN)).scalar()
        async with replica.connect() as conn:
            row = (await conn.execute(REPLICA_STATE, {"primary_lsn": primary_lsn})).one()
        return judge(
            standby=bool(row.standby),
            receiver=row.receiver,
            caught_up=bool(row.caught_up),
            since_replay=row.since_replay,
            max_lag=self.max_lag,
        )

    def _set(self, status: ReplicaStatus, error: BaseException | None) -> None:
        before = self.status
        self.status = status
        if error is not None:
            self._outage.failed(error)
        else:
            self._outage.succeeded()
        READ_REPLICA_SERVING.set(1 if status.serving_reads else 0)
        READ_REPLICA_LAG.set(math.nan if status.lag_seconds is None else status.lag_seconds)
        if before is None or (before.fallback, before.state) == (status.fallback, status.state):
            return
        if status.state == "down" or (before.state == "down" and status.serving_reads):
            return  # the outage log has said it
        if status.serving_reads:
            log.warning("admin reads go to the read replica", state=status.state, lag_seconds=status.lag_seconds)
        else:
            log.warning(
                "admin reads go to the primary",
                reason=status.fallback,
                state=status.state,
                lag_seconds=status.lag_seconds,
                max_lag_seconds=self.max_lag,
            )

    async def _watch(self) -> None:
        while True:
            await asyncio.sleep(self.check_seconds)
            await self.check()

    async def start(self) -> None:
        """The first check, then one every `check_seconds` until `stop()`."""
        if self.replica is None:
            return
        await self.check()
        log.info("read replica configured", **(self.status.as_json() if self.status else {}))
        self._task = asyncio.create_task(self._watch(), name="read-replica-check")

    async def stop(self) -> None:
        """Stop checking and close the replica's pool (the primary's is its owner's)."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        if self.replica is not None:
            await self.replica.dispose()
