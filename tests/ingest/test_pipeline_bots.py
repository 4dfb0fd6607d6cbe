"""The pipeline's bot step through the real API: trackEvent over HTTP (ASGI), a real
PostgreSQL, real JWTs. A dropped bot answers DROPPED / BOT, is counted by class in
`signals_bots_dropped_total`, and leaves nothing in the database: every text column of
every events row is scanned for the bot's User-Agent and its clientEventId, and the row
count must not move. The operator's allow and deny patterns (SIGNALS_BOT_ALLOW_PATTERNS,
SIGNALS_BOT_DENY_PATTERNS) are loaded as the CLI loads them, from the environment."""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from app.cli.serve import create_app
from app.config import Settings
from testkit.database import fetch
from testkit.http import gql
from testkit.metrics import metric
from testkit.settings import make_settings
from testkit.tokens import token

TRACK = """mutation($i: TrackEventInput!) {
  trackEvent(input: $i) { status accepted reason message retryable eventId clientEventId }
}"""
TRACK_MANY = """mutation($i: [TrackEventInput!]!) {
  trackEvents(inputs: $i) { status reason clientEventId }
}"""
CHROME = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36"
)
BOTS = {
    "crawler": "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)",
    "automation": (
        "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) HeadlessChrome/131.0.6778.33 "
        "Safari/537.36"
    ),
    "monitor": "Datadog Agent/7.55.2",
    "library": "grpc-java-netty/1.64.0",
    "ai-agent": "anthropic-ai",
}
PEOPLE = {
    "Outlook": "Outlook-iOS/709.2189947.prod.iphone (4.2422.0)",
    "Slack": (
        "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) Slack/4.38.125 "
        "Chrome/124.0.6367.243 Electron/30.1.0 Safari/537.36"
    ),
    "Lynx": "Lynx/2.9.0dev.12 libwww-FM/2.14 SSL-MM/1.4.1 GNUTLS/3.7.9",
}
KIOSK = "AcmeKiosk/3.1 (Linux; headless)"  # "headless": a bot to the built-in rules
OWN_CHECK = CHROME + " AcmeZephyr/1.0"  # a person to the built-in rules


@contextlib.asynccontextmanager
async def serve(settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(settings)
    transport = httpx.ASGITransport(app=app, client=("203.0.113.9", 50000))
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=transport, base_url="http://admin.example.test") as http,
    ):
        yield http


def headers(ua: str) -> dict[str, str]:
    return {"authorization": f"Bearer {token(roles=['member'])}", "user-agent": ua}


def event() -> dict[str, Any]:
    return {"eventType": "click", "appName": "admin-console", "clientEventId": f"bot-{uuid.uuid4()}"}


async def track(http: httpx.AsyncClient, ua: str) -> tuple[dict[str, Any], str]:
    given = event()
    body = await gql(http, TRACK, {"i": given}, headers(ua))
    assert "errors" not in body, body
    return body["data"]["trackEvent"], given["clientEventId"]


async def stored_anywhere(database_url: str, needles: list[str]) -> list[str]:
    """Every needle found in any text-like column of any events row (scanned as text)."""
    rows = await fetch(database_url, "SELECT row_to_json(e)::text AS row FROM events e")
    return [needle for needle in needles for row in rows if needle in row["row"]]


async def event_count(database_url: str) -> int:
    return int((await fetch(database_url, "SELECT count(*) AS n FROM events"))[0]["n"])


async def test_each_class_of_bot_is_dropped_counted_by_class_and_not_stored(
    settings: Settings, migrated_db: str
) -> None:
    async with serve(settings) as http:
        before_rows, before = await event_count(migrated_db), (await http.get("/metrics")).text
        ids = []
        for klass, ua in BOTS.items():
            result, client_event_id = await track(http, ua)
            assert (result["status"], result["reason"], result["accepted"]) == ("DROPPED", "BOT", False), klass
            assert klass in result["message"] and result["retryable"] is False and result["eventId"] is None
            ids.append(client_event_id)
        batch = await gql(http, TRACK_MANY, {"i": [event(), event(), event()]}, headers(BOTS["library"]))
        assert [r["reason"] for r in batch["data"]["trackEvents"]] == ["BOT"] * 3
        ids += [r["clientEventId"] for r in batch["data"]["trackEvents"]]
        after = (await http.get("/metrics")).text
    for klass in BOTS:
        expected = 4 if klass == "library" else 1  # three events of one batch are three drops
        assert (
            metric(after, "signals_bots_dropped_total", **{"class": klass})
            - metric(before, "signals_bots_dropped_total", **{"class": klass})
            == expected
        ), klass
    dropped = metric(after, "signals_events_dropped_total", reason="BOT") - metric(
        before, "signals_events_dropped_total", reason="BOT"
    )
    assert dropped == 8
    assert await event_count(migrated_db) == before_rows
    assert await stored_anywhere(migrated_db, ids + list(BOTS.values())) == []


async def test_people_in_office_slack_and_text_browsers_are_stored(settings: Settings, migrated_db: str) -> None:
    async with serve(settings) as http:
        for name, ua in PEOPLE.items():
            result, client_event_id = await track(http, ua)
            assert result["status"] == "ACCEPTED", (name, result)
            rows = await fetch(migrated_db, "SELECT user_hash FROM events WHERE client_event_id = $1", client_event_id)
            assert len(rows) == 1 and len(rows[0]["user_hash"]) == 64
    assert await stored_anywhere(migrated_db, list(PEOPLE.values())) == []  # parsed, never kept raw


async def test_operator_allow_wins_and_deny_drops_their_own_checks(
    migrated_db: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with serve(make_settings(migrated_db, tmp_path)) as http:  # the built-in rules alone
        assert (await track(http, KIOSK))[0]["reason"] == "BOT"
        assert (await track(http, OWN_CHECK))[0]["status"] == "ACCEPTED"
    monkeypatch.setenv("SIGNALS_BOT_ALLOW_PATTERNS", r"^AcmeKiosk/\d")
    monkeypatch.setenv("SIGNALS_BOT_DENY_PATTERNS", "monitor=AcmeZephyr/,automation=AcmeE2E")
    configured = make_settings(migrated_db, tmp_path)
    async with serve(configured) as http:
        before_rows, before = await event_count(migrated_db), (await http.get("/metrics")).text
        kiosk, kiosk_id = await track(http, KIOSK)
        own, own_id = await track(http, OWN_CHECK)
        after = (await http.get("/metrics")).text
    assert kiosk["status"] == "ACCEPTED"
    assert (own["status"], own["reason"]) == ("DROPPED", "BOT") and "monitor" in own["message"]
    assert (
        metric(after, "signals_bots_dropped_total", **{"class": "monitor"})
        - metric(before, "signals_bots_dropped_total", **{"class": "monitor"})
        == 1
    )
    assert await event_count(migrated_db) == before_rows + 1  # the kiosk's event, nothing else
    assert len(await fetch(migrated_db, "SELECT 1 FROM events WHERE client_event_id = $1", kiosk_id)) == 1
    assert await stored_anywhere(migrated_db, [own_id, OWN_CHECK, KIOSK]) == []
