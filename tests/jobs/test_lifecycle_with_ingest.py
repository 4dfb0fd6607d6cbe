"""The data-lifecycle jobs while events keep arriving through `trackEvent`:
- trackEvent calls keep being accepted while retention deletes expired rows;
- rotating the secret file under `signals serve` changes the hashes of new events within
  seconds, with no failed request, and rotating back gives the old hashes again.
"""

from __future__ import annotations

import asyncio
import threading
import time
from pathlib import Path

import httpx

from app.cli.ops import write_secret_file
from app.cli.serve import create_app
from app.config import generate_secret
from jobs.retention import run_retention
from testkit.database import fetch
from testkit.processes import data_dir, free_port
from testkit.seed import insert_expired
from testkit.servers import Served
from testkit.settings import TEST_JWT_SECRET, make_settings
from testkit.tokens import token

TRACK = """mutation($input: TrackEventInput!) {
  trackEvent(input: $input) { status accepted reason message retryable eventId clientEventId }
}"""
BROWSER = "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0"


def headers() -> dict[str, str]:
    return {"authorization": f"Bearer {token(roles=['member'])}", "user-agent": BROWSER}


def track_input(n: int) -> dict:
    return {"input": {"eventType": "click", "appName": "admin-console", "route": f"/orders/{n}"}}


async def test_track_event_keeps_succeeding_during_retention(fresh_db: str, tmp_path: Path) -> None:
    await insert_expired(fresh_db, 20_000)
    app = create_app(make_settings(fresh_db, tmp_path))
    results: list[dict] = []
    done = asyncio.Event()
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app, client=("203.0.113.7", 51515))
        async with httpx.AsyncClient(transport=transport, base_url="http://admin.example.test") as http:

            async def caller(k: int) -> None:
                n = 0
                while not done.is_set():
                    response = await http.post(
                        "/graphql", json={"query": TRACK, "variables": track_input(k * 100_000 + n)}, headers=headers()
                    )
                    results.append(response.json())
                    n += 1

            callers = [asyncio.create_task(caller(k)) for k in range(3)]
            report = await run_retention(fresh_db, retention_days=180, batch_size=500)
            done.set()
            await asyncio.gather(*callers)
    assert report.rows == 20000 and report.longest_transaction_seconds > 0
    assert results, "no trackEvent call overlapped the retention run"
    bad = [r for r in results if "errors" in r or r["data"]["trackEvent"]["status"] != "ACCEPTED"]
    assert bad == []
    stored = await fetch(fresh_db, "SELECT count(*) AS n FROM events")
    assert stored[0]["n"] == len(results)


def test_rotation_changes_new_hashes_with_no_failed_request(fresh_db: str, tmp_path: Path) -> None:
    first, second = generate_secret(), generate_secret()
    path = tmp_path / "salt"
    write_secret_file(path, first)
    port = free_port()
    server = Served(
        {
            "DATABASE_URL": fresh_db,
            "SIGNALS_JWT_SECRET": TEST_JWT_SECRET,
            "SIGNALS_SALT_SECRET_FILE": str(path),
            "SIGNALS_SALT_SECRET_POLL_SECONDS": "0.2",
            "SIGNALS_RATE_LIMIT": "100000/minute",
            "SIGNALS_ANONYMOUS_RATE_LIMIT": "100000/minute",
            "SIGNALS_DATA_DIR": data_dir(tmp_path),
        },
        port,
    )
    failures: list[str] = []
    stop = threading.Event()

    def track(http: httpx.Client, n: int) -> str:
        body = http.post("/graphql", json={"query": TRACK, "variables": track_input(n)}, headers=headers()).json()
        result = body.get("data", {}) and body["data"]["trackEvent"]
        if not result or result["status"] != "ACCEPTED":
            failures.append(str(body)[:300])
            return ""
        return result["eventId"]

    def user_hash(event_id: str) -> str:
        rows = asyncio.run(fetch(fresh_db, "SELECT user_hash FROM events WHERE id = $1::uuid", event_id))
        return rows[0]["user_hash"]

    def traffic() -> None:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=5) as http:
            n = 0
            while not stop.is_set():
                track(http, 1_000_000 + n)
                n += 1
                time.sleep(0.01)

    try:
        server.wait_for_log("signals ready", seconds=60)
        worker = threading.Thread(target=traffic)
        worker.start()
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=5) as http:
            before = {user_hash(track(http, 1)), user_hash(track(http, 2))}
            assert len(before) == 1  # same person, same day, same secret: one hash

            mark = len(server.lines)
            write_secret_file(path, second)
            server.wait_for_log("salt secret rotated", seconds=5, after=mark)
            after = user_hash(track(http, 3))
            assert after not in before

            mark = len(server.lines)
            write_secret_file(path, first)
            server.wait_for_log("salt secret rotated", seconds=5, after=mark)
            assert user_hash(track(http, 4)) in before  # the hash is a function of the secret
        stop.set()
        worker.join(timeout=10)
    finally:
        stop.set()
        server.stop()
    assert failures == []
    log = "\n".join(server.lines)
    assert first not in log and second not in log
