"""What the insights (adoption, funnels) share: a bounded time window cut into UTC days,
the check that a filter names only the fields a question accepts, and bind-parameter
renaming so two filters' WHERE clauses can sit in one statement."""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from typing import Any

from app.read.queries import EventFilterSpec, QueryInputError

MAX_DAYS = 366  # UTC days a window may touch: a year, leap day included
DAY = dt.timedelta(days=1)
# a SQLAlchemy `text()` bind parameter (its own pattern): `:name`, not `::type` casts
_BIND = re.compile(r"(?<![:\w\\]):(\w+)(?!:)")


@dataclass(frozen=True)
class DaySlice:
    """The part [lower, upper) of UTC day `day` inside the window; `whole` when it is all of it."""

    day: dt.date
    lower: dt.datetime
    upper: dt.datetime

    @property
    def whole(self) -> bool:
        return self.upper - self.lower == DAY


def utc_days(spec: EventFilterSpec, what: str) -> list[DaySlice]:
    """The UTC days [from, to) touches, each cut to the window. `from` and `to` are required
    and at most MAX_DAYS days may be touched (QueryInputError naming `what` otherwise)."""
    if spec.start is None or spec.end is None:
        raise QueryInputError(f"{what}.from and {what}.to are required (a bounded window, at most {MAX_DAYS} days)")
    first = spec.start.date()
    last = (spec.end - dt.timedelta(microseconds=1)).date()
    count = (last - first).days + 1
    if count > MAX_DAYS:
        raise QueryInputError(
            f"{what}: the window touches {count} UTC days; at most {MAX_DAYS} are allowed: move from/to closer"
        )
    slices = []
    for i in range(count):
        day = first + DAY * i
        midnight = dt.datetime.combine(day, dt.time(), dt.UTC)
        try:
            upper = midnight + DAY
        except OverflowError:  # the last day there is: it ends where time does
            upper = dt.datetime.max.replace(tzinfo=dt.UTC)
        slices.append(DaySlice(day, max(midnight, spec.start), min(upper, spec.end)))
    return slices


def only_fields(spec: EventFilterSpec, allowed: set[str], what: str) -> None:
    """QueryInputError when `spec` sets a field outside `allowed` (GraphQL names in the message)."""
    defaults = EventFilterSpec()
    extra = sorted(
        name
        for name in spec.__dataclass_fields__
        if name not in allowed and getattr(spec, name) != getattr(defaults, name)
    )
    if extra:
        names = ", ".join(graphql_name(name) for name in extra)
        takes = ", ".join(graphql_name(name) for name in sorted(allowed))
        raise QueryInputError(f"{what} takes only {takes}; remove {names}")


def graphql_name(field: str) -> str:
    """EventFilterSpec field -> EventFilter (GraphQL) field."""
    if field == "start":
        return "from"
    if field == "end":
        return "to"
    head, *rest = field.split("_")
    return head + "".join(part.title() for part in rest)


def renamed(where: tuple[str, dict[str, Any]], prefix: str) -> tuple[str, dict[str, Any]]:
    """`where` (SQL, params) with every bind parameter renamed `prefix` + name, so that several
    filters' conditions can share one statement."""
    sql, params = where

    def rename(match: re.Match[str]) -> str:
        name = match.group(1)
        return f":{prefix}{name}" if name in params else match.group(0)

    return _BIND.sub(rename, sql), {prefix + name: value for name, value in params.items()}
