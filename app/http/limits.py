"""Limits on what one HTTP request body may be, as ASGI middleware with GraphQL-shaped
refusals: size (SIGNALS_MAX_BODY_BYTES), time (SIGNALS_BODY_TIMEOUT), and JSON nested too
deeply to decode. What happens before the app sees a request (header size and time) is
bounded by the uvicorn protocol in app/http/uvicorn_compat.py.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.logs import get_logger

log = get_logger("signals.hardening")


class _BodyTooLarge(Exception):
    pass


class _BodyTooSlow(Exception):
    pass


def error_body(message: str, code: str, **extensions: Any) -> bytes:
    """A GraphQL-shaped error document: `{"errors": [{"message", "extensions": {"code", ...}}]}`."""
    return json.dumps({"errors": [{"message": message, "extensions": {"code": code, **extensions}}]}).encode()


async def answer(
    send: Send, status: int, payload: bytes, *, close: bool = False, retry_after: int | None = None
) -> None:
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(payload)).encode())]
    if close:
        headers.append((b"connection", b"close"))
    if retry_after is not None:
        headers.append((b"retry-after", str(retry_after).encode()))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": payload})


BUSY_MESSAGE = "the server is at its connection limit (SIGNALS_LIMIT_CONCURRENCY); retry in a moment"


async def service_unavailable(scope: Scope, receive: Receive, send: Send) -> None:
    """What a request past the concurrency limit gets (instead of uvicorn's plain-text 503);
    the connection is closed, so the refusal also frees a slot."""
    await answer(send, 503, error_body(BUSY_MESSAGE, "SERVICE_UNAVAILABLE"), close=True, retry_after=1)


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
                f"request body not received within {self.body_timeout:g} s: send the whole body at once, then retry"
            )
            await answer(
                send, 408, error_body(message, "REQUEST_TIMEOUT", timeoutSeconds=self.body_timeout), close=True
            )
        except RecursionError:
            if started:
                raise
            log.info("request body nested too deeply", received_bytes=received)
            message = (
                "request body is nested too deeply to decode; send flatter JSON (variables nest at most a few levels)"
            )
            await answer(send, 400, error_body(message, "BAD_REQUEST"))

    async def _too_large(self, send: Send) -> None:
        message = f"request body too large: at most {self.max_bytes} bytes are accepted"
        await answer(send, 413, error_body(message, "PAYLOAD_TOO_LARGE", maxBytes=self.max_bytes))
