"""trackEvent / trackEvents end to end: real HTTP through the ASGI app, a real PostgreSQL,
real JWTs, real Redis for shared limits. Hashes are recomputed here with hmac/hashlib from
the contract (userHash = hex(HMAC-SHA256(salt(UTC day), host \\x1f ip \\x1f normalised UA)),
salt(day) = HMAC-SHA256(secret, YYYY-MM-DD)), never with the app's own functions.

The last test of this module scans every text/json column of the shared database and every
log line the module produced for test IPs, User-Agent strings, subjects and emails.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import hashlib
import hmac
import json
import re
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest
import ua_parser
from sqlalchemy.engine import make_url
from starlette.applications import Starlette

from app.cli.serve import create_app
from app.config import Settings
from app.storage.database import asyncpg_dsn
from app.storage.migrations import migrate
from testkit.http import gql
from testkit.logs import production_log_lines
from testkit.metrics import metric
from testkit.settings import TEST_SALT_SECRET, make_settings
from testkit.tokens import token

HOST = "admin.example.test"
PEER = "203.0.113.7"
CHROME = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36"
)
IPHONE = (
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_1 like Mac OS X) AppleWebKit/605.1.15 "
    "(KHTML, like Gecko) Version/17.1 Mobile/15E148 Safari/604.1"
)
GOOGLEBOT = "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)"
SUBJECT = "member-subject-5x7"
# What must never be stored or logged (checked by the last test of this module).
FORBIDDEN_STRINGS = {PEER, "198.51.100.23", "2001:db8::5", "10.1.2.3", CHROME, IPHONE, GOOGLEBOT, SUBJECT}
EMAIL = re.compile(r"[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}")

TRACK = """mutation($i: TrackEventInput!) {
  trackEvent(input: $i) { status accepted reason message retryable eventId clientEventId }
}"""
TRACK_MANY = """mutation($i: [TrackEventInput!]!) {
  trackEvents(inputs: $i) { status accepted reason message retryable eventId clientEventId }
}"""


# --- helpers ------------------------------------------------------------------------------


@pytest.fixture(scope="module", autouse=True)
def module_log_lines() -> Iterator[list[str]]:
    """Every log line this module's tests produce, rendered exactly as in production (JSON)."""
    with production_log_lines() as lines:
        yield lines


def user_headers(ua: str | None = CHROME, subject: str = SUBJECT, **extra: str) -> dict[str, str]:
    headers = {"authorization": f"Bearer {token(roles=['member'], subject=subject)}", **extra}
    if ua is not None:
        headers["user-agent"] = ua
    return headers


@contextlib.asynccontextmanager
async def serve(settings: Settings, peer: str = PEER) -> AsyncIterator[tuple[Starlette, httpx.AsyncClient]]:
    app = create_app(settings)
    async with app.router.lifespan_context(app), client_for(app, peer) as http:
        yield app, http


def client_for(app: Starlette, peer: str) -> httpx.AsyncClient:
    transport = httpx.ASGITransport(app=app, client=(peer, 51515))
    return httpx.AsyncClient(transport=transport, base_url=f"http://{HOST}")


def event(**fields: Any) -> dict[str, Any]:
    return {"eventType": "click", "appName": "admin-console", "clientEventId": f"t-{uuid.uuid4()}", **fields}


async def track(
    http: httpx.AsyncClient, given: dict[str, Any], headers: dict[str, str] | None = None
) -> dict[str, Any]:
    body = await gql(http, TRACK, {"i": given}, user_headers() if headers is None else headers)
    assert "errors" not in body, body
    return body["data"]["trackEvent"]


async def track_many(
    http: httpx.AsyncClient, inputs: list[dict[str, Any]], headers: dict[str, str] | None = None
) -> dict:
    return await gql(http, TRACK_MANY, {"i": inputs}, user_headers() if headers is None else headers)


async def rows(database_url: str, *client_event_ids: str) -> list[asyncpg.Record]:
    conn = await asyncpg.connect(asyncpg_dsn(database_url))
    try:
        return await conn.fetch(
            "SELECT * FROM events WHERE client_event_id = ANY($1::text[]) ORDER BY created_at", list(client_event_ids)
        )
    finally:
        await conn.close()


def expected_hash(secret: str, day: str, host: str, ip: str, ua: str) -> str:
    """The contract, computed independently: salt(day) then HMAC of host, IP, normalised UA."""
    parsed = ua_parser.parse(ua).with_defaults()
    normalised = f"{parsed.user_agent.family}|{parsed.user_agent.major or ''}|{parsed.os.family}"
    salt = hmac.new(secret.encode(), day.encode(), hashlib.sha256).digest()
    return hmac.new(salt, f"{host}\x1f{ip}\x1f{normalised}".encode(), hashlib.sha256).hexdigest()


def today() -> str:
    return dt.datetime.now(dt.UTC).strftime("%Y-%m-%d")


class Clock:
    def __init__(self, moment: dt.datetime) -> None:
        self.moment = moment

    def __call__(self) -> dt.datetime:
        return self.moment


# --- accepted events and the hash contract --------------------------------------------------


async def test_accepted_event_stores_every_derived_column(settings: Settings, migrated_db: str) -> None:
    settings = settings.model_copy(update={"entity_id_patterns": "order=^[0-9]{1,12}$"})
    moment = dt.datetime(2026, 3, 14, 15, 9, 26, tzinfo=dt.UTC)
    async with serve(settings) as (app, http):
        app.runtime.services.ingest.now = Clock(moment)
        given = event(
            route="/orders/:id", entityType="order", entityId="314159", sessionId="s-9",
            description={"button": "export", "filters": {"status": ["open", "paid"]}, "rows": 25},
        )  # fmt: skip
        result = await track(http, given, user_headers(IPHONE))
    assert result["status"] == "ACCEPTED" and result["accepted"] and not result["retryable"]
    assert result["reason"] is None and result["clientEventId"] == given["clientEventId"]
    [row] = await rows(migrated_db, given["clientEventId"])
    assert str(row["id"]) == result["eventId"]
    assert (row["app_name"], row["event_type"], row["route"]) == ("admin-console", "click", "/orders/:id")
    assert (row["entity_type"], row["entity_id"], row["session_id"]) == ("order", "314159", "s-9")
    assert (row["device_type"], row["browser_family"], row["os_family"]) == ("mobile", "Mobile Safari", "iOS")
    assert json.loads(row["description"]) == given["description"]
    assert row["created_at"] == moment
    assert row["user_hash"] == expected_hash(TEST_SALT_SECRET, "2026-03-14", HOST, PEER, IPHONE)


async def test_server_generates_a_client_event_id_when_absent(client: httpx.AsyncClient, migrated_db: str) -> None:
    result = await track(client, {"eventType": "view", "appName": "billing-admin"})
    assert result["status"] == "ACCEPTED"
    assert uuid.UUID(result["clientEventId"])
    [row] = await rows(migrated_db, result["clientEventId"])
    assert str(row["id"]) == result["eventId"]


async def test_same_inputs_same_day_same_hash_and_other_ip_differs(settings: Settings, migrated_db: str) -> None:
    async with serve(settings) as (app, http):
        first, second = event(), event()
        await track(http, first)
        await track(http, second)
        async with client_for(app, "198.51.100.23") as elsewhere:
            third = event()
            await track(elsewhere, third)
    stored = {
        r["client_event_id"]: r["user_hash"]
        for r in await rows(migrated_db, *(e["clientEventId"] for e in (first, second, third)))
    }
    assert (
        stored[first["clientEventId"]]
        == stored[second["clientEventId"]]
        == expected_hash(TEST_SALT_SECRET, today(), HOST, PEER, CHROME)
    )
    assert stored[third["clientEventId"]] == expected_hash(TEST_SALT_SECRET, today(), HOST, "198.51.100.23", CHROME)
    assert stored[third["clientEventId"]] != stored[first["clientEventId"]]


async def test_hash_changes_across_utc_midnight(settings: Settings, migrated_db: str) -> None:
    clock = Clock(dt.datetime(2026, 6, 30, 23, 59, 59, 900_000, tzinfo=dt.UTC))
    async with serve(settings) as (app, http):
        app.runtime.services.ingest.now = clock
        before = event()
        await track(http, before)
        clock.moment = dt.datetime(2026, 7, 1, 0, 0, 0, 100_000, tzinfo=dt.UTC)
        after = event()
        await track(http, after)
        # a local-time clock is still hashed by its UTC day: 01:30+02:00 is 23:30 UTC the day before
        clock.moment = dt.datetime(2026, 7, 2, 1, 30, tzinfo=dt.timezone(dt.timedelta(hours=2)))
        offset = event()
        await track(http, offset)
    stored = {
        r["client_event_id"]: r["user_hash"]
        for r in await rows(migrated_db, before["clientEventId"], after["clientEventId"], offset["clientEventId"])
    }
    assert stored[before["clientEventId"]] == expected_hash(TEST_SALT_SECRET, "2026-06-30", HOST, PEER, CHROME)
    assert stored[after["clientEventId"]] == expected_hash(TEST_SALT_SECRET, "2026-07-01", HOST, PEER, CHROME)
    assert stored[before["clientEventId"]] != stored[after["clientEventId"]]
    assert stored[offset["clientEventId"]] == stored[after["clientEventId"]]


async def test_a_different_secret_changes_the_hash(migrated_db: str, tmp_path: Path) -> None:
    other_secret = "another-salt-secret-" + "Q7w8E9r0T1y2U3i4" * 3
    ids = []
    for secret in (TEST_SALT_SECRET, other_secret):
        async with serve(make_settings(migrated_db, tmp_path, salt_secret=secret)) as (_, http):
            given = event()
            await track(http, given)
            ids.append(given["clientEventId"])
    by_id = {r["client_event_id"]: r["user_hash"] for r in await rows(migrated_db, *ids)}
    assert by_id[ids[0]] == expected_hash(TEST_SALT_SECRET, today(), HOST, PEER, CHROME)
    assert by_id[ids[1]] == expected_hash(other_secret, today(), HOST, PEER, CHROME)
    assert by_id[ids[0]] != by_id[ids[1]]


async def test_a_reloaded_secret_applies_to_the_next_event(migrated_db: str, tmp_path: Path) -> None:
    """The pipeline reads `salt_secret.current()` per batch: nothing keeps the old secret."""
    secret_file = tmp_path / "salt"
    old, new = "old-salt-secret-" + "a9S8d7F6g5H4j3K2" * 3, "new-salt-secret-" + "Z1x2C3v4B5n6M7q8" * 3
    secret_file.write_text(old)
    settings = make_settings(migrated_db, tmp_path, salt_secret=None, salt_secret_file=secret_file)
    async with serve(settings) as (app, http):
        first = event()
        await track(http, first)
        secret_file.write_text(new)
        assert app.runtime.services.salt_secret.reload() is not None
        second = event()
        await track(http, second)
    by_id = {
        r["client_event_id"]: r["user_hash"]
        for r in await rows(migrated_db, first["clientEventId"], second["clientEventId"])
    }
    assert by_id[first["clientEventId"]] == expected_hash(old, today(), HOST, PEER, CHROME)
    assert by_id[second["clientEventId"]] == expected_hash(new, today(), HOST, PEER, CHROME)


# --- client IP and host from trusted proxies ---------------------------------------------------


@pytest.mark.parametrize(
    ("trusted", "peer", "headers", "hashed_ip", "hashed_host"),
    [
        # a trusted proxy: walk X-Forwarded-For from the right past trusted hops
        (["10.0.0.0/8"], "10.1.2.3", {"x-forwarded-for": "198.51.100.23, 10.9.9.9"}, "198.51.100.23", HOST),
        # an untrusted peer cannot choose its IP or host
        (["10.0.0.0/8"], PEER, {"x-forwarded-for": "198.51.100.23", "x-forwarded-host": "evil.test"}, PEER, HOST),
        # nothing trusted: headers are ignored
        ([], "10.1.2.3", {"x-forwarded-for": "198.51.100.23"}, "10.1.2.3", HOST),
        # a hop count: the client is the 2nd address from the right
        (["2"], "10.1.2.3", {"x-forwarded-for": "6.6.6.6, 198.51.100.23, 10.9.9.9"}, "198.51.100.23", HOST),
        # IPv6 through a trusted v6 proxy, and the host the proxy saw
        (["2001:db8:ffff::/48"], "2001:db8:ffff::1",
         {"x-forwarded-for": "[2001:db8::5]:4711", "x-forwarded-host": "Admin.Example.Test:443"}, "2001:db8::5", HOST),
    ],
)  # fmt: skip
async def test_client_ip_and_host_come_from_trusted_proxies_only(
    settings: Settings,
    migrated_db: str,
    trusted: list[str],
    peer: str,
    headers: dict[str, str],
    hashed_ip: str,
    hashed_host: str,
) -> None:
    async with serve(settings.model_copy(update={"trusted_proxies": trusted}), peer=peer) as (_, http):
        given = event()
        result = await track(http, given, user_headers(**headers))
    assert result["status"] == "ACCEPTED"
    [row] = await rows(migrated_db, given["clientEventId"])
    assert row["user_hash"] == expected_hash(TEST_SALT_SECRET, today(), hashed_host, hashed_ip, CHROME)


@pytest.mark.parametrize(
    ("trusted", "peer", "headers", "missing"),
    [
        # a trusted proxy that appends nothing: its own address would be everybody's
        (["10.0.0.0/8"], "10.1.2.3", {}, "X-Forwarded-For"),
        # a chain of trusted proxies only: the client's address never got in
        (["10.0.0.0/8"], "10.1.2.3", {"x-forwarded-for": "10.7.7.7, 10.9.9.9"}, "X-Forwarded-For"),
        # a hop count the chain does not reach
        (["2"], "10.1.2.3", {"x-forwarded-for": "198.51.100.23"}, "X-Forwarded-For"),
        # the client's address, but the gateway's own HTTP client as the User-Agent
        (["10.0.0.0/8"], "10.1.2.3", {"x-forwarded-for": "198.51.100.23", "user-agent": "node"}, "User-Agent"),
        (["10.0.0.0/8"], "10.1.2.3", {"x-forwarded-for": "198.51.100.23", "user-agent": "undici/6.21.1"}, "User-Agent"),
        (["10.0.0.0/8"], "10.1.2.3", {"x-forwarded-for": "198.51.100.23", "user-agent": "Go-http-client/1.1"},
         "User-Agent"),
        (["10.0.0.0/8"], "10.1.2.3", {"x-forwarded-for": "198.51.100.23", "user-agent": ""}, "User-Agent"),
    ],
)  # fmt: skip
async def test_a_trusted_proxy_that_does_not_forward_the_client_is_dropped_not_counted_as_one_person(
    settings: Settings, migrated_db: str, trusted: list[str], peer: str, headers: dict[str, str], missing: str
) -> None:
    given = [event(), event()]
    request_headers = {**user_headers(), **headers}
    with production_log_lines() as lines:
        async with serve(settings.model_copy(update={"trusted_proxies": trusted}), peer=peer) as (_, http):
            results = [await track(http, one, request_headers) for one in given]
    for result in results:
        assert result["status"] == "DROPPED" and result["reason"] == "NO_CLIENT_IDENTITY", result
        assert missing in result["message"] and result["retryable"] is False
    assert await rows(migrated_db, *(one["clientEventId"] for one in given)) == []
    warnings = [json.loads(line) for line in lines if "client identity not forwarded" in line]
    assert [(w["level"], w["header"]) for w in warnings] == [("warning", missing)]  # once, not per request
    assert peer not in "".join(lines) and "198.51.100.23" not in "".join(lines)


async def test_a_direct_caller_is_never_judged_as_a_proxy(settings: Settings, migrated_db: str) -> None:
    """From a peer outside SIGNALS_TRUSTED_PROXIES the peer is the client: no forwarded headers needed."""
    async with serve(settings.model_copy(update={"trusted_proxies": ["10.0.0.0/8"]}), peer=PEER) as (_, http):
        given = event()
        result = await track(http, given)
    assert result["status"] == "ACCEPTED", result
    [row] = await rows(migrated_db, given["clientEventId"])
    assert row["user_hash"] == expected_hash(TEST_SALT_SECRET, today(), HOST, PEER, CHROME)


# --- every drop reason, through HTTP, with nothing stored ------------------------------------


DROPS = [
    ("BOT", {}, event(), user_headers(GOOGLEBOT)),
    ("BOT", {}, event(), user_headers("curl/8.4.0")),
    ("BOT", {}, event(), user_headers(None)),
    ("UNKNOWN_EVENT_TYPE", {}, event(eventType="purchase"), None),
    ("UNKNOWN_APP", {}, event(appName="jane.doe@example.com"), None),
    ("UNKNOWN_ENTITY_TYPE", {}, event(entityType="warehouse", entityId="7"), None),
    (
        "INVALID_ENTITY",
        {"entity_id_patterns": "order=^[0-9]{1,12}$,customer=uuid"},
        event(entityType="order", entityId="12a"),
        None,
    ),
    (
        "INVALID_ENTITY",
        {"entity_id_patterns": "order=^[0-9]{1,12}$,customer=uuid"},
        event(entityType="customer", entityId="42"),
        None,
    ),
    ("INVALID_ENTITY", {}, event(entityId="314"), None),
    ("INVALID_INPUT", {"allowed_apps": []}, event(appName="admin console!"), None),
    ("INVALID_INPUT", {}, event(clientEventId="has spaces"), None),
    ("INVALID_INPUT", {}, event(sessionId="x" * 200), None),
    ("INVALID_INPUT", {}, event(route="/customers/jane.doe@example.com"), None),
    ("INVALID_INPUT", {}, event(route="/a\nb"), None),
    ("INVALID_INPUT", {}, event(route="/orders?status=open&token=abc"), None),
    ("INVALID_INPUT", {}, event(description=["not", "an", "object"]), None),
    ("INVALID_INPUT", {}, event(description={"note": "write to jane.doe@example.com"}), None),
    ("INVALID_INPUT", {}, event(description={"bad": "nul\u0000byte"}), None),
    ("DESCRIPTION_TOO_LARGE", {}, event(description={"text": "x" * 2040}), None),
    ("DESCRIPTION_TOO_LARGE", {}, event(description={"text": "é" * 1100}), None),  # 1,100 chars, 2,200 bytes
    ("PII_KEY", {}, event(description={"email": "someone"}), None),
    ("PII_KEY", {}, event(description={"filters": [{"status": "open"}, {"customer": {"First-Name": "x"}}]}), None),
    ("PII_KEY", {}, event(description={"User_ID": 7}), None),
    ("PII_KEY", {}, event(description={"clientIp": "x"}), None),
    ("PII_KEY", {}, event(description={"billingAddress": "x"}), None),
]


@pytest.mark.parametrize(
    ("reason", "overrides", "given", "headers"), DROPS, ids=[f"{d[0]}-{i}" for i, d in enumerate(DROPS)]
)
async def test_drop_reason_is_reported_and_nothing_is_stored(
    settings: Settings, migrated_db: str, reason: str, overrides: dict, given: dict, headers: dict | None
) -> None:
    async with serve(settings.model_copy(update=overrides) if overrides else settings) as (_, http):
        result = await track(http, given, headers)
    assert result["status"] == "DROPPED" and result["accepted"] is False, result
    assert result["reason"] == reason and result["message"]
    assert result["retryable"] is False and result["eventId"] is None
    assert result["clientEventId"] == given["clientEventId"]
    assert await rows(migrated_db, given["clientEventId"]) == []


async def test_a_description_of_exactly_2_kib_is_accepted(client: httpx.AsyncClient) -> None:
    text = "x" * (2048 - len('{"text":""}'))
    result = await track(client, event(description={"text": text}))
    assert result["status"] == "ACCEPTED"


async def test_rate_limited_per_caller_and_retryable(settings: Settings, migrated_db: str) -> None:
    async with serve(settings.model_copy(update={"rate_limit": "3/minute"})) as (_, http):
        results = [await track(http, event()) for _ in range(4)]
        other_caller = await track(http, event(), user_headers(subject="someone-else"))
        batch = await track_many(http, [event() for _ in range(3)], user_headers(subject="batcher"))
        batch_over = await track_many(http, over := [event() for _ in range(2)], user_headers(subject="batcher"))
    assert [r["status"] for r in results] == ["ACCEPTED"] * 3 + ["DROPPED"]
    limited = results[3]
    assert limited["reason"] == "RATE_LIMITED" and limited["retryable"] is True and "3/minute" in limited["message"]
    assert await rows(migrated_db, limited["clientEventId"]) == []
    assert other_caller["status"] == "ACCEPTED"
    assert [r["status"] for r in batch["data"]["trackEvents"]] == ["ACCEPTED"] * 3
    assert [r["reason"] for r in batch_over["data"]["trackEvents"]] == ["RATE_LIMITED"] * 2
    assert await rows(migrated_db, *(e["clientEventId"] for e in over)) == []


async def test_a_batch_over_the_limit_keeps_the_first_ones(settings: Settings) -> None:
    async with serve(settings.model_copy(update={"rate_limit": "5/minute"})) as (_, http):
        body = await track_many(http, [event() for _ in range(8)])
    assert [r["status"] for r in body["data"]["trackEvents"]] == ["ACCEPTED"] * 5 + ["DROPPED"] * 3


async def test_rate_limits_are_shared_through_redis(settings: Settings) -> None:
    redis = pytest.importorskip("redis")
    client = redis.Redis.from_url("redis://127.0.0.1:6379/0")
    try:
        client.ping()
    except redis.RedisError:
        pytest.skip("no Redis at 127.0.0.1:6379 (CI starts one)")
    subject = f"redis-user-{uuid.uuid4()}"
    shared = settings.model_copy(update={"rate_limit": "3/minute", "redis_url": "redis://127.0.0.1:6379/0"})
    async with serve(shared) as (_, replica_a), serve(shared) as (_, replica_b):
        statuses = [
            (await track(replica, event(), user_headers(subject=subject)))["status"]
            for replica in (replica_a, replica_b, replica_a, replica_b)
        ]
    assert statuses == ["ACCEPTED", "ACCEPTED", "ACCEPTED", "DROPPED"]
    keys = [key.decode() for key in client.scan_iter("*signals*")]
    assert keys and not any(subject in key for key in keys)  # keyed on Principal.key, never the subject


async def test_unauthenticated_callers_get_an_error_and_nothing_is_stored(
    client: httpx.AsyncClient, migrated_db: str
) -> None:
    given = event()
    body = await gql(client, TRACK, {"i": given}, {"user-agent": CHROME})
    assert body["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"
    bad = await gql(client, TRACK, {"i": given}, {"user-agent": CHROME, "authorization": "Bearer not.a.jwt"})
    assert bad["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"
    assert await rows(migrated_db, given["clientEventId"]) == []


# --- idempotency, concurrency and batches ---------------------------------------------------------


async def test_200_concurrent_events_give_200_rows_and_a_replay_names_the_originals(
    settings: Settings, migrated_db: str
) -> None:
    events = [event() for _ in range(200)]
    ids = [e["clientEventId"] for e in events]
    async with serve(settings) as (_, http):
        before = metric((await http.get("/metrics")).text, "signals_write_batch_size_count")
        first = await asyncio.gather(*(track(http, e) for e in events))
        batches = metric((await http.get("/metrics")).text, "signals_write_batch_size_count") - before
        replay = await asyncio.gather(*(track(http, e) for e in events))
    assert [r["status"] for r in first] == ["ACCEPTED"] * 200
    assert batches < 200  # group commit: concurrent requests shared INSERT round trips
    stored = {r["client_event_id"]: str(r["id"]) for r in await rows(migrated_db, *ids)}
    assert len(stored) == 200
    assert [r["status"] for r in replay] == ["DUPLICATE"] * 200
    assert all(r["accepted"] and not r["retryable"] for r in replay)
    assert [r["eventId"] for r in replay] == [r["eventId"] for r in first] == [stored[i] for i in ids]


async def test_the_same_client_event_id_at_once_is_stored_once(client: httpx.AsyncClient, migrated_db: str) -> None:
    given = event()
    results = await asyncio.gather(*(track(client, given) for _ in range(20)))
    [row] = await rows(migrated_db, given["clientEventId"])
    assert sorted(r["status"] for r in results) == ["ACCEPTED"] + ["DUPLICATE"] * 19
    assert {r["eventId"] for r in results} == {str(row["id"])}


async def test_batch_results_follow_input_order(client: httpx.AsyncClient, migrated_db: str) -> None:
    known = event()
    await track(client, known)
    fresh, repeated = event(), event()
    inputs = [fresh, event(eventType="nope"), known, repeated, dict(repeated), event(description={"password": "x"})]
    body = await track_many(client, inputs)
    results = body["data"]["trackEvents"]
    assert [r["clientEventId"] for r in results] == [i["clientEventId"] for i in inputs]
    assert [r["status"] for r in results] == ["ACCEPTED", "DROPPED", "DUPLICATE", "ACCEPTED", "DUPLICATE", "DROPPED"]
    assert [r["reason"] for r in results] == [None, "UNKNOWN_EVENT_TYPE", None, None, None, "PII_KEY"]
    assert results[3]["eventId"] == results[4]["eventId"]
    assert len(await rows(migrated_db, *(i["clientEventId"] for i in inputs))) == 3


async def test_a_batch_over_100_is_a_bad_user_input_error_and_stores_nothing(
    client: httpx.AsyncClient, migrated_db: str
) -> None:
    inputs = [event() for _ in range(101)]
    body = await track_many(client, inputs)
    assert body["data"] is None
    assert body["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"
    assert "at most 100" in body["errors"][0]["message"]
    assert await rows(migrated_db, *(i["clientEventId"] for i in inputs)) == []
    full = await track_many(client, [event() for _ in range(100)])
    assert [r["status"] for r in full["data"]["trackEvents"]] == ["ACCEPTED"] * 100


# --- the database failing: UNAVAILABLE, retryable, no hang, nothing stored ------------------------


@pytest.fixture
async def own_db(empty_db: str) -> str:
    await migrate(empty_db)
    return empty_db


async def admin_execute(database_url: str, *statements: str) -> None:
    conn = await asyncpg.connect(asyncpg_dsn(database_url))
    try:
        for statement in statements:
            await conn.execute(statement)
    finally:
        await conn.close()


async def test_database_down_answers_unavailable_then_recovers(own_db: str, pg_server: str, tmp_path: Path) -> None:
    name = make_url(own_db).database
    settings = make_settings(own_db, tmp_path, write_timeout=2.0, db_connect_timeout=1.0)
    async with serve(settings) as (_, http):
        assert (await track(http, event()))["status"] == "ACCEPTED"
        await admin_execute(
            pg_server,
            f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS false',
            f"SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            f"WHERE datname = '{name}' AND pid <> pg_backend_pid()",
        )
        try:
            down = [event() for _ in range(3)]
            started = time.monotonic()
            single = await track(http, down[0])
            batch = (await track_many(http, down[1:]))["data"]["trackEvents"]
            elapsed = time.monotonic() - started
        finally:
            await admin_execute(pg_server, f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS true')
        assert elapsed < 2 * settings.write_timeout + 1
        for result in (single, *batch):
            assert (result["status"], result["reason"], result["retryable"], result["accepted"]) == (
                "DROPPED",
                "UNAVAILABLE",
                True,
                False,
            )
            assert "retry" in result["message"]
        assert await rows(own_db, *(e["clientEventId"] for e in down)) == []
        retried = [await track(http, e) for e in down]  # the writer reconnects
    assert [r["status"] for r in retried] == ["ACCEPTED"] * 3
    assert len(await rows(own_db, *(e["clientEventId"] for e in down))) == 3


async def test_a_stuck_database_answers_within_the_write_timeout(own_db: str, tmp_path: Path) -> None:
    """A write that is not confirmed in time is UNAVAILABLE; retrying with the same
    clientEventId is safe: if the write landed after all, the answer is DUPLICATE."""
    settings = make_settings(own_db, tmp_path, write_timeout=0.5)
    locker = await asyncpg.connect(asyncpg_dsn(own_db))
    try:
        async with serve(settings) as (_, http):
            await track(http, event())  # connect the writer first
            given = event()
            transaction = locker.transaction()
            await transaction.start()
            await locker.execute("LOCK TABLE events IN ACCESS EXCLUSIVE MODE")
            started = time.monotonic()
            result = await track(http, given)
            elapsed = time.monotonic() - started
            await transaction.rollback()
            assert result["reason"] == "UNAVAILABLE" and result["retryable"] is True
            assert elapsed < settings.write_timeout + 2  # bounded: not the lock's duration
            retry = await track(http, given)
    finally:
        await locker.close()
    [row] = await rows(own_db, given["clientEventId"])
    assert retry["status"] in ("ACCEPTED", "DUPLICATE") and retry["eventId"] == str(row["id"])


async def test_shutdown_writes_everything_it_acknowledged(settings: Settings, migrated_db: str) -> None:
    """Requests queued before shutdown are written; those arriving during it are told to
    retry. Either way: acknowledged means stored, and nothing hangs."""
    early, late = [event() for _ in range(30)], [event() for _ in range(30)]
    app = create_app(settings)
    lifespan = app.router.lifespan_context(app)
    await lifespan.__aenter__()
    http = client_for(app, PEER)
    tasks = [asyncio.create_task(track(http, e)) for e in early]
    stopping = asyncio.create_task(lifespan.__aexit__(None, None, None))
    tasks += [asyncio.create_task(track(http, e)) for e in late]
    results = await asyncio.wait_for(asyncio.gather(*tasks), timeout=30)
    await stopping
    await http.aclose()
    stored = {r["client_event_id"] for r in await rows(migrated_db, *(e["clientEventId"] for e in early + late))}
    for given, result in zip(early + late, results, strict=True):
        if result["accepted"]:
            assert given["clientEventId"] in stored
        else:
            assert (result["reason"], result["retryable"]) == ("UNAVAILABLE", True)
            assert given["clientEventId"] not in stored
    assert stored, "what was queued before shutdown was written"


# --- counters and drop log lines ------------------------------------------------------------------


async def test_counters_per_event_and_one_log_line_of_counts_per_request(
    client: httpx.AsyncClient, module_log_lines: list[str]
) -> None:
    metrics_before = (await client.get("/metrics")).text
    lines_before = len(module_log_lines)
    await track(client, event())
    await track(client, event(), user_headers(GOOGLEBOT))
    await track(client, event(eventType="purchase"))
    metrics_after = (await client.get("/metrics")).text
    for name, labels in [
        ("signals_events_accepted_total", {"app": "admin-console"}),
        ("signals_events_dropped_total", {"reason": "BOT"}),
        ("signals_events_dropped_total", {"reason": "UNKNOWN_EVENT_TYPE"}),
    ]:
        assert metric(metrics_after, name, **labels) == metric(metrics_before, name, **labels) + 1, name
    drops = [json.loads(line) for line in module_log_lines[lines_before:] if '"events dropped"' in line]
    assert [(d["dropped"], d["reasons"], d["apps"], d["event_types"]) for d in drops] == [
        (1, {"BOT": 1}, ["admin-console"], ["click"]),
        (1, {"UNKNOWN_EVENT_TYPE": 1}, ["admin-console"], ["<unlisted>"]),
    ]


# --- the fast path answers exactly as Strawberry would --------------------------------------------


def graphql_app(app: Starlette) -> Any:
    return next(route.app for route in app.routes if getattr(route, "path", None) == "/graphql")


def comparable(body: dict) -> dict:
    """A response without what differs between two runs (ids; the stored id)."""
    text = json.dumps(body, sort_keys=True)
    text = re.sub(r'"(eventId|clientEventId)": "[^"]*"', r'"\1": "<id>"', text)
    return json.loads(text)


FAST_DOCUMENTS = [
    (TRACK, lambda: {"i": event()}),
    (TRACK, lambda: {"i": event(eventType="purchase")}),
    (TRACK, lambda: {"i": event(description={"email": "x"})}),
    (
        TRACK,
        lambda: {
            "i": event(
                entityType="order", entityId="1", sessionId="s", route="/o/:id", description={"a": [1, {"b": None}]}
            )
        },
    ),
    (
        "mutation Named($e: TrackEventInput!) { t: trackEvent(input: $e) { __typename s: status reason status } }",
        lambda: {"e": event()},
    ),
    (TRACK_MANY, lambda: {"i": [event(), event(appName="nope"), event(description={"x": "y" * 3000})]}),
]
SLOW_DOCUMENTS = [
    (TRACK, lambda: {"i": {"appName": "admin-console"}}),  # invalid variables: Strawberry's error
    (TRACK, lambda: {"i": event(eventType=7)}),
    ('mutation { trackEvent(input: {eventType: "click", appName: "admin-console"}) { status } }', dict),
    (
        "mutation($i: TrackEventInput!) { trackEvent(input: $i) { ...R } } fragment R on TrackEventResult { status }",
        lambda: {"i": event()},
    ),
    ("mutation($i: TrackEventInput!) { trackEvent(input: $i) { status @include(if: true) } }", lambda: {"i": event()}),
    (
        "mutation($i: TrackEventInput!) { trackEvent(input: $i) { status } trackEvents(inputs: [$i]) { status } }",
        lambda: {"i": event()},
    ),
    ("mutation($i: TrackEventInput!) { trackEvent(input: $i) { nope } }", lambda: {"i": event()}),
    (TRACK_MANY, lambda: {"i": [event() for _ in range(101)]}),
]


@pytest.mark.parametrize(("query", "variables"), FAST_DOCUMENTS + SLOW_DOCUMENTS)
async def test_fast_path_and_strawberry_answer_alike(settings: Settings, query: str, variables: Any) -> None:
    answers, answered = [], []
    for fast in (True, False):
        async with serve(settings.model_copy(update={"fast_track": fast})) as (app, http):
            response = await http.post(
                "/graphql", json={"query": query, "variables": variables()}, headers=user_headers()
            )
            answers.append((response.status_code, comparable(response.json())))
            answered.append(graphql_app(app).answered)
    assert answers[0] == answers[1]
    assert answered == ([1, 0] if (query, variables) in FAST_DOCUMENTS else [0, 0])


async def test_fast_path_leaves_gateway_and_unauthenticated_requests_to_strawberry(
    client: httpx.AsyncClient, migrated_db: str
) -> None:
    given = event()
    forwarded = await client.post(
        "/graphql",
        json={"query": TRACK, "variables": {"i": given}, "extensions": {"jwt": {"payload": {"sub": "x"}}}},
        headers=user_headers(),
    )
    assert forwarded.json()["data"]["trackEvent"]["status"] == "ACCEPTED"  # Strawberry, bearer token
    anonymous = await gql(client, TRACK, {"i": event()}, {"user-agent": CHROME})
    assert anonymous["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"
    assert graphql_app(client._transport.app).answered == 0  # type: ignore[attr-defined]
    assert len(await rows(migrated_db, given["clientEventId"])) == 1


# --- runs last: nothing personal anywhere ----------------------------------------------------------


async def test_zz_no_ip_ua_subject_or_email_in_any_column_or_log_line(
    migrated_db: str, module_log_lines: list[str]
) -> None:
    conn = await asyncpg.connect(asyncpg_dsn(migrated_db))
    try:
        columns = await conn.fetch(
            """SELECT table_name, column_name FROM information_schema.columns
               WHERE table_schema = 'public'
                 AND data_type IN ('text', 'character varying', 'character', 'json', 'jsonb')"""
        )
        values: list[str] = []
        for column in columns:
            query = f'SELECT "{column["column_name"]}"::text AS v FROM "{column["table_name"]}"'
            values.extend(r["v"] for r in await conn.fetch(query) if r["v"] is not None)
        event_count = await conn.fetchval("SELECT count(*) FROM events")
    finally:
        await conn.close()
    assert event_count > 0 and values, "the scan must see what this module stored"
    assert any('"events dropped"' in line for line in module_log_lines), "the scan must see the drop log lines"
    for where, texts in (("database", values), ("logs", module_log_lines)):
        for text in texts:
            assert not any(secret in text for secret in FORBIDDEN_STRINGS), f"{where}: {text[:200]}"
            assert not EMAIL.search(text), f"{where}: {text[:200]}"
