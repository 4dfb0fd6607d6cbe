"""Nothing a caller sends reaches a log line: every class of error (parse, validation,
variable coercion, authentication, authorization, an internal fault, dropped events) is
provoked with personal data planted in the document, the variables, the token and the
headers; then every captured line (rendered as in production) and every answer's
`extensions` are scanned for the planted values. Each error must still be logged, by code."""

from __future__ import annotations

import base64
import json
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from app.auth.gateway import sign
from testkit.http import asgi_client
from testkit.logs import production_log_lines
from testkit.settings import make_settings
from testkit.tokens import token

EMAIL = "jane.doe.planted@example.com"
PHONE = "+1-202-555-0147"
ADDRESS = "198.51.100.77"
PEER = "203.0.113.7"  # the ASGI client's own address (testkit.http)
AGENT = "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0 PlantedAgent/7.7"
SUBJECT = "subject-jane-4711"
PLANTED = (EMAIL, PHONE, ADDRESS, PEER, AGENT, "PlantedAgent", SUBJECT)
GATEWAY_SECRET = "log-privacy-gateway-secret-" + "q" * 16

TRACK = "mutation($x: TrackEventInput!) { trackEvent(input: $x) { status reason } }"
TRACK_MANY = "mutation($x: [TrackEventInput!]!) { trackEvents(inputs: $x) { status reason } }"


def headers(bearer: str | None = None) -> dict[str, str]:
    given = {"user-agent": AGENT, "x-forwarded-for": ADDRESS}
    if bearer is not None:
        given["authorization"] = f"Bearer {bearer}"
    return given


def member() -> str:
    return token(roles=["member"], subject=SUBJECT, email=EMAIL, phone=PHONE)


def forged_header_token() -> str:
    """A token whose header's `alg` is an email address (signature irrelevant)."""

    def part(value: dict[str, Any]) -> str:
        return base64.urlsafe_b64encode(json.dumps(value).encode()).decode().rstrip("=")

    return f"{part({'alg': EMAIL, 'typ': 'JWT'})}.{part({'sub': SUBJECT, 'exp': 9999999999})}.c2ln"


def cases() -> list[tuple[str, dict[str, Any], dict[str, str], str]]:
    """(label, request body, headers, the error code the answer must carry)."""
    route = f"/u/{EMAIL}"
    return [
        ("coercion", {"query": TRACK, "variables": {"x": {"appName": EMAIL, "route": route}}}, headers(member()),
         "BAD_USER_INPUT"),
        ("wrong type", {"query": TRACK, "variables": {"x": {"appName": 5, "eventType": PHONE, "route": route}}},
         headers(member()), "BAD_USER_INPUT"),
        ("unknown field", {"query": f'{{ events(filter: {{appName: "{EMAIL}"}}) {{ nope }} }}'}, headers(member()),
         "GRAPHQL_VALIDATION_FAILED"),
        ("syntax", {"query": f'mutation {{ trackEvent(input: {{route: "{EMAIL}" '}, headers(member()),
         "GRAPHQL_PARSE_FAILED"),
        ("expired token, inline literals",
         {"query": f'mutation {{ trackEvent(input: {{appName: "{EMAIL}", eventType: "{PHONE}"}}) {{ status }} }}'},
         headers(token(roles=["member"], subject=SUBJECT, ttl_seconds=-3600)), "UNAUTHENTICATED"),
        ("forbidden, filter literals", {"query": f'{{ events(filter: {{appName: "{EMAIL}", route: "{PHONE}"}}) '
                                                 "{ edges { cursor } } }"}, headers(member()), "FORBIDDEN"),
        ("alg in the token header", {"query": TRACK, "variables": {"x": {"appName": "admin-console",
                                                                          "eventType": "click"}}},
         headers(forged_header_token()), "UNAUTHENTICATED"),
    ]  # fmt: skip


def gateway_case() -> dict[str, Any]:
    """A signed gateway request whose variables hold an integer no double can hold: the
    fault it once caused inside authentication must reach nobody."""
    variables = {"x": {"appName": EMAIL, "eventType": "click", "description": {"n": 10**400}}}
    return {
        "query": TRACK,
        "variables": variables,
        "extensions": {
            "jwt": {"payload": {"sub": SUBJECT, "email": EMAIL, "exp": int(time.time()) + 60}},
            "hmac-signature": sign(GATEWAY_SECRET.encode(), TRACK, variables),
        },
    }


def drops_case() -> dict[str, Any]:
    events = [
        {"appName": "admin-console", "eventType": "click", "route": f"/u/{EMAIL}"},
        {"appName": "admin-console", "eventType": "click", "description": {"phone": PHONE}},
        {"appName": EMAIL, "eventType": "click"},
        {"appName": "admin-console", "eventType": "click", "route": f"/p/{PHONE.replace('+', '%2B')}%3Fq={EMAIL}"},
    ]
    return {"query": TRACK_MANY, "variables": {"x": events}}


@pytest.fixture
async def http(migrated_db: str, tmp_path: Path) -> AsyncIterator[httpx.AsyncClient]:
    settings = make_settings(
        migrated_db, tmp_path, trusted_proxies=[PEER], gateway_hmac_secret=GATEWAY_SECRET, gateway_trust="payload"
    )
    async with asgi_client(settings) as client:
        yield client


def codes(body: dict[str, Any]) -> list[str]:
    return [(error.get("extensions") or {}).get("code") for error in body.get("errors", [])]


def assert_clean(texts: list[str]) -> None:
    for text in texts:
        found = [value for value in PLANTED if value in text]
        assert found == [], f"{found} in: {text[:300]}"
        assert "Traceback" not in text, text[:300]


async def test_no_personal_data_in_any_log_line_or_extension(http: httpx.AsyncClient) -> None:
    answers: list[dict[str, Any]] = []
    with production_log_lines() as lines:
        for label, body, given, code in cases():
            response = await http.post("/graphql", json=body, headers=given)
            answer = response.json()
            assert code in codes(answer), (label, answer)
            answers.append(answer)
        gateway = (await http.post("/graphql", json=gateway_case(), headers=headers())).json()
        assert all(codes(gateway)) and (gateway.get("errors") or gateway["data"]), gateway  # never uncoded
        assert "int too large" not in json.dumps(gateway)
        answers.append(gateway)
        dropped = (await http.post("/graphql", json=drops_case(), headers=headers(member()))).json()
        assert [result["status"] for result in dropped["data"]["trackEvents"]] == ["DROPPED"] * 4
        answers.append(dropped)
    assert_clean(lines)
    assert_clean([json.dumps([error.get("extensions") for error in a.get("errors", [])]) for a in answers])
    logged = [json.loads(line) for line in lines]
    logged_codes = {entry.get("code") for entry in logged if entry.get("event") == "graphql error"}
    assert {code for _, _, _, code in cases()} <= logged_codes  # every error was logged, by its code
    drops = [entry for entry in logged if entry.get("event") == "events dropped"]
    assert [entry["dropped"] for entry in drops] == [1, 4], drops  # one line per request: the gateway's, then the batch
