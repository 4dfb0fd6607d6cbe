"""Who sent this operation: a bearer token, or a JWT forwarded by a signed gateway request.

`Authenticator.authenticate()` takes plain values (the Authorization header and the
operation's query, variables and extensions), so every edge (the GraphQL context, the
fast path) authenticates the same way. The outcome is a `Principal` or the reason there is
none; refusing the request is up to the caller of the operation's fields.

A gateway request counts only with a valid HMAC signature (app/auth/gateway.py), which
covers the operation and its variables, not the forwarded JWT. So with
`SIGNALS_GATEWAY_TRUST=token` (the default) the caller is whoever the forwarded *token*
says, verified here exactly like a bearer token (signature, algorithm, exp, iss, aud): a
replayed request with other claims cannot change who the caller is. With `payload` the
forwarded claims are taken as the gateway verified them, checked for exp, nbf, iss and aud:
a captured signed request can then be replayed with other claims until they expire.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

from app.auth.gateway import JWT_EXTENSION, ForwardedJwt, forwarded_jwt
from app.auth.tokens import (
    AuthError,
    JwtVerifier,
    Principal,
    bearer_token,
    check_forwarded_claims,
    principal_from_claims,
)
from app.config import Settings
from app.logs import exception_summary, get_logger

log = get_logger("signals.auth")

NO_CREDENTIALS = "authentication required: send Authorization: Bearer <JWT>"


@dataclass(frozen=True, slots=True)
class AuthOutcome:
    """`principal` when authenticated; else `problem` says why not (None: no credentials)."""

    principal: Principal | None = None
    problem: str | None = None

    @property
    def refusal(self) -> str:
        """Why this caller is not authenticated, for the caller."""
        return self.problem or NO_CREDENTIALS


ANONYMOUS = AuthOutcome()


class Authenticator:
    def __init__(self, settings: Settings, verifier: JwtVerifier, subject_key: bytes) -> None:
        self.settings = settings
        self.verifier = verifier
        self.subject_key = subject_key  # keys `Principal.key`: the subject itself is never kept
        secret = settings.gateway_hmac_secret
        self._gateway_secret = secret.get_secret_value().encode() if secret else None

    @classmethod
    def from_settings(cls, settings: Settings, hs_secret: str | None) -> Authenticator:
        subject_key = hashlib.sha256(
            b"signals-subject-key|" + (hs_secret or settings.jwt_jwks_url or "").encode()
        ).digest()
        return cls(settings, JwtVerifier(settings, hs_secret), subject_key)

    async def authenticate(
        self,
        authorization: str | None,
        query: str | None = None,
        variables: dict[str, Any] | None = None,
        extensions: dict[str, Any] | None = None,
    ) -> AuthOutcome:
        try:
            forwarded = forwarded_jwt(self._gateway_secret, query, variables, extensions)
            if forwarded is not None:
                claims = await self._forwarded_claims(forwarded)
            else:
                if extensions and JWT_EXTENSION in extensions:
                    log.info("forwarded JWT ignored: no valid gateway signature")
                token = bearer_token(authorization)
                if token is None:
                    return ANONYMOUS
                claims = await self._verified(token)
            principal = principal_from_claims(claims, self.settings, self.subject_key)
        except AuthError as exc:
            return AuthOutcome(problem=str(exc))
        except Exception as exc:  # noqa: BLE001 - a fault here must be a coded refusal, not an unmasked error
            log.error("authentication failed unexpectedly", error=exception_summary(exc))
            return AuthOutcome(problem="authentication failed unexpectedly; it has been logged")
        return AuthOutcome(principal=principal)

    async def _verified(self, token: str) -> dict[str, Any]:
        if not self.verifier.configured:
            raise AuthError("this service has no JWT verification configured")
        return await self.verifier.verify(token)

    async def _forwarded_claims(self, forwarded: ForwardedJwt) -> dict[str, Any]:
        if self.settings.gateway_trust == "token":
            if forwarded.token is None:
                raise AuthError(
                    "the gateway forwarded no token: set jwt.forward.token in the gateway "
                    "(or SIGNALS_GATEWAY_TRUST=payload to trust its claims)"
                )
            return await self._verified(forwarded.token)
        if forwarded.payload is None:
            raise AuthError("the gateway forwarded no claims (jwt.forward.payload)")
        check_forwarded_claims(forwarded.payload, self.settings)
        return forwarded.payload
