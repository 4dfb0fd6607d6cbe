"""Limits on what one GraphQL request may ask: body size, depth, aliases, tokens,
introspection, and no internal error text in responses.

Settings (env prefix SIGNALS_): MAX_BODY_BYTES, GRAPHQL_MAX_DEPTH, GRAPHQL_MAX_ALIASES,
GRAPHQL_MAX_TOKENS, INTROSPECTION (off in production unless set).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from graphql import GraphQLError
from starlette.types import ASGIApp, Message, Receive, Scope, Send
from strawberry.extensions import (
    DisableIntrospection,
    MaskErrors,
    MaxAliasesLimiter,
    MaxTokensLimiter,
    ParserCache,
    QueryDepthLimiter,
    SchemaExtension,
    ValidationCache,
)

from app.config import Settings
from app.context import Authenticate

MASKED_MESSAGE = "Unexpected error; it has been logged."


def should_mask(error: GraphQLError) -> bool:
    """Hide errors raised while resolving unless they carry an `extensions.code` (ours are
    written for the caller). Parse, validation and variable errors have no path and stay."""
    if error.path is None:
        return False
    return not (error.extensions or {}).get("code")


def schema_extensions(settings: Settings | None) -> list[Callable[[], SchemaExtension]]:
    """Extension factories (one fresh instance per request: no state shared between requests)."""
    settings = settings or Settings()
    factories: list[Callable[[], SchemaExtension]] = [
        Authenticate,
        lambda: MaxTokensLimiter(max_token_count=settings.graphql_max_tokens),
        lambda: ParserCache(maxsize=256),
        lambda: QueryDepthLimiter(max_depth=settings.graphql_max_depth),
        lambda: MaxAliasesLimiter(max_alias_count=settings.graphql_max_aliases),
        lambda: ValidationCache(maxsize=256),
        lambda: MaskErrors(should_mask_error=should_mask, error_message=MASKED_MESSAGE),
    ]
    if not settings.introspection_enabled:
        factories.insert(4, DisableIntrospection)
    return factories


class _BodyTooLarge(Exception):
    pass


class BodySizeLimit:
    """ASGI middleware: a request body over `max_bytes` gets 413 with a GraphQL-shaped
    error, whether announced by Content-Length or streamed (chunked)."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope.get("headers") or []).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.max_bytes:
            await self._reject(send)
            return
        received = 0
        started = False

        async def limited_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    raise _BodyTooLarge
            return message

        async def tracking_send(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, limited_receive, tracking_send)
        except _BodyTooLarge:
            if started:
                raise
            await self._reject(send)

    async def _reject(self, send: Send) -> None:
        body: dict[str, Any] = {
            "errors": [
                {
                    "message": f"request body too large: at most {self.max_bytes} bytes are accepted",
                    "extensions": {"code": "PAYLOAD_TOO_LARGE", "maxBytes": self.max_bytes},
                }
            ]
        }
        payload = json.dumps(body).encode()
        headers = [(b"content-type", b"application/json"), (b"content-length", str(len(payload)).encode())]
        await send({"type": "http.response.start", "status": 413, "headers": headers})
        await send({"type": "http.response.body", "body": payload})
