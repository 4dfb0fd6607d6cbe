"""Authentication: who is calling, and with which roles.

Direct callers send `Authorization: Bearer <JWT>`, verified with pyjwt against an
allowlist of algorithms (never `none`), exp/nbf/iat with a small leeway, and issuer /
audience when configured. Roles are read from a configurable claim path
(`roles`, `realm_access.roles`, ...).

The subject (`sub`) is never stored or logged: rate limiting keys on a hash of it.
"""

from __future__ import annotations

import hashlib
import hmac
import time
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any

import jwt

from app.auth.jwks import JwksCache, JwksUnavailable
from app.config import Settings, dev_secret

ADMIN_ROLE = "admin"


class AuthError(Exception):
    """The caller could not be authenticated; `str()` is safe to show."""


@dataclass(frozen=True)
class Principal:
    """An authenticated caller. `key` is an opaque hash of the subject, safe for rate limits."""

    key: str
    roles: frozenset[str] = field(default_factory=frozenset)

    @property
    def is_admin(self) -> bool:
        return ADMIN_ROLE in self.roles


def read_claim_path(claims: dict[str, Any], path: str) -> Any:
    """`realm_access.roles` -> claims["realm_access"]["roles"]; None when absent.
    A claim whose own name holds dots (`https://example.com/roles`) is found as is."""
    if path in claims:
        return claims[path]
    value: Any = claims
    for part in path.split("."):
        if not isinstance(value, dict) or part not in value:
            return None
        value = value[part]
    return value


def roles_from_claims(claims: dict[str, Any], path: str) -> frozenset[str]:
    value = read_claim_path(claims, path)
    if isinstance(value, str):
        return frozenset(value.replace(",", " ").split())
    if isinstance(value, (list, tuple)):
        return frozenset(str(item) for item in value)
    return frozenset()


def principal_from_claims(claims: dict[str, Any], settings: Settings, secret: bytes) -> Principal:
    subject = str(claims.get("sub") or "")
    if not subject:
        raise AuthError("token has no subject (sub)")
    key = hmac.new(secret, subject.encode("utf-8"), hashlib.sha256).hexdigest()[:32]
    return Principal(key=key, roles=roles_from_claims(claims, settings.jwt_roles_claim))


# Token algorithm family -> the JWK key type that may verify it. HS* never reaches the
# JWKS (only the configured shared secret verifies HS tokens), so a public key can never
# be used as an HMAC secret, and a symmetric ("oct") JWK never verifies anything.
_KEY_TYPES = {"RS": "RSA", "PS": "RSA", "ES": "EC", "Ed": "OKP"}


class JwtVerifier:
    """Verifies bearer tokens with the configured key material.

    HS* tokens verify only against `SIGNALS_JWT_SECRET`; RS*/PS*/ES*/EdDSA tokens only
    against a JWKS key of the matching type (and matching `alg` when the JWK names one).
    """

    def __init__(self, settings: Settings, hs_secret: str | None, jwks: JwksCache | None = None) -> None:
        self.settings = settings
        self.hs_secret = hs_secret
        self._verified: OrderedDict[str, dict[str, Any]] = OrderedDict()
        self.jwks = jwks
        if jwks is None and settings.jwt_jwks_url:
            self.jwks = JwksCache(
                settings.jwt_jwks_url,
                ttl_seconds=settings.jwt_jwks_cache_seconds,
                min_refresh_seconds=settings.jwt_jwks_min_refresh_seconds,
            )

    @property
    def configured(self) -> bool:
        return self.hs_secret is not None or self.jwks is not None

    async def _key_for(self, header: dict[str, Any], algorithm: str) -> Any:
        if algorithm.startswith("HS"):
            if self.hs_secret is None:
                raise AuthError(f"algorithm {algorithm} is not accepted here")
            return self.hs_secret
        if self.jwks is None:
            raise AuthError(f"algorithm {algorithm} is not accepted here")
        kid = header.get("kid")
        try:
            jwk = await self.jwks.get(kid if isinstance(kid, str) else None)
        except JwksUnavailable as exc:
            raise AuthError(str(exc)) from None
        if jwk is None:
            raise AuthError("no signing key matches the token's kid")
        if jwk.get("kty") != _KEY_TYPES.get(algorithm[:2]) or jwk.get("alg", algorithm) != algorithm:
            raise AuthError(f"the signing key does not fit algorithm {algorithm}")
        if jwk.get("use", "sig") != "sig":
            raise AuthError("the signing key is not for signatures")
        try:
            return jwt.PyJWK(jwk, algorithm=algorithm).key
        except jwt.PyJWTError:
            raise AuthError("the signing key is unusable") from None

    VERIFIED_CACHE_SIZE = 4096

    async def verify(self, token: str) -> dict[str, Any]:
        """Claims of a valid token. A token already verified (same bytes, so same signature)
        is answered from a bounded memo whose expiry is re-checked on every use."""
        claims = self._verified.get(token)
        if claims is not None:
            if time.time() <= claims["exp"] + self.settings.jwt_leeway_seconds:
                self._verified.move_to_end(token)
                return claims
            del self._verified[token]
        claims = await self._verify_signature_and_claims(token)
        if isinstance(claims.get("exp"), int | float):
            self._verified[token] = claims
            if len(self._verified) > self.VERIFIED_CACHE_SIZE:
                self._verified.popitem(last=False)
        return claims

    async def _verify_signature_and_claims(self, token: str) -> dict[str, Any]:
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError:
            raise AuthError("malformed token") from None
        algorithm = header.get("alg")
        if not isinstance(algorithm, str) or algorithm not in self.settings.jwt_algorithms:
            raise AuthError(f"algorithm {algorithm or 'none'} is not allowed")
        key = await self._key_for(header, algorithm)
        required = ["exp", "sub"]
        required += ["iss"] if self.settings.jwt_issuer else []
        required += ["aud"] if self.settings.jwt_audience else []
        options: Any = {"require": required, "verify_aud": self.settings.jwt_audience is not None}
        try:
            return jwt.decode(
                token,
                key,
                algorithms=[algorithm],
                audience=self.settings.jwt_audience,
                issuer=self.settings.jwt_issuer,
                leeway=self.settings.jwt_leeway_seconds,
                options=options,
            )
        except jwt.ExpiredSignatureError:
            raise AuthError("token expired") from None
        except jwt.InvalidAudienceError:
            raise AuthError("token audience is not accepted") from None
        except jwt.InvalidIssuerError:
            raise AuthError("token issuer is not accepted") from None
        except jwt.ImmatureSignatureError:
            raise AuthError("token is not valid yet") from None
        except jwt.MissingRequiredClaimError as exc:
            raise AuthError(f"token lacks the {exc.claim} claim") from None
        except jwt.PyJWTError:
            raise AuthError("token signature or format is invalid") from None


def check_forwarded_claims(claims: dict[str, Any], settings: Settings) -> None:
    """The rules a bearer token obeys, for claims that arrive already verified (a gateway's
    forwarded payload): `exp` required, `nbf`, `iss` and `aud` when configured, the leeway."""
    now, leeway = time.time(), settings.jwt_leeway_seconds
    for name in ("exp", "nbf", "iat"):
        value = claims.get(name)
        if value is not None and (isinstance(value, bool) or not isinstance(value, int | float)):
            raise AuthError(f"forwarded claim {name} is not a number")
    if claims.get("exp") is None:
        raise AuthError("forwarded token lacks the exp claim")
    if claims["exp"] < now - leeway:
        raise AuthError("forwarded token expired")
    if claims.get("nbf") is not None and claims["nbf"] > now + leeway:
        raise AuthError("forwarded token is not valid yet")
    if settings.jwt_issuer is not None and claims.get("iss") != settings.jwt_issuer:
        raise AuthError("forwarded token issuer is not accepted")
    if settings.jwt_audience is not None:
        audience = claims.get("aud")
        audiences = audience if isinstance(audience, list) else [audience]
        if settings.jwt_audience not in audiences:
            raise AuthError("forwarded token audience is not accepted")


def hs_secret(settings: Settings) -> str | None:
    """The HS256 secret: configured, or (development only, nothing else configured) generated."""
    if settings.jwt_secret is not None:
        return settings.jwt_secret.get_secret_value()
    if settings.jwt_jwks_url or settings.is_production:
        return None
    return dev_secret(settings, "jwt-secret")


def bearer_token(authorization: str | None) -> str | None:
    if not authorization:
        return None
    scheme, _, token = authorization.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise AuthError("Authorization header must be 'Bearer <token>'")
    return token.strip()


def issue_token(secret: str, *, subject: str, roles: list[str], ttl_seconds: int = 86_400, **claims: Any) -> str:
    """An HS256 token (development helper and tests)."""
    now = int(time.time())
    payload = {"sub": subject, "roles": roles, "iat": now, "exp": now + ttl_seconds, **claims}
    return jwt.encode(payload, secret, algorithm="HS256")
