"""The uvicorn internals app/http/uvicorn_compat.py relies on, checked against the installed
uvicorn: the hooks exist with the arguments it passes, the attributes it reads are set, and
a real uvicorn server running the protocol answers the limits it adds."""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import json
import socket
from collections.abc import AsyncIterator

import pytest
import uvicorn
from starlette.types import Receive, Scope, Send
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from app.config import load_settings
from app.http.uvicorn_compat import GuardedHttpToolsProtocol, guarded_http_protocol

HOOKS = {  # method -> its parameters besides self, as the subclass overrides it
    "connection_made": ["transport"],
    "connection_lost": ["exc"],
    "data_received": ["data"],
    "on_message_begin": [],
    "on_headers_complete": [],
    "on_message_complete": [],
    "on_response_complete": [],
}
ATTRIBUTES = ("transport", "loop", "cycle", "connections", "tasks", "app", "limit_concurrency")


@pytest.mark.parametrize("name", sorted(HOOKS))
def test_each_overridden_hook_exists_with_the_same_parameters(name: str) -> None:
    hook = getattr(HttpToolsProtocol, name)
    assert list(inspect.signature(hook).parameters)[1:] == HOOKS[name]
    assert name in GuardedHttpToolsProtocol.__dict__


def test_on_headers_complete_refuses_past_limit_concurrency_itself() -> None:
    """The subclass swaps `self.app` for its own 503 while uvicorn's check would fire, so
    uvicorn must still decide that in `on_headers_complete` from these attributes."""
    source = inspect.getsource(HttpToolsProtocol.on_headers_complete)
    for name in ("self.limit_concurrency", "self.connections", "self.tasks", "self.app"):
        assert name in source


async def app(scope: Scope, receive: Receive, send: Send) -> None:
    if scope["type"] != "http":
        return
    await send(
        {
            "type": "http.response.start",
            "status": 200,
            "headers": [(b"content-type", b"text/plain"), (b"content-length", b"2")],
        }
    )
    await send({"type": "http.response.body", "body": b"ok"})


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextlib.asynccontextmanager
async def serving(**limits: object) -> AsyncIterator[tuple[int, list[GuardedHttpToolsProtocol]]]:
    """A real uvicorn server on loopback with the guarded protocol; (port, protocols made)."""
    made: list[GuardedHttpToolsProtocol] = []
    base = guarded_http_protocol(load_settings(**limits))

    class Recording(base):  # type: ignore[misc,valid-type]
        def __init__(self, *args: object, **kwargs: object) -> None:
            super().__init__(*args, **kwargs)
            made.append(self)

    port = free_port()
    config = uvicorn.Config(app, host="127.0.0.1", port=port, http=Recording, log_config=None, lifespan="off")
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    while not server.started:
        await asyncio.sleep(0.02)
    try:
        yield port, made
    finally:
        server.should_exit = True
        await asyncio.wait_for(task, 10)


async def exchange(port: int, data: bytes, wait: float = 5.0) -> bytes:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(data)
    await writer.drain()
    try:
        return await asyncio.wait_for(reader.read(), wait)
    finally:
        writer.close()


async def test_a_real_server_sets_the_attributes_and_answers_a_request() -> None:
    async with serving() as (port, made):
        answer = await exchange(port, b"GET / HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n")
    assert answer.startswith(b"HTTP/1.1 200") and answer.endswith(b"ok")
    assert made and all(hasattr(made[0], name) for name in ATTRIBUTES)


async def test_headers_past_the_limit_get_431() -> None:
    async with serving(max_header_bytes=4096) as (port, _):
        answer = await exchange(port, b"GET / HTTP/1.1\r\nhost: x\r\nx-big: " + b"a" * 8000)  # still incomplete
    assert answer.startswith(b"HTTP/1.1 431")
    assert json.loads(answer.partition(b"\r\n\r\n")[2])["errors"][0]["extensions"]["code"] == "HEADERS_TOO_LARGE"


async def test_headers_not_finished_in_time_get_408() -> None:
    async with serving(header_timeout=0.3) as (port, _):
        answer = await exchange(port, b"GET / HTTP/1.1\r\nhost: x\r\n")  # never finishes its headers
    assert answer.startswith(b"HTTP/1.1 408")
    assert json.loads(answer.partition(b"\r\n\r\n")[2])["errors"][0]["extensions"]["code"] == "REQUEST_TIMEOUT"


@pytest.mark.parametrize("size", [40_000, 100_000])
async def test_headers_past_the_limit_in_one_write_get_431(size: int) -> None:
    """Complete headers that arrive in one read are held to the limit too (the parser would
    have finished them before a count taken after it)."""
    async with serving(max_header_bytes=32_768) as (port, _):
        head = b"GET / HTTP/1.1\r\nhost: x\r\nx-big: " + b"a" * size + b"\r\nconnection: close\r\n\r\n"
        answer = await exchange(port, head)
    assert answer.startswith(b"HTTP/1.1 431")


async def test_a_body_does_not_count_towards_the_header_limit() -> None:
    async with serving(max_header_bytes=4096) as (port, _):
        body = b"x" * 20_000
        request = b"POST / HTTP/1.1\r\nhost: x\r\nconnection: close\r\ncontent-length: %d\r\n\r\n" % len(body)
        answer = await exchange(port, request + body)  # one write: the body follows the headers at once
    assert answer.startswith(b"HTTP/1.1 200")


def first_reads(port: int, requests: int) -> list[bytes]:
    """What the first recv() of each response returns, kept-alive, from a blocking client
    in its own thread (so it wakes on the first segment that arrives)."""
    firsts = []
    with socket.create_connection(("127.0.0.1", port)) as sock:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        for _ in range(requests):
            sock.sendall(b"GET / HTTP/1.1\r\nhost: x\r\n\r\n")
            first = sock.recv(65536)
            firsts.append(first)
            rest = first
            while not rest.endswith(b"ok"):
                rest += sock.recv(65536)
    return firsts


async def test_a_response_leaves_as_one_write() -> None:
    """The head and the body of a response are one send(): the first read holds both."""
    async with serving() as (port, _):
        firsts = await asyncio.to_thread(first_reads, port, 200)
    split = [first for first in firsts if not first.endswith(b"ok")]
    assert not split, f"{len(split)} of {len(firsts)} responses arrived as head, then body"
