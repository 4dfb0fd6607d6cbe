"""A fast path for the hot mutation: `trackEvent` / `trackEvents` documents skip Strawberry's
per-request machinery (~300 us of a ~500 us request, see README "Ingest benchmark").

A POST to /graphql whose JSON body holds a document that is exactly one mutation with one
`trackEvent(input: $var)` or `trackEvents(inputs: $var)` field selecting plain result
fields (aliases and `__typename` allowed, at most 16 selections, 2,000 characters and 200
tokens; no fragments, directives or literal arguments) is answered here. Each distinct
document is parsed and validated once by graphql-core against the app's own schema and
kept as a small plan (bounded cache); variables are coerced by graphql-core on every
request, and each input built by the same `event_input` Strawberry uses; the events then go
through the same `Ingest.track` pipeline, with the same `RequestFacts` and authentication.

Everything else (GET, other documents, invalid documents or variables, requests carrying
`extensions`, e.g. a gateway's forwarded JWT, batched bodies) goes to Strawberry
untouched, and so does a request refused before any side effect (unauthenticated, or a
batch over 100), so every error is Strawberry's own. `SIGNALS_FAST_TRACK=false` turns it off.
"""

from __future__ import annotations

import json
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

from graphql import (
    FieldNode,
    GraphQLError,
    GraphQLSchema,
    OperationDefinitionNode,
    OperationType,
    VariableNode,
    get_variable_values,
    parse,
    validate,
)
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.graphql.context import Runtime, request_facts
from app.graphql.ingest import event_input
from app.ingest.pipeline import EventInput, Refused, TrackResult

PLAN_CACHE_SIZE = 256
# A plain trackEvent document is a few dozen tokens. Anything bigger goes to Strawberry,
# whose token, alias and depth limits then refuse it: the fast path must never be the
# cheaper way to make the server parse, validate or remember a large document.
PLAN_MAX_QUERY_CHARS = 2_000
PLAN_MAX_TOKENS = 200
PLAN_MAX_SELECTIONS = 2 * 8  # the eight result fields, each at most twice on average
ROOT_FIELDS = {"trackEvent": "input", "trackEvents": "inputs"}


def _render_field(result: TrackResult, name: str) -> Any:
    if name == "status":
        return result.status.value
    if name == "reason":
        return result.reason.value if result.reason is not None else None
    if name == "eventId":
        return result.event_id
    if name == "clientEventId":
        return result.client_event_id
    if name == "__typename":
        return "TrackEventResult"
    return getattr(result, name)  # accepted, message, retryable


RESULT_FIELDS = frozenset(
    {"status", "accepted", "reason", "message", "retryable", "eventId", "clientEventId", "__typename"}
)


@dataclass(frozen=True, slots=True)
class Plan:
    """What one trackEvent document asks for, worked out once."""

    operation: OperationDefinitionNode
    response_key: str
    many: bool
    variable: str
    selections: tuple[tuple[str, str], ...]  # (response key, result field)

    def inputs(self, schema: GraphQLSchema, variables: dict[str, Any]) -> list[EventInput] | None:
        coerced = get_variable_values(schema, self.operation.variable_definitions or (), variables)
        if isinstance(coerced, list):  # errors: Strawberry reports them
            return None
        value = coerced.coerced.get(self.variable)
        if value is None:
            return None
        return [event_input(item) for item in (value if self.many else [value])]

    def data(self, results: list[TrackResult]) -> dict[str, Any]:
        rendered = [{key: _render_field(result, name) for key, name in self.selections} for result in results]
        return {self.response_key: rendered if self.many else rendered[0]}


def make_plan(schema: GraphQLSchema, query: str, operation_name: str | None) -> Plan | None:
    """A plan when `query` is a small, valid, plain trackEvent/trackEvents mutation, else None
    (parse bounded by PLAN_MAX_TOKENS, shape checked before validation: a refused document
    costs little). `FastTrack.plan` has already turned away documents over PLAN_MAX_QUERY_CHARS."""
    try:
        document = parse(query, no_location=True, max_tokens=PLAN_MAX_TOKENS)
    except GraphQLError:
        return None
    operations = [d for d in document.definitions if isinstance(d, OperationDefinitionNode)]
    if len(operations) != 1 or len(document.definitions) != 1:
        return None
    operation = operations[0]
    if operation_name is not None and (operation.name is None or operation.name.value != operation_name):
        return None
    selections = operation.selection_set.selections
    if operation.operation is not OperationType.MUTATION or operation.directives or len(selections) != 1:
        return None
    root = selections[0]
    if not isinstance(root, FieldNode) or root.name.value not in ROOT_FIELDS or root.directives:
        return None
    arguments = root.arguments or ()
    if len(arguments) != 1 or not isinstance(arguments[0].value, VariableNode):
        return None
    fields: list[tuple[str, str]] = []
    result_selections = root.selection_set.selections if root.selection_set else ()
    if len(result_selections) > PLAN_MAX_SELECTIONS:
        return None
    for selection in result_selections:
        if not isinstance(selection, FieldNode) or selection.directives or selection.name.value not in RESULT_FIELDS:
            return None
        fields.append(((selection.alias or selection.name).value, selection.name.value))
    if validate(schema, document):
        return None
    return Plan(
        operation=operation,
        response_key=(root.alias or root.name).value,
        many=root.name.value == "trackEvents",
        variable=arguments[0].value.name.value,
        selections=tuple(fields),
    )


class FastTrack:
    """ASGI wrapper around the GraphQL endpoint; see the module docstring."""

    def __init__(self, graphql: ASGIApp, schema: GraphQLSchema, runtime: Runtime, *, enabled: bool = True) -> None:
        self.graphql = graphql
        self.schema = schema
        self.runtime = runtime
        self.enabled = enabled
        self._plans: OrderedDict[str, Plan | None] = OrderedDict()
        self.answered = 0  # requests answered here (tests and curiosity)

    def plan(self, query: str, operation_name: str | None) -> Plan | None:
        if len(query) > PLAN_MAX_QUERY_CHARS:
            return None  # not ours, and not worth a cache entry
        key = f"{operation_name or ''}\x00{query}"
        if key in self._plans:
            self._plans.move_to_end(key)
            return self._plans[key]
        plan = self._plans[key] = make_plan(self.schema, query, operation_name)
        if len(self._plans) > PLAN_CACHE_SIZE:
            self._plans.popitem(last=False)
        return plan

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        request = Request(scope, receive)
        if (
            scope["method"] != "POST"
            or not self.enabled
            or not self.runtime.running
            or not request.headers.get("content-type", "").startswith("application/json")
        ):
            await self.graphql(scope, receive, send)
            return
        body = await request.body()
        if not await self._answer(request, body, send):
            await self.graphql(scope, _replay(body, receive), send)

    async def _answer(self, request: Request, body: bytes, send: Send) -> bool:
        try:
            payload = json.loads(body)
        except ValueError:
            return False
        if not isinstance(payload, dict) or payload.get("extensions") or not isinstance(payload.get("query"), str):
            return False
        variables = payload.get("variables") or {}
        operation_name = payload.get("operationName")
        if not isinstance(variables, dict) or not (operation_name is None or isinstance(operation_name, str)):
            return False
        plan = self.plan(payload["query"], operation_name)
        inputs = plan.inputs(self.schema, variables) if plan is not None else None
        if plan is None or inputs is None:
            return False
        services = self.runtime.services
        authorization = request.headers.get("authorization")
        auth = await services.authenticator.authenticate(
            authorization, payload["query"], variables
        )  # no extensions here
        try:
            results = await services.ingest.track(request_facts(request, auth), inputs)
        except Refused:
            return False  # refused before any side effect: Strawberry answers with its own error
        self.answered += 1
        body = json.dumps({"data": plan.data(results)}, separators=(",", ":")).encode()
        await Response(body, media_type="application/json")(request.scope, request.receive, send)
        return True


def _replay(body: bytes, receive: Receive) -> Receive:
    """A `receive` that hands the already-read body over once, then defers to the original."""
    sent = False

    async def replay() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replay
