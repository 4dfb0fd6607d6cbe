"""Bearer-token auth over real HTTP: HS256 with a shared secret, RS256/ES256 from a JWKS
served by a real HTTP server on 127.0.0.1, and every way a token must be refused."""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import hmac
import json
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from testkit.http import asgi_client, gql
from testkit.jwks import JwksServer
from testkit.seed import event_row, insert_rows
from testkit.settings import TEST_JWT_SECRET, make_settings
from testkit.tokens import token

ISSUER = "https://idp.example.test/"
AUDIENCE = "signals"
EVENTS = "query($app: String) { events(filter: {appName: $app}) { edges { node { appName eventType } } } }"


@pytest.fixture(scope="module")
def rsa_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@pytest.fixture
def jwks(rsa_key: rsa.RSAPrivateKey) -> Iterator[JwksServer]:
    server = JwksServer()
    server.publish(rsa_key, "rsa-1", "RS256")
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
async def auth_client(migrated_db: str, tmp_path: Path, jwks: JwksServer) -> AsyncIterator[httpx.AsyncClient]:
    settings = make_settings(migrated_db, tmp_path, jwt_jwks_url=jwks.url, jwt_issuer=ISSUER, jwt_audience=AUDIENCE)
    async with asgi_client(settings) as http:
        yield http


@pytest.fixture
async def app_name(migrated_db: str) -> str:
    name = f"auth-{uuid.uuid4().hex[:8]}"
    await insert_rows(migrated_db, [event_row(dt.datetime.now(dt.UTC), name, "view")])
    return name


def claims(**extra: Any) -> dict[str, Any]:
    """Admin claims for ISSUER/AUDIENCE; a claim given as None is left out."""
    now = int(time.time())
    values = {
        "sub": "admin-1",
        "roles": ["admin"],
        "iss": ISSUER,
        "aud": AUDIENCE,
        "iat": now,
        "exp": now + 600,
        **extra,
    }
    return {name: value for name, value in values.items() if value is not None}


def bearer(value: str) -> dict[str, str]:
    return {"authorization": f"Bearer {value}"}


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def hand_signed(header: dict[str, Any], payload: dict[str, Any], key: bytes | None) -> str:
    """A token assembled by hand (pyjwt refuses to make these, which is the point)."""
    signing_input = f"{b64url(json.dumps(header).encode())}.{b64url(json.dumps(payload).encode())}"
    signature = b"" if key is None else hmac.new(key, signing_input.encode(), hashlib.sha256).digest()
    return f"{signing_input}.{b64url(signature)}"


async def events_as(client: httpx.AsyncClient, app: str, headers: dict[str, str]) -> dict[str, Any]:
    return await gql(client, EVENTS, {"app": app}, headers)


def error_code(body: dict[str, Any]) -> str:
    assert body.get("data") is None, body
    (error,) = body["errors"]
    assert "Traceback" not in json.dumps(body) and "stacktrace" not in json.dumps(error.get("extensions", {}))
    return error["extensions"]["code"]


async def test_no_token_is_unauthenticated(auth_client: httpx.AsyncClient, app_name: str) -> None:
    # `events` needs a role: it gets the refusal every guarded field gives a caller without a token
    body = await events_as(auth_client, app_name, {})
    assert error_code(body) == "UNAUTHENTICATED"


async def test_non_admin_is_forbidden(auth_client: httpx.AsyncClient, app_name: str) -> None:
    body = await events_as(auth_client, app_name, bearer(token(roles=["member"], iss=ISSUER, aud=AUDIENCE)))
    assert error_code(body) == "FORBIDDEN"


async def test_admin_hs256_reads_rows(auth_client: httpx.AsyncClient, app_name: str) -> None:
    body = await events_as(auth_client, app_name, bearer(token(roles=["admin"], iss=ISSUER, aud=AUDIENCE)))
    assert body["data"]["events"]["edges"] == [{"node": {"appName": app_name, "eventType": "view"}}]


async def test_admin_rs256_from_jwks_reads_rows(
    auth_client: httpx.AsyncClient, app_name: str, rsa_key: rsa.RSAPrivateKey
) -> None:
    signed = jwt.encode(claims(), rsa_key, algorithm="RS256", headers={"kid": "rsa-1"})
    body = await events_as(auth_client, app_name, bearer(signed))
    assert body["data"]["events"]["edges"][0]["node"]["appName"] == app_name


async def test_expired_token_rejected(auth_client: httpx.AsyncClient, app_name: str) -> None:
    past = int(time.time()) - 3600
    body = await events_as(auth_client, app_name, bearer(jwt.encode(claims(iat=past - 60, exp=past), TEST_JWT_SECRET)))
    assert error_code(body) == "UNAUTHENTICATED"
    assert "expired" in body["errors"][0]["message"]


async def test_not_yet_valid_token_rejected(auth_client: httpx.AsyncClient, app_name: str) -> None:
    later = int(time.time()) + 3600
    body = await events_as(auth_client, app_name, bearer(jwt.encode(claims(nbf=later), TEST_JWT_SECRET)))
    assert error_code(body) == "UNAUTHENTICATED"
    assert "not valid yet" in body["errors"][0]["message"]


async def test_wrong_issuer_rejected(auth_client: httpx.AsyncClient, app_name: str) -> None:
    body = await events_as(auth_client, app_name, bearer(jwt.encode(claims(iss="https://evil.test/"), TEST_JWT_SECRET)))
    assert error_code(body) == "UNAUTHENTICATED"
    assert "issuer" in body["errors"][0]["message"]


async def test_wrong_audience_rejected(auth_client: httpx.AsyncClient, app_name: str) -> None:
    body = await events_as(auth_client, app_name, bearer(jwt.encode(claims(aud="another-api"), TEST_JWT_SECRET)))
    assert error_code(body) == "UNAUTHENTICATED"
    assert "audience" in body["errors"][0]["message"]


async def test_alg_none_rejected(auth_client: httpx.AsyncClient, app_name: str) -> None:
    unsigned = hand_signed({"alg": "none", "typ": "JWT"}, claims(), key=None)
    body = await events_as(auth_client, app_name, bearer(unsigned))
    assert error_code(body) == "UNAUTHENTICATED"
    assert "not allowed" in body["errors"][0]["message"]


async def test_hs_rs_confusion_rejected(
    auth_client: httpx.AsyncClient, app_name: str, rsa_key: rsa.RSAPrivateKey
) -> None:
    """The classic attack: HS256 'signed' with the public RSA key the JWKS publishes."""
    public_pem = rsa_key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    for header in ({"alg": "HS256", "typ": "JWT", "kid": "rsa-1"}, {"alg": "HS256", "typ": "JWT"}):
        forged = hand_signed(header, claims(), key=public_pem)
        body = await events_as(auth_client, app_name, bearer(forged))
        assert error_code(body) == "UNAUTHENTICATED"
        assert "signature" in body["errors"][0]["message"]


async def test_bad_signature_rejected(
    auth_client: httpx.AsyncClient, app_name: str, rsa_key: rsa.RSAPrivateKey
) -> None:
    other_rsa = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    forged_rs = jwt.encode(claims(), other_rsa, algorithm="RS256", headers={"kid": "rsa-1"})
    forged_hs = jwt.encode(claims(), "another-secret-" + "q" * 40, algorithm="HS256")
    genuine = jwt.encode(claims(), rsa_key, algorithm="RS256", headers={"kid": "rsa-1"})
    head, _payload, signature = genuine.split(".")
    tampered = f"{head}.{b64url(json.dumps(claims(sub='root')).encode())}.{signature}"
    for bad in (forged_rs, forged_hs, tampered):
        body = await events_as(auth_client, app_name, bearer(bad))
        assert error_code(body) == "UNAUTHENTICATED", bad
        assert "signature" in body["errors"][0]["message"]


async def test_rotated_key_fetched_on_unknown_kid_and_refetch_is_rate_limited(
    migrated_db: str, tmp_path: Path, jwks: JwksServer, app_name: str
) -> None:
    settings = make_settings(migrated_db, tmp_path, jwt_jwks_url=jwks.url, jwt_jwks_min_refresh_seconds=0.5)
    async with asgi_client(settings) as client:
        rotated_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        first = jwt.encode(claims(iss=None, aud=None), rotated_key, "RS256", {"kid": "rot-1"})
        assert error_code(await events_as(client, app_name, bearer(first))) == "UNAUTHENTICATED"  # not published yet
        hits = jwks.hits
        for _ in range(5):  # unknown kids within the refresh interval: no more fetches
            assert error_code(await events_as(client, app_name, bearer(first))) == "UNAUTHENTICATED"
        assert jwks.hits == hits
        jwks.publish(rotated_key, "rot-1", "RS256")
        time.sleep(0.6)
        body = await events_as(client, app_name, bearer(first))
        assert body["data"]["events"]["edges"], body
        assert jwks.hits == hits + 1


async def test_es256_key_cannot_verify_rs256_and_vice_versa(
    migrated_db: str, tmp_path: Path, jwks: JwksServer, app_name: str
) -> None:
    ec_key = ec.generate_private_key(ec.SECP256R1())
    jwks.publish(ec_key, "ec-1", "ES256")
    settings = make_settings(migrated_db, tmp_path, jwt_jwks_url=jwks.url)
    async with asgi_client(settings) as client:
        good = jwt.encode(claims(iss=None, aud=None), ec_key, "ES256", {"kid": "ec-1"})
        assert (await events_as(client, app_name, bearer(good)))["data"]["events"]["edges"]
        # a token claiming RS256 but naming the EC key: refused before any crypto
        mismatched = jwt.encode(
            claims(iss=None, aud=None), rsa.generate_private_key(65537, 2048), "RS256", {"kid": "ec-1"}
        )
        body = await events_as(client, app_name, bearer(mismatched))
        assert error_code(body) == "UNAUTHENTICATED" and "does not fit" in body["errors"][0]["message"]


async def test_roles_from_nested_claim_path(migrated_db: str, tmp_path: Path, app_name: str) -> None:
    settings = make_settings(migrated_db, tmp_path, jwt_roles_claim="realm_access.roles")
    async with asgi_client(settings) as client:
        nested = token(roles=[], realm_access={"roles": ["admin"]})
        assert (await events_as(client, app_name, bearer(nested)))["data"]["events"]["edges"]
        top_level_only = token(roles=["admin"])
        assert error_code(await events_as(client, app_name, bearer(top_level_only))) == "FORBIDDEN"


async def test_malformed_authorization_header(auth_client: httpx.AsyncClient, app_name: str) -> None:
    for header in ({"authorization": "Basic dXNlcjpwYXNz"}, bearer("not.a.jwt"), bearer("x")):
        assert error_code(await events_as(auth_client, app_name, header)) == "UNAUTHENTICATED"
