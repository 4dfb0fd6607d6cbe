"""What a resolver can reach: the shared services and the per-request context."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.ext.asyncio import AsyncEngine
from starlette.requests import Request
from starlette.responses import Response
from strawberry.exceptions import StrawberryGraphQLError

from app.auth import AuthError, JwtVerifier, Principal, bearer_token, principal_from_claims
from app.config import Settings
from app.secrets import SaltSecret


@dataclass
class Services:
    """Long-lived parts, built once at start-up (see `app.server`)."""

    settings: Settings
    engine: AsyncEngine
    verifier: JwtVerifier
    subject_key: bytes
    salt_secret: SaltSecret
    extras: dict[str, Any] = field(default_factory=dict)


def graphql_error(message: str, code: str, **extensions: Any) -> StrawberryGraphQLError:
    return StrawberryGraphQLError(message, extensions={"code": code, **extensions})


@dataclass
class Context:
    request: Request
    response: Response | None
    services: Services
    body_extensions: dict[str, Any] = field(default_factory=dict)
    _principal: Principal | None = None
    _auth_error: str | None = None
    _resolved: bool = False

    def _resolve(self) -> None:
        if self._resolved:
            return
        self._resolved = True
        try:
            token = bearer_token(self.request.headers.get("authorization"))
            if token is None:
                return
            if not self.services.verifier.configured:
                raise AuthError("this service has no JWT verification configured")
            claims = self.services.verifier.verify(token)
            self._principal = principal_from_claims(claims, self.services.settings, self.services.subject_key)
        except AuthError as exc:
            self._auth_error = str(exc)

    @property
    def principal(self) -> Principal | None:
        self._resolve()
        return self._principal

    def require_user(self) -> Principal:
        principal = self.principal
        if principal is None:
            raise graphql_error(self._auth_error or "authentication required: send Authorization: Bearer <JWT>", "UNAUTHENTICATED")
        return principal

    def require_admin(self) -> Principal:
        principal = self.require_user()
        if not principal.is_admin:
            raise graphql_error("the admin role is required", "FORBIDDEN")
        return principal
