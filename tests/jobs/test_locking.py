"""The data-lifecycle jobs against each other: retention and anonymisation started at the
same moment (as every replica's schedule does) both finish, one after the other."""

from __future__ import annotations

import asyncio

from jobs.anonymise import run_anonymise
from jobs.retention import run_retention
from testkit.database import fetch
from testkit.seed import insert_expired

ROUNDS = 10  # unserialised, about a third of such rounds ended in DeadlockDetectedError
ROWS = 2000  # one a minute: two to three closed days


async def test_retention_and_anonymisation_at_once_never_deadlock(fresh_db: str) -> None:
    for _ in range(ROUNDS):
        await insert_expired(fresh_db, ROWS)  # closed days past retention: both jobs want these rows
        retention, anonymise = await asyncio.gather(
            run_retention(fresh_db, retention_days=180, batch_size=50),  # many short transactions
            run_anonymise(fresh_db),
        )
        assert not retention.skipped and not anonymise.skipped
        assert retention.rows == ROWS
        left = await fetch(fresh_db, "SELECT count(*) AS n FROM events")
        assert left[0]["n"] == 0
        await fetch(fresh_db, "DELETE FROM anonymised_days")  # the next round's days are new to anonymisation
