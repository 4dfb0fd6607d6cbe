"""What production serves besides the API: /metrics only with its token (or when declared
public), labelled with operator-chosen app names only; /demo/ not at all."""

from __future__ import annotations

import uuid
from pathlib import Path

import httpx

from testkit.http import asgi_client, gql
from testkit.settings import make_settings
from testkit.tokens import token

METRICS_TOKEN = "metrics-token-" + "P3x" * 12


async def test_production_serves_neither_open_metrics_nor_the_demo(migrated_db: str, tmp_path: Path) -> None:
    async with asgi_client(make_settings(migrated_db, tmp_path, env="production")) as http:
        assert (await http.get("/metrics")).status_code == 404
        assert (await http.get("/demo/")).status_code == 404
        assert (await http.get("/dashboard/")).status_code == 200
    settings = make_settings(migrated_db, tmp_path, env="production", metrics_public=True)
    async with asgi_client(settings) as http:
        assert (await http.get("/metrics")).status_code == 200  # declared public


async def test_metrics_with_a_token_need_it(migrated_db: str, tmp_path: Path) -> None:
    settings = make_settings(migrated_db, tmp_path, env="production", metrics_token=METRICS_TOKEN)
    async with asgi_client(settings) as http:
        refused = await http.get("/metrics")
        assert refused.status_code == 401 and refused.json()["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"
        assert (await http.get("/metrics", headers={"authorization": "Bearer wrong"})).status_code == 401
        allowed = await http.get("/metrics", headers={"authorization": f"Bearer {METRICS_TOKEN}"})
        assert allowed.status_code == 200 and "signals_events_accepted_total" in allowed.text


async def test_metric_labels_are_only_allowlisted_app_names(migrated_db: str, tmp_path: Path) -> None:
    chosen = f"caller-chosen-{uuid.uuid4().hex[:8]}"
    settings = make_settings(migrated_db, tmp_path, allowed_apps=[])  # any well-formed app name is accepted
    headers = {"authorization": f"Bearer {token(roles=['member'])}", "user-agent": "Mozilla/5.0"}
    query = "mutation($x: TrackEventInput!) { trackEvent(input: $x) { status } }"
    async with asgi_client(settings) as http:
        body = await gql(http, query, {"x": {"appName": chosen, "eventType": "click"}}, headers)
        assert body["data"]["trackEvent"]["status"] == "ACCEPTED"
        metrics = (await http.get("/metrics")).text
    assert chosen not in metrics
    assert 'signals_events_accepted_total{app="<unlisted>"}' in metrics


async def test_the_demo_talks_to_its_own_origin_only(client: httpx.AsyncClient) -> None:
    page = await client.get("/demo/")
    policy = page.headers["content-security-policy"]
    assert "connect-src 'self'" in policy and "connect-src *" not in policy
    script = (await client.get("/demo/demo.js")).text
    assert "url.origin === location.origin" in script
