"""app.read.compare's window arithmetic and deltas, checked against timedelta arithmetic
written here: same length just before, a week earlier, UTC whatever the offset given, no
daylight-saving shift, bucket offsets, relative change null when previous is 0."""

from __future__ import annotations

import datetime as dt
import random
import re
from zoneinfo import ZoneInfo

import pytest

from app.read.compare import Comparison, bucket_offset, delta, previous_window
from app.read.queries import BucketUnit, QueryInputError

UTC = dt.UTC


def test_previous_period_is_the_same_length_just_before() -> None:
    rng = random.Random(5)
    for _ in range(200):
        start = dt.datetime(2026, 1, 1, tzinfo=UTC) + dt.timedelta(seconds=rng.randrange(300 * 86_400))
        end = start + dt.timedelta(seconds=rng.randrange(1, 90 * 86_400), microseconds=rng.randrange(10**6))
        before = previous_window(start, end, Comparison.PREVIOUS_PERIOD)
        assert before[1] == start
        assert before[1] - before[0] == end - start


def test_previous_week_is_the_window_seven_times_24_hours_earlier() -> None:
    start, end = dt.datetime(2026, 3, 12, 5, tzinfo=UTC), dt.datetime(2026, 3, 26, 5, tzinfo=UTC)
    before = previous_window(start, end, Comparison.PREVIOUS_WEEK)
    assert before == (start - dt.timedelta(hours=7 * 24), end - dt.timedelta(hours=7 * 24))
    assert before[1] > start  # a 14-day window overlaps its week-earlier self


def test_no_daylight_saving_shift() -> None:
    """Europe/Berlin moved its clocks on 2026-03-29: the week before is still 168 hours earlier,
    and a window given with an offset is the same instants in UTC."""
    berlin = ZoneInfo("Europe/Berlin")
    start = dt.datetime(2026, 3, 30, 0, tzinfo=berlin)  # +02:00, the week before was +01:00
    end = dt.datetime(2026, 3, 31, 0, tzinfo=berlin)
    before = previous_window(start, end, Comparison.PREVIOUS_WEEK)
    assert before[0] - start == -dt.timedelta(hours=168)  # aware subtraction: real elapsed time
    assert before[0].astimezone(UTC) == dt.datetime(2026, 3, 22, 22, tzinfo=UTC)
    whole_days = previous_window(
        dt.datetime(2026, 3, 29, tzinfo=UTC), dt.datetime(2026, 4, 2, tzinfo=UTC), Comparison.PREVIOUS_PERIOD
    )
    assert whole_days == (dt.datetime(2026, 3, 25, tzinfo=UTC), dt.datetime(2026, 3, 29, tzinfo=UTC))


@pytest.mark.parametrize("mode", list(Comparison))
def test_windows_before_year_one_are_refused(mode: Comparison) -> None:
    start = dt.datetime(1, 1, 3, tzinfo=UTC)
    with pytest.raises(QueryInputError, match=re.escape("move filter.from later")):
        previous_window(start, start + dt.timedelta(days=30), mode)


def test_an_empty_window_is_refused() -> None:
    at = dt.datetime(2026, 3, 1, tzinfo=UTC)
    with pytest.raises(QueryInputError, match=re.escape("filter.from must be before filter.to")):
        previous_window(at, at, Comparison.PREVIOUS_PERIOD)


def test_bucket_offsets_count_steps_from_the_bucket_holding_from() -> None:
    start = dt.datetime(2026, 3, 11, 15, 30, tzinfo=UTC)  # a Wednesday afternoon
    for unit, first, step in (
        (BucketUnit.HOUR, dt.datetime(2026, 3, 11, 15, tzinfo=UTC), dt.timedelta(hours=1)),
        (BucketUnit.DAY, dt.datetime(2026, 3, 11, tzinfo=UTC), dt.timedelta(days=1)),
        (BucketUnit.WEEK, dt.datetime(2026, 3, 9, tzinfo=UTC), dt.timedelta(days=7)),  # Monday
    ):
        for i in range(5):
            assert bucket_offset(start, first + step * i, unit) == i


@pytest.mark.parametrize(
    ("current", "previous"), [(10, 5), (5, 10), (7, 7), (0, 3), (3, 0), (0, 0), (1_000_000_007, 999_999_937)]
)
def test_delta(current: int, previous: int) -> None:
    change = delta(current, previous)
    assert (change.current, change.previous, change.absolute) == (current, previous, current - previous)
    if previous == 0:
        assert change.relative is None
    else:
        assert change.relative == pytest.approx((current - previous) / previous)
