"""What a resolver can reach: the long-lived services and the per-request context."""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

from sqlalchemy.ext.asyncio import AsyncEngine
from starlette.requests import HTTPConnection
from starlette.responses import Response
from starlette.websockets import WebSocket
from strawberry.extensions import SchemaExtension

from app.auth.authenticate import ANONYMOUS, Authenticator, AuthOutcome
from app.auth.tokens import Principal
from app.config import Settings
from app.graphql.errors import graphql_error
from app.ingest.client_ip import ClientIpResolver
from app.ingest.pipeline import DropTally, Ingest
from app.ingest.ratelimit import RateLimiter
from app.ingest.request import RequestFacts
from app.privacy.secret import SaltSecret
from app.storage.replica import ReadRouter


class AnonymousLimit:
    """A per-client-address limit on operations that carry no valid credentials
    (SIGNALS_ANONYMOUS_RATE_LIMIT; Redis when REDIS_URL is set, like the caller limit). The
    address is resolved through the trusted proxies, and the limiter's key is an HMAC of it:
    no address is kept, in memory or in Redis."""

    def __init__(self, settings: Settings, key: bytes) -> None:
        self.limiter = RateLimiter(settings.anonymous_rate_limit, settings.redis_url, namespace="signals-anonymous")
        self.resolver = ClientIpResolver(settings.trusted_proxies)
        self.key = key
        self.limit = settings.anonymous_rate_limit

    async def allow(self, request: RequestFacts) -> bool:
        address = self.resolver.client_ip(request.peer, request.forwarded_for)
        return await self.limiter.allow(hmac.new(self.key, address.encode(), hashlib.sha256).hexdigest()[:32], 1) > 0


@dataclass(frozen=True)
class Services:
    """Long-lived parts, built once by the app's lifespan (app/cli/serve.py). `engine` is the
    primary's (writes); admin reads go through `reads` (the replica when one is configured)."""

    settings: Settings
    engine: AsyncEngine
    reads: ReadRouter
    authenticator: Authenticator
    salt_secret: SaltSecret
    ingest: Ingest
    anonymous_limit: AnonymousLimit


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
    drops: DropTally = field(default_factory=DropTally)  # logged once, when the operation ends

    async def authenticate(
        self,
        query: str | None = None,
        variables: dict[str, object] | None = None,
        extensions: dict[str, object] | None = None,
    ) -> None:
        authorization = self.request.headers.get("authorization")
        self.auth = await self.services.authenticator.authenticate(authorization, query, variables, extensions)
        if self.auth.principal is None and not await self.services.anonymous_limit.allow(self.facts):
            raise graphql_error(
                f"too many requests without valid credentials from this address (at most "
                f"{self.services.anonymous_limit.limit}); retry later, or send Authorization: Bearer <JWT>",
                "RATE_LIMITED",
                retryable=True,
            )

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
    """Authenticates each operation before it is validated or executed (an unauthenticated
    caller past its address's limit is refused here, as a whole), and logs the operation's
    event drops once when it ends."""

    async def on_operation(self) -> AsyncIterator[None]:
        ec = self.execution_context
        context = ec.context if isinstance(ec.context, Context) else None
        if context is not None:
            await context.authenticate(ec.query, ec.variables, ec.operation_extensions)
        try:
            yield
        finally:
            if context is not None:
                context.drops.log()
