"""Comparisons of a window with an earlier one: the window arithmetic and the deltas, as
pure functions so that every insight query can offer `compareTo` the same way.

- PREVIOUS_PERIOD: a window of the same length ending where the current one starts
  ([from - (to - from), from)).
- PREVIOUS_WEEK: the same window 7 days earlier ([from - 7 days, to - 7 days)); for a window
  longer than a week the two overlap, as "the same period a week earlier" does.

All in UTC (Signals has no other time zone), so there is no daylight-saving shift: a day is
always 24 hours and a shifted window of whole UTC days is whole UTC days again.

Buckets are compared by offset: bucket i of the current window (the i-th interval step from
the bucket holding its `from`) stands against bucket i of the previous window.
"""

from __future__ import annotations

import datetime as dt
import enum
from dataclasses import dataclass

from app.read.queries import BucketUnit, QueryInputError

WEEK = dt.timedelta(days=7)


class Comparison(enum.Enum):
    """Which earlier window to compare with. GraphQL's `StatsComparison`."""

    PREVIOUS_PERIOD = "previous_period"
    PREVIOUS_WEEK = "previous_week"


def previous_window(start: dt.datetime, end: dt.datetime, mode: Comparison) -> tuple[dt.datetime, dt.datetime]:
    """The earlier window [start, end) to compare [start, end) with (QueryInputError when it
    would begin before the first representable instant). Computed in UTC: Python subtracts
    a timedelta from an aware datetime in its own zone's wall time, which across a
    daylight-saving change would be an hour off."""
    start, end = start.astimezone(dt.UTC), end.astimezone(dt.UTC)
    if start >= end:
        raise QueryInputError("filter.from must be before filter.to (from is inclusive, to exclusive)")
    shift = end - start if mode is Comparison.PREVIOUS_PERIOD else WEEK
    try:
        return start - shift, end - shift
    except OverflowError:
        raise QueryInputError("the comparison window would start before year 1: move filter.from later") from None


def bucket_offset(window_start: dt.datetime, bucket_start: dt.datetime, unit: BucketUnit) -> int:
    """The position of a bucket in its window: 0 for the bucket holding `window_start`."""
    return (bucket_start - unit.start(window_start)) // unit.step


@dataclass(frozen=True)
class Delta:
    """A figure in both windows. `relative` is (current - previous) / previous, None when
    previous is 0 (no finite change from nothing)."""

    previous: int
    current: int

    @property
    def absolute(self) -> int:
        return self.current - self.previous

    @property
    def relative(self) -> float | None:
        return None if self.previous == 0 else self.absolute / self.previous


def delta(current: int, previous: int) -> Delta:
    return Delta(previous=previous, current=current)
