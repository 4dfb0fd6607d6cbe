"""Limits on what one request may ask or hold: body size and time, header size and time,
depth, aliases, tokens, introspection, and no internal error text in responses.

Settings (env prefix SIGNALS_): MAX_BODY_BYTES, BODY_TIMEOUT, HEADER_TIMEOUT,
MAX_HEADER_BYTES, GRAPHQL_MAX_DEPTH, GRAPHQL_MAX_ALIASES, GRAPHQL_MAX_TOKENS, INTROSPECTION
(off in production unless set). KEEP_ALIVE_TIMEOUT, LIMIT_CONCURRENCY and BACKLOG go to
uvicorn (app/cli.py).

Two layers: `RequestLimits` (ASGI middleware: body size, body deadline, bodies that nest too
deeply to decode) answers with GraphQL-shaped errors; `GuardedHttpToolsProtocol` (the HTTP
protocol `signals serve` gives uvicorn) bounds what happens before the app sees a request,
which uvicorn itself leaves open: a connection that never completes its headers is held
forever, and headers of any size are buffered.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from graphql import GraphQLError, GraphQLSyntaxError
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
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from app.config import Settings
from app.context import Authenticate
from app.db import unavailable_reason
from app.logs import get_logger

log = get_logger("signals.hardening")

MASKED_MESSAGE = "Unexpected error; it has been logged."


def should_mask(error: GraphQLError) -> bool:
    """Hide errors raised while resolving unless they carry an `extensions.code` (ours are
    written for the caller). Parse, validation and variable errors have no path and stay."""
    if error.path is None:
        return False
    return not (error.extensions or {}).get("code")


class ErrorCodes(SchemaExtension):
    """Give parse and validation errors an `extensions.code` (Apollo's names), so a caller
    can tell "fix the document" from other errors: GRAPHQL_PARSE_FAILED (syntax, too many
    tokens, nested too deeply) and GRAPHQL_VALIDATION_FAILED (unknown fields, too deep,
    too many aliases, introspection off). Codes already present are kept."""

    @staticmethod
    def _label(errors: Iterable[GraphQLError], code: str) -> None:
        for error in errors:
            if not (error.extensions or {}).get("code"):
                error.extensions = {**(error.extensions or {}), "code": code}

    def on_validate(self) -> Iterator[None]:
        yield
        self._label(self.execution_context.pre_execution_errors or (), "GRAPHQL_VALIDATION_FAILED")


class CodedParserCache(ParserCache):
    """ParserCache (which parses before its hook yields, so no other extension sees a parse
    error on the way out) labelling syntax errors GRAPHQL_PARSE_FAILED."""

    def on_parse(self) -> Iterator[None]:
        try:
            yield from super().on_parse()  # type: ignore[misc]
        except GraphQLSyntaxError as error:
            ErrorCodes._label([error], "GRAPHQL_PARSE_FAILED")
            raise


class DatabaseUnavailable(SchemaExtension):
    """An error raised because the database could not answer (down, unreachable, out of
    pooled connections, past the statement timeout) reaches the caller as what it is:
    `extensions.code` UNAVAILABLE, `retryable: true`, and a message saying what to do,
    instead of the masked "Unexpected error". Listed after MaskErrors so it runs first on
    the way out; the original error is still logged by Strawberry."""

    def on_operation(self) -> Iterator[None]:
        yield
        result = self.execution_context.result
        if result is None or not result.errors:
            return
        result.errors = [self._rewrite(error) for error in result.errors]

    @staticmethod
    def _rewrite(error: GraphQLError) -> GraphQLError:
        reason = unavailable_reason(error.original_error)
        if reason is None or (error.extensions or {}).get("code"):
            return error
        return GraphQLError(
            reason, nodes=error.nodes, path=error.path, extensions={"code": "UNAVAILABLE", "retryable": True}
        )


def schema_extensions(settings: Settings | None) -> list[Callable[[], SchemaExtension]]:
    """Extension factories (one fresh instance per request: no state shared between requests)."""
    settings = settings or Settings()
    factories: list[Callable[[], SchemaExtension]] = [
        Authenticate,
        ErrorCodes,
        lambda: MaxTokensLimiter(max_token_count=settings.graphql_max_tokens),
        lambda: CodedParserCache(maxsize=256),
        lambda: QueryDepthLimiter(max_depth=settings.graphql_max_depth),
        lambda: MaxAliasesLimiter(max_alias_count=settings.graphql_max_aliases),
        lambda: ValidationCache(maxsize=256),
        lambda: MaskErrors(should_mask_error=should_mask, error_message=MASKED_MESSAGE),
        DatabaseUnavailable,
    ]
    if not settings.introspection_enabled:
        factories.insert(5, DisableIntrospection)
    return factories


class _BodyTooLarge(Exception):
    pass


class _BodyTooSlow(Exception):
    pass


def error_body(message: str, code: str, **extensions: Any) -> bytes:
    """A GraphQL-shaped error document: `{"errors": [{"message", "extensions": {"code", ...}}]}`."""
    return json.dumps({"errors": [{"message": message, "extensions": {"code": code, **extensions}}]}).encode()


async def _answer(send: Send, status: int, payload: bytes, *, close: bool = False, retry_after: int | None = None) -> None:
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(payload)).encode())]
    if close:
        headers.append((b"connection", b"close"))
    if retry_after is not None:
        headers.append((b"retry-after", str(retry_after).encode()))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": payload})


class RequestLimits:
    """ASGI middleware, GraphQL-shaped refusals for what one request body may be:

    - over `max_bytes`, announced by Content-Length or streamed (chunked): 413 PAYLOAD_TOO_LARGE;
    - not complete within `body_timeout` seconds of the headers (a client trickling its
      body would otherwise hold the request forever): 408 REQUEST_TIMEOUT, connection closed;
    - nested too deeply to decode (JSON's decoder raises RecursionError, not ValueError,
      which would otherwise be a 500): 400 BAD_REQUEST.

    The deadline applies only while the body is being read; waiting for a disconnect after
    the body (streaming responses) is not limited."""

    def __init__(self, app: ASGIApp, max_bytes: int, body_timeout: float | None = None) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.body_timeout = body_timeout

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope.get("headers") or []).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.max_bytes:
            await self._too_large(send)
            return
        loop = asyncio.get_running_loop()
        deadline = None if self.body_timeout is None else loop.time() + self.body_timeout
        received = 0
        body_done = False
        started = False

        async def limited_receive() -> Message:
            nonlocal received, body_done
            if body_done or deadline is None:
                message = await receive()
            else:
                try:
                    async with asyncio.timeout_at(deadline):
                        message = await receive()
                except TimeoutError:
                    raise _BodyTooSlow from None
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    raise _BodyTooLarge
                body_done = not message.get("more_body", False)
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
            await self._too_large(send)
        except _BodyTooSlow:
            if started:
                raise
            log.info("request body too slow", timeout_seconds=self.body_timeout, received_bytes=received)
            message = (
                f"request body not received within {self.body_timeout:g} s: send the whole body at once, "
                "then retry"
            )
            await _answer(send, 408, error_body(message, "REQUEST_TIMEOUT", timeoutSeconds=self.body_timeout), close=True)
        except RecursionError:
            if started:
                raise
            log.info("request body nested too deeply", received_bytes=received)
            message = "request body is nested too deeply to decode; send flatter JSON (variables nest at most a few levels)"
            await _answer(send, 400, error_body(message, "BAD_REQUEST"))

    async def _too_large(self, send: Send) -> None:
        message = f"request body too large: at most {self.max_bytes} bytes are accepted"
        await _answer(send, 413, error_body(message, "PAYLOAD_TOO_LARGE", maxBytes=self.max_bytes))


_REASONS = {408: b"Request Timeout", 431: b"Request Header Fields Too Large"}
_BUSY_MESSAGE = "the server is at its connection limit (SIGNALS_LIMIT_CONCURRENCY); retry in a moment"


async def _service_unavailable(scope: Scope, receive: Receive, send: Send) -> None:
    """What a request past the concurrency limit gets (instead of uvicorn's plain-text 503);
    the connection is closed, so the refusal also frees a slot."""
    await _answer(send, 503, error_body(_BUSY_MESSAGE, "SERVICE_UNAVAILABLE"), close=True, retry_after=1)


def _raw_response(status: int, payload: bytes) -> bytes:
    return (
        b"HTTP/1.1 %d %s\r\ncontent-type: application/json\r\ncontent-length: %d\r\nconnection: close\r\n\r\n"
        % (status, _REASONS[status], len(payload))
        + payload
    )


class GuardedHttpToolsProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol with the limits uvicorn does not have (see module doc):

    - `header_timeout`: from connecting, or from the first byte of the next request on a
      kept-alive connection, the request line and headers must be complete within this many
      seconds; else 408 (or, if nothing at all was sent, a silent close). Slowloris.
    - `max_header_bytes`: more bytes than this before the headers are complete gets 431
      (httptools buffers headers of any size; h11's own limit applies only to h11).
    - `body_timeout` after the response: a request whose response is sent while its body
      is still arriving (413 by Content-Length, 408, routes that never read the body)
      closes once the body has not finished this many seconds later, instead of staying
      open for as long as the client trickles bytes.

    Past uvicorn's `limit_concurrency` the 503 is GraphQL-shaped (SERVICE_UNAVAILABLE, with
    Retry-After) and closes the connection. Idle keep-alive connections are uvicorn's
    `timeout_keep_alive`. `signals serve` uses
    `guarded_http_protocol(settings)`, a subclass carrying the configured values."""

    header_timeout: float = 10.0
    body_timeout: float = 15.0
    max_header_bytes: int = 32_768

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._awaiting_head = True  # the next bytes belong to a request line or headers
        self._head_bytes = 0
        self._body_done = True
        self._head_timer: asyncio.TimerHandle | None = None
        self._drain_timer: asyncio.TimerHandle | None = None

    # --- connection ---------------------------------------------------------------------
    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._head_timer = self.loop.call_later(self.header_timeout, self._head_timed_out)

    def connection_lost(self, exc: Exception | None) -> None:
        for timer in (self._head_timer, self._drain_timer):
            if timer is not None:
                timer.cancel()
        self._head_timer = self._drain_timer = None
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        if self._awaiting_head:
            self._head_bytes += len(data)
            if self._head_timer is None:
                self._head_timer = self.loop.call_later(self.header_timeout, self._head_timed_out)
        super().data_received(data)
        if self._awaiting_head and self._head_bytes > self.max_header_bytes and not self.transport.is_closing():
            message = f"request line and headers too large: at most {self.max_header_bytes} bytes are accepted"
            self._refuse(431, error_body(message, "HEADERS_TOO_LARGE", maxBytes=self.max_header_bytes))

    # --- httptools parser callbacks -----------------------------------------------------
    def on_message_begin(self) -> None:
        self._body_done = False
        super().on_message_begin()

    def on_headers_complete(self) -> None:
        self._awaiting_head = False
        self._head_bytes = 0
        if self._head_timer is not None:
            self._head_timer.cancel()
            self._head_timer = None
        limit = self.limit_concurrency
        if limit is None or (len(self.connections) < limit and len(self.tasks) < limit):
            super().on_headers_complete()
            return
        # past the limit: uvicorn's own check (same condition) would answer a plain-text 503
        log.warning("concurrency limit exceeded", limit=limit, connections=len(self.connections), tasks=len(self.tasks))
        app, self.app, self.limit_concurrency = self.app, _service_unavailable, None
        try:
            super().on_headers_complete()
        finally:
            self.app, self.limit_concurrency = app, limit

    def on_message_complete(self) -> None:
        self._body_done = True
        self._awaiting_head = True
        if self._drain_timer is not None:
            self._drain_timer.cancel()
            self._drain_timer = None
        super().on_message_complete()

    def on_response_complete(self) -> None:
        super().on_response_complete()
        if not self._body_done and self._drain_timer is None and not self.transport.is_closing():
            self._drain_timer = self.loop.call_later(self.body_timeout, self._drain_timed_out)

    # --- timers -------------------------------------------------------------------------
    def _busy(self) -> bool:
        """A response is under way on this connection (a pipelined request is waiting)."""
        return self.cycle is not None and not self.cycle.response_complete

    def _head_timed_out(self) -> None:
        self._head_timer = None
        if not self._awaiting_head or self.transport.is_closing():
            return
        if self._busy():  # the previous request is still being answered: not the client's delay
            self._head_timer = self.loop.call_later(self.header_timeout, self._head_timed_out)
            return
        if self._head_bytes == 0:
            self.transport.close()  # connected and sent nothing: nothing to answer
            return
        message = f"request headers not received within {self.header_timeout:g} s"
        self._refuse(408, error_body(message, "REQUEST_TIMEOUT", timeoutSeconds=self.header_timeout))

    def _drain_timed_out(self) -> None:
        self._drain_timer = None
        if not self._body_done and not self._busy():
            self.transport.close()

    def _refuse(self, status: int, payload: bytes) -> None:
        log.info("connection refused", status=status)
        if not self._busy():  # mid-response a second answer would corrupt the stream: just close
            self.transport.write(_raw_response(status, payload))
        self.transport.close()


def guarded_http_protocol(settings: Settings) -> type[GuardedHttpToolsProtocol]:
    """The protocol class for `uvicorn.run(http=...)`, carrying `settings`' limits."""
    return type(
        "SignalsHttpProtocol",
        (GuardedHttpToolsProtocol,),
        {
            "header_timeout": settings.header_timeout,
            "body_timeout": settings.body_timeout,
            "max_header_bytes": settings.max_header_bytes,
        },
    )
