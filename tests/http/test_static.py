"""The browser-facing files: served where documented, with safe headers, and the GraphQL the
browser code sends is valid against the schema the service serves."""

from __future__ import annotations

import json
import re
import subprocess

import httpx
import pytest
from graphql import parse, validate

from app.config import PROJECT_ROOT, load_settings
from app.graphql.schema import build_schema
from app.graphql.strawberry_compat import graphql_core_schema
from app.http.static import STATIC_DIR
from testkit.http import gql

DOCUMENTS_SCRIPT = PROJECT_ROOT / "tests" / "http" / "documents.mjs"  # the browser code's GraphQL, as JSON


def assets_of(html: str) -> list[str]:
    return re.findall(r'(?:src|href)="([^":#]+)"', html)


async def test_dashboard_page_and_its_assets_are_served_with_a_strict_policy(client: httpx.AsyncClient) -> None:
    redirect = await client.get("/dashboard", follow_redirects=False)
    assert redirect.status_code == 308 and redirect.headers["location"].endswith("/dashboard/")

    page = await client.get("/dashboard/")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    policy = page.headers["content-security-policy"]
    assert "script-src 'self'" in policy and "connect-src 'self'" in policy
    assert "unsafe-inline" not in policy and "frame-ancestors 'none'" in policy
    assert page.headers["referrer-policy"] == "no-referrer"
    assert "<script>" not in page.text  # no inline script: the policy would block it

    assets = assets_of(page.text)
    assert "main.js" in assets and "style.css" in assets
    modules = set(assets)
    for name in list(modules):  # follow the module graph: every import must be served too
        if name.endswith(".js"):
            modules.update(re.findall(r'from "\./([^"]+)"', (STATIC_DIR / "dashboard" / name).read_text()))
    for name in sorted(modules):
        response = await client.get(f"/dashboard/{name}")
        assert response.status_code == 200, name
        expected = "text/css" if name.endswith(".css") else "text/javascript"
        assert response.headers["content-type"].startswith(expected), (name, response.headers["content-type"])


async def test_tracker_is_a_cross_origin_loadable_module(client: httpx.AsyncClient) -> None:
    response = await client.get("/signals.js")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/javascript")
    assert response.headers["access-control-allow-origin"] == "*"  # module scripts load with CORS
    assert "export function init" in response.text and "export function track" in response.text


async def test_demo_page_is_served_in_development(client: httpx.AsyncClient) -> None:
    page = await client.get("/demo/")
    assert page.status_code == 200
    assert "connect-src 'self'" in page.headers["content-security-policy"]
    assert 'src="demo.js"' in page.text
    assert (await client.get("/demo/demo.js")).status_code == 200


async def test_files_outside_the_static_folders_are_not_served(client: httpx.AsyncClient) -> None:
    escapes = (
        "/dashboard/../../app/config.py",
        "/dashboard/%2e%2e/web.py",
        "/demo/%2e%2e/%2e%2e/server.py",
        "/dashboard/missing.js",
    )
    for path in escapes:
        response = await client.get(path)
        assert response.status_code == 404, path


def browser_documents() -> dict[str, str]:
    command = ["node", "--no-warnings", str(DOCUMENTS_SCRIPT)]
    out = subprocess.run(command, cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=30, check=True)
    return json.loads(out.stdout)


@pytest.mark.parametrize(
    ("name", "needs"),
    [
        ("DASHBOARD_QUERY", ("eventStats(", "EventConnection")),
        ("MORE_EVENTS_QUERY", ("EventConnection",)),
        ("TRACK_MUTATION", ("trackEvents(",)),
    ],
)
async def test_browser_graphql_documents_are_valid_against_the_served_schema(
    client: httpx.AsyncClient, name: str, needs: tuple[str, ...]
) -> None:
    """The served SDL has what each document relies on (`needs`), and the document validates
    against the executable schema built from the same settings."""
    sdl = (await gql(client, "{ _service { sdl } }"))["data"]["_service"]["sdl"]
    assert [text for text in needs if text not in sdl] == [], "the served schema lacks what the browser code sends"
    document = browser_documents()[name]
    errors = validate(graphql_core_schema(build_schema(load_settings())), parse(document))
    assert errors == [], [e.message for e in errors]
