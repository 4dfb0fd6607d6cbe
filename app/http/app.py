"""The ASGI app: Starlette routes around the GraphQL endpoint, health, metrics and the
browser pages, behind the request-body limits. Everything arrives through `build_app`'s
arguments; the lifespan (what starts and stops the services) is the composition root's
(app/cli/serve.py)."""

from __future__ import annotations

import hmac
from collections.abc import Awaitable, Callable
from contextlib import AbstractAsyncContextManager
from typing import Any

from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from app.config import Settings
from app.graphql.context import Runtime
from app.graphql.fastpath import FastTrack
from app.graphql.strawberry_compat import graphql_core_schema
from app.graphql.view import SignalsGraphQL
from app.http.limits import RequestLimits
from app.http.static import web_routes
from app.logs import get_logger
from app.storage.database import is_ready

log = get_logger("signals.http")

Lifespan = Callable[[Starlette], AbstractAsyncContextManager[None]]


async def healthz(_: Request) -> Response:
    return JSONResponse({"status": "ok"})


def metrics_route(settings: Settings) -> Route | None:
    """/metrics behind SIGNALS_METRICS_TOKEN when one is set; open when `metrics_open`;
    otherwise not served at all (production's default)."""
    token = settings.metrics_token.get_secret_value().encode() if settings.metrics_token else None
    if token is None and not settings.metrics_open:
        log.info("metrics not served: set SIGNALS_METRICS_TOKEN (or SIGNALS_METRICS_PUBLIC=true)")
        return None

    async def metrics(request: Request) -> Response:
        if token is not None:
            given = (request.headers.get("authorization") or "").encode()
            if not hmac.compare_digest(given, b"Bearer " + token):
                return JSONResponse(
                    {
                        "errors": [
                            {
                                "message": "metrics need Authorization: Bearer <SIGNALS_METRICS_TOKEN>",
                                "extensions": {"code": "UNAUTHENTICATED"},
                            }
                        ]
                    },
                    status_code=401,
                    headers={"www-authenticate": "Bearer"},
                )
        return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)

    return Route("/metrics", metrics)


def readiness(runtime: Runtime) -> Callable[[Request], Awaitable[Response]]:
    """503 when the primary does not answer; the read replica's state (from its last check)
    is reported but never makes the service unready: reads then go to the primary."""

    async def readyz(_: Request) -> Response:
        if not runtime.running or not await is_ready(runtime.services.engine):
            return JSONResponse({"status": "unavailable", "database": "unreachable"}, status_code=503)
        body: dict[str, object] = {"status": "ready"}
        if (replica := runtime.services.reads.status) is not None:
            body["replica"] = replica.as_json()
        return JSONResponse(body)

    return readyz


class SignalsApp(Starlette):
    """The Starlette app, with `runtime` holding the services while its lifespan runs."""

    def __init__(self, runtime: Runtime, **options: Any) -> None:
        super().__init__(**options)
        self.runtime = runtime


def build_app(settings: Settings, graphql: SignalsGraphQL, runtime: Runtime, lifespan: Lifespan) -> SignalsApp:
    routes: list[BaseRoute] = [
        Route(
            "/graphql",
            FastTrack(graphql, graphql_core_schema(graphql.schema), runtime, enabled=settings.fast_track),
            methods=["GET", "POST"],
        ),
        Route("/healthz", healthz),
        Route("/readyz", readiness(runtime)),
        *web_routes(demo=settings.demo_enabled),
    ]
    if (metrics := metrics_route(settings)) is not None:
        routes.append(metrics)
    middleware = [Middleware(RequestLimits, max_bytes=settings.max_body_bytes, body_timeout=settings.body_timeout)]
    return SignalsApp(runtime, routes=routes, lifespan=lifespan, middleware=middleware)
