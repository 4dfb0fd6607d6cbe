"""The ingest pipeline's parts on their own: client IP resolution, validation, User-Agent
classification, the rate limiter and the group-commit writer (on a real PostgreSQL)."""

from __future__ import annotations

import asyncio
import datetime as dt
import uuid

import asyncpg
import pytest
import user_agents

from app.config import ConfigError, load_settings
from app.ingest.client_ip import ClientIpResolver, normalise_host, parse_ip
from app.ingest.ratelimit import RateLimiter
from app.ingest.useragents import UserAgentInspector, device_type
from app.ingest.validation import EventValidator, check_description, parse_entity_id_patterns
from app.ingest.writer import EventRow, GroupCommitWriter, Stored, WriteUnavailable
from app.storage.database import asyncpg_dsn
from bench.faultproxy import FaultProxy
from tests.conftest import make_settings, production_log_lines

# --- client IP ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("trusted", "peer", "forwarded", "client"),
    [
        ([], "203.0.113.7", ["198.51.100.1"], "203.0.113.7"),
        (["10.0.0.0/8"], "10.0.0.1", ["198.51.100.1"], "198.51.100.1"),
        (["10.0.0.0/8"], "10.0.0.1", ["198.51.100.1, 10.0.0.2, 10.0.0.3"], "198.51.100.1"),
        (["10.0.0.0/8"], "10.0.0.1", ["6.6.6.6, 198.51.100.1", "10.0.0.3"], "198.51.100.1"),  # repeated header
        (["10.0.0.0/8"], "10.0.0.1", ["10.0.0.9, 10.0.0.3"], "10.0.0.9"),  # all trusted: the left-most
        (["10.0.0.0/8"], "10.0.0.1", ["garbage, 10.0.0.3"], "10.0.0.3"),  # stop at garbage
        (["10.0.0.0/8"], "10.0.0.1", [], "10.0.0.1"),
        (["10.0.0.0/8"], "192.0.2.1", ["198.51.100.1"], "192.0.2.1"),  # untrusted peer
        (["1"], "192.0.2.1", ["6.6.6.6, 198.51.100.1"], "198.51.100.1"),
        (["2"], "192.0.2.1", ["6.6.6.6, 198.51.100.1, 10.0.0.3"], "198.51.100.1"),
        (["3"], "192.0.2.1", ["198.51.100.1, 10.0.0.3"], "192.0.2.1"),  # fewer hops than configured
        (["1", "10.0.0.0/8"], "192.0.2.1", ["198.51.100.1"], "192.0.2.1"),  # hops, but only from these
        (["::1/128"], "::1", ["[2001:db8::7]:443"], "2001:db8::7"),
        (["10.0.0.0/8"], "::ffff:10.0.0.1", ["198.51.100.1:5555"], "198.51.100.1"),  # v4-mapped peer
        ([], "2001:DB8:0:0:0:0:0:7", [], "2001:db8::7"),  # normalised
        ([], None, ["198.51.100.1"], ""),
    ],
)
def test_client_ip(trusted: list[str], peer: str | None, forwarded: list[str], client: str) -> None:
    assert ClientIpResolver(trusted).client_ip(peer, forwarded) == client


def test_host_header_and_forwarded_host() -> None:
    resolver = ClientIpResolver(["10.0.0.0/8"])
    assert resolver.host("192.0.2.1", "Admin.Example.Test:8443", ["evil.test"]) == "admin.example.test"
    assert resolver.host("10.0.0.1", "internal:8080", ["spoof.test, Admin.Example.Test"]) == "admin.example.test"
    assert normalise_host("[2001:db8::1]:443") == "[2001:db8::1]"
    assert parse_ip("not an ip") is None


# --- validation -----------------------------------------------------------------------------


def test_entity_id_patterns_allow_commas_inside_regexes_and_aliases() -> None:
    patterns = parse_entity_id_patterns("order=^[0-9]{1,12}$, customer=uuid,sku=slug")
    assert set(patterns) == {"order", "customer", "sku"}
    assert patterns["order"].fullmatch("123456789012") and not patterns["order"].fullmatch("1234567890123")
    assert patterns["customer"].fullmatch(str(uuid.uuid4())) and not patterns["customer"].fullmatch("42")
    assert patterns["sku"].fullmatch("red-shoe-42") and not patterns["sku"].fullmatch("Red Shoe")


@pytest.mark.parametrize("value", ["order", "order=([0-9]", "=x", "bad name=x"])
def test_bad_entity_id_patterns_are_a_configuration_error(value: str) -> None:
    with pytest.raises(ConfigError, match="SIGNALS_ENTITY_ID_PATTERNS"):
        load_settings(entity_id_patterns=value)


def test_entity_ids_without_a_configured_pattern_use_the_default_format() -> None:
    validator = EventValidator(load_settings(allowed_entity_types=[]))
    assert validator.entity("invoice", "INV-2026.001") is None
    assert validator.entity("invoice", "has space").reason == "INVALID_ENTITY"  # type: ignore[union-attr]
    assert validator.entity("invoice", "x" * 129).reason == "INVALID_ENTITY"  # type: ignore[union-attr]
    assert validator.entity("invoice", None) is None


@pytest.mark.parametrize(
    "key",
    ["email", "E-Mail", "eMail", "mail", "customerEmail", "name", "Name", "first_name", "lastName", "Full Name",
     "firstname", "surname", "phone", "phoneNumber", "mobile", "user id", "userid", "user_id", "userId", "token",
     "accessToken", "password", "passwd", "secret", "ip", "IP", "ip_address", "clientIP", "address", "street",
     "ssn", "dob", "birth_date", "dateOfBirth", "birthday"],
)  # fmt: skip
def test_pii_shaped_keys_are_refused_at_any_depth(key: str) -> None:
    for description in ({key: 1}, {"a": {"b": [{"c": {key: 1}}]}}):
        stored, problem = check_description(description)
        assert stored is None and problem is not None and problem.reason == "PII_KEY", (key, description)


@pytest.mark.parametrize(
    "key",
    ["button", "fileName", "rows", "zip_export", "tooltip", "description", "recipientCount", "filter", "tab", "ship"],
)
def test_ordinary_keys_pass(key: str) -> None:
    stored, problem = check_description({key: "value"})
    assert problem is None and stored == f'{{"{key}":"value"}}'


def test_description_size_counts_utf8_bytes_of_the_compact_form() -> None:
    padding = len('{"t":""}')
    assert check_description({"t": "é" * ((2048 - padding) // 2)})[1] is None
    assert check_description({"t": "é" * ((2048 - padding) // 2 + 1)})[1].reason == "DESCRIPTION_TOO_LARGE"  # type: ignore[union-attr]
    assert check_description({"t": "x " * 10})[0] == '{"t":"' + "x " * 10 + '"}'  # spaces in values kept


def test_description_rejects_non_json_and_deep_nesting() -> None:
    assert check_description({"n": float("nan")})[1].reason == "INVALID_INPUT"  # type: ignore[union-attr]
    assert check_description({"s": "\ud800"})[1].reason == "INVALID_INPUT"  # type: ignore[union-attr]
    deep: dict = {}
    node = deep
    for _ in range(20):
        node["d"] = {}
        node = node["d"]
    assert check_description(deep)[1].reason == "INVALID_INPUT"  # type: ignore[union-attr]


# --- User-Agent -------------------------------------------------------------------------------

AGENTS = [
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.1 Mobile/15E148 Safari/604.1",
    "Mozilla/5.0 (iPad; CPU OS 16_6 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/16.6 Mobile/15E148 Safari/604.1",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.0 Safari/605.1.15",
    "Mozilla/5.0 (X11; Linux x86_64; rv:121.0) Gecko/20100101 Firefox/121.0",
    "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.6099.43 Mobile Safari/537.36",
    "Mozilla/5.0 (Linux; Android 13; SM-X700) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36",
    "Mozilla/5.0 (X11; CrOS x86_64 14541.0.0) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36",
    "Mozilla/5.0 (Android 14; Mobile; rv:121.0) Gecko/121.0 Firefox/121.0",
    "Mozilla/5.0 (Windows Phone 10.0; Android 6.0.1; Microsoft; Lumia 950) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/52.0.2743.116 Mobile Safari/537.36 Edge/15.15063",
    "Mozilla/5.0 (Linux; U; Android 4.0.3; en-us; KFTT Build/IML74K) AppleWebKit/534.30 (KHTML, like Gecko) Version/4.0 Safari/534.30 Silk/3.68",
    "Mozilla/5.0 (PlayStation; PlayStation 5/2.26) AppleWebKit/605.1.15 (KHTML, like Gecko)",
]  # fmt: skip


@pytest.mark.parametrize("ua", AGENTS)
def test_device_type_matches_user_agents_own_parse(ua: str) -> None:
    """Feeding user-agents the ua-parser-rs result gives the same device class as letting
    it parse the string itself on ua-parser's slow legacy path."""
    assert UserAgentInspector(8).parse(ua).device_type == device_type(user_agents.parse(ua))


def test_classification_and_bots() -> None:
    inspector = UserAgentInspector(cache_size=4)
    iphone, ipad, windows = (inspector.parse(ua) for ua in AGENTS[:3])
    assert (iphone.device_type, ipad.device_type, windows.device_type) == ("mobile", "tablet", "desktop")
    assert windows.normalised == "Chrome|120|Windows"
    for bot in ("Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)", "curl/8.4.0",
                "python-requests/2.31", "", None, "   "):  # fmt: skip
        assert inspector.is_bot(bot), bot
    assert not any(inspector.is_bot(ua) for ua in AGENTS)


def test_caches_are_bounded() -> None:
    inspector = UserAgentInspector(cache_size=16)
    for n in range(100):
        inspector.parse(f"{AGENTS[2]} build/{n}")
        inspector.is_bot(f"{AGENTS[2]} build/{n}")
    info = inspector.cache_info()
    assert info["parse"].currsize == 16 and info["is_bot"].currsize == 16  # type: ignore[attr-defined]


# --- rate limiter -------------------------------------------------------------------------------


async def test_rate_limiter_grants_the_first_of_a_batch() -> None:
    limiter = RateLimiter("5/minute;7/hour", None)
    assert await limiter.allow("k", 3) == 3
    assert await limiter.allow("k", 4) == 2  # 5/minute leaves two
    assert await limiter.allow("k", 1) == 0
    assert await limiter.allow("other", 1) == 1


async def test_rate_limiter_fails_open_when_redis_is_unreachable_and_says_so_once() -> None:
    limiter = RateLimiter("1/minute", "redis://127.0.0.1:1/0")  # nothing listens on port 1
    with production_log_lines() as lines:
        for _ in range(3):
            assert await limiter.allow("k", 3) == 3
    assert sum("rate limit store unavailable" in line for line in lines) == 1, lines


async def test_rate_limits_apply_again_when_redis_comes_back() -> None:
    """The machine's Redis behind the fault proxy: cut, the limiter lets events through
    (one warning); restored, the limit applies again (one line saying so)."""
    redis = pytest.importorskip("redis")
    try:
        redis.Redis.from_url("redis://127.0.0.1:6379/0", socket_timeout=1).ping()
    except redis.RedisError:
        pytest.skip("no Redis at 127.0.0.1:6379")
    key = f"comeback-{uuid.uuid4()}"
    with FaultProxy("redis://127.0.0.1:6379/0") as proxy, production_log_lines() as lines:
        limiter = RateLimiter("2/minute", proxy.url)
        assert await limiter.allow(key, 1) == 1
        proxy.cut()
        assert [await limiter.allow(key, 1) for _ in range(3)] == [1, 1, 1]  # fail open
        proxy.restore()
        granted = [await limiter.allow(key, 1) for _ in range(3)]
    assert granted == [1, 0, 0], granted  # 2/minute: one left from before the outage
    assert sum("rate limit store unavailable" in line for line in lines) == 1, lines
    assert sum("rate limit store available again" in line for line in lines) == 1, lines


# --- group-commit writer (real PostgreSQL) -----------------------------------------------------------


def row(client_event_id: str, app_name: str = "admin-console") -> EventRow:
    return EventRow(
        created_at=dt.datetime.now(dt.UTC), app_name=app_name, event_type="click", route=None, entity_type=None,
        entity_id=None, user_hash="0" * 64, session_id=None, device_type="desktop", browser_family="Chrome",
        os_family="Windows", client_event_id=client_event_id, description='{"a":1}',
    )  # fmt: skip


async def test_one_bad_row_does_not_sink_its_batch(migrated_db: str, tmp_path) -> None:
    writer = GroupCommitWriter(asyncpg_dsn(migrated_db), make_settings(migrated_db, tmp_path))
    writer.start()
    try:
        ids = [f"w-{uuid.uuid4()}" for _ in range(3)]
        batch = [row(ids[0]), row(ids[1], app_name="x" * 65), row(ids[2])]  # too long for varchar(64)
        good_first, bad, good_last = await writer.write(batch)
    finally:
        await writer.stop()
    assert isinstance(good_first, Stored) and good_first.inserted
    assert isinstance(bad, WriteUnavailable)
    assert isinstance(good_last, Stored) and good_last.inserted
    conn = await asyncpg.connect(asyncpg_dsn(migrated_db))
    try:
        stored = await conn.fetch("SELECT client_event_id FROM events WHERE client_event_id = ANY($1::text[])", ids)
    finally:
        await conn.close()
    assert {r["client_event_id"] for r in stored} == {ids[0], ids[2]}


async def test_writes_after_stop_are_refused_not_lost(migrated_db: str, tmp_path) -> None:
    writer = GroupCommitWriter(asyncpg_dsn(migrated_db), make_settings(migrated_db, tmp_path))
    writer.start()
    pending = asyncio.create_task(writer.write([row(f"w-{uuid.uuid4()}")]))
    await asyncio.sleep(0)
    await writer.stop()
    [outcome] = await pending
    assert isinstance(outcome, Stored)
    [late] = await writer.write([row(f"w-{uuid.uuid4()}")])
    assert isinstance(late, WriteUnavailable) and "shutting down" in str(late)


def literal_crawler_names() -> list[str]:
    from crawlerdetect.providers.crawlers import data

    names = []
    for pattern in data:
        text = pattern.replace("\\/", "/").replace("\\.", ".").replace("\\-", "-").replace("\\ ", " ")
        if not any(c in text for c in "^$()[]{}|*+?\\"):
            names.append(text)
    return names


def test_the_fast_crawler_matcher_agrees_with_crawlerdetect() -> None:
    from crawlerdetect import CrawlerDetect

    from app.ingest.useragents import crawler_matcher

    fast, reference = crawler_matcher(), CrawlerDetect()
    names = literal_crawler_names()
    assert len(names) > 1000
    samples = [f"Mozilla/5.0 (compatible; {n}/2.1; +https://example.com/bot)" for n in names]
    samples += [f"  {n}  " for n in names] + AGENTS + [f"{AGENTS[2]} Edg/{n}.0" for n in range(50)]
    samples += [
        "YandexBot/3.0",
        "Mozilla/5.0 (compatible; YandexSearch/1.0)",
        "Mozilla/5.0 (Linux; Android 9; CUBOT X19)",
        "",
        " ",
    ]
    disagreements = [s for s in samples if fast(s) != reference.is_crawler(s)]
    assert disagreements == []
    assert sum(map(fast, samples)) > 1000  # most samples are bots: the test can tell them apart


CONTRACT = """
input TrackEventInput {
  eventType: String! appName: String! route: String entityType: String entityId: String
  sessionId: String description: JSON clientEventId: String
}
enum TrackStatus { ACCEPTED DUPLICATE DROPPED }
enum DropReason {
  BOT RATE_LIMITED UNKNOWN_EVENT_TYPE UNKNOWN_APP UNKNOWN_ENTITY_TYPE INVALID_ENTITY INVALID_INPUT
  DESCRIPTION_TOO_LARGE PII_KEY UNAVAILABLE
}
type TrackEventResult {
  status: TrackStatus! accepted: Boolean! reason: DropReason message: String retryable: Boolean!
  eventId: ID clientEventId: String!
}
type Mutation {
  trackEvent(input: TrackEventInput!): TrackEventResult!
  trackEvents(inputs: [TrackEventInput!]!): [TrackEventResult!]!
}
scalar JSON
type Query { x: Int }
"""


def _shape(schema, name: str) -> dict:
    kind = schema.type_map[name]
    if hasattr(kind, "values"):
        return {"values": sorted(kind.values)}
    return {
        field: (
            str(spec.type),
            {arg: str(a.type) for arg, a in getattr(spec, "args", {}).items()},
            getattr(spec, "default_value", None),
        )
        for field, spec in kind.fields.items()
        if name != "Mutation" or field in ("trackEvent", "trackEvents")
    }


def test_the_sdl_matches_the_contract() -> None:
    from graphql import Undefined
    from graphql import build_schema as parse_sdl

    from app.graphql.schema import build_schema
    from app.graphql.strawberry_compat import graphql_core_schema

    ours, contract = (
        graphql_core_schema(build_schema(load_settings())),
        parse_sdl(CONTRACT),
    )  # the executable graphql-core schema
    for name in ("TrackEventInput", "TrackStatus", "DropReason", "TrackEventResult", "Mutation"):
        assert _shape(ours, name) == _shape(contract, name), name
    assert all(spec.default_value is Undefined for spec in ours.type_map["TrackEventInput"].fields.values())
