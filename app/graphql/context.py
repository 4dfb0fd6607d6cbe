"""What a resolver can reach: the long-lived services and the per-request context."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncEngine
from starlette.requests import HTTPConnection
from starlette.responses import Response
from starlette.websockets import WebSocket
from strawberry.extensions import SchemaExtension

from app.auth.authenticate import ANONYMOUS, Authenticator, AuthOutcome
from app.auth.tokens import Principal
from app.config import Settings
from app.graphql.errors import graphql_error
from app.ingest.pipeline import Ingest
from app.ingest.request import RequestFacts
from app.privacy.secret import SaltSecret


@dataclass(frozen=True)
class Services:
    """Long-lived parts, built once by the app's lifespan (app/cli/serve.py)."""

    settings: Settings
    engine: AsyncEngine
    authenticator: Authenticator
    salt_secret: SaltSecret
    ingest: Ingest


class Runtime:
    """The services while the app's lifespan runs. The GraphQL view, the fast path and the
    health routes are built before the lifespan starts and reach the services through this."""

    def __init__(self) -> None:
        self._services: Services | None = None

    @property
    def running(self) -> bool:
        return self._services is not None

    @property
    def services(self) -> Services:
        if self._services is None:
            raise RuntimeError("the app's lifespan is not running: no services")
        return self._services

    def start(self, services: Services) -> None:
        self._services = services

    def stop(self) -> None:
        self._services = None


def request_facts(request: HTTPConnection, auth: AuthOutcome) -> RequestFacts:
    """The HTTP request as the ingest pipeline sees it: plain values, nothing of Starlette."""
    return RequestFacts.build(auth, request.headers, request.client.host if request.client else None)


@dataclass
class Context:
    """Per request. `authenticate()` runs once per operation (the `Authenticate` schema
    extension calls it with the operation's own query, variables and extensions); after
    that `principal`, `require_user()`, `require_admin()` and `facts` answer from its result."""

    request: HTTPConnection
    response: Response | WebSocket | None
    services: Services
    auth: AuthOutcome = ANONYMOUS

    async def authenticate(
        self,
        query: str | None = None,
        variables: dict[str, object] | None = None,
        extensions: dict[str, object] | None = None,
    ) -> None:
        authorization = self.request.headers.get("authorization")
        self.auth = await self.services.authenticator.authenticate(authorization, query, variables, extensions)

    @property
    def principal(self) -> Principal | None:
        return self.auth.principal

    @property
    def facts(self) -> RequestFacts:
        """The request as the ingest pipeline sees it."""
        return request_facts(self.request, self.auth)

    def require_user(self) -> Principal:
        principal = self.principal
        if principal is None:
            raise graphql_error(self.auth.refusal, "UNAUTHENTICATED")
        return principal

    def require_admin(self) -> Principal:
        principal = self.require_user()
        if not principal.is_admin:
            raise graphql_error("the admin role is required", "FORBIDDEN")
        return principal


class Authenticate(SchemaExtension):
    """Authenticates each operation before it is validated or executed."""

    async def on_operation(self) -> AsyncIterator[None]:
        ec = self.execution_context
        if isinstance(ec.context, Context):
            await ec.context.authenticate(ec.query, ec.variables, ec.operation_extensions)
        yield
