"""Browser-facing files: the admin dashboard, the demo page and the `signals.js` tracker.

All are static files under `app/static/` (no build step). The dashboard and the demo talk
to the service only through `/graphql`. Responses carry a strict Content-Security-Policy:
the dashboard holds an admin JWT, so it runs no inline script and connects to its own
origin only; event data is always inserted as text, never as HTML.
"""

from __future__ import annotations

from pathlib import Path

from starlette.responses import FileResponse, RedirectResponse, Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp, Message, Receive, Scope, Send

STATIC_DIR = Path(__file__).resolve().parent.parent / "static"  # app/static/

BASE_HEADERS = {
    "x-content-type-options": "nosniff",
    "referrer-policy": "no-referrer",
    "cache-control": "no-cache",  # revalidate: a deploy must not leave stale pages behind
}

DASHBOARD_CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)
# The demo page holds a token too: it talks to its own origin only (its `?endpoint=` must be
# a same-origin path), and it is not served in production unless SIGNALS_DEMO=true.
DEMO_CSP = DASHBOARD_CSP


class WithHeaders:
    """Wraps an ASGI app and sets extra response headers."""

    def __init__(self, app: ASGIApp, headers: dict[str, str]) -> None:
        self.app = app
        self.headers = [(k.encode("latin-1"), v.encode("latin-1")) for k, v in headers.items()]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                names = {k for k, _ in self.headers}
                kept = [(k, v) for k, v in message.get("headers", []) if k.lower() not in names]
                message = {**message, "headers": kept + self.headers}
            await send(message)

        await self.app(scope, receive, send_with_headers)


def static_site(folder: str, csp: str) -> ASGIApp:
    return WithHeaders(
        StaticFiles(directory=STATIC_DIR / folder, html=True), {**BASE_HEADERS, "content-security-policy": csp}
    )


async def tracker_script(_: object) -> Response:
    """`signals.js`, loadable as a cross-origin ES module (module scripts are fetched with CORS)."""
    return FileResponse(
        STATIC_DIR / "signals.js",
        media_type="text/javascript",
        headers={**BASE_HEADERS, "access-control-allow-origin": "*", "cache-control": "public, max-age=300"},
    )


def redirect_to(path: str) -> Route:
    async def endpoint(_: object) -> Response:
        return RedirectResponse(path + "/", status_code=308)

    return Route(path, endpoint, methods=["GET", "HEAD"])


def web_routes(*, demo: bool) -> list[BaseRoute]:
    """Routes to add to the app: /dashboard/, /signals.js and, when `demo`, /demo/."""
    routes: list[BaseRoute] = [
        Route("/signals.js", tracker_script, methods=["GET", "HEAD"]),
        redirect_to("/dashboard"),
        Mount("/dashboard", app=static_site("dashboard", DASHBOARD_CSP)),
    ]
    if demo:
        routes += [redirect_to("/demo"), Mount("/demo", app=static_site("demo", DEMO_CSP))]
    return routes
