"""Who sent this operation: a bearer token, or claims forwarded by a signed gateway request.

`Authenticator.authenticate()` takes plain values (the Authorization header and the
operation's query, variables and extensions), so every edge (the GraphQL context, the
fast path) authenticates the same way. The outcome is a `Principal` or the reason there is
none; refusing the request is up to the caller of the operation's fields.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any, Literal

from app.auth.gateway import JWT_EXTENSION, forwarded_claims
from app.auth.tokens import AuthError, JwtVerifier, Principal, bearer_token, check_time_claims, principal_from_claims
from app.config import Settings
from app.logs import get_logger

log = get_logger("signals.auth")

AuthSource = Literal["bearer", "gateway"]
NO_CREDENTIALS = "authentication required: send Authorization: Bearer <JWT>"


@dataclass(frozen=True, slots=True)
class AuthOutcome:
    """`principal` when authenticated; else `problem` says why not (None: no credentials)."""

    principal: Principal | None = None
    problem: str | None = None
    source: AuthSource | None = None

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
            claims = forwarded_claims(self._gateway_secret, query, variables, extensions)
            source: AuthSource
            if claims is not None:
                check_time_claims(claims, self.settings.jwt_leeway_seconds)
                source = "gateway"
            else:
                if extensions and JWT_EXTENSION in extensions:
                    log.warning("forwarded JWT claims ignored: no valid gateway signature")
                token = bearer_token(authorization)
                if token is None:
                    return ANONYMOUS
                if not self.verifier.configured:
                    raise AuthError("this service has no JWT verification configured")
                claims = await self.verifier.verify(token)
                source = "bearer"
            principal = principal_from_claims(claims, self.settings, self.subject_key)
        except AuthError as exc:
            return AuthOutcome(problem=str(exc))
        return AuthOutcome(principal=principal, source=source)
