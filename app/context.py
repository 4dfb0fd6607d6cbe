"""What a resolver can reach: the shared services and the per-request context."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.ext.asyncio import AsyncEngine
from starlette.requests import Request
from starlette.responses import Response
from strawberry.exceptions import StrawberryGraphQLError
from strawberry.extensions import SchemaExtension

from app.auth import AuthError, JwtVerifier, Principal, bearer_token, check_time_claims, principal_from_claims
from app.config import Settings
from app.gateway import JWT_EXTENSION, forwarded_claims
from app.logs import get_logger
from app.secrets import SaltSecret

log = get_logger("signals.auth")


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
    """Per request. `authenticate()` runs once per operation (the `Authenticate` schema
    extension calls it with the operation's own query, variables and extensions); after
    that `principal`, `require_user()` and `require_admin()` answer from its result."""

    request: Request
    response: Response | None
    services: Services
    auth_source: str | None = None  # "bearer" | "gateway" once authenticated
    _principal: Principal | None = None
    _auth_error: str | None = None

    async def authenticate(
        self,
        query: str | None = None,
        variables: dict[str, Any] | None = None,
        extensions: dict[str, Any] | None = None,
    ) -> None:
        self._principal, self._auth_error, self.auth_source = None, None, None
        settings = self.services.settings
        try:
            secret = settings.gateway_hmac_secret
            claims = forwarded_claims(
                secret.get_secret_value().encode() if secret else None, query, variables, extensions
            )
            if claims is not None:
                check_time_claims(claims, settings.jwt_leeway_seconds)
                self.auth_source = "gateway"
            else:
                if extensions and JWT_EXTENSION in extensions:
                    log.warning("forwarded JWT claims ignored: no valid gateway signature")
                token = bearer_token(self.request.headers.get("authorization"))
                if token is None:
                    return
                if not self.services.verifier.configured:
                    raise AuthError("this service has no JWT verification configured")
                claims = await self.services.verifier.verify(token)
                self.auth_source = "bearer"
            self._principal = principal_from_claims(claims, settings, self.services.subject_key)
        except AuthError as exc:
            self._principal, self.auth_source, self._auth_error = None, None, str(exc)

    @property
    def principal(self) -> Principal | None:
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


class Authenticate(SchemaExtension):
    """Authenticates each operation before it is validated or executed."""

    async def on_operation(self) -> AsyncIterator[None]:  # type: ignore[override]
        ec = self.execution_context
        if isinstance(ec.context, Context):
            await ec.context.authenticate(ec.query, ec.variables, ec.operation_extensions)
        yield
