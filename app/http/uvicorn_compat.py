"""Every use of uvicorn beyond its documented API, in one place: an HTTP protocol class
with the limits uvicorn does not have.

uvicorn holds a connection whose headers never complete forever, and httptools buffers
headers of any size. `GuardedHttpToolsProtocol` subclasses uvicorn's `HttpToolsProtocol`
(not a public API) and relies on these internals, each exercised by
`tests/http/test_uvicorn_compat.py` against the installed uvicorn (and bounded in
`pyproject.toml`):

- the asyncio protocol methods `connection_made`, `connection_lost`, `data_received`;
- the httptools parser callbacks `on_message_begin`, `on_headers_complete`, `on_message_complete`;
- `on_response_complete`, called when a response has been sent;
- that every write of a response goes through the protocol's `transport` (which it wraps);
- the attributes `transport`, `loop`, `cycle` (with `response_complete`), `connections`,
  `tasks`, `app` and `limit_concurrency`, and that `on_headers_complete` answers a request
  past `limit_concurrency` itself, with `self.app` unused.

Several workers (`signals serve --workers N`) run under uvicorn's own supervisor,
`uvicorn.supervisors.Multiprocess`, with two more touches, exercised by
`tests/cli/test_workers.py`:

- `WorkerConfig` overrides `Config.load_app` and `Config.load`, which run in each spawned
  worker: uvicorn pickles the config into every worker, and neither the app nor the
  protocol class `guarded_http_protocol` makes can be pickled, so each worker builds both
  from the (picklable) settings itself;
- `WorkerSupervisor.handle_hup` reads `Multiprocess.processes` (each with `pid` and
  `exitcode`) to pass SIGHUP on to the workers.
"""

from __future__ import annotations

import asyncio
import ctypes
import os
import signal
import sys
from collections.abc import Callable
from typing import Any, cast

import uvicorn
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
from uvicorn.supervisors import Multiprocess

from app.config import Settings
from app.http.limits import error_body, service_unavailable
from app.logs import get_logger

log = get_logger("signals.hardening")


_REASONS = {408: b"Request Timeout", 431: b"Request Header Fields Too Large"}


def _raw_response(status: int, payload: bytes) -> bytes:
    return (
        b"HTTP/1.1 %d %s\r\ncontent-type: application/json\r\ncontent-length: %d\r\nconnection: close\r\n\r\n"
        % (status, _REASONS[status], len(payload))
        + payload
    )


class CoalescingTransport:
    """The connection's transport, with the writes made in one event-loop turn sent as one.

    uvicorn writes a response's head and its body with two `transport.write` calls, each a
    `send()` system call (and, with Nagle off, a TCP segment): a tenth of the hot path's
    CPU. Buffered until the end of the current loop turn, they leave together; `close()`
    sends what is buffered first. Everything else is the wrapped transport's own."""

    __slots__ = ("_buffer", "_loop", "_transport")

    def __init__(self, transport: asyncio.Transport, loop: asyncio.AbstractEventLoop) -> None:
        self._transport = transport
        self._loop = loop
        self._buffer: list[bytes] = []

    def write(self, data: bytes) -> None:
        if not self._buffer:
            self._loop.call_soon(self._flush)
        self._buffer.append(data)

    def _flush(self) -> None:
        if self._buffer:
            data = b"".join(self._buffer)
            self._buffer.clear()
            if not self._transport.is_closing():
                self._transport.write(data)

    def close(self) -> None:
        self._flush()
        self._transport.close()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._transport, name)


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
        self._head_tail = b""  # the last bytes of an unfinished head: its end may straddle two reads
        self._body_done = True
        self._head_timer: asyncio.TimerHandle | None = None
        self._drain_timer: asyncio.TimerHandle | None = None

    # --- connection ---------------------------------------------------------------------
    # as uvicorn's own override: asyncio's BaseProtocol takes a BaseTransport, uvicorn's protocols a Transport
    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(cast(asyncio.Transport, CoalescingTransport(transport, self.loop)))
        self._head_timer = self.loop.call_later(self.header_timeout, self._head_timed_out)

    def connection_lost(self, exc: Exception | None) -> None:
        for timer in (self._head_timer, self._drain_timer):
            if timer is not None:
                timer.cancel()
        self._head_timer = self._drain_timer = None
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        if self._awaiting_head:
            if self._head_timer is None:
                self._head_timer = self.loop.call_later(self.header_timeout, self._head_timed_out)
            if self._head_length(data) > self.max_header_bytes:
                # counted before the parser sees the bytes: headers that arrive whole in one
                # read are held to the limit as much as headers that trickle in
                message = f"request line and headers too large: at most {self.max_header_bytes} bytes are accepted"
                self._refuse(431, error_body(message, "HEADERS_TOO_LARGE", maxBytes=self.max_header_bytes))
                return
        super().data_received(data)

    def _head_length(self, data: bytes) -> int:
        """The bytes of the current request line and headers so far, with `data`: up to the
        blank line that ends them when `data` holds it, else everything received."""
        seen = self._head_tail + data
        ends = [at + len(mark) for mark in (b"\r\n\r\n", b"\n\n") if (at := seen.find(mark)) >= 0]  # LF-only too
        if ends:
            return self._head_bytes + min(ends) - len(self._head_tail)
        self._head_bytes += len(data)
        self._head_tail = seen[-3:]
        return self._head_bytes

    # --- httptools parser callbacks -----------------------------------------------------
    def on_message_begin(self) -> None:
        self._body_done = False
        super().on_message_begin()

    def on_headers_complete(self) -> None:
        self._awaiting_head = False
        self._head_bytes = 0
        self._head_tail = b""
        if self._head_timer is not None:
            self._head_timer.cancel()
            self._head_timer = None
        limit = self.limit_concurrency
        if limit is None or (len(self.connections) < limit and len(self.tasks) < limit):
            super().on_headers_complete()
            return
        # past the limit: uvicorn's own check (same condition) would answer a plain-text 503
        log.warning("concurrency limit exceeded", limit=limit, connections=len(self.connections), tasks=len(self.tasks))
        app, self.app, self.limit_concurrency = self.app, service_unavailable, None
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


class WorkerConfig(uvicorn.Config):
    """`uvicorn.Config` for several workers. It travels pickled into each spawned worker, so
    it carries `settings` and a picklable `app_factory` (a module-level function or a
    `functools.partial` of one) instead of the app and the protocol class; `load()`, run in
    the worker, builds the guarded protocol (same limits and timeouts as one process) and
    the app there.

    A worker also stops (SIGTERM: a graceful shutdown, its queue flushed) when the parent
    dies, even SIGKILLed: uvicorn's workers would otherwise go on serving the shared
    socket unsupervised, and a restarted service could not bind its port."""

    def __init__(self, settings: Settings, app_factory: Callable[[], Any], **kwargs: Any) -> None:
        super().__init__("signals:worker", factory=True, **kwargs)  # the name is only shown, never imported
        self.signals_settings = settings
        self.app_factory = app_factory
        self.parent_pid = os.getpid()

    def load_app(self) -> Any:
        return self.app_factory

    def load(self) -> None:
        terminate_with_parent(self.parent_pid)  # uvicorn's signal handlers are in place by now
        self.http = guarded_http_protocol(self.signals_settings)
        super().load()


PR_SET_PDEATHSIG = 1  # linux/prctl.h


def terminate_with_parent(parent_pid: int) -> None:
    """Have the kernel send this process SIGTERM when its parent exits (Linux; elsewhere
    only the check below), and send it now if the parent is already gone."""
    if sys.platform.startswith("linux"):
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
    if os.getppid() != parent_pid:
        os.kill(os.getpid(), signal.SIGTERM)


class WorkerSupervisor(Multiprocess):
    """uvicorn's supervisor, except SIGHUP: for Signals it means "re-read the salt secret"
    (app/privacy/rotation.py), so each worker gets it, instead of uvicorn restarting them all.
    SIGTERM/SIGINT stay uvicorn's: every worker is sent SIGTERM, shuts down gracefully (stops
    accepting, finishes its requests, runs the lifespan's shutdown) and is waited for."""

    def handle_hup(self) -> None:
        for process in self.processes:
            if process.pid is not None and process.exitcode is None:
                os.kill(process.pid, signal.SIGHUP)
