"""Each Strawberry internal that app/graphql/strawberry_compat.py relies on, exercised
against the installed Strawberry: an upgrade that changes one fails here."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import strawberry
from graphql import GraphQLSchema

from app.config import load_settings
from app.graphql.events import Event
from app.graphql.schema import build_schema
from app.graphql.strawberry_compat import (
    CodedParserCache,
    FederationAny,
    entity_key_fields,
    graphql_core_schema,
    set_input_builder,
)
from app.storage.events import COLUMNS, HIDDEN


@dataclass
class Built:
    given: dict[str, Any]


@strawberry.input
class Probe:
    first_name: str
    count: int | None = strawberry.UNSET


seen_inputs: list[object] = []


@strawberry.type
class EchoQuery:
    @strawberry.field
    def echo(self, probe: Probe) -> str:
        seen_inputs.append(probe)
        return "ok"

    @strawberry.field
    def ping(self) -> str:
        return "pong"


def test_set_input_builder_hands_the_resolver_what_the_builder_made() -> None:
    def build(value: Mapping[str, Any]) -> Built:
        return Built(dict(value))

    set_input_builder(Probe, build)
    seen_inputs.clear()
    result = strawberry.Schema(query=EchoQuery).execute_sync('{ echo(probe: {firstName: "x"}) }')
    assert result.errors is None
    assert seen_inputs == [Built({"firstName": "x"})]  # keyed by GraphQL names; omitted UNSET fields absent


def test_graphql_core_schema_is_the_executable_schema() -> None:
    schema = build_schema(load_settings())
    core = graphql_core_schema(schema)
    assert isinstance(core, GraphQLSchema)
    assert core.mutation_type is not None and "trackEvent" in core.mutation_type.fields
    assert core.query_type is not None and "_entities" in core.query_type.fields


def test_entity_key_fields_reads_resolve_reference() -> None:
    schema = build_schema(load_settings())
    assert entity_key_fields(schema, "Event") == {"id"}
    assert entity_key_fields(schema, "TrackEventResult") is None  # a type, not an entity
    assert entity_key_fields(schema, "NoSuchType") is None


def test_federation_any_types_the_entities_argument() -> None:
    core = graphql_core_schema(build_schema(load_settings()))
    assert core.query_type is not None
    argument = core.query_type.fields["_entities"].args["representations"]
    assert "_Any" in str(argument.type)
    assert FederationAny is not None


def test_coded_parser_cache_labels_syntax_errors() -> None:
    schema = strawberry.Schema(query=EchoQuery, extensions=[lambda: CodedParserCache(maxsize=4)])
    result = asyncio.run(schema.execute("{ ping "))
    assert result.errors is not None and len(result.errors) == 1
    assert (result.errors[0].extensions or {}).get("code") == "GRAPHQL_PARSE_FAILED"
    assert asyncio.run(schema.execute("{ ping }")).data == {"ping": "pong"}


def test_a_type_inherits_fields_from_a_plain_dataclass_in_order() -> None:
    """`Event` takes its fields from app/storage/events.py `EventRow` (a plain dataclass);
    `strawberry.Private` keeps the hidden ones out of the schema."""
    core = graphql_core_schema(build_schema(load_settings()))
    names = list(core.type_map["Event"].fields)  # type: ignore[attr-defined]
    camel = [
        "".join([w if i == 0 else w.title() for i, w in enumerate(c.split("_"))]) for c in COLUMNS if c not in HIDDEN
    ]
    assert names == ["id", *camel]
    assert HIDDEN and not {c for c in HIDDEN if c.replace("_", "") in {n.lower() for n in names}}
    assert Event.from_row is not None
