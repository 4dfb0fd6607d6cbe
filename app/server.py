"""The ASGI app: Starlette routes around the Strawberry subgraph, and its lifespan."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
from collections.abc import AsyncIterator
from typing import Any

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from strawberry.asgi import GraphQL

from app.auth import JwtVerifier
from app.config import Settings, dev_secret
from app.context import Context, Services
from app.db import Database, is_ready
from app.fastpath import FastTrack
from app.hardening import RequestLimits
from app.ingest import Ingest
from app.logs import get_logger
from app.metrics import metrics_endpoint
from app.migrations import migrate
from app.schema import build_schema
from app.secret_watch import SecretWatcher
from app.secrets import SaltSecret
from app.web import web_routes
from jobs.schedule import start_schedules, stop_schedules

log = get_logger("signals.server")


class SignalsGraphQL(GraphQL[Context, None]):
    async def get_context(self, request: Request, response: Response | None = None) -> Context:  # type: ignore[override]
        return Context(request=request, response=response, services=request.app.state.services)


def jwt_hs_secret(settings: Settings) -> str | None:
    """The HS256 secret: configured, or (development only, nothing else configured) generated."""
    if settings.jwt_secret is not None:
        return settings.jwt_secret.get_secret_value()
    if settings.jwt_jwks_url or settings.is_production:
        return None
    return dev_secret(settings, "jwt-secret")


async def healthz(_: Request) -> Response:
    return JSONResponse({"status": "ok"})


async def readyz(request: Request) -> Response:
    services: Services | None = getattr(request.app.state, "services", None)
    if services is None or not await is_ready(services.engine):
        return JSONResponse({"status": "unavailable", "database": "unreachable"}, status_code=503)
    return JSONResponse({"status": "ready"})


def create_app(settings: Settings, *, run_migrations: bool = True) -> Starlette:
    """Build the app. The lifespan starts the database (embedded unless `DATABASE_URL`),
    applies migrations, and tears everything down on shutdown."""

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        database = Database(settings)
        url = await asyncio.to_thread(database.start_server)
        ingest: Ingest | None = None
        try:
            if run_migrations:
                result = await migrate(url, settings.migrations_dir)
                if result.applied:
                    log.info("migrations applied", applied=result.applied)
            engine = database.connect()
            hs_secret = jwt_hs_secret(settings)
            subject_key = hashlib.sha256(b"signals-subject-key|" + (hs_secret or settings.jwt_jwks_url or "").encode()).digest()
            services = Services(
                settings=settings,
                engine=engine,
                verifier=JwtVerifier(settings, hs_secret),
                subject_key=subject_key,
                salt_secret=SaltSecret(settings),
            )
            app.state.services = services
            app.state.database = database
            ingest = Ingest(services)
            await ingest.start()
            log.info(
                "signals ready",
                env=settings.env,
                embedded_db=database.embedded is not None,
                salt_secret_fingerprint=services.salt_secret.fingerprint,
            )
            secret_watcher = SecretWatcher(services.salt_secret, settings.salt_secret_poll_seconds)
            secret_watcher.start()
            schedules = start_schedules(settings, url)
            try:
                yield
            finally:
                await stop_schedules(schedules)
                await secret_watcher.stop()
        finally:
            if ingest is not None:
                await ingest.stop()  # flush queued events before the pool closes
            await database.dispose()
            await asyncio.to_thread(database.stop_server)
            log.info("signals stopped")

    graphql = SignalsGraphQL(build_schema(settings), graphql_ide="graphiql" if settings.graphiql_enabled else None)
    routes: list[Any] = [
        Route("/graphql", FastTrack(graphql, graphql.schema._schema), methods=["GET", "POST"]),
        Route("/healthz", healthz),
        Route("/readyz", readyz),
        Route("/metrics", metrics_endpoint),
        *web_routes(),
    ]
    middleware = [Middleware(RequestLimits, max_bytes=settings.max_body_bytes, body_timeout=settings.body_timeout)]
    return Starlette(routes=routes, lifespan=lifespan, middleware=middleware)
