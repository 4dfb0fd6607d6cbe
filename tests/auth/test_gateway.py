"""The gateway HMAC signature against the npm package's own code, and forwarded claims
over real HTTP: honoured with a valid signature, ignored without one."""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import random
import time
import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest

from app.auth.gateway import sign, signature_is_valid, signed_content
from app.config import PROJECT_ROOT
from testkit.http import asgi_client
from testkit.processes import node_json
from testkit.seed import event_row, insert_rows
from testkit.settings import make_settings
from testkit.tokens import token

SECRET = "gateway-hmac-secret-" + "Zq8r" * 8
SIGNER = PROJECT_ROOT / "tests" / "auth" / "hmac_sign.mjs"
EVENTS = "query($app: String) { events(filter: {appName: $app}) { edges { node { appName } } } }"


def npm_sign(secret: str, requests: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Signatures made by @graphql-mesh/hmac-upstream-signature 2.1.0 itself (node)."""
    if not (PROJECT_ROOT / "node_modules" / "@graphql-mesh" / "hmac-upstream-signature").is_dir():
        pytest.fail("npm packages missing: run `make node`")
    signed: list[dict[str, Any]] = node_json(SIGNER, {"secret": secret, "requests": requests})
    return signed


def random_json(rng: random.Random, depth: int = 0) -> Any:
    """Values JSON can carry, with the awkward parts: non-ASCII and astral keys, escapes,
    floats JavaScript prints in other forms than Python (1e-7, 1e21, 0.00001), big ints."""
    kind = rng.randrange(9 if depth < 3 else 6)
    if kind == 0:
        return rng.choice([0, -1, 7, 2**53 - 1, 2**60, -(2**70), 10**21])
    if kind == 1:
        return rng.choice(
            [0.5, -2.25, 1e-7, 1.5e-10, 0.00001, 123456.789, 1e21, 1.7976931348623157e308, 5e-324, 0.1 + 0.2]
        )
    if kind == 2:
        return rng.choice([True, False, None])
    if kind in (3, 4, 5):
        alphabet = 'aZ09 "\\/\n\t\x01\x7f\u00e9\u2028\u20ac\ud7ff\ue000\uffff\U0001f600\U00010000'
        return "".join(rng.choice(alphabet) for _ in range(rng.randrange(8)))
    if kind in (6, 7):
        keys = ["a", "B", "b", "_", "é", "\U0001f600", "\uffff", "\ue000", "10", "9", ""]
        return {rng.choice(keys) + rng.choice(keys): random_json(rng, depth + 1) for _ in range(rng.randrange(5))}
    return [random_json(rng, depth + 1) for _ in range(rng.randrange(4))]


def test_our_verifier_accepts_the_npm_packages_signatures() -> None:
    rng = random.Random(20261124)
    requests: list[dict[str, Any]] = [
        {"query": EVENTS, "variables": {"app": "admin-console"}},
        {"query": "{ __typename }", "variables": {}},
        {"query": 'query { events(filter: {appName: "caf\u00e9 \U0001f600"}) { edges { cursor } } }', "variables": {}},
    ]
    requests += [{"query": EVENTS, "variables": {"v": random_json(rng), "w": random_json(rng)}} for _ in range(150)]
    signed = npm_sign(SECRET, requests)
    for item in signed:
        # the subgraph sees the JSON body the gateway sent: parse it as the server would
        variables = json.loads(json.dumps(item["variables"]))
        assert signed_content(item["query"], variables).decode() == item["serialized"]
        assert signature_is_valid(SECRET.encode(), item["query"], variables, item["signature"])
        assert sign(SECRET.encode(), item["query"], variables) == item["signature"]
        assert not signature_is_valid(b"another secret", item["query"], variables, item["signature"])
    changed = dict(json.loads(json.dumps(signed[0]["variables"])), app="billing-admin")
    assert not signature_is_valid(SECRET.encode(), signed[0]["query"], changed, signed[0]["signature"])
    assert not signature_is_valid(
        SECRET.encode(), signed[0]["query"] + " ", signed[0]["variables"], signed[0]["signature"]
    )


@pytest.fixture
async def admin_app(migrated_db: str) -> str:
    name = f"gw-{uuid.uuid4().hex[:8]}"
    await insert_rows(migrated_db, [event_row(dt.datetime.now(dt.UTC), name)])
    return name


def forwarded(roles: list[str], **extra: Any) -> dict[str, Any]:
    now = int(time.time())
    return {"payload": {"sub": "gw-user-1", "roles": roles, "iat": now, "exp": now + 300, **extra}}


async def post(
    client: httpx.AsyncClient, query: str, variables: dict[str, Any], extensions: dict[str, Any]
) -> dict[str, Any]:
    response = await client.post("/graphql", json={"query": query, "variables": variables, "extensions": extensions})
    assert response.status_code == 200, response.text
    return response.json()


async def test_forwarded_claims_need_a_valid_signature(migrated_db: str, tmp_path: Path, admin_app: str) -> None:
    settings = make_settings(migrated_db, tmp_path, gateway_hmac_secret=SECRET, gateway_trust="payload")
    (item,) = npm_sign(SECRET, [{"query": EVENTS, "variables": {"app": admin_app}}])
    query, variables, signature = item["query"], item["variables"], item["signature"]
    async with asgi_client(settings) as client:
        honoured = await post(client, query, variables, {"jwt": forwarded(["admin"]), "hmac-signature": signature})
        assert honoured["data"]["events"]["edges"] == [{"node": {"appName": admin_app}}]

        refused = [
            {"jwt": forwarded(["admin"])},  # no signature
            {"jwt": forwarded(["admin"]), "hmac-signature": sign(b"not the gateway's secret", query, variables)},
            {"jwt": forwarded(["admin"]), "hmac-signature": "not base64 at all!"},
            {"jwt": forwarded(["admin"]), "hmac-signature": sign(SECRET.encode(), query, {"app": "other"})},
        ]
        for extensions in refused:
            body = await post(client, query, variables, extensions)
            assert body["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED", extensions

        member = await post(client, query, variables, {"jwt": forwarded(["member"]), "hmac-signature": signature})
        assert member["errors"][0]["extensions"]["code"] == "FORBIDDEN"
        expired = forwarded(["admin"], exp=int(time.time()) - 3600)
        body = await post(client, query, variables, {"jwt": expired, "hmac-signature": signature})
        assert body["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"


async def test_forwarded_claims_ignored_when_no_gateway_secret_is_configured(
    migrated_db: str, tmp_path: Path, admin_app: str
) -> None:
    settings = make_settings(migrated_db, tmp_path)  # SIGNALS_GATEWAY_HMAC_SECRET unset
    variables = {"app": admin_app}
    async with asgi_client(settings) as client:
        extensions = {"jwt": forwarded(["admin"]), "hmac-signature": sign(SECRET.encode(), EVENTS, variables)}
        body = await post(client, EVENTS, variables, extensions)
        assert body["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"


# --- what a signed request is trusted for (SIGNALS_GATEWAY_TRUST) ---------------------------------


def signed(query: str, variables: dict[str, Any], jwt: dict[str, Any]) -> dict[str, Any]:
    return {"jwt": jwt, "hmac-signature": sign(SECRET.encode(), query, variables)}


def codes(body: dict[str, Any]) -> list[str | None]:
    return [(error.get("extensions") or {}).get("code") for error in body.get("errors", [])]


async def test_forwarded_claims_obey_the_bearer_rules(migrated_db: str, tmp_path: Path, admin_app: str) -> None:
    """In payload mode: exp required, and iss/aud checked when configured, like a bearer token."""
    settings = make_settings(
        migrated_db, tmp_path, gateway_hmac_secret=SECRET, gateway_trust="payload",
        jwt_issuer="https://idp.example.test", jwt_audience="signals",
    )  # fmt: skip
    variables = {"app": admin_app}
    now = int(time.time())
    good = {"sub": "gw-1", "roles": ["admin"], "exp": now + 300, "iss": "https://idp.example.test", "aud": "signals"}
    async with asgi_client(settings) as client:
        honoured = await post(client, EVENTS, variables, signed(EVENTS, variables, {"payload": good}))
        assert honoured["data"]["events"]["edges"] == [{"node": {"appName": admin_app}}]
        for claims in (
            {k: v for k, v in good.items() if k != "exp"},  # no exp: would be valid forever
            {**good, "exp": "tomorrow"},
            {**good, "iss": "https://elsewhere.example.test"},
            {**good, "aud": ["someone-else"]},
            {**good, "nbf": now + 3600},
        ):
            body = await post(client, EVENTS, variables, signed(EVENTS, variables, {"payload": claims}))
            assert codes(body) == ["UNAUTHENTICATED"], claims


async def test_in_token_mode_the_forwarded_token_decides_who_calls(
    migrated_db: str, tmp_path: Path, admin_app: str
) -> None:
    settings = make_settings(migrated_db, tmp_path, gateway_hmac_secret=SECRET)  # token: the default
    variables = {"app": admin_app}
    member = {"value": token(roles=["member"], subject="gw-member"), "prefix": "Bearer"}
    admin_claims = {"sub": "gw-member", "roles": ["admin"], "exp": int(time.time()) + 300}
    async with asgi_client(settings) as client:
        admin = {"value": token(roles=["admin"], subject="gw-admin"), "prefix": "Bearer"}
        body = await post(client, EVENTS, variables, signed(EVENTS, variables, {"token": admin}))
        assert body["data"]["events"]["edges"] == [{"node": {"appName": admin_app}}]
        # the same signed request with admin claims beside a member's token: the token wins
        replayed = signed(EVENTS, variables, {"token": member, "payload": admin_claims})
        assert codes(await post(client, EVENTS, variables, replayed)) == ["FORBIDDEN"]
        # claims alone are not enough in token mode, and a token the IdP did not sign is refused
        only_claims = signed(EVENTS, variables, {"payload": admin_claims})
        assert codes(await post(client, EVENTS, variables, only_claims)) == ["UNAUTHENTICATED"]
        forged = {"value": token(roles=["admin"], secret="not-the-idp-secret-" + "m" * 20), "prefix": "Bearer"}
        assert codes(await post(client, EVENTS, variables, signed(EVENTS, variables, {"token": forged}))) == [
            "UNAUTHENTICATED"
        ]


HOSTILE_VARIABLES: list[Any] = [10**400, -(10**400), 2**64, 1e308, "\ud800", {"a": [[[[[[[[1]]]]]]]]}, None, True]


@pytest.mark.parametrize("value", HOSTILE_VARIABLES, ids=lambda v: type(v).__name__)
async def test_every_answer_on_the_gateway_path_is_coded(migrated_db: str, tmp_path: Path, value: Any) -> None:
    """Signed requests whose variables hold what JSON allows and JavaScript or PostgreSQL do
    not: the answer is data or coded errors, never an internal error's text."""
    settings = make_settings(migrated_db, tmp_path, gateway_hmac_secret=SECRET, gateway_trust="payload")
    query = "mutation($x: TrackEventInput!) { trackEvent(input: $x) { status reason } }"
    variables = {"x": {"appName": "admin-console", "eventType": "click", "description": {"v": value}}}
    claims = {"sub": "gw-1", "roles": ["member"], "exp": int(time.time()) + 300}
    async with asgi_client(settings) as client:
        extensions = {"jwt": {"payload": claims}, "hmac-signature": "AAAA"}
        # content no gateway could have signed (a lone surrogate) goes with a bad signature
        with contextlib.suppress(ValueError, UnicodeEncodeError):
            extensions = signed(query, variables, {"payload": claims})
        response = await client.post(
            "/graphql", content=json.dumps({"query": query, "variables": variables, "extensions": extensions})
            .encode("utf-8", "surrogatepass"), headers={"content-type": "application/json"},
        )  # fmt: skip
        body = response.json()
    assert response.status_code in (200, 400), response.text
    assert all(codes(body)), body
    assert "data" in body or body.get("errors")
