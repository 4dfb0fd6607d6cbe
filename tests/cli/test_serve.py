"""The served subgraph: health, readiness, federation SDL, and `signals serve` end to end."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx

from testkit.http import gql
from testkit.processes import clean_env, free_port


async def test_health_and_ready(client: httpx.AsyncClient) -> None:
    assert (await client.get("/healthz")).json() == {"status": "ok"}
    ready = await client.get("/readyz")
    assert ready.status_code == 200 and ready.json()["status"] == "ready"


async def test_service_sdl_is_federation_v2_with_event_key(client: httpx.AsyncClient) -> None:
    body = await gql(client, "{ _service { sdl } }")
    sdl = body["data"]["_service"]["sdl"]
    assert '@link(url: "https://specs.apollo.dev/federation/v2.' in sdl
    assert 'type Event @key(fields: "id")' in sdl


async def test_metrics_endpoint_is_prometheus_text(client: httpx.AsyncClient) -> None:
    response = await client.get("/metrics")
    assert response.status_code == 200
    assert "text/plain" in response.headers["content-type"]


async def test_graphiql_served_in_development(client: httpx.AsyncClient) -> None:
    response = await client.get("/graphql", headers={"accept": "text/html"})
    assert response.status_code == 200 and "graphiql" in response.text.lower()


def test_signals_serve_on_embedded_postgres(tmp_path: Path) -> None:
    """The README's run path: no DATABASE_URL, no secrets; ready, SDL, clean stop."""
    port = free_port()
    env = clean_env(SIGNALS_DATA_DIR=str(tmp_path / "data"))
    proc = subprocess.Popen(
        [sys.executable, "-m", "app.cli", "serve", "--port", str(port)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        deadline = time.monotonic() + 60
        ready = None
        while time.monotonic() < deadline:
            try:
                ready = httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=2)
                if ready.status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.3)
        assert ready is not None and ready.status_code == 200
        sdl = httpx.post(f"http://127.0.0.1:{port}/graphql", json={"query": "{ _service { sdl } }"}, timeout=5).json()
        assert '@key(fields: "id")' in sdl["data"]["_service"]["sdl"]
        assert "@link(" in sdl["data"]["_service"]["sdl"]
    finally:
        proc.send_signal(signal.SIGTERM)
        output, _ = proc.communicate(timeout=30)
    # uvicorn re-raises SIGTERM after a graceful shutdown, as a supervisor expects
    assert proc.returncode in (0, -signal.SIGTERM), output
    assert f"listening on http://127.0.0.1:{port}" in output
    assert "sample admin token" in output
    assert "signals stopped" in output
    # the embedded server is gone: its postmaster.pid is removed on a clean stop
    assert not (tmp_path / "data" / "postgres" / "postmaster.pid").exists()
