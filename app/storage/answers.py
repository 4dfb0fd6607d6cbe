"""Answers stored for closed UTC days (`day_answers`, `daily_app_users`), and the rule that
keeps them exact.

A UTC day D is closed once `D+1 00:00 UTC + GRACE` has passed. A closed day's events do
not change, with three exceptions, each of which forgets the day's stored answers:

- late rows: `created_at` is the server's clock when the request arrived and the writer
  commits within seconds, so a row for a closed day means something was held back; the
  writer forgets that day when it stores one;
- retention deletes rows before its cutoff: it forgets every day up to the cutoff's;
- anonymisation re-keys a day's userHash one-to-one (counts stay), except when it re-keys a
  day again after late rows (a person then counts twice that day): it forgets every day it
  re-keys.

Rows deleted by hand are the one change nothing here sees: `signals forget-answers` clears
what is stored after such a change.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable

import asyncpg

GRACE = dt.timedelta(hours=1)
TABLES = ("day_answers", "daily_app_users")


def closed_before(now: dt.datetime) -> dt.date:
    """The first UTC day that is not closed at `now`: every earlier day is."""
    return (now.astimezone(dt.UTC) - GRACE).date()


async def forget_days(conn: asyncpg.Connection, days: Iterable[dt.date]) -> None:
    """Drop the stored answers of `days`; they are recomputed from the events when next asked."""
    wanted = sorted(set(days))
    if wanted:
        for table in TABLES:
            await conn.execute(f"DELETE FROM {table} WHERE day = ANY($1::date[])", wanted)


async def forget_through(conn: asyncpg.Connection, last: dt.date) -> None:
    """Drop the stored answers of every day up to and including `last`."""
    for table in TABLES:
        await conn.execute(f"DELETE FROM {table} WHERE day <= $1", last)


async def forget_all(conn: asyncpg.Connection) -> int:
    """Drop every stored answer; how many rows went."""
    dropped = 0
    for table in TABLES:
        dropped += int((await conn.execute(f"DELETE FROM {table}")).split()[-1])
    return dropped
