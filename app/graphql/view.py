"""The GraphQL endpoint: Strawberry's ASGI view, with the typed context every resolver gets."""

from __future__ import annotations

from typing import Any

import strawberry
from starlette.requests import Request
from starlette.responses import Response
from starlette.websockets import WebSocket
from strawberry.asgi import GraphQL

from app.graphql.context import Context, Runtime


class SignalsGraphQL(GraphQL[Context, None]):
    def __init__(self, schema: strawberry.Schema, runtime: Runtime, **options: Any) -> None:
        super().__init__(schema, **options)
        self.runtime = runtime

    async def get_context(self, request: Request | WebSocket, response: Response | WebSocket) -> Context:
        return Context(request=request, response=response, services=self.runtime.services)
