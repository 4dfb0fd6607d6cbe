"""Event properties: the keys of `description`, as paths the read side filters, breaks down,
aggregates and lists by.

A property path is description keys joined by `.`: `lang`, `source.kind`. Each key is one
or more characters other than `.`, none of them control, invisible or direction-changing
(ingest refuses those in keys, so no stored key has them); at most `DESCRIPTION_MAX_DEPTH`
keys (no stored description nests deeper) and `MAX_PATH_CHARS` characters. A key that
itself contains `.` cannot be named. Paths reach SQL only as a `text[]` bind parameter
(`description #> :path`), never as SQL text.

Arrays are values: a path names keys of objects. PostgreSQL's `#>` reads a key made of
digits as an array index where the value there is an array, so `tags.0` is the first element
of a `tags` array; the catalogue never lists such paths.

Values. EQ and IN compare the JSON value at the path with JSON scalars (string, number,
boolean) by jsonb equality: the string "1" never equals the number 1, and 1 equals 1.0.
GT/GTE/LT/LTE match only JSON numbers. EXISTS is "the key is present" (also with a JSON
null value), NOT_EXISTS its opposite (also for events without a description).

Operators restrict what can be asked (`PropertyPolicy`, from `SIGNALS_QUERYABLE_PROPERTIES`),
and no value is ever shown, compared or aggregated for a path with a key that looks like
personal data (`app.privacy.keys.pii_key`): such paths can be filtered by EXISTS and
NOT_EXISTS only.
"""

from __future__ import annotations

import enum
import functools
import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from app.privacy.keys import has_hidden_characters, pii_key
from app.read.errors import QueryInputError
from app.storage.events import DESCRIPTION_MAX_DEPTH, is_utf8

MAX_PATH_CHARS = 256
MAX_PROPERTY_FILTERS = 10
MAX_IN_VALUES = 100
MAX_STRING_CHARS = 1_000
SETTING = "SIGNALS_QUERYABLE_PROPERTIES"

PATH_SYNTAX = (
    "a property path is description keys joined by '.', e.g. lang or source.kind: "
    f"each key at least one character, without '.', control or invisible characters; "
    f"at most {DESCRIPTION_MAX_DEPTH} keys and {MAX_PATH_CHARS} characters"
)

JsonScalar = str | int | float | bool


class PropertyOp(enum.Enum):
    """How a property filter compares. GraphQL's `PropertyOp`."""

    EQ = "eq"
    IN = "in"
    EXISTS = "exists"
    NOT_EXISTS = "not_exists"
    GT = "gt"
    GTE = "gte"
    LT = "lt"
    LTE = "lte"


NUMERIC_OPS = {PropertyOp.GT: ">", PropertyOp.GTE: ">=", PropertyOp.LT: "<", PropertyOp.LTE: "<="}


def parse_path(text: str) -> tuple[str, ...]:
    """`"source.kind"` -> ("source", "kind"); QueryInputError saying the syntax otherwise."""
    keys = tuple(text.split("."))
    if (
        not text
        or len(text) > MAX_PATH_CHARS
        or len(keys) > DESCRIPTION_MAX_DEPTH
        or not is_utf8(text)
        or has_hidden_characters(text)
        or any(not key for key in keys)
    ):
        raise QueryInputError(f"property path is not valid: {PATH_SYNTAX}")
    return keys


def show(path: Sequence[str]) -> str:
    return ".".join(path)


def looks_personal(path: Sequence[str]) -> bool:
    """A key of the path looks like it names personal data: values under it are never shown."""
    return any(pii_key(key) for key in path)


def _scalar(value: object, where: str) -> JsonScalar:
    if isinstance(value, bool | int | float) and not (isinstance(value, float) and value != value):
        return value
    if isinstance(value, str):
        if "\x00" in value or not is_utf8(value) or len(value) > MAX_STRING_CHARS:
            raise QueryInputError(
                f"{where}: a string value must be at most {MAX_STRING_CHARS} characters, without NUL or invalid Unicode"
            )
        return value
    raise QueryInputError(f"{where}: compare with a JSON string, number or boolean (not null, an object or an array)")


def _number(value: object, where: str) -> int | float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise QueryInputError(f"{where}: GT, GTE, LT and LTE compare with a JSON number")
    return value


@dataclass(frozen=True)
class PropertyCondition:
    """One property filter: `path` compared by `op` with `values` (one for EQ and the
    numeric operators, 1..MAX_IN_VALUES for IN, none for EXISTS/NOT_EXISTS)."""

    path: tuple[str, ...]
    op: PropertyOp
    values: tuple[JsonScalar, ...] = ()

    @classmethod
    def build(
        cls, path: str, op: PropertyOp, value: object = None, values: Sequence[object] | None = None
    ) -> PropertyCondition:
        """From what a caller sends; QueryInputError saying what to change."""
        keys = parse_path(path)
        where = f"property {path}"
        if op in (PropertyOp.EXISTS, PropertyOp.NOT_EXISTS):
            if value is not None or values:
                raise QueryInputError(f"{where}: EXISTS and NOT_EXISTS take neither value nor values")
            return cls(keys, op)
        if op is PropertyOp.IN:
            if value is not None or not values or len(values) > MAX_IN_VALUES:
                raise QueryInputError(f"{where}: IN takes `values`, 1 to {MAX_IN_VALUES} of them (and no `value`)")
            return cls(keys, op, tuple(_scalar(item, where) for item in values))
        if values is not None or value is None:
            raise QueryInputError(f"{where}: {op.name} takes one `value` (and no `values`)")
        if op is PropertyOp.EQ:
            return cls(keys, op, (_scalar(value, where),))
        return cls(keys, op, (_number(value, where),))

    def sql(self, name: str) -> tuple[str, dict[str, Any]]:
        """The condition as SQL over `events`, with bind parameters prefixed `name`."""
        at = f"(description #> :{name}_path)"
        params: dict[str, Any] = {f"{name}_path": list(self.path)}
        if self.op is PropertyOp.EXISTS:
            return f"{at} IS NOT NULL", params
        if self.op is PropertyOp.NOT_EXISTS:
            return f"{at} IS NULL", params
        if self.op is PropertyOp.EQ:
            params[f"{name}_value"] = json.dumps(self.values[0])
            return f"{at} = CAST(:{name}_value AS jsonb)", params
        if self.op is PropertyOp.IN:
            params[f"{name}_values"] = [json.dumps(item) for item in self.values]
            return f"{at} = ANY(CAST(:{name}_values AS jsonb[]))", params
        # CASE: the cast runs only on numbers (an AND may be evaluated in any order)
        # the number as its JSON text, read by PostgreSQL as numeric: exact (no binary float in between),
        # and JSON-able, so stored answers can be keyed by these parameters
        params[f"{name}_value"] = json.dumps(self.values[0])
        comparison = NUMERIC_OPS[self.op]
        return (
            f"(CASE WHEN jsonb_typeof({at}) = 'number' THEN CAST({at} AS numeric) {comparison} "
            f"CAST(CAST(:{name}_value AS text) AS numeric) ELSE FALSE END)"
        ), params

    def key(self) -> dict[str, Any]:
        """JSON-able, for stored answers' keys."""
        return {"path": list(self.path), "op": self.op.value, "values": list(self.values)}


class PropertyPolicy:
    """Which paths may be asked about: `queryable` lists paths (each allows itself and every
    path under it); empty allows all. Built from `SIGNALS_QUERYABLE_PROPERTIES`."""

    def __init__(self, queryable: Sequence[str] = ()) -> None:
        self.allowed = tuple(tuple(entry.split(".")) for entry in queryable)

    def allows(self, path: Sequence[str]) -> bool:
        return not self.allowed or any(tuple(path[: len(entry)]) == entry for entry in self.allowed)

    def _refuse(self, path: Sequence[str]) -> QueryInputError:
        listed = ", ".join(show(entry) for entry in self.allowed)
        return QueryInputError(
            f"property {show(path)} is not queryable: {SETTING} allows {listed} (and paths under them); "
            "ask the operator to add it"
        )

    def check_condition(self, condition: PropertyCondition) -> None:
        if not self.allows(condition.path):
            raise self._refuse(condition.path)
        if looks_personal(condition.path) and condition.op not in (PropertyOp.EXISTS, PropertyOp.NOT_EXISTS):
            raise QueryInputError(
                f"property {show(condition.path)} looks like personal data: it can be filtered by EXISTS or "
                "NOT_EXISTS only, never by value"
            )

    def check_values(self, path: Sequence[str], what: str) -> None:
        """For a breakdown or aggregate, which show values (or figures made of them)."""
        if not self.allows(path):
            raise self._refuse(path)
        if looks_personal(path):
            raise QueryInputError(f"property {show(path)} looks like personal data: no {what} shows its values")


@functools.lru_cache(maxsize=16)
def policy(queryable: tuple[str, ...]) -> PropertyPolicy:
    return PropertyPolicy(queryable)
