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

from app.config import Settings

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
    """`realm_access.roles` -> claims["realm_access"]["roles"]; None when absent."""
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


class JwtVerifier:
    """Verifies bearer tokens with the configured key material."""

    def __init__(self, settings: Settings, hs_secret: str | None) -> None:
        self.settings = settings
        self.hs_secret = hs_secret
        self._jwks: jwt.PyJWKClient | None = None
        self._verified: OrderedDict[str, dict[str, Any]] = OrderedDict()
        if settings.jwt_jwks_url:
            self._jwks = jwt.PyJWKClient(settings.jwt_jwks_url, cache_keys=True, lifespan=300, timeout=5)

    @property
    def configured(self) -> bool:
        return self.hs_secret is not None or self._jwks is not None

    def _key_for(self, token: str, algorithm: str) -> Any:
        if algorithm.startswith("HS"):
            if self.hs_secret is None:
                raise AuthError(f"algorithm {algorithm} is not accepted here")
            return self.hs_secret
        if self._jwks is None:
            raise AuthError(f"algorithm {algorithm} is not accepted here")
        try:
            return self._jwks.get_signing_key_from_jwt(token).key
        except jwt.PyJWKClientError as exc:
            raise AuthError(f"no signing key for this token: {exc}") from None

    VERIFIED_CACHE_SIZE = 4096

    def verify(self, token: str) -> dict[str, Any]:
        """Claims of a valid token. A token already verified (same bytes, so same signature)
        is answered from a bounded memo whose expiry is re-checked on every use."""
        claims = self._verified.get(token)
        if claims is not None:
            if time.time() <= claims["exp"] + self.settings.jwt_leeway_seconds:
                self._verified.move_to_end(token)
                return claims
            del self._verified[token]
        claims = self._verify_signature_and_claims(token)
        if isinstance(claims.get("exp"), int | float):
            self._verified[token] = claims
            if len(self._verified) > self.VERIFIED_CACHE_SIZE:
                self._verified.popitem(last=False)
        return claims

    def _verify_signature_and_claims(self, token: str) -> dict[str, Any]:
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError:
            raise AuthError("malformed token") from None
        algorithm = str(header.get("alg", ""))
        if algorithm not in self.settings.jwt_algorithms:
            raise AuthError(f"algorithm {algorithm or 'none'} is not allowed")
        key = self._key_for(token, algorithm)
        options = {"require": ["exp", "sub"], "verify_aud": self.settings.jwt_audience is not None}
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


def bearer_token(authorization: str | None) -> str | None:
    if not authorization:
        return None
    scheme, _, token = authorization.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise AuthError("Authorization header must be 'Bearer <token>'")
    return token.strip()


def issue_token(secret: str, *, subject: str, roles: list[str], ttl_seconds: int = 86_400, **claims: Any) -> str:
    """An HS256 token (development helper and tests)."""
    import time

    now = int(time.time())
    payload = {"sub": subject, "roles": roles, "iat": now, "exp": now + ttl_seconds, **claims}
    return jwt.encode(payload, secret, algorithm="HS256")
