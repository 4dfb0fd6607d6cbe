"""Abuse limits proven against one real `signals serve` (uvicorn + the app, on a fresh
database of the suite's PostgreSQL): every abusive request is refused quickly with an error a
caller can act on, slow clients are cut off at the configured deadlines while others are
served, connections past the limit get 503, and the server's memory stays bounded.

After every case a normal authenticated `trackEvent` must still be ACCEPTED. The time to each
refusal and the server's peak RSS (psutil, the server process only: the database is
external) are printed at the end (`pytest -s tests/e2e/test_abuse.py`).
"""

from __future__ import annotations

import asyncio
import json
import selectors
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import asyncpg
import httpx
import pytest

from app.ingest.pipeline import MAX_BATCH
from app.storage.database import asyncpg_dsn
from app.storage.migrations import migrate
from testkit.database import create_database, drop_database
from testkit.processes import PeakRss, clean_env, free_port
from testkit.settings import TEST_JWT_SECRET, TEST_SALT_SECRET
from testkit.tokens import token

HEADER_TIMEOUT = 1.5  # SIGNALS_HEADER_TIMEOUT of the server under test
BODY_TIMEOUT = 1.5  # SIGNALS_BODY_TIMEOUT
KEEP_ALIVE = 1.5  # SIGNALS_KEEP_ALIVE_TIMEOUT
LIMIT = 64  # SIGNALS_LIMIT_CONCURRENCY
MAX_HEADER_BYTES = 16_384  # SIGNALS_MAX_HEADER_BYTES
MAX_BODY = 65_536  # SIGNALS_MAX_BODY_BYTES (the default)
MAX_TOKENS = 2_000  # SIGNALS_GRAPHQL_MAX_TOKENS (the default)

QUICK = 1.0  # a refusal takes at most this long (they measure ~10-50 ms)
LATE = 0.9  # a connection is cut at most this long after its deadline
RSS_BOUND = 400 * 2**20

UA = "Mozilla/5.0 (X11; Linux x86_64; rv:121.0) Gecko/20100101 Firefox/121.0"
TRACK = "mutation($i: TrackEventInput!) { trackEvent(input: $i) { status reason eventId clientEventId } }"
TRACK_MANY = "mutation($i: [TrackEventInput!]!) { trackEvents(inputs: $i) { status } }"


# --- the server under test -------------------------------------------------------------------


@dataclass
class Server:
    port: int
    proc: subprocess.Popen[bytes]
    database_url: str
    rss: PeakRss
    timings: dict[str, float] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    @property
    def graphql(self) -> str:
        return f"http://127.0.0.1:{self.port}/graphql"

    def record(self, case: str, seconds: float) -> None:
        self.timings[case] = seconds

    def summary(self) -> str:
        lines = ["", "abuse cases against `signals serve` (seconds until refused / cut off):"]
        lines += [f"  {seconds:7.3f}  {case}" for case, seconds in self.timings.items()]
        lines.append(
            f"server RSS: baseline {self.rss.baseline / 2**20:.0f} MiB, peak {self.rss.peak / 2**20:.0f} MiB "
            f"(bound {RSS_BOUND / 2**20:.0f} MiB)"
        )
        lines += [f"note: {note}" for note in self.notes]
        return "\n".join(lines)


@pytest.fixture(scope="module")
async def server(pg_server: str, tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Server]:
    url = await create_database(pg_server)
    await migrate(url)
    data = tmp_path_factory.mktemp("abuse")
    port = free_port()
    env = clean_env(
        DATABASE_URL=url,
        SIGNALS_DATA_DIR=str(data),
        SIGNALS_JWT_SECRET=TEST_JWT_SECRET,
        SIGNALS_SALT_SECRET=TEST_SALT_SECRET,
        SIGNALS_ALLOWED_APPS="admin-console,billing-admin",
        SIGNALS_ALLOWED_EVENT_TYPES="click,view,export,search",
        SIGNALS_ALLOWED_ENTITY_TYPES="order,customer,invoice",
        SIGNALS_RATE_LIMIT="1000000/minute",
        SIGNALS_ANONYMOUS_RATE_LIMIT="1000000/minute",
        SIGNALS_HEADER_TIMEOUT=str(HEADER_TIMEOUT),
        SIGNALS_BODY_TIMEOUT=str(BODY_TIMEOUT),
        SIGNALS_KEEP_ALIVE_TIMEOUT=str(KEEP_ALIVE),
        SIGNALS_LIMIT_CONCURRENCY=str(LIMIT),
        SIGNALS_MAX_HEADER_BYTES=str(MAX_HEADER_BYTES),
        SIGNALS_LOG_LEVEL="WARNING",
    )
    log_path = data / "server.log"
    with log_path.open("wb") as log:
        proc = subprocess.Popen(
            # one worker: its RSS is the server's, and SIGNALS_LIMIT_CONCURRENCY is per worker
            [sys.executable, "-m", "app.cli", "serve", "--port", str(port), "--workers", "1"],
            env=env,
            stdout=log,
            stderr=log,
        )
    sampler: PeakRss | None = None
    try:
        deadline = time.monotonic() + 60
        while True:
            assert proc.poll() is None, log_path.read_text()
            try:
                if httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, log_path.read_text()
            await asyncio.sleep(0.2)
        sampler = PeakRss(proc.pid)
        sampler.start()
        server = Server(port=port, proc=proc, database_url=url, rss=sampler)
        yield server
        print(server.summary())
    finally:
        if sampler is not None:
            sampler.stop()
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        await drop_database(pg_server, url)


# --- helpers ---------------------------------------------------------------------------------


def auth_headers() -> dict[str, str]:
    return {"authorization": f"Bearer {token()}", "user-agent": UA}


def event(client_event_id: str | None = None) -> dict[str, str]:
    return {"appName": "admin-console", "eventType": "click", "clientEventId": client_event_id or str(uuid.uuid4())}


def assert_still_serving(server: Server) -> None:
    """A normal authenticated trackEvent is ACCEPTED (committed)."""
    assert server.proc.poll() is None, "the server died"
    response = httpx.post(
        server.graphql, json={"query": TRACK, "variables": {"i": event()}}, headers=auth_headers(), timeout=10
    )
    assert response.status_code == 200, response.text
    assert response.json()["data"]["trackEvent"]["status"] == "ACCEPTED", response.text


def timed_post(
    server: Server, payload: dict | bytes, headers: dict[str, str] | None = None
) -> tuple[httpx.Response, float]:
    started = time.monotonic()
    if isinstance(payload, bytes):
        response = httpx.post(
            server.graphql, content=payload, headers={"content-type": "application/json", **(headers or {})}, timeout=30
        )
    else:
        response = httpx.post(server.graphql, json=payload, headers=headers or {}, timeout=30)
    return response, time.monotonic() - started


def errors_of(response: httpx.Response) -> list[dict]:
    """The GraphQL-shaped errors of a refusal: each with a message and an extensions.code."""
    assert response.status_code in (200, 400, 408, 413, 431, 503), response.text  # never a 500
    errors = response.json()["errors"]
    assert errors and all(error["message"] and error["extensions"]["code"] for error in errors), errors
    return errors


def connect(server: Server) -> socket.socket:
    return socket.create_connection(("127.0.0.1", server.port), timeout=10)


def request_head(server: Server, *, length: int | None = None, chunked: bool = False) -> bytes:
    lines = [
        b"POST /graphql HTTP/1.1",
        b"Host: 127.0.0.1:%d" % server.port,
        b"Content-Type: application/json",
        b"User-Agent: " + UA.encode(),
        b"Authorization: Bearer " + token().encode(),
    ]
    if length is not None:
        lines.append(b"Content-Length: %d" % length)
    if chunked:
        lines.append(b"Transfer-Encoding: chunked")
    return b"\r\n".join(lines) + b"\r\n\r\n"


def parse_response(raw: bytes) -> tuple[int, dict[str, str], bytes]:
    head, _, body = raw.partition(b"\r\n\r\n")
    status_line, *header_lines = head.decode("latin-1").split("\r\n")
    headers = {name.strip().lower(): value.strip() for name, value in (line.split(":", 1) for line in header_lines)}
    if "content-length" in headers:
        body = body[: int(headers["content-length"])]
    return int(status_line.split()[1]), headers, body


def read_response(sock: socket.socket, timeout: float = 10) -> bytes:
    """One whole response (head + Content-Length body) from a raw socket."""
    sock.settimeout(timeout)
    raw = b""
    while True:
        _head, sep, body = raw.partition(b"\r\n\r\n")
        if sep:
            _, headers, _ = parse_response(raw)
            if len(body) >= int(headers.get("content-length", 0)):
                return raw
        chunk = sock.recv(65536)
        assert chunk, f"connection closed before a whole response: {raw!r}"
        raw += chunk


def wait_closed(sock: socket.socket, limit: float) -> tuple[float | None, bytes]:
    """Seconds until the server closes `sock` (None if still open after `limit`) and what it sent."""
    started = time.monotonic()
    data = b""
    while (left := limit - (time.monotonic() - started)) > 0:
        sock.settimeout(left)
        try:
            chunk = sock.recv(65536)
        except TimeoutError:
            break
        except ConnectionResetError:
            return time.monotonic() - started, data
        if not chunk:
            return time.monotonic() - started, data
        data += chunk
    return None, data


def graphql_error(body: bytes) -> dict:
    (error,) = json.loads(body)["errors"]
    assert error["message"] and error["extensions"]["code"], error
    return error


async def stored(server: Server, client_event_ids: list[str]) -> int:
    conn = await asyncpg.connect(asyncpg_dsn(server.database_url))
    try:
        return await conn.fetchval(
            "SELECT count(*) FROM events WHERE client_event_id = ANY($1::text[])", client_event_ids
        )
    finally:
        await conn.close()


# --- (1), (2) oversized bodies -------------------------------------------------------------------


def test_oversized_body_announced_by_content_length_is_refused_before_it_is_sent(server: Server) -> None:
    sock = connect(server)
    started = time.monotonic()
    sock.sendall(request_head(server, length=50_000_000) + b'{"query": "')  # 50 MB announced, none sent
    status, _headers, body = parse_response(read_response(sock))
    elapsed = time.monotonic() - started
    assert status == 413 and elapsed < QUICK, (status, elapsed)
    error = graphql_error(body)
    assert error["extensions"] == {"code": "PAYLOAD_TOO_LARGE", "maxBytes": MAX_BODY}
    assert f"at most {MAX_BODY} bytes" in error["message"]
    server.record("413 PAYLOAD_TOO_LARGE, 50 MB announced by Content-Length", elapsed)
    # the client never sends the rest: the connection does not wait for it forever
    closed_after, _ = wait_closed(sock, BODY_TIMEOUT + LATE)
    assert closed_after is not None, "a connection whose body never completes stays open"
    server.record("  its connection closed (body never sent), after the 413", closed_after)
    sock.close()

    response, elapsed = timed_post(server, b'{"query": "{ __typename }", "pad": "' + b"x" * 1_000_000 + b'"}')
    assert response.status_code == 413 and errors_of(response)[0]["extensions"]["code"] == "PAYLOAD_TOO_LARGE"
    server.record("413 PAYLOAD_TOO_LARGE, 1 MB body sent in full", elapsed)
    assert_still_serving(server)


def test_oversized_body_streamed_without_length_is_refused_once_over_the_limit(server: Server) -> None:
    sock = connect(server)
    sock.sendall(request_head(server, chunked=True))
    chunk = b"x" * 8192
    sent = 0
    crossed = None
    selector = selectors.DefaultSelector()
    selector.register(sock, selectors.EVENT_READ)
    while not selector.select(timeout=0.01):  # stream until the server answers
        assert sent < 4 * MAX_BODY, "still reading a chunked body four times over the limit"
        sock.sendall(b"%x\r\n%s\r\n" % (len(chunk), chunk))
        sent += len(chunk)
        if crossed is None and sent > MAX_BODY:
            crossed = time.monotonic()
    selector.close()
    status, _, body = parse_response(read_response(sock))
    assert crossed is not None
    elapsed = time.monotonic() - crossed
    assert status == 413 and graphql_error(body)["extensions"]["code"] == "PAYLOAD_TOO_LARGE"
    assert sent <= MAX_BODY + 3 * len(chunk) and elapsed < QUICK, (sent, elapsed)
    server.record(
        f"413 PAYLOAD_TOO_LARGE, chunked body (answered after {sent // 1024} KiB), from crossing the limit", elapsed
    )
    closed_after, _ = wait_closed(sock, BODY_TIMEOUT + LATE)
    assert closed_after is not None
    sock.close()
    assert_still_serving(server)


# --- (3), (4), (5) expensive documents ----------------------------------------------------------


def test_deeply_nested_query_gets_a_depth_error_not_a_500(server: Server) -> None:
    for depth, words, code in (
        (200, "nested too deeply", "GRAPHQL_PARSE_FAILED"),
        (40, "exceeds maximum operation depth of 12", "GRAPHQL_VALIDATION_FAILED"),
    ):
        query = "{ " + "a { " * depth + "b" + " }" * depth + " }"
        response, elapsed = timed_post(server, {"query": query})
        errors = errors_of(response)
        assert any(words in error["message"] for error in errors), errors
        assert {error["extensions"]["code"] for error in errors} == {code}
        assert elapsed < QUICK
        server.record(f"{code}, query nested {depth} levels", elapsed)
    assert_still_serving(server)


def test_alias_bomb_is_refused(server: Server) -> None:
    thousands = "{ " + " ".join(f"a{i}:__typename" for i in range(3500)) + " }"  # ~55 KB, 10k tokens
    response, elapsed = timed_post(server, {"query": thousands})
    (error,) = errors_of(response)
    assert (
        error["extensions"]["code"] == "GRAPHQL_PARSE_FAILED" and f"more than {MAX_TOKENS} tokens" in error["message"]
    )
    assert elapsed < QUICK
    server.record("GRAPHQL_PARSE_FAILED, 3,500 aliases of one field (token limit)", elapsed)

    hundreds = "{ " + " ".join(f"a{i}: __typename" for i in range(600)) + " }"  # within the token limit
    response, elapsed = timed_post(server, {"query": hundreds})
    errors = errors_of(response)
    assert any("aliases" in error["message"] for error in errors), errors
    assert {error["extensions"]["code"] for error in errors} == {"GRAPHQL_VALIDATION_FAILED"}
    assert elapsed < QUICK
    server.record("GRAPHQL_VALIDATION_FAILED, 600 aliases (alias limit)", elapsed)
    assert_still_serving(server)


async def test_alias_bomb_on_the_trackevent_fast_path_is_refused_like_strawberry(server: Server) -> None:
    fields = " ".join(f"a{i}:status" for i in range(3000))  # ~30 KB, 9k tokens
    client_event_id = str(uuid.uuid4())
    payload = {
        "query": f"mutation($i: TrackEventInput!) {{ trackEvent(input: $i) {{ {fields} }} }}",
        "variables": {"i": event(client_event_id)},
    }
    started = time.monotonic()
    async with httpx.AsyncClient(timeout=30) as http:
        response = await http.post(server.graphql, json=payload, headers=auth_headers())
    server.record(
        "refused, trackEvent with 3,000 aliases (too big for the fast path: Strawberry's limits)",
        time.monotonic() - started,
    )
    assert "errors" in response.json(), "answered with data: the alias and token limits were not applied"
    assert await stored(server, [client_event_id]) == 0


def test_token_bomb_and_field_duplication_are_refused_quickly(server: Server) -> None:
    bomb = "{ " + "a " * 30_000 + "}"  # 60 KB: 30,000 tokens, inside the body limit
    # Strawberry alone (a body with `extensions` skips the fast path): parsing stops at the limit
    response, strawberry = timed_post(server, {"query": bomb, "extensions": {"abuse-test": True}})
    (error,) = errors_of(response)
    assert (
        error["extensions"]["code"] == "GRAPHQL_PARSE_FAILED" and f"more than {MAX_TOKENS} tokens" in error["message"]
    )
    assert strawberry < QUICK
    server.record("GRAPHQL_PARSE_FAILED, 30,000-token document (Strawberry's own limit)", strawberry)

    duplicated = "{ " + " ".join(["__typename"] * (MAX_TOKENS - 10)) + " }"  # field duplication within the limit
    response, dup_elapsed = timed_post(server, {"query": duplicated})
    assert {error["extensions"]["code"] for error in errors_of(response)} == {"GRAPHQL_VALIDATION_FAILED"}
    server.record(
        f"GRAPHQL_VALIDATION_FAILED, {MAX_TOKENS - 10} duplicates of one field (validation budget)", dup_elapsed
    )
    assert dup_elapsed < 2 * QUICK

    # the same bomb as a plain JSON body goes through the fast path first
    response, fast = timed_post(server, {"query": bomb})
    (error,) = errors_of(response)
    assert (
        error["extensions"]["code"] == "GRAPHQL_PARSE_FAILED" and f"more than {MAX_TOKENS} tokens" in error["message"]
    )
    server.record("GRAPHQL_PARSE_FAILED, 30,000-token document as plain JSON (fast path first)", fast)
    assert fast < QUICK, f"{fast:.2f} s as plain JSON vs {strawberry:.2f} s with Strawberry alone"
    assert_still_serving(server)


async def test_json_nesting_bomb_in_variables_is_a_400_not_a_500(server: Server) -> None:
    payload = b'{"query": "{ __typename }", "variables": {"a": ' + b"[" * 30_000 + b"]" * 30_000 + b"}}"
    started = time.monotonic()
    async with httpx.AsyncClient(timeout=30) as http:
        response = await http.post(server.graphql, content=payload, headers={"content-type": "application/json"})
    elapsed = time.monotonic() - started
    assert response.status_code == 400, response.text
    (error,) = errors_of(response)
    assert error["extensions"]["code"] == "BAD_REQUEST" and "nested too deeply" in error["message"]
    assert elapsed < QUICK
    server.record("400 BAD_REQUEST, JSON nested 30,000 levels in variables", elapsed)
    await asyncio.to_thread(assert_still_serving, server)


# --- (6) batches over the limit ------------------------------------------------------------------


async def test_batch_over_the_limit_is_refused_whole_and_nothing_is_stored(server: Server) -> None:
    for size in (MAX_BATCH + 1, 600):
        ids = [str(uuid.uuid4()) for _ in range(size)]
        payload = {"query": TRACK_MANY, "variables": {"i": [event(client_event_id) for client_event_id in ids]}}
        started = time.monotonic()
        async with httpx.AsyncClient(timeout=30) as http:
            response = await http.post(server.graphql, json=payload, headers=auth_headers())
        elapsed = time.monotonic() - started
        (error,) = errors_of(response)
        assert error["extensions"]["code"] == "BAD_USER_INPUT", error
        assert f"at most {MAX_BATCH}" in error["message"] and "Nothing was recorded" in error["message"]
        assert response.json()["data"] is None
        assert elapsed < QUICK
        assert await stored(server, ids) == 0
        server.record(f"BAD_USER_INPUT, trackEvents with {size} events (nothing stored)", elapsed)
    await asyncio.to_thread(assert_still_serving, server)


# --- (7) slow clients ------------------------------------------------------------------------------


def trickle(server: Server, socks: list[socket.socket], piece: bytes, until: float) -> None:
    """Send `piece` on every socket every 0.3 s until `until` (monotonic); a normal request
    in between each round must be served."""
    while time.monotonic() < until:
        for sock in socks:
            sock.sendall(piece)
        assert_still_serving(server)
        time.sleep(max(0.0, min(0.3, until - time.monotonic())))


def close_times(socks: list[socket.socket], started: float, limit: float) -> list[tuple[float | None, bytes]]:
    """For each socket: seconds from `started` until the server closed it, and what it sent."""
    results = []
    for sock in socks:
        closed_after, data = wait_closed(sock, max(0.0, started + limit - time.monotonic()))
        results.append((None if closed_after is None else time.monotonic() - started, data))
        sock.close()
    return results


def test_slowloris_headers_are_cut_off_while_others_are_served(server: Server) -> None:
    slow = [connect(server) for _ in range(24)]
    idle = [connect(server) for _ in range(8)]  # connect and never send a byte
    started = time.monotonic()
    for sock in slow:
        sock.sendall(b"POST /graphql HTTP/1.1\r\nHost: x\r\n")
    # one more header line every 0.3 s (each byte resets no deadline), then silence
    trickle(server, slow, b"X-Slow: 1\r\n", until=started + HEADER_TIMEOUT - 0.3)
    results = close_times(slow + idle, started, HEADER_TIMEOUT + LATE)
    times = [closed for closed, _ in results]
    assert all(closed is not None for closed in times), times
    assert min(times) >= HEADER_TIMEOUT - 0.1, times  # type: ignore[type-var]
    for _, data in results[: len(slow)]:
        status, headers, body = parse_response(data)
        assert status == 408 and headers["connection"] == "close"
        error = graphql_error(body)
        assert error["extensions"]["code"] == "REQUEST_TIMEOUT" and "headers" in error["message"]
    assert all(data == b"" for _, data in results[len(slow) :])  # silent connections are just closed
    server.record(f"408 + close, 24 slowloris connections (header deadline {HEADER_TIMEOUT} s), last", max(times))  # type: ignore[type-var]
    assert_still_serving(server)


def test_slow_body_is_cut_off_with_408_while_others_are_served(server: Server) -> None:
    client_event_ids = [str(uuid.uuid4()) for _ in range(8)]
    socks = []
    for client_event_id in client_event_ids:
        body = json.dumps({"query": TRACK, "variables": {"i": event(client_event_id)}}).encode()
        sock = connect(server)
        sock.sendall(request_head(server, length=len(body)) + body[:20])
        socks.append(sock)
    started = time.monotonic()
    trickle(server, socks, b" ", until=started + BODY_TIMEOUT - 0.3)  # JSON whitespace, one byte at a time
    results = close_times(socks, started, BODY_TIMEOUT + LATE)
    times = [closed for closed, _ in results]
    assert all(closed is not None for closed in times), times
    for _, data in results:
        status, headers, body = parse_response(data)
        assert status == 408 and headers["connection"] == "close"
        error = graphql_error(body)
        assert error["extensions"] == {"code": "REQUEST_TIMEOUT", "timeoutSeconds": BODY_TIMEOUT}
    assert asyncio.run(stored(server, client_event_ids)) == 0
    server.record(f"408 REQUEST_TIMEOUT + close, 8 slow bodies (body deadline {BODY_TIMEOUT} s), last", max(times))  # type: ignore[type-var]
    assert_still_serving(server)


def test_oversized_headers_get_431(server: Server) -> None:
    many_headers = b"POST /graphql HTTP/1.1\r\nHost: x\r\n" + b"".join(
        b"X-Pad-%d: %s\r\n" % (i, b"p" * 1000) for i in range(40)
    )
    huge_url = b"GET /graphql?query=" + b"%20" * 20_000
    for what, payload in (("40 KiB of headers", many_headers), ("a 60 KiB URL", huge_url)):
        sock = connect(server)
        started = time.monotonic()
        sock.sendall(payload)  # and never finished: a greedy client would keep going
        closed_after, data = wait_closed(sock, QUICK + 2)
        elapsed = time.monotonic() - started
        sock.close()
        status, _, body = parse_response(data)
        assert status == 431 and closed_after is not None and elapsed < QUICK, (status, elapsed)
        assert graphql_error(body)["extensions"] == {"code": "HEADERS_TOO_LARGE", "maxBytes": MAX_HEADER_BYTES}
        server.record(f"431 HEADERS_TOO_LARGE + close, {what}, unfinished", elapsed)
    assert_still_serving(server)


def test_idle_keep_alive_connection_is_closed(server: Server) -> None:
    sock = connect(server)
    sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
    status, _, _ = parse_response(read_response(sock))
    assert status == 200
    closed_after, data = wait_closed(sock, KEEP_ALIVE + LATE)
    sock.close()
    assert closed_after is not None and closed_after >= KEEP_ALIVE - 0.1 and data == b"", closed_after
    server.record(f"close, idle keep-alive connection (keep-alive {KEEP_ALIVE} s)", closed_after)


# --- (8) connections beyond the limit ----------------------------------------------------------------


def test_connections_beyond_the_limit_get_503_and_memory_stays_flat(server: Server) -> None:
    rss_before = server.rss.now()
    held = [connect(server) for _ in range(400)]  # each holds a partial request of ~12 KiB
    partial = b"POST /graphql HTTP/1.1\r\nHost: x\r\n" + b"".join(
        b"X-Pad-%d: %s\r\n" % (i, b"p" * 1000) for i in range(12)
    )
    try:
        for sock in held:
            sock.sendall(partial)
        started = time.monotonic()
        time.sleep(0.2)  # the server accepts them all
        response, elapsed = timed_post(server, {"query": "{ __typename }"})
        assert response.status_code == 503, response.text
        (error,) = errors_of(response)
        assert error["extensions"]["code"] == "SERVICE_UNAVAILABLE" and "retry" in error["message"]
        assert response.headers["retry-after"] == "1" and response.headers["connection"] == "close"
        assert elapsed < QUICK
        server.record(f"503 SERVICE_UNAVAILABLE past {LIMIT} connections (400 held open)", elapsed)
        results = close_times(held, started, HEADER_TIMEOUT + LATE + 1)
    finally:
        for sock in held:
            sock.close()
    assert all(closed is not None for closed, _ in results)
    server.record("  the 400 held connections cut off (408), last", max(closed for closed, _ in results))  # type: ignore[type-var]
    growth = server.rss.peak - rss_before
    server.notes.append(f"RSS growth while 400 connections held ~4.8 MB of partial headers: {growth / 2**20:.1f} MiB")
    assert_still_serving(server)


# --- memory over all the cases above ------------------------------------------------------------------


def test_peak_rss_stays_bounded(server: Server) -> None:
    peak = server.rss.peak
    print(server.summary())
    assert peak < RSS_BOUND, f"peak RSS {peak / 2**20:.0f} MiB"


def test_distinct_large_trackevent_documents_do_not_pile_up_in_memory(server: Server) -> None:
    before = server.rss.now()
    started = time.monotonic()
    with httpx.Client(timeout=30, headers=auth_headers()) as http:
        for n in range(24):
            fields = " ".join(f"f{n}x{i}:status" for i in range(3000))
            payload = {
                "query": f"mutation($i: TrackEventInput!) {{ trackEvent(input: $i) {{ {fields} }} }}",
                "variables": {"i": event()},
            }
            assert http.post(server.graphql, json=payload).status_code == 200
    growth = server.rss.now() - before
    server.notes.append(
        f"24 distinct trackEvent documents with 3,000 aliases each: RSS +{growth / 2**20:.0f} MiB "
        f"in {time.monotonic() - started:.1f} s "
        f"(after the bounded-RSS check; 256 would hold ~{growth * 256 / 24 / 2**30:.1f} GiB)"
    )
    assert growth < 24 * 2**20, f"RSS grew {growth / 2**20:.0f} MiB"
