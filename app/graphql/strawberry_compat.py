"""Every use of Strawberry beyond its documented API, in one place.

Each function names the internal it relies on; `tests/graphql/test_strawberry_compat.py`
exercises each against the installed Strawberry, so an upgrade that changes one fails
there, loudly, instead of somewhere in a request. `pyproject.toml` bounds the version.

- `set_input_builder`: `StrawberryObjectDefinition.from_input`, the hook integrations pass
  when they create a definition, set here on a definition Strawberry already made.
- `graphql_core_schema`: `Schema._schema`, the graphql-core schema Strawberry built.
- `entity_key_fields`: `Schema.schema_converter.type_map`, `definition.origin` and
  `strawberry.utils.inspect.get_func_args`, to see what an entity's `resolve_reference` takes.
- `FederationAny`: the scalar `_entities(representations:)` is typed with.
- `CodedParserCache`: `ParserCache.on_parse` parses *before* it yields, so a syntax error
  surfaces from `yield from` in the subclass and no other extension sees it on the way out.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from typing import Any

import strawberry
from graphql import GraphQLSchema, GraphQLSyntaxError
from strawberry.extensions import ParserCache
from strawberry.federation.schema import FederationAny
from strawberry.schema.base import BaseSchema
from strawberry.utils.inspect import get_func_args

from app.graphql.errors import label_errors

__all__ = ["CodedParserCache", "FederationAny", "entity_key_fields", "graphql_core_schema", "set_input_builder"]


def set_input_builder(input_type: type, build: Callable[[Mapping[str, Any]], object]) -> None:
    """Make Strawberry build `input_type`'s arguments with `build(value)`, where `value` is
    graphql-core's coerced input keyed by GraphQL field names (every field here is a scalar
    graphql-core has already coerced, so no per-field conversion is needed)."""

    def from_input(_cls: type, value: Mapping[str, Any], _context: object) -> object:
        return build(value)

    input_type.__strawberry_definition__.from_input = from_input  # type: ignore[attr-defined]


def graphql_core_schema(schema: BaseSchema) -> GraphQLSchema:
    """The graphql-core schema behind a Strawberry schema (the fast path validates with it)."""
    assert isinstance(schema, strawberry.Schema)
    core = schema._schema
    assert isinstance(core, GraphQLSchema)
    return core


def entity_key_fields(schema: strawberry.Schema, type_name: str) -> set[str] | None:
    """The fields a representation of entity `type_name` must carry (what its
    `resolve_reference` takes besides `info`), or None when it is no entity of this schema."""
    type_ = schema.schema_converter.type_map.get(type_name)
    origin = getattr(getattr(type_, "definition", None), "origin", None)
    resolve_reference = getattr(origin, "resolve_reference", None)
    if resolve_reference is None:
        return None
    return set(get_func_args(resolve_reference)) - {"info"}


class CodedParserCache(ParserCache):
    """ParserCache labelling syntax errors GRAPHQL_PARSE_FAILED (see the module doc)."""

    def on_parse(self) -> Iterator[None]:
        try:
            yield from super().on_parse()
        except GraphQLSyntaxError as error:
            label_errors([error], "GRAPHQL_PARSE_FAILED")
            raise
