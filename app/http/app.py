"""The ASGI app: Starlette routes around the GraphQL endpoint, health, metrics and the
browser pages, behind the request-body limits. Everything arrives through `build_app`'s
arguments; the lifespan (what starts and stops the services) is the composition root's
(app/cli/serve.py)."""

from __future__ import annotations

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
from app.storage.database import is_ready

Lifespan = Callable[[Starlette], AbstractAsyncContextManager[None]]


async def healthz(_: Request) -> Response:
    return JSONResponse({"status": "ok"})


async def metrics(_: Request) -> Response:
    return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)


def readiness(runtime: Runtime) -> Callable[[Request], Awaitable[Response]]:
    async def readyz(_: Request) -> Response:
        if not runtime.running or not await is_ready(runtime.services.engine):
            return JSONResponse({"status": "unavailable", "database": "unreachable"}, status_code=503)
        return JSONResponse({"status": "ready"})

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
        Route("/metrics", metrics),
        *web_routes(),
    ]
    middleware = [Middleware(RequestLimits, max_bytes=settings.max_body_bytes, body_timeout=settings.body_timeout)]
    return SignalsApp(runtime, routes=routes, lifespan=lifespan, middleware=middleware)
